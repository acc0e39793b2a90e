"""Token-aware chunks with overlap, cut at paragraph, sentence or line ends where possible.

Tokens are counted with the embedding model's own tokenizer (padding and truncation off), so
no chunk is silently truncated by the model. Every chunk keeps its character offsets in the
extracted text and its page.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from agent.pipeline.extract import Section

PIECE_CHARS = 20_000  # text tokenized at once: bounds memory for huge files
SPECIAL_TOKENS = 2  # [CLS] and [SEP], added by the model around every chunk


@dataclass(frozen=True, slots=True)
class Chunk:
    ordinal: int
    text: str
    char_start: int
    char_end: int
    page: int | None
    tokens: int


class Chunker:
    """Splits sections into chunks of at most ``chunk_tokens`` tokens."""

    def __init__(self, tokenizer_file: Path, chunk_tokens: int, overlap_tokens: int,
                 model_max_tokens: int = 256) -> None:
        from tokenizers import Tokenizer

        if chunk_tokens + SPECIAL_TOKENS > model_max_tokens:
            chunk_tokens = model_max_tokens - SPECIAL_TOKENS
        self.chunk_tokens = chunk_tokens
        self.overlap = min(overlap_tokens, chunk_tokens // 2)
        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def chunk(self, sections: Iterable[Section]) -> Iterator[Chunk]:
        ordinal = 0
        base = 0
        for section in sections:
            for piece_start, piece in _pieces(section.text):
                for start, end, tokens in self._windows(piece):
                    text = piece[start:end]
                    if text.strip():
                        yield Chunk(ordinal, text, base + piece_start + start,
                                    base + piece_start + end, section.page, tokens)
                        ordinal += 1
            base += len(section.text)

    def _windows(self, text: str) -> Iterator[tuple[int, int, int]]:
        offsets = self.tokenizer.encode(text, add_special_tokens=False).offsets
        n = len(offsets)
        start = 0
        while start < n:
            end = min(start + self.chunk_tokens, n)
            if end < n:
                end = _best_cut(text, offsets, start + self.chunk_tokens // 2, end)
            yield offsets[start][0], offsets[end - 1][1], end - start
            if end >= n:
                return
            start = max(end - self.overlap, start + 1)


def _best_cut(text: str, offsets: list[tuple[int, int]], low: int, high: int) -> int:
    """The token index in (low, high] to end a chunk before: paragraph > sentence > line > any."""
    best, best_score = high, 0
    for i in range(high, low, -1):
        gap = text[offsets[i - 1][1]:offsets[i][0]]
        if "\n\n" in gap:
            return i
        score = 0
        if text[offsets[i - 1][1] - 1:offsets[i - 1][1]] in (".", "!", "?") and gap:
            score = 2
        elif "\n" in gap:
            score = 1
        if score > best_score:
            best, best_score = i, score
    return best


def _pieces(text: str) -> Iterator[tuple[int, str]]:
    """Cut long text at paragraph or line ends into pieces of about PIECE_CHARS."""
    start = 0
    while start < len(text):
        end = start + PIECE_CHARS
        if end < len(text):
            cut = text.rfind("\n\n", start + PIECE_CHARS // 2, end)
            if cut == -1:
                cut = text.rfind("\n", start + PIECE_CHARS // 2, end)
            if cut == -1:
                cut = text.rfind(" ", start + PIECE_CHARS // 2, end)
            end = cut + 1 if cut != -1 else end
        yield start, text[start:end]
        start = end
