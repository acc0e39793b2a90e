"""Text out of files, as sections that remember their page and heading path; large text files
are streamed. HTML is reduced to its main content (navigation, headers, footers and sidebars
dropped) by resiliparse, chosen after measuring it against trafilatura, justext and
readability-lxml on Python's documentation (see benchmarks/README.md)."""

from __future__ import annotations

import codecs
import csv
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.errors import PermanentError
from agent.pipeline.readers.ocr import PageReader
from agent.pipeline.readers.outline import (
    Section,
    align_headings,
    markdown_sections,
)
from agent.stages import Stage

BLOCK_BYTES = 256 * 1024
MAX_TABLE_SCAN = 64 * 1024 * 1024  # how far into a page "<table" is looked for
MAX_ZIP_UNPACKED = 256 * 1024 * 1024
MAX_ZIP_RATIO = 200
MAX_JSON_DEPTH = 200


_TIE_PREFERENCE = ("cp1252", "latin_1", "iso8859_15")


@dataclass(frozen=True, slots=True)
class ExtractOptions:
    """How much of a document's structure to read (both on by default; off reproduces the
    plain readers, for comparison)."""

    main_content: bool = True  # HTML: main content only, boilerplate dropped
    headings: bool = True  # cut sections at headings and carry their path
    ocr: PageReader | None = None  # reads pages that are pictures; None: OCR is off


PLAIN = ExtractOptions(main_content=False, headings=False)
__all__ = ["ExtractOptions", "Section", "html_sections"]


def _fail(message: str) -> PermanentError:
    return PermanentError(message, stage=Stage.EXTRACT)


def sniff_encoding(sample: bytes) -> str:
    """The encoding of a text sample: BOMs first, then UTF-8, then charset-normalizer's guess."""
    for bom, name in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"),
                      (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF16_LE, "utf-16"),
                      (codecs.BOM_UTF16_BE, "utf-16")):
        if sample.startswith(bom):
            return name
    if b"\x00" in sample[:4096]:  # NULs in text: UTF-16 or UTF-32 without a byte order mark
        from agent.pipeline.detect import text_encoding

        wide = text_encoding(sample)
        if wide is not None and wide.replace("_", "-").startswith(("utf-16", "utf-32")):
            return wide
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start > len(sample) - 4:  # a character cut at the sample's end
            return "utf-8"
    from charset_normalizer import from_bytes

    matches = list(from_bytes(sample))
    if not matches:
        return "utf-8"
    best = matches[0]
    tied = [m.encoding for m in matches
            if m.chaos == best.chaos and m.coherence == best.coherence]
    for preferred in _TIE_PREFERENCE:  # cp1250 and cp1252 often tie; Western text is likelier
        if preferred in tied:
            return preferred
    return best.encoding


def read_text_blocks(path: Path) -> Iterator[str]:
    """Decode a text file block by block; invalid bytes become U+FFFD, NULs are dropped."""
    with open(path, "rb") as fh:
        first = fh.read(BLOCK_BYTES)
        decoder = codecs.getincrementaldecoder(sniff_encoding(first))(errors="replace")
        block = first
        while block:
            text = decoder.decode(block)
            if text:
                yield text.replace("\x00", "")
            block = fh.read(BLOCK_BYTES)
        tail = decoder.decode(b"", final=True)
        if tail:
            yield tail.replace("\x00", "")


def extract_text(path: Path, _options: ExtractOptions | None = None) -> Iterator[Section]:
    """Plain text and Markdown, streamed in sections cut at line ends."""
    carry = ""
    for block in read_text_blocks(path):
        carry += block
        if len(carry) < BLOCK_BYTES:
            continue
        cut = carry.rfind("\n")
        if cut == -1:
            if len(carry) < 4 * BLOCK_BYTES:
                continue
            cut = len(carry) - 1
        yield Section(carry[: cut + 1])
        carry = carry[cut + 1:]
    if carry:
        yield Section(carry)


def _read_all_text(path: Path) -> str:
    return "".join(read_text_blocks(path))


def extract_html(path: Path, options: ExtractOptions = ExtractOptions()) -> Iterator[Section]:
    """The visible text (scripts, styles, templates dropped); by default only the main content,
    cut into sections at its h1–h3 headings."""
    return html_sections(_read_all_text(path), options)


def html_sections(markup: str, options: ExtractOptions = ExtractOptions()) -> Iterator[Section]:
    """Sections of an HTML page held in memory (a file, an e-book chapter, a mail body)."""
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(markup)
    if "<table" in markup[:MAX_TABLE_SCAN].lower() and _tables_as_rows(tree):
        markup = tree.html or markup
    headings = [(int((node.tag or "h3")[1]), node.text(separator=" "))
                for node in tree.css("h1, h2, h3")] if options.headings else []
    text = _main_content(markup) if options.main_content else ""
    if not text.strip():  # no main content found (or not asked for): all visible text
        for tag in ("script", "style", "noscript", "template", "head"):
            for node in tree.css(tag):
                node.decompose()
        root = tree.body or tree.root
        text = root.text(separator="\n", strip=True) if root is not None else ""
    if options.headings:
        yield from align_headings(text, headings)
    else:
        yield Section(text)


def _tables_as_rows(tree: Any) -> bool:
    """Replace each data table (two rows and two columns or more, no table inside) by one
    paragraph a row, its cells named by their column headers (``tables``); layout tables and
    one-column lists stay. Whether any table was replaced."""
    import html

    from selectolax.lexbor import LexborHTMLParser

    from agent.pipeline.readers.tables import table_lines

    replaced = False
    for table in tree.css("table"):
        if len(table.css("table")) > 1:  # (css() matches the table itself too)
            continue
        rows = [[" ".join(cell.text(separator=" ").split()) for cell in row.iter()
                 if cell.tag in ("td", "th")] for row in table.css("tr")]
        if len(rows) < 2 or max(map(len, rows)) < 2:
            continue
        caption = table.css_first("caption")
        lines = ([caption.text(separator=" ", strip=True)] if caption is not None else []) \
            + table_lines(rows)
        paragraphs = "".join(f"<p>{html.escape(line)}</p>" for line in lines if line)
        table.replace_with(LexborHTMLParser(f"<div>{paragraphs}</div>").css_first("div"))
        replaced = True
    return replaced


def _main_content(markup: str) -> str:
    from resiliparse.extract.html2text import extract_plain_text

    return str(extract_plain_text(markup, main_content=True, preserve_formatting=True,
                                  list_bullets=True, alt_texts=False, links=False))


def extract_markdown(path: Path, options: ExtractOptions = ExtractOptions()) -> Iterator[Section]:
    """Markdown, streamed, in sections cut at its headings."""
    if not options.headings:
        return extract_text(path)
    return markdown_sections(read_text_blocks(path))


READ_PART_SUFFIXES = (".xml", ".rels", ".xhtml", ".html", ".htm", ".opf", ".ncx", ".txt")


def _is_read_part(name: str) -> bool:
    """Whether the readers unpack this member (markup), unlike pictures and embedded objects,
    which they never decompress."""
    base = name.rsplit("/", 1)[-1].lower()
    return "." not in base or base.endswith(READ_PART_SUFFIXES)


def check_archive(path: Path, kind: str) -> None:
    """Refuse a zip-based document (DOCX, XLSX, PPTX, OpenDocument, EPUB) that is not a zip,
    or whose parts the readers unpack would be huge or expand like a zip bomb (a picture that
    compresses 600× — a WMF of one colour — is never unpacked, so it does not count)."""
    try:
        with zipfile.ZipFile(path) as archive:
            total = 0
            for info in archive.infolist():
                if not _is_read_part(info.filename):
                    continue
                total += info.file_size
                if info.compress_size and info.file_size / info.compress_size > MAX_ZIP_RATIO:
                    raise _fail(f"the {kind} looks like a zip bomb ({info.filename} expands "
                                f"{info.file_size // max(1, info.compress_size)}x)")
            if total > MAX_ZIP_UNPACKED:
                raise _fail(f"the {kind} would unpack to {total // 2**20} MiB (limit "
                            f"{MAX_ZIP_UNPACKED // 2**20} MiB)")
    except zipfile.BadZipFile:
        raise _fail(f"the {kind} is corrupt (not a valid zip archive)") from None


def extract_docx(path: Path, options: ExtractOptions = ExtractOptions()) -> Iterator[Section]:
    """Paragraphs under their heading styles and table rows, in reading order, read as a
    stream (``wordml``); archives that would unpack to something huge are refused."""
    from agent.pipeline.readers.wordml import docx_sections

    check_archive(path, "DOCX")
    return docx_sections(path, headings=options.headings)


CSV_DELIMITERS = (",", ";", "\t", "|")


def guess_delimiter(sample: str, suffix: str = "") -> str:
    """The delimiter among , ; tab | that splits the sample's rows into the most consistent
    number of columns (several, not one); ``,`` (tab for .tsv) when none does."""
    lines = sample.splitlines()
    if len(lines) > 1 and not sample.endswith(("\n", "\r")):
        lines = lines[:-1]  # the sample may end mid-row
    lines = [line for line in lines[:100] if line.strip()]
    best: tuple[float, int, str] | None = None
    for delimiter in CSV_DELIMITERS:
        widths = [len(row) for row in csv.reader(lines, delimiter=delimiter)]
        if not widths:
            continue
        common = max(set(widths), key=widths.count)
        if common < 2:
            continue
        score = (widths.count(common) / len(widths), common, delimiter)
        if best is None or score[:2] > best[:2]:
            best = score
    if best is not None:
        return best[2]
    return "\t" if suffix == ".tsv" else ","


def extract_csv(path: Path, _options: ExtractOptions | None = None) -> Iterator[Section]:
    """Rows as lines that carry their column names (``tables``), streamed in sections."""
    from agent.pipeline.readers.tables import TableLines

    text_stream = io.StringIO(_read_all_text(path))
    sample = text_stream.read(16384)
    text_stream.seek(0)
    delimiter = guess_delimiter(sample, path.suffix.lower())
    table = TableLines()
    lines: list[str] = []
    for row in csv.reader(text_stream, delimiter=delimiter):
        lines += table.row(row)
        if len(lines) >= 500:
            yield Section("\n".join(lines) + "\n")
            lines = []
    lines += table.finish()
    if lines:
        yield Section("\n".join(lines))


def _json_values(text: str) -> list[Any] | None:
    """The JSON values written one after another in ``text``; None if it is not that."""
    decoder = json.JSONDecoder()
    values: list[Any] = []
    at = 0
    try:
        while True:
            while at < len(text) and text[at].isspace():
                at += 1
            if at >= len(text):
                return values
            value, at = decoder.raw_decode(text, at)
            values.append(value)
    except (ValueError, RecursionError):
        return None


def extract_json(path: Path, _options: ExtractOptions | None = None) -> Iterator[Section]:
    """'key.path: value' lines; invalid or absurdly deep JSON fails clearly. A file of several
    JSON values one after another (pretty-printed records, as log shippers and tools write
    them) is read as the list of them."""
    text = _read_all_text(path)
    try:
        data = json.loads(text)
    except RecursionError:
        raise _fail("the JSON is nested too deeply") from None
    except ValueError as exc:
        data = _json_values(text) if "Extra data" in str(exc) else None
        if data is None:
            raise _fail(f"the JSON is invalid ({exc})") from None
    lines: list[str] = []

    def walk(node: Any, prefix: str, depth: int) -> None:
        if depth > MAX_JSON_DEPTH:
            raise _fail(f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}.{key}" if prefix else str(key), depth + 1)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{prefix}[{i}]", depth + 1)
        elif node is not None and str(node).strip():
            lines.append(f"{prefix}: {node}" if prefix else str(node))

    walk(data, "", 0)
    yield Section("\n".join(lines))
