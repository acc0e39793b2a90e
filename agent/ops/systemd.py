"""systemd's notify protocol: READY=1, STATUS=…, WATCHDOG=1 and STOPPING=1 over $NOTIFY_SOCKET.

The protocol is one datagram per message on a unix socket (abstract when the name starts
with '@'); a few lines here rather than an unmaintained dependency.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Mapping

import structlog

log = structlog.get_logger("agent.ops.systemd")


class Notifier:
    """Sends notify messages when the agent runs under systemd; a no-op otherwise."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self.address = "\0" + address[1:] if address.startswith("@") else address
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        self.watchdog_seconds = (
            int(usec) / 1e6 if usec.isdigit() and (not pid or pid == str(os.getpid())) else None
        )
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, *lines: str) -> bool:
        if not self.enabled:
            return False
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self._sock.sendto("\n".join(lines).encode(), self.address)
        except OSError as exc:
            log.warning("systemd notify failed", error=str(exc))
            return False
        return True

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping")

    def start_watchdog(self, healthy: Callable[[], bool], status: Callable[[], str],
                       interval: float | None = None) -> None:
        """Ping WATCHDOG=1 at half the configured period, only while ``healthy()`` holds."""
        period = interval or (self.watchdog_seconds / 2 if self.watchdog_seconds else None)
        if not self.enabled:
            return

        def loop() -> None:
            every = period or 15.0
            while not self._stop.wait(every):
                if period and healthy():
                    self.send("WATCHDOG=1", f"STATUS={status()}")
                elif period:
                    log.error("unhealthy: withholding the systemd watchdog ping")
                else:
                    self.status(status())

        self._thread = threading.Thread(target=loop, name="systemd-notify", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
