"""The Redis queue's reads: one job by prefix or identity, pages of jobs newest first (merged
across the per-status sorted sets), counts and the backlog at a glance. A mixin of
``RedisStreamsJobQueue``, which supplies the client, the key prefix and the job loader."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Iterator
from typing import Any

from agent.errors import InvalidJobUpdateError, JobNotFoundError
from agent.files.names import decode_optional, encode_name
from agent.queue.base import (
    Clock,
    Job,
    JobFilter,
    JobPage,
    JobStatus,
    QueueStats,
    as_status,
    check_job_prefix,
    parse_cursor,
    pick_job_id,
)


class RedisReads:
    r: Any
    clock: Clock

    def _k(self, name: str) -> str:
        raise NotImplementedError

    def _public(self, job_id: str) -> Job:
        raise NotImplementedError

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
