"""Lists, calls, subscribes to and deregisters through nacos-sdk-python's HTTP NacosClient.

usage: nacos_consumer.py <host:port>
Prints one line per check: "<name> ok" or "<name> FAILED: <why>".
"""
import sys
import time
import urllib.request

import nacos
from nacos.listener import SubscribeListener

client = nacos.NacosClient(sys.argv[1], namespace="")


def report(name, ok, why=""):
    print(f"{name} ok" if ok else f"{name} FAILED: {why}", flush=True)


hosts = client.list_naming_instance("nacos-provider", healthy_only=True)["hosts"]
report("nacos-list", len(hosts) == 1, hosts)
answer = urllib.request.urlopen(f"http://{hosts[0]['ip']}:{hosts[0]['port']}/hello", timeout=5).read().decode()
report("nacos-call", answer == "hello from nacos provider", answer)

events = []
client.subscribe([SubscribeListener(lambda event, instance: events.append((event, instance.instance["port"])), "probe")],
                 1, "nacos-provider")
time.sleep(1.5)
client.add_naming_instance("nacos-provider", "127.0.0.1", 1, cluster_name="DEFAULT")
deadline = time.time() + 10
while time.time() < deadline and not any(port == 1 for _, port in events):
    time.sleep(0.2)
report("nacos-subscribe", any(port == 1 for _, port in events), events)
client.unsubscribe("nacos-provider")
client.remove_naming_instance("nacos-provider", "127.0.0.1", 1, cluster_name="DEFAULT")
left = client.list_naming_instance("nacos-provider")["hosts"]
report("nacos-deregister", [h["port"] for h in left] != [] and all(h["port"] != 1 for h in left), left)
client.stop_subscribe()
