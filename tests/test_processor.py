"""The processor on real folders, a real SQLite queue and a real worker subprocess."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.config.settings import Settings, load_config
from agent.events import (
    EventBus,
    EventRecorder,
    JobFinished,
    JobRetried,
    JobTimedOut,
    StageTimed,
    WorkerStarted,
)
from agent.files.folders import build_inboxes, identify
from agent.processing.processor import Processor
from agent.processing.retry import retry_failed_job
from agent.queue import open_queue
from agent.queue.base import JobQueue, JobStatus
from tests.helpers import AgentProcess, agent_config, cli, entries, scaled, wait_until

SCRIPTED = "tests.pipelines:build"
ROOT = Path(__file__).resolve().parent.parent


def write_config(tmp_path: Path, **queue: object) -> Path:
    return agent_config(tmp_path, inbox={"name": "docs"}, queue=queue,
                        processing={"shutdown_grace_seconds": 1.0})


class Rig:
    """Settings, queue, folders and a processor with the scripted pipeline."""

    def __init__(self, tmp_path: Path, **queue: object) -> None:
        queue.setdefault("max_retries", 0)
        queue.setdefault("retry_backoff_seconds", 0.0)
        self.config = write_config(tmp_path, **queue)
        self.settings: Settings = load_config(self.config, environ={})
        self.boxes = {b.name: b for b in build_inboxes(self.settings)}
        for box in self.boxes.values():
            box.ensure()
        self.box = self.boxes["docs"]
        self.queue: JobQueue = open_queue(self.settings)
        self.bus = EventBus()
        self.events = EventRecorder()
        self.bus.subscribe_all(self.events)
        self.processor = Processor(self.settings, self.queue, self.boxes, self.bus,
                                   factory=SCRIPTED)

    def drop(self, name: str, content: str) -> str:
        path = self.box.inbox / name
        path.write_text(content)
        st = path.stat()
        job = self.queue.enqueue_job(str(path), name, {"size": st.st_size}, inbox="docs",
                                     content_key=identify("docs", name, st).key)
        return job.job_id

    def status(self, job_id: str) -> JobStatus:
        return self.queue.get_job_status(job_id).status

    def listing(self, folder: str) -> list[str]:
        return sorted(p.name for p in (self.box.inbox.parent / folder).iterdir())


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    made: list[Rig] = []

    def make(**queue: object) -> Rig:
        r = Rig(tmp_path, **queue)
        r.processor.start()
        made.append(r)
        return r

    yield make
    for r in made:
        r.processor.stop()
        r.queue.close()


def test_success_moves_file_to_done_and_completes(rig: Callable[..., Rig]) -> None:
    """A good file ends in done/ under its own name, the job completed with its result."""
    r = rig()
    job_id = r.drop("report.txt", "hello")
    assert r.processor.run_once()
    job = r.queue.get_job_status(job_id)
    assert job.status is JobStatus.COMPLETED and job.progress == 100
    assert job.metadata["document_id"].startswith("doc-")
    assert r.listing("done") == ["report.txt"]
    assert r.listing("processing") == [] and r.listing("inbox") == []
    finished = r.events.of(JobFinished)
    assert [e.outcome for e in finished] == ["completed"]
    assert r.events.of(StageTimed)[0].stage == "extract"


def test_permanent_error_goes_to_failed_with_sidecar(rig: Callable[..., Rig]) -> None:
    """A permanent error fails at once: file in failed/, reason beside it, no retry."""
    r = rig(max_retries=3)
    job_id = r.drop("bad.txt", "PERMANENT")
    r.processor.run_once()
    job = r.queue.get_job_status(job_id)
    assert job.status is JobStatus.FAILED and job.retries == 0
    assert r.listing("failed") == ["bad.txt", "bad.txt.error.json"]
    report = json.loads((r.box.failed / "bad.txt.error.json").read_text())
    assert report["job_id"] == job_id and report["stage"] == "extract"
    assert report["error_type"] == "PermanentError" and report["attempts"] == 1
    assert report["error"] == "scripted permanent failure" and report["inbox"] == "docs"
    assert job.metadata["failed_path"] == str(r.box.failed / "bad.txt")


def test_transient_error_is_retried_then_failed(rig: Callable[..., Rig]) -> None:
    """A transient error is retried up to max_retries; the file waits in processing/ meanwhile."""
    r = rig(max_retries=1)
    job_id = r.drop("flaky.txt", "TRANSIENT")
    r.processor.run_once()
    assert r.status(job_id) is JobStatus.QUEUED
    assert len(r.listing("processing")) == 1
    assert r.processor.run_once()
    job = r.queue.get_job_status(job_id)
    assert job.status is JobStatus.FAILED and job.attempts == 2 and job.retries == 1
    assert r.listing("failed") == ["flaky.txt", "flaky.txt.error.json"]
    assert [e.reason for e in r.events.of(JobRetried)] == ["TransientError"]


def test_a_long_job_that_keeps_progressing_outlives_the_stall_timeout(
        rig: Callable[..., Rig]) -> None:
    """A job that reports progress runs as long as it needs, far past stall_timeout_seconds;
    one that goes silent is killed once the stall timeout passes, saying so."""
    r = rig(stall_timeout_seconds=1.0)
    long_job = r.drop("long.txt", "TICK 4 0.2")
    silent = r.drop("silent.txt", "SLEEP 60")
    r.processor.run_once()
    assert r.status(long_job) is JobStatus.COMPLETED
    started = time.monotonic()
    r.processor.run_once()
    assert time.monotonic() - started < scaled(15)
    job = r.queue.get_job_status(silent)
    assert job.status is JobStatus.TIMEOUT and "without progress" in (job.message or '')
    assert "stall_timeout_seconds = 1" in (job.message or '')


def test_a_stopped_worker_is_killed_within_the_stall_timeout(rig: Callable[..., Rig]) -> None:
    """A worker that stops dead (SIGSTOP, as a hung parser would) sends nothing more and is
    killed after the stall timeout; a fresh worker processes the next file."""
    r = rig(stall_timeout_seconds=1.0)
    stopped = r.drop("stopped.txt", "STOPSELF")
    fine = r.drop("fine.txt", "ok")
    started = time.monotonic()
    r.processor.run_once()
    assert time.monotonic() - started < scaled(15)
    assert r.status(stopped) is JobStatus.TIMEOUT
    r.processor.run_once()
    assert r.status(fine) is JobStatus.COMPLETED


def test_job_timeout_seconds_keeps_its_wall_clock_meaning(rig: Callable[..., Rig]) -> None:
    """Set explicitly, job_timeout_seconds still ends a job that is making progress."""
    r = rig(job_timeout_seconds=1.5, stall_timeout_seconds=300)
    busy = r.drop("busy.txt", "TICK 60 0.2")
    r.processor.run_once()
    job = r.queue.get_job_status(busy)
    assert job.status is JobStatus.TIMEOUT and "killed after 1.5 s (the job's ceiling)" in (job.message or '')


def test_the_lease_is_renewed_while_a_job_runs(rig: Callable[..., Rig]) -> None:
    """A job longer than its lease keeps the lease (the agent renews it), so housekeeping never
    hands a running job to another claimer."""
    r = rig(stall_timeout_seconds=1.0)
    job_id = r.drop("long.txt", "TICK 12 0.2")
    leases: list[float] = []
    worker = r.processor.worker
    original = worker.run

    def watching_run(*args: object, **kwargs: object) -> object:
        wait = kwargs["on_wait"]

        def on_wait() -> None:
            wait()  # type: ignore[operator]
            timeout_at = r.queue.get_job_status(job_id).timeout_at
            if timeout_at is not None:
                leases.append(timeout_at)
        kwargs["on_wait"] = on_wait
        return original(*args, **kwargs)  # type: ignore[arg-type]

    worker.run = watching_run  # type: ignore[method-assign,assignment]
    r.processor.run_once()
    assert r.status(job_id) is JobStatus.COMPLETED
    assert len(set(leases)) > 2, "the lease's end moved forward while the job ran"
    assert r.queue.reclaim_expired_leases() == []


def test_timeout_kills_the_job_and_the_next_one_runs(rig: Callable[..., Rig]) -> None:
    """A job past job_timeout_seconds is killed and marked timeout; a fresh worker goes on."""
    r = rig(job_timeout_seconds=1.0)
    slow = r.drop("slow.txt", "SLEEP 60")
    fine = r.drop("fine.txt", "ok")
    started = time.monotonic()
    r.processor.run_once()
    assert time.monotonic() - started < 15
    job = r.queue.get_job_status(slow)
    assert job.status is JobStatus.TIMEOUT and "killed after 1 s (the job's ceiling)" in (job.message or '')
    assert "slow.txt" in r.listing("failed")
    r.processor.run_once()
    assert r.status(fine) is JobStatus.COMPLETED
    assert [e.reason for e in r.events.of(WorkerStarted)] == ["start", "timeout"]
    assert len(r.events.of(JobTimedOut)) == 1


def test_worker_that_kills_itself_fails_only_its_job(rig: Callable[..., Rig]) -> None:
    """A worker dying by SIGKILL fails its current job with the signal named; the agent goes on."""
    r = rig()
    doomed = r.drop("crash.txt", "KILL")
    fine = r.drop("fine.txt", "ok")
    r.processor.run_once()
    job = r.queue.get_job_status(doomed)
    assert job.status is JobStatus.FAILED and "SIGKILL" in (job.message or '')
    r.processor.run_once()
    assert r.status(fine) is JobStatus.COMPLETED
    assert [e.reason for e in r.events.of(WorkerStarted)] == ["start", "died"]


def test_names_in_done_and_failed_never_overwrite(rig: Callable[..., Rig]) -> None:
    """An existing done/a.txt is kept; the new one becomes 'a (2).txt'. Same in failed/."""
    r = rig()
    (r.box.done / "a.txt").write_text("older")
    (r.box.failed / "b.txt").write_text("older failure")
    r.drop("a.txt", "newer")
    r.drop("b.txt", "PERMANENT")
    r.processor.run_once()
    r.processor.run_once()
    assert (r.box.done / "a.txt").read_text() == "older"
    assert (r.box.done / "a (2).txt").read_text() == "newer"
    assert (r.box.failed / "b.txt").read_text() == "older failure"
    assert (r.box.failed / "b (2).txt").read_text() == "PERMANENT"
    assert (r.box.failed / "b (2).txt.error.json").is_file()


def test_vanished_file_fails_with_a_clear_reason(rig: Callable[..., Rig]) -> None:
    """A file deleted after it was queued fails the job as 'file vanished'; nothing crashes."""
    r = rig()
    job_id = r.drop("gone.txt", "x")
    (r.box.inbox / "gone.txt").unlink()
    r.processor.run_once()
    job = r.queue.get_job_status(job_id)
    assert job.status is JobStatus.FAILED and "vanished" in (job.message or '')


def test_too_large_file_goes_to_failed(tmp_path: Path, rig: Callable[..., Rig]) -> None:
    """A file over max_file_bytes goes to failed/ with the reason, without being read."""
    r = rig()
    r.box.settings.max_file_bytes = 10
    job_id = r.drop("big.txt", "x" * 11)
    r.processor.run_once()
    assert r.status(job_id) is JobStatus.FAILED
    report = json.loads((r.box.failed / "big.txt.error.json").read_text())
    assert "over max_file_bytes" in report["error"] and report["error_type"] == "TooLarge"


def test_entry_swapped_inside_processing_fails_at_once(rig: Callable[..., Rig]) -> None:
    """A FIFO in the job's place in processing/ (swapped there after the claim's checks) fails
    the job at once without blocking the worker, and leaves processing/ with the reason."""
    r = rig(job_timeout_seconds=300)
    job_id = r.drop("swap.txt", "x")
    (r.box.inbox / "swap.txt").unlink()
    os.mkfifo(r.box.processing / f"{job_id}__swap.txt")
    started = time.monotonic()
    r.processor.run_once()
    assert time.monotonic() - started < 30
    job = r.queue.get_job_status(job_id)
    assert job.status is JobStatus.FAILED and "not a regular file (FIFO)" in (job.message or '')
    assert r.listing("processing") == []
    assert r.listing("failed") == ["swap.txt", "swap.txt.error.json"]


def test_orphan_in_processing_goes_back_to_the_inbox(rig: Callable[..., Rig]) -> None:
    """A file in processing/ with no job is returned to the inbox, never deleted."""
    r = rig()
    (r.box.processing / "deadbeef__lost.txt").write_text("orphan")
    (r.box.processing / "plain.txt").write_text("no prefix")
    r.processor.recover()
    assert r.listing("inbox") == ["lost.txt", "plain.txt"]
    assert r.listing("processing") == []


def test_operator_retry_brings_a_failed_file_back(rig: Callable[..., Rig]) -> None:
    """retry moves the file out of failed/, removes the sidecar and the job completes."""
    r = rig()
    job_id = r.drop("fixme.txt", "PERMANENT")
    r.processor.run_once()
    (r.box.failed / "fixme.txt").write_text("fixed now")
    retry_failed_job(r.queue, r.boxes, job_id)
    assert r.listing("failed") == []
    r.processor.run_once()
    assert r.status(job_id) is JobStatus.COMPLETED
    assert (r.box.done / "fixme.txt").read_text() == "fixed now"


def _agent(config: Path, *args: str) -> AgentProcess:
    pipeline = None
    if args and args[0].startswith("--pipeline="):
        pipeline, args = args[0].split("=", 1)[1], args[1:]
    return AgentProcess(config, *args, pipeline=pipeline)


def _processing_jobs(config: Path) -> list[dict[str, Any]]:
    """Jobs being worked on; none while the agent has not created its queue yet."""
    out = cli(config, "jobs", "--status", "processing", "--json")
    return json.loads(out.stdout) if out.returncode == 0 else []


def test_sigterm_mid_job_requeues_it_uncounted(tmp_path: Path) -> None:
    """Shutdown past the grace period kills the job, requeues it without spending a retry."""
    config = write_config(tmp_path, max_retries=2)
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "long.txt").write_text("SLEEP 60")
    agent = _agent(config, f"--pipeline={SCRIPTED}")
    try:
        wait_until(lambda: _processing_jobs(config), 120, "the job to start")
        started = time.monotonic()
        agent.proc.send_signal(signal.SIGTERM)
        assert agent.proc.wait(timeout=scaled(30)) == 0
        assert time.monotonic() - started < scaled(10)
    finally:
        agent.kill()
    settings = load_config(config, environ={})
    with open_queue(settings) as q:
        (job,) = q.list_jobs()
    assert job.status is JobStatus.QUEUED and job.retries == 0
    assert entries(tmp_path / "processing") == [f"{job.job_id}__long.txt"]


def test_second_signal_exits_at_once_without_losing_the_file(tmp_path: Path) -> None:
    """SIGINT twice: no waiting for the grace period, the job requeued, the file kept."""
    config = agent_config(tmp_path, inbox={"name": "docs"},
                          processing={"shutdown_grace_seconds": 120})
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "long.txt").write_text("SLEEP 60")
    agent = _agent(config, f"--pipeline={SCRIPTED}")
    try:
        wait_until(lambda: _processing_jobs(config), 120, "the job to start")
        agent.proc.send_signal(signal.SIGINT)
        agent.wait_log("stopping: finishing the current job", timeout=30)
        agent.proc.send_signal(signal.SIGINT)
        assert agent.proc.wait(timeout=scaled(20)) == 0
    finally:
        agent.kill()
    settings = load_config(config, environ={})
    with open_queue(settings) as q:
        (job,) = q.list_jobs()
    assert job.status is JobStatus.QUEUED
    assert len(entries(tmp_path / "processing")) == 1


def test_kill_9_mid_embedding_then_restart_completes_once(tmp_path: Path) -> None:
    """kill -9 of the whole agent during real embedding; on restart the job completes exactly
    once, the file ends in done/, processing/ is empty and the index holds one document."""
    config = write_config(tmp_path)
    (tmp_path / "inbox").mkdir()
    paragraphs = [f"Paragraph {i} about the history of lighthouse number {i}. " * 12
                  for i in range(150)]
    (tmp_path / "inbox" / "long.md").write_text("\n\n".join(paragraphs))
    agent = _agent(config)
    try:
        wait_until(lambda: any(int(j["progress"]) >= 30 for j in _processing_jobs(config)), 180,
                   "the job to be embedding (progress ≥ 30 %)", interval=0.05)
    finally:
        agent.kill()
    restarted = _agent(config, "--drain")
    assert restarted.proc.wait(timeout=scaled(300)) == 0, restarted.text()[-3000:]
    settings = load_config(config, environ={})
    with open_queue(settings) as q:
        found = q.list_jobs()
    assert [j.status for j in found] == [JobStatus.COMPLETED]
    assert found[0].attempts == 1 and found[0].retries == 0, "a kill of the agent is no attempt"
    assert [p.name for p in (tmp_path / "done").iterdir()] == ["long.md"]
    assert entries(tmp_path / "processing") == []
    from agent.pipeline.store.sqlite import SQLiteIndex

    index = SQLiteIndex(settings.index_path)
    assert index.counts()["documents"] == 1
    assert index.integrity_problems() == []
    index.close()


def test_workers_2_process_two_jobs_at_once(tmp_path: Path) -> None:
    """processing.workers = 2: two worker subprocesses, and two jobs run at the same time."""
    config = agent_config(tmp_path, inbox={"name": "docs"},
                          processing={"workers": 2, "shutdown_grace_seconds": 1.0})
    (tmp_path / "inbox").mkdir()
    for i in range(4):
        (tmp_path / "inbox" / f"slow{i}.txt").write_text("SLEEP 1.5")
    agent = _agent(config, f"--pipeline={SCRIPTED}")
    try:
        wait_until(lambda: len(list((tmp_path / "done").glob("slow*"))) == 4, 120,
                   "four files in done/")
        assert agent.stop() == 0
    finally:
        agent.kill()
    settings = load_config(config, environ={})
    with open_queue(settings) as q:
        jobs = q.list_jobs()
    slots = {(j.claimed_by or "::").split(":")[-2] for j in jobs}
    assert slots == {"0", "1"}
    spans = sorted((j.started_at or 0.0, j.finished_at or 0.0) for j in jobs)
    overlaps = sum(1 for a, b in zip(spans, spans[1:], strict=False) if b[0] < a[1])
    assert overlaps >= 2, f"jobs did not run side by side: {spans}"
