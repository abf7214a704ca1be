"""Registers a hello service with py-eureka-client and keeps renewing.

usage: eureka_provider.py <eureka url> <port>
"""
import sys
import time

import py_eureka_client.eureka_client as eureka_client

from hello_server import serve

url, port = sys.argv[1], int(sys.argv[2])
serve(port, "hello from eureka provider")
eureka_client.init(eureka_server=url, app_name="py-provider", instance_ip="127.0.0.1", instance_host="127.0.0.1",
                   instance_port=port, renewal_interval_in_secs=1, duration_in_secs=3)
print("registered", flush=True)
while True:
    time.sleep(1)
