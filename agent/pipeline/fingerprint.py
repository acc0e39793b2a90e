"""Near-duplicate documents told apart from different ones by a SimHash of their text.

The same page as a PNG, as a PDF and as a re-scan turned by a few degrees reads as nearly the
same words (OCR differs in a few letters); search shows such copies as one result ("also in:
…"). Each document keeps a 64-bit SimHash (Charikar 2002) of its word 3-shingles: similar texts
get fingerprints that differ in few bits, unlike a content hash, which any letter changes.
Measured on the Tika and OCR test corpora (185 documents, every pair): re-scans of one page
(PNG, PDF, CCITT, JBIG2, skewed, turned) 0–6 bits apart; the closest other pairs, 9–14 bits,
are one text in two formats formatted differently (.csv and .xls, .doc and .docx).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

BITS = 64
NEAR_BITS = 6  # fingerprints this close (Hamming distance) are copies of one document
_WORD = re.compile(r"\w+")
MAX_WORDS = 200_000  # a long document is fingerprinted by its first this many words


def simhash(texts: Iterable[str]) -> int | None:
    """The SimHash (unsigned, 64 bits) of the texts' words, read in order; None for texts of
    fewer than 8 words, which say too little to be called copies of anything."""
    weights = [0] * BITS
    window: list[str] = []
    words = 0
    for text in texts:
        for match in _WORD.finditer(text.lower()):
            window.append(match.group())
            words += 1
            if len(window) > 3:
                window.pop(0)
            if len(window) == 3:
                digest = int.from_bytes(hashlib.blake2b(" ".join(window).encode(),
                                                        digest_size=8).digest(), "big")
                for bit in range(BITS):
                    weights[bit] += 1 if digest >> bit & 1 else -1
            if words >= MAX_WORDS:
                break
        if words >= MAX_WORDS:
            break
    if words < 8:
        return None
    return sum(1 << bit for bit in range(BITS) if weights[bit] > 0)


def as_signed(value: int | None) -> int | None:
    """The fingerprint as a signed 64-bit integer (what SQLite and Postgres' BIGINT hold)."""
    if value is None:
        return None
    return value - (1 << BITS) if value >= 1 << (BITS - 1) else value


def distance(a: int, b: int) -> int:
    """How many bits two fingerprints (signed or not) differ in."""
    return ((a ^ b) & ((1 << BITS) - 1)).bit_count()
