"""Text for a terminal: what a document says is shown, never obeyed (escape sequences, bidi
overrides), whether it goes to the CLI's output or to the console log."""

from __future__ import annotations

import re

# What a terminal would act on rather than show: C0 and C1 controls (ESC starts the sequences
# that clear the screen or set the window title), and the invisible format characters that
# reorder or hide text (bidirectional overrides, zero-width marks, line separators).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e"
                     "\u2028\u2029\u2060-\u2064\u2066-\u2069\ufeff]")
_LINE_BREAKS = re.compile("[\t\n\r\x0b\x0c\u2028\u2029]+")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_text(text: str) -> str:
    """``text`` safe to print to a terminal: controls shown as ``\\x1b``, never sent as such.

    Line breaks and tabs are kept: the output's own lines are made of them."""
    return _UNSAFE.sub(_escaped, text)


def one_line(text: str) -> str:
    """A field of a document (snippet, heading) on one line, safe for a terminal."""
    return terminal_text(_LINE_BREAKS.sub(" ", text))
