"""Counting a word's tokens fast: a hash table of counts already known (``WordTable``), and
BERT's uncased WordPiece for printable ASCII words without a tokenizer call
(``AsciiWordPiece``). The chunker's counting, apart from where it cuts."""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

SLICE_CHARS = 1 << 20  # text analysed at once: bounds the arrays' memory for huge sections
CACHE_WORDS = 500_000  # distinct words remembered across documents before the table is reset


class WordTable:
    """Token counts of words seen before, keyed by a 64-bit hash of their code points.

    An open-addressing table in numpy arrays, so all the words of a slice are looked up at once
    with no Python string per word (making those strings and looking them up in a dict was most
    of the chunker's time). The key is a polynomial hash computed from prefix sums over the
    slice's code points, mixed with the word's length; its base is drawn at random per process,
    so nobody can craft words that collide. Holds at most CACHE_WORDS words, then starts over.
    """

    SLOT_BITS = 21  # 2M slots: a load of at most a quarter at CACHE_WORDS
    _MIX = 0x9E3779B97F4A7C15

    def __init__(self) -> None:
        import numpy as np

        self.base = secrets.randbits(64) | 1  # odd: invertible modulo 2**64
        self._powers = np.ones(1, dtype=np.uint64)
        self._inverse_powers = np.ones(1, dtype=np.uint64)
        self._keys = np.zeros(1 << self.SLOT_BITS, dtype=np.uint64)
        self._counts = np.full(1 << self.SLOT_BITS, -1, dtype=np.int64)
        self.size = 0

    def _grow_powers(self, n: int) -> None:
        """base**i and base**-i modulo 2**64 for i ≤ n, by doubling (a cumprod is far slower)."""
        import numpy as np

        if len(self._powers) > n:
            return
        size = max(n + 1, SLICE_CHARS + 1)
        for name, factor in (("_powers", self.base), ("_inverse_powers",
                                                       pow(self.base, -1, 1 << 64))):
            powers = np.empty(size, dtype=np.uint64)
            powers[0] = 1
            filled = 1
            while filled < size:
                step = min(filled, size - filled)
                powers[filled:filled + step] = powers[:step] * np.uint64(pow(factor, filled,
                                                                             1 << 64))
                filled += step
            setattr(self, name, powers)

    def keys(self, points: Any, starts: Any, ends: Any) -> Any:
        """The key of each word [starts[i], ends[i]) of the code points ``points``."""
        import numpy as np

        n = len(points)
        self._grow_powers(n)
        prefix = np.zeros(n + 1, dtype=np.uint64)
        np.cumsum(points.astype(np.uint64) * self._powers[:n], out=prefix[1:])
        hashes = (prefix[ends] - prefix[starts]) * self._inverse_powers[starts]
        return hashes ^ ((ends - starts).astype(np.uint64) * np.uint64(self._MIX))

    def _slots(self, keys: Any) -> Any:
        import numpy as np

        return ((keys * np.uint64(self._MIX)) >> np.uint64(64 - self.SLOT_BITS)).astype(np.int64)

    def lookup(self, keys: Any) -> Any:
        """The count stored for each key, -1 where there is none."""
        import numpy as np

        found = np.full(len(keys), -1, dtype=np.int64)
        slots = self._slots(keys)
        pending = np.arange(len(keys))
        mask = (1 << self.SLOT_BITS) - 1
        while len(pending):
            at = slots[pending]
            stored = self._counts[at]
            hit = (stored >= 0) & (self._keys[at] == keys[pending])
            found[pending[hit]] = stored[hit]
            pending = pending[~hit & (stored >= 0)]  # occupied by another key: probe on
            slots[pending] = (slots[pending] + 1) & mask
        return found

    def insert(self, keys: Any, counts: Any) -> None:
        """Store distinct keys that are not in the table yet."""
        import numpy as np

        if self.size + len(keys) > CACHE_WORDS:
            self._counts.fill(-1)
            self.size = 0
        slots = self._slots(keys)
        pending = np.arange(len(keys))
        mask = (1 << self.SLOT_BITS) - 1
        while len(pending):
            at = slots[pending]
            free = self._counts[at] < 0
            taken, first = np.unique(at[free], return_index=True)
            winners = pending[free][first]
            self._keys[taken] = keys[winners]
            self._counts[taken] = counts[winners]
            placed = np.zeros(len(keys), dtype=bool)
            placed[winners] = True
            pending = pending[~placed[pending]]
            slots[pending] = (slots[pending] + 1) & mask
        self.size += len(keys)


class AsciiWordPiece:
    """Token counts of printable-ASCII words exactly as BERT's uncased WordPiece makes them:
    lowercase, every punctuation character a token of its own, letters and digits cut into the
    longest pieces found in the vocabulary. Several times faster than a tokenizer call per
    distinct word; other words (accents, CJK, controls) still go through the tokenizer."""

    _PIECES = re.compile(r"[a-z0-9]+|[^a-z0-9]")

    def __init__(self, vocab: set[str], prefix: str, max_chars: int) -> None:
        self.vocab, self.max_chars = vocab, max_chars
        # Pieces that may follow another inside a word ("##ing" → "ing").
        self.continued = {v[len(prefix):] for v in vocab if v.startswith(prefix)}
        self.longest = max(map(len, vocab))
        self._pieces: dict[str, int] = {}

    @classmethod
    def of(cls, tokenizer: Any) -> AsciiWordPiece | None:
        """The counter for this tokenizer, or None if it is not an uncased BERT WordPiece."""
        spec = json.loads(tokenizer.to_str())
        normalizer, pre, model = spec.get("normalizer") or {}, spec.get("pre_tokenizer") or {}, \
            spec.get("model") or {}
        if (normalizer.get("type") != "BertNormalizer" or not normalizer.get("lowercase")
                or pre.get("type") != "BertPreTokenizer" or model.get("type") != "WordPiece"):
            return None
        vocab = set(model["vocab"])
        if not all(chr(c) in vocab for c in range(33, 127) if not chr(c).isupper()):
            return None
        return cls(vocab, model.get("continuing_subword_prefix", "##"),
                   int(model.get("max_input_chars_per_word", 100)))

    def count(self, word: str) -> int:
        total = 0
        pieces = self._pieces
        for piece in self._PIECES.findall(word.lower()):
            n = pieces.get(piece)
            if n is None:
                n = pieces[piece] = self._wordpiece(piece)
            total += n
        return total

    def _wordpiece(self, piece: str) -> int:
        vocab = self.vocab
        if piece in vocab:
            return 1
        if len(piece) > self.max_chars:
            return 1  # [UNK]
        continued, longest = self.continued, self.longest
        start, n, size = 0, 0, len(piece)
        while start < size:
            end = min(size, start + longest)
            known = vocab if start == 0 else continued
            while end > start and piece[start:end] not in known:
                end -= 1
            if end == start:
                return 1  # no piece matches: the whole word is [UNK]
            n += 1
            start = end
        return n
