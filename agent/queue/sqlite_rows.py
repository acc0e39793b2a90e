"""The SQLite queue's rows: its columns, and a row as a ``Job``."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent.errors import QueueDatabaseError
from agent.files.names import decode_name, decode_optional, encode_name
from agent.queue.base import Job, JobStatus, NewJob

COLUMNS = (
    "job_id, file_path, status, original_filename, inbox, content_key, progress, message, "
    "metadata, created_at, updated_at, retries, attempts, run_after, timeout_at, started_at, "
    "finished_at, claimed_by, lease_token"
)
SQLITE_MAGIC = b"SQLite format 3\x00"
MIN_SQLITE = (3, 35, 0)  # RETURNING


def row_to_job(row: tuple[Any, ...]) -> Job:
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


INSERT_JOB = """INSERT INTO job_queue (job_id, file_path, original_filename, inbox, content_key,
                  status, metadata, created_at, updated_at, run_after)
              VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)"""


def new_row(job_id: str, item: NewJob, key: str, now: float,
             delay: float = 0.0) -> tuple[Any, ...]:
    """``INSERT_JOB``'s parameters for a new queued job (``key``: its encoded content key)."""
    original = encode_name(item.original_filename) if item.original_filename is not None else None
    return (job_id, encode_name(item.file_path), original, item.inbox, key,
            json.dumps(dict(item.metadata or {})), now, now, now + delay)


def hide_lease(job: Job) -> Job:
    """Hide the lease token from copies handed to anyone but the claimer."""
    job.lease_token = None
    return job


def rows_in(conn: sqlite3.Connection, sql: str, values: Sequence[str],
             batch: int = 500) -> list[tuple[Any, ...]]:
    """The rows ``sql`` returns for ``values`` put in its ``IN ({})``, a batch at a time."""
    unique = list(dict.fromkeys(values))
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(unique), batch):
        part = unique[start:start + batch]
        rows += conn.execute(sql.format(",".join("?" * len(part))), part).fetchall()
    return rows


def check_database_file(path: Path, readonly: bool) -> None:
    """Refuse a path that is a folder or a file other than SQLite; make a missing one's folder."""
    if path.is_dir():
        raise QueueDatabaseError(f"{path}: is a folder, not a database file")
    try:
        with open(path, "rb") as fh:
            header = fh.read(len(SQLITE_MAGIC))
    except FileNotFoundError:
        if readonly:
            raise QueueDatabaseError(
                f"no job queue at {path}: no agent has run with this config yet"
            ) from None
        path.parent.mkdir(parents=True, exist_ok=True)
        return
    except OSError as exc:
        raise QueueDatabaseError(f"{path}: cannot read: {exc.strerror}") from None
    if header and header != SQLITE_MAGIC:
        raise QueueDatabaseError(
            f"{path}: is not an SQLite database; refusing to touch it (nothing was changed)"
        )
