"""The index contract: what both stores (embedded SQLite, shared Postgres + pgvector) offer,
and the records they speak in. ``agent.pipeline.store.backends.open_index`` opens the one the
configuration names.

A store keeps documents, their chunks and vectors: one transaction per document, idempotent per
content sha256 (a retry or a duplicate never adds chunks twice), exact cosine search and a
lexical (full-text, BM25-like) search. Both searches return candidates (chunk id, score) under
the same filters; ``agent.search.engine`` fuses and presents them.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from agent.errors import TransientError
from agent.files.names import decode_name, decode_optional, display_name, encode_name
from agent.pipeline.fingerprint import as_signed
from agent.stages import Stage

if TYPE_CHECKING:
    from agent.pipeline.chunk import Chunk


@dataclass(frozen=True, slots=True)
class DocumentRecord:
    doc_id: str
    content_sha256: str
    job_id: str | None
    inbox: str | None
    source_name: str
    location: str | None
    mime: str
    bytes: int
    pages: int | None
    chunk_count: int


@dataclass(frozen=True, slots=True)
class SearchHit:
    score: float
    text: str
    doc_id: str
    source_name: str
    location: str | None
    inbox: str | None
    page: int | None
    char_start: int
    char_end: int

    @classmethod
    def of(cls, score: float, chunk: StoredChunk) -> SearchHit:
        return cls(score, chunk.text, chunk.doc_id, chunk.source_name, chunk.location,
                   chunk.inbox, chunk.page, chunk.char_start, chunk.char_end)


@dataclass(frozen=True, slots=True)
class SearchFilter:
    """Which documents a search may return; every field left empty admits all."""

    inbox: str | None = None
    types: tuple[str, ...] = ()  # MIME types
    path_glob: str | None = None  # matched against the file name and its current location
    after: float | None = None  # indexed at or after (epoch seconds)
    before: float | None = None  # indexed before

    @property
    def active(self) -> bool:
        return bool(self.inbox or self.types or self.path_glob or self.after is not None
                    or self.before is not None)

    def admits(self, inbox: str | None, mime: str, source_name: str, location: str | None,
               indexed_at: float) -> bool:
        if self.inbox is not None and inbox != self.inbox:
            return False
        if self.types and mime not in self.types:
            return False
        if self.after is not None and indexed_at < self.after:
            return False
        if self.before is not None and indexed_at >= self.before:
            return False
        if self.path_glob is not None:
            names = [display_name(source_name)]
            if location:
                names.append(display_name(location))
            return any(fnmatch.fnmatchcase(n, self.path_glob)
                       or fnmatch.fnmatchcase(n.rsplit("/", 1)[-1], self.path_glob)
                       for n in names)
        return True


NO_FILTER = SearchFilter()
STAGED_PAGE = 512  # staged chunks read per query when a document commits
# Words too common to search by (the lexical side drops them while other words remain).
STOPWORDS = frozenset("""a about an and are as at be but by can do does for from how i if in
into is it its me my no not of on or so that the their them then there these this to was what
when where which who why will with would you your""".split())


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """A chunk as search shows it, with its document."""

    chunk_id: int
    ordinal: int
    text: str
    heading: str
    page: int | None
    char_start: int
    char_end: int
    doc_id: str
    source_name: str
    location: str | None
    inbox: str | None
    mime: str
    indexed_at: float
    fingerprint: int | None = None  # the document's SimHash (``fingerprint``), signed


CHUNK_COLUMNS = ("c.id, c.ordinal, c.text, c.heading, c.page, c.char_start, c.char_end, "
                 "d.doc_id, d.source_name, d.location, d.inbox, d.mime, d.created_at, "
                 "d.fingerprint")


def stored_chunk(row: Sequence[Any]) -> StoredChunk:
    """A row of ``CHUNK_COLUMNS`` with its stored (encoded) names decoded."""
    return StoredChunk(row[0], row[1], row[2], row[3] or "", row[4], row[5], row[6], row[7],
                       decode_name(row[8]), decode_optional(row[9]), row[10], row[11],
                       float(row[12]), None if row[13] is None else int(row[13]))


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """``items`` in lists of ``size`` (the last may be shorter), read lazily."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def with_vector_bytes(chunks: Sequence[Chunk], vectors: Any) -> Iterator[tuple[Chunk, bytes]]:
    """Each chunk with its vector as float32 bytes (the rows ``add_document`` stores)."""
    import numpy as np

    matrix = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(chunks), -1)
    for chunk, vector in zip(chunks, matrix, strict=True):
        yield chunk, vector.tobytes()


def _record(row: Sequence[Any]) -> DocumentRecord:
    """A documents row with its stored (encoded) names turned back into file names."""
    return DocumentRecord(row[0], row[1], row[2], row[3], decode_name(row[4]),
                          decode_optional(row[5]), *row[6:])


class Index(Protocol):
    """A searchable store of documents, chunks and vectors."""

    def add_document(
        self, *, sha256: str, job_id: str, inbox: str | None, source_name: str, mime: str,
        size: int, pages: int | None, model: str, chunks: Sequence[Chunk] = (),
        vectors: Any = None, replace: bool = False, staged: int | None = None,
        fingerprint: int | None = None,
    ) -> DocumentRecord:
        """Store a document with ``chunks`` and their ``vectors``, or with the ``staged``
        chunks its checkpoints hold (read in pages: memory does not grow with the document),
        and its text's SimHash ``fingerprint``."""
        ...

    def find_by_hash(self, sha256: str) -> DocumentRecord | None: ...

    def find_by_job(self, job_id: str) -> DocumentRecord | None: ...

    def find_document(self, doc_id: str) -> DocumentRecord | None: ...

    def models(self) -> dict[str, int]: ...

    def document_chunks(self, doc_id: str, start: int = 0, limit: int = 100
                        ) -> list[StoredChunk]: ...

    def documents(self) -> list[tuple[Any, ...]]: ...

    def set_location(self, doc_id: str, location: str) -> None: ...

    def remove_document(self, doc_id: str) -> bool: ...

    def counts(self) -> dict[str, int]: ...

    def integrity_problems(self) -> list[str]: ...

    def search(self, query_vector: Any, k: int = 5, inbox: str | None = None
               ) -> list[SearchHit]: ...

    def vector_candidates(self, query_vector: Any, k: int, where: SearchFilter = NO_FILTER
                          ) -> list[tuple[int, float]]:
        """The ``k`` chunks closest to the vector: (chunk id, cosine), best first."""
        ...

    def lexical_candidates(self, query: str, k: int, where: SearchFilter = NO_FILTER, *,
                           require_all: bool = False) -> list[tuple[int, float]]:
        """The ``k`` chunks that best match the query's words (any of them, or all with
        ``require_all``): (chunk id, score, higher is better), best first."""
        ...

    def phrase_candidates(self, words: Sequence[str], k: int,
                          where: SearchFilter = NO_FILTER, *,
                          window: int | None = None) -> list[tuple[int, float]]:
        """The ``k`` best chunks that hold ``words`` together: as one exact phrase, in order
        (``window`` None), or all within ``window`` tokens of one another (a backend that
        cannot tell distances asks for the exact phrase then). Each word may be dotted or
        hyphenated (``os.replace``, ``SNB22-3``): its parts stand together in either case."""
        ...

    def literal_candidates(self, text: str, k: int, where: SearchFilter = NO_FILTER
                           ) -> list[int]:
        """The first ``k`` chunks whose text holds ``text`` character for character, in
        index order: for a query with no letter or digit ("________", "→"), which the
        full-text index cannot match (a scan of the chunks' text)."""
        ...

    def known_words(self, words: Sequence[str]) -> set[str]:
        """Those of ``words`` that occur in at least one chunk (as the full-text index stems
        them): a question about Mongolia in an index that never says "Mongolia" is off topic."""
        ...

    def chunks_holding(self, words: Sequence[str], chunk_ids: Iterable[int]
                       ) -> dict[str, set[int]]:
        """For each of ``words``, which of ``chunk_ids`` hold it, as the full-text index
        matches words (stemmed; a dotted word's parts together): what a passage holds of a
        query, judged the way the lexical side finds it."""
        ...

    def chunk_counts(self, words: Sequence[str], cap: int = 10_000) -> dict[str, int]:
        """How many chunks hold each word (counting stops at ``cap``), and the number of
        chunks in all under the key "" — the index's own statistics for a word's rarity."""
        ...

    def similarities(self, query_vector: Any, chunk_ids: Iterable[int]) -> dict[int, float]:
        """Cosine of the vector with each chunk's."""
        ...

    def document_similarities(self, query_vector: Any, chunk_ids: Iterable[int]
                              ) -> dict[int, float]:
        """For each chunk, the cosine of the vector with its whole document: the mean of the
        document's chunk vectors (what the document is about, beside its best passage)."""
        ...

    def chunks_by_id(self, chunk_ids: Iterable[int]) -> dict[int, StoredChunk]: ...

    def opening_chunks(self, chunk_ids: Iterable[int]) -> dict[int, int]:
        """For each chunk, the id of its document's first chunk (ordinal 0): the opening,
        where a document says what it is about."""
        ...

    def checkpointed_digests(self, sha256: str, model: str) -> dict[int, bytes]:
        """Chunks staged so far for a document being embedded: ordinal → digest of the text
        that was embedded. Never seen by search."""
        ...

    def save_checkpoint(self, sha256: str, model: str, job_id: str,
                        rows: Sequence[tuple[Chunk, bytes, bytes]]) -> None:
        """Stage freshly embedded chunks as (chunk, digest, vector bytes), in one write."""
        ...

    def drop_stale_checkpoints(self, job_id: str, sha256: str) -> int:
        """Forget this job's checkpoints of other contents (its file changed)."""
        ...

    def purge_checkpoints(self, older_than: float) -> int:
        """Forget checkpoints not written since ``older_than`` (epoch seconds)."""
        ...

    def close(self) -> None: ...


class DocumentLookups:
    """The read-and-annotate queries both index backends share; only the placeholder differs."""

    _PH = "?"
    _DOC_COLUMNS = ("doc_id, content_sha256, job_id, inbox, source_name, location, mime, bytes, "
                    "pages, chunk_count")

    def _conn(self) -> Any:
        raise NotImplementedError

    def _write(self) -> AbstractContextManager[Any]:
        """A write transaction on this thread's connection (backend errors → TransientError)."""
        raise NotImplementedError

    def vector_candidates(self, query_vector: Any, k: int, where: SearchFilter = NO_FILTER
                          ) -> list[tuple[int, float]]:
        raise NotImplementedError

    # -- checkpoints: vectors of a document still being embedded --------------------------

    def checkpointed_digests(self, sha256: str, model: str) -> dict[int, bytes]:
        rows = self._conn().execute(
            f"SELECT ordinal, digest FROM embedding_checkpoints "
            f"WHERE sha256 = {self._PH} AND model = {self._PH}", (sha256, model)).fetchall()
        return {int(o): bytes(d) for o, d in rows}

    def save_checkpoint(self, sha256: str, model: str, job_id: str,
                        rows: Sequence[tuple[Chunk, bytes, bytes]]) -> None:
        now = time.time()
        ph = self._PH
        with self._write() as conn:
            cursor = conn.cursor()  # executemany lives on the cursor in both drivers
            cursor.executemany(
                f"""INSERT INTO embedding_checkpoints
                       (sha256, model, ordinal, job_id, digest, vector, updated_at, text, heading,
                        char_start, char_end, page, tokens)
                    VALUES ({", ".join([ph] * 13)})
                    ON CONFLICT (sha256, model, ordinal) DO UPDATE SET
                       job_id = excluded.job_id, digest = excluded.digest,
                       vector = excluded.vector, updated_at = excluded.updated_at,
                       text = excluded.text, heading = excluded.heading,
                       char_start = excluded.char_start, char_end = excluded.char_end,
                       page = excluded.page, tokens = excluded.tokens""",
                [(sha256, model, c.ordinal, job_id, digest, vector, now, c.text, c.heading,
                  c.char_start, c.char_end, c.page, c.tokens) for c, digest, vector in rows])
            cursor.close()

    def add_document(
        self, *, sha256: str, job_id: str, inbox: str | None, source_name: str, mime: str,
        size: int, pages: int | None, model: str, chunks: Sequence[Chunk] = (),
        vectors: Any = None, replace: bool = False, staged: int | None = None,
        fingerprint: int | None = None,
    ) -> DocumentRecord:
        """Store a document, its chunks and vectors in one transaction; idempotent per sha256
        (the same content again adds nothing unless ``replace``). ``staged``: the chunks and
        vectors are the job's embedding checkpoints, that many of them."""
        count = len(chunks) if staged is None else staged
        ph = self._PH
        with self._write() as conn:
            if replace:
                self._delete_document(conn, sha256)
            row = conn.execute(
                f"""INSERT INTO documents (doc_id, content_sha256, job_id, inbox, source_name,
                       mime, bytes, pages, chunk_count, model, created_at, fingerprint)
                   VALUES ({", ".join([ph] * 12)}) ON CONFLICT DO NOTHING RETURNING id""",
                (f"doc_{sha256[:20]}", sha256, job_id, inbox, encode_name(source_name), mime,
                 size, pages, count, model, time.time(), as_signed(fingerprint)),
            ).fetchone()
            if row is not None:
                rows = (self._staged_rows(conn, sha256, model) if staged is not None
                        else with_vector_bytes(chunks, vectors))
                stored = self._insert_chunks(conn, row[0], rows)
                if stored != count:
                    raise TransientError(f"{count - stored} of the document's {count} chunks are "
                                         "no longer staged; the job embeds them again",
                                         stage=Stage.INDEX)
            conn.execute(f"DELETE FROM embedding_checkpoints WHERE sha256 = {ph} AND model = {ph}",
                         (sha256, model))
        found = self.find_by_hash(sha256)
        assert found is not None
        return found

    def _delete_document(self, conn: Any, sha256: str) -> None:
        """Inside a write transaction: the document with this content, its chunks and vectors."""
        raise NotImplementedError

    def _insert_chunks(self, conn: Any, document_row: int,
                       rows: Iterable[tuple[Chunk, bytes]]) -> int:
        """Inside a write transaction: the chunks and their vectors; how many were stored."""
        raise NotImplementedError

    def _staged_rows(self, conn: Any, sha256: str, model: str) -> Iterator[tuple[Chunk, bytes]]:
        """Inside the committing transaction: the staged chunks and vector bytes, in order,
        ``STAGED_PAGE`` rows at a time."""
        from agent.pipeline.chunk import Chunk

        ph = self._PH
        after = -1
        while True:
            rows = conn.execute(
                f"""SELECT ordinal, text, char_start, char_end, page, tokens, heading, vector
                    FROM embedding_checkpoints
                    WHERE sha256 = {ph} AND model = {ph} AND ordinal > {ph}
                    ORDER BY ordinal LIMIT {STAGED_PAGE}""", (sha256, model, after)).fetchall()
            if not rows:
                return
            for r in rows:
                yield Chunk(int(r[0]), r[1], int(r[2]), int(r[3]), r[4], int(r[5]), r[6]), \
                    bytes(r[7])
            after = int(rows[-1][0])

    def drop_stale_checkpoints(self, job_id: str, sha256: str) -> int:
        with self._write() as conn:
            cur = conn.execute(f"DELETE FROM embedding_checkpoints WHERE job_id = {self._PH} "
                               f"AND sha256 <> {self._PH}", (job_id, sha256))
            return int(cur.rowcount or 0)

    def purge_checkpoints(self, older_than: float) -> int:
        with self._write() as conn:
            cur = conn.execute(
                f"DELETE FROM embedding_checkpoints WHERE updated_at < {self._PH}", (older_than,))
            return int(cur.rowcount or 0)

    def search(self, query_vector: Any, k: int = 5, inbox: str | None = None) -> list[SearchHit]:
        """Top ``k`` chunks by cosine similarity alone (no fusion, no grouping)."""
        found = self.vector_candidates(query_vector, k, SearchFilter(inbox=inbox))
        rows = self.chunks_by_id(i for i, _ in found)
        return [SearchHit.of(score, rows[i]) for i, score in found if i in rows]

    def chunks_by_id(self, chunk_ids: Iterable[int]) -> dict[int, StoredChunk]:
        ids = [int(i) for i in chunk_ids]
        if not ids:
            return {}
        marks = ",".join([self._PH] * len(ids))
        rows = self._conn().execute(
            f"SELECT {CHUNK_COLUMNS} FROM chunks c JOIN documents d ON d.id = c.document_id "
            f"WHERE c.id IN ({marks})", ids).fetchall()
        return {int(r[0]): stored_chunk(r) for r in rows}

    def opening_chunks(self, chunk_ids: Iterable[int]) -> dict[int, int]:
        ids = [int(i) for i in chunk_ids]
        if not ids:
            return {}
        marks = ",".join([self._PH] * len(ids))
        rows = self._conn().execute(
            f"SELECT c.id, o.id FROM chunks c JOIN chunks o "
            f"ON o.document_id = c.document_id AND o.ordinal = 0 WHERE c.id IN ({marks})",
            ids).fetchall()
        return {int(r[0]): int(r[1]) for r in rows}

    def admitted_documents(self, where: SearchFilter) -> list[int]:
        """Row ids of the documents the filter admits."""
        rows = self._conn().execute(
            "SELECT id, inbox, mime, source_name, location, created_at FROM documents"
        ).fetchall()
        return [int(r[0]) for r in rows
                if where.admits(r[1], r[2], decode_name(r[3]), decode_optional(r[4]), r[5])]

    def _one(self, where: str, value: str) -> DocumentRecord | None:
        row = self._conn().execute(
            f"SELECT {self._DOC_COLUMNS} FROM documents WHERE {where} = {self._PH}", (value,)
        ).fetchone()
        return _record(row) if row else None

    def find_by_hash(self, sha256: str) -> DocumentRecord | None:
        return self._one("content_sha256", sha256)

    def find_by_job(self, job_id: str) -> DocumentRecord | None:
        return self._one("job_id", job_id)

    def find_document(self, doc_id: str) -> DocumentRecord | None:
        return self._one("doc_id", doc_id)

    def models(self) -> dict[str, int]:
        """How many documents each embedding model made (a change of model needs a reindex)."""
        return {str(model): int(n) for model, n in self._conn().execute(
            "SELECT model, count(*) FROM documents GROUP BY model").fetchall()}

    def document_chunks(self, doc_id: str, start: int = 0, limit: int = 100
                        ) -> list[StoredChunk]:
        """A document's chunks in reading order, ``limit`` from ordinal ``start`` (what the
        web page shows of a document, a page of chunks at a time)."""
        rows = self._conn().execute(
            f"SELECT {CHUNK_COLUMNS} FROM chunks c JOIN documents d ON d.id = c.document_id "
            f"WHERE d.doc_id = {self._PH} AND c.ordinal >= {self._PH} ORDER BY c.ordinal "
            f"LIMIT {self._PH}", (doc_id, int(start), int(limit))).fetchall()
        return [stored_chunk(r) for r in rows]

    def documents(self) -> list[tuple[Any, ...]]:
        """(doc_id, job_id, inbox, source_name, location, sha256) of every document."""
        return [(doc_id, job_id, inbox, decode_name(name), decode_optional(location), sha)
                for doc_id, job_id, inbox, name, location, sha in self._conn().execute(
                    "SELECT doc_id, job_id, inbox, source_name, location, content_sha256 "
                    "FROM documents ORDER BY id").fetchall()]

    def set_location(self, doc_id: str, location: str) -> None:
        """Where the original now lives (done/), so search results can point at it."""
        self._conn().execute(
            f"UPDATE documents SET location = {self._PH} WHERE doc_id = {self._PH}",
            (encode_name(location), doc_id))
