"""E-mail: the headers people search by, the body, and the attachments the agent can read.

``.eml`` (RFC 822/MIME) is read by the standard library's ``email`` package with the modern
policy; Outlook ``.msg`` by extract-msg. The first section holds Subject, From, To, Cc, Date and
the names of all attachments, then the text body (or the HTML body's visible text). Each
attachment of a supported type is read by its own reader and its sections carry the path
``Attachment <name> of mail “<subject>”``; an attachment that is unsupported or broken is named
in the mail's text with the reason, and the rest of the mail is still indexed.
"""

from __future__ import annotations

import email
import email.header
import email.policy
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from email.errors import StartBoundaryNotFoundDefect
from pathlib import Path
from typing import Any

from agent.errors import PermanentError
from agent.pipeline.readers.extract import ExtractOptions, html_sections, sniff_encoding
from agent.pipeline.readers.outline import Section, clean_heading
from agent.stages import Stage

MAX_ATTACHMENTS = 100
MAX_MAIL_DEPTH = 3  # a mail attached to a mail attached to a mail …

# Reads one attachment's bytes (named as the sender named it) into sections, or raises
# PermanentError when its type is not supported or it is broken; ``depth`` counts mails in mails.
AttachmentReader = Callable[[bytes, str, int], Iterator[Section]]


def _fail(message: str) -> PermanentError:
    return PermanentError(message, stage=Stage.EXTRACT)


def mail_sections(headers: dict[str, str], body_text: str | None, body_html: str | None,
                  attachments: list[tuple[str, bytes]], options: ExtractOptions,
                  read_attachment: AttachmentReader | None, depth: int,
                  total_attachments: int | None = None) -> Iterator[Section]:
    """Sections of one mail, from its parts as any reader found them (``total_attachments``:
    how many the mail has, when only the first ``MAX_ATTACHMENTS`` were taken out)."""
    total_attachments = total_attachments or len(attachments)
    headers = {key: value.replace("\x00", "").strip() for key, value in headers.items()}
    if _armoured(body_text) or _armoured(body_html):
        raise _fail("the mail is encrypted (PGP); its text cannot be read without the key")
    if any(_pgp_mime_control(name) for name, _ in attachments):
        # Outlook and Exchange carry PGP/MIME as two attachments: this control part and the
        # ciphertext (encrypted.asc, a .bin); the mail's text is inside the ciphertext
        raise _fail("the mail is encrypted (PGP/MIME, carried as attachments); its text cannot "
                    "be read without the key")
    subject = clean_heading(headers.get("Subject", "")) or "(no subject)"
    path = (f"Mail “{subject}”",)
    lines = [f"{key}: {value}" for key, value in headers.items() if value]
    attachments = [(printable(name), data) for name, data in attachments]
    names = [name for name, _ in attachments]
    if names:
        lines.append("Attachments: " + ", ".join(names))
    yield Section("\n".join(lines) + "\n\n", path=path)
    if body_text and body_text.strip():
        yield Section(body_text, path=path)
    elif body_html:
        plain = replace(options, main_content=False, headings=False)
        for section in html_sections(body_html, plain):
            yield Section(section.text, path=path)
    if read_attachment is None:
        return
    for name, data in attachments[:MAX_ATTACHMENTS]:
        label = (f"Attachment {clean_heading(name)} of mail “{subject}”",)
        if _armoured(data[:65536].decode("latin-1")):  # ciphertext, whatever its name says
            yield Section("", path=label, note=f"attachment {name} not read: it is encrypted "
                                               "(PGP)")
            continue
        try:
            parts = list(read_attachment(data, name, depth + 1))
        except Exception as exc:  # noqa: BLE001 - one bad attachment never fails the mail
            reason = str(exc) if isinstance(exc, PermanentError) else type(exc).__name__
            yield Section("", path=label, note=f"attachment {name} not read: {reason}")
            continue
        for part in parts:
            yield Section(part.text, page=part.page, path=label + part.path,
                          marks=tuple((at, label + p) for at, p in part.marks), note=part.note)
    if total_attachments > MAX_ATTACHMENTS:
        yield Section("", path=path, note=f"{total_attachments - MAX_ATTACHMENTS:,} of "
                      f"{total_attachments:,} attachments over the cap ({MAX_ATTACHMENTS}) "
                      "not read")


PGP_ARMOUR = "-----BEGIN PGP MESSAGE-----"
ENCRYPTED_TYPES = ("multipart/encrypted", "application/pgp-encrypted", "application/pkcs7-mime",
                   "application/x-pkcs7-mime")


def _armoured(body: str | None) -> bool:
    """The body is a PGP message (inline PGP): ciphertext, which must never be indexed."""
    return bool(body) and PGP_ARMOUR in (body or "")[:65536]


PGP_MIME_CONTROL = ("pgpmime version identification", "pgpmime versions identification")


def _pgp_mime_control(name: str) -> bool:
    """The attachment that says "the rest is a PGP/MIME message" (RFC 3156's control part)."""
    lowered = name.strip().lower()
    return lowered in PGP_MIME_CONTROL or lowered.endswith(".pgp-encrypted")


def _encryption_of(message: Any) -> str | None:
    """'PGP' or 'S/MIME' when the mail (or its only body) is encrypted, else None."""
    kind = message.get_content_type()
    if kind in ("multipart/encrypted", "application/pgp-encrypted"):
        return "PGP"
    if kind in ("application/pkcs7-mime", "application/x-pkcs7-mime"):
        params = str(message.get("Content-Type", "")).lower()
        return None if "signed-data" in params else "S/MIME"
    return None


def mail_bytes(raw: bytes) -> bytes:
    """A mail saved as UTF-16 or UTF-32 (with or without a byte order mark) as the bytes the
    ``email`` parser reads; any other mail unchanged."""
    for bom, codec in ((b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"),
                       (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if raw.startswith(bom):
            return raw[len(bom):].decode(codec, errors="replace").encode("utf-8")
    head = raw[:400]
    if len(head) >= 8 and head.count(b"\x00") >= len(head) // 3:  # ASCII headers, wide
        for codec, zeros in (("utf-32-le", head[1::4] + head[2::4] + head[3::4]),
                             ("utf-32-be", head[0::4] + head[1::4] + head[2::4]),
                             ("utf-16-le", head[1::2]), ("utf-16-be", head[0::2])):
            if zeros and zeros.count(b"\x00") >= 0.9 * len(zeros):
                return raw.decode(codec, errors="replace").encode("utf-8")
    return raw


def printable(name: str) -> str:
    """An attachment's name as the sender gave it, without control characters (NULs, line
    breaks) that no file name shown to a user should carry."""
    return "".join(c for c in name if c.isprintable()).strip() or "unnamed"


def extract_eml(path: Path, options: ExtractOptions = ExtractOptions(),
                read_attachment: AttachmentReader | None = None, depth: int = 0
                ) -> Iterator[Section]:
    with open(path, "rb") as fh:
        head = fh.read(4)
        fh.seek(0)
        if b"\x00" in head or head.startswith((b"\xff\xfe", b"\xfe\xff")):
            message = email.message_from_bytes(mail_bytes(fh.read()), policy=email.policy.default)
        else:
            message = email.message_from_binary_file(fh, policy=email.policy.default)
    return _eml_sections(message, options, read_attachment, depth)


def eml_bytes_sections(data: bytes, options: ExtractOptions,
                       read_attachment: AttachmentReader | None, depth: int
                       ) -> Iterator[Section]:
    """A mail held in memory (one attached to another)."""
    if depth > MAX_MAIL_DEPTH:
        raise _fail(f"mails nested more than {MAX_MAIL_DEPTH} deep")
    message = email.message_from_bytes(data, policy=email.policy.default)
    return _eml_sections(message, options, read_attachment, depth)


_BOUNDARY_LINE = re.compile(r"^--([^\s]{1,200})[ \t]*\r?$", re.MULTILINE)
MENDED_NOTE = ("the mail's header names a MIME boundary its body never uses; its parts were "
               "found by the boundary the body does use")


def _mended(message: Any) -> Any | None:
    """The mail parsed again by the boundary its body uses, when its header names another (a
    real spam sample does: without this its whole body, every part, is lost); None when the
    mail is not broken that way or mending does not give it parts."""
    body = message.get_payload()
    if (message.get_content_maintype() != "multipart" or not isinstance(body, str)
            or not any(isinstance(d, StartBoundaryNotFoundDefect) for d in message.defects)):
        return None
    found = [m.group(1) for m in _BOUNDARY_LINE.finditer(body)]
    if not found:
        return None
    # One the body also closes, else the first (the real sample closes another it never opens).
    used = next((b for b in found if f"\n--{b}--" in body), found[0])
    try:
        message.set_boundary(used)
        again = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    except Exception:  # noqa: BLE001 - a mail too broken to write out again stays as it was
        return None
    return again if again.is_multipart() else None


def _eml_sections(message: Any, options: ExtractOptions,
                  read_attachment: AttachmentReader | None, depth: int) -> Iterator[Section]:
    if not any(message.get(h) for h in ("From", "To", "Subject", "Date", "Message-ID")):
        raise _fail("the file is not an e-mail (no From, To, Subject or Date header)")
    mended = _mended(message)
    if mended is not None:
        return itertools.chain(_eml_parts(mended, options, read_attachment, depth),
                               [Section("", note=MENDED_NOTE)])
    return _eml_parts(message, options, read_attachment, depth)


def _eml_parts(message: Any, options: ExtractOptions,
               read_attachment: AttachmentReader | None, depth: int) -> Iterator[Section]:
    encryption = _encryption_of(message)
    if encryption is not None:
        raise _fail(f"the mail is encrypted ({encryption}); its text cannot be read without "
                    "the key")
    headers = {key: _header(message, key) for key in ("Subject", "From", "To", "Cc", "Date")}
    text = html = None
    body = message.get_body(preferencelist=("plain", "html"))
    if body is not None:
        content = _content(body)
        if body.get_content_subtype() == "html":
            html = content
        else:
            text = content
    attachments: list[tuple[str, bytes]] = []
    for part in message.iter_attachments():
        name = part.get_filename() or f"part-{len(attachments) + 1}"
        if part.get_content_type() == "message/rfc822":
            inner = part.get_content()
            data = inner.as_bytes() if hasattr(inner, "as_bytes") else bytes(inner)
            name = name if name.endswith(".eml") else name + ".eml"
        else:
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
        attachments.append((name, data))
    return mail_sections(headers, text, html, attachments, options, read_attachment, depth)


def _header(message: Any, key: str) -> str:
    """A header's text. Encoded words (``=?gb2312?B?…?=``) are decoded as the body is, by the
    charset mail clients read for the one named."""
    raw = next((str(v) for k, v in message.raw_items() if k.lower() == key.lower()), "")
    try:
        if "=?" in raw:
            words = email.header.decode_header(raw)
            return " ".join("".join(
                _decoded(word.encode("utf-8", "surrogateescape") if isinstance(word, str)
                         else word, (charset or "").lower())
                for word, charset in words).split())
        return " ".join(str(message.get(key, "") or "").split())
    except (ValueError, TypeError, IndexError, LookupError):  # a header too broken to decode
        return ""


# What mail clients decode a declared charset as (the WHATWG Encoding labels): the superset
# senders really write, so a GB2312 mail's GBK characters and a Latin-1 mail's curly quotes
# are read, not replaced.
_SUPERSETS = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "euc-cn": "gb18030",
              "iso-8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252",
              "us-ascii": "cp1252", "ascii": "cp1252", "iso-8859-9": "cp1254",
              "ks_c_5601-1987": "cp949", "euc-kr": "cp949", "shift_jis": "cp932",
              "sjis": "cp932", "big5": "big5hkscs", "tis-620": "cp874", "iso-8859-11": "cp874"}


def _content(part: Any) -> str:
    """A text part's text (see :func:`_decoded`)."""
    return _decoded(bytes(part.get_payload(decode=True) or b""),
                    (part.get_content_charset() or "").lower())


def _decoded(payload: bytes, declared: str) -> str:
    """Mail text. Bytes that are valid UTF-8 are read as UTF-8 whatever charset is declared (a
    real spam sample declares GB2312 over UTF-8; the other way round never decodes); else the
    declared charset, taken as mail clients take it; else a guess."""
    if not declared.startswith(("utf-16", "utf-32")):
        try:
            return payload.decode("utf-8")
        except UnicodeDecodeError:
            pass
    if declared:
        try:
            return payload.decode(_SUPERSETS.get(declared, declared), errors="replace")
        except LookupError:  # a charset Python does not know: guessed like an undeclared one
            pass
    # As a text file's: charset-normalizer, Windows-1252 among equals (a Spanish mail's
    # "información" in Latin-1).
    return payload.decode(sniff_encoding(payload[:65536]), errors="replace")


def _msg_header(message: Any, key: str) -> str:
    """A field of the .msg's saved transport headers (the sent date lives there when the
    delivery-time property is absent)."""
    try:
        return str(message.header.get(key) or "")
    except Exception:  # noqa: BLE001 - no or broken headers: the field is simply unknown
        return ""


def extract_msg(path: Path, options: ExtractOptions = ExtractOptions(),
                read_attachment: AttachmentReader | None = None, depth: int = 0
                ) -> Iterator[Section]:
    """An Outlook .msg (an OLE2 compound file), by extract-msg."""
    import extract_msg as reader

    try:
        message: Any = reader.openMsg(str(path), delayAttachments=False)
    except Exception as exc:  # extract-msg raises its own kinds for non-mail OLE files
        raise _fail(f"the file is not a readable Outlook message ({type(exc).__name__}: "
                    f"{exc})") from None
    try:
        kind = str(getattr(message, "classType", "") or "").upper()
        names = [str(getattr(a, "longFilename", "") or getattr(a, "shortFilename", "") or "")
                 for a in getattr(message, "attachments", [])]
        if kind.startswith("IPM.NOTE.SMIME") and "MULTIPARTSIGNED" not in kind or any(
                n.lower() == "smime.p7m" for n in names):
            raise _fail("the mail is encrypted (S/MIME); its text cannot be read without the key")
        headers = {"Subject": message.subject or "", "From": message.sender or "",
                   "To": message.to or "", "Cc": message.cc or "",
                   "Date": str(message.date or _msg_header(message, "Date"))}
        try:  # extract-msg builds it from the RTF body, in the code page the mail names
            html_body = getattr(message, "htmlBody", None)
        except (UnicodeDecodeError, LookupError, ValueError):
            html_body = None  # the plain body is read instead
        html = html_body.decode("utf-8", errors="replace") if isinstance(
            html_body, bytes) else None
        attachments: list[tuple[str, bytes]] = []
        for attachment in getattr(message, "attachments", [])[:MAX_ATTACHMENTS]:
            data = getattr(attachment, "data", None)
            name = (getattr(attachment, "longFilename", None)
                    or getattr(attachment, "shortFilename", None)
                    or f"attachment-{len(attachments) + 1}")
            if isinstance(data, bytes):
                attachments.append((str(name), data))
        sections = list(mail_sections(headers, message.body, html, attachments, options,
                                      read_attachment, depth, len(names)))
    finally:
        message.close()
    return iter(sections)
