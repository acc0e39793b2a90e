"""How a job is shown to people (CLI, web page): its state in words, not its storage."""

from __future__ import annotations

from agent.queue.base import Job, JobStatus


def shown_status(job: Job) -> str:
    """``paused`` for a long job waiting its turn again, ``resumed`` once it runs on; else the
    status itself. Taking turns with small files is not a failure, and does not look like one."""
    if job.metadata.get("paused"):
        if job.status is JobStatus.QUEUED:
            return "paused"
        if job.status is JobStatus.PROCESSING:
            return "resumed"
    return str(job.status)


def shown_progress(job: Job) -> str:
    """A running or waiting job's percentage; a failed one's stage (where it failed), since a
    percentage of a failed job means nothing."""
    if job.status in (JobStatus.FAILED, JobStatus.TIMEOUT):
        return str(job.metadata.get("stage") or "-")
    return f"{job.progress}%"
