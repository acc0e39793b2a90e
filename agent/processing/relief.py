"""Files that wait while the only worker is parked in the middle of a job (one long OCR page
has no checkpoint to pause at): a relief worker runs the jobs due now, for at most
``RELIEF_SECONDS``, then stops so the parked job goes on where it was."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import structlog

from agent.config.settings import Settings
from agent.events import EventBus
from agent.processing.supervision import WorkerSupervisor
from agent.queue.base import Job, JobQueue

log = structlog.get_logger("agent.processing.processor")
RELIEF_SECONDS = 60.0

#: (job, the relief's supervisor, the parked job's lease keeper, when to ask it to pause)
RunJob = Callable[[Job, WorkerSupervisor, Callable[[], None], float], None]


class Relief:
    def __init__(self, settings: Settings, queue: JobQueue, events: EventBus, factory: str, *,
                 worker_id: str, lease: Callable[[], float], tick: Callable[[], None]) -> None:
        self.queue = queue
        self.worker_id = worker_id
        self.supervisor = WorkerSupervisor(settings, queue, events, factory, lease=lease,
                                           tick=tick)

    def run(self, run_job: RunJob, keep_parked_lease: Callable[[], None],
            aborted: Callable[[], bool]) -> None:
        """Claim and run due jobs on a fresh worker until none is due or time is up; a job
        still running then is asked to pause (the parked job counts as waiting)."""
        log.info("job parked mid-page; waiting files run on a relief worker")
        until = time.monotonic() + RELIEF_SECONDS
        try:
            self.supervisor.start("relief")
        except Exception as exc:  # noqa: BLE001 - then the parked job simply goes on
            log.warning("no relief worker; the parked job goes on", error=str(exc))
            return
        try:
            while time.monotonic() < until and not aborted():
                job = self.queue.get_next_job(self.worker_id)
                if job is None:
                    break
                try:
                    run_job(job, self.supervisor, keep_parked_lease, until)
                except Exception:  # noqa: BLE001 - the parked job must not break with it
                    log.exception("relief job broke off; it is handed back")
                    with contextlib.suppress(Exception):  # else its lease expires: reclaimed
                        self.queue.retry_or_fail(job, "interrupted by an internal error; "
                                                 "retrying")
                    break
        finally:
            self.supervisor.worker.stop()
        log.info("parked job resumes")

    def kill(self) -> None:
        self.supervisor.worker.kill()
