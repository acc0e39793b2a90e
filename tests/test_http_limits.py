"""The web page's server under load an attacker on the same machine can make (issue 42 items 2
and 13), on the real agent over real sockets: connections past the limit, requests whose
headers never finish, an upload at a byte at a time, and hundreds of held long polls.

The agent runs with a lowered descriptor limit (RLIMIT_NOFILE 400) so that exhaustion is
reachable in a test; the scripted pipeline stands in where what is indexed is beside the point.
"""

from __future__ import annotations

import asyncio
import select
import socket
import time
from pathlib import Path

import httpx
import psutil

from agent.web.changes import MAX_WAITING
from tests.helpers import (
    SCRIPTED,
    AgentProcess,
    agent_config,
    entries,
    free_port,
    scaled,
    wait_until,
)

HEADER_TIMEOUT = 2.0
HALF_REQUEST = b"GET /api/v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


def _closed_by_server(sock: socket.socket) -> bool:
    """Whether the server has closed its side (EOF or reset is readable at once)."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        return sock.recv(4096) == b""
    except OSError:
        return True


def _open_half_requests(port: int, count: int) -> list[socket.socket]:
    opened = []
    for _ in range(count):
        sock = socket.socket()
        sock.settimeout(2)
        try:
            sock.connect(("127.0.0.1", port))
            sock.sendall(HALF_REQUEST)
        except OSError:
            sock.close()
            continue
        opened.append(sock)
    return opened


def test_idle_connections_cannot_take_every_descriptor(tmp_path: Path) -> None:
    """500 half-sent requests against an agent allowed 400 descriptors: those past the
    connection limit are closed on arrival, the rest after the header timeout; meanwhile a
    dropped file is processed and /healthz answers; the limit is logged once, never a
    "Too many open files"; afterwards the API answers. An upload sent a byte at a time is
    cut within two windows. (Before: every descriptor taken, the watcher unable to list,
    thousands of tracebacks a second, nothing ever cut.)"""
    port, metrics = free_port(), free_port()
    config = agent_config(tmp_path, api={"enabled": True, "port": port,
                                         "header_timeout_seconds": HEADER_TIMEOUT},
                          metrics={"port": metrics})
    agent = AgentProcess(config, pipeline=SCRIPTED, max_descriptors=400).ready()
    url = f"http://127.0.0.1:{port}"
    held: list[socket.socket] = []
    try:
        held = _open_half_requests(port, 500)
        (tmp_path / "inbox" / "during.txt").write_text("dropped while the sockets are held\n")
        wait_until(lambda: (tmp_path / "done" / "during.txt").is_file(), 60,
                   "the file dropped during the flood to be filed")
        assert httpx.get(f"http://127.0.0.1:{metrics}/healthz", timeout=10).status_code == 200
        wait_until(lambda: all(_closed_by_server(s) for s in held), 10 * HEADER_TIMEOUT,
                   "every half-sent request to be closed by the server")
        assert httpx.get(f"{url}/api/v1/jobs", timeout=10).status_code == 200

        slow = socket.create_connection(("127.0.0.1", port))
        slow.sendall(b"POST /api/v1/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: multipart/form-data; boundary=cut\r\n"
                     b"Content-Length: 100000\r\n\r\n--cut\r\nContent-Disposition: "
                     b'form-data; name="file"; filename="slow.txt"\r\n\r\n')
        started = time.monotonic()

        def trickled_until_cut() -> bool:
            try:
                slow.sendall(b"x")
            except OSError:
                return True
            return _closed_by_server(slow)

        wait_until(trickled_until_cut, 10 * HEADER_TIMEOUT, "the slow upload to be cut",
                   interval=0.5)
        assert time.monotonic() - started >= HEADER_TIMEOUT * 0.9, "not cut before a window"
        slow.close()
    finally:
        for sock in held:
            sock.close()
        assert agent.stop() == 0
    text = agent.text()
    assert "Too many open files" not in text
    limit_lines = [e for e in agent.logs() if e["event"].startswith("connection limit reached")]
    assert 1 <= len(limit_lines) <= 3, limit_lines  # once per change, not once per accept
    assert len(agent.logs()) < 200, "the log stays readable"
    assert any(e["event"] == "upload too slow; connection closed" for e in agent.logs())
    assert entries(tmp_path / "processing") == [] and entries(tmp_path / "inbox") == [], \
        "the cut upload left nothing behind"


def test_held_long_polls_share_one_wait_and_are_capped(tmp_path: Path) -> None:
    """MAX_WAITING + 50 open job lists wait for a change: the 50 past the cap are told to come
    back (503, Retry-After); the waiting ones cost the agent next to no CPU; one dropped file
    answers every one of them."""
    port = free_port()
    config = agent_config(tmp_path, api={"enabled": True, "port": port})
    agent = AgentProcess(config, pipeline=SCRIPTED).ready()
    url = f"http://127.0.0.1:{port}"
    try:
        seen = httpx.get(f"{url}/jobs").headers["X-Generation"]
        process = psutil.Process(agent.pid)

        async def hold() -> tuple[list[int], float]:
            limits = httpx.Limits(max_connections=MAX_WAITING + 100)
            async with httpx.AsyncClient(base_url=url, limits=limits,
                                         timeout=scaled(60)) as client:
                polls = [asyncio.create_task(client.get(f"/jobs?rows=1&seen={seen}"))
                         for _ in range(MAX_WAITING + 50)]
                deadline = time.monotonic() + scaled(30)
                while sum(p.done() for p in polls) < 50 and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                await asyncio.sleep(1)  # the rest have settled into their wait
                before = process.cpu_times()
                await asyncio.sleep(3)
                after = process.cpu_times()
                cpu = (after.user - before.user) + (after.system - before.system)
                (tmp_path / "inbox" / "wake.txt").write_text("a change for every open list\n")
                answers = await asyncio.gather(*polls)
            return [a.status_code for a in answers], cpu

        codes, cpu = asyncio.run(hold())
        assert codes.count(503) == 50 and codes.count(200) == MAX_WAITING, codes
        assert cpu < 0.5, f"{cpu:.2f} s of CPU in 3 s while {MAX_WAITING} polls waited"
    finally:
        assert agent.stop() == 0
