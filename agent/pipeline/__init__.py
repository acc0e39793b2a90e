"""RAG ingestion of one file: detect → extract → chunk → embed → index.

The pipeline knows nothing of the queue or of folders: it gets a path and a request, reports
progress through a callback and returns what it stored, or raises ``PermanentError`` /
``TransientError`` naming the stage.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from agent.config import Settings
from agent.errors import PermanentError, TransientError
from agent.folders import file_kind


class Progress(Protocol):
    """Where the job is (0–100 %, a message); ``embedded`` counts chunks embedded since the
    last report, so the agent can count work done even by a job that is later killed."""

    def __call__(self, percent: int, message: str, embedded: int = 0, /) -> None: ...



@dataclass(frozen=True, slots=True)
class JobRequest:
    """What the processor asks the worker to ingest."""

    job_id: str
    path: str
    inbox: str | None
    original_filename: str
    allowed_types: list[str] = field(default_factory=list)
    reindex: bool = False  # embed again even if this content is indexed (model change)
    ocr: bool = True  # the inbox lets pictures of text be OCRed


class Pipeline(Protocol):
    def run(self, request: JobRequest, progress: Progress) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class FileSnapshot:
    """What the pipeline read: the hash and size of the bytes, and the file's state then."""

    sha256: str
    size: int
    mtime_ns: int
    inode: int

    def still_matches(self, path: Path) -> bool:
        """The file at ``path`` is still the one that was read (same inode, size, mtime)."""
        try:
            st = os.lstat(path)
        except OSError:
            return False
        return (st.st_ino, st.st_size, st.st_mtime_ns) == (self.inode, self.size, self.mtime_ns)


class FileChangedError(TransientError):
    """The file changed while it was processed: the job goes back to the queue uncounted."""


def read_snapshot(path: Path, on_bytes: Callable[[int, int], None] | None = None
                  ) -> FileSnapshot:
    """Hash the file as it is now, opened without following links or blocking on a FIFO."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise PermanentError("the path is a symbolic link, not a file", stage="read") from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise PermanentError("cannot read the file: permission denied", stage="read") from None
        raise TransientError(f"cannot read the file: {exc.strerror}", stage="read") from None
    digest = hashlib.sha256()
    size = 0
    with open(fd, "rb") as fh:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            raise PermanentError(f"not a regular file ({file_kind(before.st_mode)})",
                                 stage="read")
        try:
            for block in iter(lambda: fh.read(1024 * 1024), b""):
                digest.update(block)
                size += len(block)
                if on_bytes is not None:
                    on_bytes(size, before.st_size)
        except OSError as exc:
            raise TransientError(f"cannot read the file: {exc.strerror}", stage="read") from None
        after = os.fstat(fd)
    if size != after.st_size or after.st_mtime_ns != before.st_mtime_ns:
        raise FileChangedError("the file changed while it was read", stage="read")
    return FileSnapshot(digest.hexdigest(), size, after.st_mtime_ns, after.st_ino)


def file_sha256(path: Path) -> str:
    return read_snapshot(path).sha256


class _StageProgress:
    """Progress inside one stage, as a share of its span of the job's 0–100 %."""

    def __init__(self, progress: Progress, low: int, high: int) -> None:
        self.progress, self.low, self.high = progress, low, high

    def __call__(self, fraction: float, message: str) -> None:
        share = min(1.0, max(0.0, fraction))
        self.progress(self.low + int((self.high - self.low) * share), message)


class IngestPipeline:
    """The real pipeline; built once per worker process (the model loads once)."""

    def __init__(self, settings: Settings) -> None:
        from agent.pipeline.chunk import Chunker
        from agent.pipeline.embed import Embedder
        from agent.pipeline.ocr import OcrOptions, PageReader
        from agent.pipeline.stores import open_index

        self.settings = settings
        self.embedder = Embedder(settings.embedding, settings.agent.data_dir)
        self.chunker = Chunker(self.embedder.tokenizer_file, settings.processing.chunk_tokens,
                               settings.processing.chunk_overlap_tokens)
        self.index = open_index(settings)
        self.ocr = PageReader(OcrOptions.of(settings.ocr))
        self.index.purge_checkpoints(time.time() - CHECKPOINT_TTL_SECONDS)
        self.current_stage = ""

    def run(self, request: JobRequest, progress: Progress) -> dict[str, Any]:
        from agent.pipeline.detect import detect_type
        from agent.pipeline.extract import ExtractOptions
        from agent.pipeline.readers import extract

        stages: dict[str, float] = {}
        path = Path(request.path)
        t = time.perf_counter()
        self.current_stage = "read"
        reading = _StageProgress(progress, 0, 5)
        snapshot = read_snapshot(
            path, lambda done, total: reading(done / max(total, 1), "reading"))
        sha = snapshot.sha256
        existing = self.index.find_by_hash(sha)
        if existing is not None and not request.reindex:
            if existing.job_id == request.job_id:
                return {"document_id": existing.doc_id, "chunks": existing.chunk_count,
                        "resumed": True, "stages": stages, **_file_state(snapshot)}
            if self.settings.index.on_duplicate == "skip":
                return {"duplicate_of": existing.doc_id, "chunks": 0, "stages": stages,
                        **_file_state(snapshot)}
        self.current_stage = "detect"
        progress(5, "detecting type")
        mime = detect_type(path, request.allowed_types or None)
        stages["detect"] = time.perf_counter() - t

        t = time.perf_counter()
        self.current_stage = "extract"
        extracting = _StageProgress(progress, 10, 20)
        sections = []
        chars = 0
        use_ocr = self.settings.ocr.enabled and request.ocr
        options = ExtractOptions(main_content=self.settings.processing.html_main_content,
                                 headings=self.settings.processing.headings,
                                 ocr=self.ocr if use_ocr else None)
        ocr_before = (self.ocr.stats.pages, self.ocr.stats.seconds)
        for section in extract(path, mime, options, request.allowed_types or None):
            sections.append(section)
            chars += len(section.text)
            where = f"page {section.page}" if section.page else f"{chars:,} characters"
            extracting(chars / max(snapshot.size, 1), f"extracting text ({mime}): {where}")
        pages = max((s.page or 0 for s in sections), default=0) or None
        ocr_pages = self.ocr.stats.pages - ocr_before[0]
        ocr_seconds = self.ocr.stats.seconds - ocr_before[1]
        stages["extract"] = time.perf_counter() - t - ocr_seconds
        if ocr_pages:
            stages["ocr"] = ocr_seconds

        t = time.perf_counter()
        self.current_stage = "chunk"
        chunking = _StageProgress(progress, 20, 25)
        done_chars = [0]

        def chunked(n: int) -> None:
            done_chars[0] += n
            chunking(done_chars[0] / max(chars, 1), f"chunking: {done_chars[0]:,} of {chars:,} "
                     "characters")

        chunks = list(self.chunker.chunk(sections, on_section=chunked))
        del sections
        stages["chunk"] = time.perf_counter() - t
        if not chunks:
            raise PermanentError("no text found (the file is empty or whitespace only)",
                                 stage="extract")
        cap = self.settings.processing.max_chunks_per_file
        if len(chunks) > cap:
            raise PermanentError(
                f"the file would make {len(chunks):,} chunks, over "
                f"processing.max_chunks_per_file ({cap:,})", stage="chunk")

        t = time.perf_counter()
        self.current_stage = "embed"
        matrix, embedded, resumed = self._embed(request, sha, chunks, progress)
        stages["embed"] = time.perf_counter() - t

        t = time.perf_counter()
        self.current_stage = "index"
        progress(92, "indexing")
        if not snapshot.still_matches(path):
            raise FileChangedError("the file changed while it was processed", stage="index")
        record = self.index.add_document(
            sha256=sha, job_id=request.job_id, inbox=request.inbox,
            source_name=request.original_filename, mime=mime, size=snapshot.size,
            pages=pages, model=self.embedder.model_id, chunks=chunks, vectors=matrix,
            replace=request.reindex or self.settings.index.on_duplicate == "reindex",
        )
        stages["index"] = time.perf_counter() - t
        return {"document_id": record.doc_id, "chunks": len(chunks), "mime": mime,
                "pages": pages, "ocr_pages": ocr_pages, "embedded": embedded,
                "resumed_chunks": resumed, "bytes": record.bytes, "stages": stages,
                **_file_state(snapshot)}


    def _embed(self, request: JobRequest, sha: str, chunks: list[Any], progress: Progress
               ) -> tuple[Any, int, int]:
        """Vectors for every chunk, in order: those checkpointed by an earlier attempt of this
        content (same model, same embedded text) are reused; the rest are embedded shortest
        first (batches of similar length pad less) and checkpointed step by step, so a kill
        loses at most one step. Returns (matrix, chunks embedded now, chunks reused)."""
        import numpy as np

        model = self.embedder.model_id
        self.index.drop_stale_checkpoints(request.job_id, sha)
        digests = [hashlib.blake2b(c.embed_text.encode("utf-8", "surrogatepass"),
                                   digest_size=16).digest() for c in chunks]
        saved = self.index.checkpointed_vectors(sha, model)
        reused: dict[int, Any] = {}
        for i, chunk in enumerate(chunks):
            found = saved.get(chunk.ordinal)
            if found is not None and found[0] == digests[i]:
                reused[i] = np.frombuffer(found[1], dtype=np.float32)
        del saved
        width = next(iter(reused.values())).shape[0] if reused else 0
        matrix = np.zeros((len(chunks), width), dtype=np.float32)
        for i, vector in reused.items():
            matrix[i] = vector
        todo = sorted((i for i in range(len(chunks)) if i not in reused),
                      key=lambda i: len(chunks[i].embed_text))
        step = max(self.settings.embedding.batch_size, 1) * CHECKPOINT_BATCHES
        done = len(reused)
        for start in range(0, len(todo), step):
            part = todo[start:start + step]
            vectors = self.embedder.embed([chunks[i].embed_text for i in part])
            if matrix.shape[1] == 0:
                matrix = np.zeros((len(chunks), vectors.shape[1]), dtype=np.float32)
            matrix[part] = vectors
            self.index.save_checkpoint(sha, model, request.job_id, [
                (chunks[i].ordinal, digests[i], matrix[i].tobytes()) for i in part])
            done += len(part)
            progress(25 + int(65 * done / len(chunks)),
                     f"embedding {done}/{len(chunks)} chunks"
                     + (f" ({len(reused)} resumed from a checkpoint)" if reused else ""),
                     len(part))
        return matrix, len(todo), len(reused)


CHECKPOINT_BATCHES = 1  # embedding batches per checkpoint (a kill re-embeds at most these)
CHECKPOINT_TTL_SECONDS = 7 * 86400  # checkpoints untouched this long belong to no live job


def _file_state(snapshot: FileSnapshot) -> dict[str, int]:
    """What the processor compares with the file before filing it."""
    return {"file_size": snapshot.size, "file_mtime_ns": snapshot.mtime_ns,
            "file_inode": snapshot.inode}


def build_pipeline(settings: Settings) -> Pipeline:
    return IngestPipeline(settings)
