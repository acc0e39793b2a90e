"""A job's extracted sections, kept on disk beside its embedding checkpoint, so a job that is
paused, stalled, retried or killed resumes without reading (or OCRing) its file again.

``<data_dir>/spool/<job_id>.sections`` holds the sections as a stream of pickles, written as
they are read; ``<job_id>.json`` says how far that stream is good (sections, bytes), what the
sections counted (chunks, pages, OCR), the text OCR already read (by the picture's hash) and
whether extraction finished. The state is replaced atomically after each section, so after a
kill the stream is cut back to the last state and extraction goes on from there.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

SPOOL_DIR = "spool"
MAX_NOTES = 20
MAX_OCR_PAGES = 5000  # page numbers kept of the pages OCR read (the count is kept whole)


@dataclass(slots=True)
class SpoolState:
    """How far a job's extraction got, and what it found on the way."""

    sha256: str
    mime: str
    sections: int = 0  # sections safely in the stream
    bytes: int = 0  # the stream's good length
    complete: bool = False
    chunks: int = 0
    encoded_chunks: int = 0
    pages: int | None = None
    chars: int = 0
    ocr_pages: int = 0
    ocr_page_numbers: list[int] = field(default_factory=list)  # which (≤ MAX_OCR_PAGES kept)
    ocr_seconds: float = 0.0
    chunk_seconds: float = 0.0
    ocr_memo: dict[str, str] = field(default_factory=dict)  # picture hash → its text
    skipped: list[str] = field(default_factory=list)  # parts left out, and why (≤ MAX_NOTES)
    skipped_count: int = 0  # all of them, kept or not
    seconds: dict[str, float] = field(default_factory=dict)  # stage → seconds, every turn so far

    def spend(self, stage: str, seconds: float) -> None:
        """Count time a turn spent in a stage (a paused job's stages add up over its turns)."""
        self.seconds[stage] = self.seconds.get(stage, 0.0) + max(0.0, seconds)

    def note(self, what: str) -> None:
        """Remember a part that was left out (the first ``MAX_NOTES`` are kept word for word)."""
        self.skipped_count += 1
        if len(self.skipped) < MAX_NOTES:
            self.skipped.append(what)


class JobSpool:
    """One job's spool: ``open()`` it, append sections with ``add`` and ``save`` the state,
    ``finish`` it, read it back with ``sections``, and ``discard`` it once the job ends."""

    def __init__(self, data_dir: Path, job_id: str, sha256: str, mime: str) -> None:
        folder = data_dir / SPOOL_DIR
        folder.mkdir(parents=True, exist_ok=True)
        safe = "".join(c for c in job_id if c.isalnum() or c in "-_")[:64] or "job"
        self.stream_path = folder / f"{safe}.sections"
        self.state_path = folder / f"{safe}.json"
        self.state = self._load(sha256, mime)
        self._file: IO[bytes] | None = None
        self._discarded = False

    def _load(self, sha256: str, mime: str) -> SpoolState:
        """The saved state if it is of this content, else a fresh one (the file changed)."""
        try:
            data = json.loads(self.state_path.read_text(encoding="utf-8"))
            state = SpoolState(**data)
        except (OSError, ValueError, TypeError):
            return SpoolState(sha256, mime)
        if state.sha256 != sha256 or state.mime != mime:
            return SpoolState(sha256, mime)
        return state

    def open(self) -> JobSpool:
        """Open the stream, cut back to what the state vouches for."""
        mode = "r+b" if self.state.sections and self.stream_path.exists() else "w+b"
        if mode == "w+b":
            self.state = SpoolState(self.state.sha256, self.state.mime)
        self._file = open(self.stream_path, mode)  # noqa: SIM115 - closed in close()
        self._file.truncate(self.state.bytes)
        self._file.seek(self.state.bytes)
        return self

    def add(self, section: Any) -> None:
        assert self._file is not None
        pickle.dump(section, self._file, protocol=pickle.HIGHEST_PROTOCOL)
        self.state.sections += 1

    def save(self) -> None:
        """Make the sections written so far, and the state, survive a kill."""
        assert self._file is not None
        self._file.flush()
        self.state.bytes = self._file.tell()
        self.save_state()

    def save_state(self) -> None:
        """Replace the saved state (not the stream's length: sections may be being read back)."""
        if self._discarded:
            return
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        tmp.write_text(json.dumps(asdict(self.state)), encoding="utf-8")
        os.replace(tmp, self.state_path)

    def finish(self) -> None:
        self.state.complete = True
        self.save()

    def sections(self) -> Iterator[Any]:
        """The sections in order, read back one at a time."""
        assert self._file is not None
        self._file.seek(0)
        for _ in range(self.state.sections):
            yield pickle.load(self._file)  # noqa: S301 - our own file, written by this agent

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def discard(self) -> None:
        self.close()
        self._discarded = True
        for path in (self.stream_path, self.state_path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def purge_spools(data_dir: Path, older_than: float) -> int:
    """Remove spools untouched since ``older_than`` (epoch seconds): their jobs are gone."""
    folder = data_dir / SPOOL_DIR
    removed = 0
    with contextlib.suppress(FileNotFoundError), os.scandir(folder) as entries:
        for entry in entries:
            with contextlib.suppress(OSError):
                if entry.is_file() and entry.stat().st_mtime < older_than:
                    os.unlink(entry.path)
                    removed += 1
    return removed


def skipped_parts(notes: list[str], count: int, shown: int = 5) -> list[str]:
    """The job's warnings for the parts its reader left out: each one while they are few,
    the first few and how many more when they are many."""
    kept = notes if count <= shown else notes[:shown - 2]
    return kept + ([f"{count - len(kept):,} more parts skipped"] if count > len(kept) else [])
