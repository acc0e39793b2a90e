"""RAG ingestion of one file: detect → extract → chunk → embed → index.

The pipeline knows nothing of the queue or of folders: it gets a path and a request, reports
progress through a callback and returns what it stored, or raises ``PermanentError`` /
``TransientError`` naming the stage.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from agent.config.settings import Settings
from agent.errors import FileChangedError, PermanentError, TransientError
from agent.files.folders import file_kind
from agent.pipeline.result import FileState, PipelineResult
from agent.pipeline.spool import (
    MAX_OCR_PAGES,
    JobSpool,
    SpoolState,
    purge_spools,
    skipped_parts,
)
from agent.stages import Stage

if TYPE_CHECKING:
    from agent.pipeline.chunk import Chunk


class Progress(Protocol):
    """Where the job is (0–100 %, a message); ``embedded`` counts chunks embedded since the
    last report, so the agent can count work done even by a job that is later killed;
    ``checkpoint`` says all work so far is kept (sections spooled, vectors staged), so the job
    may pause here and resume without redoing it."""

    def __call__(self, percent: int, message: str, embedded: int = 0,
                 checkpoint: bool = False, /) -> None: ...


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
    # pictures (their keys) whose OCR ran far past its time in an earlier attempt: left out
    skip_pages: tuple[str, ...] = ()


class Pipeline(Protocol):
    def run(self, request: JobRequest, progress: Progress) -> PipelineResult: ...


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


def read_snapshot(path: Path, on_bytes: Callable[[int, int], None] | None = None
                  ) -> FileSnapshot:
    """Hash the file as it is now, opened without following links or blocking on a FIFO."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise PermanentError("the path is a symbolic link, not a file", stage=Stage.READ) from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise PermanentError("cannot read the file: permission denied", stage=Stage.READ) from None
        raise TransientError(f"cannot read the file: {exc.strerror}", stage=Stage.READ) from None
    digest = hashlib.sha256()
    size = 0
    with open(fd, "rb") as fh:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            raise PermanentError(f"not a regular file ({file_kind(before.st_mode)})",
                                 stage=Stage.READ)
        try:
            for block in iter(lambda: fh.read(1024 * 1024), b""):
                digest.update(block)
                size += len(block)
                if on_bytes is not None:
                    on_bytes(size, before.st_size)
        except OSError as exc:
            raise TransientError(f"cannot read the file: {exc.strerror}", stage=Stage.READ) from None
        after = os.fstat(fd)
    if size != after.st_size or after.st_mtime_ns != before.st_mtime_ns:
        raise FileChangedError("the file changed while it was read", stage=Stage.READ)
    return FileSnapshot(digest.hexdigest(), size, after.st_mtime_ns, after.st_ino)


def file_sha256(path: Path) -> str:
    return read_snapshot(path).sha256


class _StageProgress:
    """Progress inside one stage, as a share of its span of the job's 0–100 %."""

    def __init__(self, progress: Progress, low: int, high: int) -> None:
        self.progress, self.low, self.high = progress, low, high

    def __call__(self, fraction: float, message: str, checkpoint: bool = False) -> None:
        share = min(1.0, max(0.0, fraction))
        self.progress(self.low + int((self.high - self.low) * share), message, 0, checkpoint)


class IngestPipeline:
    """The real pipeline; built once per worker process (the model loads once)."""

    def __init__(self, settings: Settings) -> None:
        from agent.pipeline.chunk import Chunker
        from agent.pipeline.embed import Embedder
        from agent.pipeline.readers.ocr import OcrOptions, PageReader
        from agent.pipeline.store.backends import open_index

        self.settings = settings
        self.embedder = Embedder(settings.embedding, settings.agent.data_dir)
        self.chunker = Chunker(self.embedder.tokenizer_file, settings.processing.chunk_tokens,
                               settings.processing.chunk_overlap_tokens,
                               max_chars=settings.processing.max_chunk_chars)
        self.index = open_index(settings)
        self.ocr = PageReader(OcrOptions.of(settings.ocr,
                                            stall_seconds=settings.queue.stall_timeout_seconds))
        self.index.purge_checkpoints(time.time() - CHECKPOINT_TTL_SECONDS)
        purge_spools(settings.agent.data_dir, time.time() - CHECKPOINT_TTL_SECONDS)
        self.current_stage = ""

    def run(self, request: JobRequest, progress: Progress) -> PipelineResult:
        from agent.pipeline.detect import detect_type
        from agent.pipeline.readers.extract import ExtractOptions

        path = Path(request.path)
        t = time.perf_counter()
        self.current_stage = Stage.READ
        reading = _StageProgress(progress, 0, 5)
        snapshot = read_snapshot(
            path, lambda done, total: reading(done / max(total, 1), "reading"))
        sha = snapshot.sha256
        existing = self.index.find_by_hash(sha)
        if existing is not None and not request.reindex:
            if existing.job_id == request.job_id:
                return PipelineResult(document_id=existing.doc_id,
                                      chunks=existing.chunk_count, resumed=True,
                                      file=_file_state(snapshot))
            if self.settings.index.on_duplicate == "skip":
                return PipelineResult(duplicate_of=existing.doc_id, file=_file_state(snapshot))
        self.current_stage = Stage.DETECT
        progress(5, "detecting type")
        mime = detect_type(path, request.allowed_types or None)
        detect_seconds = time.perf_counter() - t

        self.current_stage = Stage.EXTRACT
        use_ocr = self.settings.ocr.enabled and request.ocr
        options = ExtractOptions(main_content=self.settings.processing.html_main_content,
                                 headings=self.settings.processing.headings,
                                 ocr=self.ocr if use_ocr else None)
        # Sections go to the job's spool as they are read, so neither the text nor its chunks
        # are ever all in memory, and a job that pauses or dies resumes without reading its
        # file again; the chunks are counted on the way, so the cap holds before any embedding
        # (the chunker runs twice: ≈ 20 MB/s, against ≈ 15,000 characters/s embedded).
        spool = JobSpool(self.settings.agent.data_dir, request.job_id, sha, mime).open()
        state = spool.state  # its stage times add up over every turn of a paused job
        state.spend(Stage.DETECT, detect_seconds)
        clock = _TurnClock(state)
        try:
            clock.start(Stage.EXTRACT)
            read = self._spool(path, mime, options, request, spool, snapshot.size,
                               progress).state
            clock.stop()
            if not read.chunks and read.encoded_chunks:
                raise PermanentError(
                    "no readable text: it holds only encoded data (base64, hex or a binary "
                    f"dump, {read.encoded_chunks:,} chunks' worth), which is not embedded",
                    stage=Stage.CHUNK)
            if not read.chunks:
                from agent.formats import no_text_message

                left_out = skipped_parts(read.skipped, read.skipped_count, shown=3)
                raise PermanentError(no_text_message(mime) + (
                    f"; parts left out: {'; '.join(left_out)}" if left_out else ""),
                    stage=Stage.EXTRACT)
            warnings = skipped_parts(read.skipped, read.skipped_count)
            if read.encoded_chunks:
                warnings.append(f"{read.encoded_chunks:,} chunks of encoded data (base64, hex "
                                "or binary dumps) not embedded")

            self.current_stage = Stage.EMBED
            clock.start(Stage.EMBED)
            embedded, resumed = self._embed(request, sha, self.chunker.chunk(spool.sections()),
                                            read.chunks, progress)
            clock.stop()
            from agent.pipeline.fingerprint import simhash

            fingerprint = simhash(section.text for section in spool.sections())
        except (PermanentError, FileChangedError):
            spool.discard()  # this content will not be read again
            raise
        finally:
            clock.stop()  # a turn cut short (paused, failed) still counts the time it spent
            spool.save_state()
            spool.close()
        stages: dict[str, float] = {
            Stage.DETECT: state.seconds.get(Stage.DETECT, 0.0),
            Stage.EXTRACT: state.seconds.get(Stage.EXTRACT, 0.0),
            Stage.CHUNK: state.chunk_seconds, Stage.EMBED: state.seconds.get(Stage.EMBED, 0.0)}
        if state.ocr_pages:
            stages[Stage.OCR] = state.ocr_seconds

        t = time.perf_counter()
        self.current_stage = Stage.INDEX
        progress(92, "indexing")
        if not snapshot.still_matches(path):
            raise FileChangedError("the file changed while it was processed", stage=Stage.INDEX)
        record = self.index.add_document(
            sha256=sha, job_id=request.job_id, inbox=request.inbox,
            source_name=request.original_filename, mime=mime, size=snapshot.size,
            pages=read.pages, model=self.embedder.model_id, staged=read.chunks,
            replace=request.reindex or self.settings.index.on_duplicate == "reindex",
            fingerprint=fingerprint,
        )
        stages[Stage.INDEX] = time.perf_counter() - t
        spool.discard()
        return PipelineResult(document_id=record.doc_id, chunks=read.chunks, mime=mime,
                              pages=read.pages, ocr_pages=read.ocr_pages,
                              ocr_page_numbers=list(read.ocr_page_numbers), embedded=embedded,
                              resumed_chunks=resumed, bytes=record.bytes, stages=stages,
                              warnings=warnings, file=_file_state(snapshot))


    def _spool(self, path: Path, mime: str, options: Any, request: JobRequest, spool: JobSpool,
               size: int, progress: Progress) -> JobSpool:
        """Extract the file's sections into the job's spool, counting their chunks; the state
        is saved after each section (a checkpoint where the job may pause). What an earlier
        attempt spooled is kept: its sections are skipped as the reader passes them again, and
        pages it OCRed are not read again (their text is remembered by the picture's hash)."""
        from agent.pipeline.hygiene import clean_section
        from agent.pipeline.pagewatch import left_out_note
        from agent.pipeline.readers.registry import extract

        state = spool.state
        if state.complete:
            progress(25, f"text read by an earlier attempt: {state.sections:,} sections, "
                     f"{state.chunks:,} chunks")
            return spool
        extracting = _StageProgress(progress, 10, 25)
        cap = self.settings.processing.max_chunks_per_file
        skip = state.sections
        ocr_before = (self.ocr.stats.pages, self.ocr.stats.seconds)
        encoded_before = self.chunker.encoded_chunks
        for key in request.skip_pages:  # before the memo is set: these were never read
            if key not in state.ocr_memo:
                state.ocr_memo[key] = ""
                state.ocr_memo[f"{key}:note"] = left_out_note(self.ocr.options.page_seconds)
        self.ocr.memo = state.ocr_memo
        sections = extract(path, mime, options, request.allowed_types or None)
        try:
            for index, section in enumerate(sections):
                if index < skip:
                    continue
                section = clean_section(section)
                spool.add(section)
                if getattr(section, "note", ""):
                    state.note(section.note)
                if section.ocr and section.page and len(state.ocr_page_numbers) < MAX_OCR_PAGES:
                    state.ocr_page_numbers.append(section.page)
                state.chars += len(section.text)
                state.pages = max(state.pages or 0, section.page or 0) or None
                t = time.perf_counter()
                state.chunks += sum(1 for _ in self.chunker.chunk((section,)))
                state.chunk_seconds += time.perf_counter() - t
                state.encoded_chunks += self.chunker.encoded_chunks - encoded_before
                encoded_before = self.chunker.encoded_chunks
                self._count_ocr(state, ocr_before)
                ocr_before = (self.ocr.stats.pages, self.ocr.stats.seconds)
                spool.save()
                where = f"page {section.page}" if section.page else f"{state.chars:,} characters"
                over = state.chunks > cap
                extracting(state.chars / max(size, 1), f"extracting text ({mime}): {where}, "
                           f"{state.chunks:,} chunks", not over)
                if over:  # stop reading: the rest cannot change the outcome
                    raise PermanentError(
                        f"the file would make more than {cap:,} chunks (processing."
                        f"max_chunks_per_file); {state.chunks:,} by {where}", stage=Stage.CHUNK)
        finally:
            close = getattr(sections, "close", None)
            if close is not None:
                close()  # pages being read finish, and their text is remembered
            self._count_ocr(state, ocr_before)
            self.ocr.memo = None
            with contextlib.suppress(Exception):
                spool.save()
        spool.finish()
        return spool

    def _count_ocr(self, state: SpoolState, before: tuple[int, float]) -> None:
        state.ocr_pages += self.ocr.stats.pages - before[0]
        state.ocr_seconds += self.ocr.stats.seconds - before[1]

    def _embed(self, request: JobRequest, sha: str, chunks: Iterable[Chunk], total: int,
               progress: Progress) -> tuple[int, int]:
        """Embed and stage every chunk as a checkpoint, a window at a time: chunks staged by an
        earlier attempt of this content (same model, same embedded text) are kept; the rest
        are embedded shortest first within their window (batches of similar length pad less)
        and staged batch by batch, so a kill loses at most one batch. Returns (chunks embedded
        now, chunks reused)."""
        from agent.pipeline.store.index import batched

        model = self.embedder.model_id
        self.index.drop_stale_checkpoints(request.job_id, sha)
        saved = self.index.checkpointed_digests(sha, model)
        step = max(self.settings.embedding.batch_size, 1) * CHECKPOINT_BATCHES
        done = embedded = 0
        for window in batched(chunks, step * WINDOW_STEPS):
            todo = []
            for chunk in window:
                digest = hashlib.blake2b(chunk.embed_text.encode("utf-8", "surrogatepass"),
                                         digest_size=16).digest()
                if saved.get(chunk.ordinal) != digest:
                    todo.append((chunk, digest))
            done += len(window) - len(todo)
            todo.sort(key=lambda item: len(item[0].embed_text))
            for start in range(0, len(todo), step):
                part = todo[start:start + step]
                vectors = self.embedder.embed([chunk.embed_text for chunk, _ in part])
                self.index.save_checkpoint(sha, model, request.job_id, [
                    (chunk, digest, vector.tobytes())
                    for (chunk, digest), vector in zip(part, vectors, strict=True)])
                done += len(part)
                embedded += len(part)
                reused = done - embedded
                progress(25 + int(65 * done / max(total, 1)),
                         f"embedding {done}/{total} chunks"
                         + (f" ({reused} resumed from a checkpoint)" if reused else ""),
                         len(part), True)
        return embedded, done - embedded


class _TurnClock:
    """Times this turn's stages into the spool's running totals. Extraction's own time leaves
    out the OCR and chunking done inside it, which the spool counts apart."""

    def __init__(self, state: SpoolState) -> None:
        self.state = state
        self.stage: str | None = None
        self.began = 0.0
        self.inner = 0.0

    def start(self, stage: str) -> None:
        self.stage, self.began = stage, time.perf_counter()
        self.inner = self.state.ocr_seconds + self.state.chunk_seconds

    def stop(self) -> None:
        if self.stage is None:
            return
        spent = time.perf_counter() - self.began
        if self.stage == Stage.EXTRACT:
            spent -= self.state.ocr_seconds + self.state.chunk_seconds - self.inner
        self.state.spend(self.stage, spent)
        self.stage = None


CHECKPOINT_BATCHES = 1  # embedding batches per checkpoint (a kill re-embeds at most these)
WINDOW_STEPS = 16  # checkpoints' worth of chunks held and sorted by length at a time
CHECKPOINT_TTL_SECONDS = 7 * 86400  # checkpoints untouched this long belong to no live job


def _file_state(snapshot: FileSnapshot) -> FileState:
    """What the processor compares with the file before filing it."""
    return FileState(snapshot.inode, snapshot.size, snapshot.mtime_ns)


def build_pipeline(settings: Settings) -> Pipeline:
    return IngestPipeline(settings)
