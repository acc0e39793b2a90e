"""An operator's retry: a failed job's file goes back to processing/ and the job is queued."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from agent.errors import AgentError
from agent.folders import REPORT_SUFFIX, InboxFolders
from agent.moves import move_no_clobber
from agent.queue.base import Job, JobQueue


def retry_failed_job(queue: JobQueue, boxes: Mapping[str, InboxFolders], job_id: str) -> Job:
    """Requeue a failed or timed-out job, moving its file from failed/ to where a claim finds it."""
    job = queue.get_job_status(job_id)
    box = boxes.get(job.inbox or "")
    failed_path = job.metadata.get("failed_path")
    if box is not None and failed_path and os.path.lexists(failed_path):
        original = job.original_filename or Path(job.file_path).name
        target = box.processing / box.processing_name(job.job_id, original)
        if os.path.lexists(target):
            raise AgentError(f"{target} already exists; not retrying")
        move_no_clobber(Path(failed_path), box.processing, target.name)
        report = job.metadata.get("failed_report") or failed_path + REPORT_SUFFIX
        _remove_own_report(Path(report), job.job_id)
    elif failed_path:
        raise AgentError(f"job {job_id}: its file {failed_path} is gone; nothing to retry")
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
