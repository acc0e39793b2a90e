"""The SQLite queue's upkeep: purging finished jobs, vacuum, online backup, the write check and
the identity metrics report. A mixin of ``SQLiteJobQueue``."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from agent.errors import InvalidJobUpdateError, QueueDatabaseError
from agent.queue.base import Clock
from agent.sqlitedb import Transaction


class SQLiteUpkeep:
    clock: Clock
    path: Path

    def _conn(self) -> sqlite3.Connection:
        raise NotImplementedError

    def _immediate(self) -> Transaction:
        raise NotImplementedError

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
