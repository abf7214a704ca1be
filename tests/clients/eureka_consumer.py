"""Discovers PY-PROVIDER through py-eureka-client and calls it with do_service.

usage: eureka_consumer.py <eureka url>
"""
import sys
import time

import py_eureka_client.eureka_client as eureka_client

eureka_client.init(eureka_server=sys.argv[1], app_name="py-consumer", should_register=False, should_discover=True)
deadline = time.time() + 20
while True:
    try:
        print(eureka_client.do_service("PY-PROVIDER", "/hello"), flush=True)
        break
    except Exception:
        if time.time() > deadline:
            raise
        time.sleep(0.5)
eureka_client.stop()
