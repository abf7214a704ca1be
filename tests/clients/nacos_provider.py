"""Registers a hello service with nacos-sdk-python's HTTP NacosClient, beating every second.

usage: nacos_provider.py <host:port> <port>
The metadata declares the lease: unhealthy and deleted 3 s after the last beat.
"""
import sys
import time

import nacos

from hello_server import serve

server, port = sys.argv[1], int(sys.argv[2])
serve(port, "hello from nacos provider")
client = nacos.NacosClient(server, namespace="")
lease = {"preserved.heart.beat.interval": "1000", "preserved.heart.beat.timeout": "3000",
         "preserved.ip.delete.timeout": "3000"}
ok = client.add_naming_instance("nacos-provider", "127.0.0.1", port, cluster_name="DEFAULT", metadata=lease,
                                heartbeat_interval=1)
print("registered" if ok else "refused", flush=True)
while True:
    time.sleep(1)
