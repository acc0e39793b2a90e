"""Prometheus metrics on an injected registry, fed by the core's events and read from the queue.

Queue state is computed at scrape time by a collector, so it is right after a restart; counters
and histograms follow the events the watcher and processor emit. Labels stay low-cardinality:
inbox, status, outcome, stage, reason, source — never a file name or a job id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from agent import __version__
from agent.events import Event
from agent.queue.base import JobQueue, JobStatus

JOB_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800)
STAGE_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
CHUNK_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000)
OUTCOMES = ("completed", "duplicate", "failed", "timeout")
STAGES = ("detect", "extract", "chunk", "embed", "index")


class QueueCollector(Collector):
    """Jobs per status, backlog, oldest queued age and dead leases, read at scrape time."""

    def __init__(self, queue: JobQueue) -> None:
        self.queue = queue

    def collect(self) -> Iterable[GaugeMetricFamily]:
        try:
            stats = self.queue.stats()
        except Exception:  # noqa: BLE001 - a scrape must still answer when the queue cannot
            yield GaugeMetricFamily("ingest_queue_reachable",
                                    "1 when the queue answered this scrape.", value=0)
            return
        yield GaugeMetricFamily("ingest_queue_reachable",
                                "1 when the queue answered this scrape.", value=1)
        jobs = GaugeMetricFamily("ingest_jobs", "Jobs in the queue by status.", labels=["status"])
        for status in JobStatus:
            jobs.add_metric([status.value], stats.counts.get(status, 0))
        yield jobs
        backlog = GaugeMetricFamily("ingest_backlog_jobs",
                                    "Queued jobs: due now, or waiting for a retry.",
                                    labels=["state"])
        backlog.add_metric(["due"], stats.due)
        backlog.add_metric(["retry_wait"], stats.waiting_retry)
        yield backlog
        yield GaugeMetricFamily("ingest_oldest_queued_job_age_seconds",
                                "Age of the oldest queued job (0 when none).",
                                value=stats.oldest_queued_age or 0.0)
        yield GaugeMetricFamily("ingest_jobs_past_lease",
                                "Processing jobs whose lease has expired (a stuck or dead worker).",
                                value=stats.expired_leases)

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []


class WatcherCollector(Collector):
    """Per-inbox watcher state, read from the watchers at scrape time."""

    def __init__(self, state: Callable[[], Iterable[tuple[str, bool, int, float | None]]]
                 ) -> None:
        self.state = state

    def collect(self) -> Iterable[GaugeMetricFamily]:
        up = GaugeMetricFamily("ingest_watcher_up", "1 while the inbox is being watched.",
                               labels=["inbox"])
        waiting = GaugeMetricFamily("ingest_inbox_waiting_files",
                                    "Files seen in an inbox and waiting to settle.",
                                    labels=["inbox"])
        last_scan = GaugeMetricFamily("ingest_last_scan_timestamp_seconds",
                                      "When the last reconcile scan of the inbox finished.",
                                      labels=["inbox"])
        for inbox, is_up, n_waiting, scanned_at in self.state():
            up.add_metric([inbox], 1 if is_up else 0)
            waiting.add_metric([inbox], n_waiting)
            if scanned_at is not None:
                last_scan.add_metric([inbox], scanned_at)
        yield up
        yield waiting
        yield last_scan

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []


class AgentMetrics:
    """Every metric the agent exports; ``on_event`` is subscribed to the core's event bus."""

    def __init__(self, registry: CollectorRegistry, queue: JobQueue, inboxes: Sequence[str],
                 *, watcher_state: Callable[[], Iterable[tuple[str, bool, int, float | None]]]
                 | None = None, worker_alive: Callable[[], bool] | None = None) -> None:
        self.registry = registry
        registry.register(QueueCollector(queue))
        Info("ingest_build", "Version of the running agent.", registry=registry).info(
            {"version": __version__})
        self.jobs_finished = Counter("ingest_jobs_finished_total",
                                     "Jobs finished, by outcome.", ["inbox", "outcome"],
                                     registry=registry)
        self.job_timeouts = Counter("ingest_job_timeouts_total",
                                    "Jobs killed for running past job_timeout_seconds.", ["inbox"],
                                    registry=registry)
        self.job_retries = Counter("ingest_job_retries_total",
                                   "Jobs requeued for another attempt, by reason.",
                                   ["inbox", "reason"], registry=registry)
        self.worker_restarts = Counter("ingest_worker_restarts_total",
                                       "Worker subprocesses restarted, by reason.", ["reason"],
                                       registry=registry)
        self.files_detected = Counter("ingest_files_detected_total",
                                      "Files queued, by how they were found.",
                                      ["inbox", "source"], registry=registry)
        self.files_ignored = Counter("ingest_files_ignored_total",
                                     "Files skipped by the watcher, by reason.",
                                     ["inbox", "reason"], registry=registry)
        self.reconcile_found = Counter("ingest_reconcile_found_total",
                                       "Files a reconcile scan found that events had missed.",
                                       ["inbox"], registry=registry)
        self.overflows = Counter("ingest_watcher_overflows_total",
                                 "inotify queue overflows (events were lost).", ["inbox"],
                                 registry=registry)
        self.documents = Counter("ingest_documents_indexed_total", "Documents indexed.",
                                 ["inbox"], registry=registry)
        self.chunks = Counter("ingest_chunks_indexed_total", "Chunks embedded and indexed.",
                              ["inbox"], registry=registry)
        self.bytes = Counter("ingest_bytes_indexed_total", "Bytes of files indexed.", ["inbox"],
                             registry=registry)
        self.job_duration = Histogram("ingest_job_duration_seconds",
                                      "Time from claim to finish, by outcome.",
                                      ["inbox", "outcome"], buckets=JOB_BUCKETS,
                                      registry=registry)
        self.stage_duration = Histogram("ingest_stage_duration_seconds",
                                        "Time spent in each pipeline stage.", ["stage"],
                                        buckets=STAGE_BUCKETS, registry=registry)
        self.job_chunks = Histogram("ingest_job_chunks", "Chunks produced per indexed document.",
                                    buckets=CHUNK_BUCKETS, registry=registry)
        self.worker_up = Gauge("ingest_worker_alive", "1 while the worker subprocess runs.",
                               registry=registry)
        if watcher_state is not None:
            self._bind_watchers(watcher_state)
        if worker_alive is not None:
            self.worker_up.set_function(lambda: 1.0 if worker_alive() else 0.0)
        for inbox in inboxes:  # series exist from the start, so rate() and alerts see zeros
            for outcome in OUTCOMES:
                self.jobs_finished.labels(inbox, outcome)
                self.job_duration.labels(inbox, outcome)
            for source in ("event", "scan", "startup"):
                self.files_detected.labels(inbox, source)
            for counter in (self.job_timeouts, self.reconcile_found, self.overflows,
                            self.documents, self.chunks, self.bytes):
                counter.labels(inbox)
            self.job_retries.labels(inbox, "TransientError")
        for reason in ("timeout", "died"):
            self.worker_restarts.labels(reason)
        for stage in STAGES:
            self.stage_duration.labels(stage)

    def _bind_watchers(
        self, state: Callable[[], Iterable[tuple[str, bool, int, float | None]]]
    ) -> None:
        self.registry.register(WatcherCollector(state))

    def on_event(self, event: Event) -> None:
        f = event.fields
        inbox = f.get("inbox") or "unknown"
        name = event.name
        if name == "job.finished":
            outcome = f["outcome"]
            self.jobs_finished.labels(inbox, outcome).inc()
            self.job_duration.labels(inbox, outcome).observe(f.get("seconds", 0.0))
            if outcome == "completed":
                self.documents.labels(inbox).inc()
                self.chunks.labels(inbox).inc(f.get("chunks", 0))
                self.bytes.labels(inbox).inc(f.get("bytes", 0) or 0)
                self.job_chunks.observe(f.get("chunks", 0))
        elif name == "job.timed_out":
            self.job_timeouts.labels(inbox).inc()
        elif name == "job.retried":
            self.job_retries.labels(inbox, f.get("reason", "unknown")).inc()
        elif name == "worker.restarted":
            self.worker_restarts.labels(f.get("reason", "unknown")).inc()
        elif name == "stage.timed":
            self.stage_duration.labels(f["stage"]).observe(f["seconds"])
        elif name == "file.detected":
            source = f.get("source", "event")
            self.files_detected.labels(inbox, source).inc()
            if source == "scan":
                self.reconcile_found.labels(inbox).inc()
        elif name == "file.ignored":
            self.files_ignored.labels(inbox, f.get("reason", "unknown")).inc()
        elif name == "watcher.overflow":
            self.overflows.labels(inbox).inc()
