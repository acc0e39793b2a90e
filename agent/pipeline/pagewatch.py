"""Who is told when an OCR page starts and by when it must end: the worker's parent.

Tesseract stops recognising a page at its deadline, but not its layout analysis, which on
some pages (small dense text at a slant) runs for minutes; no thread can be stopped inside it.
So the worker publishes each page's picture key and the time by which it must be done, its
parent kills a worker whose page is overdue, and the job's next attempt leaves that page out
(``JobRequest.skip_pages``) instead of reading it again until its retries run out.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Protocol

GRACE_SHARE = 0.25  # a page is overdue this share of its time past its deadline
MIN_GRACE_SECONDS = 5.0


class PageWatch(Protocol):
    def began(self, key: str, ends_by: float) -> int | None:
        """A page (its picture's key) is being read and must end by ``ends_by``
        (``time.monotonic()``); a token for ``ended``."""

    def ended(self, token: int | None) -> None: ...


_watch: PageWatch | None = None


def install(watch: PageWatch | None) -> None:
    """Tell ``watch`` of every page read from now on in this process (None: nobody)."""
    global _watch
    _watch = watch


def watching() -> bool:
    return _watch is not None


def overdue_after(deadline: float, seconds: float) -> float:
    """When a page given ``seconds`` with this ``deadline`` is overdue: the recognition has
    stopped at the deadline by then unless something that ignores it holds the page."""
    return deadline + max(MIN_GRACE_SECONDS, GRACE_SHARE * seconds)


@contextlib.contextmanager
def watched(key: str, deadline: float, seconds: float) -> Iterator[None]:
    """Publish the page while its OCR runs."""
    watch = _watch
    token = watch.began(key, overdue_after(deadline, seconds)) if watch is not None and key \
        else None
    try:
        yield
    finally:
        if watch is not None and token is not None:
            watch.ended(token)


def left_out_note(seconds: float) -> str:
    """What a page left out this way says in the job's warnings."""
    return (f"not read: its OCR ran far past {seconds:g} s (ocr.page_timeout_seconds) and "
            "was stopped")
