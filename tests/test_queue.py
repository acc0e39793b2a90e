"""The SQLite backend's own concerns: query plans, migrations, corrupt files, backup, purge
and vacuum. (The contract both backends keep is ``test_queue_contract.py``.)"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agent.errors import (
    QueueDatabaseError,
)
from agent.queue.base import JobStatus, RetryPolicy
from agent.queue.schema import SCHEMA_VERSION
from agent.queue.sqlite import SQLiteJobQueue
from tests.helpers import claim_next


def test_backoff_is_capped() -> None:
    """The retry delay doubles and stops at the configured maximum."""
    policy = RetryPolicy(max_retries=10, base_delay=10, max_delay=25)
    assert [policy.delay(n) for n in range(4)] == [10, 20, 25, 25]


def test_backup_is_a_consistent_copy_and_vacuum_runs(sqlite_queue: SQLiteJobQueue,
                                                    tmp_path: Path) -> None:
    """backup() writes a usable copy via the online backup API; it never overwrites."""
    queue = sqlite_queue
    job = queue.enqueue_job("/in/a")
    dest = queue.backup(tmp_path / "backups" / "q.db")
    with SQLiteJobQueue(dest) as copy:
        assert copy.get_job_status(job.job_id).file_path == "/in/a"
    with pytest.raises(QueueDatabaseError, match="already exists"):
        queue.backup(dest)
    queue.vacuum()
    assert queue.get_job_status(job.job_id).status is JobStatus.QUEUED


def test_claim_uses_the_partial_index(sqlite_queue: SQLiteJobQueue) -> None:
    """The claim and reclaim queries search the partial active index, never the whole table."""
    queue = sqlite_queue
    conn = sqlite3.connect(queue.path)
    plan = " ".join(
        row[3] for row in conn.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM job_queue INDEXED BY ix_job_queue_active "
            "WHERE status = 'queued' AND run_after <= 1 ORDER BY run_after LIMIT 1"
        )
    )
    assert "USING COVERING INDEX ix_job_queue_active" in plan and "TEMP B-TREE" not in plan
    index_sql = conn.execute(
        "SELECT sql FROM sqlite_master WHERE name = 'ix_job_queue_active'"
    ).fetchone()[0]
    assert "WHERE status = 'queued' OR status = 'processing'" in index_sql
    conn.close()


def test_claim_stays_on_index_with_many_finished_rows(tmp_path: Path) -> None:
    """With 50k finished rows, a claim reads a handful of index rows, not the table."""
    q = SQLiteJobQueue(tmp_path / "q.db")
    conn = sqlite3.connect(q.path)
    conn.executemany(
        "INSERT INTO job_queue (job_id, file_path, status, content_key, created_at, updated_at, "
        "run_after, finished_at) VALUES (?, ?, 'completed', ?, 0, 0, 0, 0)",
        ((f"old{i}", f"/o/{i}", f"/o/{i}") for i in range(50_000)),
    )
    conn.commit()
    conn.close()
    q.enqueue_job("/in/new")
    steps = []
    raw = sqlite3.connect(q.path)
    raw.set_progress_handler(lambda: steps.append(1), 100)
    raw.execute(
        "SELECT id FROM job_queue INDEXED BY ix_job_queue_active WHERE status = 'queued' "
        "AND run_after <= 1e12 ORDER BY run_after LIMIT 1"
    ).fetchone()
    raw.close()
    assert len(steps) < 5, f"claim took {len(steps) * 100} VM steps"
    assert claim_next(q).file_path == "/in/new"
    assert q.count_by_status()[JobStatus.COMPLETED] == 50_000
    q.close()


def test_new_database_is_versioned(sqlite_queue: SQLiteJobQueue) -> None:
    """A fresh file gets the current schema version and WAL mode."""
    queue = sqlite_queue
    conn = sqlite3.connect(queue.path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_reopening_keeps_jobs(tmp_path: Path) -> None:
    """Jobs survive closing and reopening: the queue is durable."""
    path = tmp_path / "q.db"
    with SQLiteJobQueue(path) as q:
        job = q.enqueue_job("/in/a")
    with SQLiteJobQueue(path) as q:
        assert q.get_job_status(job.job_id).status is JobStatus.QUEUED


def test_seed_database_is_upgraded_in_place(tmp_path: Path) -> None:
    """The predecessor's job_queue table (DATETIME columns, user_version 0) is migrated, jobs kept."""
    path = tmp_path / "seed.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        """CREATE TABLE job_queue (
            id INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT UNIQUE NOT NULL,
            file_path TEXT NOT NULL, original_filename TEXT, status TEXT NOT NULL DEFAULT 'queued',
            progress INTEGER DEFAULT 0, message TEXT, metadata TEXT,
            created_at DATETIME DEFAULT CURRENT_TIMESTAMP, updated_at DATETIME DEFAULT CURRENT_TIMESTAMP,
            retries INTEGER DEFAULT 0, timeout_at DATETIME);
        INSERT INTO job_queue (job_id, file_path, original_filename, status, progress, metadata,
            created_at, updated_at)
            VALUES ('seed-1', '/old/a.pdf', 'a.pdf', 'queued', 0, '{"k": 1}',
                    '2026-01-02 03:04:05', '2026-01-02 03:04:05');
        INSERT INTO job_queue (job_id, file_path, status, progress, metadata, created_at, updated_at)
            VALUES ('seed-2', '/old/b.pdf', 'completed', 100, NULL,
                    '2026-01-02 03:04:05', '2026-01-02 03:05:05');
        INSERT INTO job_queue (job_id, file_path, status, progress, created_at, updated_at)
            VALUES ('seed-3', '/old/c.pdf', 'processing', 10, '2026-01-02 03:04:05',
                    '2026-01-02 03:04:05');"""
    )
    conn.close()
    with SQLiteJobQueue(path) as q:
        first = q.get_job_status("seed-1")
        assert first.created_at == 1767323045.0 and first.metadata == {"k": 1}
        assert q.get_job_status("seed-2").finished_at == 1767323105.0
        assert q.count_by_status()[JobStatus.COMPLETED] == 1
        assert [j.job_id for j in q.reclaim_expired_leases()] == ["seed-3"]
        assert claim_next(q).job_id == "seed-1"


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    """A database from a newer release is not downgraded or touched."""
    path = tmp_path / "q.db"
    SQLiteJobQueue(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(QueueDatabaseError, match="newer ingest-agent"):
        SQLiteJobQueue(path)


def test_non_sqlite_file_is_refused_and_untouched(tmp_path: Path) -> None:
    """A text file at the queue path gets an error naming it; its bytes stay the same."""
    path = tmp_path / "notes.db"
    path.write_bytes(b"my precious notes\n" * 100)
    with pytest.raises(QueueDatabaseError, match="notes.db: is not an SQLite database"):
        SQLiteJobQueue(path)
    assert path.read_bytes() == b"my precious notes\n" * 100


def test_corrupt_sqlite_file_is_a_clear_error(tmp_path: Path) -> None:
    """A file with the SQLite header but garbage after it is reported, not overwritten."""
    path = tmp_path / "q.db"
    SQLiteJobQueue(path).close()
    data = bytearray(path.read_bytes())
    data[100:] = b"\xff" * (len(data) - 100)
    path.write_bytes(bytes(data))
    with pytest.raises(QueueDatabaseError, match="q.db"):
        SQLiteJobQueue(path)
    assert path.read_bytes() == bytes(data)


def test_foreign_database_is_refused(tmp_path: Path) -> None:
    """Another application's SQLite file is not adopted."""
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER)")
    conn.close()
    with pytest.raises(QueueDatabaseError, match="customers"):
        SQLiteJobQueue(path)


def test_folder_at_queue_path_is_refused(tmp_path: Path) -> None:
    """A folder where the database should be is named in the error."""
    with pytest.raises(QueueDatabaseError, match="is a folder"):
        SQLiteJobQueue(tmp_path)


def test_version_1_database_is_upgraded_in_place(tmp_path: Path) -> None:
    """A database at schema v1 gains v2's index on open; its jobs are untouched."""
    from agent.queue.schema import MIGRATIONS

    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path)
    for sql in MIGRATIONS[0]:
        conn.execute(sql)
    conn.execute("INSERT INTO job_queue (job_id, file_path, content_key, created_at, updated_at, "
                 "run_after) VALUES ('old', '/in/old.txt', 'k', 1, 1, 1)")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    with SQLiteJobQueue(path) as q:
        assert q.get_job_status("old").file_path == "/in/old.txt"
        assert q.queued_paths(["/in/old.txt", "/in/other.txt"]) == {"/in/old.txt"}
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'ix_job_queue_file'"
                        ).fetchone()[0] == 1
    conn.close()
