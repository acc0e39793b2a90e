"""The job-queue contract every backend implements, and the types it speaks in."""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from agent.errors import AmbiguousJobError, InvalidJobUpdateError, JobNotFoundError
from agent.files.names import display_name

if TYPE_CHECKING:
    from agent.queue.record import JobRecord


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    TIMEOUT = "timeout"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.TIMEOUT})

# Transitions a caller may ask for with update_job_status; claiming (queued → processing)
# happens only through get_next_job, and reclaiming leases only through cleanup_expired_jobs.
ALLOWED_TRANSITIONS: Mapping[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.FAILED}),
    JobStatus.PROCESSING: frozenset(
        {JobStatus.PROCESSING, JobStatus.QUEUED, JobStatus.COMPLETED, JobStatus.FAILED,
         JobStatus.TIMEOUT}
    ),
    JobStatus.COMPLETED: frozenset(),
    JobStatus.FAILED: frozenset({JobStatus.QUEUED}),
    JobStatus.TIMEOUT: frozenset({JobStatus.QUEUED}),
}

Clock = Callable[[], float]
MIN_PREFIX = 4


def as_status(value: JobStatus | str) -> JobStatus:
    """A status from its name, or ``InvalidJobUpdateError`` listing the valid ones."""
    try:
        return JobStatus(value)
    except ValueError:
        allowed = ", ".join(s.value for s in JobStatus)
        raise InvalidJobUpdateError(f"unknown status {value!r} (one of: {allowed})") from None


def check_progress(progress: int | None) -> None:
    if progress is None:
        return
    if isinstance(progress, bool) or not isinstance(progress, int) or not 0 <= progress <= 100:
        raise InvalidJobUpdateError(f"progress must be an integer from 0 to 100, not {progress!r}")


def check_job_prefix(prefix: str) -> None:
    if len(prefix) < MIN_PREFIX or not all(c in "0123456789abcdef" for c in prefix):
        raise InvalidJobUpdateError(
            f"{prefix!r} is not a job id: give at least {MIN_PREFIX} of its hex digits")


def pick_job_id(prefix: str, candidates: Sequence[str]) -> str:
    """The single candidate, or an error naming none or several (the first few)."""
    if not candidates:
        raise JobNotFoundError(f"no job with id {prefix!r}")
    if len(candidates) > 1:
        shown = ", ".join(c[:12] for c in candidates[:5])
        raise AmbiguousJobError(f"{prefix!r} matches several jobs ({shown}…): give more of "
                                "the id", list(candidates))
    return candidates[0]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff: ``base * 2**retries`` seconds, capped at ``max_delay``."""

    max_retries: int = 3
    base_delay: float = 10.0
    max_delay: float = 600.0

    def delay(self, retries_so_far: int) -> float:
        return float(min(self.max_delay, self.base_delay * (2 ** max(0, retries_so_far))))


class Tunable:
    """The retry policy and lease every backend keeps, changeable on a config reload."""

    retry_policy: RetryPolicy
    lease_seconds: float

    def configure(self, *, retry_policy: RetryPolicy | None = None,
                  lease_seconds: float | None = None) -> None:
        """Change the retry policy or the lease of future claims (a config reload)."""
        if retry_policy is not None:
            self.retry_policy = retry_policy
        if lease_seconds is not None:
            self.lease_seconds = lease_seconds


@dataclass(slots=True)
class Job:
    """A snapshot of one job row. ``lease_token`` is set only on the holder's copy."""

    job_id: str
    file_path: str
    status: JobStatus
    original_filename: str | None = None
    inbox: str | None = None
    content_key: str | None = None
    progress: int = 0
    message: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0
    retries: int = 0
    attempts: int = 0
    run_after: float = 0.0
    timeout_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    claimed_by: str | None = None
    lease_token: str | None = None
    _record: JobRecord | None = field(default=None, repr=False, compare=False)

    @property
    def record(self) -> JobRecord:
        """``metadata`` read as the typed record the agent writes (``agent.queue.record``),
        validated once per snapshot (a page row reads it four times)."""
        if self._record is None:
            from agent.queue.record import JobRecord

            self._record = JobRecord.of(self.metadata)
        return self._record

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view (names shown escaped); the lease token stays private to its holder."""
        return {
            "job_id": self.job_id,
            "status": str(self.status),
            "file_path": display_name(self.file_path),
            "original_filename": (display_name(self.original_filename)
                                  if self.original_filename is not None else None),
            "inbox": self.inbox,
            "progress": self.progress,
            "message": self.message,
            "warnings": self.record.warnings,  # parts of the file skipped
            "metadata": self.metadata,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "retries": self.retries,
            "attempts": self.attempts,
            "run_after": self.run_after,
            "timeout_at": self.timeout_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "claimed_by": self.claimed_by,
        }


@dataclass(frozen=True, slots=True)
class NewJob:
    """One file to queue with ``enqueue_many``."""

    file_path: str
    original_filename: str | None = None
    metadata: Mapping[str, Any] | None = None
    inbox: str | None = None
    content_key: str | None = None


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Which jobs a listing shows: a status, an inbox, and part of the file name (any case)."""

    status: JobStatus | None = None
    inbox: str | None = None
    name: str | None = None

    def matches_name(self, original: str | None) -> bool:
        return not self.name or self.name.lower() in (original or "").lower()


@dataclass(frozen=True, slots=True)
class JobPage:
    """One page of a listing, newest first; ``next_cursor`` continues it (None: the last)."""

    jobs: list[Job]
    next_cursor: str | None


def parse_cursor(cursor: str | None) -> int | None:
    """A listing's cursor (the position of the last job shown), or ``InvalidJobUpdateError``."""
    if cursor is None:
        return None
    if not cursor.isdigit() or len(cursor) > 18:
        raise InvalidJobUpdateError(f"{cursor[:40]!r} is not a cursor from an earlier page")
    return int(cursor)


@dataclass(frozen=True, slots=True)
class QueueStats:
    """What status, health checks and metrics read at a glance."""

    counts: Mapping[JobStatus, int]
    due: int
    waiting_retry: int
    oldest_queued_age: float | None
    expired_leases: int
    # Per inbox ("" for jobs queued without one): (due, waiting to retry).
    backlog_by_inbox: Mapping[str, tuple[int, int]] = field(default_factory=dict)


@runtime_checkable
class JobQueue(Protocol):
    """A durable queue of file jobs with leases.

    Every change to a claimed job is fenced by the ``lease_token`` returned with it, so a
    worker whose lease was reclaimed cannot complete or fail a job someone else now holds.
    """

    retry_policy: RetryPolicy

    def enqueue_job(
        self,
        file_path: str,
        original_filename: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        *,
        inbox: str | None = None,
        content_key: str | None = None,
        delay: float = 0.0,
    ) -> Job: ...

    def enqueue_many(self, items: Sequence[NewJob]) -> list[Job]: ...

    def known_keys(self, keys: Iterable[str]) -> set[str]: ...

    def queued_paths(self, paths: Iterable[str]) -> set[str]: ...

    def get_next_job(
        self, worker_id: str | None = None, lease_seconds: float | None = None
    ) -> Job | None: ...

    def update_job_status(
        self,
        job_id: str,
        status: JobStatus | str,
        progress: int | None = None,
        message: str | None = None,
        *,
        metadata: Mapping[str, Any] | None = None,
        lease_token: str | None = None,
    ) -> Job: ...

    def get_job_status(self, job_id: str) -> Job: ...

    def resolve_job_id(self, prefix: str) -> str: ...

    def cleanup_expired_jobs(self) -> int: ...

    def get_pending_jobs_count(self) -> int: ...

    def extend_lease(self, job: Job, lease_seconds: float | None = None) -> None: ...

    def retry_or_fail(
        self, job: Job, message: str, *, final_status: JobStatus = JobStatus.FAILED,
        metadata: Mapping[str, Any] | None = None, count_attempt: bool = True,
    ) -> Job: ...

    def release_job(
        self, job: Job, message: str, *, delay: float = 0.0,
        metadata: Mapping[str, Any] | None = None,
    ) -> Job: ...

    def retry_job(self, job_id: str) -> Job: ...

    def release_abandoned(self, job_id: str, message: str, *, counted: bool = True,
                          metadata: Mapping[str, Any] | None = None) -> Job: ...

    def annotate_job(self, job_id: str, metadata: Mapping[str, Any]) -> None: ...

    def reclaim_expired_leases(self) -> list[Job]: ...

    def find_job_by_key(self, content_key: str) -> Job | None: ...

    def list_jobs(
        self, status: JobStatus | str | None = None, limit: int = 100, inbox: str | None = None
    ) -> list[Job]: ...

    def page_jobs(self, where: JobFilter = JobFilter(), *, limit: int = 50,
                  cursor: str | None = None) -> JobPage:
        """A page of jobs, newest first; pass its ``next_cursor`` back for the next one."""
        ...

    def count_jobs(self, where: JobFilter = JobFilter()) -> int: ...

    def stats(self) -> QueueStats: ...

    def purge(self, older_than_seconds: float, batch: int = 5000) -> int: ...

    def count_by_status(self) -> dict[JobStatus, int]: ...

    def check_writable(self) -> None: ...

    def identity(self) -> str: ...

    def configure(self, *, retry_policy: RetryPolicy | None = None,
                  lease_seconds: float | None = None) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> JobQueue: ...

    def __exit__(self, *exc: object) -> None: ...


@runtime_checkable
class FileBackedQueue(Protocol):
    """A queue that lives in one file (SQLite): it can give space back and be copied online."""

    def vacuum(self) -> None: ...

    def backup(self, dest: str | os.PathLike[str]) -> Path: ...

