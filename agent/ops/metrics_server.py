"""The metrics server: /metrics for Prometheus, /healthz (alive) and /readyz (ready), stdlib HTTP."""

from __future__ import annotations

import json
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from agent.ops.health import HealthChecker

#: Seconds a client has to send its request before the connection is dropped
REQUEST_TIMEOUT = 5.0
#: Connections served at once; one more is closed at once rather than queued behind them
MAX_CONNECTIONS = 64


class _BoundedThreadingServer(ThreadingHTTPServer):
    """A thread per connection, at most ``MAX_CONNECTIONS`` of them: an idle or slow client
    holds its own thread until ``REQUEST_TIMEOUT``, never the scrape or probe behind it."""

    block_on_close = False  # stop() does not wait for a client that sends nothing

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a client that hung up or timed out is not the agent's error


class MetricsServer:
    """Serves one registry and one health checker on a listening socket (``agent.ops.listeners``):
    each connection on its own short-lived thread, so one socket cannot blind Prometheus or
    the probes."""

    def __init__(self, registry: CollectorRegistry, health: HealthChecker,
                 listener: socket.socket) -> None:
        self.answers = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metrics-answer")
        handler = _make_handler(registry, health, self.answers)
        self.server = _BoundedThreadingServer(listener.getsockname()[:2], handler,
                                              bind_and_activate=False)
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
        self.answers.shutdown(wait=False, cancel_futures=True)


def _answer(registry: CollectorRegistry, health: HealthChecker, path: str,
            accept: str) -> tuple[int, bytes, str]:
    """The status, body and content type for one GET (run on the server's one answer thread)."""
    if path == "/metrics":
        encoder, content_type = choose_encoder(accept)
        return 200, encoder(registry), content_type
    if path == "/healthz":
        return _json(200, {"status": "alive"})
    if path == "/readyz":
        ready, checks = health.ready()
        return _json(200 if ready else 503, {
            "status": "ready" if ready else "not ready",
            "checks": [c.to_dict() for c in checks],
            "agent": health.identity,
        })
    return _json(404, {"error": "not found", "paths": ["/metrics", "/healthz", "/readyz"]})


def _json(code: int, body: dict[str, Any]) -> tuple[int, bytes, str]:
    return code, json.dumps(body).encode(), "application/json"


def _make_handler(registry: CollectorRegistry, health: HealthChecker,
                  answers: ThreadPoolExecutor) -> type:
    class Handler(BaseHTTPRequestHandler):
        timeout = REQUEST_TIMEOUT  # the socket's timeout: a silent client is cut, not waited on

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = urlparse(self.path).path
            # The connection threads only talk; the answers are computed on one thread, so the
            # queue keeps one connection however many clients come and go.
            code, body, content_type = answers.submit(
                _answer, registry, health, path, self.headers.get("Accept") or "").result()
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet scrapes
            return

    return Handler
