"""What a trusted reverse proxy says about the request it forwards, and nothing from anyone else.

Only a peer in ``api.trusted_proxies`` may tell the agent who the client is (``Forwarded:
for=`` or ``X-Forwarded-For``: the nearest address that is not itself a trusted proxy), how
the browser reached the proxy (``proto=`` / ``X-Forwarded-Proto``: https makes cookies
``Secure``) and the host name the browser used (``host=`` / ``X-Forwarded-Host``, which then
stands in for ``Host``, so a proxy that rewrites ``Host`` still passes the host allow-list and
the forms' origin check). From any other peer these headers are ignored: a local process
cannot dodge the wrong-token throttle by naming a new address each time.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_PAIR = re.compile(r'\s*([A-Za-z]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;,"]*)\s*')


def networks(entries: Iterable[str]) -> list[Network]:
    """``api.trusted_proxies`` as networks (an address is a network of one)."""
    return [ipaddress.ip_network(entry.strip("[]"), strict=False) for entry in entries]


def _address(text: str) -> str:
    """An address from a ``for=`` or ``X-Forwarded-For`` item, without port or brackets."""
    text = text.strip().strip('"')
    if text.startswith("["):
        return text[1:text.find("]")] if "]" in text else text[1:]
    if text.count(":") == 1:  # IPv4 with a port
        return text.split(":", 1)[0]
    return text


def _elements(value: str) -> list[dict[str, str]]:
    """RFC 7239 ``Forwarded``: one dict of lower-cased names per hop, nearest hop last."""
    hops = []
    for element in value.split(","):
        pairs = {}
        for part in element.split(";"):
            match = _PAIR.fullmatch(part)
            if match:
                pairs[match.group(1).lower()] = match.group(2).strip('"')
        hops.append(pairs)
    return hops


class ProxyHeaders:
    """ASGI middleware: for a request from a trusted proxy, the client, scheme and host it
    names replace its own; for anyone else, nothing changes."""

    def __init__(self, app: Any, trusted: list[Network]) -> None:
        self.app = app
        self.trusted = trusted

    def _trusted(self, host: str | None) -> bool:
        if not host:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.trusted)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        client = scope.get("client")
        if scope["type"] in ("http", "websocket") and self.trusted and client and \
                self._trusted(client[0]):
            self._apply(scope)
        await self.app(scope, receive, send)

    def _apply(self, scope: dict[str, Any]) -> None:
        headers: dict[bytes, list[str]] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name, []).append(value.decode("latin-1"))
        forwarded = _elements(", ".join(headers[b"forwarded"])) if b"forwarded" in headers \
            else []
        chain = [hop["for"] for hop in forwarded if "for" in hop] or [
            item for value in headers.get(b"x-forwarded-for", []) for item in value.split(",")]
        nearest = forwarded[-1] if forwarded else {}
        proto = nearest.get("proto") or _last(headers.get(b"x-forwarded-proto"))
        host = nearest.get("host") or _last(headers.get(b"x-forwarded-host"))
        for item in reversed(chain):  # the nearest address that is not one of our proxies
            address = _address(item)
            if address and not self._trusted(address):
                scope["client"] = (address, 0)
                break
        if proto and proto.strip().lower() in ("http", "https"):
            scope["scheme"] = proto.strip().lower()
        if host and host.strip():
            scope["headers"] = [(n, v) for n, v in scope["headers"] if n != b"host"] + [
                (b"host", host.strip().encode("latin-1"))]


def _last(values: list[str] | None) -> str | None:
    """The value the nearest proxy appended to a comma-separated header."""
    if not values:
        return None
    return ", ".join(values).split(",")[-1].strip() or None
