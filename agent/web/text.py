"""Text as the page shows it: never markup, never a control sequence, query words marked."""

from __future__ import annotations

import re
import time

# C0 controls but tab and newline, DEL, C1 controls, and the bidirectional overrides that can
# make a file name read backwards: each is shown as a visible mark instead.
_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def visible(text: object) -> str:
    """``text`` with control characters shown (ESC as ␛), so terminal escapes in a document or a
    file name render as text, not as behaviour; the template escapes it as HTML besides."""
    def picture(match: re.Match[str]) -> str:
        code = ord(match.group())
        if code < 0x20:
            return chr(0x2400 + code)
        return "\u2421" if code == 0x7f else f"<U+{code:04X}>"

    return _INVISIBLE.sub(picture, "" if text is None else str(text))


def marked(snippet: str) -> list[tuple[str, bool]]:
    """A search snippet cut into (part, is a matched word) pieces: the search wraps matched
    words in ``MARK`` (Markdown bold); the page shows them in ``<mark>`` instead."""
    from agent.search.snippets import MARK

    pieces: list[tuple[str, bool]] = []
    for n, part in enumerate(snippet.split(MARK)):
        if part:
            pieces.append((visible(part), n % 2 == 1))
    return pieces


def when(epoch: float | None) -> str:
    """An epoch time as the page shows it (UTC, to the second)."""
    if epoch is None:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def size(n: int | None) -> str:
    if n is None:
        return "—"
    if n < 1024:
        return f"{n:,} bytes"
    scaled, unit = n / 1024, "KB"
    for bigger in ("MB", "GB"):
        if scaled < 1024:
            break
        scaled, unit = scaled / 1024, bigger
    return f"{scaled:.1f} {unit}"
