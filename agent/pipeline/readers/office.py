"""Spreadsheets, slide decks, OpenDocument files and RTF, as sections that say where they are.

Readers, each the well-kept library for its format: openpyxl (xlsx/xlsm, read-only streaming
mode), PPTX one slide part at a time (``packages``), OpenDocument as a stream (``odf``),
striprtf (rtf). A sheet's rows become
lines that carry their column names (``Zone: NA · Sales: 12553``, see ``tables``) under the
path ``Sheet: <name>``; a slide's text and speaker notes become
one section on page = slide number under ``Slide N: <title>``. Every zip-based file passes the
same zip-bomb check as DOCX first, and a sheet past ``MAX_CELLS`` fails instead of filling
memory.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agent.errors import PermanentError
from agent.pipeline.readers.extract import ExtractOptions, check_archive, read_text_blocks
from agent.pipeline.readers.outline import Section, clean_heading
from agent.pipeline.readers.tables import TableLines
from agent.stages import Stage

MAX_CELLS = 2_000_000  # per file: a sheet of 2M filled cells is ≈ 20M characters
ROWS_PER_SECTION = 500
MAX_RTF_CHARS = 64 * 1024 * 1024


def _fail(message: str) -> PermanentError:
    return PermanentError(message, stage=Stage.EXTRACT)


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return " ".join(str(value).split())


def sheet_sections(name: str, rows: Iterator[list[str]], budget: list[int]) -> Iterator[Section]:
    """Rows of one sheet as lines that carry their column names (``tables``),
    ROWS_PER_SECTION to a section, under ``Sheet: <name>`` and the table's caption; ``budget``
    is the cells the file may still hold (shared across its sheets)."""
    sheet = f"Sheet: {clean_heading(name)}"
    table = TableLines()
    lines: list[str] = []

    def path() -> tuple[str, ...]:
        return (sheet, clean_heading(table.caption)) if table.caption else (sheet,)

    for cells in rows:
        if not any(cells):  # an empty row says nothing (a sheet's million of them cost nothing)
            continue
        budget[0] -= len(cells)
        if budget[0] < 0:
            raise _fail(f"the spreadsheet has more than {MAX_CELLS:,} cells (sheet {name!r})")
        lines += table.row(cells)
        if len(lines) >= ROWS_PER_SECTION:
            yield Section("\n".join(lines) + "\n", path=path())
            lines = []
    lines += table.finish()
    if lines:
        yield Section("\n".join(lines) + "\n", path=path())


def extract_xlsx(path: Path, options: ExtractOptions = ExtractOptions()) -> Iterator[Section]:
    """Every sheet of an Excel workbook (values as last saved, not formulas), in tab order.

    Two kinds of valid workbook openpyxl cannot read go through LibreOffice when it is
    installed: Strict Open XML (openpyxl sees its sheets as empty) and workbooks whose parts
    it trips on (a DDE link's missing relationship part); both found in Apache Tika's test
    documents."""
    check_archive(path, "XLSX")
    from openpyxl import load_workbook

    from agent.pipeline.readers.libreoffice import converted_or_fail

    if _strict_ooxml(path):
        yield from converted_or_fail(path, "xlsx", "xlsx", _read_workbook, options,
                                     "the workbook is in Strict Open XML")
        return
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for broken parts
        problem = f"the XLSX is corrupt or not a workbook ({type(exc).__name__}: {exc})"
        yield from converted_or_fail(path, "xlsx", "xlsx", _read_workbook, options, problem)
        return
    yield from _sheets(book)


def _strict_ooxml(path: Path) -> bool:
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive, archive.open("xl/workbook.xml") as part:
            return b"purl.oclc.org/ooxml/spreadsheetml" in part.read(4096)
    except (KeyError, zipfile.BadZipFile, OSError):
        return False


def _read_workbook(path: Path, options: ExtractOptions) -> Iterator[Section]:
    """A workbook LibreOffice wrote, read by openpyxl."""
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - named in the failure
        raise _fail(f"the XLSX is corrupt ({type(exc).__name__}: {exc})") from None
    yield from _sheets(book)


def _sheets(book: Any) -> Iterator[Section]:
    try:
        budget = [MAX_CELLS]
        for sheet in book.worksheets:
            if hasattr(sheet, "reset_dimensions"):  # read-only: a used range declared to
                sheet.reset_dimensions()  # XFD1048576 would pad every row to 16,384 cells
            rows = ([_cell_text(v) for v in row] for row in sheet.iter_rows(values_only=True))
            try:
                yield from sheet_sections(sheet.title, rows, budget)
            except PermanentError:
                raise
            except Exception as exc:  # noqa: BLE001 - a broken sheet never fails the workbook
                yield Section("", path=(f"Sheet: {clean_heading(sheet.title)}",),
                              note=f"sheet {sheet.title!r} partly unreadable "
                                   f"({type(exc).__name__}: {str(exc)[:120]})")
    finally:
        book.close()


def extract_pptx(path: Path, options: ExtractOptions = ExtractOptions()) -> Iterator[Section]:
    """Each slide's text (titles, text boxes, tables, groups, charts' titles and data) and its
    speaker notes, one slide part at a time (``packages``)."""
    import zipfile

    from agent.pipeline.readers.packages import slides

    check_archive(path, "PPTX")
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise _fail("the PPTX is corrupt (not a valid zip archive)") from None
    with archive:
        for number, title, lines, notes, problem, skipped in slides(archive):
            if problem:
                yield Section("", page=number, note=f"slide {number} unreadable: {problem}")
                continue
            for what in skipped:
                yield Section("", page=number, note=f"slide {number}: {what}")
            if notes:
                lines = [*lines, "Notes: " + "\n".join(notes)]
            label = f"Slide {number}: {clean_heading(title)}" if title else f"Slide {number}"
            if lines or title:
                body = [title, *lines] if title else lines
                yield Section("\n".join(body) + "\n", page=number, path=(label,))


ODF_KINDS = {
    "application/vnd.oasis.opendocument.text": "ODT",
    "application/vnd.oasis.opendocument.spreadsheet": "ODS",
    "application/vnd.oasis.opendocument.presentation": "ODP",
}


def extract_odf(path: Path, options: ExtractOptions = ExtractOptions()) -> Iterator[Section]:
    """OpenDocument text (paragraphs under their outline-level headings, tables as rows),
    spreadsheets (each table a sheet) and presentations (each draw page a slide), read as a
    stream (``odf``)."""
    import agent.pipeline.readers.odf as odf

    check_archive(path, "OpenDocument file")
    if odf.is_encrypted(path):
        raise _fail("the OpenDocument file is encrypted (password protected)")
    kind = odf.odf_kind(path)
    if kind == "spreadsheet":
        budget = [MAX_CELLS]
        for _, rows in itertools.groupby(odf.sheet_rows(path), key=lambda row: row[0]):
            yield from _sheet_of(rows, budget)
    elif kind == "presentation":
        yield from odf.slide_sections(path)
    else:
        yield from odf.text_sections(path, options.headings)


def _sheet_of(rows: Iterator[tuple[int, str, list[str]]], budget: list[int]
              ) -> Iterator[Section]:
    """One sheet's sections from its (number, name, cells) rows."""
    first = next(rows)
    yield from sheet_sections(first[1], itertools.chain([first[2]], (r[2] for r in rows)),
                              budget)


def extract_rtf(path: Path, options: ExtractOptions = ExtractOptions()) -> Iterator[Section]:
    """RTF's text (control words, font tables and pictures dropped) by striprtf."""
    from striprtf.striprtf import rtf_to_text

    markup = "".join(read_text_blocks(path))
    if len(markup) > MAX_RTF_CHARS:
        raise _fail(f"the RTF is over {MAX_RTF_CHARS // 2**20} MiB of markup")
    if not markup.lstrip().startswith("{\\rtf"):
        raise _fail("the file is not RTF (no {\\rtf header)")
    try:
        text = rtf_to_text(markup, errors="replace")
    except RecursionError:
        raise _fail("the RTF is nested too deeply") from None
    yield Section(str(text))
