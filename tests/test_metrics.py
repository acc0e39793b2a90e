"""Metrics on an injected registry: values read back with get_sample_value, no server needed."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client import CollectorRegistry

from agent import events as ev
from agent.config.settings import HealthSettings
from agent.events import EventBus
from agent.ops.health import HealthChecker
from agent.ops.listeners import Port, listen
from agent.ops.metrics import AgentMetrics
from agent.ops.metrics_server import MetricsServer
from agent.queue.sqlite import SQLiteJobQueue
from tests.conftest import ManualClock
from tests.helpers import claim_next


def make(queue: SQLiteJobQueue) -> tuple[CollectorRegistry, EventBus]:
    registry = CollectorRegistry()
    metrics = AgentMetrics(registry, queue, ["docs"],
                           watcher_state=lambda: [("docs", True, 3, 1234.0)],
                           worker_alive=lambda: True)
    bus = EventBus()
    metrics.subscribe(bus)
    return registry, bus


def test_queue_state_is_read_at_scrape_time(queue: SQLiteJobQueue, clock: ManualClock) -> None:
    """Jobs per status, the backlog of each inbox and the oldest age come from the queue on
    each scrape, labelled with the queue they describe (on both backends)."""
    registry, _ = make(queue)
    q = {"queue": queue.identity()}
    get = registry.get_sample_value
    assert get("ingest_jobs", {**q, "status": "queued"}) == 0
    queue.enqueue_job("/in/a", inbox="docs")
    queue.enqueue_job("/in/b", inbox="scans")
    claimed = claim_next(queue)
    queue.retry_or_fail(claimed, "flaky")  # /in/a waits 10 s to retry
    clock.advance(2)
    assert get("ingest_jobs", {**q, "status": "queued"}) == 2
    assert get("ingest_backlog_jobs", {**q, "inbox": "docs", "state": "due"}) == 0
    assert get("ingest_backlog_jobs", {**q, "inbox": "docs", "state": "retry_wait"}) == 1
    assert get("ingest_backlog_jobs", {**q, "inbox": "scans", "state": "due"}) == 1
    assert get("ingest_oldest_queued_job_age_seconds", q) == 2
    job = claim_next(queue, lease_seconds=5)
    clock.advance(6)
    assert get("ingest_jobs", {**q, "status": "processing"}) == 1
    assert get("ingest_jobs_past_lease", q) == 1
    queue.update_job_status(job.job_id, "completed", lease_token=job.lease_token)
    assert get("ingest_jobs", {**q, "status": "completed"}) == 1


def test_events_drive_counters_and_histograms(queue: SQLiteJobQueue) -> None:
    """Each core event moves the metric it stands for, with the right labels."""
    registry, bus = make(queue)
    bus.emit(ev.JobFinished("docs", "x", "completed", 2.0, chunks=7, bytes=900))
    bus.emit(ev.JobFinished("docs", "y", "failed", 0.3))
    bus.emit(ev.JobTimedOut("docs", "x"))
    bus.emit(ev.JobRetried("docs", "x", "TransientError", 10))
    bus.emit(ev.WorkerStarted("start", 2.5))
    bus.emit(ev.WorkerStarted("timeout", 1.5))
    bus.emit(ev.StageTimed("docs", "embed", 1.5))
    bus.emit(ev.FileDetected("docs", "event", "a"))
    bus.emit(ev.FileDetected("docs", "scan", "b"))
    bus.emit(ev.FileIgnored("docs", "excluded"))
    bus.emit(ev.WatcherOverflow("docs"))
    bus.emit(ev.JobStarted("docs", "x", 4.0))
    bus.emit(ev.JobRequeued("docs", "x", "file_changed"))
    bus.emit(ev.LeaseExpired("docs", "x", "queued"))
    bus.emit(ev.ScanFinished("docs", "interval", 10, 0.02))
    get = registry.get_sample_value
    assert get("ingest_jobs_finished_total", {"inbox": "docs", "outcome": "completed"}) == 1
    assert get("ingest_jobs_finished_total", {"inbox": "docs", "outcome": "failed"}) == 1
    assert get("ingest_jobs_finished_total", {"inbox": "docs", "outcome": "timeout"}) == 0
    assert get("ingest_job_timeouts_total", {"inbox": "docs"}) == 1
    assert get("ingest_job_retries_total", {"inbox": "docs", "reason": "TransientError"}) == 1
    assert get("ingest_worker_restarts_total", {"reason": "timeout"}) == 1
    assert get("ingest_stage_duration_seconds_count", {"stage": "embed"}) == 1
    assert get("ingest_stage_duration_seconds_sum", {"stage": "embed"}) == 1.5
    assert get("ingest_job_duration_seconds_bucket",
               {"inbox": "docs", "outcome": "completed", "le": "2.5"}) == 1
    assert get("ingest_files_detected_total", {"inbox": "docs", "source": "scan"}) == 1
    assert get("ingest_reconcile_found_total", {"inbox": "docs"}) == 1
    assert get("ingest_files_ignored_total", {"inbox": "docs", "reason": "excluded"}) == 1
    assert get("ingest_watcher_overflows_total", {"inbox": "docs"}) == 1
    assert get("ingest_chunks_indexed_total", {"inbox": "docs"}) == 7
    assert get("ingest_documents_indexed_total", {"inbox": "docs"}) == 1
    assert get("ingest_bytes_indexed_total", {"inbox": "docs"}) == 900
    assert get("ingest_job_chunks_count") == 1
    assert get("ingest_job_wait_seconds_sum", {"inbox": "docs"}) == 4.0
    assert get("ingest_job_requeues_total", {"inbox": "docs", "reason": "file_changed"}) == 1
    assert get("ingest_leases_expired_total", {"inbox": "docs"}) == 1
    assert get("ingest_scan_duration_seconds_count", {"inbox": "docs"}) == 1
    assert get("ingest_worker_start_seconds") == 1.5


def test_gauges_for_watchers_worker_and_build(queue: SQLiteJobQueue) -> None:
    """Watcher, worker and version gauges are exported."""
    registry, _ = make(queue)
    get = registry.get_sample_value
    assert get("ingest_watcher_up", {"inbox": "docs"}) == 1
    assert get("ingest_inbox_waiting_files", {"inbox": "docs"}) == 3
    assert get("ingest_last_scan_timestamp_seconds", {"inbox": "docs"}) == 1234.0
    assert get("ingest_worker_alive") == 1
    from agent import __version__

    assert get("ingest_build_info", {"version": __version__}) == 1


def test_metrics_server_serves_metrics_health_and_readiness(queue: SQLiteJobQueue,
                                                            tmp_path: Path) -> None:
    """/metrics, /healthz and /readyz over real HTTP; readiness names the failing check."""
    registry, _ = make(queue)
    watchers = {"docs": True}
    health = HealthChecker(queue, tmp_path, HealthSettings(),
                           watchers=lambda: [(name, up, None if up else "inbox folder is gone")
                                             for name, up in watchers.items()],
                           worker_alive=lambda: True)
    server = MetricsServer(registry, health, listen(Port("metrics", "127.0.0.1", 0)))
    server.start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        body = urllib.request.urlopen(f"{base}/metrics", timeout=5).read().decode()
        assert 'ingest_jobs{queue=' in body and 'status="queued"}' in body
        assert json.load(urllib.request.urlopen(f"{base}/healthz", timeout=5)) == {
            "status": "alive"}
        ready = json.load(urllib.request.urlopen(f"{base}/readyz", timeout=5))
        assert ready["status"] == "ready"
        assert {c["name"] for c in ready["checks"]} == {
            "database", "disk", "watcher:docs", "worker", "backlog", "oldest_job"}
        watchers["docs"] = False
        try:
            urllib.request.urlopen(f"{base}/readyz", timeout=5)
            raise AssertionError("expected 503")
        except urllib.error.HTTPError as err:
            assert err.code == 503
            failing = [c for c in json.load(err)["checks"] if not c["ok"]]
            assert [c["name"] for c in failing] == ["watcher:docs"]
            assert failing[0]["detail"] == "not watching: inbox folder is gone"
    finally:
        server.stop()


def test_readiness_fails_on_low_disk_and_old_jobs(queue: SQLiteJobQueue, clock: ManualClock,
                                                  tmp_path: Path) -> None:
    """Limits from [health] turn into failed checks with the numbers in the detail."""
    queue.enqueue_job("/in/a")
    clock.advance(100)
    health = HealthChecker(queue, tmp_path, HealthSettings(
        min_free_disk_bytes=2**62, max_oldest_queued_age_seconds=50))
    ready, checks = health.ready()
    assert not ready
    failing = {c.name: c.detail for c in checks if not c.ok}
    assert set(failing) == {"disk", "oldest_job"}
    assert "100 s old" in failing["oldest_job"]


def test_scrape_answers_when_the_queue_does_not(tmp_path: Path) -> None:
    """A broken queue database turns into ingest_queue_reachable 0, not a failed scrape."""
    path = tmp_path / "q.db"
    queue = SQLiteJobQueue(path)
    registry = CollectorRegistry()
    AgentMetrics(registry, queue, ["docs"])
    q = {"queue": queue.identity()}
    assert registry.get_sample_value("ingest_queue_reachable", q) == 1
    queue.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4096)
    assert registry.get_sample_value("ingest_queue_reachable", q) == 0
    assert registry.get_sample_value("ingest_jobs", {**q, "status": "queued"}) is None
