"""The worker process under supervision while it runs a job: its lease renewed, its pause
asked for when other files wait, and a fresh worker after a timeout, a death, its memory
ceiling or a large file."""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from agent.config.settings import Settings
from agent.errors import LeaseLostError
from agent.events import EventBus, WorkerStarted
from agent.pipeline import JobRequest
from agent.processing.worker import ErrorKind, Outcome, WorkerOutcome, WorkerProcess
from agent.queue.base import Job, JobQueue

log = structlog.get_logger("agent.processing.processor")
PARK_AFTER_SECONDS = 2.0  # a job asked to pause that has not within this is parked


class WorkerSupervisor:
    def __init__(self, settings: Settings, queue: JobQueue, events: EventBus, factory: str,
                 lease: Callable[[], float], tick: Callable[[], None]) -> None:
        self.settings = settings
        self.queue = queue
        self.events = events
        self.worker = WorkerProcess(settings, factory)
        self._lease = lease
        self._tick = tick

    def start(self, reason: str) -> None:
        started = time.monotonic()
        self.worker.start()
        self.events.emit(WorkerStarted(reason, time.monotonic() - started))

    def run(self, job: Job, request: JobRequest, size: int,
            on_progress: Callable[[int, str, int], None], aborted: Callable[[], bool], *,
            relieve: Callable[[Callable[[], None]], None] | None = None,
            also: Callable[[], None] | None = None, yield_by: float | None = None
            ) -> WorkerOutcome:
        """Run the job in the worker: killed when it makes no progress for
        ``stall_timeout_seconds`` or runs past its ceiling; its lease is renewed meanwhile.

        When files wait, the job is asked to pause at its next checkpoint; if it has not
        within ``PARK_AFTER_SECONDS`` (one long OCR page has no checkpoint inside), its
        worker is parked (frozen) and ``relieve`` runs the waiting files elsewhere, given a
        function that keeps this job's lease. ``also`` runs on every wait (a parked job's
        lease, when this is a relief job); past ``yield_by`` the job is asked to pause."""
        from agent.config.settings import job_ceiling

        if not self.worker.alive:
            self.start("dead")
        lease = self._lease()
        renewed = [time.monotonic()]
        yield_after = self.settings.processing.yield_after_seconds
        yield_at = [time.monotonic() + yield_after if yield_after else float("inf")]
        asked = [float("inf")]  # when the pause was asked for
        parked = [False]

        def renew(now: float) -> None:
            if now - renewed[0] < lease / 4:
                return
            renewed[0] = now
            try:
                self.queue.extend_lease(job, lease)
            except LeaseLostError:
                log.warning("lease lost while processing")
            except Exception as exc:  # a busy queue must not stop the job; retried soon
                log.warning("could not renew the lease", error=str(exc))

        def on_wait() -> float | None:
            self._tick()
            if also is not None:
                also()
            now = time.monotonic()
            if yield_by is not None and now >= yield_by and asked[0] == float("inf"):
                asked[0] = now
                self.worker.request_yield()
            if now >= yield_at[0]:
                yield_at[0] = now + 1.0  # look again in a second
                if self._others_waiting():
                    yield_at[0] = float("inf")
                    asked[0] = now
                    self.worker.request_yield()
            renew(now)
            if relieve is not None and not parked[0] and now - asked[0] >= PARK_AFTER_SECONDS:
                parked[0] = True
                return self._park(relieve, lambda: renew(time.monotonic()))
            return None

        queue = self.settings.queue
        outcome = self.worker.run(request, job_ceiling(queue, size), on_progress,
                                  on_wait=on_wait, stall_timeout=queue.stall_timeout_seconds)
        if aborted():
            return outcome
        out_of_memory = outcome.is_error(ErrorKind.MEMORY_LIMIT)
        if outcome.kind in (Outcome.TIMEOUT, Outcome.DIED) or out_of_memory:
            self.start("memory" if out_of_memory else str(outcome.kind))
        elif (peak := self.worker.peak_mb) > self.settings.processing.worker_restart_mb:
            # One big file must not leave the worker large for the rest of the day.
            log.info("worker restarted after a large file", peak_mb=peak,
                     limit_mb=self.settings.processing.worker_restart_mb)
            self.worker.stop()
            self.start("large_file")
        return outcome

    def _park(self, relieve: Callable[[Callable[[], None]], None],
              keep_lease: Callable[[], None]) -> float:
        """Freeze the worker while ``relieve`` runs; the seconds it stayed frozen."""
        started = time.monotonic()
        self.worker.suspend()
        try:
            relieve(keep_lease)
        finally:
            self.worker.resume()
        return time.monotonic() - started

    def _others_waiting(self) -> bool:
        """Jobs are due now besides the one in flight (a job that has run past
        ``yield_after_seconds`` then pauses at its next checkpoint to let them through)."""
        try:
            return self.queue.stats().due > 0
        except Exception as exc:  # noqa: BLE001 - a busy queue only delays the question
            log.warning("could not read the backlog", error=str(exc))
            return False
