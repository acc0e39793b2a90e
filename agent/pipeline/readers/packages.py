"""Slide decks (PPTX) and e-books (EPUB) read one part at a time from their zip; the charts
of decks and documents.

A deck or book is a package of parts (one XML per slide, one XHTML per chapter) listed in
reading order by a small index part. python-pptx and ebooklib load every part before the first
is read; here the index is read, then each part in turn, and a slide's XML is parsed as a stream
of events and dropped once read, so memory follows the largest part, not the file. Entities are
not resolved and no DTD or network is touched.
"""

from __future__ import annotations

import itertools
import posixpath
import zipfile
import zlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from agent.errors import PermanentError
from agent.pipeline.readers.tables import date_text, table_lines
from agent.pipeline.readers.xmlstream import SAFE_PARSING, safe_parser
from agent.stages import Stage

P = "{http://schemas.openxmlformats.org/presentationml/2006/main}"
A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
R = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
C = "{http://schemas.openxmlformats.org/drawingml/2006/chart}"
RELS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
OPF = "{http://www.idpf.org/2007/opf}"
CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"
NOTES_TYPE = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/notesSlide"
MAX_GROUP_DEPTH = 20
MAX_CHART_SERIES = 50
MAX_CHART_POINTS = 200  # per series: a chart of thousands of points is a picture, not text


PART_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError)  # a damaged member


def _fail(message: str) -> PermanentError:
    return PermanentError(message, stage=Stage.EXTRACT)


def _problem(exc: Exception) -> str:
    """One line on why a part could not be read."""
    if isinstance(exc, PermanentError):
        return str(exc).removeprefix("the PPTX is corrupt ").strip("()")
    return f"{type(exc).__name__}: {exc}"[:160]


def _xml(archive: zipfile.ZipFile, name: str, kind: str) -> Any:
    """A small index part, parsed whole."""
    from lxml import etree

    try:
        return etree.fromstring(archive.read(name), safe_parser())
    except KeyError:
        raise _fail(f"the {kind} is corrupt (no {name})") from None
    except etree.XMLSyntaxError as exc:
        raise _fail(f"the {kind} is corrupt ({name}: {exc})") from None


def part_relations(archive: zipfile.ZipFile, part: str) -> dict[str, tuple[str, str]]:
    """A part's relationships: id → (type, the target's name in the zip)."""
    folder, name = posixpath.split(part)
    rels_name = posixpath.join(folder, "_rels", name + ".rels")
    if rels_name not in archive.NameToInfo:
        return {}
    root = _xml(archive, rels_name, "PPTX")
    out = {}
    for rel in root.iter(f"{RELS}Relationship"):
        target = rel.get("Target") or ""
        if rel.get("TargetMode") == "External":
            continue
        resolved = posixpath.normpath(posixpath.join(folder, target)).lstrip("/")
        out[rel.get("Id") or ""] = (rel.get("Type") or "", resolved)
    return out


# -- PPTX ----------------------------------------------------------------------------------------

def slides(archive: zipfile.ZipFile
           ) -> Iterator[tuple[int, str, list[str], list[str], str, list[str]]]:
    """(number, title, text lines, notes lines, problem, skipped) of each slide, in the deck's
    order; a slide that cannot be read comes with the problem (and no text) instead of failing
    the deck, a chart that cannot be read is named in ``skipped``."""
    presentation = "ppt/presentation.xml"
    index = _xml(archive, presentation, "PPTX")
    rels = part_relations(archive, presentation)
    order = [rels.get(s.get(f"{R}id") or "", ("", ""))[1]
             for s in index.iter(f"{P}sldId")]
    for number, part in enumerate(order, start=1):
        if part not in archive.NameToInfo:
            continue
        skipped: list[str] = []
        try:
            relations = part_relations(archive, part)
            title, lines = _slide_text(archive, part, relations=relations, skipped=skipped)
            notes: list[str] = []
            for kind, target in relations.values():
                if kind == NOTES_TYPE and target in archive.NameToInfo:
                    notes = [line for line in _slide_text(archive, target, notes=True)[1]
                             if line.strip()]
        except (PermanentError, *PART_ERRORS) as exc:
            yield number, "", [], [], _problem(exc), []
            continue
        yield number, title, lines, notes, "", skipped


def _slide_text(archive: zipfile.ZipFile, part: str, notes: bool = False,
                relations: dict[str, tuple[str, str]] | None = None,
                skipped: list[str] | None = None) -> tuple[str, list[str]]:
    """A slide's title and its other shapes' text (a table's rows with their column names, a
    chart's title and data), streamed."""
    from lxml import etree

    title = ""
    lines: list[str] = []
    with archive.open(part) as stream:
        try:
            for _, shape in etree.iterparse(stream, tag=(f"{P}sp", f"{P}graphicFrame"),
                                            **SAFE_PARSING):
                if next(shape.iterancestors(f"{P}sp", f"{P}graphicFrame"), None) is not None:
                    continue
                placeholder = shape.find(f"{P}nvSpPr/{P}nvPr/{P}ph")
                kind = placeholder.get("type") if placeholder is not None else None
                if shape.tag == f"{P}graphicFrame":
                    lines += table_lines([" ".join(_paragraphs(cell)) for cell in row.iter(f"{A}tc")]
                                         for row in shape.iter(f"{A}tr"))
                    chart = shape.find(f".//{C}chart")
                    if chart is not None and relations is not None:
                        lines += chart_of(archive, relations.get(chart.get(f"{R}id") or ""),
                                           skipped)
                elif kind in ("title", "ctrTitle") and not title and not notes:
                    title = " ".join(" ".join(_paragraphs(shape)).split())
                elif not notes or kind == "body":
                    lines += _paragraphs(shape)
                shape.clear()
        except etree.XMLSyntaxError as exc:
            raise _fail(f"the PPTX is corrupt ({part}: {exc})") from None
    return title, [line for line in lines if line.strip()]


def chart_of(archive: zipfile.ZipFile, relation: tuple[str, str] | None,
             skipped: list[str] | None, kind: str = "PPTX") -> list[str]:
    """The lines of the chart a slide or document relates to (see :func:`chart_lines`); one
    that cannot be read is named in ``skipped`` and its page keeps its other text."""
    if relation is None or relation[1] not in archive.NameToInfo:
        return []
    try:
        return chart_lines(_xml(archive, relation[1], kind))
    except Exception as exc:  # noqa: BLE001 - one bad chart never fails the slide
        if skipped is not None:
            skipped.append(f"a chart not read: {_problem(exc)}")
        return []


def chart_lines(root: Any) -> list[str]:
    """What a chart says, from the values its part keeps: its title, then one row per series,
    its values under the category names (as a table's rows keep their column names)."""
    lines = []
    heading = root.find(f"{C}chart/{C}title")
    title = " ".join(" ".join(t.text or "" for t in heading.iter(f"{A}t")).split()) \
        if heading is not None else ""
    lines.append(f"Chart: {title}" if title else "Chart")
    categories: list[str] = []
    rows: list[list[str]] = []
    every = root.findall(f".//{C}ser")
    for series in every[:MAX_CHART_SERIES]:
        name = " ".join(" ".join(_points(series.find(f"{C}tx")) or [
            t.text or "" for t in series.iter(f"{A}t")]).split())
        categories = categories or _points(series.find(f"{C}cat")) or _points(
            series.find(f"{C}xVal"))
        values = _points(series.find(f"{C}val")) or _points(series.find(f"{C}yVal"))
        rows.append([name or f"Series {len(rows) + 1}", *values])
    lines += (table_lines([["Series", *categories], *rows]) if categories
              else [" · ".join(row) for row in rows])
    if len(every) > MAX_CHART_SERIES:
        lines.append(f"({len(every) - MAX_CHART_SERIES} more series not shown)")
    return lines


def _points(element: Any) -> list[str]:
    """The cached values of a chart's reference (a series' name, categories or values), in
    their order, at most ``MAX_CHART_POINTS``."""
    if element is None:
        return []
    if _is_date_format(element.findtext(f".//{C}formatCode") or ""):
        return [_as_date(value) for value in _points_in_order(element)]
    return _points_in_order(element)


def _points_in_order(element: Any) -> list[str]:
    points = sorted(((int(pt.get("idx") or 0) if (pt.get("idx") or "0").isdigit() else 0,
                      pt.findtext(f"{C}v") or "") for pt in element.iter(f"{C}pt")),
                    key=lambda p: p[0])
    if not points:
        return [v.text or "" for v in itertools.islice(element.iter(f"{C}v"), MAX_CHART_POINTS)]
    return [value for _, value in points[:MAX_CHART_POINTS]]


def _is_date_format(code: str) -> bool:
    from openpyxl.styles.numbers import is_date_format

    return bool(code) and bool(is_date_format(code))


def _as_date(value: str) -> str:
    """An Excel date serial (37261.0) as the date it is (2002-01-04), as the chart shows it."""
    from openpyxl.utils.datetime import from_excel

    try:
        moment = from_excel(float(value))
    except (ValueError, OverflowError, TypeError):
        return value
    if not isinstance(moment, datetime):
        return value
    return date_text(moment)


def _paragraphs(element: Any) -> list[str]:
    out = []
    for paragraph in element.iter(f"{A}p"):
        parts = []
        for node in paragraph.iter(f"{A}t", f"{A}br"):
            parts.append(node.text or "" if node.tag == f"{A}t" else "\n")
        out.append("".join(parts))
    return out


# -- EPUB ----------------------------------------------------------------------------------------

def chapters(archive: zipfile.ZipFile, limit: int) -> Iterator[tuple[str, str]]:
    """(markup, problem) of each document in the book's spine, in reading order, one at a
    time: a document that cannot be read comes with the problem instead of failing the book,
    and the spine past ``limit`` as one problem."""
    container = _xml(archive, "META-INF/container.xml", "EPUB")
    rootfile = container.find(f".//{CONTAINER}rootfile")
    if rootfile is None or not rootfile.get("full-path"):
        raise _fail("the EPUB is corrupt (no package document in META-INF/container.xml)")
    opf_name = rootfile.get("full-path") or ""
    package = _xml(archive, opf_name, "EPUB")
    folder = posixpath.dirname(opf_name)
    manifest = {item.get("id"): item for item in package.iter(f"{OPF}item")}
    spine = list(package.iter(f"{OPF}itemref"))
    for ref in spine[:limit]:
        item = manifest.get(ref.get("idref"))
        if item is None or "html" not in (item.get("media-type") or ""):
            continue
        from urllib.parse import unquote

        name = posixpath.normpath(posixpath.join(folder, unquote(item.get("href") or "")))
        if name not in archive.NameToInfo:
            continue
        try:
            yield archive.read(name).decode("utf-8", errors="replace"), ""
        except PART_ERRORS as exc:
            yield "", f"{name} unreadable ({_problem(exc)})"
    if len(spine) > limit:
        yield "", f"{len(spine) - limit:,} of {len(spine):,} spine documents over the cap ({limit:,})"
