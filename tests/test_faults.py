"""Resource faults on real file systems: a full disk, a database locked by another process, a
read-only done/ folder. Nothing may be lost; the agent keeps running.

The full disk and the read-only folder are real tmpfs mounts, so these tests run as root (CI
does; `make test` needs root for apt anyway).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.config.settings import load_config
from agent.files.locks import OWN_FILES
from agent.queue import open_queue
from agent.queue.base import JobStatus
from tests.helpers import AgentProcess, agent_config, cli, entries, free_port, wait_until

ROOT = Path(__file__).resolve().parent.parent


def _require_root() -> None:
    assert os.geteuid() == 0, "these fault tests mount tmpfs: run the suite as root (CI does)"


@pytest.fixture
def tmpfs() -> Iterator[Callable[[Path, str], Path]]:
    mounted: list[Path] = []

    def mount(where: Path, size: str) -> Path:
        _require_root()
        where.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                       check=True)
        mounted.append(where)
        return where

    yield mount
    for where in reversed(mounted):
        subprocess.run(["umount", "-l", str(where)], check=False)


def _config(base: Path, data_dir: Path, **sections: Any) -> Path:
    """Retries come fast (50 of them, 0.5–1 s apart), so a fault outlasts none of them."""
    return agent_config(base, agent={"data_dir": str(data_dir)},
                        queue={"max_retries": 50, "retry_backoff_seconds": 0.5,
                               "retry_backoff_max_seconds": 1},
                        health={"min_free_disk_bytes": 1048576}, **sections)


def _start(config: Path, port: int) -> subprocess.Popen[bytes]:
    return AgentProcess(config, env={"INGEST_AGENT_METRICS__PORT": str(port)}).proc


def _readyz(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)
    except OSError:
        return 0, {}


def _jobs(config: Path) -> list[dict[str, Any]]:
    out = cli(config, "jobs", "--json")
    return json.loads(out.stdout) if out.returncode == 0 else []


def _fill(volume: Path) -> Path:
    ballast = volume / "ballast"
    with open(ballast, "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * (1024 * 1024))
                fh.flush()
        except OSError:
            pass
    try:
        with open(ballast, "ab") as fh:  # the last few KiB too
            while True:
                fh.write(b"\0" * 4096)
                fh.flush()
    except OSError:
        pass
    return ballast


def _disk_full_logged(log: Path) -> bool:
    text = log.read_text() if log.exists() else ""
    return "database or disk is full" in text or "No space left on device" in text


def test_full_data_disk_retries_and_loses_nothing(tmp_path: Path, tmpfs: Callable) -> None:
    """The data folder fills up: jobs retry, /readyz reports the disk, nothing is lost; once
    space is freed the files are indexed and filed."""
    volume = tmpfs(tmp_path / "vol", "64m")
    config = _config(tmp_path, volume / "data")
    (tmp_path / "inbox").mkdir()
    port = free_port()
    agent = _start(config, port)
    log = config.with_suffix(".log")
    try:
        wait_until(lambda: _readyz(port)[0] == 200, 120, "the agent to be ready")
        ballast = _fill(volume)
        for i in range(3):
            (tmp_path / "inbox" / f"note{i}.txt").write_text(
                f"Note {i}: the cellar flooded again; pumps are running. " * 40)
        wait_until(lambda: _readyz(port)[0] == 503, 30, "readiness to fail on the full disk")
        failing = [c for c in _readyz(port)[1]["checks"] if not c["ok"]]  # type: ignore[index]
        assert "disk" in [c["name"] for c in failing]
        # The agent has met the full disk (an error logged) and still answers after it.
        wait_until(lambda: _disk_full_logged(log), 60, "the agent to meet the full disk")
        assert _readyz(port)[0] == 503
        assert agent.poll() is None, "the agent must keep running on a full disk"
        assert not list((tmp_path / "done").glob("note*")), "nothing can be indexed yet"
        ballast.unlink()
        wait_until(lambda: len(list((tmp_path / "done").glob("note*"))) == 3, 120,
              "the files to be filed once space is back")
        wait_until(lambda: _readyz(port)[0] == 200, 30, "readiness to recover")
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=60)
    jobs = _jobs(config)
    assert sorted(j["status"] for j in jobs) == ["completed"] * 3
    text = log.read_text()
    assert "database or disk is full" in text or "No space left on device" in text
    assert ": recovered" in text, "the loop that met the full disk says it is back"
    assert entries(tmp_path / "processing") == []
    # One line per change of state, not one per try: no error is logged over and over.
    errors = Counter((e["event"], e.get("error")) for e in map(json.loads, (
        line for line in text.splitlines() if line.startswith("{"))) if e["level"] == "error")
    assert max(errors.values(), default=0) <= 2, errors.most_common(3)


def test_a_model_copy_cut_off_by_a_full_disk_leaves_nothing_behind(
        tmp_path: Path, tmpfs: Callable) -> None:
    """The first start copies the 23 MB model into a data folder with 8 MB free: the agent
    stops with one line naming the folder and the size, and no model.onnx.tmp stays to fill
    the disk."""
    volume = tmpfs(tmp_path / "vol", "8m")
    config = _config(tmp_path, volume / "data")
    (tmp_path / "inbox").mkdir()
    out = cli(config, "run", "--drain", timeout=120)
    assert out.returncode != 0
    said = out.stdout + out.stderr
    assert "cannot place the model" in said and "No space left on device" in said, said[-2000:]
    assert not [p for p in volume.rglob("*") if p.name.endswith(".tmp")]


def test_index_locked_longer_than_busy_timeout_is_retried(tmp_path: Path) -> None:
    """Another process holds the index's write lock for 4 s (busy timeout 0.5 s): the job is
    retried, not failed, and completes when the lock goes."""
    config = _config(tmp_path, tmp_path / "data", index={"busy_timeout_seconds": 0.5})
    (tmp_path / "inbox").mkdir()
    settings = load_config(config, environ={})
    from agent.pipeline.store.sqlite import SQLiteIndex

    SQLiteIndex(settings.index_path).close()
    port = free_port()
    agent = _start(config, port)
    locker = sqlite3.connect(settings.index_path, isolation_level=None)
    try:
        wait_until(lambda: _readyz(port)[0] == 200, 120, "the agent to be ready")
        locker.execute("BEGIN EXCLUSIVE")
        (tmp_path / "inbox" / "locked.txt").write_text("Waiting for the lock to go away. " * 20)
        wait_until(lambda: any(j["retries"] >= 1 for j in _jobs(config)), 60, "a retry")
        locker.execute("COMMIT")
        wait_until(lambda: [j["status"] for j in _jobs(config)] == ["completed"], 60, "completion")
    finally:
        locker.close()
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=60)
    (job,) = _jobs(config)
    assert job["retries"] >= 1 and (tmp_path / "done" / "locked.txt").is_file()


def test_queue_locked_by_another_process_loses_nothing(tmp_path: Path) -> None:
    """The queue database is locked past its 10 s busy timeout: the agent logs, keeps running
    and queues and processes the file once the lock is gone."""
    config = _config(tmp_path, tmp_path / "data")
    log = config.with_suffix(".log")
    (tmp_path / "inbox").mkdir()
    port = free_port()
    agent = _start(config, port)
    settings = load_config(config, environ={})
    wait_until(lambda: _readyz(port)[0] == 200, 120, "the agent to be ready")
    locker = sqlite3.connect(settings.queue_path, isolation_level=None)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        (tmp_path / "inbox" / "patient.txt").write_text("I can wait for the queue. " * 20)
        # Held past the busy timeout: the agent's write gave up (logged) and it runs on.
        wait_until(lambda: "database is locked" in log.read_text(), 60,
                   "the agent to give up waiting for the lock")
        assert agent.poll() is None
        locker.execute("COMMIT")
        wait_until(lambda: (tmp_path / "done" / "patient.txt").is_file(), 60, "the file in done/")
    finally:
        locker.close()
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=60)
    with open_queue(settings) as q:
        assert [j.status for j in q.list_jobs()] == [JobStatus.COMPLETED]
    assert "database is locked" in log.read_text()


def test_read_only_done_folder_fails_the_job_without_losing_the_file(
        tmp_path: Path, tmpfs: Callable) -> None:
    """done/ turns read-only under a running agent: the move is retried, then the job fails with
    the reason and the file waits in failed/ beside its .error.json."""
    done = tmpfs(tmp_path / "done", "1m")
    config = _config(tmp_path, tmp_path / "data")
    config.write_text(config.read_text().replace("max_retries = 50", "max_retries = 1"))
    (tmp_path / "inbox").mkdir()
    port = free_port()
    agent = _start(config, port)
    try:
        wait_until(lambda: _readyz(port)[0] == 200, 120, "the agent to be ready")
        subprocess.run(["mount", "-o", "remount,ro", str(done)], check=True)
        (tmp_path / "inbox" / "stuck.txt").write_text("Nowhere to go but failed/. " * 20)
        wait_until(lambda: [j["status"] for j in _jobs(config)] == ["failed"], 60, "the job to fail")
        assert agent.poll() is None
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=60)
    (job,) = _jobs(config)
    assert "Read-only file system" in job["message"] and job["attempts"] == 2
    assert (tmp_path / "failed" / "stuck.txt").read_text().startswith("Nowhere to go")
    report = json.loads((tmp_path / "failed" / "stuck.txt.error.json").read_text())
    assert report["stage"] == "done" and "Read-only" in report["error"]


def test_an_upload_onto_a_full_disk_is_507_try_again_and_leaves_nothing(
        tmp_path: Path, tmpfs: Callable) -> None:
    """The inbox's disk (a 2 MB tmpfs) has no room for a 4 MB upload: the API answers 507 with
    Retry-After, saying the disk is full (not "malformed multipart body"), no partial file is
    left in processing/, and a small upload then goes through."""
    import httpx

    root = tmpfs(tmp_path / "box", "2m")
    port = free_port()
    config = agent_config(tmp_path, agent={"data_dir": str(tmp_path / "data")},
                          inbox={"path": str(root / "inbox")},
                          api={"enabled": True, "port": port})
    agent = AgentProcess(config).ready()
    try:
        url = f"http://127.0.0.1:{port}/api/v1/upload"
        full = httpx.post(url, files={"file": ("big.bin", os.urandom(4 * 1024 * 1024))},
                          timeout=60)
        assert full.status_code == 507, full.text
        assert "no space left" in full.json()["detail"] and "try again" in full.json()["detail"]
        assert full.headers["Retry-After"].isdigit()
        assert [n for n in os.listdir(root / "processing") if n not in OWN_FILES] == []
        small = httpx.post(url, files={"file": ("small.txt", b"room for this one\n")}, timeout=60)
        assert small.status_code == 201, small.text
    finally:
        assert agent.stop() == 0
