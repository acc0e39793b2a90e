"""The embedded index: documents, chunks and their vectors in one SQLite file.

One transaction per document, idempotent per content sha256: a retry or a duplicate file never
adds chunks twice. Vectors are float32 blobs; vector search is an exact dot product in numpy over
a matrix cached in memory and refreshed incrementally, which measured faster here than
sqlite-vec's brute-force scan (see benchmarks/README.md). Lexical search is SQLite's FTS5 (BM25,
Porter stemming) over each chunk's heading, text and table rows' values, kept in step by
triggers.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from agent.errors import IndexStoreError, TransientError
from agent.pipeline.chunk import Chunk
from agent.pipeline.readers.tables import CELL_SEPARATOR, row_values
from agent.pipeline.store.index import (
    NO_FILTER,
    STOPWORDS,
    DocumentLookups,
    SearchFilter,
)
from agent.sqlitedb import Transaction, connect
from agent.stages import Stage

SCHEMA = [
    """CREATE TABLE documents (
        id INTEGER PRIMARY KEY,
        doc_id TEXT UNIQUE NOT NULL,
        content_sha256 TEXT UNIQUE NOT NULL,
        job_id TEXT,
        inbox TEXT,
        source_name TEXT NOT NULL,
        location TEXT,
        mime TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        pages INTEGER,
        chunk_count INTEGER NOT NULL,
        model TEXT NOT NULL,
        created_at REAL NOT NULL
    )""",
    "CREATE INDEX ix_documents_job ON documents (job_id)",
    """CREATE TABLE chunks (
        id INTEGER PRIMARY KEY,
        document_id INTEGER NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
        ordinal INTEGER NOT NULL,
        text TEXT NOT NULL,
        char_start INTEGER NOT NULL,
        char_end INTEGER NOT NULL,
        page INTEGER,
        tokens INTEGER NOT NULL,
        UNIQUE (document_id, ordinal)
    )""",
    """CREATE TABLE chunk_vectors (
        chunk_id INTEGER PRIMARY KEY REFERENCES chunks (id) ON DELETE CASCADE,
        vector BLOB NOT NULL
    )""",
    "CREATE TABLE index_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "INSERT INTO index_meta VALUES ('generation', '0')",
]
# v2: each chunk's heading path, and FTS5 over heading and text (filled from existing chunks).
SCHEMA_V2 = [
    "ALTER TABLE chunks ADD COLUMN heading TEXT NOT NULL DEFAULT ''",
    """CREATE VIRTUAL TABLE chunks_fts USING fts5(heading, text, content='chunks',
        content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')""",
    """CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN
        INSERT INTO chunks_fts (rowid, heading, text) VALUES (new.id, new.heading, new.text);
    END""",
    """CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN
        INSERT INTO chunks_fts (chunks_fts, rowid, heading, text)
        VALUES ('delete', old.id, old.heading, old.text);
    END""",
    "INSERT INTO chunks_fts (chunks_fts) VALUES ('rebuild')",
]
# v3: vectors of documents still being embedded (resumable jobs), invisible to search.
SCHEMA_V3 = [
    """CREATE TABLE embedding_checkpoints (
        sha256 TEXT NOT NULL,
        model TEXT NOT NULL,
        ordinal INTEGER NOT NULL,
        job_id TEXT NOT NULL,
        digest BLOB NOT NULL,
        vector BLOB NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (sha256, model, ordinal)
    ) WITHOUT ROWID""",
    "CREATE INDEX ix_checkpoints_job ON embedding_checkpoints (job_id)",
]
# v4: checkpoints stage the whole chunk, so a document commits without holding it in memory
# (v3 rows, vectors alone, cannot be committed: dropped, they only cost re-embedding).
SCHEMA_V4 = [
    "DELETE FROM embedding_checkpoints",
    "ALTER TABLE embedding_checkpoints ADD COLUMN text TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE embedding_checkpoints ADD COLUMN heading TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE embedding_checkpoints ADD COLUMN char_start INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE embedding_checkpoints ADD COLUMN char_end INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE embedding_checkpoints ADD COLUMN page INTEGER",
    "ALTER TABLE embedding_checkpoints ADD COLUMN tokens INTEGER NOT NULL DEFAULT 0",
]
# v5: each document's SimHash, so near copies show as one result (``fingerprint``).
SCHEMA_V5 = ["ALTER TABLE documents ADD COLUMN fingerprint INTEGER"]


def _fill_row_values(conn: sqlite3.Connection) -> None:
    """v6's backfill: the row values of the chunks indexed before it."""
    rows = conn.execute("SELECT id, text FROM chunks WHERE instr(text, ?) > 0",
                        (CELL_SEPARATOR,)).fetchall()
    conn.executemany("UPDATE chunks SET row_values = ? WHERE id = ?",
                     [(row_values(text), chunk_id) for chunk_id, text in rows])


# v6: each chunk's table rows as their values alone ("Maple Leafs TOR 13"), a third FTS column,
# so a query made of a row's values matches the row as a phrase (issue 40).
SCHEMA_V6: list[str | Callable[[sqlite3.Connection], None]] = [
    "ALTER TABLE chunks ADD COLUMN row_values TEXT NOT NULL DEFAULT ''",
    _fill_row_values,
    "DROP TRIGGER chunks_fts_insert",
    "DROP TRIGGER chunks_fts_delete",
    "DROP TABLE chunks_fts",
    """CREATE VIRTUAL TABLE chunks_fts USING fts5(heading, text, row_values, content='chunks',
        content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')""",
    """CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN
        INSERT INTO chunks_fts (rowid, heading, text, row_values)
        VALUES (new.id, new.heading, new.text, new.row_values);
    END""",
    """CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN
        INSERT INTO chunks_fts (chunks_fts, rowid, heading, text, row_values)
        VALUES ('delete', old.id, old.heading, old.text, old.row_values);
    END""",
    "INSERT INTO chunks_fts (chunks_fts) VALUES ('rebuild')",
]
MIGRATIONS: list[Sequence[str | Callable[[sqlite3.Connection], None]]] = [
    SCHEMA, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, SCHEMA_V5, SCHEMA_V6]
SCHEMA_VERSION = len(MIGRATIONS)
HEADING_WEIGHT = 1.0  # bm25 weight of the heading column against the text's 1.0
ROW_VALUES_WEIGHT = 0.25  # … and of the rows' values, which the text already holds once
LEXICAL_ROWS = 5000  # at most this many matching chunks are ranked for a query (rarest words)
_WORD = re.compile(r"\w+")


class SQLiteIndex(DocumentLookups):
    """Documents, chunks and vectors; safe to open from the worker and the main process."""

    def __init__(self, path: str | os.PathLike[str], busy_timeout: float = 30.0, *,
                 readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._busy_timeout = busy_timeout
        self._local = threading.local()
        self._matrix_lock = threading.Lock()
        self._cache: _VectorCache | None = None
        if readonly:
            if not self.path.is_file():
                raise IndexStoreError(f"no index at {self.path}: nothing has been indexed with this "
                                  "config yet")
            version = self._conn().execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA_VERSION:
                raise IndexStoreError(f"{self.path}: index schema version {version}, this "
                                  f"ingest-agent reads {SCHEMA_VERSION}")
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                tables = conn.execute(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                ).fetchone()[0]
                if tables:
                    conn.execute("ROLLBACK")
                    raise IndexStoreError(f"{self.path}: holds tables ingest-agent did not create")
            elif version > SCHEMA_VERSION:
                conn.execute("ROLLBACK")
                raise IndexStoreError(f"{self.path}: written by a newer ingest-agent (v{version})")
            for statements in MIGRATIONS[version:]:
                for step in statements:
                    if isinstance(step, str):
                        conn.execute(step)
                    else:
                        step(conn)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise IndexStoreError(f"{self.path}: not a usable index database ({exc})") from None

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            conn = connect(self.path, busy_timeout=self._busy_timeout, readonly=self.readonly)
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        self._local = threading.local()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        try:
            with Transaction(self._conn()) as conn:
                yield conn
        except sqlite3.OperationalError as exc:
            raise TransientError(f"index write failed: {exc}", stage=Stage.INDEX) from None

    # -- documents ---------------------------------------------------------------------------

    def _delete_document(self, conn: Any, sha256: str) -> None:
        row = conn.execute("SELECT id FROM documents WHERE content_sha256 = ?", (sha256,)).fetchone()
        if row is not None:
            self._delete_rows(conn, row[0])

    def _insert_chunks(self, conn: Any, document_row: int,
                       rows: Iterable[tuple[Chunk, bytes]]) -> int:
        stored = 0
        for chunk, vector in rows:
            chunk_id = conn.execute(
                """INSERT INTO chunks (document_id, ordinal, text, char_start, char_end, page,
                       tokens, heading, row_values) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                   RETURNING id""",
                (document_row, chunk.ordinal, chunk.text, chunk.char_start, chunk.char_end,
                 chunk.page, chunk.tokens, chunk.heading, row_values(chunk.text)),
            ).fetchone()[0]
            conn.execute("INSERT INTO chunk_vectors (chunk_id, vector) VALUES (?, ?)",
                         (chunk_id, vector))
            stored += 1
        return stored

    @staticmethod
    def _delete_rows(conn: sqlite3.Connection, row_id: int) -> None:
        """Inside a write transaction: a document, its chunks and vectors go together."""
        conn.execute("DELETE FROM chunk_vectors WHERE chunk_id IN "
                     "(SELECT id FROM chunks WHERE document_id = ?)", (row_id,))
        conn.execute("DELETE FROM chunks WHERE document_id = ?", (row_id,))
        conn.execute("DELETE FROM documents WHERE id = ?", (row_id,))
        conn.execute("UPDATE index_meta SET value = value + 1 WHERE key = 'generation'")

    def remove_document(self, doc_id: str) -> bool:
        """Delete one document (its file turned out not to be what was indexed)."""
        conn = self._conn()
        with Transaction(conn):
            row = conn.execute("SELECT id FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
            if row is not None:
                self._delete_rows(conn, row[0])
        return row is not None

    def counts(self) -> dict[str, int]:
        conn = self._conn()
        return {
            "documents": conn.execute("SELECT count(*) FROM documents").fetchone()[0],
            "chunks": conn.execute("SELECT count(*) FROM chunks").fetchone()[0],
            "vectors": conn.execute("SELECT count(*) FROM chunk_vectors").fetchone()[0],
        }

    def integrity_problems(self) -> list[str]:
        """Orphans and mismatches that must never exist; empty when the index is sound."""
        conn = self._conn()
        checks = {
            "chunks without a document": "SELECT count(*) FROM chunks WHERE document_id NOT IN "
                                         "(SELECT id FROM documents)",
            "vectors without a chunk": "SELECT count(*) FROM chunk_vectors WHERE chunk_id NOT IN "
                                       "(SELECT id FROM chunks)",
            "chunks without a vector": "SELECT count(*) FROM chunks WHERE id NOT IN "
                                       "(SELECT chunk_id FROM chunk_vectors)",
            "documents whose chunk count is wrong":
                "SELECT count(*) FROM documents d WHERE chunk_count != "
                "(SELECT count(*) FROM chunks c WHERE c.document_id = d.id)",
        }
        problems = []
        for label, sql in checks.items():
            n = conn.execute(sql).fetchone()[0]
            if n:
                problems.append(f"{n} {label}")
        if not self.readonly:
            try:
                conn.execute("INSERT INTO chunks_fts (chunks_fts, rank) "
                             "VALUES ('integrity-check', 1)")
            except sqlite3.DatabaseError as exc:
                problems.append(f"the full-text index disagrees with the chunks ({exc})")
        return problems

    # -- search ------------------------------------------------------------------------------

    def _vectors(self) -> tuple[Any, Any, Any]:
        with self._matrix_lock:
            return self._vector_cache().refresh(self._conn())

    def _vector_cache(self) -> _VectorCache:
        if self._cache is None:
            self._cache = _VectorCache()
        return self._cache

    def vector_candidates(self, query_vector: Any, k: int, where: SearchFilter = NO_FILTER
                          ) -> list[tuple[int, float]]:
        import numpy as np

        ids, matrix, documents = self._vectors()
        if len(ids) == 0:
            return []
        scores = matrix @ np.asarray(query_vector, dtype=np.float32)
        if where.active:
            admitted = np.isin(documents, np.array(self.admitted_documents(where), dtype=np.int64))
            scores = np.where(admitted, scores, -np.inf)
        k = min(k, len(ids))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(ids[i]), float(scores[i])) for i in top if np.isfinite(scores[i])]

    def similarities(self, query_vector: Any, chunk_ids: Iterable[int]) -> dict[int, float]:
        import numpy as np

        ids, matrix, _ = self._vectors()
        wanted, rows = _rows_of(ids, chunk_ids)
        scores = matrix[rows] @ np.asarray(query_vector, dtype=np.float32)
        return dict(zip(wanted.tolist(), scores.tolist(), strict=True))

    def document_similarities(self, query_vector: Any, chunk_ids: Iterable[int]
                              ) -> dict[int, float]:
        import numpy as np

        with self._matrix_lock:  # the vectors and their centroids read as one state
            cache = self._vector_cache()
            ids, _, documents = cache.refresh(self._conn())
            wanted, rows = _rows_of(ids, chunk_ids)
            if len(wanted) == 0:
                return {}
            doc_ids, centroids = cache.centroids()
        owners = np.searchsorted(doc_ids, documents[rows])
        scores = centroids[owners] @ np.asarray(query_vector, dtype=np.float32)
        return dict(zip(wanted.tolist(), scores.tolist(), strict=True))

    def lexical_candidates(self, query: str, k: int, where: SearchFilter = NO_FILTER, *,
                           require_all: bool = False) -> list[tuple[int, float]]:
        phrases = fts_phrases(query)
        if not require_all:
            phrases = self._selective(phrases)
        if not phrases:
            return []
        return self._ranked_matches((" AND " if require_all else " OR ").join(phrases), k, where)

    def _ranked_matches(self, match: str, k: int, where: SearchFilter) -> list[tuple[int, float]]:
        """The ``k`` chunks FTS5 ranks best for a MATCH expression, within ``where``."""
        sql = ("SELECT rowid, bm25(chunks_fts, ?, 1.0, ?) AS rank FROM chunks_fts "
               "WHERE chunks_fts MATCH ?")
        params: list[Any] = [HEADING_WEIGHT, ROW_VALUES_WEIGHT, match]
        if where.active:
            sql += (" AND rowid IN (SELECT id FROM chunks WHERE document_id IN "
                    "(SELECT value FROM json_each(?)))")
            params.append(json.dumps(self.admitted_documents(where)))
        sql += " ORDER BY rank LIMIT ?"
        params.append(k)
        try:
            rows = self._conn().execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):  # an index from before v2, opened read-only
                raise IndexStoreError(f"{self.path}: made by an older ingest-agent; run the agent "
                                  "once to upgrade it") from None
            raise
        return [(int(r[0]), -float(r[1])) for r in rows]

    def literal_candidates(self, text: str, k: int, where: SearchFilter = NO_FILTER
                           ) -> list[int]:
        sql = "SELECT id FROM chunks WHERE instr(text, ?) > 0"
        params: list[Any] = [text]
        if where.active:
            sql += " AND document_id IN (SELECT value FROM json_each(?))"
            params.append(json.dumps(self.admitted_documents(where)))
        sql += " ORDER BY id LIMIT ?"
        params.append(k)
        return [int(r[0]) for r in self._conn().execute(sql, params).fetchall()]

    def phrase_candidates(self, words: Sequence[str], k: int,
                          where: SearchFilter = NO_FILTER, *,
                          window: int | None = None) -> list[tuple[int, float]]:
        parts = [_WORD.findall(word.lower()) for word in words]
        parts = [p for p in parts if p][:32]
        if not parts:
            return []
        if window is None or len(parts) == 1:
            match = '"' + " ".join(t for p in parts for t in p) + '"'
        else:
            match = "NEAR(" + " ".join('"' + " ".join(p) + '"' for p in parts) + f", {window})"
        return self._ranked_matches(match, k, where)

    def known_words(self, words: Sequence[str]) -> set[str]:
        known = set()
        for word in words:
            parts = _WORD.findall(word.lower())
            if parts and self._conn().execute(
                    "SELECT 1 FROM chunks_fts WHERE chunks_fts MATCH ? LIMIT 1",
                    ('"' + " ".join(parts) + '"',)).fetchone():
                known.add(word)
        return known

    def chunks_holding(self, words: Sequence[str], chunk_ids: Iterable[int]
                       ) -> dict[str, set[int]]:
        ids = json.dumps(sorted(set(chunk_ids)))
        held: dict[str, set[int]] = {}
        for word in words:
            parts = _WORD.findall(word.lower())
            held[word] = {int(r[0]) for r in self._conn().execute(
                "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ? AND rowid IN "
                "(SELECT value FROM json_each(?))", ('"' + " ".join(parts) + '"', ids))
            } if parts else set()
        return held

    def chunk_counts(self, words: Sequence[str], cap: int = 10_000) -> dict[str, int]:
        counts = {"": int(self._conn().execute("SELECT max(id) FROM chunks").fetchone()[0]
                          or 0)}
        for word in words:
            parts = _WORD.findall(word.lower())
            counts[word] = int(self._conn().execute(
                "SELECT count(*) FROM (SELECT 1 FROM chunks_fts WHERE chunks_fts MATCH ? "
                "LIMIT ?)", ('"' + " ".join(parts) + '"', cap)).fetchone()[0]) if parts else 0
        return counts

    def _selective(self, phrases: list[str]) -> list[str]:
        """The rarest phrases whose matches add up to at most LEXICAL_ROWS (at least the
        rarest one that matches): ranking every chunk that holds "file" or "read" costs tens
        of milliseconds over 100k chunks and moves no good result, as BM25 gives such words
        almost no weight."""
        counted = []
        for phrase in phrases:
            n = self._conn().execute(  # counting stops past the budget: a common word is cheap
                "SELECT count(*) FROM (SELECT 1 FROM chunks_fts WHERE chunks_fts MATCH ? "
                "LIMIT ?)", (phrase, LEXICAL_ROWS + 1)).fetchone()[0]
            if n:
                counted.append((n, phrase))
        kept: list[str] = []
        total = 0
        for n, phrase in sorted(counted):
            if kept and total + n > LEXICAL_ROWS:
                break
            kept.append(phrase)
            total += n
        return kept


def fts_phrases(query: str) -> list[str]:
    """FTS5 phrases for the words of ``query``: each whitespace-separated word becomes a
    phrase of its letters-and-digits parts (``os.replace`` → "os replace", so the parts must
    stand together). Common English words are left out while others remain. Nothing of the
    user's text reaches FTS5's own syntax."""
    phrases = []
    for word in query.split():
        parts = _WORD.findall(word.lower())
        if parts:
            phrases.append(parts)
    content = [p for p in phrases if not (len(p) == 1 and p[0] in STOPWORDS)]
    unique = dict.fromkeys('"' + " ".join(parts) + '"' for parts in (content or phrases))
    return list(unique)[:32]


def _rows_of(ids: Any, chunk_ids: Iterable[int]) -> tuple[Any, Any]:
    """The chunk ids among ``chunk_ids`` that have a vector, and their rows in the matrix
    (``ids`` is sorted)."""
    import numpy as np

    wanted = np.array(sorted(set(chunk_ids)), dtype=np.int64)
    if len(wanted) == 0 or len(ids) == 0:
        return wanted[:0], wanted[:0]
    at = np.clip(np.searchsorted(ids, wanted), 0, len(ids) - 1)
    present = ids[at] == wanted
    return wanted[present], at[present]


class _VectorCache:
    """All vectors as one matrix; appends new rows, reloads after deletions."""

    def __init__(self) -> None:
        import numpy as np

        self.generation = -1
        self.last_id = 0
        self.ids = np.zeros(0, dtype=np.int64)
        self.matrix = np.zeros((0, 0), dtype=np.float32)
        self.documents = np.zeros(0, dtype=np.int64)
        self._centroids: tuple[Any, Any] | None = None

    def centroids(self) -> tuple[Any, Any]:
        """Each document's mean vector, normalised: (sorted document ids, matrix). Made once
        per change of the vectors (one pass over them)."""
        import numpy as np

        if self._centroids is None:
            order = np.argsort(self.documents, kind="stable")
            docs = self.documents[order]
            starts = np.flatnonzero(np.r_[True, docs[1:] != docs[:-1]])
            sums = np.add.reduceat(self.matrix[order], starts, axis=0)
            norms = np.linalg.norm(sums, axis=1, keepdims=True)
            self._centroids = (docs[starts], sums / np.where(norms == 0, 1, norms))
        return self._centroids

    def refresh(self, conn: sqlite3.Connection) -> tuple[Any, Any, Any]:
        import numpy as np

        generation = int(conn.execute(
            "SELECT value FROM index_meta WHERE key = 'generation'").fetchone()[0])
        if generation != self.generation:
            self.__init__()  # type: ignore[misc]
            self.generation = generation
        rows = conn.execute(
            """SELECT v.chunk_id, v.vector, c.document_id FROM chunk_vectors v
               JOIN chunks c ON c.id = v.chunk_id
               WHERE v.chunk_id > ? ORDER BY v.chunk_id""", (self.last_id,)
        ).fetchall()
        if rows:
            new = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
            new = new.reshape(len(rows), -1)
            self.matrix = new if self.matrix.size == 0 else np.vstack([self.matrix, new])
            self.ids = np.concatenate([self.ids, np.array([r[0] for r in rows], dtype=np.int64)])
            self.documents = np.concatenate([self.documents,
                                             np.array([r[2] for r in rows], dtype=np.int64)])
            self.last_id = int(rows[-1][0])
            self._centroids = None
        return self.ids, self.matrix, self.documents
