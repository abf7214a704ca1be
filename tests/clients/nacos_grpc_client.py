"""Drives Janus's Nacos 2.x gRPC port with nacos-sdk-python 2.x (its `v2.nacos` package).

usage: nacos_grpc_client.py <http host:port> <grpc host:port> <dir> run
       nacos_grpc_client.py <http host:port> <grpc host:port> <dir> hold
       nacos_grpc_client.py <http host:port> <grpc host:port> <dir> query <service>

The SDK is given the HTTP address, as applications give it, and finds the gRPC
port through its port offset (GRPCConfig.port_offset, 1000 by default), here
set to the distance between the two ephemeral ports. <dir> takes the SDK's log
and cache files (it would write them under ~ otherwise).

run    registers grpc-py 10.0.0.31:7001, subscribes with a callback, lists,
       registers 10.0.0.33:7003 over HTTP and waits for the push, deregisters
       its own instance, lists again and lists the services. One line per
       step, "<step> <value>", for tests/e2e.sh to check.
hold   registers grpc-py-killed 10.0.0.32:7002, prints "ready" and sleeps:
       the instance lives as long as the gRPC connection.
query  prints "hosts <ip:port,...>" (or "hosts (none)") as a fresh client
       reads <service>.
auth   with NACOS_USERNAME and NACOS_PASSWORD set (the SDK logs in over HTTP
       and sends the accessToken with every gRPC request): registers
       grpc-auth 10.0.0.41:7201, lists it ("auth <ip:port,...>") and
       deregisters it.
Any error, or a step of run that sees the wrong thing, prints "error <what>"
and exits 1. No step waits more than 5 s; run and query give up after 30 s.
"""
import asyncio
import os
import sys
import time
import urllib.request

from v2.nacos import (ClientConfigBuilder, DeregisterInstanceParam, GRPCConfig, ListInstanceParam,
                      ListServiceParam, NacosNamingService, RegisterInstanceParam, SubscribeServiceParam)

http, grpc, work, mode = sys.argv[1:5]
http_host, http_port = http.rsplit(":", 1)
grpc_host, grpc_port = grpc.rsplit(":", 1)
assert http_host == grpc_host, "the SDK reaches gRPC on the HTTP host"


wrong = []  # the steps of `run` that did not see what they should have


def say(step, value, expected=None):
    print(f"{step} {value}", flush=True)
    if expected is not None and value != expected:
        wrong.append(step)


def addrs(instances):
    return ",".join(sorted(f"{i.ip}:{i.port}" for i in instances or []))


async def client():
    builder = ClientConfigBuilder()
    if os.environ.get("NACOS_USERNAME"):
        builder = builder.username(os.environ["NACOS_USERNAME"]).password(os.environ.get("NACOS_PASSWORD", ""))
    config = (builder
              .server_address(http)
              .namespace_id("")  # public
              .log_dir(os.path.join(work, "log"))
              .cache_dir(os.path.join(work, "cache", mode))
              .load_cache_at_start(False)
              .timeout_ms(3000)
              .grpc_config(GRPCConfig(grpc_timeout=3000, port_offset=int(grpc_port) - int(http_port)))
              .build())
    return await NacosNamingService.create_naming_service(config)


async def close(naming):
    try:
        await naming.shutdown()
    except TypeError:
        # 2.0.11's NacosNamingService.shutdown() closes the gRPC client, then
        # awaits ServiceInfoUpdater.stop(), which is not a coroutine.
        pass


async def until(predicate, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    return predicate()


def http_instance(method, service, ip, port):
    url = f"http://{http}/nacos/v1/ns/instance?serviceName={service}&ip={ip}&port={port}"
    urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=3).read()


async def run():
    naming = await client()
    service = "grpc-py"
    ok = await naming.register_instance(RegisterInstanceParam(service_name=service, ip="10.0.0.31", port=7001))
    say("register", "ok" if ok else "refused", "ok")

    pushes = []

    async def on_change(instances):
        pushes.append(addrs(instances))

    subscription = SubscribeServiceParam(service_name=service, subscribe_callback=on_change)
    await naming.subscribe(subscription)
    say("subscribe", pushes[-1] if await until(lambda: pushes) else "no callback", "10.0.0.31:7001")

    listed = await naming.list_instances(ListInstanceParam(service_name=service, subscribe=False, healthy_only=None))
    say("list", addrs(listed), "10.0.0.31:7001")

    http_instance("POST", service, "10.0.0.33", 7003)
    both = "10.0.0.31:7001,10.0.0.33:7003"
    say("push", both if await until(lambda: both in pushes) else f"not pushed, callbacks {pushes}", both)

    ok = await naming.deregister_instance(DeregisterInstanceParam(service_name=service, ip="10.0.0.31", port=7001))
    say("deregister", "ok" if ok else "refused", "ok")
    await until(lambda: pushes[-1] == "10.0.0.33:7003")
    say("push-after-deregister", pushes[-1], "10.0.0.33:7003")
    listed = await naming.list_instances(ListInstanceParam(service_name=service, healthy_only=None))
    say("list-after-deregister", addrs(listed), "10.0.0.33:7003")

    services = await naming.list_services(ListServiceParam(page_size=100))
    say("list-services", "has grpc-py" if service in services.services and services.count >= len(services.services)
        else services, "has grpc-py")

    await naming.unsubscribe(subscription)
    http_instance("DELETE", service, "10.0.0.33", 7003)
    await close(naming)


async def hold():
    naming = await client()
    ok = await naming.register_instance(RegisterInstanceParam(service_name="grpc-py-killed", ip="10.0.0.32", port=7002))
    print("ready" if ok else "refused", flush=True)
    while True:
        await asyncio.sleep(1)


async def query(service):
    naming = await client()
    listed = await naming.list_instances(ListInstanceParam(service_name=service, subscribe=False, healthy_only=None))
    say("hosts", addrs(listed) or "(none)")
    await close(naming)


async def auth():
    naming = await client()
    ok = await naming.register_instance(RegisterInstanceParam(service_name="grpc-auth", ip="10.0.0.41", port=7201))
    listed = await naming.list_instances(ListInstanceParam(service_name="grpc-auth", subscribe=False, healthy_only=None))
    say("auth", addrs(listed) if ok else "refused")
    await naming.deregister_instance(DeregisterInstanceParam(service_name="grpc-auth", ip="10.0.0.41", port=7201))
    await close(naming)


async def main():
    if mode == "hold":
        await hold()
    elif mode == "auth":
        await asyncio.wait_for(auth(), 30)
    else:
        await asyncio.wait_for(run() if mode == "run" else query(sys.argv[5]), 30)


try:
    asyncio.run(main())
except BaseException as e:  # noqa: BLE001 - any failure is reported the same way
    say("error", f"{type(e).__name__}: {e}")
    sys.exit(1)
if wrong:
    say("error", "wrong: " + ",".join(wrong))
    sys.exit(1)
