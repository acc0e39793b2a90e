"""Search: vector, lexical or both fused, one result per document, with a relevance floor.

The index gives candidates from each side (cosine over the vectors; BM25-like full-text over
heading and text); hybrid mode fuses their ranks by reciprocal rank fusion (RRF, k = 60), which
needs no score calibration between the two. With one result per document (the default), a
document ranks by its best chunk and, fused the same way at lower weights, by how close the
whole document (the mean of its vectors) and its opening (first chunk) are to the question —
unless the query is one code-shaped token (``O_NONBLOCK``, ``os.replace``, ``getLogger``): a
pasted name is found where it stands, and what a page is about says nothing of that. The
passages holding a one-word query, or a short query whose words are rare in the index (a name,
a row's values, a heading), rank first, the closest together first, and a long query's
passages it was copied from. The passage the whole ranking puts first is judged
(``search_evidence.answers``): it answers when it holds the query's words, or is close enough
in meaning; a question whose words another passage holds together is answered with that one.
When nothing answers, the response says the index has no good answer (``answered`` false) and
why, of the passage judged, rather than returning confident-looking noise. The relevance
floor (``search.min_similarity``) trims what is shown. The CLI, the HTTP API and the agent's
local search socket all speak this module's request and response.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.config.settings import Settings
from agent.errors import SearchUsageError
from agent.files.names import display_name
from agent.formats import SHORT_TYPES
from agent.pipeline.store.backends import open_index
from agent.pipeline.store.index import NO_FILTER, SearchFilter, StoredChunk
from agent.search.evidence import (
    COPIED_WORDS,
    Evidence,
    answers,
    closest_span,
    content_words,
    holds_as_typed,
    in_order,
    refusal_note,
    tokens,
    weighed_words,
)
from agent.search.options import MODES, Mode
from agent.search.snippets import make_snippet, quoted_phrases

__all__ = ["Evidence", "SearchRequest", "SearchResponse", "SearchResult", "Searcher",
           "SharedSearcher", "answers", "content_words", "mime_types"]

RRF_K = 60
NEAR_COPY_CANDIDATES = 50  # the lexical side's best, searched for a copy with a word changed
EXACT_MAX_WORDS = 8  # a query this short whose words one passage holds is an exact hit …
RARE_IDF = 7.0  # … when its words are this rare together (summed ln(chunks / chunks with it))
WHOLE_DOCUMENT_WEIGHT = 0.5  # RRF weight of the ranking by the document's mean vector
OPENING_WEIGHT = 0.25  # RRF weight of the ranking by the document's first chunk
_CODE_SHAPE = re.compile(r"[_.:()]|[a-z][A-Z]|^-")  # dotted, snake_case, call(), camelCase, --flag
_ALL_CAPS = re.compile(r"[A-Z][A-Z0-9]{2,}")
NEAR_GAP = 3  # query words count as standing together with this many other words between each
_FIGURE = re.compile(r"\d")
QUESTION_WORDS = frozenset({"what", "when", "where", "who", "whom", "whose", "why", "how",
                            "which", "is", "are", "was", "were", "can", "could", "does", "do",
                            "did", "should", "would", "will", "may", "has", "have"})


@dataclass(frozen=True, slots=True)
class SearchRequest:
    query: str
    k: int = 5
    mode: Mode | None = None  # None: the configured default
    per_document: bool = True  # False: every matching chunk (``--chunks``)
    where: SearchFilter = NO_FILTER
    all_copies: bool = False  # True: near-duplicate documents shown apart (``--all-copies``)

    def checked(self) -> SearchRequest:
        if not self.query.strip():
            raise SearchUsageError("the query is empty: say what to search for")
        if self.mode is not None and self.mode not in MODES:
            raise SearchUsageError(f"unknown mode {self.mode!r}: one of {', '.join(MODES)}")
        if not 1 <= self.k <= 1000:
            raise SearchUsageError("k must be between 1 and 1000")
        return self

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchRequest:
        where = SearchFilter(inbox=data.get("inbox"), types=mime_types(data.get("types") or ()),
                             path_glob=data.get("path"), after=data.get("after"),
                             before=data.get("before"))
        return cls(str(data.get("query", "")), int(data.get("k", 5)), data.get("mode"),
                   bool(data.get("per_document", True)), where,
                   bool(data.get("all_copies", False)))


@dataclass(frozen=True, slots=True)
class SearchResult:
    rank: int
    score: float
    similarity: float | None
    matched: tuple[str, ...]  # "vector", "lexical": which sides found it
    chunk: StoredChunk
    snippet: str
    text_limit: int = 4000  # characters of the chunk's text a response carries at most
    also_in: tuple[str, ...] = ()  # near copies of the document, shown as this one result

    def to_dict(self) -> dict[str, Any]:
        c = self.chunk
        return {
            "rank": self.rank, "score": round(self.score, 5),
            "similarity": None if self.similarity is None else round(self.similarity, 4),
            "matched": list(self.matched), "document_id": c.doc_id,
            "file": display_name(c.source_name),
            "location": display_name(c.location) if c.location else None,
            "inbox": c.inbox, "type": c.mime, "heading": c.heading or None, "page": c.page,
            "chunk": c.ordinal, "char_start": c.char_start, "char_end": c.char_end,
            "indexed_at": c.indexed_at, "snippet": self.snippet,
            "text": c.text[:self.text_limit],
            "also_in": [display_name(name) for name in self.also_in],
        }


@dataclass(slots=True)
class SearchResponse:
    query: str
    mode: Mode
    answered: bool
    results: list[SearchResult] = field(default_factory=list)
    note: str | None = None  # why there is no answer, when there is none
    evidence: Evidence | None = None  # of the best result
    measured: StoredChunk | None = None  # the passage the evidence is of (shown first if any)

    def to_dict(self) -> dict[str, Any]:
        return {"query": self.query, "mode": self.mode, "answered": self.answered,
                "note": self.note, "results": [r.to_dict() for r in self.results],
                "evidence": self.evidence.to_dict() if self.evidence else None}


class Searcher:
    """Holds the index (and its vector cache) and, once a vector search needs it, the model."""

    def __init__(self, settings: Settings, *, readonly: bool = False) -> None:
        """``readonly``: a short-lived reader (the CLI) that must create nothing."""
        self.settings = settings
        self.readonly = readonly
        self.index = open_index(settings, readonly=readonly)
        self._embedder: Any = None
        self._model_checked = False

    @property
    def embedder(self) -> Any:
        if self._embedder is None:
            from agent.pipeline.embed import Embedder

            self._embedder = Embedder(self.settings.embedding, self.settings.agent.data_dir,
                                      readonly=self.readonly)
        return self._embedder

    def answer(self, request: SearchRequest) -> SearchResponse:
        """The best results for the request, fused, grouped, floored and with snippets."""
        request = request.checked()
        config = self.settings.search
        mode: Mode = request.mode or config.mode
        pool = max(config.candidates, request.k * (10 if request.per_document else 2))
        where = request.where
        vector = None
        ranked: dict[str, list[int]] = {}
        similarity: dict[int, float] = {}
        if mode in ("vector", "hybrid"):
            self._check_model()
            vector = self.embedder.embed_query([request.query])[0]
            found = self.index.vector_candidates(vector, pool, where)
            ranked["vector"] = [i for i, _ in found]
            similarity.update(found)
        if mode in ("lexical", "hybrid"):
            ranked["lexical"] = [i for i, _ in self.index.lexical_candidates(
                request.query, pool, where)]
        quoted = quoted_phrases(request.query)
        together = self._together(request.query, quoted, mode, pool, where)
        if together:
            ranked["phrase"] = together
        words = weighed_words(request.query)
        covering = [] if quoted else self._covering(request.query, words, pool, where,
                                                    ranked.get("lexical", []))
        exact = [] if mode == "vector" else self._exact_hits(request.query, words, covering,
                                                             list(_fuse(ranked)))
        if exact:
            ranked["exact"] = exact
        fused = _fuse(ranked)
        if quoted:  # a quoted phrase is a must: only chunks that hold it, as written
            fused = {i: score for i, score in fused.items() if i in set(together)}
            if not fused:
                return SearchResponse(request.query, mode, False, note=(
                    "no document holds " + " and ".join(f'"{p}"' for p in quoted)))
        for chunk_id in covering:  # a passage holding the words is always a candidate
            fused.setdefault(chunk_id, 0.0)
        if not fused:
            return SearchResponse(request.query, mode, False, note="nothing matches the query")
        if vector is not None:
            missing = [i for i in fused if i not in similarity]
            similarity.update(self.index.similarities(vector, missing))
        floor = config.min_similarity
        strong = set(together) | set(covering)  # relevant on their words alone

        def relevant(chunk_id: int) -> bool:
            return mode == "lexical" or similarity.get(chunk_id, -1.0) >= floor \
                or chunk_id in strong

        tier = {i: 0 for i in together}
        for place, chunk_id in enumerate(exact):
            tier.setdefault(chunk_id, 1 + place)
        candidates = list(fused)
        chunks = self.index.chunks_by_id(candidates[: max(request.k * 20, 200)])
        chunks.update(self.index.chunks_by_id([i for i in covering if i not in chunks]))

        def ranked_first() -> tuple[StoredChunk, Evidence] | None:
            """The passage the whole ranking puts first, the floor not applied (what
            ``refusal_bench`` calibrates on), and what it holds of the query (None: its
            document was removed meanwhile)."""
            top = self._results(request, candidates, chunks, fused, tier, vector, ranked,
                                similarity, k=1)
            if not top:
                return None
            first = top[0].chunk
            return first, self._evidence(request.query, words, first,
                                         similarity.get(first.chunk_id), set(together))

        def answered(evidence: Evidence) -> bool:
            return answers(evidence, config.answer_similarity, floor, config.min_coverage)
        judged = ranked_first()
        if judged is None:
            return SearchResponse(request.query, mode, False, note="nothing matches the query")
        measured, evidence = judged
        if not answered(evidence) and covering and not exact:
            # a question whose words one passage holds is answered, with that passage
            for place, chunk_id in enumerate(covering):
                tier.setdefault(chunk_id, 1 + place)
            measured, evidence = ranked_first() or judged
        if not answered(evidence):
            return SearchResponse(request.query, mode, False, evidence=evidence, note=(
                refusal_note(evidence, display_name(measured.source_name),
                             config.answer_similarity, floor, config.min_coverage,
                             request.query)),
                measured=measured)
        tier[measured.chunk_id] = -1  # the passage judged is the one shown first
        kept = [i for i in candidates if relevant(i) or i == measured.chunk_id]
        results = self._results(request, kept, chunks, fused, tier, vector, ranked, similarity,
                                k=request.k)
        return SearchResponse(request.query, mode, True, results, evidence=evidence,
                              measured=measured)

    def _results(self, request: SearchRequest, kept: list[int], chunks: dict[int, StoredChunk],
                 fused: dict[int, float], tier: dict[int, int], vector: Any,
                 ranked: dict[str, list[int]], similarity: dict[int, float], *, k: int
                 ) -> list[SearchResult]:
        """The kept chunks ranked (tiers first), one a document unless asked otherwise, near
        copies shown as one, the first ``k`` with their snippets."""
        scored = _tiered([(i, fused[i]) for i in kept if i in chunks], tier)
        if request.per_document:
            about = None if looks_like_identifier(request.query) else vector
            scored = _tiered(self._rank_documents(scored, chunks, about), tier)
        copies: dict[int, list[str]] = {}
        if request.per_document and not request.all_copies:
            scored, copies = collapse_copies(scored, chunks)
        found_by = {side: set(ids) for side, ids in ranked.items()}
        results: list[SearchResult] = []
        for chunk_id, score in scored[:k]:
            chunk = chunks[chunk_id]
            sides = tuple(side for side in ("vector", "lexical", "phrase", "exact")
                          if chunk_id in found_by.get(side, ()))
            results.append(SearchResult(
                len(results) + 1, score, similarity.get(chunk_id), sides, chunk,
                make_snippet(chunk.text, request.query),
                self.settings.processing.max_chunk_chars, tuple(copies.get(chunk_id, ()))))
        return results

    def _covering(self, query: str, words: list[str], pool: int, where: SearchFilter,
                  lexical: list[int]) -> list[int]:
        """Passages that hold every content word of the query, best first (as the lexical
        side ranks them); for a long query none holds whole, those among the lexical side's
        best that hold it word for word but one (a sentence copied with a word changed; a
        question is not copied from anywhere)."""
        if not words:
            return []
        held = [i for i, _ in self.index.lexical_candidates(" ".join(words), pool, where,
                                                             require_all=True)]
        if held or len(words) < 4 or is_question(query):
            return held
        # such a passage holds all the rarest words the lexical side ranks by: it is near the top
        nearby = lexical[:NEAR_COPY_CANDIDATES]
        chunks = self.index.chunks_by_id(nearby)
        wanted = tokens(query)
        distinct = set(wanted)

        def copy_of_query(text: str) -> bool:  # the cheap word check first
            return len(distinct - set(tokens(text))) <= 1 \
                and in_order(query, text) >= len(wanted) - 1
        return [i for i in nearby if i in chunks
                and copy_of_query(f"{chunks[i].heading}\n{chunks[i].text}")]

    def _exact_hits(self, query: str, words: list[str], covering: list[int],
                    fused: list[int]) -> list[int]:
        """The passages to rank before all others. Of one word, or of a short query
        (``EXACT_MAX_WORDS``) whose words are rare together in the index, those holding every
        word: a word, a name, a row's values, a heading is found where it stands, ahead of
        pages that only mean something like it; those holding the words as typed come before
        those holding other forms of them and, of rare words, those holding them closest
        together first. (Common words together, "send an HTTP request with a custom header",
        are the user's own words, not a phrase to find: the fused order stands.) Of a longer
        query that is not a question, the passages it was copied from, word for word but one:
        the most words in order first."""
        if not covering or is_question(query) and len(query.split()) > EXACT_MAX_WORDS:
            return []
        if len(query.split()) > EXACT_MAX_WORDS:
            found = self.index.chunks_by_id(covering)
            run = {i: in_order(query, f"{c.heading}\n{c.text}") for i, c in found.items()}
            enough = len(tokens(query)) - 1
            return sorted((i for i in covering if run.get(i, 0) >= enough),
                          key=lambda i: -run[i])
        rare = self._rarity(words) >= RARE_IDF
        if not rare and (is_question(query) or len(words) > 1):
            return []
        chunks = self.index.chunks_by_id(covering)
        # ties in the order both sides rank them (then the lexical side's)
        place = {chunk_id: n for n, chunk_id in enumerate(fused)}
        after = len(place)
        for n, chunk_id in enumerate(covering):
            place.setdefault(chunk_id, after + n)

        def order(chunk_id: int) -> tuple[bool, int, int]:
            text = f"{chunks[chunk_id].heading}\n{chunks[chunk_id].text}"
            return (not holds_as_typed(words, text), closest_span(words, text) if rare else 0,
                    place[chunk_id])
        return sorted((i for i in covering if i in chunks), key=order)

    def _rarity(self, words: list[str]) -> float:
        """How rare the words are together: Σ ln(chunks / chunks holding the word)."""
        counts = self.index.chunk_counts(words)
        total = max(counts.pop("", 0), 1)
        return sum(math.log(total / max(n, 1)) for n in counts.values())

    def _check_model(self) -> None:
        """Vectors of one model mean nothing to another: an index made only by another model
        is refused, saying how to fix it, rather than searched into noise."""
        if self._model_checked:
            return
        made = self.index.models()
        configured = self.embedder.model_id
        if made and configured not in made:
            raise SearchUsageError(
                f"the index was embedded with {', '.join(sorted(made))}, not with "
                f"embedding.model = {configured}: run `ingest-agent reindex` (or search with "
                "--mode lexical)")
        self._model_checked = True

    def _evidence(self, query: str, words: list[str], chunk: StoredChunk,
                  similarity: float | None, together: set[int]) -> Evidence:
        """What a passage (the best result's) holds of the query, as the lexical side matches
        words."""
        held = sum(bool(ids) for ids in self.index.chunks_holding(words, [chunk.chunk_id])
                   .values())
        known = len(self.index.known_words(words)) / max(1, len(words))
        run = in_order(query, f"{chunk.heading}\n{chunk.text}")
        return Evidence(similarity, held / max(1, len(words)), known,
                        chunk.chunk_id in together, held, len(words), run, len(tokens(query)))

    def _together(self, query: str, quoted: list[str], mode: Mode, pool: int,
                  where: SearchFilter) -> list[int]:
        """Chunks holding the query's words together, best first, where that is what the
        query asks for: every quoted phrase, as written; a figure or code with its words (a
        row name and its number, ``SNB22-3 shipped``), all within a few words of one
        another; a passage copied from a document (five words or more, not a question), as
        written; a query with no letter or digit, character for character. A question's
        words together are no such evidence: a page that repeats a question does not answer
        it (pure vector search looks for none of these)."""
        if quoted:
            held: list[int] | None = None
            for phrase in quoted:
                ids = [i for i, _ in self.index.phrase_candidates(phrase.split(), pool, where)]
                also = set(ids)
                held = ids if held is None else [i for i in held if i in also]
            return held or []
        if mode == "vector":
            return []
        literal = query.strip()
        if literal and not any(ch.isalnum() for ch in literal):  # "________", "→", "§§"
            return self.index.literal_candidates(literal, pool, where)
        words = content_words(query)
        if len(words) >= 2 and any(_FIGURE.search(w) or looks_like_identifier(w) for w in words):
            return [i for i, _ in self.index.phrase_candidates(
                words, pool, where, window=NEAR_GAP * (len(words) - 1))]
        every = query.split()
        if len(every) >= COPIED_WORDS and not is_question(query):
            return [i for i, _ in self.index.phrase_candidates(every, pool, where)]
        return []

    def _rank_documents(self, scored: list[tuple[int, float]], chunks: dict[int, StoredChunk],
                        vector: Any) -> list[tuple[int, float]]:
        """One (best chunk, score) per document, best document first.

        Documents are ranked by their best chunk. With a query vector, that ranking is fused
        by RRF with a ranking of the same documents by the cosine of their mean vector, at
        half weight, and with one by the cosine of their opening chunk, at a quarter: the page
        that is about the question rises above one that only mentions it in passing, and of
        two sibling pages (fnmatch and glob) the one whose opening says it does what was asked.
        (Summing a document's several best chunks was tried too; it let a long document of
        mediocre chunks outrank a short one that answers.)"""
        best: dict[str, int] = {}
        for chunk_id, _ in scored:  # best first
            best.setdefault(chunks[chunk_id].doc_id, chunk_id)
        by_passage = list(best)
        rankings = [(1.0, by_passage)]
        if vector is not None and len(by_passage) > 1:
            whole = self.index.document_similarities(vector, best.values())
            rankings.append((WHOLE_DOCUMENT_WEIGHT, sorted(
                by_passage, key=lambda doc: -whole.get(best[doc], -1.0))))
            if OPENING_WEIGHT:
                opening = self.index.opening_chunks(best.values())
                cosine = self.index.similarities(vector, opening.values())
                rankings.append((OPENING_WEIGHT, sorted(
                    by_passage, key=lambda doc: -cosine.get(opening.get(best[doc], -1), -1.0))))
        fused: dict[str, float] = {}
        for weight, ranking in rankings:
            for rank, doc in enumerate(ranking, 1):
                fused[doc] = fused.get(doc, 0.0) + weight / (RRF_K + rank)
        return [(best[doc], fused[doc]) for doc in sorted(fused, key=lambda doc: -fused[doc])]


class SharedSearcher:
    """The agent's one searcher for its HTTP API and its search socket: built on the first
    question (the model loads then, about a second), then kept; questions take turns."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._searcher: Searcher | None = None

    def answer(self, request: SearchRequest) -> SearchResponse:
        with self._lock:
            if self._searcher is None:
                self._searcher = Searcher(self.settings)
            return self._searcher.answer(request)

    def answer_dict(self, data: dict[str, Any]) -> dict[str, Any]:
        """A request as JSON data in, the response as JSON data out (the socket's protocol)."""
        if not isinstance(data, dict):
            raise SearchUsageError("a search request is a JSON object")
        inbox = data.get("inbox")
        if inbox is not None and inbox not in {box.name for box in self.settings.inbox}:
            raise SearchUsageError(f"no inbox named {inbox!r} in "
                                   f"{self.settings.source or 'the config'}")
        return self.answer(SearchRequest.from_dict(data)).to_dict()


def collapse_copies(scored: list[tuple[int, float]], chunks: dict[int, StoredChunk]
                    ) -> tuple[list[tuple[int, float]], dict[int, list[str]]]:
    """One result for each group of near-duplicate documents (fingerprints within
    ``NEAR_BITS``), the best-ranked standing for the others, which are named as its copies."""
    from agent.pipeline.fingerprint import NEAR_BITS, distance

    kept: list[tuple[int, float]] = []
    copies: dict[int, list[str]] = {}
    for chunk_id, score in scored:
        mark = chunks[chunk_id].fingerprint
        twin = None if mark is None else next(
            (k for k, _ in kept if chunks[k].fingerprint is not None
             and distance(mark, chunks[k].fingerprint or 0) <= NEAR_BITS), None)
        if twin is None:
            kept.append((chunk_id, score))
        else:
            copies.setdefault(twin, []).append(chunks[chunk_id].source_name)
    return kept, copies


def _fuse(ranked: dict[str, list[int]]) -> dict[int, float]:
    """Reciprocal rank fusion: Σ 1 / (RRF_K + rank) over the sides, best first. One side alone
    keeps its own order."""
    scores: dict[int, float] = {}
    for ids in ranked.values():
        for rank, chunk_id in enumerate(ids, 1):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank)
    return dict(sorted(scores.items(), key=lambda item: -item[1]))


def _tiered(scored: list[tuple[int, float]], tier: dict[int, int]) -> list[tuple[int, float]]:
    """Chunks holding the query's words together first, then the exact hits in their order,
    then the rest as scored (a stable sort: each tier keeps its order)."""
    last = len(tier) + 1
    return sorted(scored, key=lambda pair: tier.get(pair[0], last))


def mime_types(names: Sequence[str]) -> tuple[str, ...]:
    """MIME types from what a user types: full types as they are, short names (pdf) mapped."""
    out = []
    for name in names:
        name = name.strip().lower()
        if not name:
            continue
        if "/" not in name and name not in SHORT_TYPES:
            raise SearchUsageError(f"unknown type {name!r}: a MIME type or one of "
                                   f"{', '.join(sorted(SHORT_TYPES))}")
        out.append(SHORT_TYPES.get(name, name))
    return tuple(out)


def looks_like_identifier(query: str) -> bool:
    """One token shaped like code (a dotted or snake_case name, camelCase, ALL_CAPS, a call or a
    --flag), as users paste it: found by the passage that holds it, not by what pages are about."""
    token = query.strip()
    if not token or any(c.isspace() for c in token):
        return False
    return bool(_CODE_SHAPE.search(token) or _ALL_CAPS.fullmatch(token))


def is_question(query: str) -> bool:
    """A query asked as a question ("how do I …", "… ?"), not words copied to be found."""
    words = query.split()
    return bool(words) and (words[0].lower() in QUESTION_WORDS or query.rstrip().endswith("?"))
