"""Which reader reads which type, and the readers that need others: pictures (OCR) and the
attachments of a mail (each read as the type it turns out to be)."""

from __future__ import annotations

import importlib
import re
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import agent.pipeline.readers.mail as mail
import agent.pipeline.readers.packagenames as packagenames
from agent.errors import PermanentError
from agent.formats import FORMATS, PACKAGES
from agent.pipeline.readers.extract import ExtractOptions
from agent.pipeline.readers.outline import Section
from agent.stages import Stage

Reader = Callable[[Path, ExtractOptions], Iterator[Section]]

EML = "message/rfc822"
MSG = "application/vnd.ms-outlook"


def _reader(spec: str) -> Reader:
    """The function a format record names (``module:function`` under this package)."""
    module, _, name = spec.partition(":")
    found: Reader = getattr(importlib.import_module(f"agent.pipeline.readers.{module}"), name)
    return found


# Mail is read apart (its attachments are read as what they turn out to be).
READERS: dict[str, Reader] = {f.mime: _reader(f.reader) for f in FORMATS if f.family != "mail"}


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
        raise PermanentError(f"no text extractor for {mime}", stage=Stage.EXTRACT)
    if mime in PACKAGES and packagenames.has_backslash_names(path):
        return packagenames.read_forward_slashed(reader, path, options)
    return reader(path, options)


def _attachment_reader(options: ExtractOptions, allowed: Sequence[str] | None
                       ) -> mail.AttachmentReader:
    def read(data: bytes, name: str, depth: int) -> Iterator[Section]:
        from agent.pipeline.detect import detect_type

        if depth > mail.MAX_MAIL_DEPTH:
            raise PermanentError(f"mails nested more than {mail.MAX_MAIL_DEPTH} deep",
                                 stage=Stage.EXTRACT)
        suffix = re.sub(r"[^a-z0-9.]", "", Path(name).suffix.lower())[:16]
        with tempfile.TemporaryDirectory(prefix="ingest-attachment-") as folder:
            part = Path(folder) / f"attachment{suffix}"  # the sender's name is never a path
            part.write_bytes(data)
            mime = detect_type(part)
            if mime not in READERS and mime not in (EML, MSG):
                from agent.pipeline.detect import unsupported_message

                raise PermanentError(unsupported_message(mime), stage=Stage.EXTRACT)
            if allowed is not None and mime not in allowed:
                raise PermanentError(f"its type ({mime}) is not one this inbox reads",
                                     stage=Stage.EXTRACT)
            # read it all while the file exists
            return iter(list(extract(part, mime, options, allowed, depth)))

    return read
