"""Bounded HTTP connections for the web page and API: uvicorn's h11 protocol with a connection
limit, a deadline for each request's headers and a minimum upload rate.

uvicorn has no connection limit (``limit_concurrency`` answers 503 only once a request has
arrived, so idle sockets still pile up) and no header or body timeout: twenty thousand
half-sent requests took every descriptor of the agent, and a body sent at a byte a second was
never cut. Here the listening socket itself counts: a connection past ``max_connections`` is
closed (reset) the moment it is accepted, before asyncio makes a transport of it, so the
agent never holds more; a request whose headers are not complete within
``header_timeout`` is closed, and so is an upload slower than ``min_upload_rate`` bytes a
second over a window of the same length (unless the agent itself paused reading). The limit
stays below the process's descriptor limit, with ``RESERVED_DESCRIPTORS`` kept for the
watcher, the queue and the worker. Reaching the limit, and leaving it, is logged once each.
"""

from __future__ import annotations

import asyncio
import errno
import os
import resource
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Any

import structlog
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

RESERVED_DESCRIPTORS = 64
log = structlog.get_logger("agent.web")


def connection_limit(configured: int) -> int:
    """``configured``, lowered so that the descriptors open now and ``RESERVED_DESCRIPTORS``
    stay within the process's descriptor limit."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return configured
    try:
        open_now = len(os.listdir("/proc/self/fd"))
    except OSError:
        open_now = 64
    return max(8, min(configured, soft - open_now - RESERVED_DESCRIPTORS))


class AcceptErrors:
    """The event loop's handler for errors nobody awaits: a descriptor shortage on accept (the
    process short of descriptors for other reasons) is logged once per minute, where asyncio
    logs a traceback for every accept it retries; anything else goes to the default handler."""

    def __init__(self, every: float = 60.0) -> None:
        self.every = every
        self.last = float("-inf")
        self.count = 0

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE):
            self.count += 1
            now = time.monotonic()
            if now - self.last >= self.every:
                log.error("out of file descriptors: connections wait in the queue",
                          error=exc.strerror, times=self.count)
                self.last, self.count = now, 0
            return
        loop.default_exception_handler(context)


@dataclass
class Limits:
    """What every connection of one server shares: the limits, how many are open, and
    whether the limit was reached (logged once per change)."""

    max_connections: int
    header_timeout: float
    min_upload_rate: int
    open: int = 0
    full: bool = False
    refused: int = field(default=0)

    def note(self, full: bool) -> None:
        if full and not self.full:
            log.warning("connection limit reached; new connections are closed until some end",
                        limit=self.max_connections)
        elif self.full and not full:
            log.info("connections accepted again", limit=self.max_connections,
                     refused_meanwhile=self.refused)
            self.refused = 0
        self.full = full


REFUSALS_PER_CALL = 64  # then asyncio's accept loop gets a turn to serve the others


class LimitedListener(socket.socket):
    """The server's listening socket: ``accept`` hands asyncio at most ``max_connections``
    open connections and resets the rest on the spot (no descriptor is kept for them)."""

    limits: Limits

    @classmethod
    def wrap(cls, listener: socket.socket, limits: Limits) -> LimitedListener:
        wrapped = cls(listener.family, listener.type, listener.proto, fileno=listener.detach())
        wrapped.limits = limits
        return wrapped

    def accept(self) -> tuple[socket.socket, Any]:
        for _ in range(REFUSALS_PER_CALL):
            conn, address = super().accept()  # BlockingIOError: nothing waiting
            if self.limits.open < self.limits.max_connections:
                self.limits.open += 1
                self.limits.note(full=False)
                return conn, address
            self.limits.refused += 1
            self.limits.note(full=True)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
        raise BlockingIOError(errno.EAGAIN, "connections refused at the limit")


def bounded_protocol(limits: Limits) -> type[H11Protocol]:
    """An ``H11Protocol`` class that keeps ``limits`` (uvicorn's ``http=`` takes a class)."""

    class BoundedH11Protocol(H11Protocol):
        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._counted = True  # LimitedListener counted it on accept
            self._timed_cycle: Any = None
            self._body_bytes = 0
            self._timer: asyncio.TimerHandle | None = None
            self._await_headers()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._counted:
                self._counted = False
                limits.open -= 1
            self._cancel_timer()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            cycle = self.cycle
            if cycle is None:
                return
            if cycle is not self._timed_cycle:  # a new request's headers are in
                self._timed_cycle = cycle
                self._body_bytes = 0
                self._cancel_timer()
                if cycle.more_body:
                    self._timer = self.loop.call_later(limits.header_timeout,
                                                       self._check_upload, 0)
            self._body_bytes += len(data)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._await_headers()  # the next request on this connection

        def _await_headers(self) -> None:
            self._cancel_timer()
            self._timer = self.loop.call_later(limits.header_timeout, self._close_late)

        def _close_late(self) -> None:
            if self.cycle is self._timed_cycle and not self.transport.is_closing():
                self.transport.close()  # no complete request within the deadline

        def _check_upload(self, before: int) -> None:
            cycle = self.cycle
            if cycle is None or not cycle.more_body or self.transport.is_closing():
                return
            sent = self._body_bytes - before
            if not self.flow.read_paused and sent < limits.min_upload_rate * limits.header_timeout:
                log.info("upload too slow; connection closed",
                         client=":".join(map(str, self.client)) if self.client else None,
                         bytes_per_second=round(sent / limits.header_timeout))
                self.transport.close()
                return
            self._timer = self.loop.call_later(limits.header_timeout, self._check_upload,
                                               self._body_bytes)

        def _cancel_timer(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    return BoundedH11Protocol


class BoundedServer(uvicorn.Server):
    """uvicorn's server with :class:`AcceptErrors` as its event loop's error handler."""

    async def serve(self, sockets: list[Any] | None = None) -> None:
        asyncio.get_running_loop().set_exception_handler(AcceptErrors())
        await super().serve(sockets)
