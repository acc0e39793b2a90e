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
from agent.formats import ALIASES, BY_MIME, CONTAINER_SUFFIXES, TEXT_SUFFIXES
from agent.stages import Stage

SAMPLE_BYTES = 64 * 1024
NUL_SCAN_BYTES = 1024 * 1024  # libmagic reads this much of a file (its bytes_max) or more
# libmagic's names for a container whose format is told by its suffix (CONTAINER_SUFFIXES)
_CONTAINER_ALIASES = {"application/x-ole-storage": "application/CDFV2"}
_magic_encoding: Any = None


def _canonical(mime: str) -> str:
    return ALIASES.get(mime) or _CONTAINER_ALIASES.get(mime, mime)


def detect_type(path: Path, allowed: list[str] | None = None) -> str:
    """The MIME type to extract ``path`` as; ``PermanentError`` when it is not allowed."""
    import magic  # libmagic: loaded only where files are processed

    allowed_set = {_canonical(a) for a in allowed} if allowed is not None else None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise PermanentError(f"cannot detect the type: {exc.strerror}", stage=Stage.DETECT) from None
    try:
        detected = _canonical(magic.from_descriptor(fd, mime=True))
        if detected in ("application/x-empty", "inode/x-empty"):
            raise PermanentError("the file is empty (0 bytes)", stage=Stage.DETECT)
        os.lseek(fd, 0, os.SEEK_SET)
        encoding = _encoding_of(fd)
        os.lseek(fd, 0, os.SEEK_SET)
        sample = os.read(fd, SAMPLE_BYTES)
        if detected == "application/octet-stream":
            detected, encoding = _past_stray_nuls(fd, detected, encoding)
    except magic.MagicException as exc:
        raise PermanentError(f"cannot detect the type: {exc}", stage=Stage.DETECT) from None
    finally:
        os.close(fd)
    mime = _decide(detected, encoding, sample, path.suffix.lower(), allowed_set)
    if allowed_set is not None and mime not in allowed_set:
        raise PermanentError(unsupported_message(mime), stage=Stage.DETECT)
    return mime


# What people drop that the agent does not read, in words, with what to do about it (what it
# reads is in agent.formats).
_UNSUPPORTED: dict[str, tuple[str, str]] = {
    "application/zip": ("a zip archive", "unpack it into the inbox"),
    "application/x-7z-compressed": ("a 7-Zip archive", "unpack it into the inbox"),
    "application/x-rar": ("a RAR archive", "unpack it into the inbox"),
    "application/vnd.rar": ("a RAR archive", "unpack it into the inbox"),
    "application/gzip": ("a gzip file", "unpack it into the inbox"),
    "application/x-tar": ("a tar archive", "unpack it into the inbox"),
    "application/x-bzip2": ("a bzip2 file", "unpack it into the inbox"),
    "application/x-xz": ("an xz file", "unpack it into the inbox"),
    "image/svg+xml": ("an SVG drawing", "export it as PDF or PNG"),
    "application/x-executable": ("a program", "programs are not documents"),
    "application/x-pie-executable": ("a program", "programs are not documents"),
    "application/x-sharedlib": ("a program library", "programs are not documents"),
    "application/x-dosexec": ("a Windows program", "programs are not documents"),
    "application/octet-stream": ("binary data of no known kind", "save it as PDF or text"),
}
_UNSUPPORTED_FAMILIES = {"audio/": ("audio", "sound has no text to index"),
                         "video/": ("a video", "video has no text to index"),
                         "font/": ("a font", "fonts are not documents")}
MAX_MESSAGE = 200


def unsupported_message(mime: str) -> str:
    """One short line (at most 200 characters) naming the type and what to do instead."""
    known = _UNSUPPORTED.get(mime) or next(
        (v for prefix, v in _UNSUPPORTED_FAMILIES.items() if mime.startswith(prefix)), None)
    if mime in BY_MIME:
        what, hint = BY_MIME[mime].what, "a type this inbox does not take (see its allowed_types)"
    elif known is not None:
        what, hint = known
    else:
        what, hint = "", "the agent reads text, office files, PDFs, mail, e-books and images"
    shown = mime if len(mime) <= 80 else mime[:79] + "…"
    line = f"unsupported type {shown}{f' ({what})' if what else ''}: {hint}"
    return line[:MAX_MESSAGE]


def _decide(detected: str, encoding: str, sample: bytes, suffix: str,
            allowed: set[str] | None) -> str:
    by_suffix = TEXT_SUFFIXES.get(suffix)
    suffix_allowed = by_suffix is not None and (allowed is None or by_suffix in allowed)
    if suffix_allowed and (_is_textual(detected, encoding) or (
            detected == "application/octet-stream" and text_encoding(sample) is not None)):
        return str(by_suffix)
    if "encrypted" in detected.lower():  # an Office file saved with a password
        raise PermanentError(f"the file is encrypted (password protected; {detected})",
                             stage=Stage.DETECT)
    container = CONTAINER_SUFFIXES.get(suffix)
    if container is not None and detected in ("application/zip", "application/octet-stream",
                                              "application/CDFV2"):
        return container  # libmagic stopped at the container; its reader checks the rest
    return detected


def _past_stray_nuls(fd: int, detected: str, encoding: str) -> tuple[str, str]:
    """What libmagic calls text once a few stray NUL bytes are left out.

    One NUL makes libmagic call a whole file "data": a mail with two NULs in a base64 body, a
    log a crash padded with zeros. When NULs are rare (at most one byte in a thousand of what
    libmagic reads) and the rest is text to libmagic, the file is that text; otherwise it
    stays what libmagic said. UTF-16 (half NULs) and binary formats never pass.
    """
    import magic

    os.lseek(fd, 0, os.SEEK_SET)
    head = os.read(fd, NUL_SCAN_BYTES)
    nuls = head.count(b"\0")
    if not nuls or nuls * 1000 > len(head):
        return detected, encoding
    rest = head.replace(b"\0", b"")
    again = _canonical(magic.from_buffer(rest, mime=True))
    again_encoding = str(_encoder().from_buffer(rest))
    if not _is_textual(again, again_encoding) and again != "message/rfc822":
        return detected, encoding
    return again, again_encoding


def _is_textual(mime: str, encoding: str) -> bool:
    """libmagic found text: a text type, or any type it read in a character encoding."""
    return mime.startswith("text/") or encoding not in ("binary", "unknown-8bit", "")


def _encoder() -> Any:
    import magic

    global _magic_encoding
    if _magic_encoding is None:
        _magic_encoding = magic.Magic(mime_encoding=True)
    return _magic_encoding


def _encoding_of(fd: int) -> str:
    return str(_encoder().from_descriptor(fd))


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
