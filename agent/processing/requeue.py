"""Jobs given back to the queue without spending a retry, each for its reason: a job that
paused to let waiting files through, a file that changed while it was read, a page whose OCR
held the worker (read again without it). Each is counted, so a job that keeps coming back for
the same reason spends retries like any other failure."""

from __future__ import annotations

import structlog

from agent.errors import LeaseLostError
from agent.events import EventBus, JobRequeued
from agent.processing.worker import WorkerOutcome
from agent.queue.base import Job, JobQueue
from agent.queue.record import record_patch

log = structlog.get_logger("agent.processing.processor")
RIGHT_BEHIND = 0.001  # claimed after the jobs due now, before those queued later
MAX_SKIPPED_PAGES = 50  # a file with more such pages spends retries like any timeout
MAX_UNCOUNTED_CHANGES = 5  # a file that changed under its job more often spends retries


class Requeue:
    def __init__(self, queue: JobQueue, events: EventBus) -> None:
        self.queue = queue
        self.events = events

    def paused(self, job: Job) -> None:
        """Behind the files waiting now, ahead of later ones; its file stays in processing/."""
        self.queue.release_job(job, "paused to let waiting files through; resumes from its "
                               "checkpoint", delay=RIGHT_BEHIND,
                               metadata=record_patch(paused=True, turns=job.record.turns + 1))
        self.events.emit(JobRequeued(job.inbox, job.job_id, "yielded"))
        log.info("job paused for waiting files; it resumes from its checkpoint")

    def without_pages(self, job: Job, outcome: WorkerOutcome) -> bool:
        """A page whose OCR held the worker far past its time is left out: the job is read
        again at once without it (False: the same page again, or too many, which a retry
        pays for)."""
        known = job.record.skip_pages
        new = [key for key in outcome.skip_pages if key not in known]
        if not new or len(known) + len(new) > MAX_SKIPPED_PAGES:
            return False
        if self._release(job, f"{outcome.message}; the file is read again without that page",
                         RIGHT_BEHIND, record_patch(skip_pages=known + new)):
            log.warning("page left out: its OCR ran far past ocr.page_timeout_seconds; the "
                        "file is read again without it", pages=len(known) + len(new))
            self.events.emit(JobRequeued(job.inbox, job.job_id, "page_left_out"))
        return True

    def file_changed(self, job: Job, settle_seconds: float) -> bool:
        """Read the file again once it has settled (False: it changed too often already)."""
        changes = job.record.changes + 1
        if changes > MAX_UNCOUNTED_CHANGES:
            return False
        if self._release(job, "the file changed while it was processed; it will be read again "
                         "once it settles", max(settle_seconds, 1.0),
                         record_patch(changes=changes)):
            log.warning("file changed while it was processed; requeued without spending a "
                        "retry", changes=changes)
            self.events.emit(JobRequeued(job.inbox, job.job_id, "file_changed"))
        return True

    def _release(self, job: Job, message: str, delay: float, metadata: dict[str, object]
                 ) -> bool:
        try:
            self.queue.release_job(job, message, delay=delay, metadata=metadata)
        except LeaseLostError:
            log.warning("lease lost; another worker owns the job now", job_id=job.job_id)
            return False
        return True
