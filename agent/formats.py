"""Every document format the agent reads, one record each: its MIME type and the other names
it goes by, the suffixes that name it, the short name people type, its reader, and what to say
when it holds no text. The allowed types, the short names, the suffix maps, the type hints,
``check``'s list and docs/formats.md are all derived from ``FORMATS``.

Adding a format is one record here, one reader under ``agent/pipeline/readers/`` (a function
``(path, options) -> Iterator[Section]``) and one test. This module imports nothing: config,
search, metrics and the web page read it without loading a reader.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Family = Literal["text", "office", "pdf", "mail", "e-book", "image", "legacy office"]

NO_TEXT = {  # why a file of a family gave no text, unless its record says better
    "text": "the file holds only whitespace or markup",
    "image": "OCR read nothing in the picture (a photo, or text too small or faint to read)",
}
NO_TEXT_DEFAULT = "the document holds no text (pictures only?)"


@dataclass(frozen=True, slots=True)
class Format:
    mime: str  # the type stored with the document
    names: tuple[str, ...]  # short names people type (--type xlsx); the first labels metrics
    what: str  # in words: "a Word 97-2003 document"
    family: Family
    reader: str  # "module:function" under agent.pipeline.readers
    aliases: tuple[str, ...] = ()  # other MIME names for it (libmagic's, a client's)
    text_suffixes: tuple[str, ...] = ()  # name it when the content is text
    container_suffixes: tuple[str, ...] = ()  # name it when libmagic stops at its zip or OLE
    package: bool = False  # a zip of parts (backslashed part names are mended)
    no_text: str = ""  # why it gave no text, when the family's words do not fit
    needs: str = ""  # what reading it takes beyond Python packages (a program), in words
    allowed: bool = True  # in an inbox's allowed_types by default

    @property
    def name(self) -> str:
        return self.names[0]

    @property
    def no_text_message(self) -> str:
        return "no text found: " + (self.no_text or NO_TEXT.get(self.family, NO_TEXT_DEFAULT))


OOXML = "application/vnd.openxmlformats-officedocument."
ODF = "application/vnd.oasis.opendocument."
SLIDES_NO_TEXT = "the slides hold no text (pictures or charts only, or empty boxes; no tables " \
                 "or notes)"
SHEETS_NO_TEXT = "every sheet is empty"

FORMATS: tuple[Format, ...] = (
    Format("text/plain", ("txt", "text"), "plain text", "text", "extract:extract_text",
           text_suffixes=(".txt", ".text", ".log", ".ini", ".cfg", ".conf", ".toml", ".yaml",
                          ".yml")),
    Format("text/markdown", ("md", "markdown"), "Markdown", "text", "extract:extract_markdown",
           aliases=("text/x-markdown",), text_suffixes=(".md", ".markdown")),
    Format("text/html", ("html", "htm"), "a web page", "text", "extract:extract_html",
           text_suffixes=(".htm", ".html", ".xhtml", ".hocr")),
    Format("text/csv", ("csv",), "a CSV table", "text", "extract:extract_csv",
           aliases=("application/csv", "text/x-csv"), text_suffixes=(".csv", ".tsv")),
    Format("application/json", ("json",), "JSON", "text", "extract:extract_json",
           text_suffixes=(".json",)),
    Format("application/x-ndjson", ("jsonl", "ndjson"), "JSON lines", "text",
           "structured:extract_ndjson", aliases=("application/jsonl", "application/jsonlines"),
           text_suffixes=(".jsonl", ".ndjson")),
    Format("application/xml", ("xml",), "XML", "text", "structured:extract_xml",
           aliases=("text/xml",), text_suffixes=(".xml",)),
    Format("text/x-rst", ("rst",), "reStructuredText", "text", "extract:extract_markdown",
           text_suffixes=(".rst",)),
    Format("text/org", ("org",), "an Org document", "text", "extract:extract_text",
           text_suffixes=(".org",)),
    Format("text/asciidoc", ("adoc", "asciidoc"), "AsciiDoc", "text", "extract:extract_text",
           text_suffixes=(".adoc", ".asciidoc")),
    Format("text/x-tex", ("tex", "latex"), "a LaTeX source", "text", "extract:extract_text",
           text_suffixes=(".tex",)),
    Format("application/x-ipynb+json", ("ipynb",), "a Jupyter notebook", "text",
           "notebooks:extract_notebook", text_suffixes=(".ipynb",)),
    Format("text/vtt", ("vtt", "webvtt"), "WebVTT subtitles", "text",
           "subtitles:extract_subtitles", text_suffixes=(".vtt",)),
    Format("application/x-subrip", ("srt",), "SubRip subtitles", "text",
           "subtitles:extract_subtitles", aliases=("text/x-subrip",), text_suffixes=(".srt",)),
    Format("application/pdf", ("pdf",), "a PDF", "pdf", "pdf:extract_pdf"),
    Format(OOXML + "wordprocessingml.document", ("docx",), "a Word document", "office",
           "extract:extract_docx", container_suffixes=(".docx",), package=True),
    Format(OOXML + "spreadsheetml.sheet", ("xlsx",), "an Excel workbook", "office",
           "office:extract_xlsx", container_suffixes=(".xlsx",), package=True,
           no_text=SHEETS_NO_TEXT),
    Format("application/vnd.ms-excel.sheet.macroenabled.12", ("xlsm",),
           "an Excel workbook with macros", "office", "office:extract_xlsx",
           aliases=("application/vnd.ms-excel.sheet.macroEnabled.12",),
           container_suffixes=(".xlsm",), package=True, no_text=SHEETS_NO_TEXT),
    Format(OOXML + "presentationml.presentation", ("pptx",), "a PowerPoint deck", "office",
           "office:extract_pptx", container_suffixes=(".pptx",), package=True,
           no_text=SLIDES_NO_TEXT),
    Format(ODF + "text", ("odt",), "an OpenDocument text", "office", "office:extract_odf",
           container_suffixes=(".odt",), package=True),
    Format(ODF + "spreadsheet", ("ods",), "an OpenDocument spreadsheet", "office",
           "office:extract_odf", container_suffixes=(".ods",), package=True,
           no_text=SHEETS_NO_TEXT),
    Format(ODF + "presentation", ("odp",), "an OpenDocument presentation", "office",
           "office:extract_odf", container_suffixes=(".odp",), package=True,
           no_text=SLIDES_NO_TEXT),
    Format("text/rtf", ("rtf",), "an RTF document", "office", "office:extract_rtf",
           text_suffixes=(".rtf",)),
    Format("application/epub+zip", ("epub",), "an EPUB e-book", "e-book", "ebook:extract_epub",
           container_suffixes=(".epub",), package=True),
    Format("message/rfc822", ("eml",), "a mail", "mail", "mail:extract_eml",
           text_suffixes=(".eml",)),
    Format("application/vnd.ms-outlook", ("msg",), "an Outlook message", "mail",
           "mail:extract_msg", container_suffixes=(".msg",)),
    Format("image/png", ("png",), "a PNG picture", "image", "images:extract_image"),
    Format("image/jpeg", ("jpeg", "jpg"), "a JPEG photo", "image", "images:extract_image"),
    Format("image/tiff", ("tiff", "tif"), "a TIFF scan", "image", "images:extract_image"),
    Format("image/webp", ("webp",), "a WebP picture", "image", "images:extract_image"),
    Format("image/bmp", ("bmp",), "a BMP picture", "image", "images:extract_image"),
    Format("image/gif", ("gif",), "a GIF picture", "image", "images:extract_image"),
    Format("image/heic", ("heic",), "an HEIC photo", "image", "images:extract_image"),
    Format("image/heif", ("heif",), "an HEIF photo", "image", "images:extract_image"),
    Format("application/msword", ("doc",), "a Word 97-2003 document", "legacy office",
           "legacy:extract_doc", container_suffixes=(".doc",),
           needs="catdoc (Debian: catdoc)"),
    Format("application/vnd.ms-excel", ("xls",), "an Excel 97-2003 workbook", "legacy office",
           "legacy:extract_xls", container_suffixes=(".xls",), no_text=SHEETS_NO_TEXT),
    Format("application/vnd.ms-powerpoint", ("ppt",), "a PowerPoint 97-2003 deck",
           "legacy office", "legacy:extract_ppt", container_suffixes=(".ppt",),
           no_text=SLIDES_NO_TEXT, needs="LibreOffice (Debian: libreoffice-impress-nogui)"),
)

BY_MIME: dict[str, Format] = {f.mime: f for f in FORMATS}
BY_NAME: dict[str, Format] = {name: f for f in FORMATS for name in f.names}
DEFAULT_ALLOWED_TYPES: list[str] = [f.mime for f in FORMATS if f.allowed]
SHORT_TYPES: dict[str, str] = {name: f.mime for name, f in BY_NAME.items()}
ALIASES: dict[str, str] = {alias: f.mime for f in FORMATS for alias in f.aliases}
TEXT_SUFFIXES: dict[str, str] = {s: f.mime for f in FORMATS for s in f.text_suffixes}
CONTAINER_SUFFIXES: dict[str, str] = {s: f.mime for f in FORMATS for s in f.container_suffixes}
PACKAGES: frozenset[str] = frozenset(f.mime for f in FORMATS if f.package)


def short_type(mime: str | None) -> str:
    """``xlsx`` for the spreadsheet MIME type; ``other`` for what has no short name."""
    found = BY_MIME.get(mime or "")
    return found.name if found is not None else "other"


def metric_types() -> list[str]:
    """One label per type (txt, not also text), for series created before any document."""
    return sorted(f.name for f in FORMATS)


def no_text_message(mime: str) -> str:
    """Why a file that was read gave no text, in the case it is."""
    found = BY_MIME.get(mime)
    if found is not None:
        return found.no_text_message
    return "no text found: " + (NO_TEXT["text"] if mime.startswith("text/") else NO_TEXT_DEFAULT)


def formats_table() -> str:
    """docs/formats.md's table (a test keeps the page equal to it)."""
    rows = ["| type | short names | suffixes | MIME type | needs |", "|---|---|---|---|---|"]
    for f in FORMATS:
        suffixes = ", ".join(f"`{s}`" for s in f.text_suffixes + f.container_suffixes) \
            or "any (by content)"
        names = ", ".join(f"`{n}`" for n in f.names)
        rows.append(f"| {f.what} | {names} | {suffixes} | `{f.mime}` | {f.needs or '—'} |")
    return "\n".join(rows) + "\n"
