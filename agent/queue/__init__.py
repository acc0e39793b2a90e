"""Durable job queues behind one contract; SQLite is the embedded default."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.queue.base import (
    Job,
    JobFilter,
    JobPage,
    JobQueue,
    JobStatus,
    NewJob,
    QueueStats,
    RetryPolicy,
)

if TYPE_CHECKING:
    from agent.config.settings import Settings

__all__ = ["Job", "JobFilter", "JobPage", "JobQueue", "JobStatus", "NewJob", "QueueStats",
           "RetryPolicy", "open_queue"]


def lease_seconds(basis: float) -> float:
    """Past ``basis`` (see ``config.lease_basis``) with a margin, so the agent's own kill fires
    before another may reclaim the job; the agent renews it while the job runs."""
    return basis + max(5.0, min(60.0, basis / 2))


def open_queue(settings: Settings, *, readonly: bool = False) -> JobQueue:
    """The queue the configuration names; ``readonly`` opens it without creating anything."""
    policy = RetryPolicy(
        max_retries=settings.queue.max_retries,
        base_delay=settings.queue.retry_backoff_seconds,
        max_delay=settings.queue.retry_backoff_max_seconds,
    )
    from agent.config.settings import lease_basis

    lease = lease_seconds(lease_basis(settings.queue))
    if settings.queue.backend == "redis":
        from agent.queue.redis_streams import RedisStreamsJobQueue

        assert settings.queue.redis_url is not None
        return RedisStreamsJobQueue(settings.queue.redis_url,
                                    namespace=settings.queue.redis_namespace,
                                    lease_seconds=lease, retry_policy=policy, readonly=readonly)
    from agent.queue.sqlite import SQLiteJobQueue

    return SQLiteJobQueue(settings.queue_path, lease_seconds=lease, retry_policy=policy,
                          busy_timeout=settings.queue.busy_timeout_seconds, readonly=readonly)
