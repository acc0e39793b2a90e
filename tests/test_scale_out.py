"""Several agents, one workload: a real redis-server queue shared by two agent processes that
watch one inbox (poll mode, as on NFS). Each file is processed exactly once, by one of them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    SCRIPTED,
    AgentProcess,
    RedisServer,
    agent_config,
    cli,
    entries,
    wait_until,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    folder = tmp_path / "redis"
    folder.mkdir()
    server = RedisServer(folder)
    yield server
    server.stop()


def _agent_config(base: Path, name: str, redis_url: str, job_timeout: float = 30,
                  pg_dsn: str | None = None) -> Path:
    index = {"index": {"backend": "postgres", "dsn": pg_dsn}} if pg_dsn else {}
    return agent_config(
        base, name, agent={"data_dir": f"{name}-data"},
        inbox={"name": "shared", "path": "shared/inbox", "mode": "poll",
               "poll_interval_seconds": 0.3, "settle_seconds": 0.3},
        queue={"backend": "redis", "redis_url": redis_url, "redis_namespace": "two-agents",
               "job_timeout_seconds": job_timeout, "retry_backoff_seconds": 0.2}, **index)


def _start(config: Path, *args: str) -> subprocess.Popen[bytes]:
    pipeline = None
    if args and args[0].startswith("--pipeline="):
        pipeline, args = args[0].split("=", 1)[1], args[1:]
    return AgentProcess(config, *args, pipeline=pipeline).proc


def _jobs(config: Path) -> list[dict[str, Any]]:
    out = cli(config, "jobs", "--limit", "10000", "--json")
    return json.loads(out.stdout) if out.returncode == 0 else []


def _all_finished(config: Path) -> bool:
    jobs = _jobs(config)
    return bool(jobs) and all(j["status"] in ("completed", "failed", "timeout") for j in jobs)


def _errors_logged(config: Path) -> str:
    """The errors the agent has logged so far, one per line."""
    lines = config.with_suffix(".log").read_text().splitlines()
    return "\n".join(str(e.get("error")) for e in map(json.loads, (
        line for line in lines if line.startswith("{"))) if e.get("level") == "error")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _drop(inbox: Path, n: int, prefix: str = "doc", body: str = "") -> list[str]:
    names = []
    for i in range(n):
        name = f"{prefix}{i:03d}.txt"
        (inbox / name).write_text(body or f"Shared document {prefix} {i} about river ferries.\n")
        names.append(name)
    return names


def test_two_agents_share_one_inbox_and_process_each_file_once(
        tmp_path: Path, redis_server: RedisServer, pg_dsn: str) -> None:
    """Both agents see every file; each file gets one job, ends in done/ exactly once, and lands
    once in the shared Postgres index, searchable from either agent."""
    inbox = tmp_path / "shared" / "inbox"
    inbox.mkdir(parents=True)
    a = _agent_config(tmp_path, "a", redis_server.url, pg_dsn=pg_dsn)
    b = _agent_config(tmp_path, "b", redis_server.url, pg_dsn=pg_dsn)
    agents = [_start(a), _start(b)]
    try:
        names = _drop(inbox, 40)
        wait_until(lambda: len(list((tmp_path / "shared" / "done").glob("*.txt"))) == 40, 180,
              "all 40 files in done/")
        wait_until(lambda: _all_finished(a), 60, "every job to be finished")
    finally:  # once both agents have stopped no job can appear: a second one would be listed
        for proc in agents:
            _stop(proc)
    done = sorted(p.name for p in (tmp_path / "shared" / "done").iterdir())
    assert done == sorted(names), "each file exactly once, under its own name"
    jobs = _jobs(a)
    assert sorted(j["original_filename"] for j in jobs) == sorted(names)
    assert {j["status"] for j in jobs} == {"completed"}
    workers = {str(j["claimed_by"]).rsplit(":", 1)[0] for j in jobs}
    print(f"jobs per agent: { {w: sum(1 for j in jobs if str(j['claimed_by']).startswith(w)) for w in workers} }")
    from agent.pipeline.store.postgres import PostgresIndex

    index = PostgresIndex(pg_dsn)
    assert index.counts()["documents"] == 40 and index.integrity_problems() == []
    index.close()
    found = subprocess.run([sys.executable, "-m", "agent", "--config", str(b), "search",
                            "river ferries doc 7", "--json"], cwd=ROOT, capture_output=True,
                           text=True, timeout=120)
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["results"][0]["file"].startswith("doc")


def test_killed_agent_job_is_finished_by_the_other(tmp_path: Path,
                                                    redis_server: RedisServer) -> None:
    """kill -9 of one agent mid-job: after its lease the other reclaims the job and finishes.

    The job is a scripted pause (tests/pipelines.py), so its length does not depend on how
    busy the machine is: this is about leases, not embedding speed."""
    inbox = tmp_path / "shared" / "inbox"
    inbox.mkdir(parents=True)
    a = _agent_config(tmp_path, "a", redis_server.url, job_timeout=20)
    b = _agent_config(tmp_path, "b", redis_server.url, job_timeout=20)
    victim = _start(a, f"--pipeline={SCRIPTED}")
    survivor = None
    try:
        (inbox / "long.txt").write_text("SLEEP 2\n")
        wait_until(lambda: any(j["status"] == "processing" for j in _jobs(a)), 120, "a job in progress")
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
        survivor = _start(b, f"--pipeline={SCRIPTED}")
        wait_until(lambda: (tmp_path / "shared" / "done" / "long.txt").is_file(), 240,
              "the other agent to finish the job")
    finally:
        _stop(victim)
        if survivor is not None:
            _stop(survivor)
    (job,) = _jobs(b)
    assert job["status"] == "completed" and job["attempts"] == 2
    assert entries(tmp_path / "shared" / "processing") == []


def test_redis_restart_mid_run_loses_nothing(tmp_path: Path, redis_server: RedisServer) -> None:
    """redis-server stops and starts again (AOF everysec) while files arrive: all are filed."""
    inbox = tmp_path / "shared" / "inbox"
    inbox.mkdir(parents=True)
    config = _agent_config(tmp_path, "a", redis_server.url)
    agent = _start(config)
    try:
        first = _drop(inbox, 10, "before")
        wait_until(lambda: len(list((tmp_path / "shared" / "done").glob("before*"))) == 10, 120,
              "the first files")
        wait_until(lambda: _all_finished(config), 60, "the first jobs to be finished")
        redis_server.stop()  # SIGTERM: Redis writes its AOF out before it exits
        second = _drop(inbox, 10, "during")
        wait_until(lambda: "ConnectionError" in _errors_logged(config), 60,
                   "the agent to meet the outage")
        assert agent.poll() is None, "the agent must survive a Redis outage"
        redis_server.start()
        wait_until(lambda: len(list((tmp_path / "shared" / "done").glob("during*"))) == 10, 180,
              "the files dropped during the outage")
    finally:
        _stop(agent)
    jobs = _jobs(config)
    assert sorted(j["original_filename"] for j in jobs) == sorted(first + second)
    assert {j["status"] for j in jobs} == {"completed"}
