"""The seeds' Python service, without a registry library.

A plain http.server app: `GET /health` answers `UP`, every other GET answers
`[GET] python server on port <port>: <path>`. `janus agent` registers it while
/health passes and deregisters it when it dies (see README.md here).

    python3 examples/agent/hello.py 8080
"""

import http.server
import sys

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8080


class Handler(http.server.BaseHTTPRequestHandler):
    # Keep-alive, so that the agent's proxy reuses its connections.
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path == "/health":
            body = b"UP"
        else:
            body = f"[GET] python server on port {PORT}: {self.path}".encode()
        self.send_response(200)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    print(f"hello listening on 127.0.0.1:{PORT}", flush=True)
    http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
