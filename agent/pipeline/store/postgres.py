"""The shared index: documents, chunks and vectors in Postgres with pgvector, so several agents
write one index and any of them can search it.

Same contract as ``SQLiteIndex``: one transaction per document, idempotent per content sha256
(a unique constraint settles races between agents), exact cosine search (``<=>``), and
Postgres full-text search (a stored ``tsvector`` over heading, text and table rows' values,
GIN-indexed, ranked by ``ts_rank_cd``).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from agent.errors import IndexStoreError, TransientError
from agent.pipeline.chunk import Chunk
from agent.pipeline.readers.tables import CELL_SEPARATOR, row_values
from agent.pipeline.store.index import (
    NO_FILTER,
    STAGED_PAGE,
    STOPWORDS,
    DocumentLookups,
    SearchFilter,
    batched,
)
from agent.stages import Stage

SCHEMA = [
    "CREATE EXTENSION IF NOT EXISTS vector",
    """CREATE TABLE IF NOT EXISTS documents (
        id BIGSERIAL PRIMARY KEY,
        doc_id TEXT UNIQUE NOT NULL,
        content_sha256 TEXT UNIQUE NOT NULL,
        job_id TEXT,
        inbox TEXT,
        source_name TEXT NOT NULL,
        location TEXT,
        mime TEXT NOT NULL,
        bytes BIGINT NOT NULL,
        pages INTEGER,
        chunk_count INTEGER NOT NULL,
        model TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS ix_documents_job ON documents (job_id)",
    """CREATE TABLE IF NOT EXISTS chunks (
        id BIGSERIAL PRIMARY KEY,
        document_id BIGINT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
        ordinal INTEGER NOT NULL,
        text TEXT NOT NULL,
        char_start INTEGER NOT NULL,
        char_end INTEGER NOT NULL,
        page INTEGER,
        tokens INTEGER NOT NULL,
        embedding vector NOT NULL,
        UNIQUE (document_id, ordinal)
    )""",
    "ALTER TABLE chunks ADD COLUMN IF NOT EXISTS heading TEXT NOT NULL DEFAULT ''",
    """ALTER TABLE chunks ADD COLUMN IF NOT EXISTS tsv tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', heading), 'A') ||
        setweight(to_tsvector('english', text), 'B')) STORED""",
    "CREATE INDEX IF NOT EXISTS ix_chunks_tsv ON chunks USING gin (tsv)",
    """CREATE TABLE IF NOT EXISTS embedding_checkpoints (
        sha256 TEXT NOT NULL,
        model TEXT NOT NULL,
        ordinal INTEGER NOT NULL,
        job_id TEXT NOT NULL,
        digest BYTEA NOT NULL,
        vector BYTEA NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (sha256, model, ordinal)
    )""",
    "CREATE INDEX IF NOT EXISTS ix_checkpoints_job ON embedding_checkpoints (job_id)",
    # Checkpoints stage the whole chunk, so a document commits without holding it in memory;
    # rows from before (vectors alone) cannot be committed and only cost re-embedding.
    """DO $$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM information_schema.columns
                       WHERE table_name = 'embedding_checkpoints' AND column_name = 'text') THEN
            DELETE FROM embedding_checkpoints;
        END IF;
    END $$""",
    "ALTER TABLE embedding_checkpoints ADD COLUMN IF NOT EXISTS text TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE embedding_checkpoints ADD COLUMN IF NOT EXISTS heading TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE embedding_checkpoints ADD COLUMN IF NOT EXISTS char_start INTEGER NOT NULL "
    "DEFAULT 0",
    "ALTER TABLE embedding_checkpoints ADD COLUMN IF NOT EXISTS char_end INTEGER NOT NULL "
    "DEFAULT 0",
    "ALTER TABLE embedding_checkpoints ADD COLUMN IF NOT EXISTS page INTEGER",
    "ALTER TABLE embedding_checkpoints ADD COLUMN IF NOT EXISTS tokens INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE documents ADD COLUMN IF NOT EXISTS fingerprint BIGINT",
]
# Each chunk's table rows as their values alone, in the tsvector at the lowest weight, so a
# query made of a row's values matches the row as a phrase (issue 40; SQLite's v6).
ROW_VALUES = [
    "ALTER TABLE chunks ADD COLUMN row_values TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE chunks DROP COLUMN tsv",
    """ALTER TABLE chunks ADD COLUMN tsv tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', heading), 'A') ||
        setweight(to_tsvector('english', text), 'B') ||
        setweight(to_tsvector('english', row_values), 'D')) STORED""",
    "CREATE INDEX IF NOT EXISTS ix_chunks_tsv ON chunks USING gin (tsv)",
]


def _vector(values: Any) -> str:
    return "[" + ",".join(f"{float(v):.7g}" for v in values) + "]"


class PostgresIndex(DocumentLookups):
    """``SQLiteIndex``'s interface on Postgres + pgvector (``index.backend = "postgres"``)."""

    _PH = "%s"

    def __init__(self, dsn: str) -> None:
        import psycopg

        self.dsn = dsn
        self._local = threading.local()
        try:
            with self._conn().transaction():
                self._conn().execute("SELECT pg_advisory_xact_lock(7345120)")
                for sql in SCHEMA:
                    self._conn().execute(sql)
                if not self._conn().execute(
                        "SELECT 1 FROM information_schema.columns WHERE table_name = 'chunks' "
                        "AND column_name = 'row_values'").fetchone():
                    for sql in ROW_VALUES:
                        self._conn().execute(sql)
                    self._fill_row_values()
        except psycopg.Error as exc:
            raise IndexStoreError(f"postgres index at {self._safe_dsn()}: {exc}") from None

    def _fill_row_values(self) -> None:
        """The row values of the chunks indexed before the column was added."""
        rows = self._conn().execute("SELECT id, text FROM chunks WHERE strpos(text, %s) > 0",
                                    (CELL_SEPARATOR,)).fetchall()
        with self._conn().cursor() as cur:
            cur.executemany("UPDATE chunks SET row_values = %s WHERE id = %s",
                            [(row_values(text), chunk_id) for chunk_id, text in rows])

    def _safe_dsn(self) -> str:
        return self.dsn.split("@")[-1]

    def _conn(self) -> Any:
        import psycopg

        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = psycopg.connect(self.dsn, autocommit=True)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        self._local = threading.local()

    @contextlib.contextmanager
    def _write(self) -> Iterator[Any]:
        import psycopg

        conn = self._conn()
        try:
            with conn.transaction():
                yield conn
        except psycopg.OperationalError as exc:
            raise TransientError(f"index write failed: {exc}", stage=Stage.INDEX) from None

    def _delete_document(self, conn: Any, sha256: str) -> None:
        conn.execute("DELETE FROM documents WHERE content_sha256 = %s", (sha256,))  # cascades

    def _insert_chunks(self, conn: Any, document_row: int,
                       rows: Iterable[tuple[Chunk, bytes]]) -> int:
        import numpy as np

        stored = 0
        with conn.cursor() as cur:
            for page in batched(rows, STAGED_PAGE):
                cur.executemany(
                    """INSERT INTO chunks (document_id, ordinal, text, char_start, char_end,
                           page, tokens, embedding, heading, row_values)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s::vector, %s, %s)""",
                    [(document_row, c.ordinal, c.text, c.char_start, c.char_end, c.page,
                      c.tokens, _vector(np.frombuffer(v, dtype=np.float32)), c.heading,
                      row_values(c.text))
                     for c, v in page])
                stored += len(page)
        return stored

    def remove_document(self, doc_id: str) -> bool:
        """Delete one document; its chunks go with it (ON DELETE CASCADE)."""
        cur = self._conn().execute("DELETE FROM documents WHERE doc_id = %s", (doc_id,))
        return bool(cur.rowcount)

    def counts(self) -> dict[str, int]:
        conn = self._conn()
        chunks = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
        return {"documents": conn.execute("SELECT count(*) FROM documents").fetchone()[0],
                "chunks": chunks, "vectors": chunks}

    def integrity_problems(self) -> list[str]:
        n = self._conn().execute(
            "SELECT count(*) FROM documents d WHERE chunk_count != "
            "(SELECT count(*) FROM chunks c WHERE c.document_id = d.id)").fetchone()[0]
        return [f"{n} documents whose chunk count is wrong"] if n else []

    def _admitted_clause(self, where: SearchFilter, params: list[Any]) -> str:
        if not where.active:
            return ""
        params.append(json.dumps(self.admitted_documents(where)))
        return (" AND c.document_id IN (SELECT value::bigint FROM "
                "jsonb_array_elements_text(%s::jsonb))")

    def vector_candidates(self, query_vector: Any, k: int, where: SearchFilter = NO_FILTER
                          ) -> list[tuple[int, float]]:
        vector = _vector(query_vector)
        params: list[Any] = [vector]
        clause = self._admitted_clause(where, params)
        params += [vector, k]
        rows = self._conn().execute(
            f"""SELECT c.id, 1 - (c.embedding <=> %s::vector) FROM chunks c
                WHERE true {clause} ORDER BY c.embedding <=> %s::vector LIMIT %s""",
            params).fetchall()
        return [(int(r[0]), float(r[1])) for r in rows]

    def similarities(self, query_vector: Any, chunk_ids: Iterable[int]) -> dict[int, float]:
        ids = sorted({int(i) for i in chunk_ids})
        if not ids:
            return {}
        rows = self._conn().execute(
            "SELECT id, 1 - (embedding <=> %s::vector) FROM chunks WHERE id = ANY(%s)",
            (_vector(query_vector), ids)).fetchall()
        return {int(r[0]): float(r[1]) for r in rows}

    def document_similarities(self, query_vector: Any, chunk_ids: Iterable[int]
                              ) -> dict[int, float]:
        ids = sorted({int(i) for i in chunk_ids})
        if not ids:
            return {}
        rows = self._conn().execute(  # the cosine of the mean is that of the normalised mean
            """WITH wanted AS (SELECT id, document_id FROM chunks WHERE id = ANY(%s)),
                    whole AS (SELECT document_id, avg(embedding) AS centroid FROM chunks
                              WHERE document_id IN (SELECT document_id FROM wanted)
                              GROUP BY document_id)
               SELECT w.id, 1 - (whole.centroid <=> %s::vector)
               FROM wanted w JOIN whole USING (document_id)""",
            (ids, _vector(query_vector))).fetchall()
        return {int(r[0]): float(r[1]) for r in rows}

    def phrase_candidates(self, words: Sequence[str], k: int,
                          where: SearchFilter = NO_FILTER, *,
                          window: int | None = None) -> list[tuple[int, float]]:
        """The exact phrase whatever ``window`` says: a tsquery measures exact distances only."""
        phrase = " ".join(w for w in words if any(ch.isalnum() for ch in w))
        if not phrase:
            return []
        params: list[Any] = [phrase]
        clause = self._admitted_clause(where, params)
        params.append(k)
        rows = self._conn().execute(
            f"""WITH q AS (SELECT phraseto_tsquery('english', %s) AS query)
                SELECT c.id, ts_rank_cd(c.tsv, q.query) AS rank FROM chunks c, q
                WHERE q.query::text <> '' AND c.tsv @@ q.query {clause}
                ORDER BY rank DESC, c.id LIMIT %s""", params).fetchall()
        return [(int(r[0]), float(r[1])) for r in rows]

    def literal_candidates(self, text: str, k: int, where: SearchFilter = NO_FILTER
                           ) -> list[int]:
        params: list[Any] = [text]
        clause = self._admitted_clause(where, params)
        params.append(k)
        rows = self._conn().execute(
            f"SELECT c.id FROM chunks c WHERE strpos(c.text, %s) > 0 {clause} "
            "ORDER BY c.id LIMIT %s", params).fetchall()
        return [int(r[0]) for r in rows]

    def known_words(self, words: Sequence[str]) -> set[str]:
        known = set()
        for word in words:
            if self._conn().execute(
                    "SELECT 1 FROM chunks WHERE tsv @@ phraseto_tsquery('english', %s) LIMIT 1",
                    (word,)).fetchone():
                known.add(word)
        return known

    def chunks_holding(self, words: Sequence[str], chunk_ids: Iterable[int]
                       ) -> dict[str, set[int]]:
        ids = sorted(set(chunk_ids))
        held: dict[str, set[int]] = {}
        for word in words:
            held[word] = {int(r[0]) for r in self._conn().execute(
                "SELECT id FROM chunks WHERE id = ANY(%s) AND "
                "tsv @@ phraseto_tsquery('english', %s)", (ids, word)).fetchall()
            } if any(ch.isalnum() for ch in word) else set()
        return held

    def chunk_counts(self, words: Sequence[str], cap: int = 10_000) -> dict[str, int]:
        counts = {"": int(self._conn().execute(
            "SELECT count(*) FROM chunks").fetchone()[0])}
        for word in words:
            counts[word] = int(self._conn().execute(
                "SELECT count(*) FROM (SELECT 1 FROM chunks WHERE "
                "tsv @@ phraseto_tsquery('english', %s) LIMIT %s) AS held",
                (word, cap)).fetchone()[0]) if any(ch.isalnum() for ch in word) else 0
        return counts

    def lexical_candidates(self, query: str, k: int, where: SearchFilter = NO_FILTER, *,
                           require_all: bool = False) -> list[tuple[int, float]]:
        """Each word of the query is a phrase query (``os.replace`` stays one lexeme, as the
        Postgres parser reads it in the text too); the phrases are OR-ed (or AND-ed)."""
        words = [w for w in query.split() if any(ch.isalnum() for ch in w)]
        content = [w for w in words if w.lower().strip(".,;:!?()'\"") not in STOPWORDS]
        words = (content or words)[:32]
        if not words:
            return []
        joiner = " && " if require_all else " || "
        tsquery = joiner.join(["phraseto_tsquery('english', %s)"] * len(words))
        params: list[Any] = [*words]
        clause = self._admitted_clause(where, params)
        params.append(k)
        rows = self._conn().execute(
            f"""WITH q AS (SELECT ({tsquery}) AS query)
                SELECT c.id, ts_rank_cd(c.tsv, q.query) AS rank FROM chunks c, q
                WHERE q.query::text <> '' AND c.tsv @@ q.query {clause}
                ORDER BY rank DESC, c.id LIMIT %s""", params).fetchall()
        return [(int(r[0]), float(r[1])) for r in rows]
