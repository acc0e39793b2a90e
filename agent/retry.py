"""An operator's retry: a failed job's file goes back to processing/ and the job is queued."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from agent.errors import AgentError
from agent.folders import InboxFolders, move_no_clobber
from agent.queue.base import Job, JobQueue


def retry_failed_job(queue: JobQueue, boxes: Mapping[str, InboxFolders], job_id: str) -> Job:
    """Requeue a failed or timed-out job, moving its file from failed/ to where a claim finds it."""
    job = queue.get_job_status(job_id)
    box = boxes.get(job.inbox or "")
    failed_path = job.metadata.get("failed_path")
    if box is not None and failed_path and Path(failed_path).is_file():
        original = job.original_filename or Path(job.file_path).name
        target_name = box.processing_name(job.job_id, original)
        moved = move_no_clobber(Path(failed_path), box.processing, target_name)
        if moved.name != target_name:
            raise AgentError(f"{box.processing / target_name} already exists; not retrying")
        Path(failed_path + ".error.json").unlink(missing_ok=True)
    elif failed_path:
        raise AgentError(f"job {job_id}: its file {failed_path} is gone; nothing to retry")
    return queue.retry_job(job_id)
