"""The metrics server: /metrics for Prometheus, /healthz (alive) and /readyz (ready), stdlib HTTP."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import urlparse

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from agent.health import HealthChecker


class MetricsServer:
    """Serves one registry and one health checker on a listening socket (``agent.listeners``)
    in a daemon thread."""

    def __init__(self, registry: CollectorRegistry, health: HealthChecker,
                 listener: socket.socket) -> None:
        handler = _make_handler(registry, health)
        # One thread: scrapes and probes are tiny, and the queue then needs one connection.
        self.server = HTTPServer(listener.getsockname()[:2], handler, bind_and_activate=False)
        self.server.socket.close()
        self.server.socket = listener
        self.server.server_address = listener.getsockname()
        host, port = listener.getsockname()[:2]
        self.server.server_name, self.server.server_port = str(host), int(port)
        self.thread = threading.Thread(target=self.server.serve_forever, name="metrics-http",
                                       daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def _make_handler(registry: CollectorRegistry, health: HealthChecker) -> type:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = urlparse(self.path).path
            if path == "/metrics":
                encoder, content_type = choose_encoder(self.headers.get("Accept") or "")
                self._send(200, encoder(registry), content_type)
            elif path == "/healthz":
                self._json(200, {"status": "alive"})
            elif path == "/readyz":
                ready, checks = health.ready()
                self._json(200 if ready else 503, {
                    "status": "ready" if ready else "not ready",
                    "checks": [c.to_dict() for c in checks],
                    "agent": health.identity,
                })
            else:
                self._json(404, {"error": "not found", "paths": ["/metrics", "/healthz",
                                                                   "/readyz"]})

        def _json(self, code: int, body: dict[str, Any]) -> None:
            self._send(code, json.dumps(body).encode(), "application/json")

        def _send(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet scrapes
            return

    return Handler
