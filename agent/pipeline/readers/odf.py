"""OpenDocument text, spreadsheets and presentations read as a stream of XML events.

``content.xml`` is parsed with lxml's ``iterparse`` and each paragraph, table row or slide is
dropped from the tree once read, so memory does not grow with the document (odfpy built the
whole tree first). Whitespace follows the ODF rules: runs of spaces, tabs and newlines in the
markup (a pretty-printed file has many) count as one space, and ``text:s``, ``text:tab`` and
``text:line-break`` are the document's own spaces, tabs and breaks. Entities are not resolved
and no DTD or network is touched.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agent.errors import PermanentError
from agent.pipeline.readers.outline import OutlineBuilder, Section, clean_heading
from agent.pipeline.readers.tables import TableLines, rows_text
from agent.pipeline.readers.xmlstream import SAFE_PARSING, forget
from agent.stages import Stage

TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
TABLE = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
DRAW = "{urn:oasis:names:tc:opendocument:xmlns:drawing:1.0}"
OFFICE = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"
MAX_REPEAT = 1000  # a filled cell repeated more often is written out this many times at most
MAX_DEPTH = 100
_SPACE, _TAB, _BREAK = "\x00s", "\x00t", "\x00n"
_WHITESPACE = re.compile(r"\s+")


def _fail(message: str) -> PermanentError:
    return PermanentError(message, stage=Stage.EXTRACT)


def text_of(element: Any) -> str:
    """A paragraph's (or cell's, or frame's) text by the ODF whitespace rules."""
    parts: list[str] = []

    def walk(node: Any, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise _fail(f"the OpenDocument file is nested more than {MAX_DEPTH} levels deep")
        if node.text:
            parts.append(node.text)
        for child in node:
            tag = child.tag
            if tag == f"{TEXT}s":
                count = child.get(f"{TEXT}c")
                parts.append(_SPACE * min(int(count) if count and count.isdigit() else 1, 100))
            elif tag == f"{TEXT}tab":
                parts.append(_TAB)
            elif tag == f"{TEXT}line-break":
                parts.append(_BREAK)
            elif tag in (f"{TEXT}p", f"{TEXT}h"):
                parts.append(_BREAK if parts else "")
                walk(child, depth + 1)
            elif tag not in (f"{OFFICE}annotation", f"{TEXT}note-citation"):
                walk(child, depth + 1)
            if child.tail:
                parts.append(child.tail)

    walk(element, 0)
    collapsed = _WHITESPACE.sub(" ", "".join(parts)).strip()
    return collapsed.replace(_SPACE, " ").replace(_TAB, "\t").replace(_BREAK, "\n")


def _repeat(element: Any, attribute: str) -> int:
    value = element.get(attribute)
    return min(int(value), MAX_REPEAT) if value and value.isdigit() else 1


def odf_kind(path: Path) -> str:
    """``text``, ``spreadsheet`` or ``presentation``, from the package's ``mimetype``."""
    try:
        with zipfile.ZipFile(path) as archive:
            mimetype = archive.read("mimetype").decode("ascii", "replace").strip()
    except (KeyError, zipfile.BadZipFile):
        raise _fail("the OpenDocument file is corrupt (no mimetype)") from None
    for kind in ("spreadsheet", "presentation"):
        if mimetype.endswith("." + kind):
            return kind
    return "text"


def _events(path: Path, tags: tuple[str, ...]) -> Iterator[tuple[str, Any]]:
    from lxml import etree

    with zipfile.ZipFile(path) as archive:
        try:
            stream = archive.open("content.xml")
        except KeyError:
            raise _fail("the OpenDocument file is corrupt (no content.xml)") from None
        with stream:
            try:
                yield from etree.iterparse(stream, events=("start", "end"), tag=tags,
                                           **SAFE_PARSING)
            except etree.XMLSyntaxError as exc:
                raise _fail(f"the OpenDocument file is corrupt (content.xml: {exc})") from None


def is_encrypted(path: Path) -> bool:
    """Whether the package's manifest says its parts are encrypted (a password was set)."""
    try:
        with zipfile.ZipFile(path) as archive:
            manifest = archive.read("META-INF/manifest.xml")[:4_000_000]
    except (KeyError, zipfile.BadZipFile, OSError):
        return False
    return b"encryption-data" in manifest


def text_sections(path: Path, headings: bool = True) -> Iterator[Section]:
    """Paragraphs (lists and sections included) under their outline-level headings, and
    table rows with their column names (``tables``), in reading order."""
    builder = OutlineBuilder()
    tables = paragraphs = 0
    table = TableLines()
    for event, element in _events(path, (f"{TEXT}p", f"{TEXT}h", f"{TABLE}table",
                                         f"{TABLE}table-row")):
        tag = element.tag
        if event == "start":
            if tag == f"{TABLE}table":
                tables += 1
                if tables == 1:
                    table = TableLines()
            elif tag in (f"{TEXT}p", f"{TEXT}h"):
                paragraphs += 1
            continue
        if tag in (f"{TEXT}p", f"{TEXT}h"):
            paragraphs -= 1
            if tables or paragraphs:
                continue
            text = text_of(element)
            level = element.get(f"{TEXT}outline-level") if tag == f"{TEXT}h" else None
            forget(element)
            if level is not None and headings:
                yield from builder.heading(int(level) if level.isdigit() else 1, text)
            elif text:
                yield from builder.text(text + "\n")
        elif tag == f"{TABLE}table-row":
            if tables == 1:
                cells = [" ".join(text_of(cell).split()) for cell in element
                         if cell.tag in (f"{TABLE}table-cell", f"{TABLE}covered-table-cell")]
                forget(element)
                yield from rows_text(builder, table.row(cells))
        else:
            tables -= 1
            if not tables:
                yield from rows_text(builder, table.finish())
                if not paragraphs:
                    forget(element)
    yield from builder.finish()



def sheet_rows(path: Path) -> Iterator[tuple[int, str, list[str]]]:
    """(sheet number, sheet name, cells) for each row of each table: a repeated cell written
    out (at most MAX_REPEAT times, so it stays under its columns' names), a repeated row once
    (a 1 KB file declaring a cell repeated 10⁹ × 10⁹ times was read as a million cells of one
    letter for 400 s); repeats of empty cells, which fill a sheet to its edges, cost nothing."""
    name = ""
    sheet = depth = 0
    for event, element in _events(path, (f"{TABLE}table", f"{TABLE}table-row")):
        if element.tag == f"{TABLE}table":
            if event == "start":
                depth += 1
                if depth == 1:
                    sheet += 1
                    name = element.get(f"{TABLE}name") or ""
            else:
                depth -= 1
                if not depth:
                    forget(element)
            continue
        if event == "start" or depth != 1:
            continue
        cells: list[str] = []
        for cell in element:
            if cell.tag not in (f"{TABLE}table-cell", f"{TABLE}covered-table-cell"):
                continue
            text = " ".join(text_of(cell).split())
            cells.extend([text] * (_repeat(cell, f"{TABLE}number-columns-repeated")
                                   if text else 1))
        forget(element)
        yield sheet, name, cells  # once, however often repeated: the same text adds nothing


def slide_sections(path: Path) -> Iterator[Section]:
    """Each draw page: its frames' text, titled by the first line (or the page's name)."""
    number = 0
    for event, element in _events(path, (f"{DRAW}page",)):
        if event == "start":
            continue
        number += 1
        lines = [text_of(frame) for frame in element.iter(f"{DRAW}frame")]
        lines = [line for line in lines if line.strip()]
        title = clean_heading(lines[0]) if lines else (element.get(f"{DRAW}name") or "")
        forget(element)
        if lines:
            yield Section("\n".join(lines) + "\n", page=number,
                          path=(f"Slide {number}: {title}" if title else f"Slide {number}",))
