"""The index contract: what both stores (embedded SQLite, shared Postgres + pgvector) offer,
and the records they speak in. ``agent.pipeline.stores.open_index`` opens the one the
configuration names.

A store keeps documents, their chunks and vectors: one transaction per document, idempotent per
content sha256 (a retry or a duplicate never adds chunks twice), and exact cosine search.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from agent.errors import AgentError
from agent.names import decode_name, decode_optional, display_name, encode_name

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

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": round(self.score, 4), "text": self.text, "document_id": self.doc_id,
            "file": display_name(self.source_name),
            "location": display_name(self.location) if self.location else None,
            "inbox": self.inbox,
            "page": self.page, "char_start": self.char_start, "char_end": self.char_end,
        }


def _record(row: Sequence[Any]) -> DocumentRecord:
    """A documents row with its stored (encoded) names turned back into file names."""
    return DocumentRecord(row[0], row[1], row[2], row[3], decode_name(row[4]),
                          decode_optional(row[5]), *row[6:])


def hit_from_row(score: float, row: Sequence[Any]) -> SearchHit:
    """(text, doc_id, source_name, location, inbox, page, char_start, char_end) → a hit."""
    return SearchHit(score, row[0], row[1], decode_name(row[2]), decode_optional(row[3]),
                     *row[4:])


class IndexError_(AgentError):
    """The index database is unusable."""


class Index(Protocol):
    """A searchable store of documents, chunks and vectors."""

    def add_document(
        self, *, sha256: str, job_id: str, inbox: str | None, source_name: str, mime: str,
        size: int, pages: int | None, model: str, chunks: Sequence[Chunk], vectors: Any,
        replace: bool = False,
    ) -> DocumentRecord: ...

    def find_by_hash(self, sha256: str) -> DocumentRecord | None: ...

    def find_by_job(self, job_id: str) -> DocumentRecord | None: ...

    def documents(self) -> list[tuple[Any, ...]]: ...

    def set_location(self, doc_id: str, location: str) -> None: ...

    def remove_document(self, doc_id: str) -> bool: ...

    def counts(self) -> dict[str, int]: ...

    def integrity_problems(self) -> list[str]: ...

    def search(self, query_vector: Any, k: int = 5, inbox: str | None = None
               ) -> list[SearchHit]: ...

    def close(self) -> None: ...


class DocumentLookups:
    """The read-and-annotate queries both index backends share; only the placeholder differs."""

    _PH = "?"
    _DOC_COLUMNS = ("doc_id, content_sha256, job_id, inbox, source_name, location, mime, bytes, "
                    "pages, chunk_count")

    def _conn(self) -> Any:
        raise NotImplementedError

    def _one(self, where: str, value: str) -> DocumentRecord | None:
        row = self._conn().execute(
            f"SELECT {self._DOC_COLUMNS} FROM documents WHERE {where} = {self._PH}", (value,)
        ).fetchone()
        return _record(row) if row else None

    def find_by_hash(self, sha256: str) -> DocumentRecord | None:
        return self._one("content_sha256", sha256)

    def find_by_job(self, job_id: str) -> DocumentRecord | None:
        return self._one("job_id", job_id)

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
