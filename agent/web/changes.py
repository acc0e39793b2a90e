"""A count of the agent's events, so an open job list waits for a change instead of polling.

A live list asks for its rows with the count it last saw; the server answers when the count
moves (a file detected, a job started, a stage timed, a job finished) or after ``WAIT_SECONDS``
(changes made by another agent of a scale-out group emit nothing here). Every waiting page
shares one wait: an event wakes them all once, and nothing runs while nothing happens, however
many pages are open. At most ``MAX_WAITING`` polls are held; one more is told to come back
later (the page then asks again in a few seconds).
"""

from __future__ import annotations

import asyncio
import threading

WAIT_SECONDS = 25.0
BUSY_SECONDS = 1.0  # a job in view runs: its progress moves without an event
MAX_WAITING = 500


class TooManyWaiting(Exception):
    """More than ``MAX_WAITING`` long polls are held already."""


class Changes:
    def __init__(self) -> None:
        self.count = 0
        self.waiting = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None
        self._wake_pending = False

    def __call__(self, _event: object) -> None:
        """An event, from any thread: count it and wake the waiters (one wake-up per burst)."""
        with self._lock:
            self.count += 1
            loop, wake = self._loop, not self._wake_pending and self._loop is not None
            self._wake_pending = self._wake_pending or wake
        if wake and loop is not None:
            try:
                loop.call_soon_threadsafe(self._wake)
            except RuntimeError:  # the loop has closed: nobody is waiting
                self._wake_pending = False

    def _wake(self) -> None:
        with self._lock:
            self._wake_pending = False
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()

    async def after(self, seen: int, busy: bool) -> int:
        """Return once the count differs from ``seen``, or after ``BUSY_SECONDS`` (``busy``)
        or ``WAIT_SECONDS``. Raises :class:`TooManyWaiting` past ``MAX_WAITING`` polls."""
        if self.count != seen:
            return self.count
        if self.waiting >= MAX_WAITING:
            raise TooManyWaiting
        self._loop = asyncio.get_running_loop()
        if self._changed is None:
            self._changed = asyncio.Event()
        changed = self._changed
        if self.count != seen:  # an event came before this loop was known to wake
            return self.count
        self.waiting += 1
        try:
            await asyncio.wait_for(changed.wait(), BUSY_SECONDS if busy else WAIT_SECONDS)
        except TimeoutError:
            pass
        finally:
            self.waiting -= 1
        return self.count
