"""The SQLite queue's reads: one job by prefix or identity, pages of jobs, counts and the
backlog at a glance. A mixin of ``SQLiteJobQueue``, which supplies the connection and clock."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from agent.errors import InvalidJobUpdateError
from agent.files.names import encode_name
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
from agent.queue.sqlite_rows import COLUMNS, hide_lease, row_to_job, rows_in


class SQLiteReads:
    clock: Clock

    def _conn(self) -> sqlite3.Connection:
        raise NotImplementedError

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
        return hide_lease(row_to_job(row)) if row else None

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
        jobs = [hide_lease(row_to_job(r[1:])) for r in rows[:limit]]
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
        return {stored[row[0]] for row in rows_in(self._conn(), sql, list(stored), batch)}
