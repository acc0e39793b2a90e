"""The Office 97–2003 formats: Word ``.doc``, Excel ``.xls`` and PowerPoint ``.ppt``.

Each reader was chosen by ``benchmarks/legacy_bench.py`` on Apache Tika's own test documents
(43 .doc, 30 .xls, 22 .ppt), against LibreOffice's conversion as the reference:

- ``.doc``: **catdoc** (Debian ``catdoc``) read 39 of 43 files, more than LibreOffice (34) or
  antiword (33), in 0.01 s and 23 MB, against LibreOffice's 1.3 s and 245 MB;
- ``.xls``: **xlrd** (PyPI) read as many workbooks as LibreOffice and xls2csv, in 0.06 s, and
  gives each sheet's name and cells, so rows keep their column names (``tables``);
- ``.ppt``: **LibreOffice** (Debian ``libreoffice-impress-nogui``, optional): catppt read only
  the theme name of most real decks (30 % of the words LibreOffice found); the deck is
  converted to ``.pptx`` in a scratch folder and read by the PPTX reader.

catdoc and LibreOffice (``libreoffice``) run under coreutils ``timeout``, which kills their
whole process group when the time is up, even if the worker that started them was killed.
"""

from __future__ import annotations

import codecs
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from agent.errors import PermanentError
from agent.pipeline.readers.extract import ExtractOptions
from agent.pipeline.readers.libreoffice import CONVERT_SECONDS, bounded, converted, office_program
from agent.pipeline.readers.outline import Section
from agent.stages import Stage

SECTION_CHARS = 256 * 1024
DOC_INSTALL = "reading .doc needs catdoc: sudo apt-get install catdoc (or save it as .docx)"
PPT_INSTALL = ("reading .ppt needs LibreOffice: sudo apt-get install libreoffice-impress-nogui "
               "(or save it as .pptx)")


def _fail(message: str) -> PermanentError:
    return PermanentError(message, stage=Stage.EXTRACT)


def available() -> dict[str, str | None]:
    """Each legacy format and the program that reads it here, or None when it is missing."""
    return {".doc": shutil.which("catdoc"), ".xls": "xlrd", ".ppt": office_program()}


def extract_doc(path: Path, options: ExtractOptions = ExtractOptions()) -> Iterator[Section]:
    """A Word 97–2003 document's text by catdoc, streamed in sections."""
    if shutil.which("catdoc") is None:
        raise _fail(DOC_INSTALL)
    with subprocess.Popen(bounded(["catdoc", "-w", "-d", "utf-8", str(path)]),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as reader:
        assert reader.stdout is not None
        any_text = False
        for text in without_residue(_blocks(reader.stdout)):
            any_text = any_text or bool(text.strip())
            yield Section(text)
        problem = (reader.stderr.read(2000) if reader.stderr else b"").decode(errors="replace")
        code = reader.wait()
    if code == 124 or code == 137:
        raise _fail(f"catdoc took longer than {CONVERT_SECONDS} s")
    if code != 0 and not any_text:
        reason = problem.strip().splitlines()[-1] if problem.strip() else f"exit status {code}"
        if "encrypt" in problem.lower() or "password" in problem.lower():
            raise _fail("the document is encrypted (password protected)")
        if office_program() is None:
            raise _fail(f"catdoc cannot read this .doc ({reason[:120]}); LibreOffice might: "
                        "sudo apt-get install libreoffice-writer-nogui")
        from agent.pipeline.readers.extract import extract_docx

        # some files catdoc cannot parse (an OLE summary it does not know) LibreOffice can
        yield from converted(path, "doc", "docx", extract_docx, options)


def _blocks(stream: IO[bytes]) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    while block := stream.read(SECTION_CHARS):
        yield decoder.decode(block).replace("\x00", "")
    yield decoder.decode(b"", final=True)


# Word field instructions catdoc prints with the fields' results (a table of contents' links).
FIELD_CODE = re.compile(r'\b(?:HYPERLINK(?: \\[lo])? "[^"\n]*"|PAGEREF _?\w+(?: \\[hp])*'
                        r'|TOC(?: \\[a-z](?: "[^"\n]*")?)+)|(?<=  )(?:PAGE|NUMPAGES)(?=  )')
RESIDUE_RUN = 8  # this many lines in a row of at most 2 characters are not text


def without_residue(blocks: Iterable[str]) -> Iterator[str]:
    """catdoc's text without field instructions and without the runs of one- or
    two-character lines it reads out of a document's font and style tables (a real .doc
    ended with 34 of them); a short run (a list's "A", "B", "C") is kept."""
    carry = ""
    short: list[str] = []
    for block in blocks:
        lines = (carry + block).split("\n")
        carry = lines.pop()
        out: list[str] = []
        for line in lines:
            if len(line.strip()) <= 2:
                short.append(line)
                continue
            if len(short) < RESIDUE_RUN:
                out += short
            short = []
            out.append(FIELD_CODE.sub("", line))
        if out:
            yield "\n".join(out) + "\n"
    tail = ([] if len(short) >= RESIDUE_RUN else short) + ([carry] if carry else [])
    if tail:
        yield "\n".join(tail) + "\n"


def extract_xls(path: Path, options: ExtractOptions = ExtractOptions()) -> Iterator[Section]:
    """An Excel 97–2003 workbook, sheet by sheet, rows with their column names."""
    import xlrd

    from agent.pipeline.readers.office import MAX_CELLS, sheet_sections

    try:
        with open(os.devnull, "w") as quiet:  # xlrd prints its warnings to a log file
            book = xlrd.open_workbook(str(path), on_demand=True, logfile=quiet)
    except xlrd.biffh.XLRDError as exc:
        if "encrypt" in str(exc).lower():
            raise _fail("the workbook is encrypted (password protected)") from None
        yield from _converted_xls(path, options, f"the .xls cannot be read ({exc})")
        return
    except Exception as exc:  # xlrd raises struct and index errors for damaged files
        yield from _converted_xls(path, options,
                                  f"the .xls is corrupt ({type(exc).__name__}: {exc})")
        return
    try:
        budget = [MAX_CELLS]
        for index in range(book.nsheets):
            try:
                sheet = book.sheet_by_index(index)
            except Exception as exc:  # noqa: BLE001 - one broken sheet never fails the book
                yield Section("", note=f"sheet {index + 1} unreadable ({type(exc).__name__})")
                continue
            rows = ([_cell(book, cell) for cell in sheet.row(r)] for r in range(sheet.nrows))
            yield from sheet_sections(sheet.name, rows, budget)
            book.unload_sheet(index)
    finally:
        book.release_resources()


def _converted_xls(path: Path, options: ExtractOptions, problem: str) -> Iterator[Section]:
    """A workbook xlrd gives up on, read after LibreOffice converted it (Excel writes files
    xlrd asserts on: a string table whose declared count is wrong, in calamine's corpus)."""
    from agent.pipeline.readers.libreoffice import converted_or_fail
    from agent.pipeline.readers.office import extract_xlsx

    return converted_or_fail(path, "xls", "xlsx", extract_xlsx, options, problem)


def _cell(book: Any, cell: Any) -> str:
    import xlrd

    from agent.pipeline.readers.tables import date_text

    if cell.ctype == xlrd.XL_CELL_DATE:
        try:
            moment = xlrd.xldate.xldate_as_datetime(cell.value, book.datemode)
        except (ValueError, OverflowError, xlrd.xldate.XLDateError):
            return str(cell.value)
        return date_text(moment)
    if cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK, xlrd.XL_CELL_ERROR):
        return ""
    if cell.ctype == xlrd.XL_CELL_BOOLEAN:
        return "TRUE" if cell.value else "FALSE"
    value = cell.value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return " ".join(str(value).split())


def extract_ppt(path: Path, options: ExtractOptions = ExtractOptions()) -> Iterator[Section]:
    """A PowerPoint 97–2003 deck, converted to .pptx by LibreOffice and read as one."""
    from agent.pipeline.readers.office import extract_pptx

    if office_program() is None:
        raise _fail(PPT_INSTALL)
    yield from converted(path, "ppt", "pptx", extract_pptx, options)
