"""E-books: an EPUB's chapters in reading order (its spine), each cut at its own headings.

Each chapter is read from the zip in turn (``packages``); its XHTML goes through the same HTML
reader as web pages (all its text, since a chapter has no navigation to drop). Chunks carry
``Chapter N › <heading>``. DRM-encrypted books fail with that reason rather than as gibberish.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from agent.errors import PermanentError
from agent.pipeline.readers.extract import ExtractOptions, check_archive, html_sections
from agent.pipeline.readers.outline import Section
from agent.stages import Stage

MAX_CHAPTERS = 5000


def _fail(message: str) -> PermanentError:
    return PermanentError(message, stage=Stage.EXTRACT)


def extract_epub(path: Path, options: ExtractOptions = ExtractOptions()) -> Iterator[Section]:
    """The book's spine in order, one chapter read from the zip at a time (``packages``)."""
    from agent.pipeline.readers.packages import chapters

    check_archive(path, "EPUB")
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise _fail("the EPUB is corrupt (not a valid zip archive)") from None
    with archive:
        if "META-INF/encryption.xml" in archive.namelist():
            raise _fail("the EPUB is encrypted (DRM); it cannot be read")
        chapter_options = replace(options, main_content=False)
        number = 0
        for markup, problem in chapters(archive, MAX_CHAPTERS):
            if problem:
                yield Section("", note=f"chapter skipped: {problem}")
                continue
            sections = [s for s in html_sections(markup, chapter_options) if s.text.strip()]
            if not sections:
                continue  # a cover or a blank page: not a chapter
            number += 1
            label = (f"Chapter {number}",)
            for section in sections:
                yield Section(section.text, page=None, path=label + section.path,
                              marks=tuple((at, label + p) for at, p in section.marks))
