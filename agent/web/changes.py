"""A count of the agent's events, so an open job list waits for a change instead of polling.

A live list asks for its rows with the count it last saw; the server answers when the count
moves (a file detected, a job started, a stage timed, a job finished) or after ``WAIT_SECONDS``
(changes made by another agent of a scale-out group emit nothing here). Fifty open pages then
cost a wake-up each every half second while nothing happens, not a query.
"""

from __future__ import annotations

import asyncio
import time

WAIT_SECONDS = 25.0
STEP_SECONDS = 0.5


class Changes:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, _event: object) -> None:
        self.count += 1  # one writer at a time is not needed: any change wakes the readers

    async def after(self, seen: int, busy: bool) -> int:
        """Return once the count differs from ``seen``; at once if ``busy`` (a job in view
        is running: its progress moves without an event), else within ``WAIT_SECONDS``."""
        deadline = time.monotonic() + (2 * STEP_SECONDS if busy else WAIT_SECONDS)
        while self.count == seen and time.monotonic() < deadline:
            await asyncio.sleep(STEP_SECONDS)
        return self.count
