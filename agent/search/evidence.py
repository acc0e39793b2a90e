"""What a search's answer is judged on, and the rule that says "no good answer".

Never hide what is there: a query whose content words all occur in one passage is answered,
whatever its cosine — one word, a name, an identifier, a heading, a table row's values, a
sentence copied with a word left out — and so is a long query a passage holds nearly word for
word (a sentence with one word changed). The refusal is kept for what the index cannot answer:
a question whose words no passage holds together, whose meaning is not close to any passage.
(Calibrated by ``benchmarks/refusal_bench.py`` on questions, off-topic questions and queries
copied from real documents.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from agent.pipeline.store.index import STOPWORDS

MAX_WORDS = 12  # content words of a query that are weighed
COPIED_WORDS = 5  # a query this long that a passage holds all but one word of, in order, is a copy
_TOKEN = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class Evidence:
    """How well the best result answers the query, from both sides of the search: what the
    refusal decides on (a cosine alone answers "capital of Mongolia" with a line in Mon)."""

    similarity: float | None  # its cosine with the query (None in lexical mode)
    coverage: float  # share of the query's content words its passage holds (heading and text)
    known: float  # share of them that occur anywhere in the index
    together: bool  # the query's words stand together in it (a quoted phrase, a figure's row)
    held: int = 0  # how many of the query's content words its passage holds
    words: int = 0  # how many content words the query has (at most MAX_WORDS)
    run: int = 0  # the most query words its passage holds in order (``in_order``)
    length: int = 0  # how many words (all of them) the query has

    @property
    def holds_every_word(self) -> bool:
        return self.words > 0 and self.held == self.words

    @property
    def copied(self) -> bool:
        """A query of ``COPIED_WORDS`` or more its passage holds word for word but one: every
        word in order, one of them changed, left out or added."""
        return self.length >= COPIED_WORDS and self.run >= self.length - 1

    def to_dict(self) -> dict[str, Any]:
        return {"similarity": None if self.similarity is None else round(self.similarity, 4),
                "coverage": round(self.coverage, 3), "known": round(self.known, 3),
                "together": self.together, "held": self.held, "words": self.words,
                "run": self.run, "length": self.length}


def answers(evidence: Evidence, alone: float, with_words: float, coverage: float) -> bool:
    """Whether the best result answers the query: its passage holds every content word of the
    query, or a long query nearly word for word, or the words together as asked; else its
    cosine is high on its own (``alone``), or fair (``with_words``) with enough of the words
    (``coverage``). Lexical search (no cosine) answers whatever it finds."""
    if evidence.together or evidence.similarity is None:
        return True
    if evidence.holds_every_word or evidence.copied:
        return True
    if evidence.similarity >= alone:
        return True
    return evidence.similarity >= with_words and evidence.coverage >= coverage


def refusal_note(evidence: Evidence, file: str, alone: float, with_words: float,
                 coverage: float, query: str = "") -> str:
    """Why the best result does not answer, of that result, in the terms the rule uses."""
    cosine = evidence.similarity or 0.0
    if query and not any(ch.isalnum() for ch in query):  # "________", "→"
        held = (f"no passage holds the query character for character (it has no letter or "
                f"digit for the full-text index to match); the best match by meaning is {file}")
    elif evidence.known == 0:
        held = f"no passage holds any word of the query; the best match by meaning is {file}"
    else:
        held = (f"no passage holds every word of the query; the best match ({file}) holds "
                f"{evidence.held} of its {evidence.words}")
    if cosine >= with_words:
        why = (f"and its meaning is only fairly close (cosine {cosine:.2f}, under "
               f"search.answer_similarity = {alone:g}, with {evidence.coverage:.0%} of the "
               f"words, under search.min_coverage = {coverage:g})")
    else:
        why = (f"and its meaning is not close (cosine {cosine:.2f}, under "
               f"search.min_similarity = {with_words:g})")
    return f"{held}, {why}"


def content_words(query: str) -> list[str]:
    """The query's whitespace-separated words that are not common English words, as typed
    (``os.replace``, ``SNB22-3`` and ``3318`` stay whole), each once, at most ``MAX_WORDS``."""
    words = [w.strip(".,;:!?()[]{}'\"“”") for w in query.split()]
    return _once([w for w in words if _TOKEN.search(w) and w.lower() not in STOPWORDS])


def weighed_words(query: str) -> list[str]:
    """The words a passage is judged to hold: the content words, or every word of a query
    made of common words only ("to be or not to be")."""
    return content_words(query) or _once([w.strip(".,;:!?()[]{}'\"“”") for w in query.split()
                                          if _TOKEN.search(w)])


def _once(words: list[str]) -> list[str]:
    """Each word once (case aside), in order, at most ``MAX_WORDS``."""
    first: dict[str, str] = {}
    for word in words:
        first.setdefault(word.lower(), word)
    return list(first.values())[:MAX_WORDS]


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def in_order(query: str, text: str) -> int:
    """The most words of ``query`` that ``text`` holds in a row, in the query's order (case
    aside), one edit allowed on the way: a word changed, left out or added. A sentence copied
    with one word changed scores all its words but that one; a question that shares a phrase
    with a passage ("can be used in a with statement") scores the phrase alone."""
    wanted = tokens(query)
    if not wanted:
        return 0
    where: dict[str, list[int]] = {}
    for position, token in enumerate(tokens(text)):
        where.setdefault(token, []).append(position)
    best = 0
    # alignments ending at a text position: with no edit yet, and with the one edit used
    exact: dict[int, int] = {}
    edited: dict[int, int] = {}
    exact_before: dict[int, int] = {}  # ``exact`` one query word back (that word changed/left)
    for token in wanted:
        now_exact: dict[int, int] = {}
        now_edited: dict[int, int] = {}
        for p in where.get(token, ()):
            now_exact[p] = exact.get(p - 1, 0) + 1
            now_edited[p] = 1 + max(
                edited.get(p - 1, 0),  # after the edit, word for word again
                exact_before.get(p - 1, 0),  # the query's last word is not in the text
                exact.get(p - 2, 0),  # the text has a word the query lacks
                exact_before.get(p - 2, 0))  # a word changed for another
            best = max(best, now_exact[p], now_edited[p])
        exact_before, exact, edited = exact, now_exact, now_edited
    return best


def holds_as_typed(words: list[str], text: str) -> bool:
    """Whether ``text`` holds every one of ``words`` as typed (case aside), not only another
    form of it the stemmer matches ("extractable", not just "extract")."""
    held = set(tokens(text))
    return all(token in held for word in words for token in tokens(word))


def closest_span(words: list[str], text: str) -> int:
    """The fewest tokens of ``text`` that hold a form of every one of ``words`` (each word's
    first token, matched on its first five letters, as a stemmer would roughly): how close
    together the words stand. A large number when some word is not there."""
    keys = [(tokens(w) or [w.lower()])[0][:5] for w in words]
    if not keys:
        return 0
    where = [(i, token[:5]) for i, token in enumerate(tokens(text))]
    wanted = set(keys)
    best = 1 << 30
    last: dict[str, int] = {}
    for position, prefix in where:
        if prefix in wanted:
            last[prefix] = position
            if len(last) == len(wanted):
                best = min(best, position - min(last.values()) + 1)
    return best
