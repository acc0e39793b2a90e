"""SQLite connection helpers shared by the embedded queue and the embedded index.

Writers open in WAL mode with a busy timeout. Readers that must not change anything (``status``,
``jobs``, ``search``) open read-only and never create a database, a folder or, when the agent
is stopped, even SQLite's own ``-wal``/``-shm`` files.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path


def enable_wal(conn: sqlite3.Connection, timeout: float) -> None:
    """Switch to WAL, retrying: two processes opening a new file at once can get SQLITE_BUSY
    from this pragma without the busy handler being consulted."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def connect(path: str | os.PathLike[str], *, busy_timeout: float, readonly: bool = False,
            synchronous: str = "NORMAL") -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), usable from any thread.

    ``readonly``: the file must exist (``FileNotFoundError`` otherwise). While a writer has the
    database open its ``-wal`` file exists and is read too; with no writer the file is opened
    immutable, so a reader leaves nothing behind.
    """
    if readonly:
        target = Path(path).resolve()
        if not target.is_file():
            raise FileNotFoundError(str(target))
        live = Path(f"{target}-wal").exists()
        uri = target.as_uri() + ("?mode=ro" if live else "?mode=ro&immutable=1")
        conn = sqlite3.connect(uri, uri=True, timeout=busy_timeout, isolation_level=None,
                               check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        return conn
    conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None,
                           check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
    enable_wal(conn, busy_timeout)
    conn.execute(f"PRAGMA synchronous={synchronous}")
    return conn


class Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on any exception."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        elif self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
