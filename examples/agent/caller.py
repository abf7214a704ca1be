"""Calls the `hello` service through the local `janus agent`: no registry
library, no address list, just HTTP to 127.0.0.1:15001/<service>/<path>.

The agent chooses a healthy instance, retries a failed GET on another one,
and skips instances that keep failing. Each line printed is the instance
that answered (the agent's `x-janus-instance` header) and the answer.

    python3 examples/agent/caller.py [proxy address] [count]
"""

import sys
import urllib.error
import urllib.request

PROXY = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:15001"
COUNT = int(sys.argv[2]) if len(sys.argv) > 2 else 1

for _ in range(COUNT):
    try:
        with urllib.request.urlopen(f"http://{PROXY}/hello/greeting", timeout=5) as answer:
            print(answer.headers["x-janus-instance"], answer.read().decode(), flush=True)
    except urllib.error.HTTPError as refused:
        print("error", refused.code, refused.read().decode().strip(), flush=True)
    except OSError as failed:
        print("error", failed, flush=True)
