"""The scale-out queue: Redis Streams, so several agents on several machines share one workload.

Layout under one key prefix (``ns``): a stream of job ids read by one consumer group
(``XREADGROUP``); a hash per job holding its state; a sorted set of delayed jobs (backoff) moved
onto the stream atomically when due; a sorted set of leases; sorted sets per status for listing
and counts; a dead-letter stream of failed jobs; ``SET NX`` on the file identity for enqueue
dedupe across agents. Every change of a claimed job runs in one Lua script that checks the
holder's lease token first, so a stale consumer cannot complete a job another now holds.
Entries are acknowledged and deleted when their job leaves the stream, never trimmed unacked.

Durability: run Redis with ``appendonly yes`` and ``appendfsync everysec`` — the same trade as
SQLite's ``synchronous=NORMAL`` (a crash of Redis itself may lose about a second of writes).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from agent.errors import (
    InvalidJobUpdateError,
    JobNotFoundError,
    LeaseLostError,
    QueueDatabaseError,
)
from agent.files.names import decode_name, decode_optional, encode_name
from agent.queue.base import (
    ALLOWED_TRANSITIONS,
    Clock,
    Job,
    JobStatus,
    NewJob,
    RetryPolicy,
    Tunable,
    as_status,
    check_progress,
)
from agent.queue.redis_reads import RedisReads

MIN_REDIS = (7, 0)
UNFENCED = "*"  # in place of a lease token: the predecessor's unfenced update
GROUP = "agents"

# The scripts are in lua/ beside this module; each starts with common.lua. KEYS are built from
# the prefix inside them (one prefix per deployment).
SCRIPTS = ("enqueue", "promote", "claim", "leased", "reclaim", "admin")


def _script(name: str) -> str:
    """A script's source: common.lua, then its own file (package data)."""
    from importlib.resources import files

    folder = files("agent.queue").joinpath("lua")
    return folder.joinpath("common.lua").read_text() + folder.joinpath(f"{name}.lua").read_text()


def _num(value: Any, kind: type = float) -> Any:
    if value is None or value == "":
        return None
    return kind(value)


class RedisStreamsJobQueue(RedisReads, Tunable):
    """``JobQueue`` on Redis ≥ 7 Streams; safe for many agents on many machines."""

    def __init__(self, url: str, *, namespace: str = "ingest", lease_seconds: float = 600.0,
                 retry_policy: RetryPolicy | None = None, clock: Clock = time.time,
                 client: Any = None, readonly: bool = False) -> None:
        import redis

        self.url = url
        self.ns = namespace
        self.lease_seconds = lease_seconds
        self.retry_policy = retry_policy or RetryPolicy()
        self.clock = clock
        self.consumer = f"{uuid.uuid4().hex[:12]}"
        self._next_promote = 0.0
        try:
            # decode_responses: every reply is str (redis-py's types cannot know that).
            self.r: Any = client or redis.Redis.from_url(url, decode_responses=True)
            version = self.r.info("server")["redis_version"]
        except redis.RedisError as exc:
            raise QueueDatabaseError(f"{url}: cannot reach Redis: {exc}") from None
        if tuple(int(p) for p in version.split(".")[:2]) < MIN_REDIS:
            raise QueueDatabaseError(f"{url}: Redis {version} is too old; 7.0 or newer needed")
        if not readonly:  # a reader (status, jobs) creates nothing
            try:
                self.r.xgroup_create(self._k("stream"), GROUP, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        self._scripts = {name: self.r.register_script(_script(name)) for name in SCRIPTS}

    def _k(self, name: str) -> str:
        return f"{self.ns}:{name}"

    def _run(self, name: str, *args: Any) -> Any:
        return self._scripts[name](args=[self.ns, GROUP, *args])

    # -- reading ---------------------------------------------------------------------------

    def _load(self, job_id: str) -> Job:
        data = self.r.hgetall(self._k(f"job:{job_id}"))
        if not data:
            raise JobNotFoundError(f"no job with id {job_id!r}")
        return self._from_hash(data)

    @staticmethod
    def _from_flat(values: list[str]) -> Job:
        return RedisStreamsJobQueue._from_hash(dict(zip(values[::2], values[1::2], strict=True)))

    @staticmethod
    def _from_hash(data: Mapping[str, str]) -> Job:
        return Job(
            job_id=data["job_id"], file_path=decode_name(data["file_path"]),
            status=JobStatus(data["status"]),
            original_filename=decode_optional(data.get("original_filename") or None),
            inbox=data.get("inbox") or None,
            content_key=decode_optional(data.get("content_key") or None),
            progress=int(data.get("progress") or 0), message=data.get("message") or None,
            metadata=json.loads(data.get("metadata") or "{}"),
            created_at=float(data["created_at"]), updated_at=float(data["updated_at"]),
            retries=int(data.get("retries") or 0), attempts=int(data.get("attempts") or 0),
            run_after=float(data.get("run_after") or 0), timeout_at=_num(data.get("timeout_at")),
            started_at=_num(data.get("started_at")), finished_at=_num(data.get("finished_at")),
            claimed_by=data.get("claimed_by") or None, lease_token=data.get("lease_token") or None,
        )

    def _public(self, job_id: str) -> Job:
        job = self._load(job_id)
        job.lease_token = None
        return job

    def get_job_status(self, job_id: str) -> Job:
        return self._public(job_id)

    # -- enqueue and claim ---------------------------------------------------------------------

    def enqueue_job(self, file_path: str, original_filename: str | None = None,
                    metadata: Mapping[str, Any] | None = None, *, inbox: str | None = None,
                    content_key: str | None = None, delay: float = 0.0) -> Job:
        if not file_path:
            raise InvalidJobUpdateError("file_path must not be empty")
        if delay < 0:
            raise InvalidJobUpdateError(f"delay must be ≥ 0, not {delay}")
        now = self.clock()
        new_id = uuid.uuid4().hex
        job_id = self._run("enqueue", new_id, encode_name(str(file_path)),
                           encode_name(original_filename or ""), inbox or "",
                           encode_name(content_key or str(file_path)),
                           json.dumps(dict(metadata or {})), now, now + delay)
        return self._load(job_id) if job_id == new_id else self._public(job_id)

    def enqueue_many(self, items: Sequence[NewJob]) -> list[Job]:
        return [self.enqueue_job(i.file_path, i.original_filename, i.metadata, inbox=i.inbox,
                                 content_key=i.content_key) for i in items]

    def get_next_job(self, worker_id: str | None = None,
                     lease_seconds: float | None = None) -> Job | None:
        now = self.clock()
        lease = self.lease_seconds if lease_seconds is None else lease_seconds
        if now >= self._next_promote:  # move due retries onto the stream, at most 4x a second
            self._run("promote", now)
            self._next_promote = now + 0.25
        token = secrets.token_hex(8)
        worker = worker_id or self.consumer
        claimed = self._run("claim", self.consumer, token, worker, now, now + lease)
        if claimed:
            return self._from_flat(claimed)
        # Entries delivered to a consumer that died before its claim ran (no new ones left).
        _, redelivered, _ = self.r.xautoclaim(self._k("stream"), GROUP, self.consumer,
                                              min_idle_time=60_000, count=10)
        for entry_id, fields in redelivered:
            claimed = self._run("claim", self.consumer, token, worker, now, now + lease,
                                entry_id, fields["job"])
            if claimed:
                return self._from_flat(claimed)
        self._next_promote = 0.0
        return None

    # -- changes of a claimed job ------------------------------------------------------------

    def _leased(self, job_id: str, token: str | None, new: JobStatus, *, progress: int | None = None,
                message: str | None = None, patch: Mapping[str, Any] | None = None,
                run_after: float | None = None, retries: int | None = None,
                front: bool = False, uncounted: bool = False) -> Job:
        now = self.clock()
        result = self._run("leased", job_id, token or "-", new.value,
                           "" if progress is None else progress, message or "",
                           json.dumps(dict(patch)) if patch else "", now,
                           now if run_after is None else run_after,
                           "" if retries is None else retries, "1" if front else "",
                           "1" if uncounted else "")
        if result == "missing":
            raise JobNotFoundError(f"no job with id {job_id!r}")
        if result == "lost":
            current = self._load(job_id)
            raise LeaseLostError(
                f"job {job_id}: the lease is no longer held by this worker "
                f"(status {current.status}, attempt {current.attempts}); update not applied")
        return self._from_flat(result)

    def update_job_status(self, job_id: str, status: JobStatus | str, progress: int | None = None,
                          message: str | None = None, *, metadata: Mapping[str, Any] | None = None,
                          lease_token: str | None = None) -> Job:
        new = as_status(status)
        check_progress(progress)
        if lease_token is not None:
            if new not in ALLOWED_TRANSITIONS[JobStatus.PROCESSING]:
                raise InvalidJobUpdateError(f"job {job_id}: processing → {new} is not allowed")
            return self._leased(job_id, lease_token, new, progress=progress, message=message,
                                patch=metadata)
        current = self._load(job_id)
        if current.status is JobStatus.PROCESSING:  # an update without a lease token
            job = self._leased(job_id, UNFENCED, new, progress=progress, message=message,
                               patch=metadata)
            job.lease_token = None
            return job
        if new not in ALLOWED_TRANSITIONS[current.status]:
            raise InvalidJobUpdateError(f"job {job_id}: {current.status} → {new} is not allowed")
        self._admin(job_id, [current.status], new, progress, message, metadata)
        return self._public(job_id)

    def _admin(self, job_id: str, allowed_from: Iterable[JobStatus], new: JobStatus,
               progress: int | None = None, message: str | None = None,
               patch: Mapping[str, Any] | None = None) -> None:
        result = self._run("admin", job_id, ",".join(s.value for s in allowed_from), new.value,
                           "" if progress is None else progress, message or "",
                           json.dumps(dict(patch)) if patch else "", self.clock())
        if result == "missing":
            raise JobNotFoundError(f"no job with id {job_id!r}")
        if str(result).startswith("bad:"):
            raise InvalidJobUpdateError(f"job {job_id}: {result[4:]} → {new} is not allowed")

    def extend_lease(self, job: Job, lease_seconds: float | None = None) -> None:
        lease = self.lease_seconds if lease_seconds is None else lease_seconds
        h = self._k(f"job:{job.job_id}")
        now = self.clock()
        with self.r.pipeline() as pipe:
            import redis

            try:
                pipe.watch(h)
                if pipe.hget(h, "status") != "processing" or pipe.hget(h, "lease_token") != \
                        job.lease_token:
                    raise LeaseLostError(f"job {job.job_id}: the lease is no longer held")
                pipe.multi()
                pipe.hset(h, mapping={"timeout_at": now + lease, "updated_at": now})
                pipe.zadd(self._k("leases"), {job.job_id: now + lease})
                pipe.execute()
            except redis.WatchError:
                raise LeaseLostError(f"job {job.job_id}: the lease changed meanwhile") from None
        job.timeout_at = now + lease

    def retry_or_fail(self, job: Job, message: str, *, final_status: JobStatus = JobStatus.FAILED,
                      metadata: Mapping[str, Any] | None = None,
                      count_attempt: bool = True) -> Job:
        if final_status not in (JobStatus.FAILED, JobStatus.TIMEOUT):
            raise InvalidJobUpdateError(f"final_status must be failed or timeout: {final_status}")
        if job.lease_token is None:
            raise InvalidJobUpdateError(f"job {job.job_id}: only the lease holder can retry it")
        now = self.clock()
        if not count_attempt:
            return self.release_job(job, message, metadata=metadata)
        if job.retries < self.retry_policy.max_retries:
            return self._leased(job.job_id, job.lease_token, JobStatus.QUEUED, message=message,
                                patch=metadata, retries=job.retries + 1,
                                run_after=now + self.retry_policy.delay(job.retries))
        return self._leased(job.job_id, job.lease_token, final_status, message=message,
                            patch=metadata)

    def release_job(self, job: Job, message: str, *, delay: float = 0.0,
                    metadata: Mapping[str, Any] | None = None) -> Job:
        """The holder gives its job back, spending neither a retry nor an attempt; with no
        delay it is claimed first."""
        if job.lease_token is None:
            raise InvalidJobUpdateError(f"job {job.job_id}: only the lease holder can release it")
        now = self.clock()
        return self._leased(job.job_id, job.lease_token, JobStatus.QUEUED, message=message,
                            patch=metadata, run_after=now + max(0.0, delay), front=delay <= 0,
                            uncounted=True)

    def retry_job(self, job_id: str) -> Job:
        current = self._load(job_id)
        if current.status not in (JobStatus.FAILED, JobStatus.TIMEOUT):
            raise InvalidJobUpdateError(
                f"job {job_id} is {current.status}: only failed or timed-out jobs can be retried")
        self._admin(job_id, [JobStatus.FAILED, JobStatus.TIMEOUT], JobStatus.QUEUED,
                    message="retry requested")
        return self._public(job_id)

    def reclaim_expired_leases(self) -> list[Job]:
        now = self.clock()
        expired = self.r.zrangebyscore(self._k("leases"), "-inf", f"({now}")
        out = []
        for job_id in expired:
            timeout_at = self.r.hget(self._k(f"job:{job_id}"), "timeout_at")
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(timeout_at or now)))
            result = self._run("reclaim", job_id, now, self.retry_policy.max_retries,
                               self.retry_policy.base_delay, self.retry_policy.max_delay,
                               f"lease expired at {stamp}", "1", JobStatus.TIMEOUT.value)
            if result:
                out.append(self._public(job_id))
        return out

    def cleanup_expired_jobs(self) -> int:
        return len(self.reclaim_expired_leases())

    def release_abandoned(self, job_id: str, message: str, *, counted: bool = True,
                          metadata: Mapping[str, Any] | None = None) -> Job:
        if not counted:
            with contextlib.suppress(LeaseLostError):  # not processing: nothing to take back
                self._leased(job_id, "*", JobStatus.QUEUED, message=message, patch=metadata,
                             run_after=self.clock(), front=True, uncounted=True)
            return self._public(job_id)
        self._run("reclaim", job_id, self.clock(), self.retry_policy.max_retries, 0, 0, message,
                  "0", JobStatus.FAILED.value)
        return self._public(job_id)

    def annotate_job(self, job_id: str, metadata: Mapping[str, Any]) -> None:
        job = self._load(job_id)
        self._admin(job_id, [job.status], job.status, patch=metadata)

    # -- queries --------------------------------------------------------------------------

    def purge(self, older_than_seconds: float, batch: int = 5000) -> int:
        if older_than_seconds < 0:
            raise InvalidJobUpdateError(f"older_than must be ≥ 0, not {older_than_seconds}")
        cutoff = self.clock() - older_than_seconds
        removed = 0
        for status in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.TIMEOUT):
            key = self._k(f"status:{status.value}")
            for job_id in self.r.zrange(key, 0, -1):
                h = self._k(f"job:{job_id}")
                finished, ck, inbox = self.r.hmget(h, ["finished_at", "content_key", "inbox"])
                if finished and float(finished) < cutoff:
                    with self.r.pipeline() as pipe:
                        pipe.delete(h)
                        pipe.zrem(key, job_id)
                        pipe.zrem(self._k(f"jobs:{inbox or ''}"), job_id)
                        if ck and self.r.hget(self._k("keys"), ck) == job_id:
                            pipe.hdel(self._k("keys"), ck)
                        pipe.execute()
                    removed += 1
        return removed

    def identity(self) -> str:
        """Which queue this is (server and namespace, no password): agents sharing it report
        the same identity, so dashboards count its jobs once."""
        from urllib.parse import urlsplit

        parts = urlsplit(self.url)
        where = parts.hostname or ""
        if parts.port:
            where += f":{parts.port}"
        return f"redis:{parts.scheme}://{where}{parts.path}#{self.ns}"

    def check_writable(self) -> None:
        self.r.set(self._k("health"), str(self.clock()), px=60_000)

    def close(self) -> None:
        self.r.close()

    def __enter__(self) -> RedisStreamsJobQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
