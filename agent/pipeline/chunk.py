"""Token-aware chunks with overlap, cut at paragraph, sentence or line ends where possible.

Tokens are counted with the embedding model's own tokenizer, so no chunk is silently truncated
by the model. The whole text is never run through the tokenizer: a BERT-style tokenizer splits
at whitespace first, so a text's token count is the sum of its words' counts, and a document
has far fewer distinct words than words. Each distinct word is counted once per worker and kept
in a hash table of numpy arrays (``WordTable``), so a slice's words are looked up at once with
no Python string per word; offsets and break points are numpy arrays too, which keeps chunking
linear and fast (``benchmarks/chunk_bench.py``). A word longer than a chunk is cut at token
boundaries."""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.pipeline.readers.outline import PATH_SEPARATOR, Section
from agent.pipeline.wordpiece import SLICE_CHARS, AsciiWordPiece, WordTable

SPECIAL_TOKENS = 2  # [CLS] and [SEP], added by the model around every chunk
HASHED_CHARS = 64  # longer words are counted as strings each time (rare, and never hashed)
_SENTENCE_END = frozenset(map(ord, ".!?…。"))
PARAGRAPH, SENTENCE, LINE = 3, 2, 1

_whitespace_table: Any = None


def _whitespace() -> Any:
    """A lookup over every code point: True where ``str.split()`` splits."""
    global _whitespace_table
    if _whitespace_table is None:
        import numpy as np

        table = np.zeros(0x110000, dtype=bool)
        table[[i for i in range(0x3001) if chr(i).isspace()]] = True
        _whitespace_table = table
    return _whitespace_table


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a document: ``text`` is its own words, ``heading`` its place (title ›
    section › subsection), put in front of the text when it is embedded."""

    ordinal: int
    text: str
    char_start: int
    char_end: int
    page: int | None
    tokens: int
    heading: str = ""

    @property
    def embed_text(self) -> str:
        return f"{self.heading}\n\n{self.text}" if self.heading else self.text


class Chunker:
    """Splits sections into chunks of at most ``chunk_tokens`` tokens."""

    def __init__(self, tokenizer_file: Path, chunk_tokens: int, overlap_tokens: int,
                 model_max_tokens: int = 256, max_chars: int = 4000) -> None:
        from tokenizers import Tokenizer

        if chunk_tokens + SPECIAL_TOKENS > model_max_tokens:
            chunk_tokens = model_max_tokens - SPECIAL_TOKENS
        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        # Word counts add up exactly for tokenizers that split at whitespace before anything
        # else (BERT's WordPiece, this model); for others keep a margin.
        pre = type(self.tokenizer.pre_tokenizer).__name__
        exact = pre in {"BertPreTokenizer", "Whitespace", "WhitespaceSplit"}
        self.chunk_tokens = chunk_tokens if exact else int(chunk_tokens * 0.85)
        self.overlap = min(overlap_tokens, self.chunk_tokens // 2)
        # A word longer than this is cut (at tokens): it must fit beside the longest heading.
        self.word_cap = self.chunk_tokens - self.chunk_tokens // 4
        # No chunk holds more characters than this, whatever its tokens: a word the model
        # does not know ('a' × 1 MiB) is one [UNK] token however long it is.
        self.max_chars = max_chars
        self.char_cap = max(16, max_chars // 2)
        self.encoded_chunks = 0  # chunks of encoded data (base64, hex) left out, since start
        self._table = WordTable()
        self._headings: dict[tuple[str, ...], tuple[str, int]] = {}
        self._ascii = AsciiWordPiece.of(self.tokenizer)

    def count_tokens(self, text: str) -> int:
        """The exact number of tokens the model sees for ``text`` (without [CLS]/[SEP])."""
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def chunk(self, sections: Iterable[Section],
              on_section: Callable[[int], None] | None = None) -> Iterator[Chunk]:
        """Chunks of every section in order; ``on_section(chars)`` after each slice is done.

        A section's heading path is embedded with each of its chunks, so its tokens are kept
        out of the chunk's budget."""
        ordinal = 0
        base = 0
        for section in sections:
            headings = {path: self._heading(path)
                        for path in (section.path, *(p for _, p in section.marks))}
            budget = self.chunk_tokens - max(tokens for _, tokens in headings.values())
            for offset, piece in _slices(section.text):
                for start, end, tokens in self._windows(piece, budget):
                    text = piece[start:end]
                    if is_encoded_data(text):
                        self.encoded_chunks += 1
                        continue
                    heading = headings[section.path_at(offset + start)][0]
                    yield Chunk(ordinal, text, base + offset + start,
                                base + offset + end, section.page, tokens, heading)
                    ordinal += 1
                if on_section is not None:
                    on_section(len(piece))
            base += len(section.text)

    def _heading(self, path: tuple[str, ...]) -> tuple[str, int]:
        """The heading line for ``path`` and its tokens, at most a quarter of a chunk (leading
        parts are dropped until it fits)."""
        found = self._headings.get(path)
        if found is None:
            parts = list(path)
            text, tokens = "", 0
            while parts:
                text = PATH_SEPARATOR.join(parts)
                tokens = self.count_tokens(text)
                if tokens <= self.chunk_tokens // 4:
                    break
                parts.pop(0)
            else:
                text, tokens = "", 0
            if len(self._headings) > 10_000:
                self._headings.clear()
            found = self._headings[path] = (text, tokens)
        return found

    # -- inside one slice of text -------------------------------------------------------------

    def _windows(self, text: str, budget: int) -> Iterator[tuple[int, int, int]]:
        """(char start, char end, tokens) of each chunk of ``text``, at most ``budget``
        tokens each."""
        import numpy as np

        words = self._words(text)
        if words is None:
            return
        starts, ends, counts, breaks = words
        cum_a = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=cum_a[1:])
        # For each word k: the last word ≤ k followed by a break of at least each strength.
        index = np.arange(len(breaks))
        # memoryviews index as plain ints: a chunk costs a microsecond, not numpy scalar calls,
        # and nothing is copied into lists (which cost more than the chunking itself).
        last = [np.maximum.accumulate(np.where(breaks >= level, index, -1)).data
                for level in (PARAGRAPH, SENTENCE, LINE)]
        starts = np.ascontiguousarray(starts, dtype=np.int64).data
        ends = np.ascontiguousarray(ends, dtype=np.int64).data
        cum = cum_a.data
        n = len(counts)
        overlap = min(self.overlap, budget // 2)
        i = 0
        previous_end = 0
        max_chars = self.max_chars
        while i < n:
            j = max(bisect_right(cum, cum[i] + budget) - 1, i + 1)
            if ends[j - 1] - starts[i] > max_chars:  # few tokens, many characters
                j = max(bisect_right(ends, starts[i] + max_chars, i, j), i + 1)
            if j < n:
                # A cut in the window's second half by tokens (not words: one long word can
                # be most of a window), and past the previous chunk's end, so the overlap is
                # never a chunk of its own.
                low = max(bisect_left(cum, cum[i] + (cum[j] - cum[i]) // 2, i, j),
                          previous_end + 1, i + 1)
                j = _best_cut(last, low, j)
            yield starts[i], ends[j - 1], cum[j] - cum[i]
            if j >= n:
                return
            previous_end = j
            i = max(bisect_left(cum, cum[j] - overlap), i + 1)

    def _words(self, text: str) -> tuple[Any, Any, Any, Any] | None:
        """Word offsets, token counts and the break strength after each word."""
        import numpy as np

        points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        if len(points) == 0:
            return None
        table = _whitespace()
        blank = table[points]
        edges = np.diff((~blank).astype(np.int8), prepend=0, append=0)
        starts = np.flatnonzero(edges == 1)
        ends = np.flatnonzero(edges == -1)
        if len(starts) == 0:
            return None
        counts = self._counts(text, points, starts, ends)
        newlines = np.flatnonzero(points == 10)
        gap_lines = np.zeros(len(starts), dtype=np.int64)
        if len(newlines):
            gap_lines[:-1] = (np.searchsorted(newlines, starts[1:])
                              - np.searchsorted(newlines, ends[:-1]))
        breaks = np.where(gap_lines >= 2, PARAGRAPH,
                          np.where(np.isin(points[ends - 1], list(_SENTENCE_END)), SENTENCE,
                                   np.where(gap_lines == 1, LINE, 0))).astype(np.int8)
        huge = np.flatnonzero((counts > self.word_cap) | (ends - starts > self.char_cap))
        if len(huge):
            starts, ends, counts, breaks = self._split_huge(text, huge, starts, ends, counts,
                                                            breaks)
        return starts, ends, counts, breaks

    def _counts(self, text: str, points: Any, starts: Any, ends: Any) -> Any:
        """Token counts of the words [starts, ends) of ``text``; only words never seen before
        become strings and are counted, the rest are found by hash in one vectorised lookup."""
        import numpy as np

        table = self._table
        lengths = ends - starts
        keys = table.keys(points, starts, ends)
        counts = table.lookup(keys)
        long_words = np.flatnonzero(lengths > HASHED_CHARS)
        if len(long_words):  # rare (URLs, base64): counted as strings, never hashed
            words = [text[s:e] for s, e in zip(starts[long_words].tolist(),
                                               ends[long_words].tolist(), strict=True)]
            # Encoded data (base64 lines, hex) is not tokenized: its chunks are left out, so
            # an upper bound (a token a character) is enough, and tokenizing it was most of
            # the time a 60 MB base64 file took.
            plain = [w for w in words if not _ENCODED_WORD.fullmatch(w)]
            counted = dict(zip(plain, self._count_strings(plain), strict=True)) if plain else {}
            counts[long_words] = [counted.get(w, len(w)) for w in words]
        missing = np.flatnonzero(counts < 0)
        if len(missing) == 0:
            return counts
        new_keys, first, inverse = np.unique(keys[missing], return_index=True,
                                             return_inverse=True)
        where = missing[first]
        new_counts = np.asarray(self._count_strings(
            [text[s:e] for s, e in zip(starts[where].tolist(), ends[where].tolist(),
                                       strict=True)]), dtype=np.int64)
        table.insert(new_keys, new_counts)
        counts[missing] = new_counts[inverse.reshape(-1)]
        return counts

    def _count_strings(self, words: list[str]) -> list[int]:
        """Exact token counts of distinct words: ASCII ones by WordPiece here, others by the
        tokenizer in one call."""
        counted: dict[str, int] = {}
        if self._ascii is not None:
            count = self._ascii.count
            counted.update((w, count(w)) for w in words if w.isascii() and w.isprintable())
        rest = [w for w in words if w not in counted]
        if rest:
            counted.update(self._tokenize_words(rest))
        return [counted[w] for w in words]

    def _tokenize_words(self, words: list[str]) -> dict[str, int]:
        """Token counts of many words from one tokenizer call over them joined by spaces."""
        import numpy as np

        joined = " ".join(words)
        offsets = self.tokenizer.encode(joined, add_special_tokens=False).offsets
        lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
        word_starts = np.zeros(len(words), dtype=np.int64)
        word_starts[1:] = np.cumsum(lengths + 1)[:-1]
        token_starts = np.fromiter((o[0] for o in offsets), dtype=np.int64, count=len(offsets))
        owner = np.searchsorted(word_starts, token_starts, side="right") - 1
        per_word = np.bincount(owner, minlength=len(words)).tolist()
        return dict(zip(words, per_word, strict=True))

    def _split_huge(self, text: str, huge: Any, starts: Any, ends: Any, counts: Any,
                    breaks: Any) -> tuple[Any, Any, Any, Any]:
        """Words longer than a chunk (base64, a URL list) become pieces at token boundaries."""
        import numpy as np

        parts_s, parts_e, parts_c, parts_b = [], [], [], []
        last = 0
        step = max(1, self.word_cap - 1)
        for k in huge.tolist():
            parts_s.append(starts[last:k])
            parts_e.append(ends[last:k])
            parts_c.append(counts[last:k])
            parts_b.append(breaks[last:k])
            word_start, word_end = int(starts[k]), int(ends[k])
            if _ENCODED_WORD.fullmatch(text, word_start, word_end):
                # Encoded data: cut by characters (a token a character at most), untokenized.
                s = list(range(word_start, word_end, step))
                e = [min(x + step, word_end) for x in s]
                c_ = [b - a for a, b in zip(s, e, strict=True)]
            else:
                offsets = self.tokenizer.encode(text[word_start:word_end],
                                                add_special_tokens=False).offsets
                cut_points = list(range(0, len(offsets), step))
                s = [word_start + offsets[c][0] for c in cut_points]
                e = [word_start + offsets[min(c + step, len(offsets)) - 1][1]
                     for c in cut_points]
                c_ = [min(step, len(offsets) - c) for c in cut_points]
                s, e, c_ = _cut_long_pieces(s, e, c_, self.char_cap)
            parts_s.append(np.array(s, dtype=np.int64))
            parts_e.append(np.array(e, dtype=np.int64))
            parts_c.append(np.array(c_, dtype=np.int64))
            b = np.zeros(len(s), dtype=np.int8)
            b[-1] = breaks[k]
            parts_b.append(b)
            last = k + 1
        parts_s.append(starts[last:])
        parts_e.append(ends[last:])
        parts_c.append(counts[last:])
        parts_b.append(breaks[last:])
        return (np.concatenate(parts_s), np.concatenate(parts_e), np.concatenate(parts_c),
                np.concatenate(parts_b))


def _cut_long_pieces(starts: list[int], ends: list[int], counts: list[int], cap: int
                     ) -> tuple[list[int], list[int], list[int]]:
    """Pieces longer than ``cap`` characters (a run of one unknown token) cut every ``cap``
    characters, their tokens shared out (at least one a piece)."""
    out_s, out_e, out_c = [], [], []
    for s, e, c in zip(starts, ends, counts, strict=True):
        if e - s <= cap:
            out_s.append(s)
            out_e.append(e)
            out_c.append(c)
            continue
        pieces = range(s, e, cap)
        share = max(1, c // len(pieces))
        for p in pieces:
            out_s.append(p)
            out_e.append(min(p + cap, e))
            out_c.append(share)
    return out_s, out_e, out_c


# A run of characters that encodes data rather than words: base64 (and its URL-safe form), hex
# dumps, long [UNK] runs. Real words are rarely 24 characters of these without a space.
_ENCODED_RUN = re.compile(r"[A-Za-z0-9+/=_-]{24,}")
_ENCODED_WORD = re.compile(r"[A-Za-z0-9+/=_-]+")
ENCODED_SHARE = 0.8


def is_encoded_data(text: str) -> bool:
    """Most of ``text`` is long runs of encoding characters (base64, hex, 'aaaa…'): its vector
    would mean nothing and match unrelated questions, so it is not embedded."""
    if len(text) < 48:
        return False
    encoded = sum(m.end() - m.start() for m in _ENCODED_RUN.finditer(text))
    return encoded >= ENCODED_SHARE * (len(text) - text.count(" ") - text.count("\n"))


def _best_cut(last: list[memoryview], low: int, j: int) -> int:
    """Where to end a chunk of words ending by j: after the last paragraph end at or past
    word ``low``, else the last sentence end, else the last line end, else at j. ``last[s][k]``
    is the last word ≤ k followed by a break of strength s (paragraph, sentence, line) or -1."""
    if low >= j:
        return j
    for strongest_first in last:
        k = strongest_first[j - 1]
        if k + 1 >= low:
            return k + 1
    return j


def _slices(text: str) -> Iterator[tuple[int, str]]:
    """Cut long text at paragraph, line or word ends into slices of about SLICE_CHARS."""
    start = 0
    while start < len(text):
        end = start + SLICE_CHARS
        if end < len(text):
            for sep in ("\n\n", "\n", " "):
                cut = text.rfind(sep, start + SLICE_CHARS // 2, end)
                if cut != -1:
                    end = cut + len(sep)
                    break
        yield start, text[start:end]
        start = end
