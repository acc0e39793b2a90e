"""Claims one job at a time and carries its file inbox → processing → done | failed.

A job's file lives in ``processing/<job_id>__<name>`` while it is worked on, so after a crash
the file and its job find each other again. Order of writes for a success: index commit (worker)
→ move to done/ → job completed; every step can be repeated safely after a crash.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import structlog

from agent.backoff import RepeatedFailure
from agent.config.settings import Settings
from agent.errors import LeaseLostError
from agent.events import (
    ChunksEmbedded,
    EventBus,
    JobFinished,
    JobRetried,
    JobStarted,
    JobTimedOut,
    LeaseExpired,
    StageTimed,
)
from agent.files.folders import InboxFolders, file_kind, is_regular_file, special_entry
from agent.files.names import display_name
from agent.identity import agent_id
from agent.pipeline import JobRequest
from agent.pipeline.result import PipelineResult
from agent.processing.failures import TIMEOUT, FailureReports
from agent.processing.recovery import recover
from agent.processing.requeue import Requeue
from agent.processing.supervision import WorkerSupervisor
from agent.processing.worker import DEFAULT_FACTORY, ErrorKind, Outcome, WorkerOutcome
from agent.queue.base import Job, JobQueue, JobStatus
from agent.queue.record import record_patch
from agent.stages import Stage

log = structlog.get_logger("agent.processing.processor")
PROGRESS_EVERY = 0.5  # seconds between progress writes to the queue
FOLDER_SWAPPED_DELAY = 60.0  # seconds a job of an inbox whose folder was swapped waits


class Processor:
    """The sequential processing loop; ``run_once`` is one job (tests, and ``run --drain``)."""

    def __init__(
        self,
        settings: Settings,
        queue: JobQueue,
        inboxes: Mapping[str, InboxFolders],
        events: EventBus | None = None,
        *,
        factory: str = DEFAULT_FACTORY,
        clock: Callable[[], float] = time.time,
        slot: int = 0,
    ) -> None:
        self.settings = settings
        self.queue = queue
        self.inboxes = dict(inboxes)
        self.events = events or EventBus()
        self.factory = factory
        self.clock = clock
        self.agent_id = agent_id(settings.agent.data_dir)
        # agent id, slot (for processing.workers > 1), pid: the pid stays last for recover().
        self.worker_id = f"{self.agent_id}:{slot}:{os.getpid()}"
        self.slot = slot
        self.supervisor = WorkerSupervisor(settings, queue, self.events, factory,
                                           lease=self._lease, tick=self.tick)
        self.worker = self.supervisor.worker
        self.current: Job | None = None
        self._stranded: list[Job] = []
        self._said_swapped: set[str] = set()
        self.wake = threading.Event()
        self._index: Any = None
        self._abort = threading.Event()
        self._relief: Any = None  # agent.processing.relief.Relief, while a parked job lets files through
        self._last_housekeeping = 0.0
        self.last_tick = time.monotonic()
        self.failures = FailureReports(queue, self.inboxes, clock)
        self.requeue = Requeue(queue, self.events)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, recover: bool = True) -> None:
        """Recover what a crash left behind (once per agent), then start the worker."""
        if recover:
            self.recover()
        self._start_worker("start")

    def _start_worker(self, reason: str) -> None:
        self.supervisor.start(reason)

    def stop(self) -> None:
        self.worker.stop()
        if self._index is not None:
            self._index.close()

    @property
    def index(self) -> Any:
        if self._index is None:
            from agent.pipeline.store.backends import open_index

            self._index = open_index(self.settings)
        return self._index

    def run_forever(self, stop: threading.Event, idle_wait: float = 0.2) -> None:
        """Process jobs until ``stop`` is set; the current job finishes first.

        An error of the loop itself (a full disk or a locked database under the queue) is
        logged and retried: the agent keeps running and the job is handed back once the
        queue accepts writes again.
        """
        failures = RepeatedFailure(log, "processing loop error; retrying")
        while not stop.is_set():
            self.tick()
            try:
                self._release_stranded()
                if not self.worker.alive and not self._abort.is_set():
                    self._start_worker("dead")  # died while idle (OOM killer): heal first
                self.housekeeping()
                busy = self.run_once()
            except Exception as exc:  # noqa: BLE001 - the loop must outlive any one failure
                if self.current is not None:
                    self._stranded.append(self.current)
                    self.current = None
                stop.wait(failures.failed(exc))
                continue
            failures.succeeded()
            if not busy:
                self.wake.wait(idle_wait)  # set when a file is queued, so pickup is immediate
                self.wake.clear()

    def _release_stranded(self) -> None:
        """Give back jobs whose processing broke off on a queue error (file stays put)."""
        while self._stranded:
            job = self._stranded[0]
            with contextlib.suppress(LeaseLostError):
                self.queue.retry_or_fail(job, "interrupted by an internal error; retrying")
            self._stranded.pop(0)

    def tick(self) -> None:
        """The loop is alive: the systemd watchdog reads this."""
        self.last_tick = time.monotonic()

    def housekeeping(self, every: float | None = None) -> None:
        now = self.clock()
        if every is None:  # often enough that an expired lease is reclaimed soon after
            every = min(30.0, self._lease() / 4)
        if now - self._last_housekeeping < every:
            return
        self._last_housekeeping = now
        for job in self.queue.reclaim_expired_leases():
            self.events.emit(LeaseExpired(job.inbox, job.job_id, str(job.status)))
            if job.status is JobStatus.TIMEOUT:
                self.failures.file_timed_out(job, "lease", "lease expired, no retries left")
        retention = self.settings.queue.retention_days
        if retention > 0:
            self.queue.purge(retention * 86400)

    # -- crash recovery --------------------------------------------------------------------

    def recover(self) -> None:
        """Requeue this agent's interrupted jobs and match processing/ to them (recovery.py)."""
        recover(self.queue, self.inboxes, self.agent_id, self.failures)

    # -- one job ---------------------------------------------------------------------------

    def run_once(self) -> bool:
        """Claim and process one due job; False when there was none."""
        job = self.queue.get_next_job(self.worker_id)
        if job is None:
            return False
        self._run(job)
        self.current = None
        return True

    def _run(self, job: Job, supervisor: WorkerSupervisor | None = None, **relief: Any) -> None:
        self.current = job
        with structlog.contextvars.bound_contextvars(
            job_id=job.job_id, inbox=job.inbox, file=display_name(job.original_filename or "")
        ):
            self._process(job, supervisor, **relief)

    def _relieve(self, keep_parked_lease: Callable[[], None]) -> None:
        """The worker is parked mid-job: the jobs due now run on a relief worker meanwhile
        (a relief job the queue fails under is handed back by the loop, as any other)."""
        from agent.processing.relief import Relief

        parked = self.current
        self._relief = Relief(self.settings, self.queue, self.events, self.factory,
                              worker_id=self.worker_id, lease=self._lease, tick=self.tick)
        try:
            self._relief.run(lambda job, relief, keep, until: self._run(
                job, relief, also=keep, yield_by=until), keep_parked_lease, self._abort.is_set)
        finally:
            self.current, self._relief = parked, None

    def _process(self, job: Job, supervisor: WorkerSupervisor | None = None, *,
                 also: Callable[[], None] | None = None, yield_by: float | None = None
                 ) -> None:
        on_relief = supervisor is not None
        supervisor = supervisor or self.supervisor
        started = time.monotonic()
        self.events.emit(JobStarted(job.inbox, job.job_id, max(0.0, self.clock() - job.created_at)))
        box = self.inboxes.get(job.inbox or "")
        if box is None:
            self._finish(job, JobStatus.FAILED, f"inbox {job.inbox!r} is no longer configured; "
                         "the file was left where it is", started, outcome="failed",
                         metadata=record_patch(stage=Stage.CLAIM))
            return
        swapped = box.problem()
        if swapped is not None:
            self._hold_for_folder(job, box, swapped)
            return
        self._said_swapped.discard(box.name)
        original = job.original_filename or Path(job.file_path).name
        path = self._claim_file(job, box, original)
        if path is None:
            return
        size = path.lstat().st_size
        if size > box.settings.max_file_bytes:
            self._fail_permanently(job, box, path, Stage.SIZE,
                                   f"file is {size} bytes, over max_file_bytes "
                                   f"({box.settings.max_file_bytes})", "TooLarge", started)
            return
        request = JobRequest(job.job_id, str(path), job.inbox, original,
                             list(box.settings.allowed_types), ocr=box.settings.ocr,
                             skip_pages=tuple(job.record.skip_pages))
        last = [0.0]
        shown = [job.progress]  # a job resumed from its checkpoint goes on from where it was

        def on_progress(percent: int, message: str, embedded: int) -> None:
            if embedded:
                self.events.emit(ChunksEmbedded(job.inbox, embedded))
            now = time.monotonic()
            if now - last[0] >= PROGRESS_EVERY:
                last[0] = now
                shown[0] = max(shown[0], percent)
                try:
                    self.queue.update_job_status(job.job_id, "processing", shown[0], message,
                                                 lease_token=job.lease_token)
                except LeaseLostError:
                    log.warning("lease lost while processing")

        log.info("processing job", attempt=job.attempts)
        outcome = supervisor.run(job, request, size, on_progress, self._abort.is_set,
                                 relieve=None if on_relief else self._relieve, also=also,
                                 yield_by=yield_by)
        if self._abort.is_set() and outcome.kind in (Outcome.DIED, Outcome.TIMEOUT):
            self.queue.release_job(job, "agent shut down during the job; it resumes first")
            log.warning("job interrupted by shutdown and requeued; its file stays in processing/")
            return
        if outcome.kind is Outcome.YIELDED:
            self.requeue.paused(job)
            return
        self._settle_outcome(job, box, path, outcome, started)

    def _hold_for_folder(self, job: Job, box: InboxFolders, problem: str) -> None:
        """A folder of the job's inbox is no longer the one pinned at start: touch nothing,
        and give the job back uncounted until the folder is put back."""
        self.queue.release_job(job, f"waiting: {problem}", delay=FOLDER_SWAPPED_DELAY)
        if box.name not in self._said_swapped:
            self._said_swapped.add(box.name)
            log.error("inbox folder replaced; its jobs wait and its files are left alone",
                      problem=problem)

    def _lease(self) -> float:
        from agent.config.settings import lease_basis
        from agent.queue import lease_seconds

        return lease_seconds(lease_basis(self.settings.queue))

    def _claim_file(self, job: Job, box: InboxFolders, original: str) -> Path | None:
        """Put the job's file in processing/ (it may be there already) and return its path.

        Only a regular file is taken: an entry swapped for a FIFO, socket, device or link after
        it was queued fails at once, and nothing of it stays in processing/.
        """
        in_processing = box.processing / box.processing_name(job.job_id, original)
        if os.path.lexists(in_processing):
            return self._regular_or_fail(job, box, in_processing, started=time.monotonic())
        source = Path(job.file_path)
        try:
            st = source.lstat()
        except FileNotFoundError:
            document = self.index.find_by_job(job.job_id)
            if document is not None:
                self._finish(job, JobStatus.COMPLETED, "recovered after a crash: already indexed "
                             "and filed", time.monotonic(), outcome="completed",
                             metadata=record_patch(document_id=document.doc_id,
                                                   chunks=document.chunk_count))
                return None
            log.warning("file vanished before processing")
            self._finish(job, JobStatus.FAILED, "file vanished before it could be processed",
                         time.monotonic(), outcome="failed",
                         metadata=record_patch(stage=Stage.CLAIM))
            return None
        if not is_regular_file(st):
            kind = file_kind(st.st_mode)
            log.warning("queued file was replaced by a special file; left where it is",
                          kind=kind)
            self._finish(job, JobStatus.FAILED, f"not a regular file ({kind}) by the time it "
                         "was claimed; left in the inbox", time.monotonic(), outcome="failed",
                         metadata=record_patch(stage=Stage.CLAIM,
                                               error_type="NotARegularFile"))
            return None
        expected = job.record.size
        if expected is not None and st.st_size != expected:
            log.info("file changed since it was queued; reading its current content",
                       queued_size=expected, size=st.st_size)
        try:
            moved = box.move_to_processing(source, job.job_id, original)
        except OSError as exc:
            self._retry(job, None, box, Stage.CLAIM, f"cannot move into processing/: {exc}",
                        type(exc).__name__, time.monotonic())
            return None
        return self._regular_or_fail(job, box, moved, started=time.monotonic())

    def _regular_or_fail(self, job: Job, box: InboxFolders, path: Path, *, started: float
                         ) -> Path | None:
        """``path`` if it is a regular file; else the job fails and the entry leaves processing/."""
        try:
            kind = special_entry(path)
        except OSError as exc:
            self._retry(job, None, box, Stage.CLAIM, f"cannot open {path.name}: {exc.strerror}",
                        type(exc).__name__, started)
            return None
        if kind is None:
            return path
        message = f"not a regular file ({kind}): it was swapped after it was queued"
        try:
            self._fail_permanently(job, box, path, Stage.CLAIM, message, "NotARegularFile", started)
        except OSError:  # a special file cannot be copied to another file system: drop it
            path.unlink(missing_ok=True)
            log.warning("removed a special file from processing/", kind=kind)
        return None

    def _settle_outcome(self, job: Job, box: InboxFolders, path: Path, outcome: WorkerOutcome,
                        started: float) -> None:
        if outcome.kind is Outcome.OK and outcome.result is not None:
            result = outcome.result
            for stage, seconds in result.stages.items():
                self.events.emit(StageTimed(job.inbox, stage, seconds))
            if not _same_file(path, result):
                if result.document_id and not result.resumed:
                    self.index.remove_document(result.document_id)
                self._file_changed(job, box, started)
                return
            try:
                dest = box.move_to_done(path, job.original_filename or path.name)
            except OSError as exc:
                self._retry(job, path, box, Stage.DONE, f"cannot move to done/: {exc}",
                            type(exc).__name__, started)
                return
            document_id = result.document_id or result.duplicate_of
            if result.duplicate_of:
                message, outcome_label = f"duplicate of {result.duplicate_of}", "duplicate"
            else:
                if document_id:
                    self.index.set_location(document_id, str(dest))
                message, outcome_label = f"indexed {result.chunks} chunks", "completed"
            if result.warnings:
                message += f" ({'; '.join(result.warnings)})"
            self._finish(job, JobStatus.COMPLETED, message, started, outcome=outcome_label,
                         metadata=record_patch(
                             document_id=document_id, chunks=result.chunks,
                             done_path=str(dest), done_inode=_inode(dest), mime=result.mime,
                             warnings=result.warnings or None,
                             ocr_pages=result.ocr_pages or None,
                             ocr_page_numbers=result.ocr_page_numbers or None,
                             stages={stage: round(seconds, 3) for stage, seconds
                                     in result.stages.items()} or None),
                         extra={"chunks": result.chunks, "bytes": result.bytes,
                                "mime": result.mime, "ocr_pages": result.ocr_pages})
            log.info("job completed", message=message, done=display_name(str(dest)))
        elif outcome.is_error(ErrorKind.FILE_CHANGED):
            self._file_changed(job, box, started)
        elif outcome.kind is Outcome.PERMANENT:
            self._fail_permanently(job, box, path, outcome.stage, outcome.message,
                                   outcome.error_type, started)
        elif outcome.kind is Outcome.TIMEOUT and self.requeue.without_pages(job, outcome):
            return
        elif outcome.kind is Outcome.TIMEOUT:
            self.events.emit(JobTimedOut(job.inbox, job.job_id))
            self._retry(job, path, box, outcome.stage or Stage.PIPELINE, outcome.message,
                        TIMEOUT, started, final=JobStatus.TIMEOUT)
        else:  # transient, died
            self._retry(job, path, box, outcome.stage or Stage.PIPELINE, outcome.message,
                        outcome.error_type or "TransientError", started)

    def _file_changed(self, job: Job, box: InboxFolders, started: float) -> None:
        """The file changed while it was processed: index nothing for it and process it again
        once it has settled, without spending a retry (a few times; then retries count)."""
        if not self.requeue.file_changed(job, box.settings.settle_seconds):
            self._retry(job, box.processing / box.processing_name(
                job.job_id, job.original_filename or Path(job.file_path).name), box, Stage.READ,
                f"the file kept changing while it was processed ({job.record.changes + 1} "
                "times)", ErrorKind.FILE_CHANGED.value, started)

    def _retry(self, job: Job, path: Path | None, box: InboxFolders, stage: str, message: str,
               error_type: str, started: float, final: JobStatus = JobStatus.FAILED) -> None:
        try:
            after = self.queue.retry_or_fail(job, message, final_status=final,
                                             metadata=self.failures.attempt(job, stage, error_type,
                                                                    message))
        except LeaseLostError:
            log.warning("lease lost; another worker owns the job now", job_id=job.job_id)
            return
        if after.status is JobStatus.QUEUED:
            self.events.emit(JobRetried(job.inbox, job.job_id, error_type,
                                        after.run_after - self.clock()))
            log.warning("job will be retried",
                        error=message, retry_in=round(after.run_after - self.clock(), 1))
            return
        if path is not None:
            self.failures.file_failed(box, path, after, stage, message, error_type)
        self._emit_finished(after, started, "timeout" if final is JobStatus.TIMEOUT else "failed")

    def _fail_permanently(self, job: Job, box: InboxFolders, path: Path, stage: str,
                          message: str, error_type: str, started: float) -> None:
        try:
            after = self.queue.update_job_status(
                job.job_id, JobStatus.FAILED, message=message,
                metadata=self.failures.attempt(job, stage, error_type, message),
                lease_token=job.lease_token)
        except LeaseLostError:
            log.warning("lease lost; another worker owns the job now", job_id=job.job_id)
            return
        self.failures.file_failed(box, path, after, stage, message, error_type)
        log.warning("job failed", stage=stage, error=message)
        self._emit_finished(after, started, "failed")

    def _finish(self, job: Job, status: JobStatus, message: str, started: float, *,
                outcome: str, metadata: dict[str, Any], extra: dict[str, Any] | None = None
                ) -> None:
        if status is JobStatus.COMPLETED:  # an earlier attempt's error lives on in the history
            metadata = {**record_patch(stage=None, error_type=None, paused=None), **metadata}
        try:
            after = self.queue.update_job_status(job.job_id, status, 100 if status is
                                                 JobStatus.COMPLETED else None, message,
                                                 metadata=metadata, lease_token=job.lease_token)
        except LeaseLostError:
            log.warning("lease lost; another worker owns the job now", job_id=job.job_id)
            return
        self._emit_finished(after, started, outcome, extra)

    def _emit_finished(self, job: Job, started: float, outcome: str,
                       extra: dict[str, Any] | None = None) -> None:
        self.events.emit(JobFinished(job.inbox, job.job_id, outcome,
                                     time.monotonic() - started, **(extra or {})))

    # -- shutdown ----------------------------------------------------------------------------

    def abort_current(self) -> None:
        """Kill the worker mid-job (shutdown past its grace); the job goes back uncounted."""
        self._abort.set()
        self.worker.kill()
        if self._relief is not None:
            self._relief.kill()


def _inode(path: Path) -> int | None:
    try:
        return path.lstat().st_ino
    except OSError:
        return None


def _same_file(path: Path, result: PipelineResult) -> bool:
    """The file about to be filed is the content the worker indexed (inode, size, mtime)."""
    if result.file is None:  # a pipeline that does not report it (tests' scripted one)
        return True
    try:
        st = path.lstat()
    except OSError:
        return False
    return (st.st_ino, st.st_size, st.st_mtime_ns) == (
        result.file.inode, result.file.size, result.file.mtime_ns)

