"""Prometheus metrics on an injected registry, fed by the core's events and read from the queue.

Queue state is computed at scrape time by a collector, so it is right after a restart; counters
and histograms follow the events the watcher and processor emit. Labels stay low-cardinality:
inbox, status, outcome, stage, reason, source — never a file name or a job id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from agent import __version__
from agent.events import (
    ChunksEmbedded,
    EventBus,
    FileDetected,
    FileIgnored,
    JobFinished,
    JobRequeued,
    JobRetried,
    JobStarted,
    JobTimedOut,
    LeaseExpired,
    ScanFinished,
    StageTimed,
    WatcherOverflow,
    WorkerStarted,
)
from agent.formats import metric_types, short_type
from agent.queue.base import JobQueue, JobStatus
from agent.stages import TIMED

JOB_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800)
STAGE_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
CHUNK_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000)
OUTCOMES = ("completed", "duplicate", "failed", "timeout")


class QueueCollector(Collector):
    """Queue-wide state, read at scrape time and labelled with the queue it describes.

    Several agents sharing one queue (Redis) all report it under the same ``queue`` label, so a
    dashboard takes ``max by (queue, …)`` first and counts each queue's jobs once.
    """

    def __init__(self, queue: JobQueue, inboxes: Sequence[str] = ()) -> None:
        self.queue = queue
        self.queue_id = queue.identity()
        self.inboxes = list(inboxes)  # reported at 0 when empty, so alerts see a zero

    def collect(self) -> Iterable[GaugeMetricFamily]:
        q = [self.queue_id]
        reachable = GaugeMetricFamily("ingest_queue_reachable",
                                      "1 when the queue answered this scrape.", labels=["queue"])
        try:
            stats = self.queue.stats()
        except Exception:  # noqa: BLE001 - a scrape must still answer when the queue cannot
            reachable.add_metric(q, 0)
            yield reachable
            return
        reachable.add_metric(q, 1)
        yield reachable
        jobs = GaugeMetricFamily("ingest_jobs", "Jobs in the queue by status.",
                                 labels=["queue", "status"])
        for status in JobStatus:
            jobs.add_metric([*q, status.value], stats.counts.get(status, 0))
        yield jobs
        backlog = GaugeMetricFamily("ingest_backlog_jobs",
                                    "Queued jobs per inbox: due now, or waiting for a retry.",
                                    labels=["queue", "inbox", "state"])
        per_inbox = {inbox: (0, 0) for inbox in self.inboxes}
        per_inbox.update(stats.backlog_by_inbox)
        for inbox, (due, waiting) in sorted(per_inbox.items()):
            backlog.add_metric([*q, inbox, "due"], due)
            backlog.add_metric([*q, inbox, "retry_wait"], waiting)
        yield backlog
        yield _single("ingest_oldest_queued_job_age_seconds",
                      "Age of the oldest queued job (0 when none).", q,
                      stats.oldest_queued_age or 0.0)
        yield _single("ingest_jobs_past_lease",
                      "Processing jobs whose lease has expired (a stuck or dead worker).", q,
                      stats.expired_leases)

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []


def _single(name: str, documentation: str, queue: list[str], value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=["queue"])
    family.add_metric(queue, value)
    return family


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
    """Every metric the agent exports; ``subscribe`` hooks it to the core's event bus."""

    def __init__(self, registry: CollectorRegistry, queue: JobQueue, inboxes: Sequence[str],
                 *, watcher_state: Callable[[], Iterable[tuple[str, bool, int, float | None]]]
                 | None = None, worker_alive: Callable[[], bool] | None = None) -> None:
        self.registry = registry
        registry.register(QueueCollector(queue, inboxes))
        Info("ingest_build", "Version of the running agent.", registry=registry).info(
            {"version": __version__})
        self.jobs_finished = Counter("ingest_jobs_finished_total",
                                     "Jobs finished, by outcome.", ["inbox", "outcome"],
                                     registry=registry)
        self.job_timeouts = Counter(
            "ingest_job_timeouts_total",
            "Jobs killed for making no progress (stall_timeout_seconds) or running past their "
            "ceiling.", ["inbox"], registry=registry)
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
        self.documents_by_type = Counter("ingest_documents_indexed_by_type_total",
                                         "Documents indexed, by type (pdf, xlsx, png, …).",
                                         ["type"], registry=registry)
        self.chunks_embedded = Counter(
            "ingest_chunks_embedded_total",
            "Chunks embedded by the model, counted as each batch is done (a resumed job "
            "counts only what it had to embed again).", ["inbox"], registry=registry)
        self.ocr_pages = Counter("ingest_ocr_pages_total",
                                 "Pages read by OCR (images and PDF pages without text).",
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
        self.job_wait = Histogram("ingest_job_wait_seconds",
                                  "Time a job waited in the queue before it was claimed.",
                                  ["inbox"], buckets=JOB_BUCKETS, registry=registry)
        self.requeues = Counter("ingest_job_requeues_total",
                                "Jobs given back without spending a retry, by reason.",
                                ["inbox", "reason"], registry=registry)
        self.leases_expired = Counter("ingest_leases_expired_total",
                                      "Jobs whose worker stopped answering; the queue took "
                                      "them back.", ["inbox"], registry=registry)
        self.scan_duration = Histogram("ingest_scan_duration_seconds",
                                       "Time a reconcile scan took to list an inbox.", ["inbox"],
                                       buckets=STAGE_BUCKETS, registry=registry)
        self.worker_start = Gauge("ingest_worker_start_seconds",
                                  "How long the last worker took to start (model load).",
                                  registry=registry)
        if watcher_state is not None:
            self._bind_watchers(watcher_state)
        if worker_alive is not None:
            self.worker_up.set_function(lambda: 1.0 if worker_alive() else 0.0)
        for inbox in inboxes:  # series exist from the start, so rate() and alerts see zeros
            for outcome in OUTCOMES:
                self.jobs_finished.labels(inbox, outcome)
                self.job_duration.labels(inbox, outcome)
            self.job_wait.labels(inbox)
            self.scan_duration.labels(inbox)
            self.leases_expired.labels(inbox)
            for source in ("event", "scan", "startup"):
                self.files_detected.labels(inbox, source)
            for counter in (self.job_timeouts, self.reconcile_found, self.overflows,
                            self.documents, self.chunks, self.bytes, self.ocr_pages,
                            self.chunks_embedded):
                counter.labels(inbox)
            self.job_retries.labels(inbox, "TransientError")
        for reason in ("timeout", "died"):
            self.worker_restarts.labels(reason)
        for stage in TIMED:
            self.stage_duration.labels(stage)
        for kind in metric_types():
            self.documents_by_type.labels(kind)

    def _bind_watchers(
        self, state: Callable[[], Iterable[tuple[str, bool, int, float | None]]]
    ) -> None:
        self.registry.register(WatcherCollector(state))

    def subscribe(self, bus: EventBus) -> None:
        """Follow the core's events: one handler per kind of event."""
        bus.subscribe(JobFinished, self._job_finished)
        bus.subscribe(JobTimedOut, lambda e: self.job_timeouts.labels(_inbox(e)).inc())
        bus.subscribe(JobRetried, lambda e: self.job_retries.labels(_inbox(e), e.reason).inc())
        bus.subscribe(JobRequeued, lambda e: self.requeues.labels(_inbox(e), e.reason).inc())
        bus.subscribe(JobStarted, lambda e: self.job_wait.labels(_inbox(e)).observe(e.waited))
        bus.subscribe(LeaseExpired, lambda e: self.leases_expired.labels(_inbox(e)).inc())
        bus.subscribe(WorkerStarted, self._worker_started)
        bus.subscribe(StageTimed,
                      lambda e: self.stage_duration.labels(e.stage).observe(e.seconds))
        bus.subscribe(FileDetected, self._file_detected)
        bus.subscribe(ChunksEmbedded,
                      lambda e: self.chunks_embedded.labels(_inbox(e)).inc(e.chunks))
        bus.subscribe(FileIgnored, lambda e: self.files_ignored.labels(e.inbox, e.reason).inc())
        bus.subscribe(WatcherOverflow, lambda e: self.overflows.labels(e.inbox).inc())
        bus.subscribe(ScanFinished,
                      lambda e: self.scan_duration.labels(e.inbox).observe(e.seconds))

    def _job_finished(self, event: JobFinished) -> None:
        inbox = _inbox(event)
        self.jobs_finished.labels(inbox, event.outcome).inc()
        self.job_duration.labels(inbox, event.outcome).observe(event.seconds)
        if event.outcome == "completed":
            self.documents.labels(inbox).inc()
            self.chunks.labels(inbox).inc(event.chunks)
            self.bytes.labels(inbox).inc(event.bytes)
            self.job_chunks.observe(event.chunks)
            self.documents_by_type.labels(short_type(event.mime)).inc()
            if event.ocr_pages:
                self.ocr_pages.labels(inbox).inc(event.ocr_pages)

    def _worker_started(self, event: WorkerStarted) -> None:
        self.worker_start.set(event.seconds)
        if event.reason != "start":
            self.worker_restarts.labels(event.reason).inc()

    def _file_detected(self, event: FileDetected) -> None:
        self.files_detected.labels(event.inbox, event.source).inc()
        if event.source == "scan":
            self.reconcile_found.labels(event.inbox).inc()


def _inbox(event: Any) -> str:
    return str(event.inbox or "unknown")
