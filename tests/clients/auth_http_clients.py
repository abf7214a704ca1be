"""Logs in to a Janus node with auth on with the HTTP client libraries, as their users configure them.

usage: auth_http_clients.py <host:port> <user> <password> nacos|eureka

nacos   nacos-sdk-python 1.x NacosClient(username=, password=): it logs in at
        /nacos/v1/auth/login and sends the accessToken with every request;
        registers auth-nacos 127.0.0.1:7101 and lists it. Prints "nacos <ip:port,...>",
        or "nacos refused <error>" when the login or a request is refused.
eureka  py-eureka-client with eureka_basic_auth_user/_password: registers
        auth-eureka 127.0.0.1:7102, reads the application back with the same
        credentials, and stops (which cancels the registration). Prints
        "eureka <instance count>", or "eureka refused <error>".
"""
import base64
import json
import sys
import urllib.request

server, user, password, mode = sys.argv[1:5]

if mode == "nacos":
    import nacos

    try:
        client = nacos.NacosClient(server, namespace="", username=user, password=password)
        client.add_naming_instance("auth-nacos", "127.0.0.1", 7101, cluster_name="DEFAULT")
        hosts = client.list_naming_instance("auth-nacos")["hosts"]
        print("nacos " + ",".join(f"{h['ip']}:{h['port']}" for h in hosts), flush=True)
        client.remove_naming_instance("auth-nacos", "127.0.0.1", 7101)
    except Exception as e:  # noqa: BLE001 - any refusal is reported the same way
        print(f"nacos refused {type(e).__name__}", flush=True)
elif mode == "eureka":
    import py_eureka_client.eureka_client as eureka_client

    errors = []
    try:
        eureka_client.init(eureka_server=f"http://{server}/eureka", eureka_basic_auth_user=user,
                           eureka_basic_auth_password=password, app_name="auth-eureka", instance_ip="127.0.0.1",
                           instance_host="127.0.0.1", instance_port=7102, renewal_interval_in_secs=30,
                           should_discover=False, on_error=lambda kind, err: errors.append(kind))
    except Exception as e:  # noqa: BLE001
        errors.append(type(e).__name__)
    request = urllib.request.Request(f"http://{server}/eureka/apps/AUTH-EUREKA", headers={
        "accept": "application/json",
        "authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode(),
    })
    try:
        app = json.load(urllib.request.urlopen(request, timeout=3))["application"]
        print(f"eureka {len(app['instance'])}" if not errors else f"eureka refused {errors[0]}", flush=True)
    except Exception as e:  # noqa: BLE001
        print(f"eureka refused {errors[0] if errors else type(e).__name__}", flush=True)
    try:
        eureka_client.stop()
    except Exception:  # noqa: BLE001 - a client that never registered has nothing to stop
        pass
