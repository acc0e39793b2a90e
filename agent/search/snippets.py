"""Snippets: about ``SNIPPET_CHARS`` of a passage around the place where most of the query's
words meet, each matched word marked, the row or the quoted phrase that matched first."""

from __future__ import annotations

import re
from collections.abc import Sequence

from agent.pipeline.store.index import STOPWORDS

SNIPPET_CHARS = 240
MARK = "**"  # matched words in snippets are wrapped in this (Markdown bold)
_WORD = re.compile(r"\w+")
_QUOTED = re.compile(r'"([^"]*\w[^"]*)"|“([^”]*\w[^”]*)”')


def quoted_phrases(query: str) -> list[str]:
    """The phrases a query puts in double quotes ("…" or “…”), to be found as written."""
    return [" ".join((a or b).split()) for a, b in _QUOTED.findall(query)]


def query_terms(query: str) -> list[str]:
    """The lowercase words of the query that carry meaning (all of them if all are common)."""
    words = [w.lower() for w in _WORD.findall(query)]
    content = [w for w in words if w not in STOPWORDS]
    return content or words


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s", "ly"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def make_snippet(text: str, query: str, width: int = SNIPPET_CHARS) -> str:
    """About ``width`` characters of ``text`` around the place where most query words meet,
    each matched word wrapped in ``MARK``; the text's start when no word matches."""
    stems = {_stem(t) for t in query_terms(query)}
    literal = quoted_phrases(query) + [
        w for w in (w.strip('"“”') for w in query.split()) if not _WORD.fullmatch(w) and len(w) > 2]
    spans: list[tuple[int, int, str]] = []
    lowered = text.lower()
    for phrase in literal:  # identifiers as pasted (os.replace, --dry-run) first
        start = lowered.find(phrase.lower())
        while start != -1 and len(spans) < 200:
            spans.append((start, start + len(phrase), phrase.lower()))
            start = lowered.find(phrase.lower(), start + len(phrase))
    for match in _WORD.finditer(text):
        if len(spans) >= 400:
            break
        stem = _stem(match.group().lower())
        if stem in stems and not any(s <= match.start() < e for s, e, _ in spans):
            spans.append((match.start(), match.end(), stem))
    spans.sort()
    start = 0
    if spans:  # from the start of the line the best match is on (a table's row), if near
        at = _best_window(spans, width)
        line = text.rfind("\n", 0, at) + 1
        start = line if at - line <= width // 2 else max(0, at - width // 5)
    end = min(len(text), start + width)
    if start > 0 and text[start - 1] != "\n":
        cut = text.rfind(" ", max(0, start - 20), start)
        start = cut + 1 if cut != -1 else start
    if end < len(text):
        cut = text.find(" ", end, min(len(text), end + 20))
        end = cut if cut != -1 else end
    pieces: list[str] = []
    at = start
    for s, e, _ in spans:
        if s < at or e > end:
            continue
        pieces += [text[at:s], MARK, text[s:e], MARK]
        at = e
    pieces.append(text[at:end])
    snippet = " ".join("".join(pieces).split())
    return ("…" if start > 0 else "") + snippet + ("…" if end < len(text) else "")


def _best_window(spans: Sequence[tuple[int, int, str]], width: int) -> int:
    """Where the window of ``width`` that covers the most distinct matched words starts; of
    those, the one whose words stand closest together (the row that names them all)."""
    best, best_spread, best_start = -1, 0, 0
    for i, (s, _, _) in enumerate(spans):
        seen: set[str] = set()
        spread = 0
        for _, e, w in spans[i:]:
            if e > s + width:
                break
            if w not in seen:
                seen.add(w)
                spread = e - s
        if len(seen) > best or (len(seen) == best and spread < best_spread):
            best, best_spread, best_start = len(seen), spread, s
    return best_start
