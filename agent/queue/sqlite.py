"""The embedded queue: one SQLite file in WAL mode, safe for several threads and processes.

Durability: WAL with ``synchronous=NORMAL`` survives a crash of the agent (the OS still holds the
log) but may lose the last few commits on a power cut or kernel panic; the database is never
corrupted by that. Set ``synchronous="FULL"`` to fsync every commit at some throughput cost.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
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
from agent.queue.schema import check_version, migrate
from agent.sqlitedb import Transaction, connect

COLUMNS = (
    "job_id, file_path, status, original_filename, inbox, content_key, progress, message, "
    "metadata, created_at, updated_at, retries, attempts, run_after, timeout_at, started_at, "
    "finished_at, claimed_by, lease_token"
)
SQLITE_MAGIC = b"SQLite format 3\x00"
MIN_SQLITE = (3, 35, 0)  # RETURNING


def _row_to_job(row: tuple[Any, ...]) -> Job:
    return Job(
        job_id=row[0],
        file_path=decode_name(row[1]),
        status=JobStatus(row[2]),
        original_filename=decode_optional(row[3]),
        inbox=row[4],
        content_key=decode_optional(row[5]),
        progress=row[6],
        message=row[7],
        metadata=json.loads(row[8]) if row[8] else {},
        created_at=row[9],
        updated_at=row[10],
        retries=row[11],
        attempts=row[12],
        run_after=row[13],
        timeout_at=row[14],
        started_at=row[15],
        finished_at=row[16],
        claimed_by=row[17],
        lease_token=row[18],
    )


_INSERT = """INSERT INTO job_queue (job_id, file_path, original_filename, inbox, content_key,
                  status, metadata, created_at, updated_at, run_after)
              VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)"""


def _new_row(job_id: str, item: NewJob, key: str, now: float,
             delay: float = 0.0) -> tuple[Any, ...]:
    """``_INSERT``'s parameters for a new queued job (``key``: its encoded content key)."""
    original = encode_name(item.original_filename) if item.original_filename is not None else None
    return (job_id, encode_name(item.file_path), original, item.inbox, key,
            json.dumps(dict(item.metadata or {})), now, now, now + delay)


def _public(job: Job) -> Job:
    """Hide the lease token from copies handed to anyone but the claimer."""
    job.lease_token = None
    return job


class SQLiteJobQueue(Tunable):
    """``JobQueue`` on one SQLite file; one connection per thread and process."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        lease_seconds: float = 600.0,
        retry_policy: RetryPolicy | None = None,
        clock: Clock = time.time,
        busy_timeout: float = 10.0,
        synchronous: str = "NORMAL",
        readonly: bool = False,
    ) -> None:
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise QueueDatabaseError(
                f"SQLite {sqlite3.sqlite_version} is too old: the queue needs 3.35 or newer"
            )
        if synchronous.upper() not in {"NORMAL", "FULL", "EXTRA"}:
            raise InvalidJobUpdateError(f"synchronous must be NORMAL, FULL or EXTRA: {synchronous}")
        self.path = Path(path)
        self.lease_seconds = lease_seconds
        self.retry_policy = retry_policy or RetryPolicy()
        self.clock = clock
        self._busy_timeout = busy_timeout
        self._synchronous = synchronous.upper()
        self.readonly = readonly
        self._local = threading.local()
        self._all_connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._check_file()
        conn = self._conn()
        try:
            if readonly:
                check_version(conn, self.path)
            else:
                migrate(conn, self.path)
        except sqlite3.DatabaseError as exc:
            raise QueueDatabaseError(
                f"{self.path}: not a usable job-queue database ({exc}); nothing was changed"
            ) from None

    # -- connections -----------------------------------------------------------------------

    def _check_file(self) -> None:
        if self.path.is_dir():
            raise QueueDatabaseError(f"{self.path}: is a folder, not a database file")
        try:
            with open(self.path, "rb") as fh:
                header = fh.read(len(SQLITE_MAGIC))
        except FileNotFoundError:
            if self.readonly:
                raise QueueDatabaseError(
                    f"no job queue at {self.path}: no agent has run with this config yet"
                ) from None
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return
        except OSError as exc:
            raise QueueDatabaseError(f"{self.path}: cannot read: {exc.strerror}") from None
        if header and header != SQLITE_MAGIC:
            raise QueueDatabaseError(
                f"{self.path}: is not an SQLite database; refusing to touch it (nothing was changed)"
            )

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        try:
            conn = connect(self.path, busy_timeout=self._busy_timeout, readonly=self.readonly,
                           synchronous=self._synchronous)
        except sqlite3.DatabaseError as exc:
            raise QueueDatabaseError(
                f"{self.path}: cannot open the job-queue database: {exc}"
            ) from None
        self._local.conn = conn
        self._local.pid = os.getpid()
        with self._lock:
            self._all_connections.append(conn)
        return conn

    def close(self) -> None:
        """Close every connection this object opened in this process."""
        with self._lock:
            conns, self._all_connections = self._all_connections, []
        for conn in conns:
            with contextlib.suppress(sqlite3.ProgrammingError):
                conn.close()
        self._local = threading.local()

    def __enter__(self) -> SQLiteJobQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _immediate(self) -> Transaction:
        return Transaction(self._conn())

    # -- the seed's API ----------------------------------------------------------------------

    def enqueue_job(
        self,
        file_path: str,
        original_filename: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        *,
        inbox: str | None = None,
        content_key: str | None = None,
        delay: float = 0.0,
    ) -> Job:
        """Queue a file; if a queued or processing job has the same key, return that one."""
        if not file_path:
            raise InvalidJobUpdateError("file_path must not be empty")
        if delay < 0:
            raise InvalidJobUpdateError(f"delay must be ≥ 0, not {delay}")
        item = NewJob(str(file_path), original_filename, metadata, inbox, content_key)
        with self._immediate() as conn:
            return self._insert_unless_active(conn, item, delay)

    def _insert_unless_active(self, conn: sqlite3.Connection, item: NewJob,
                              delay: float = 0.0) -> Job:
        """Inside the caller's write transaction: the active job for the key, or a new one."""
        key = encode_name(item.content_key or item.file_path)
        existing = conn.execute(
            f"SELECT {COLUMNS} FROM job_queue INDEXED BY ix_job_queue_key "
            "WHERE content_key = ? AND status IN ('queued', 'processing')",
            (key,),
        ).fetchone()
        if existing is not None:
            return _public(_row_to_job(existing))
        row = conn.execute(f"{_INSERT} RETURNING {COLUMNS}",
                           _new_row(uuid.uuid4().hex, item, key, self.clock(), delay)).fetchone()
        return _row_to_job(row)

    def enqueue_many(self, items: Sequence[NewJob]) -> list[Job]:
        """Queue several files in one transaction (a burst, a startup scan); dedupes like enqueue.

        Set-wise, for bursts: one lookup of the active keys per 500, one multi-row insert,
        one read-back per 500 (a statement pair per file made enqueueing a 20,000-file burst
        the watcher's slowest step)."""
        if not items:
            return []
        keys = [encode_name(item.content_key or item.file_path) for item in items]
        with self._immediate() as conn:
            active: dict[str, Job] = {}
            for row in self._rows_in(conn, f"SELECT {COLUMNS} FROM job_queue INDEXED BY "
                                     "ix_job_queue_key WHERE content_key IN ({}) "
                                     "AND status IN ('queued', 'processing')", keys):
                active.setdefault(row[5], _public(_row_to_job(row)))
            now = self.clock()
            new_ids: dict[str, str] = {}
            rows = []
            for item, key in zip(items, keys, strict=True):
                if key in active or key in new_ids:
                    continue  # an active job, or an earlier item of this batch, has the key
                new_ids[key] = uuid.uuid4().hex
                rows.append(_new_row(new_ids[key], item, key, now))
            conn.executemany(_INSERT, rows)
            created = {row[0]: _row_to_job(row) for row in self._rows_in(
                conn, f"SELECT {COLUMNS} FROM job_queue WHERE job_id IN ({{}})",
                list(new_ids.values()))}
        return [active[key] if key in active else created[new_ids[key]] for key in keys]

    @staticmethod
    def _rows_in(conn: sqlite3.Connection, sql: str, values: Sequence[str],
                 batch: int = 500) -> list[tuple[Any, ...]]:
        """The rows ``sql`` returns for ``values`` put in its ``IN ({})``, a batch at a time."""
        unique = list(dict.fromkeys(values))
        rows: list[tuple[Any, ...]] = []
        for start in range(0, len(unique), batch):
            part = unique[start:start + batch]
            rows += conn.execute(sql.format(",".join("?" * len(part))), part).fetchall()
        return rows

    def known_keys(self, keys: Iterable[str]) -> set[str]:
        """Which of these file identities already have a job, in any status."""
        return self._select_in("SELECT content_key FROM job_queue WHERE content_key IN ({})",
                               keys)

    def queued_paths(self, paths: Iterable[str]) -> set[str]:
        """Which of these files already wait in a queued job (that will read them as they are)."""
        return self._select_in(
            "SELECT file_path FROM job_queue INDEXED BY ix_job_queue_file "
            "WHERE file_path IN ({}) AND status = 'queued'", paths)

    def _select_in(self, sql: str, values: Iterable[str], batch: int = 500) -> set[str]:
        """Those of ``values`` that ``sql``'s first column returns, in batches of parameters."""
        stored = {encode_name(v): v for v in values}
        return {stored[row[0]] for row in self._rows_in(self._conn(), sql, list(stored), batch)}

    def get_next_job(
        self, worker_id: str | None = None, lease_seconds: float | None = None
    ) -> Job | None:
        """Claim the next due job atomically and lease it to the caller."""
        now = self.clock()
        lease = self.lease_seconds if lease_seconds is None else lease_seconds
        row = self._conn().execute(
            f"""UPDATE job_queue SET status = 'processing', lease_token = ?, claimed_by = ?,
                    attempts = attempts + 1, started_at = ?, updated_at = ?, timeout_at = ?
                WHERE id = (SELECT id FROM job_queue INDEXED BY ix_job_queue_active
                            WHERE status = 'queued' AND run_after <= ?
                            ORDER BY run_after LIMIT 1)
                RETURNING {COLUMNS}""",
            (secrets.token_hex(8), worker_id, now, now, now + lease, now),
        ).fetchone()
        return _row_to_job(row) if row is not None else None

    def update_job_status(
        self,
        job_id: str,
        status: JobStatus | str,
        progress: int | None = None,
        message: str | None = None,
        *,
        metadata: Mapping[str, Any] | None = None,
        lease_token: str | None = None,
    ) -> Job:
        """Move a job to ``status``.

        With the ``lease_token`` returned by ``get_next_job`` the change is fenced: it applies
        only while the caller still holds the job. Without one (the predecessor's calling style)
        a processing job is updated unfenced, as the seed did; the agent always passes its token.
        """
        new = as_status(status)
        check_progress(progress)
        patch = json.dumps(dict(metadata)) if metadata else None
        if lease_token is not None:
            return self._update_leased(job_id, lease_token, new, progress, message, patch)
        with self._immediate() as conn:
            current = self._fetch(conn, job_id)
            if current.status is JobStatus.PROCESSING:
                return _public(self._update_leased(job_id, None, new, progress, message, patch))
            self._check_transition(current, new)
            now = self.clock()
            finished = now if new.is_terminal else None
            row = conn.execute(
                f"""UPDATE job_queue SET status = ?, progress = coalesce(?, progress),
                        message = coalesce(?, message),
                        metadata = CASE WHEN ? IS NULL THEN metadata ELSE json_patch(metadata, ?) END,
                        updated_at = ?, finished_at = ?,
                        run_after = CASE WHEN ? = 'queued' THEN ? ELSE run_after END
                    WHERE job_id = ? RETURNING {COLUMNS}""",
                (new, progress, message, patch, patch, now, finished, new, now, job_id),
            ).fetchone()
        return _public(_row_to_job(row))

    def _update_leased(
        self, job_id: str, token: str | None, new: JobStatus, progress: int | None,
        message: str | None, patch: str | None,
    ) -> Job:
        """Change a processing job: fenced by ``token``, or unfenced when it is None."""
        if new not in ALLOWED_TRANSITIONS[JobStatus.PROCESSING]:
            raise InvalidJobUpdateError(f"job {job_id}: processing → {new} is not allowed")
        now = self.clock()
        leaving = new is not JobStatus.PROCESSING
        row = self._conn().execute(
            f"""UPDATE job_queue SET status = ?, progress = coalesce(?, progress),
                    message = coalesce(?, message),
                    metadata = CASE WHEN ? IS NULL THEN metadata ELSE json_patch(metadata, ?) END,
                    updated_at = ?,
                    finished_at = CASE WHEN ? IN ('completed', 'failed', 'timeout') THEN ? END,
                    run_after = CASE WHEN ? = 'queued' THEN ? ELSE run_after END,
                    lease_token = CASE WHEN ? THEN NULL ELSE lease_token END,
                    timeout_at = CASE WHEN ? THEN NULL ELSE timeout_at END
                WHERE job_id = ? AND status = 'processing' AND (? IS NULL OR lease_token = ?)
                RETURNING {COLUMNS}""",
            (new, progress, message, patch, patch, now, new, now, new, now, leaving, leaving,
             job_id, token, token),
        ).fetchone()
        if row is None:
            self._raise_lost(job_id)
        return _row_to_job(row)

    def get_job_status(self, job_id: str) -> Job:
        """The job as stored now; ``JobNotFoundError`` for an unknown id."""
        return _public(self._fetch(self._conn(), job_id))

    def cleanup_expired_jobs(self) -> int:
        """Reclaim leases past ``timeout_at``; returns how many jobs were reclaimed."""
        return len(self.reclaim_expired_leases())

    def reclaim_expired_leases(self) -> list[Job]:
        """Requeue (with backoff) or time out every job whose lease has expired."""
        now = self.clock()
        policy = self.retry_policy
        reclaimed: list[Job] = []
        with self._immediate() as conn:
            expired = conn.execute(
                "SELECT id, retries, timeout_at FROM job_queue INDEXED BY ix_job_queue_active "
                "WHERE status = 'processing' AND timeout_at < ?",
                (now,),
            ).fetchall()
            for row_id, retries, timeout_at in expired:
                stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timeout_at))
                reclaimed.append(self._take_back(
                    conn, row_id, retries, f"lease expired at {stamp}", JobStatus.TIMEOUT,
                    now + policy.delay(retries)))
        return reclaimed

    def get_pending_jobs_count(self) -> int:
        """Jobs not yet finished: queued plus processing."""
        row = self._conn().execute(
            "SELECT count(*) FROM job_queue INDEXED BY ix_job_queue_active "
            "WHERE status = 'queued' OR status = 'processing'"
        ).fetchone()
        return int(row[0])

    # -- what a real queue needs besides ----------------------------------------------------

    def extend_lease(self, job: Job, lease_seconds: float | None = None) -> None:
        """Push the holder's lease forward; ``LeaseLostError`` if it is no longer theirs."""
        lease = self.lease_seconds if lease_seconds is None else lease_seconds
        now = self.clock()
        cur = self._conn().execute(
            "UPDATE job_queue SET timeout_at = ?, updated_at = ? "
            "WHERE job_id = ? AND status = 'processing' AND lease_token = ?",
            (now + lease, now, job.job_id, job.lease_token),
        )
        if cur.rowcount != 1:
            self._raise_lost(job.job_id)
        job.timeout_at = now + lease

    def retry_or_fail(
        self,
        job: Job,
        message: str,
        *,
        final_status: JobStatus = JobStatus.FAILED,
        metadata: Mapping[str, Any] | None = None,
        count_attempt: bool = True,
    ) -> Job:
        """Requeue the holder's job with backoff while retries remain, else finish it.

        With ``count_attempt=False`` (shutdown) the job goes back at once, its retry budget intact.
        """
        if final_status not in (JobStatus.FAILED, JobStatus.TIMEOUT):
            raise InvalidJobUpdateError(f"final_status must be failed or timeout: {final_status}")
        if job.lease_token is None:
            raise InvalidJobUpdateError(f"job {job.job_id}: only the lease holder can retry it")
        if not count_attempt:
            return self.release_job(job, message, metadata=metadata)
        now = self.clock()
        patch = json.dumps(dict(metadata)) if metadata else None
        if job.retries < self.retry_policy.max_retries:
            status, retries = JobStatus.QUEUED, job.retries + 1
            run_after, finished = now + self.retry_policy.delay(job.retries), None
        else:
            status, retries, run_after, finished = final_status, job.retries, job.run_after, now
        row = self._conn().execute(
            f"""UPDATE job_queue SET status = ?, retries = ?, run_after = ?, finished_at = ?,
                    message = ?, updated_at = ?, lease_token = NULL, timeout_at = NULL,
                    claimed_by = CASE WHEN ? = 'queued' THEN NULL ELSE claimed_by END,
                    metadata = CASE WHEN ? IS NULL THEN metadata ELSE json_patch(metadata, ?) END
                WHERE job_id = ? AND status = 'processing' AND lease_token = ?
                RETURNING {COLUMNS}""",
            (status, retries, run_after, finished, message, now, status, patch, patch,
             job.job_id, job.lease_token),
        ).fetchone()
        if row is None:
            self._raise_lost(job.job_id)
        return _row_to_job(row)

    def release_job(self, job: Job, message: str, *, delay: float = 0.0,
                    metadata: Mapping[str, Any] | None = None) -> Job:
        """The holder gives its job back without spending a retry or an attempt (a pause, a
        shutdown, a file still changing: the claim it gives back was no real attempt).

        With no delay the job is claimed before every other due job (one interrupted by a
        shutdown resumes first); with a delay it waits that long (a file still changing).
        """
        if job.lease_token is None:
            raise InvalidJobUpdateError(f"job {job.job_id}: only the lease holder can release it")
        now = self.clock()
        run_after = 0.0 if delay <= 0 else now + delay
        patch = json.dumps(dict(metadata)) if metadata else None
        row = self._conn().execute(
            f"""UPDATE job_queue SET status = 'queued', run_after = ?, message = ?,
                    updated_at = ?, lease_token = NULL, timeout_at = NULL, claimed_by = NULL,
                    attempts = MAX(attempts - 1, 0),
                    metadata = CASE WHEN ? IS NULL THEN metadata ELSE json_patch(metadata, ?) END
                WHERE job_id = ? AND status = 'processing' AND lease_token = ?
                RETURNING {COLUMNS}""",
            (run_after, message, now, patch, patch, job.job_id, job.lease_token),
        ).fetchone()
        if row is None:
            self._raise_lost(job.job_id)
        return _row_to_job(row)

    def release_abandoned(self, job_id: str, message: str, *, counted: bool = True,
                          metadata: Mapping[str, Any] | None = None) -> Job:
        """Take back a processing job whose holder is known dead (a crashed run of this agent).

        Counted, it spends a retry (the crash may have been the job's doing); uncounted, it goes
        back first in line with its retries and attempts as they were before the claim.
        """
        now = self.clock()
        with self._immediate() as conn:
            current = self._fetch(conn, job_id)
            if current.status is not JobStatus.PROCESSING:
                return _public(current)
            row_id = conn.execute("SELECT id FROM job_queue WHERE job_id = ?",
                                  (job_id,)).fetchone()[0]
            if counted:
                return _public(self._take_back(conn, row_id, current.retries, message,
                                               JobStatus.FAILED, now))
            patch = json.dumps(dict(metadata)) if metadata else None
            row = conn.execute(
                f"""UPDATE job_queue SET status = 'queued', run_after = 0, message = ?,
                        updated_at = ?, lease_token = NULL, timeout_at = NULL, claimed_by = NULL,
                        attempts = MAX(attempts - 1, 0),
                        metadata = CASE WHEN ? IS NULL THEN metadata
                                        ELSE json_patch(metadata, ?) END
                    WHERE id = ? RETURNING {COLUMNS}""",
                (message, now, patch, patch, row_id)).fetchone()
            return _public(_row_to_job(row))

    def _take_back(self, conn: sqlite3.Connection, row_id: int, retries: int, message: str,
                   final: JobStatus, run_after: float) -> Job:
        """Inside a write transaction: requeue a processing job at ``run_after`` while retries
        remain, else finish it as ``final``."""
        now = self.clock()
        if retries < self.retry_policy.max_retries:
            row = conn.execute(
                f"""UPDATE job_queue SET status = 'queued', retries = retries + 1,
                        run_after = ?, lease_token = NULL, claimed_by = NULL,
                        timeout_at = NULL, updated_at = ?, message = ?
                    WHERE id = ? RETURNING {COLUMNS}""",
                (run_after, now, message + "; retrying", row_id),
            ).fetchone()
        else:
            row = conn.execute(
                f"""UPDATE job_queue SET status = ?, lease_token = NULL, timeout_at = NULL,
                        updated_at = ?, finished_at = ?, message = ?
                    WHERE id = ? RETURNING {COLUMNS}""",
                (final.value, now, now, message + "; no retries left", row_id),
            ).fetchone()
        return _row_to_job(row)

    def annotate_job(self, job_id: str, metadata: Mapping[str, Any]) -> None:
        """Merge facts into a job's metadata whatever its status (where its file went, say)."""
        cur = self._conn().execute(
            "UPDATE job_queue SET metadata = json_patch(metadata, ?), updated_at = ? "
            "WHERE job_id = ?",
            (json.dumps(dict(metadata)), self.clock(), job_id),
        )
        if cur.rowcount != 1:
            raise JobNotFoundError(f"no job with id {job_id!r}")

    def retry_job(self, job_id: str) -> Job:
        """Operator's retry: a failed or timed-out job is queued again with a fresh budget."""
        with self._immediate() as conn:
            current = self._fetch(conn, job_id)
            if current.status not in (JobStatus.FAILED, JobStatus.TIMEOUT):
                raise InvalidJobUpdateError(
                    f"job {job_id} is {current.status}: only failed or timed-out jobs can be retried"
                )
            now = self.clock()
            row = conn.execute(
                f"""UPDATE job_queue SET status = 'queued', retries = 0, run_after = ?,
                        finished_at = NULL, progress = 0, updated_at = ?, claimed_by = NULL,
                        message = 'retry requested'
                    WHERE job_id = ? RETURNING {COLUMNS}""",
                (now, now, job_id),
            ).fetchone()
        return _public(_row_to_job(row))

    def resolve_job_id(self, prefix: str) -> str:
        """The one job id starting with ``prefix`` (as git takes a commit's short hash)."""
        check_job_prefix(prefix)
        rows = self._conn().execute(
            "SELECT job_id FROM job_queue WHERE job_id >= ? AND job_id < ? ORDER BY job_id "
            "LIMIT 6", (prefix, prefix + "\U0010ffff")).fetchall()
        return pick_job_id(prefix, [r[0] for r in rows])

    def find_job_by_key(self, content_key: str) -> Job | None:
        """The newest job for this file identity, whatever its status."""
        row = self._conn().execute(
            f"SELECT {COLUMNS} FROM job_queue WHERE content_key = ? ORDER BY id DESC LIMIT 1",
            (encode_name(content_key),),
        ).fetchone()
        return _public(_row_to_job(row)) if row else None

    def list_jobs(
        self, status: JobStatus | str | None = None, limit: int = 100, inbox: str | None = None
    ) -> list[Job]:
        """Newest first, optionally of one status and inbox."""
        chosen = as_status(status) if status is not None else None
        return self.page_jobs(JobFilter(chosen, inbox), limit=limit).jobs

    @staticmethod
    def _where(where: JobFilter) -> tuple[list[str], list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if where.status is not None:
            clauses.append("status = ?")
            params.append(as_status(where.status).value)
        if where.inbox is not None:
            clauses.append("inbox = ?")
            params.append(where.inbox)
        if where.name:
            clauses.append("instr(lower(original_filename), ?) > 0")
            params.append(where.name.lower())
        return clauses, params

    def page_jobs(self, where: JobFilter = JobFilter(), *, limit: int = 50,
                  cursor: str | None = None) -> JobPage:
        """A page of jobs, newest first; the cursor is the row number of the last job shown,
        so a page costs the same at the start of 100,000 jobs as at the end."""
        if limit < 1:
            raise InvalidJobUpdateError(f"limit must be ≥ 1, not {limit}")
        clauses, params = self._where(where)
        before = parse_cursor(cursor)
        if before is not None:
            clauses.append("id < ?")
            params.append(before)
        sql_where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._conn().execute(
            f"SELECT id, {COLUMNS} FROM job_queue {sql_where} ORDER BY id DESC LIMIT ?",
            (*params, limit + 1)).fetchall()
        jobs = [_public(_row_to_job(r[1:])) for r in rows[:limit]]
        return JobPage(jobs, str(rows[limit - 1][0]) if len(rows) > limit else None)

    def count_jobs(self, where: JobFilter = JobFilter()) -> int:
        if where == JobFilter():
            return sum(self.count_by_status().values())
        clauses, params = self._where(where)
        return int(self._conn().execute(
            f"SELECT count(*) FROM job_queue WHERE {' AND '.join(clauses)}", params).fetchone()[0])

    def count_by_status(self) -> dict[JobStatus, int]:
        """Jobs per status: unfinished ones from the active index, finished ones from triggers."""
        conn = self._conn()
        counts = {s: 0 for s in JobStatus}
        for status, n in conn.execute(
            "SELECT status, count(*) FROM job_queue INDEXED BY ix_job_queue_active "
            "WHERE status = 'queued' OR status = 'processing' GROUP BY status"
        ):
            counts[JobStatus(status)] = n
        for status, n in conn.execute("SELECT status, n FROM job_counts"):
            counts[JobStatus(status)] = n
        return counts

    def stats(self) -> QueueStats:
        """Counts, backlog split into due and waiting-for-retry, oldest queued age, dead leases."""
        now = self.clock()
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            counts = self.count_by_status()
            by_inbox: dict[str, tuple[int, int]] = {}
            for inbox, due_n, queued_n in conn.execute(
                "SELECT coalesce(inbox, ''), sum(run_after <= ?), count(*) FROM job_queue "
                "INDEXED BY ix_job_queue_active WHERE status = 'queued' GROUP BY 1", (now,)
            ):
                by_inbox[inbox] = (due_n, queued_n - due_n)
            due = sum(d for d, _ in by_inbox.values())
            # How long a job has waited since it last entered the queue: a paused long job
            # or a retry has been waiting since it went back, not since it was first queued.
            oldest = conn.execute(
                "SELECT min(CASE WHEN started_at IS NULL THEN created_at ELSE updated_at END) "
                "FROM job_queue INDEXED BY ix_job_queue_active WHERE status = 'queued'"
            ).fetchone()[0]
            expired = conn.execute(
                "SELECT count(*) FROM job_queue INDEXED BY ix_job_queue_active "
                "WHERE status = 'processing' AND timeout_at < ?",
                (now,),
            ).fetchone()[0]
        finally:
            conn.execute("COMMIT")
        return QueueStats(
            counts=counts,
            due=due,
            waiting_retry=counts[JobStatus.QUEUED] - due,
            oldest_queued_age=(now - oldest) if oldest is not None else None,
            expired_leases=expired,
            backlog_by_inbox=by_inbox,
        )

    def purge(self, older_than_seconds: float, batch: int = 5000) -> int:
        """Delete finished jobs older than the given age, in short write transactions."""
        if older_than_seconds < 0:
            raise InvalidJobUpdateError(f"older_than must be ≥ 0, not {older_than_seconds}")
        cutoff = self.clock() - older_than_seconds
        conn = self._conn()
        total = 0
        while True:
            cur = conn.execute(
                """DELETE FROM job_queue WHERE id IN (
                       SELECT id FROM job_queue
                       WHERE status IN ('completed', 'failed', 'timeout') AND finished_at < ?
                       LIMIT ?)""",
                (cutoff, batch),
            )
            total += cur.rowcount
            if cur.rowcount < batch:
                return total

    def identity(self) -> str:
        """Which queue this is, for metrics that several agents report: one SQLite file
        belongs to one host."""
        import socket

        return f"sqlite:{socket.gethostname()}:{self.path.resolve()}"

    def check_writable(self) -> None:
        """Take and release the write lock: proves the database file accepts writes now."""
        with self._immediate():
            pass

    def vacuum(self) -> None:
        """Give the space of purged rows back to the file system."""
        self._conn().execute("VACUUM")

    def backup(self, dest: str | os.PathLike[str]) -> Path:
        """A consistent copy taken with SQLite's online backup API while the queue runs."""
        target = Path(dest)
        if target.exists():
            raise QueueDatabaseError(f"{target}: already exists; choose a new backup file")
        target.parent.mkdir(parents=True, exist_ok=True)
        out = sqlite3.connect(target)
        try:
            self._conn().backup(out)
        finally:
            out.close()
        return target

    # -- helpers -----------------------------------------------------------------------------

    @staticmethod
    def _fetch(conn: sqlite3.Connection, job_id: str) -> Job:
        row = conn.execute(f"SELECT {COLUMNS} FROM job_queue WHERE job_id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFoundError(f"no job with id {job_id!r}")
        return _row_to_job(row)

    @staticmethod
    def _check_transition(current: Job, new: JobStatus) -> None:
        if new not in ALLOWED_TRANSITIONS[current.status]:
            raise InvalidJobUpdateError(
                f"job {current.job_id}: {current.status} → {new} is not allowed"
            )

    def _raise_lost(self, job_id: str) -> None:
        current = self._fetch(self._conn(), job_id)
        raise LeaseLostError(
            f"job {job_id}: the lease is no longer held by this worker "
            f"(status {current.status}, attempt {current.attempts}); update not applied"
        )
