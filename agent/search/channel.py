"""The agent's local search channel: a Unix socket in the data folder that only its owner can
reach, so ``ingest-agent search`` is answered by the running agent, which already holds the
model and the index's vectors, instead of loading them again (seconds) for every question.

One request per connection: a JSON line ``{"query": …, "k": …, …}`` (``SearchRequest``'s
fields) answered by one JSON line, either ``SearchResponse.to_dict()`` or ``{"error": …,
"usage": bool}``. The client half imports nothing heavy: it runs before the CLI has even
validated its config.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import SearchSocketUnavailable

if TYPE_CHECKING:
    import socketserver

SOCKET_NAME = "search.sock"
MAX_REQUEST_BYTES = 64 * 1024
CONNECT_TIMEOUT = 0.5
CONNECT_RETRY_SECONDS = 3.0
LISTEN_BACKLOG = 128  # a burst of CLI searches waits in line instead of being refused
ANSWER_TIMEOUT = 60.0


def socket_path(data_dir: Path) -> Path:
    return data_dir / SOCKET_NAME


def ask(path: Path, request: dict[str, Any], timeout: float = ANSWER_TIMEOUT) -> dict[str, Any]:
    """Send one request to the agent listening at ``path`` and return its answer."""
    try:
        st = os.stat(path)
    except OSError:
        raise SearchSocketUnavailable(f"no socket at {path}") from None
    if not stat.S_ISSOCK(st.st_mode):
        raise SearchSocketUnavailable(f"{path} is not a socket")
    sock = _connect(path)
    try:
        sock.settimeout(timeout)
        sock.sendall(json.dumps(request).encode() + b"\n")
        with sock.makefile("rb") as reader:
            line = reader.readline()
    finally:
        sock.close()
    if not line:
        raise SearchSocketUnavailable(f"the agent on {path} closed the connection without answering")
    answer: dict[str, Any] = json.loads(line)
    return answer


def _connect(path: Path, retry_for: float = CONNECT_RETRY_SECONDS) -> socket.socket:
    """A connection to the agent; a full backlog (a burst of searches) is tried again for a
    moment, since loading the model here instead costs seconds. Nothing listening fails at once."""
    import time

    deadline = time.monotonic() + retry_for
    delay = 0.01
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(CONNECT_TIMEOUT)
        try:
            sock.connect(str(path))
            return sock
        except OSError as exc:
            sock.close()
            busy = exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK) or isinstance(exc, TimeoutError)
            if not busy or time.monotonic() >= deadline:
                raise SearchSocketUnavailable(f"nothing answers on {path} ({exc.strerror or exc})"
                                        ) from None
        time.sleep(delay)
        delay = min(0.2, delay * 2)


def ask_running_agent(config_option: str | None, request: dict[str, Any]
                      ) -> dict[str, Any] | None:
    """The answer of the agent running with this config (``--config`` or the usual lookup),
    or None when none answers. Reads only the config's data folder, where the socket is: the
    agent validated the rest when it started. Says on stderr which config was used when none
    was named, as every read-only command does."""
    import sys

    from agent.config.file import data_dir_of, find_config_path

    config_path = find_config_path(config_option)
    data_dir = data_dir_of(config_path)
    if data_dir is None:
        return None
    try:
        answer = ask(socket_path(data_dir), request)
    except (SearchSocketUnavailable, OSError, ValueError):
        return None
    if config_option is None and "error" not in answer:
        print(f"ingest-agent: using {config_path}" if config_path else
              "ingest-agent: no --config given: using the built-in defaults", file=sys.stderr)
    return answer


class SearchSocketServer:
    """Serves ``answer(request dict) -> response dict`` on a Unix socket, one thread per
    connection. The socket is created mode 0600 and every peer's uid is checked (root and the
    agent's own user only)."""

    def __init__(self, path: Path, answer: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self.path = path
        self._answer = answer
        self._server: socketserver.ThreadingUnixStreamServer | None = None

    def start(self) -> None:
        """Bind (replacing a stale socket left by a killed agent: the data-dir lock says no
        other agent owns this folder) and serve in a background thread."""
        import socketserver
        import threading

        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.lstat(self.path).st_mode):
                self.path.unlink()
        owner = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                owner._handle(self)

        class Server(socketserver.ThreadingUnixStreamServer):
            request_queue_size = LISTEN_BACKLOG

        old_umask = os.umask(0o177)
        try:
            server = Server(str(self.path), Handler)
        finally:
            os.umask(old_umask)
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, name="search-socket",
                         kwargs={"poll_interval": 0.5}, daemon=True).start()

    def _handle(self, handler: socketserver.StreamRequestHandler) -> None:
        conn = handler.connection
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
        uid = int.from_bytes(creds[4:8], "little")
        if uid not in (0, os.getuid()):
            return
        conn.settimeout(10)
        line = handler.rfile.readline(MAX_REQUEST_BYTES + 1)
        try:
            if len(line) > MAX_REQUEST_BYTES:
                raise ValueError("request too large")
            answer = self._answer(json.loads(line))
        except Exception as exc:  # one bad request never stops the server
            from agent.errors import SearchUsageError

            answer = {"error": str(exc) or type(exc).__name__,
                      "usage": isinstance(exc, (SearchUsageError, ValueError, TypeError))}
        with contextlib.suppress(OSError):
            handler.wfile.write(json.dumps(answer).encode() + b"\n")

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
