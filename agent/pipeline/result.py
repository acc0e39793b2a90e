"""What a pipeline run tells the processor: typed, so the seam between the worker and the
processor is checked rather than read with ``dict.get``."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class FileState:
    """The file as the pipeline read it; the processor files it only if it is still so."""

    inode: int
    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class PipelineResult:
    """One ingested file: its document (or the document it duplicates), and how it went."""

    document_id: str | None = None
    duplicate_of: str | None = None  # the same content was indexed before: nothing new stored
    resumed: bool = False  # an earlier attempt had stored it whole: nothing redone
    chunks: int = 0
    mime: str | None = None
    pages: int | None = None
    bytes: int = 0
    embedded: int = 0
    resumed_chunks: int = 0
    ocr_pages: int = 0
    ocr_page_numbers: list[int] = field(default_factory=list)
    stages: dict[str, float] = field(default_factory=dict)  # seconds per stage
    warnings: list[str] = field(default_factory=list)  # parts left out, and why
    file: FileState | None = None  # None: a pipeline that does not report it (tests')
