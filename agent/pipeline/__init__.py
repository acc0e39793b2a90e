"""RAG ingestion of one file: detect → extract → chunk → embed → index.

The pipeline knows nothing of the queue or of folders: it gets a path and a request, reports
progress through a callback and returns what it stored, or raises ``PermanentError`` /
``TransientError`` naming the stage.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from agent.config import Settings
from agent.errors import PermanentError, TransientError

Progress = Callable[[int, str], None]


@dataclass(frozen=True, slots=True)
class JobRequest:
    """What the processor asks the worker to ingest."""

    job_id: str
    path: str
    inbox: str | None
    original_filename: str
    allowed_types: list[str] = field(default_factory=list)
    reindex: bool = False  # embed again even if this content is indexed (model change)


class Pipeline(Protocol):
    def run(self, request: JobRequest, progress: Progress) -> dict[str, Any]: ...


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1024 * 1024), b""):
                digest.update(block)
    except PermissionError:
        raise PermanentError("cannot read the file: permission denied", stage="read") from None
    except OSError as exc:
        raise TransientError(f"cannot read the file: {exc.strerror}", stage="read") from None
    return digest.hexdigest()


class IngestPipeline:
    """The real pipeline; built once per worker process (the model loads once)."""

    def __init__(self, settings: Settings) -> None:
        from agent.pipeline.chunk import Chunker
        from agent.pipeline.embed import Embedder
        from agent.pipeline.index import open_index

        self.settings = settings
        self.embedder = Embedder(settings.embedding, settings.agent.data_dir)
        self.chunker = Chunker(self.embedder.tokenizer_file, settings.processing.chunk_tokens,
                               settings.processing.chunk_overlap_tokens)
        self.index = open_index(settings)
        self.current_stage = ""

    def run(self, request: JobRequest, progress: Progress) -> dict[str, Any]:
        from agent.pipeline.detect import detect_type
        from agent.pipeline.extract import extract

        stages: dict[str, float] = {}
        path = Path(request.path)
        t = time.perf_counter()
        self.current_stage = "read"
        sha = file_sha256(path)
        existing = self.index.find_by_hash(sha)
        if existing is not None and not request.reindex:
            if existing.job_id == request.job_id:
                return {"document_id": existing.doc_id, "chunks": existing.chunk_count,
                        "resumed": True, "stages": stages}
            if self.settings.index.on_duplicate == "skip":
                return {"duplicate_of": existing.doc_id, "chunks": 0, "stages": stages}
        self.current_stage = "detect"
        progress(5, "detecting type")
        mime = detect_type(path, request.allowed_types or None)
        stages["detect"] = time.perf_counter() - t

        t = time.perf_counter()
        self.current_stage = "extract"
        progress(10, f"extracting text ({mime})")
        sections = list(extract(path, mime))
        pages = max((s.page or 0 for s in sections), default=0) or None
        stages["extract"] = time.perf_counter() - t

        t = time.perf_counter()
        self.current_stage = "chunk"
        progress(20, "chunking")
        chunks = list(self.chunker.chunk(sections))
        del sections
        stages["chunk"] = time.perf_counter() - t
        if not chunks:
            raise PermanentError("no text found (the file is empty or whitespace only)",
                                 stage="extract")

        t = time.perf_counter()
        self.current_stage = "embed"
        vectors = []
        step = max(self.settings.embedding.batch_size, 1) * 4
        for start in range(0, len(chunks), step):
            part = chunks[start:start + step]
            vectors.append(self.embedder.embed([c.text for c in part]))
            done = start + len(part)
            progress(25 + int(65 * done / len(chunks)), f"embedding {done}/{len(chunks)} chunks")
        import numpy as np

        matrix = np.vstack(vectors)
        stages["embed"] = time.perf_counter() - t

        t = time.perf_counter()
        self.current_stage = "index"
        progress(92, "indexing")
        record = self.index.add_document(
            sha256=sha, job_id=request.job_id, inbox=request.inbox,
            source_name=request.original_filename, mime=mime, size=path.stat().st_size,
            pages=pages, model=self.embedder.model_id, chunks=chunks, vectors=matrix,
            replace=request.reindex or self.settings.index.on_duplicate == "reindex",
        )
        stages["index"] = time.perf_counter() - t
        return {"document_id": record.doc_id, "chunks": len(chunks), "mime": mime,
                "pages": pages, "bytes": record.bytes, "stages": stages}


def build_pipeline(settings: Settings) -> Pipeline:
    return IngestPipeline(settings)
