"""The OCR pages a worker is reading and by when each must end, in memory the worker and its
parent share: the worker writes (``pagewatch.PageWatch``), the parent reads and kills a worker
whose page is overdue. ``time.monotonic()`` is the same clock in every process on Linux."""

from __future__ import annotations

import threading
from typing import Any

SLOTS = 16  # pages read at once (ocr.threads) that can be watched
KEY_BYTES = 32  # a picture key: 16 bytes as hex


class PageDeadlines:
    def __init__(self, ctx: Any) -> None:
        self._ends = ctx.RawArray("d", SLOTS)  # 0: the slot is free
        self._keys = ctx.RawArray("c", SLOTS * KEY_BYTES)
        self._lock = threading.Lock()  # the worker's reader threads; never shared
        self._paused_at: dict[tuple[int, float], float] = {}  # the parent's own

    def __getstate__(self) -> dict[str, Any]:
        return {"ends": self._ends, "keys": self._keys}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._ends, self._keys = state["ends"], state["keys"]
        self._lock = threading.Lock()
        self._paused_at = {}

    # The worker's side.
    def began(self, key: str, ends_by: float) -> int | None:
        raw = key.encode("ascii", "replace")[:KEY_BYTES].ljust(KEY_BYTES, b" ")
        with self._lock:
            for slot in range(SLOTS):
                if self._ends[slot] == 0.0:
                    self._keys[slot * KEY_BYTES:(slot + 1) * KEY_BYTES] = raw
                    self._ends[slot] = ends_by  # last: the parent reads a key only beside it
                    return slot
        return None  # more pages at once than slots: this one is not watched

    def ended(self, token: int | None) -> None:
        if token is not None:
            self._ends[token] = 0.0

    # The parent's side.
    def overdue(self, now: float, paused: float) -> list[str]:
        """Keys of the pages past the time they had to end by, not counting the seconds the
        worker spent frozen (``paused``: all of them so far) since each page began."""
        late = []
        current = set()
        for slot in range(SLOTS):
            ends_by = self._ends[slot]
            if ends_by == 0.0:
                continue
            current.add((slot, ends_by))
            since = self._paused_at.setdefault((slot, ends_by), paused)
            if now > ends_by + (paused - since):
                raw = bytes(self._keys[slot * KEY_BYTES:(slot + 1) * KEY_BYTES])
                late.append(raw.decode("ascii", "replace").strip())
        for gone in set(self._paused_at) - current:
            del self._paused_at[gone]
        return late
