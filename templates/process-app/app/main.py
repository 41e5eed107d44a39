#!/usr/bin/env python3
"""A small app for PROCESS_APP_RUNNER: one JSON line per reading on stdout, GET /health for the health check."""
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ.get("PORT", "8765"))
INTERVAL = float(os.environ.get("INTERVAL", "1"))


class Health(BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path == "/health"
        body = json.dumps({"status": "ok"} if ok else {"error": "not found"}).encode()
        self.send_response(200 if ok else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass  # stdout is for readings: each line becomes a log line


def main():
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # The runner stops the app with SIGTERM: leave cleanly.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(json.dumps({"event": "listening", "port": server.server_address[1]}), flush=True)
    seq = 0
    while True:
        seq += 1
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
        print(json.dumps({"event": "reading", "seq": seq, "load": round(load, 2), "time": time.time()}), flush=True)
        time.sleep(INTERVAL)


if __name__ == "__main__":
    main()
