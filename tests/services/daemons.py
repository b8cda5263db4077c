"""A tiny HTTP daemon for testing LocalDaemonService without the model server."""

from __future__ import annotations

import sys

from pydantic import Field

from shipyard.services import HTTPHealthCheck, LocalDaemonService, ServiceEndpoint

SCRIPT = r"""
import http.server, os, signal, subprocess, sys, time

port = int(sys.argv[1])
if os.environ.get("DAEMON_IGNORE_TERM"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if os.environ.get("DAEMON_FAIL"):
    print("daemon: cannot start, DAEMON_FAIL is set", flush=True)
    sys.exit(3)
if os.environ.get("DAEMON_CHILD"):
    # A "worker" in the same process group, holding the port like a server worker.
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok" if self.path == "/health" else b"no"
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        print("request", self.path, flush=True)

server = http.server.HTTPServer(("127.0.0.1", port), Handler)
print(f"daemon: listening on {port}", flush=True)
server.serve_forever()
"""


class EchoDaemon(LocalDaemonService):
    """Runs SCRIPT; healthy when GET /health answers 200."""

    endpoint: ServiceEndpoint = Field(
        default_factory=lambda: ServiceEndpoint(health_check=HTTPHealthCheck(path="/health"))
    )
    extra_env: dict[str, str] = Field(default_factory=dict)

    def command(self) -> list[str]:
        return [sys.executable, "-c", SCRIPT, str(self.endpoint.port)]

    def environment(self) -> dict[str, str]:
        return {**super().environment(), **self.extra_env}
