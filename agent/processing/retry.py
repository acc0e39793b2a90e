"""An operator's retry: a failed job's file goes back to processing/ and the job is queued."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from agent.errors import AgentError
from agent.files.folders import REPORT_SUFFIX, InboxFolders
from agent.queue.base import Job, JobQueue


def retry_failed_job(queue: JobQueue, boxes: Mapping[str, InboxFolders], job_id: str) -> Job:
    """Requeue a failed or timed-out job, moving its file from failed/ to where a claim finds it."""
    job = queue.get_job_status(job_id)
    box = boxes.get(job.inbox or "")
    failed_path = job.record.failed_path
    if failed_path and box is None:
        raise AgentError(f"job {job_id}: its inbox {job.inbox!r} is no longer configured")
    if box is not None and failed_path:
        swapped = box.problem()
        if swapped is not None:
            raise AgentError(f"not retrying: {swapped}")
        # The file is taken from the failed/ folder pinned at start, never through a link
        fd = box.open_filed(Path(failed_path), (box.failed,))
        if fd is None:
            raise AgentError(f"job {job_id}: its file {failed_path} is gone or is not a "
                             "regular file in failed/; nothing to retry")
        os.close(fd)
        original = job.original_filename or Path(job.file_path).name
        name = box.processing_name(job.job_id, original)
        try:
            box.move_into(Path(failed_path), box.processing, name, exact=True)
        except FileExistsError:
            raise AgentError(f"{box.processing / name} already exists; not retrying") from None
        report = job.record.failed_report or failed_path + REPORT_SUFFIX
        _remove_own_report(Path(report), job.job_id)
    return queue.retry_job(job_id)


def _remove_own_report(path: Path, job_id: str) -> None:
    """Delete the job's failure report, and nothing that merely has a report's name."""
    try:
        with open(path, encoding="utf-8") as fh:
            report = json.load(fh)
    except (OSError, ValueError):
        return
    if isinstance(report, dict) and report.get("job_id") == job_id:
        path.unlink(missing_ok=True)
