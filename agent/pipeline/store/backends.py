"""Opening the index the configuration names (the only module that knows every store)."""

from __future__ import annotations

from agent.config.settings import Settings
from agent.pipeline.store.index import Index


def open_index(settings: Settings, *, readonly: bool = False) -> Index:
    """The index the configuration names: SQLite (default) or Postgres + pgvector.

    ``readonly`` (SQLite): a short-lived reader that creates nothing.
    """
    if settings.index.backend == "postgres":
        from agent.pipeline.store.postgres import PostgresIndex

        assert settings.index.dsn is not None
        return PostgresIndex(settings.index.dsn)
    from agent.pipeline.store.sqlite import SQLiteIndex

    return SQLiteIndex(settings.index_path, busy_timeout=settings.index.busy_timeout_seconds,
                       readonly=readonly)
