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
import heapq
import itertools
import json
import secrets
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from agent.errors import (
    InvalidJobUpdateError,
    JobNotFoundError,
    LeaseLostError,
    QueueDatabaseError,
)
from agent.names import decode_name, decode_optional, encode_name
from agent.queue.base import (
    ALLOWED_TRANSITIONS,
    Clock,
    Job,
    JobFilter,
    JobPage,
    JobStatus,
    NewJob,
    QueueStats,
    RetryPolicy,
    Tunable,
    as_status,
    check_job_prefix,
    check_progress,
    parse_cursor,
    pick_job_id,
)

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


class RedisStreamsJobQueue(Tunable):
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
        if current.status is JobStatus.PROCESSING:  # the seed's unfenced style
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

    def resolve_job_id(self, prefix: str) -> str:
        """The one job id starting with ``prefix``."""
        check_job_prefix(prefix)
        found = sorted({key.rsplit(":", 1)[1] for key in self.r.scan_iter(
            match=self._k(f"job:{prefix}*"), count=1000)})
        return pick_job_id(prefix, found[:6])

    def find_job_by_key(self, content_key: str) -> Job | None:
        job_id = self.r.hget(self._k("keys"), encode_name(content_key))
        if not job_id:
            return None
        try:
            return self._public(job_id)
        except JobNotFoundError:
            return None

    def known_keys(self, keys: Iterable[str]) -> set[str]:
        return self._present(self._k("keys"), keys)

    def queued_paths(self, paths: Iterable[str]) -> set[str]:
        return self._present(self._k("queued_paths"), paths)

    def _present(self, hash_key: str, names: Iterable[str]) -> set[str]:
        """Those of ``names`` that are fields of the hash (stored encoded)."""
        batch = list(names)
        if not batch:
            return set()
        ids = self.r.hmget(hash_key, [encode_name(n) for n in batch])
        return {name for name, job_id in zip(batch, ids, strict=True) if job_id}

    def list_jobs(self, status: JobStatus | str | None = None, limit: int = 100,
                  inbox: str | None = None) -> list[Job]:
        """Newest first. With both a status and an inbox, the status's jobs are read page by
        page until ``limit`` of them are of that inbox (or none are left)."""
        if limit < 1:
            raise InvalidJobUpdateError(f"limit must be ≥ 1, not {limit}")
        if status is None:
            if inbox is not None:
                return self._newest(self._k(f"jobs:{inbox}"), limit)
            merged: list[tuple[float, str]] = []
            for s in JobStatus:
                merged += [(score, job_id) for job_id, score in self.r.zrevrange(
                    self._k(f"status:{s.value}"), 0, limit - 1, withscores=True)]
            return [self._public(job_id) for _, job_id in sorted(merged, reverse=True)[:limit]]
        key = self._k(f"status:{as_status(status).value}")
        if inbox is None:
            return self._newest(key, limit)
        out: list[Job] = []
        page = max(limit * 4, 100)
        for start in range(0, int(self.r.zcard(key)), page):
            ids = self.r.zrevrange(key, start, start + page - 1)
            for job_id, job_inbox in zip(ids, self._field(ids, "inbox"), strict=True):
                if job_inbox == inbox:
                    out.append(self._public(job_id))
                    if len(out) >= limit:
                        return out
        return out

    def page_jobs(self, where: JobFilter = JobFilter(), *, limit: int = 50,
                  cursor: str | None = None) -> JobPage:
        """A page of jobs, newest first; the cursor is the sequence number of the last shown."""
        if limit < 1:
            raise InvalidJobUpdateError(f"limit must be ≥ 1, not {limit}")
        found: list[tuple[int, str]] = []
        for seq, job_id in self._matching(where, parse_cursor(cursor)):
            found.append((seq, job_id))
            if len(found) > limit:
                break
        jobs = [self._public(job_id) for _, job_id in found[:limit]]
        return JobPage(jobs, str(found[limit - 1][0]) if len(found) > limit else None)

    def count_jobs(self, where: JobFilter = JobFilter()) -> int:
        if where.name is None and (where.status is None or where.inbox is None):
            if where.status is not None:
                return int(self.r.zcard(self._k(f"status:{as_status(where.status).value}")))
            if where.inbox is not None:
                return int(self.r.zcard(self._k(f"jobs:{where.inbox}")))
            return sum(self.count_by_status().values())
        return sum(1 for _ in self._matching(where, None))

    def _matching(self, where: JobFilter, before: int | None) -> Iterator[tuple[int, str]]:
        """(sequence, id) of the jobs ``where`` takes, newest first, read a batch at a time
        from the narrowest sorted set (merged across statuses when none is named)."""
        if where.status is not None:
            keys = [self._k(f"status:{as_status(where.status).value}")]
        elif where.inbox is not None:
            keys = [self._k(f"jobs:{where.inbox}")]
        else:
            keys = [self._k(f"status:{s.value}") for s in JobStatus]
        need_inbox = where.inbox is not None and where.status is not None
        merged = heapq.merge(*(self._newest_ids(key, before) for key in keys),
                             key=lambda item: -item[0])
        while True:
            batch = list(itertools.islice(merged, 200))
            if not batch:
                return
            ids = [job_id for _, job_id in batch]
            inboxes = self._field(ids, "inbox") if need_inbox else [None] * len(ids)
            names = self._field(ids, "original_filename") if where.name else [None] * len(ids)
            for (seq, job_id), inbox, name in zip(batch, inboxes, names, strict=True):
                if need_inbox and inbox != where.inbox:
                    continue
                if where.name and not where.matches_name(decode_optional(name)):
                    continue
                yield seq, job_id

    def _newest_ids(self, key: str, before: int | None, batch: int = 200
                    ) -> Iterator[tuple[int, str]]:
        top = f"({before}" if before is not None else "+inf"
        while True:
            got = self.r.zrevrangebyscore(key, top, "-inf", start=0, num=batch, withscores=True)
            for job_id, score in got:
                yield int(score), job_id
            if len(got) < batch:
                return
            top = f"({int(got[-1][1])}"

    def _oldest_wait_start(self, sample: int = 100) -> float | None:
        """When the longest-waiting of the first queued jobs entered the queue: its creation,
        or for one that ran before (paused, retried) when it went back."""
        ids = self.r.zrange(self._k("status:queued"), 0, sample - 1)
        if not ids:
            return None
        with self.r.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hmget(self._k(f"job:{job_id}"), "created_at", "started_at", "updated_at")
            rows = pipe.execute()
        starts = [float(updated if started else created) for created, started, updated in rows
                  if created]
        return min(starts) if starts else None

    def _newest(self, key: str, limit: int) -> list[Job]:
        return [self._public(job_id) for job_id in self.r.zrevrange(key, 0, limit - 1)]

    def _field(self, ids: list[str], name: str) -> list[str | None]:
        with self.r.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hget(self._k(f"job:{job_id}"), name)
            return list(pipe.execute())

    def count_by_status(self) -> dict[JobStatus, int]:
        return {s: int(self.r.zcard(self._k(f"status:{s.value}"))) for s in JobStatus}

    def get_pending_jobs_count(self) -> int:
        counts = self.count_by_status()
        return counts[JobStatus.QUEUED] + counts[JobStatus.PROCESSING]

    def stats(self) -> QueueStats:
        now = self.clock()
        counts = self.count_by_status()
        inboxes = sorted(self.r.smembers(self._k("inboxes")))
        with self.r.pipeline(transaction=False) as pipe:
            for inbox in inboxes:
                pipe.zcard(self._k(f"queued:{inbox}"))
                pipe.zcount(self._k(f"delayed:{inbox}"), f"({now}", "+inf")
            replies = pipe.execute()
        by_inbox = {}
        for n, inbox in enumerate(inboxes):
            queued, waiting = int(replies[2 * n]), int(replies[2 * n + 1])
            if queued:
                by_inbox[inbox] = (queued - waiting, waiting)
        waiting_all = int(self.r.zcount(self._k("delayed"), f"({now}", "+inf"))
        oldest = self._oldest_wait_start()
        return QueueStats(
            counts=counts, due=counts[JobStatus.QUEUED] - waiting_all,
            waiting_retry=waiting_all,
            oldest_queued_age=(now - oldest) if oldest is not None else None,
            expired_leases=int(self.r.zcount(self._k("leases"), "-inf", f"({now}")),
            backlog_by_inbox=by_inbox,
        )

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
