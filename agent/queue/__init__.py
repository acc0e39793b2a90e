"""Durable job queues behind one contract; SQLite is the embedded default."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.queue.base import Job, JobQueue, JobStatus, NewJob, QueueStats, RetryPolicy

if TYPE_CHECKING:
    from agent.config import Settings

__all__ = ["Job", "JobQueue", "JobStatus", "NewJob", "QueueStats", "RetryPolicy", "open_queue"]

# Past the job timeout, so the agent's own kill fires before another worker may reclaim the job.
LEASE_MARGIN_SECONDS = 60.0


def open_queue(settings: Settings) -> JobQueue:
    """The queue the configuration names."""
    policy = RetryPolicy(
        max_retries=settings.queue.max_retries,
        base_delay=settings.queue.retry_backoff_seconds,
        max_delay=settings.queue.retry_backoff_max_seconds,
    )
    lease = settings.queue.job_timeout_seconds + LEASE_MARGIN_SECONDS
    if settings.queue.backend == "redis":
        from agent.errors import ConfigError

        raise ConfigError("queue.backend: 'redis' is not available in this build yet; use 'sqlite'")
    from agent.queue.sqlite import SQLiteJobQueue

    return SQLiteJobQueue(settings.queue_path, lease_seconds=lease, retry_policy=policy)
