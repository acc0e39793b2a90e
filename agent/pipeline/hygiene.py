"""One cleaning step every reader's text passes through before it is spooled, chunked and
indexed: characters a reader hands over that no person sees as text are taken out, so words
are stored as they are read and can be found.

- Unicode NFC (a decomposed "é" is the "é" people type);
- pdfium's line-end hyphenation marks (U+0002, U+FFFE) and soft hyphens (U+00AD) joined into
  the word (``ef\\x02ficient`` → ``efficient``), except between a letter and a digit or capital
  (``Lucene\\x02BM25`` keeps its hyphen: a compound, not a syllable break);
- spacing accents a PDF draws apart (``prote´ge´``, ``J ´ egou``, ``Oguz ˘``) put back on their
  letter when they make a Latin letter (``protégé``, ``Jégou``); orphans dropped;
- line ends as ``\\n`` (a lone carriage return too); other C0/C1 controls but tab removed,
  and private-use symbols dropped; either at the start of a line (a font's bullet) becomes
  "•".

Right-to-left text is left in the order its reader gives (a known gap).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import replace
from typing import Any

HYPHEN_MARKS = "\x02\ufffe\u00ad"
SPACING_ACCENTS = {"\u00b4": "\u0301", "`": "\u0300", "\u00a8": "\u0308", "\u02c6": "\u0302",
                   "\u02dc": "\u0303", "\u00b8": "\u0327", "\u02c7": "\u030c", "\u02d8": "\u0306",
                   "\u02da": "\u030a", "\u02dd": "\u030b", "\u02d9": "\u0307", "\u02db": "\u0328"}
# Accents that also stand for an apostrophe or a quote (``don´t``) make only Latin-1 letters;
# the rest (``Oğuz``, ``Škoda``) also the letters of Latin Extended-A.
APOSTROPHE_LIKE = "\u00b4`\u00a8\u02c6\u02dc\u00b8"
_SUSPECT = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u00b4\u00a8\u00b8\u02c6-\u02dd`\ue000-\uf8ff"
    "\ufffe\uffff\u0300-\u036f]")
_HYPHEN = re.compile(f"(?P<left>\\w?)[{HYPHEN_MARKS}][ \\t]*\\n?[ \\t]*(?P<right>\\w?)")
_BULLET = re.compile("(?m)^([ \\t]*)[\x01-\x08\x0b-\x1f\x7f-\x9f\ue000-\uf8ff](?=[ \\t])")
_DROPPED = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ue000-\uf8ff\ufffe\uffff]")
_ACCENT_AFTER = re.compile(f"(?P<letter>[A-Za-z])(?P<accent>[{''.join(SPACING_ACCENTS)}])")
_ACCENT_APART = re.compile(
    f"(?P<accent>[{''.join(SPACING_ACCENTS)}]) ?(?P<letter>[A-Za-z])")
_ORPHAN_ACCENT = re.compile(f"(?<![A-Za-z])[{''.join(SPACING_ACCENTS)}](?![A-Za-z])")


def clean_text(text: str) -> str:
    """``text`` with the rules above applied; text with nothing to clean is returned as is."""
    if not _SUSPECT.search(text):
        return text
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # a line end, not a control
    text = _HYPHEN.sub(_join, text)
    text = _BULLET.sub(r"\1•", text)
    text = _DROPPED.sub("", text)
    text = _ACCENT_AFTER.sub(lambda m: _accented(m["letter"], m["accent"]) or m[0], text)
    text = re.sub(r"(?<=[A-Za-z]) (?=[" + "".join(SPACING_ACCENTS) + r"] ?[A-Za-z])", "",
                  text)  # "J ´ egou": the accent drawn apart, with the spaces around it
    text = _ACCENT_APART.sub(lambda m: _accented(m["letter"], m["accent"]) or m[0], text)
    text = _ORPHAN_ACCENT.sub("", text)
    return unicodedata.normalize("NFC", text)


def clean_section(section: Any) -> Any:
    """A reader's section with its text (and heading path) cleaned; the offsets of its
    sub-headings (``marks``) are moved with the text."""
    text, marks = section.text, section.marks
    if not _SUSPECT.search(text) and not any(_SUSPECT.search(p) for p in section.path):
        return section
    if marks:
        cuts = [at for at, _ in marks]
        pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        cleaned = [clean_text(piece) for piece in pieces]
        offsets, at = [], 0
        for piece in cleaned[:-1]:
            at += len(piece)
            offsets.append(at)
        marks = tuple((offset, tuple(clean_text(p) for p in path))
                      for offset, (_, path) in zip(offsets, marks, strict=True))
        text = "".join(cleaned)
    else:
        text = clean_text(text)
    return replace(section, text=text, marks=marks,
                   path=tuple(clean_text(part) for part in section.path))


def _join(match: re.Match[str]) -> str:
    left, right = match["left"], match["right"]
    if not left or not right:
        return left + right  # a mark with no word on one side: dropped
    compound = left.isdigit() or right.isdigit() or right.isupper() and not left.isupper()
    return f"{left}-{right}" if compound else left + right


def _accented(letter: str, accent: str) -> str:
    """The accented letter ``letter`` and ``accent`` make, or "" when there is none."""
    composed = unicodedata.normalize("NFC", letter + SPACING_ACCENTS[accent])
    last = "\u00ff" if accent in APOSTROPHE_LIKE else "\u017f"
    return composed if len(composed) == 1 and "\u00c0" <= composed <= last else ""
