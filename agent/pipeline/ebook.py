"""E-books: an EPUB's chapters in reading order (its spine), each cut at its own headings.

Read by ebooklib; each chapter's XHTML goes through the same HTML reader as web pages (all its
text, since a chapter has no navigation to drop). Chunks carry ``Chapter N › <heading>``.
DRM-encrypted books fail with that reason rather than as gibberish.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from agent.errors import PermanentError
from agent.pipeline.extract import ExtractOptions, check_archive, html_sections
from agent.pipeline.outline import Section

MAX_CHAPTERS = 5000


def _fail(message: str) -> PermanentError:
    return PermanentError(message, stage="extract")


def extract_epub(path: Path, options: ExtractOptions = ExtractOptions()) -> Iterator[Section]:
    check_archive(path, "EPUB")
    with zipfile.ZipFile(path) as archive:
        if "META-INF/encryption.xml" in archive.namelist():
            raise _fail("the EPUB is encrypted (DRM); it cannot be read")
    import ebooklib
    from ebooklib import epub

    try:
        book = epub.read_epub(str(path), options={"ignore_ncx": True})
    except Exception as exc:  # ebooklib raises bare exceptions for broken books
        raise _fail(f"the EPUB is corrupt ({type(exc).__name__}: {exc})") from None
    chapter_options = replace(options, main_content=False)
    number = 0
    for idref, _linear in book.spine[:MAX_CHAPTERS]:
        item = book.get_item_with_id(idref)
        if item is None or item.get_type() != ebooklib.ITEM_DOCUMENT:
            continue
        markup = item.get_content().decode("utf-8", errors="replace")
        sections = [s for s in html_sections(markup, chapter_options) if s.text.strip()]
        if not sections:
            continue  # a cover or a blank page: not a chapter
        number += 1
        label = (f"Chapter {number}",)
        for section in sections:
            yield Section(section.text, page=None, path=label + section.path,
                          marks=tuple((at, label + p) for at, p in section.marks))
