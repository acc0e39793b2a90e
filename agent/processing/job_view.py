"""How a job is shown to people (CLI, web page): its state in words, not its storage."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from agent.files.folders import InboxFolders
from agent.files.names import display_name
from agent.queue.base import Job, JobStatus


def shown_status(job: Job) -> str:
    """``paused`` for a long job waiting its turn again, ``resumed`` once it runs on; else the
    status itself. Taking turns with small files is not a failure, and does not look like one."""
    if job.record.paused:
        if job.status is JobStatus.QUEUED:
            return "paused"
        if job.status is JobStatus.PROCESSING:
            return "resumed"
    return str(job.status)


def shown_progress(job: Job) -> str:
    """A running or waiting job's percentage; a failed one's stage (where it failed), since a
    percentage of a failed job means nothing."""
    if job.status in (JobStatus.FAILED, JobStatus.TIMEOUT):
        return job.record.stage or "-"
    return f"{job.progress}%"


def paused_times(job: Job) -> int:
    """How often the job paused to let waiting files through (each time it resumed from its
    checkpoint)."""
    return job.record.turns


def stage_times(job: Job) -> dict[str, float]:
    """Seconds the job spent in each stage, summed over every turn it ran."""
    return dict(job.record.stages)


def current_location(job: Job, boxes: Iterable[InboxFolders]) -> str | None:
    """Where the job's file is now: done/ or failed/ once filed, processing/ while worked on,
    the inbox while it waits."""
    record = job.record
    for filed in (record.done_path, record.failed_path):
        if filed and os.path.lexists(filed):
            return display_name(filed)
    box = next((b for b in boxes if b.name == job.inbox), None)
    if box is not None:
        original = job.original_filename or Path(job.file_path).name
        working = box.processing / box.processing_name(job.job_id, original)
        if os.path.lexists(working):
            return display_name(str(working))
    return display_name(job.file_path) if os.path.lexists(job.file_path) else None
