"""Versioned schema of the SQLite queue, upgraded in place through ``PRAGMA user_version``.

Append a migration to ``MIGRATIONS`` to change the schema; never edit a released one.
A database written by the predecessor (the seed's ``job_queue`` table, user_version 0) is
upgraded too, keeping its jobs.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from agent.errors import QueueDatabaseError

_JOB_TABLE = """
CREATE TABLE job_queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT UNIQUE NOT NULL,
    file_path TEXT NOT NULL,
    original_filename TEXT,
    status TEXT NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'processing', 'completed', 'failed', 'timeout')),
    progress INTEGER NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    message TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    retries INTEGER NOT NULL DEFAULT 0,
    timeout_at REAL,
    inbox TEXT,
    content_key TEXT,
    run_after REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_token TEXT,
    claimed_by TEXT,
    started_at REAL,
    finished_at REAL
)"""

_V1 = [
    _JOB_TABLE,
    # One partial index serves the claim (queued, by run_after) and lease reclaim (processing,
    # by timeout_at): it holds only unfinished rows, so it stays small however many have finished,
    # and a state change touches as few b-trees as possible.
    "CREATE INDEX ix_job_queue_active ON job_queue (status, run_after, timeout_at) "
    "WHERE status = 'queued' OR status = 'processing'",
    "CREATE INDEX ix_job_queue_key ON job_queue (content_key)",
    # Finished jobs are counted by triggers so status and metrics cost the same at a million rows.
    "CREATE TABLE job_counts (status TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID",
    "INSERT INTO job_counts (status, n) VALUES ('completed', 0), ('failed', 0), ('timeout', 0)",
    """CREATE TRIGGER trg_job_counts_finish AFTER UPDATE OF status ON job_queue
         WHEN OLD.status <> NEW.status AND NEW.status IN ('completed', 'failed', 'timeout')
         BEGIN UPDATE job_counts SET n = n + 1 WHERE status = NEW.status; END""",
    """CREATE TRIGGER trg_job_counts_reopen AFTER UPDATE OF status ON job_queue
         WHEN OLD.status <> NEW.status AND OLD.status IN ('completed', 'failed', 'timeout')
         BEGIN UPDATE job_counts SET n = n - 1 WHERE status = OLD.status; END""",
    """CREATE TRIGGER trg_job_counts_delete AFTER DELETE ON job_queue
         WHEN OLD.status IN ('completed', 'failed', 'timeout')
         BEGIN UPDATE job_counts SET n = n - 1 WHERE status = OLD.status; END""",
    """CREATE TRIGGER trg_job_counts_insert AFTER INSERT ON job_queue
         WHEN NEW.status IN ('completed', 'failed', 'timeout')
         BEGIN UPDATE job_counts SET n = n + 1 WHERE status = NEW.status; END""",
]

_V2 = [
    # The watcher asks "is a job for this path still queued?" when a queued file changes.
    "CREATE INDEX ix_job_queue_file ON job_queue (file_path)",
]

MIGRATIONS: list[list[str]] = [_V1, _V2]
SCHEMA_VERSION = len(MIGRATIONS)

_SEED_COLUMNS = {
    "id", "job_id", "file_path", "original_filename", "status", "progress", "message",
    "metadata", "created_at", "updated_at", "retries", "timeout_at",
}


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the schema to ``SCHEMA_VERSION`` in one transaction, or refuse and change nothing."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise QueueDatabaseError(
                f"{path}: schema version {version} was written by a newer ingest-agent "
                f"(this one knows up to {SCHEMA_VERSION}); nothing was changed"
            )
        if version == 0:
            _adopt_unversioned(conn, path)
        else:
            for statements in MIGRATIONS[version:]:
                for sql in statements:
                    conn.execute(sql)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def check_version(conn: sqlite3.Connection, path: Path) -> None:
    """For a read-only open: the schema must be this version's (a reader never migrates)."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version != SCHEMA_VERSION:
        newer = version > SCHEMA_VERSION
        raise QueueDatabaseError(
            f"{path}: schema version {version} is {'newer' if newer else 'older'} than this "
            f"ingest-agent's ({SCHEMA_VERSION}); "
            + ("upgrade ingest-agent" if newer else "run `ingest-agent check` to upgrade it"))


def _adopt_unversioned(conn: sqlite3.Connection, path: Path) -> None:
    tables = {
        name for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    }
    if not tables:
        for version_statements in MIGRATIONS:
            for sql in version_statements:
                conn.execute(sql)
        return
    if tables == {"job_queue"}:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(job_queue)")}
        if columns == _SEED_COLUMNS:
            _upgrade_seed_table(conn)
            return
    raise QueueDatabaseError(
        f"{path}: holds tables that ingest-agent did not create ({', '.join(sorted(tables))}); "
        "point queue.path at a new file. Nothing was changed"
    )


def _upgrade_seed_table(conn: sqlite3.Connection) -> None:
    """Carry the predecessor's jobs over; its DATETIME texts become Unix seconds."""
    conn.execute("ALTER TABLE job_queue RENAME TO job_queue_seed")
    for version_statements in MIGRATIONS:
        for sql in version_statements:
            conn.execute(sql)
    epoch = "CAST(strftime('%s', {col}) AS REAL)"
    conn.execute(
        f"""INSERT INTO job_queue (id, job_id, file_path, original_filename, status, progress,
                message, metadata, created_at, updated_at, retries, timeout_at, content_key,
                run_after, finished_at)
            SELECT id, job_id, file_path, original_filename, status,
                   min(100, max(0, coalesce(progress, 0))), message,
                   CASE WHEN json_valid(metadata) THEN metadata ELSE '{{}}' END,
                   coalesce({epoch.format(col='created_at')}, 0),
                   coalesce({epoch.format(col='updated_at')}, 0), coalesce(retries, 0),
                   CASE WHEN status = 'processing'
                        THEN coalesce({epoch.format(col='timeout_at')}, 0)
                        ELSE {epoch.format(col='timeout_at')} END,
                   file_path || '#seed-' || job_id,
                   coalesce({epoch.format(col='created_at')}, 0),
                   CASE WHEN status IN ('completed', 'failed', 'timeout')
                        THEN {epoch.format(col='updated_at')} END
            FROM job_queue_seed"""
    )
    conn.execute("DROP TABLE job_queue_seed")
