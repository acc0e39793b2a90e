"""Queries copied from documents (issue 40): what a user types when they know the words are
there — a single word, a name, an identifier, a heading, a table row's values, a sentence with
one word left out or changed. Search must answer every one, with the right document first.

The sets are drawn once from an index the agent built, with a fixed seed, and committed (so
they are written before any change they judge):

    python benchmarks/exact_queries.py INDEX.db --prefix unstructured_ --out exact_mixed.tsv
    python benchmarks/exact_queries.py FULL.db --out exact_docs.tsv        # retrieval_bench's

Each line: kind, query, the gold documents (every indexed document holding the copied text,
``|``-separated). The committed sets were drawn when a row's gold was the documents holding
its line and a heading's those holding it in their text; both were widened afterwards to the
definition above (a row's values as words, a heading as a heading), the queries unchanged
(drawn again today, this code would keep headings it then dropped for want of gold).
Even positions are the development half, odd ones the held-out half
(``halves``), within each kind.
"""

from __future__ import annotations

import argparse
import random
import re
import sqlite3
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.pipeline.store.index import STOPWORDS  # noqa: E402

KINDS = ("word", "name", "identifier", "heading", "row", "sentence")
SEED = 40
_WORD = re.compile(r"\w+")
_LOWER_WORD = re.compile(r"[a-z]{5,15}")
_NAME = re.compile(r"[A-Z][a-z]{3,14}")
_CODE = re.compile(r"[A-Za-z_][\w.]*(?:_\w|\.[A-Za-z_]|[a-z][A-Z])[\w.]*(?:\(\))?")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
HEADING_SEPARATOR = " › "
CELL_SEPARATOR = " · "


@dataclass(frozen=True)
class Query:
    kind: str
    text: str
    gold: tuple[str, ...]

    def line(self) -> str:
        return f"{self.kind}\t{self.text}\t{'|'.join(self.gold)}"


def load(path: Path) -> list[Query]:
    """A committed set, in file order."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            kind, text, gold = line.split("\t")
            out.append(Query(kind, text, tuple(gold.split("|"))))
    return out


def halves(queries: list[Query]) -> dict[str, list[Query]]:
    """Development (even positions) and held-out (odd) halves, within each kind."""
    out: dict[str, list[Query]] = {"dev": [], "held-out": []}
    for kind in KINDS:
        mine = [q for q in queries if q.kind == kind]
        out["dev"] += mine[0::2]
        out["held-out"] += mine[1::2]
    return out


class Corpus:
    """The documents of an index as the agent read them: their chunks' text and headings."""

    def __init__(self, index: Path) -> None:
        db = sqlite3.connect(f"file:{index}?mode=ro", uri=True)
        rows = db.execute("SELECT d.source_name, c.text, c.heading FROM chunks c JOIN documents d "
                          "ON d.id = c.document_id ORDER BY d.source_name, c.ordinal")
        self.text: dict[str, str] = defaultdict(str)
        self.headings: dict[str, set[str]] = defaultdict(set)
        for name, text, heading in rows:
            self.text[name] += "\n" + text
            if heading:
                self.headings[name].add(heading.split(HEADING_SEPARATOR)[-1].strip())
        db.close()
        self.folded = {name: " ".join(text.lower().split()) for name, text in self.text.items()}
        self.words = {name: set(_WORD.findall(text.lower())) for name, text in self.text.items()}
        self.spoken = {name: " " + " ".join(_WORD.findall(text.lower())) + " "
                       for name, text in self.text.items()}
        self.df = Counter(w for words in self.words.values() for w in words)
        self.tokens = {name: {t.strip(".,;:!?()[]{}'\"“”") for t in text.split()}
                       for name, text in self.text.items()}
        self.lowercase = {w for text in self.text.values() for w in re.findall(r"\b[a-z]+\b", text)}
        self.vocabulary = sorted(w for w, n in self.df.items()
                                 if _LOWER_WORD.fullmatch(w) and w not in STOPWORDS)

    def holding_words(self, phrase: str) -> tuple[str, ...]:
        """Every document whose words hold ``phrase``'s words in a row (punctuation aside)."""
        wanted = " " + " ".join(_WORD.findall(phrase.lower())) + " "
        return tuple(sorted(name for name, text in self.spoken.items() if wanted in text))

    def holding(self, phrase: str) -> tuple[str, ...]:
        """Every document whose text holds ``phrase`` (case and spacing aside)."""
        folded = " ".join(phrase.lower().split())
        return tuple(sorted(name for name, text in self.folded.items() if folded in text))


def draw(corpus: Corpus, names: list[str], per_kind: int, seed: int = SEED) -> list[Query]:
    """Up to ``per_kind`` queries of each kind, each from a different document where the
    documents allow, in a fixed order."""
    rng = random.Random(seed)
    out: list[Query] = []
    for kind in KINDS:
        pick = globals()[f"_{kind}"]
        order = names[:]
        rng.shuffle(order)
        found: list[Query] = []
        seen: set[str] = set()
        used: Counter[str] = Counter()
        for rounds in range(3):  # a document gives a second query only when others ran out
            for name in order:
                if len(found) >= per_kind:
                    break
                if used[name] > rounds:
                    continue
                query = pick(corpus, name, rng)
                if query is not None and query.text.lower() not in seen:
                    seen.add(query.text.lower())
                    found.append(query)
                    used[name] += 1
        out += found
    return out


def _word(corpus: Corpus, name: str, rng: random.Random) -> Query | None:
    """A lowercase word only this document holds."""
    choices = sorted(w for w in corpus.words[name] if corpus.df[w] == 1
                     and _LOWER_WORD.fullmatch(w) and w not in STOPWORDS
                     and re.search(rf"\b{w}\b", corpus.text[name]))
    return Query("word", rng.choice(choices), (name,)) if choices else None


def _name(corpus: Corpus, name: str, rng: random.Random) -> Query | None:
    """A capitalised word only this document holds and that is never written in lowercase
    anywhere (a person's or place's name), inside a sentence; sometimes with the next one."""
    text = corpus.text[name]
    found = []
    for match in re.finditer(rf"(?<=[a-z,;] )({_NAME.pattern})(?: ({_NAME.pattern}))?", text):
        first = match.group(1)
        lower = first.lower()
        if corpus.df[lower] == 1 and lower not in STOPWORDS and lower not in corpus.lowercase:
            found.append(match.group(0) if match.group(2) and rng.random() < 0.5 else first)
    found = sorted(set(found))
    if not found:
        return None
    chosen = rng.choice(found)
    return Query("name", chosen, corpus.holding(chosen))


def _identifier(corpus: Corpus, name: str, rng: random.Random) -> Query | None:
    """A code-shaped token (dotted, snake_case, camelCase) at most two documents hold."""
    choices = sorted(t for t in corpus.tokens[name] if _CODE.fullmatch(t) and len(t) >= 5
                     and not t.replace(".", "").isdigit() and "http" not in t.lower()
                     and sum(t in tokens for tokens in corpus.tokens.values()) <= 2)
    if not choices:
        return None
    chosen = rng.choice(choices)
    return Query("identifier", chosen, corpus.holding(chosen))


def _heading(corpus: Corpus, name: str, rng: random.Random) -> Query | None:
    """A section heading of this document, of two to ten words."""
    choices = sorted(h for h in corpus.headings[name] if 2 <= len(h.split()) <= 10
                     and len(h) >= 8 and not h.lower().startswith(("sheet:", "slide ", "page "))
                     and len(corpus.holding(h)) <= 3)
    if not choices:
        return None
    chosen = rng.choice(choices)  # the documents holding it in their text or as a heading
    return Query("heading", chosen, tuple(sorted({
        *corpus.holding(chosen), *(name for name, heads in corpus.headings.items()
                                   if chosen in heads)})))


def _row(corpus: Corpus, name: str, rng: random.Random) -> Query | None:
    """A table row's values in order, without the column names the index writes between them
    (at most four cells, two to twelve words, not all figures)."""
    rows = []
    for line in corpus.text[name].splitlines():
        if CELL_SEPARATOR not in line:
            continue
        values = [part.split(": ", 1)[-1].strip() for part in line.split(CELL_SEPARATOR)][:4]
        text = " ".join(v for v in values if v)
        words = text.split()
        if len(values) >= 2 and 2 <= len(words) <= 12 and any(
                re.search(r"[A-Za-z]{3}", v) for v in values):
            rows.append((text, line))
    rows = sorted(set(rows))
    if not rows:
        return None
    text, line = rng.choice(rows)  # the documents holding the row, or its values as words
    return Query("row", text, tuple(sorted({*corpus.holding(line), *corpus.holding_words(text)})))


def _sentence(corpus: Corpus, name: str, rng: random.Random) -> Query | None:
    """A sentence of 8 to 20 words with one word left out or changed for another."""
    sentences = sorted({" ".join(s.split()) for s in _SENTENCE_END.split(corpus.text[name])
                        if 8 <= len(s.split()) <= 20 and "\n" not in s.strip()
                        and CELL_SEPARATOR not in s})
    if not sentences:
        return None
    original = rng.choice(sentences)
    words = original.split()
    inner = [i for i in range(1, len(words) - 1) if words[i].isalpha()
             and words[i].lower() not in STOPWORDS]
    if not inner:
        return None
    at = rng.choice(inner)
    if rng.random() < 0.5:
        del words[at]
    else:
        words[at] = rng.choice(corpus.vocabulary)
    return Query("sentence", " ".join(words), corpus.holding(original))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("index", type=Path, help="an index.db the agent built")
    parser.add_argument("--prefix", default="", help="draw from documents named so only")
    parser.add_argument("--per-kind", type=int, default=36)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    corpus = Corpus(args.index)
    names = sorted(n for n in corpus.text if n.startswith(args.prefix))
    queries = [q for q in draw(corpus, names, args.per_kind) if q.gold]
    header = (f"# {len(queries)} queries copied from {len(names)} documents of {args.index.name}"
              f" (prefix {args.prefix!r}, seed {SEED}): kind, query, gold documents\n")
    args.out.write_text(header + "\n".join(q.line() for q in queries) + "\n", encoding="utf-8")
    counts = Counter(q.kind for q in queries)
    print(f"{len(queries)} queries: " + ", ".join(f"{counts[k]} {k}" for k in KINDS))


if __name__ == "__main__":
    main()
