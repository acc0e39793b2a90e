"""After a crash or restart: this agent's interrupted jobs go back to the queue, and each file
left in processing/ finds its job again (or, without one, goes back to the inbox)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import structlog

from agent.files.folders import InboxFolders, is_regular_file
from agent.files.names import display_name
from agent.processing.failures import FailureReports
from agent.queue.base import JobQueue, JobStatus
from agent.queue.record import record_patch

log = structlog.get_logger("agent.processing.recovery")
MAX_UNCOUNTED_RECOVERIES = 3  # a job found running after a crash more often spends retries


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover(queue: JobQueue, inboxes: Mapping[str, InboxFolders], agent_id: str,
            failures: FailureReports) -> None:
    """Requeue our dead runs' jobs, and match files left in processing/ to their jobs.

    Called once the agent holds its data folder's lock: no other run of this agent can be
    alive then, whatever its pid says (a run killed a moment ago may linger as a zombie), so
    its jobs go back at once and first, without spending a retry. A job that keeps being
    found this way (it may be what brings the agent down) spends retries after a few times.
    """
    mine = [j for j in queue.list_jobs(status="processing", limit=100_000)
            if (j.claimed_by or "").startswith(agent_id + ":")]
    for job in mine:
        recoveries = job.record.recoveries + 1
        counted = recoveries > MAX_UNCOUNTED_RECOVERIES
        queue.release_abandoned(job.job_id, "the agent stopped during the job",
                                counted=counted, metadata=record_patch(recoveries=recoveries))
        log.warning("requeued a job left running by a stopped agent", job_id=job.job_id,
                    retry_spent=counted)
    for box in inboxes.values():
        swapped = box.problem()
        if swapped is not None:
            log.error("recovery leaves this inbox alone", reason=swapped)
            continue
        for temp in box.remove_stale_temp_files(_pid_alive):
            log.warning("removed a temporary file left by a stopped agent", file=str(temp))
        try:
            entries = box.list_processing()
        except OSError:
            continue
        for entry in entries:
            try:
                _recover_file(queue, box, entry, failures)
            except Exception:  # noqa: BLE001 - one odd entry must not stop recovery
                log.exception("cannot recover an entry of processing/; left in place",
                              file=display_name(str(entry)))


def _recover_file(queue: JobQueue, box: InboxFolders, path: Path,
                  failures: FailureReports) -> None:
    if path.name.startswith(".") or not is_regular_file(path.lstat()):
        return
    job_id, sep, original = path.name.partition("__")
    job = None
    if sep:
        try:
            job = queue.get_job_status(job_id)
        except KeyError:
            job = None
    if job is None:
        back = box.move_to_inbox(path, original or path.name)
        log.warning("orphan file in processing/ returned to the inbox", file=str(back))
        return
    if job.status in (JobStatus.QUEUED, JobStatus.PROCESSING):
        return  # the next claim resumes from processing/
    if job.status is JobStatus.COMPLETED:
        dest = box.move_to_done(path, job.original_filename or original)
        log.warning("finished filing a completed job", job_id=job.job_id, file=str(dest))
    else:
        failures.file_failed(box, path, job, job.record.stage or "",
                             job.message or "failed", "Recovered")
