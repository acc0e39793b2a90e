"""The agent's TCP ports (the web page and API, the metrics): bound once, before anything else
starts, and handed to their servers; a port that cannot be had is one line naming the process
that holds it (psutil, where this user may see it) and the key that chooses another."""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from agent.errors import AgentError

LISTEN_BACKLOG = 128


@dataclass(frozen=True, slots=True)
class Port:
    """One configured server port and the names people change it by."""

    role: str  # "api" or "metrics": the config section
    host: str
    port: int
    config: str = "the config"  # the file to edit, as the user named it

    @property
    def fix(self) -> str:
        return (f"choose another with [{self.role}] port in {self.config} or "
                f"INGEST_AGENT_{self.role.upper()}__PORT")


class PortUnavailable(AgentError):
    """A configured port cannot be listened on; the message says why and how to change it."""

    def __init__(self, message: str, *, taken: bool) -> None:
        super().__init__(message)
        self.taken = taken


def listen(port: Port) -> socket.socket:
    """A socket bound and listening on the port (0: a free one), ready for a server to take."""
    family = socket.AF_INET6 if ":" in port.host.strip("[]") else socket.AF_INET
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets that say so (else Nagle and
    # delayed ACKs add 40 ms to every response of the web page)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT, as servers do
        sock.bind((port.host.strip("[]"), port.port))
        sock.listen(LISTEN_BACKLOG)
    except OSError as exc:
        sock.close()
        raise _unavailable(port, exc) from None
    return sock


def try_port(port: Port) -> PortUnavailable | None:
    """Why ``run`` could not listen on the port now (``None``: it could); binds and lets go."""
    if port.port == 0:
        return None
    try:
        listen(port).close()
    except PortUnavailable as exc:
        return exc
    return None


def _unavailable(port: Port, exc: OSError) -> PortUnavailable:
    where = f"{port.host}:{port.port}"
    if exc.errno == errno.EADDRINUSE:
        holder = port_holder(port.port)
        by = f"by {holder}" if holder else "by another process (one this user cannot see)"
        return PortUnavailable(f"{port.role}: port {port.port} on {port.host} is in use {by}; "
                               f"{port.fix}", taken=True)
    if exc.errno == errno.EACCES:
        why = "ports below 1024 need root" if 0 < port.port < 1024 else "permission denied"
        return PortUnavailable(f"{port.role}: cannot listen on {where} ({why}); {port.fix}",
                               taken=False)
    if exc.errno == errno.EADDRNOTAVAIL:
        return PortUnavailable(f"{port.role}: cannot listen on {where}: {port.host} is not an "
                               f"address of this machine; set [{port.role}] host", taken=False)
    return PortUnavailable(f"{port.role}: cannot listen on {where}: {exc.strerror or exc}",
                           taken=False)


def port_holder(port: int) -> str | None:
    """``pid N (command line)`` of the process listening on a TCP port of this machine, when
    this user may see it."""
    import psutil

    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.Error, OSError):
        return None
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port \
                and conn.pid:
            try:
                command = " ".join(" ".join(psutil.Process(conn.pid).cmdline()).split())[:120]
            except psutil.Error:
                command = ""
            return f"pid {conn.pid}" + (f" ({command})" if command else "")
    return None
