"""What a failed attempt leaves behind: a line of the job's history, and for a job that will
not run again its file in failed/ with a report beside it saying where and why."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from agent.files.folders import InboxFolders
from agent.files.names import display_name
from agent.queue.base import Job, JobQueue
from agent.queue.record import record_patch

TIMEOUT = "Timeout"  # the error type of a job that ran out of time


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class FailureReports:
    def __init__(self, queue: JobQueue, inboxes: Mapping[str, InboxFolders],
                 clock: Callable[[], float]) -> None:
        self.queue = queue
        self.inboxes = inboxes
        self.clock = clock

    def attempt(self, job: Job, stage: str, error_type: str, message: str) -> dict[str, Any]:
        """Metadata for a failed attempt: where and why, and one more line of its history."""
        entry = {"attempt": job.attempts, "stage": stage, "error_type": error_type,
                 "error": message[:500], "at": iso(self.clock())}
        return record_patch(stage=stage, error_type=error_type, paused=None,
                            history=[*job.record.history, entry])

    def file_failed(self, box: InboxFolders, path: Path, job: Job, stage: str, message: str,
                    error_type: str) -> None:
        """Move the job's file to failed/ with its report, and record both on the job."""
        report = {
            "job_id": job.job_id, "inbox": job.inbox,
            "file": display_name(job.original_filename or path.name),
            "stage": stage, "error_type": error_type, "error": message,
            "status": str(job.status), "attempts": job.attempts, "retries": job.retries,
            "queued_at": iso(job.created_at), "failed_at": iso(self.clock()),
        }
        dest, report_path = box.move_to_failed(path, job.original_filename or path.name, report)
        self.queue.annotate_job(job.job_id, {"failed_path": str(dest),
                                             "failed_report": str(report_path)})

    def file_timed_out(self, job: Job, stage: str, message: str) -> None:
        """A job that timed out for good outside a run (its lease expired): its file, if still
        in processing/, goes to failed/."""
        box = self.inboxes.get(job.inbox or "")
        if box is None:
            return
        original = job.original_filename or Path(job.file_path).name
        path = box.processing / box.processing_name(job.job_id, original)
        if os.path.lexists(path):
            self.file_failed(box, path, job, stage, message, TIMEOUT)
