"""File names as users' systems write them: any bytes, shown safely, stored losslessly.

Linux file names are bytes. Python hands names that are not valid UTF-8 over as ``str`` with
lone surrogates (PEP 383), which SQLite, Redis, Postgres and JSON files cannot hold as text.
``encode_name`` turns any such name into valid text and ``decode_name`` gives the exact name
back; ``display_name`` is what people see (``bad\\xff.txt``). ``safe_filename`` is the only way
a name the agent did not choose becomes a name it writes.
"""

from __future__ import annotations

import re
import unicodedata

MAX_NAME_BYTES = 200  # leaves room for a collision suffix and ".error.json" within NAME_MAX=255
NAME_MAX = 255  # bytes in one path component (Linux file systems)
_ESCAPED = re.compile(r"\\(\\|x[0-9a-f]{2}|u[0-9a-f]{4})")
# Categories never kept in a name the agent writes: controls (Cc), format characters such as
# bidirectional overrides and zero-width marks (Cf), line and paragraph separators (Zl, Zp).
_INVISIBLE = frozenset({"Cc", "Cf", "Zl", "Zp"})


def _is_escaped_byte(char: str) -> bool:
    return "\udc80" <= char <= "\udcff"


def encode_name(name: str) -> str:
    """Valid UTF-8 text for any name; unchanged unless it holds undecodable bytes or ``\\``."""
    if "\\" not in name:
        try:
            name.encode("utf-8")
            return name
        except UnicodeEncodeError:
            pass
    out = []
    for char in name:
        if char == "\\":
            out.append("\\\\")
        elif _is_escaped_byte(char):
            out.append(f"\\x{ord(char) - 0xDC00:02x}")
        elif "\ud800" <= char <= "\udfff":
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return "".join(out)


def decode_name(text: str) -> str:
    """The exact name ``encode_name`` was given (text without ``\\`` is returned as it is)."""
    if "\\" not in text:
        return text

    def unescape(match: re.Match[str]) -> str:
        body = match.group(1)
        if body == "\\":
            return "\\"
        if body[0] == "x":
            return chr(0xDC00 + int(body[1:], 16))
        return chr(int(body[1:], 16))

    return _ESCAPED.sub(unescape, text)


def decode_optional(text: str | None) -> str | None:
    return None if text is None else decode_name(text)


def display_name(name: str) -> str:
    """How a name is shown: undecodable bytes as ``\\xff``, invisible characters as ``\\u202e``."""
    try:
        name.encode("utf-8")
        plain = name
    except UnicodeEncodeError:
        plain = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if not any(unicodedata.category(c) in _INVISIBLE for c in plain):
        return plain
    return "".join(c.encode("unicode_escape").decode("ascii")
                   if unicodedata.category(c) in _INVISIBLE else c for c in plain)


def strip_invisible(name: str) -> str:
    """Drop control, format (bidirectional, zero-width) and separator characters."""
    if name.isascii() and name.isprintable():
        return name
    return "".join(c for c in name if unicodedata.category(c) not in _INVISIBLE
                   and not ("\ud800" <= c <= "\udfff" and not _is_escaped_byte(c)))


def safe_filename(name: str, fallback: str = "file") -> str:
    """A name to write: no path parts, no invisible characters, at most ``MAX_NAME_BYTES``.

    Undecodable bytes are kept (the file keeps its name on disk); only what would mislead or
    break a reader goes.
    """
    name = unicodedata.normalize("NFC", name)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = strip_invisible(name).strip().lstrip(".")
    if not name or name in {".", ".."}:
        name = fallback
    stem, dot, ext = name.rpartition(".") if "." in name else (name, "", "")
    if _name_bytes(ext) > 16 or not stem:
        stem, dot, ext = name, "", ""
    stem = _truncate(stem, MAX_NAME_BYTES - _name_bytes(dot + ext))
    return (stem or fallback) + dot + ext


def _name_bytes(text: str) -> int:
    return len(text.encode("utf-8", "surrogateescape"))


def _truncate(text: str, budget: int) -> str:
    """The longest prefix of whole characters that fits in ``budget`` bytes on disk."""
    if _name_bytes(text) <= budget:
        return text
    out, used = [], 0
    for char in text:
        used += _name_bytes(char)
        if used > budget:
            break
        out.append(char)
    return "".join(out)


def fit_name(name: str, max_bytes: int) -> str:
    """``name`` in at most ``max_bytes`` of UTF-8: unchanged when it fits, else its start, a
    hash of the whole (so two long names stay apart) and its extension (which readers go by):
    ``Отчёт за…~3f9a1c2e.pdf``. For names the agent writes from a shown form, whose escapes
    (``\\xff`` for each undecodable byte) can make it four times its bytes on disk."""
    import hashlib

    encoded = name.encode("utf-8", "surrogatepass")
    if len(encoded) <= max_bytes:
        return name
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem or len(suffix.encode("utf-8", "surrogatepass")) > 16 or "\\" in suffix:
        stem, suffix = name, ""
    tail = f"~{hashlib.sha256(encoded).hexdigest()[:8]}" + (f".{suffix}" if suffix else "")
    room = max_bytes - len(tail.encode("utf-8"))
    head = stem.encode("utf-8", "surrogatepass")[:room].decode("utf-8", "ignore")
    return head + tail
