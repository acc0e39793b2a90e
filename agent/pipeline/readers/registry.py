"""Which reader reads which type, and the readers that need others: pictures (OCR) and the
attachments of a mail (each read as the type it turns out to be)."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import agent.pipeline.readers.ebook as ebook
import agent.pipeline.readers.legacy as legacy
import agent.pipeline.readers.mail as mail
import agent.pipeline.readers.office as office
import agent.pipeline.readers.packagenames as packagenames
import agent.pipeline.readers.structured as structured
from agent.errors import PermanentError
from agent.pipeline.readers.extract import (
    ExtractOptions,
    extract_csv,
    extract_docx,
    extract_html,
    extract_json,
    extract_markdown,
    extract_text,
)
from agent.pipeline.readers.ocr import image_pages
from agent.pipeline.readers.outline import Section
from agent.pipeline.readers.pdf import extract_pdf

Reader = Callable[[Path, ExtractOptions], Iterator[Section]]

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XLSM = "application/vnd.ms-excel.sheet.macroenabled.12"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
EML = "message/rfc822"
MSG = "application/vnd.ms-outlook"
PACKAGES = {DOCX, XLSX, XLSM, PPTX, "application/epub+zip", *office.ODF_KINDS}  # zips of parts
IMAGE_TYPES = ("image/png", "image/jpeg", "image/tiff", "image/webp", "image/bmp", "image/gif",
               "image/heic", "image/heif")


def _plain(reader: Callable[[Path], Iterator[Section]]) -> Reader:
    return lambda path, _options: reader(path)


def extract_image(path: Path, options: ExtractOptions) -> Iterator[Section]:
    """A photo or scan of pages (every page of a TIFF), read by OCR."""
    if options.ocr is None:
        raise PermanentError("the file is an image and OCR is off for this inbox",
                             stage="extract")
    notes, read_any = [], False
    for number, read in options.ocr.read_pages(image_pages(path, options.ocr.options)):
        read_any = read_any or bool(read.text.strip())
        if read.note:
            notes.append(read.note)
        yield Section(read.text, page=number,
                      note=f"page {number}: {read.note}" if read.note else "", ocr=True)
    if notes and not read_any:  # nothing was read: say why rather than "no text"
        raise PermanentError(f"no text read: {notes[0]}", stage="ocr")


READERS: dict[str, Reader] = {
    "text/plain": _plain(extract_text),
    "text/markdown": extract_markdown,
    "text/html": extract_html,
    "application/pdf": extract_pdf,
    DOCX: extract_docx,
    "text/csv": _plain(extract_csv),
    "application/json": _plain(extract_json),
    "application/x-ndjson": _plain(structured.extract_ndjson),
    "application/xml": _plain(structured.extract_xml),
    XLSX: office.extract_xlsx,
    XLSM: office.extract_xlsx,
    PPTX: office.extract_pptx,
    **{kind: office.extract_odf for kind in office.ODF_KINDS},
    "text/rtf": office.extract_rtf,
    "application/epub+zip": ebook.extract_epub,
    "application/msword": legacy.extract_doc,
    "application/vnd.ms-excel": legacy.extract_xls,
    "application/vnd.ms-powerpoint": legacy.extract_ppt,
    **{kind: extract_image for kind in IMAGE_TYPES},
}


def extract(path: Path, mime: str, options: ExtractOptions = ExtractOptions(),
            allowed: Sequence[str] | None = None, depth: int = 0) -> Iterator[Section]:
    """Sections of text from ``path`` read as ``mime``; a mail's attachments are read when
    their own type is in ``allowed`` (all supported types when None)."""
    if mime in (EML, MSG):
        attachments = _attachment_reader(options, allowed)
        if mime == EML:
            return mail.extract_eml(path, options, attachments, depth)
        return mail.extract_msg(path, options, attachments, depth)
    reader = READERS.get(mime)
    if reader is None:
        raise PermanentError(f"no text extractor for {mime}", stage="extract")
    if mime in PACKAGES and packagenames.has_backslash_names(path):
        return packagenames.read_forward_slashed(reader, path, options)
    return reader(path, options)


def _attachment_reader(options: ExtractOptions, allowed: Sequence[str] | None
                       ) -> mail.AttachmentReader:
    def read(data: bytes, name: str, depth: int) -> Iterator[Section]:
        from agent.pipeline.detect import detect_type

        if depth > mail.MAX_MAIL_DEPTH:
            raise PermanentError(f"mails nested more than {mail.MAX_MAIL_DEPTH} deep",
                                 stage="extract")
        suffix = re.sub(r"[^a-z0-9.]", "", Path(name).suffix.lower())[:16]
        with tempfile.TemporaryDirectory(prefix="ingest-attachment-") as folder:
            part = Path(folder) / f"attachment{suffix}"  # the sender's name is never a path
            part.write_bytes(data)
            mime = detect_type(part)
            if mime not in READERS and mime not in (EML, MSG):
                from agent.pipeline.detect import unsupported_message

                raise PermanentError(unsupported_message(mime), stage="extract")
            if allowed is not None and mime not in allowed:
                raise PermanentError(f"its type ({mime}) is not one this inbox reads",
                                     stage="extract")
            # read it all while the file exists
            return iter(list(extract(part, mime, options, allowed, depth)))

    return read
