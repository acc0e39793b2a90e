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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from agent.errors import (
    InvalidJobUpdateError,
    JobNotFoundError,
    LeaseLostError,
    QueueDatabaseError,
)
from agent.files.names import encode_name
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
from agent.queue.schema import check_version, migrate
from agent.queue.sqlite_reads import SQLiteReads
from agent.queue.sqlite_rows import (
    COLUMNS,
    INSERT_JOB,
    MIN_SQLITE,
    check_database_file,
    hide_lease,
    new_row,
    row_to_job,
    rows_in,
)
from agent.queue.sqlite_upkeep import SQLiteUpkeep
from agent.sqlitedb import Transaction, connect


class SQLiteJobQueue(SQLiteReads, SQLiteUpkeep, Tunable):
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
        check_database_file(self.path, self.readonly)
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

    # -- the queue's API (code written against the predecessor's keeps working) -----------

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
            return hide_lease(row_to_job(existing))
        row = conn.execute(f"{INSERT_JOB} RETURNING {COLUMNS}",
                           new_row(uuid.uuid4().hex, item, key, self.clock(), delay)).fetchone()
        return row_to_job(row)

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
            for row in rows_in(conn, f"SELECT {COLUMNS} FROM job_queue INDEXED BY "
                                     "ix_job_queue_key WHERE content_key IN ({}) "
                                     "AND status IN ('queued', 'processing')", keys):
                active.setdefault(row[5], hide_lease(row_to_job(row)))
            now = self.clock()
            new_ids: dict[str, str] = {}
            rows = []
            for item, key in zip(items, keys, strict=True):
                if key in active or key in new_ids:
                    continue  # an active job, or an earlier item of this batch, has the key
                new_ids[key] = uuid.uuid4().hex
                rows.append(new_row(new_ids[key], item, key, now))
            conn.executemany(INSERT_JOB, rows)
            created = {row[0]: row_to_job(row) for row in rows_in(
                conn, f"SELECT {COLUMNS} FROM job_queue WHERE job_id IN ({{}})",
                list(new_ids.values()))}
        return [active[key] if key in active else created[new_ids[key]] for key in keys]

    def get_next_job(
        self, worker_id: str | None = None, lease_seconds: float | None = None
    ) -> Job | None:
        """Claim the next due job atomically and lease it to the caller."""
        now = self.clock()
        lease = self.lease_seconds if lease_seconds is None else lease_seconds
        row = self._conn().execute(
            f"""UPDATE job_queue SET status = 'processing', lease_token = ?, claimed_by = ?,
                    attempts = attempts + 1, started_at = coalesce(started_at, ?),
                    updated_at = ?, timeout_at = ?
                WHERE id = (SELECT id FROM job_queue INDEXED BY ix_job_queue_active
                            WHERE status = 'queued' AND run_after <= ?
                            ORDER BY run_after LIMIT 1)
                RETURNING {COLUMNS}""",
            (secrets.token_hex(8), worker_id, now, now, now + lease, now),
        ).fetchone()
        return row_to_job(row) if row is not None else None

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
                return hide_lease(self._update_leased(job_id, None, new, progress, message, patch))
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
        return hide_lease(row_to_job(row))

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
        return row_to_job(row)

    def get_job_status(self, job_id: str) -> Job:
        """The job as stored now; ``JobNotFoundError`` for an unknown id."""
        return hide_lease(self._fetch(self._conn(), job_id))

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
        return row_to_job(row)

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
        return row_to_job(row)

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
                return hide_lease(current)
            row_id = conn.execute("SELECT id FROM job_queue WHERE job_id = ?",
                                  (job_id,)).fetchone()[0]
            if counted:
                return hide_lease(self._take_back(conn, row_id, current.retries, message,
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
            return hide_lease(row_to_job(row))

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
        return row_to_job(row)

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
        return hide_lease(row_to_job(row))

    # -- helpers -----------------------------------------------------------------------------

    @staticmethod
    def _fetch(conn: sqlite3.Connection, job_id: str) -> Job:
        row = conn.execute(f"SELECT {COLUMNS} FROM job_queue WHERE job_id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFoundError(f"no job with id {job_id!r}")
        return row_to_job(row)

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
