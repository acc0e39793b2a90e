"""What a file is: libmagic reads the content; the suffix decides between kinds of text.

libmagic names text by what it looks like inside: a Markdown page full of JavaScript examples
comes out as ``application/javascript``, a notes file as ``text/x-c``, UTF-16 without a byte
order mark as ``application/octet-stream``. When the content is text (libmagic gives it a text
encoding, or a charset detector is confident) and the suffix names an allowed text type, the
file is that type. Binary formats are always what their content says, whatever the name.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from agent.errors import PermanentError

SAMPLE_BYTES = 64 * 1024
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
# Types a suffix may name when the content is text.
TEXT_SUFFIXES = {
    ".txt": "text/plain", ".text": "text/plain", ".log": "text/plain",
    ".md": "text/markdown", ".markdown": "text/markdown",
    ".csv": "text/csv", ".tsv": "text/csv", ".json": "application/json",
    ".htm": "text/html", ".html": "text/html", ".xhtml": "text/html",
    ".eml": "message/rfc822", ".rtf": "text/rtf",
}
# Office suffixes whose files libmagic may call by their container's name.
CONTAINER_SUFFIXES = {
    ".docx": DOCX,
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".xlsm": "application/vnd.ms-excel.sheet.macroenabled.12",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".msg": "application/vnd.ms-outlook",
}
_ALIASES = {"text/x-markdown": "text/markdown", "application/csv": "text/csv",
            "text/x-csv": "text/csv", "text/xml": "text/plain",
            "application/vnd.ms-excel.sheet.macroEnabled.12":
                "application/vnd.ms-excel.sheet.macroenabled.12",
            "application/x-ole-storage": "application/CDFV2"}
_magic_encoding: Any = None


def _canonical(mime: str) -> str:
    return _ALIASES.get(mime, mime)


def detect_type(path: Path, allowed: list[str] | None = None) -> str:
    """The MIME type to extract ``path`` as; ``PermanentError`` when it is not allowed."""
    import magic  # libmagic: loaded only where files are processed

    allowed_set = {_canonical(a) for a in allowed} if allowed is not None else None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise PermanentError(f"cannot detect the type: {exc.strerror}", stage="detect") from None
    try:
        detected = _canonical(magic.from_descriptor(fd, mime=True))
        if detected in ("application/x-empty", "inode/x-empty"):
            raise PermanentError("the file is empty (0 bytes)", stage="detect")
        os.lseek(fd, 0, os.SEEK_SET)
        encoding = _encoding_of(fd)
        os.lseek(fd, 0, os.SEEK_SET)
        sample = os.read(fd, SAMPLE_BYTES)
    except magic.MagicException as exc:
        raise PermanentError(f"cannot detect the type: {exc}", stage="detect") from None
    finally:
        os.close(fd)
    mime = _decide(detected, encoding, sample, path.suffix.lower(), allowed_set)
    if allowed_set is not None and mime not in allowed_set:
        raise PermanentError(
            f"unsupported type {mime} (detected from content); allowed: {', '.join(allowed or [])}",
            stage="detect",
        )
    return mime


def _decide(detected: str, encoding: str, sample: bytes, suffix: str,
            allowed: set[str] | None) -> str:
    by_suffix = TEXT_SUFFIXES.get(suffix)
    suffix_allowed = by_suffix is not None and (allowed is None or by_suffix in allowed)
    if suffix_allowed and (_is_textual(detected, encoding) or (
            detected == "application/octet-stream" and text_encoding(sample) is not None)):
        return str(by_suffix)
    if "encrypted" in detected.lower():  # an Office file saved with a password
        raise PermanentError(f"the file is encrypted (password protected; {detected})",
                             stage="detect")
    container = CONTAINER_SUFFIXES.get(suffix)
    if container is not None and detected in ("application/zip", "application/octet-stream",
                                              "application/CDFV2"):
        return container  # libmagic stopped at the container; its reader checks the rest
    return detected


def _is_textual(mime: str, encoding: str) -> bool:
    """libmagic found text: a text type, or any type it read in a character encoding."""
    return mime.startswith("text/") or encoding not in ("binary", "unknown-8bit", "")


def _encoding_of(fd: int) -> str:
    import magic

    global _magic_encoding
    if _magic_encoding is None:
        _magic_encoding = magic.Magic(mime_encoding=True)
    return str(_magic_encoding.from_descriptor(fd))


def text_encoding(sample: bytes) -> str | None:
    """A confident text encoding for bytes libmagic called binary (UTF-16 without a BOM), or
    None. Confident: the detector sees no chaos and nearly every character is printable."""
    if not sample:
        return None
    from charset_normalizer import from_bytes

    best = from_bytes(sample).best()
    if best is None or best.chaos > 0.05:
        return None
    text = str(best)
    printable = sum(c.isprintable() or c in "\n\r\t" for c in text)
    return best.encoding if text and printable / len(text) > 0.97 else None
