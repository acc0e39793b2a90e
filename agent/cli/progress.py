"""Progress of a long command: a bar on a terminal (tqdm); off one (a log, a pipe, systemd), a
line when the first item is done, then at most every few seconds and at the end, so whoever
reads the output sees the work move instead of nothing until it ends."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO, Any

LINE_EVERY_SECONDS = 5.0


class WorkProgress:
    """``step`` after each item; ``say`` prints a line without breaking the bar; ``close``
    at the end (a context manager does it)."""

    def __init__(self, label: str, unit: str, *, stream: IO[str] | None = None,
                 lines: bool = True, every: float = LINE_EVERY_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.label, self.unit, self.every, self.clock = label, unit, every, clock
        self.lines = lines  # False: off a terminal the command's own lines say enough
        self.stream = stream or sys.stdout
        self.began = clock()
        self.last_line: float | None = None
        self.done, self.total, self.note = 0, 0, ""
        self._bar: Any = None
        if self.stream.isatty():
            from tqdm import tqdm

            tqdm.monitor_interval = 0  # no monitor thread for a short command
            self._bar = tqdm(unit=unit, file=self.stream, desc=label, leave=True)

    def __enter__(self) -> WorkProgress:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def start(self, total: int, note: str = "") -> None:
        """The number of items, known before the first is done (and what happens first)."""
        self.total = total
        if self._bar is not None:
            self._bar.total = total
            self._bar.set_postfix_str(note[:40])
            self._bar.refresh()
        else:
            self._line(f"{total:,} {self.unit}s" + (f"; {note}" if note else ""))

    def step(self, done: int, note: str = "") -> None:
        """``done`` items of the total are finished; ``note`` names the last one."""
        self.note = note
        if self._bar is not None:
            self._bar.set_postfix_str(note[:40], refresh=False)
            self._bar.update(done - self.done)
            self.done = done
            return
        first = self.done == 0
        self.done = done
        now = self.clock()
        if first or self.last_line is None or now - self.last_line >= self.every \
                or done == self.total:
            self._report()

    def say(self, line: str, err: bool = False) -> None:
        """A line of the command's own output (on stderr with ``err``), printed above the bar."""
        out = sys.stderr if err else sys.stdout
        if self._bar is not None:
            self._bar.write(line, file=out)
        else:
            print(line, file=out, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.done and self.done != self.total:
            self._report()

    def _report(self) -> None:
        seconds = self.clock() - self.began
        share = f" ({100 * self.done // self.total} %)" if self.total else ""
        last = f"; last: {self.note}" if self.note else ""
        self._line(f"{self.done:,} of {self.total:,} {self.unit}s{share} in {seconds:.1f} s"
                   f"{last}")

    def _line(self, text: str) -> None:
        from agent.terminal import terminal_text

        self.last_line = self.clock()
        if not self.lines:
            return
        print(terminal_text(f"{self.label}: {text}"), file=self.stream, flush=True)
