"""Service operations: the systemd unit, the notify protocol, config reload, operator commands."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from agent.cli import cli
from agent.config.settings import load_config
from agent.ops.maintenance import parse_age
from agent.ops.reload import changed_keys, needs_restart
from agent.ops.systemd import Notifier
from agent.queue import open_queue
from agent.queue.base import JobStatus
from tests.helpers import AgentProcess, agent_config, claim_next, scaled

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "systemd" / "ingest-agent.service"
SCRIPTED = "tests.pipelines:build"


def _unit_for_this_machine(tmp_path: Path) -> Path:
    """The shipped unit with ExecStart pointing at this venv's ingest-agent."""
    exe = Path(sys.executable).parent / "ingest-agent"
    assert exe.is_file(), f"{exe} missing: install the project first"
    unit = tmp_path / "ingest-agent.service"
    unit.write_text(UNIT.read_text().replace("/opt/ingest-agent/.venv/bin/ingest-agent", str(exe)))
    return unit


def test_unit_verifies_cleanly(tmp_path: Path) -> None:
    """systemd-analyze verify: exit 0 and nothing on stderr (it only warns on bad keys)."""
    tool = shutil.which("systemd-analyze")
    assert tool, "systemd-analyze is needed (Debian package systemd)"
    proc = subprocess.run([tool, "verify", str(_unit_for_this_machine(tmp_path))],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def test_unit_is_hardened(tmp_path: Path) -> None:
    """systemd-analyze security --offline: overall exposure at most 2.0."""
    tool = shutil.which("systemd-analyze")
    assert tool
    proc = subprocess.run([tool, "security", "--offline=true",
                           str(_unit_for_this_machine(tmp_path))], capture_output=True, text=True)
    match = re.search(r"Overall exposure level for .*: (\d+\.\d+)", proc.stdout)
    assert match, proc.stdout + proc.stderr
    score = float(match.group(1))
    print(f"systemd-analyze security exposure: {score}")
    assert score <= 2.0


def test_unit_settings_match_the_agent() -> None:
    """Type=notify with a watchdog, stop timeout above the default grace period."""
    text = UNIT.read_text()
    assert "Type=notify" in text and "WatchdogSec=" in text and "Restart=on-failure" in text
    found = re.search(r"TimeoutStopSec=(\d+)", text)
    assert found is not None, "the unit sets TimeoutStopSec"
    stop = int(found.group(1))
    grace = load_config(None, environ={}).processing.shutdown_grace_seconds
    assert stop > grace
    for name in ("ingest-agent.sysusers", "ingest-agent.tmpfiles"):
        assert (ROOT / "systemd" / name).is_file()


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(60)
    yield sock, path
    sock.close()


def _messages(sock: socket.socket, until: str, timeout: float = 90) -> list[dict[str, str]]:
    got: list[dict[str, str]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = sock.recv(4096).decode()
        fields = dict(line.split("=", 1) for line in data.split("\n") if "=" in line)
        got.append(fields)
        if until in fields:
            return got
    raise AssertionError(f"no {until} within {timeout} s: {got}")


def _config(tmp_path: Path, extra: str = "") -> Path:
    config = agent_config(tmp_path, inbox={"name": "docs", "path": "docs/inbox"},
                          processing={"shutdown_grace_seconds": 2})
    config.write_text(config.read_text() + extra)
    return config


def test_notify_protocol_ready_watchdog_stopping(tmp_path: Path,
                                                 notify_socket: tuple[socket.socket, str]) -> None:
    """Under a real NOTIFY_SOCKET: READY=1 with a status, WATCHDOG=1 pings, STOPPING=1."""
    sock, path = notify_socket
    env = {**os.environ, "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"}
    proc = subprocess.Popen([sys.executable, "-m", "agent", "--config", str(_config(tmp_path)),
                             "run", f"--pipeline={SCRIPTED}"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ready = _messages(sock, "READY")[-1]
        assert ready["READY"] == "1" and "due" in ready["STATUS"]
        assert ready["MAINPID"] == str(proc.pid)
        pings = _messages(sock, "WATCHDOG", timeout=10)
        assert pings[-1]["WATCHDOG"] == "1"
        proc.send_signal(signal.SIGTERM)
        assert _messages(sock, "STOPPING", timeout=30)[-1]["STOPPING"] == "1"
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()


def test_watchdog_pings_stop_while_unhealthy(tmp_path: Path,
                                             notify_socket: tuple[socket.socket, str]) -> None:
    """No WATCHDOG=1 is sent while the health predicate is false, so systemd restarts a hung agent."""
    sock, path = notify_socket
    healthy = {"ok": True}
    asked = threading.Semaphore(0)

    def predicate() -> bool:
        answer = healthy["ok"]
        asked.release()
        return answer

    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"})
    notifier.start_watchdog(predicate, lambda: "testing")
    try:
        sock.settimeout(scaled(5))
        assert b"WATCHDOG=1" in sock.recv(4096)
        healthy["ok"] = False
        while asked.acquire(blocking=False):  # the loop's answers so far, maybe "healthy"
            pass
        assert asked.acquire(timeout=scaled(10)), "the loop asks again"
        sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while True:  # pings of a round that read "healthy" before the switch
                sock.recv(4096)
        for _ in range(2):  # two more rounds, each answered "unhealthy", the first of them done
            assert asked.acquire(timeout=scaled(10)), "the loop keeps asking"
        with pytest.raises(BlockingIOError):
            sock.recv(4096)
    finally:
        notifier.close()


def test_abstract_notify_socket_address() -> None:
    """'@name' addresses the abstract namespace; no NOTIFY_SOCKET means a quiet no-op."""
    assert Notifier({"NOTIFY_SOCKET": "@ingest/notify"}).address == "\0ingest/notify"
    quiet = Notifier({})
    assert not quiet.enabled and quiet.send("READY=1") is False


def test_reload_diff_sorts_keys() -> None:
    """Inbox and retry changes apply in place; ports and paths need a restart."""
    old = load_config(None, environ={"INGEST_AGENT_INBOX__0__NAME": "a",
                                     "INGEST_AGENT_INBOX__0__PATH": "/x/in"})
    new = load_config(None, environ={"INGEST_AGENT_INBOX__0__NAME": "a",
                                     "INGEST_AGENT_INBOX__0__PATH": "/x/in",
                                     "INGEST_AGENT_INBOX__0__SETTLE_SECONDS": "9",
                                     "INGEST_AGENT_QUEUE__MAX_RETRIES": "7",
                                     "INGEST_AGENT_METRICS__PORT": "9999"})
    keys = changed_keys(old, new)
    assert keys == ["inbox[a]", "metrics.port", "queue.max_retries"]
    assert needs_restart(keys) == ["metrics.port"]


def test_sighup_reloads_inboxes_and_rejects_a_bad_config(tmp_path: Path) -> None:
    """SIGHUP adds a new inbox without a restart; an invalid file is rejected and the agent
    keeps running on the old config; a port change is reported as needing a restart."""
    config = _config(tmp_path)
    agent = AgentProcess(config, pipeline=SCRIPTED).ready()
    try:
        config.write_text(config.read_text().replace("[api]\nport = 0", "[api]\nport = 8999")
                          + '[[inbox]]\nname = "scans"\npath = "scans/inbox"\n'
                          "settle_seconds = 0.2\n")
        agent.proc.send_signal(signal.SIGHUP)
        reloaded = agent.wait_log("config reloaded")
        assert reloaded["inboxes_rewatched"] == ["scans"]
        restart = agent.wait_log("some changes need a restart to apply")
        assert restart["keys"] == ["api.port"]
        (tmp_path / "scans" / "inbox" / "scan.txt").write_text("hello from a new inbox")
        agent.wait_log("job completed", file="scan.txt")
        assert (tmp_path / "scans" / "done" / "scan.txt").is_file()
        good = config.read_text()
        config.write_text(good + "[queue]\nmax_retries = -5\n")
        agent.proc.send_signal(signal.SIGHUP)
        rejected = agent.wait_log("config reload rejected; the running config stays")
        assert "queue.max_retries: must be ≥ 0" in rejected["error"]
        (tmp_path / "docs" / "inbox" / "still.txt").write_text("still running")
        agent.wait_log("job completed", file="still.txt")
    finally:
        assert agent.stop() == 0


def test_purge_vacuum_backup_and_parse_age(tmp_path: Path) -> None:
    """purge deletes old finished jobs (and done/ files if asked); backup copies both DBs."""
    assert parse_age("30d") == 30 * 86400 and parse_age("12h") == 43200 and parse_age("7") == 604800
    config = _config(tmp_path)
    settings = load_config(config, environ={})
    done = tmp_path / "docs" / "done"
    done.mkdir(parents=True)
    with open_queue(settings) as q:
        for i in range(3):
            job = q.enqueue_job(f"/x/{i}.txt", f"{i}.txt")
            claimed = claim_next(q)
            (done / f"{i}.txt").write_text("filed")
            q.update_job_status(job.job_id, "completed", lease_token=claimed.lease_token,
                                metadata={"done_path": str(done / f"{i}.txt")})
        q.enqueue_job("/x/pending.txt")
    runner = CliRunner()
    result = runner.invoke(cli, ["--config", str(config), "purge", "--older-than", "0s",
                                 "--done-files"], catch_exceptions=False)
    assert result.output.strip() == "deleted 3 job(s) and 3 file(s) in done/"
    assert list(done.iterdir()) == []
    with open_queue(settings) as q:
        assert [j.status for j in q.list_jobs()] == [JobStatus.QUEUED]
    assert runner.invoke(cli, ["--config", str(config), "vacuum"]).exit_code == 0
    backup = runner.invoke(cli, ["--config", str(config), "backup", str(tmp_path / "bk")])
    assert backup.exit_code == 0 and (tmp_path / "bk" / "queue.db").is_file()
    again = runner.invoke(cli, ["--config", str(config), "backup", str(tmp_path / "bk")])
    assert again.exit_code == 1 and "already exists" in again.output
    bad = runner.invoke(cli, ["--config", str(config), "purge", "--older-than", "soon"])
    assert bad.exit_code == 1 and "not a duration" in bad.output


def test_reindex_re_embeds_from_done(tmp_path: Path) -> None:
    """reindex embeds every document again from done/, keeping one document per content."""
    config = _config(tmp_path)
    inbox = tmp_path / "docs" / "inbox"
    inbox.mkdir(parents=True)
    (inbox / "a.txt").write_text("Bridges span rivers and valleys.")
    (inbox / "b.txt").write_text("Ferries cross the strait twice a day.")
    drained = subprocess.run([sys.executable, "-m", "agent", "--config", str(config), "run",
                              "--drain"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert drained.returncode == 0, drained.stdout + drained.stderr
    (tmp_path / "docs" / "done" / "b.txt").unlink()
    command = [sys.executable, "-m", "agent", "--config", str(config), "reindex"]
    piped = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert piped.returncode == 0, piped.stderr
    # Off a terminal, progress lines as it goes (the first before the model loads).
    lines = piped.stdout.splitlines()
    assert lines[0] == "reindex: 2 documents; loading the model", lines
    assert re.fullmatch(r"reindex: 1 of 2 documents \(50 %\) in [0-9.]+ s; last: [ab]\.txt",
                        lines[1]), lines
    assert re.fullmatch(r"reindex: 2 of 2 documents \(100 %\) in [0-9.]+ s; last: [ab]\.txt",
                        lines[2]), lines
    assert lines[3:] == ["re-embedded 1 document(s); 1 skipped (file no longer in done/)"]
    # On a terminal (24 rows of 80 columns, as a bare pty has none), a bar.
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    on_terminal = subprocess.run(command, cwd=ROOT, stdout=follower, stderr=follower,
                                 timeout=300)
    os.close(follower)
    shown = b""
    with contextlib.suppress(OSError):
        while chunk := os.read(leader, 65536):
            shown += chunk
    os.close(leader)
    assert on_terminal.returncode == 0, shown
    assert re.search(rb"reindex: 100%\|[^|]+\| 2/2 ", shown), shown
    assert b"re-embedded 1 document(s); 1 skipped" in shown
    from agent.pipeline.store.sqlite import SQLiteIndex

    index = SQLiteIndex(load_config(config, environ={}).index_path)
    assert index.counts()["documents"] == 2 and index.integrity_problems() == []
    index.close()
