"""The page behind a reverse proxy, and forwarded headers from anyone else (issue 42 item 11),
on the real agent over real HTTP. The proxy itself is played by the test client: it sends what
nginx's `proxy_set_header` lines send (Host rewritten to the backend, X-Forwarded-*, or RFC
7239 Forwarded), from 127.0.0.1, which the config trusts.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import AgentProcess, agent_config, free_port

TOKEN = "proxy-test-token-0123456789"
PUBLIC = "ingest.example.com"


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = tmp_path_factory.mktemp("proxied")
    port = free_port()
    config = agent_config(base, api={"enabled": True, "port": port, "token": TOKEN,
                                     "allowed_hosts": [PUBLIC, "127.0.0.1"],
                                     "trusted_proxies": ["127.0.0.1"]})
    agent = AgentProcess(config).ready()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        assert agent.stop() == 0


def _through_proxy(url: str, style: str) -> httpx.Client:
    """A client whose requests look like a proxy's: Host is the backend, the browser's host
    and scheme ride in forwarded headers, the browser's Origin is the public site."""
    forwarded = ({"X-Forwarded-Host": PUBLIC, "X-Forwarded-Proto": "https",
                  "X-Forwarded-For": "203.0.113.7"} if style == "x-forwarded" else
                 {"Forwarded": f'for="203.0.113.7:4711";proto=https;host={PUBLIC}'})
    return httpx.Client(base_url=url, headers={**forwarded, "Origin": f"https://{PUBLIC}"})


@pytest.mark.parametrize("style", ["x-forwarded", "forwarded"])
def test_forms_work_behind_a_trusted_proxy_that_rewrites_host_with_secure_cookies(
        proxied: str, style: str) -> None:
    """Log in through the proxy: the form's origin check passes (the proxy's forwarded host
    stands in for Host), and both cookies are Secure because the browser used https."""
    with _through_proxy(proxied, style) as client:
        form = client.get("/login")
        assert form.status_code == 200
        assert "secure" in form.headers["set-cookie"].lower()
        csrf = client.cookies["ingest_csrf"]
        # The browser sends its Secure cookie over https to the proxy, which passes it on
        logged = client.post("/login", data={"token": TOKEN, "csrf": csrf, "next": "/jobs"},
                             headers={"Cookie": f"ingest_csrf={csrf}"})
        assert logged.status_code == 303, logged.text
        session = next(c for c in logged.headers.get_list("set-cookie")
                       if c.startswith("ingest_session="))
        assert "secure" in session.lower() and "httponly" in session.lower()


def test_forwarded_headers_from_an_untrusted_peer_are_ignored(tmp_path: Path) -> None:
    """Without trusted_proxies the same forwarded host and scheme change nothing: the form
    from the "public" origin is refused, and no cookie is Secure over plain http."""
    port = free_port()
    agent = AgentProcess(agent_config(tmp_path, api={"enabled": True, "port": port,
                                                     "token": TOKEN,
                                                     "allowed_hosts": [PUBLIC, "127.0.0.1"]})).ready()
    try:
        with _through_proxy(f"http://127.0.0.1:{port}", "x-forwarded") as client:
            form = client.get("/login")
            assert form.status_code == 200 and "secure" not in form.headers["set-cookie"].lower()
            refused = client.post("/login", data={"token": TOKEN,
                                                  "csrf": client.cookies["ingest_csrf"]})
            assert refused.status_code == 403
    finally:
        assert agent.stop() == 0


def test_logout_from_another_origin_is_refused(proxied: str) -> None:
    """Issue 42 item 11: another port on the host tosses a CSRF cookie and posts /logout;
    the Origin names that port, so it is refused like every other cross-origin POST."""
    with httpx.Client(base_url=proxied) as client:
        client.cookies.set("ingest_csrf", "tossed")
        other = client.post("/logout", data={"csrf": "tossed"},
                            headers={"Origin": "http://127.0.0.1:1"})
        assert other.status_code == 403
        same = client.post("/logout", data={"csrf": "tossed"}, headers={"Origin": proxied})
        assert same.status_code == 303
