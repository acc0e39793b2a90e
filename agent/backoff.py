"""A failure that repeats (a full disk, a locked database) is logged once per change of state,
and retried with a growing wait, so the log says what happened instead of repeating it."""

from __future__ import annotations

from typing import Any


class RepeatedFailure:
    """The state of one loop that keeps failing: ``failed`` says how long to wait and logs only
    a new kind of error; ``succeeded`` logs once that the loop has recovered."""

    def __init__(self, log: Any, event: str, *, first_wait: float = 1.0,
                 max_wait: float = 10.0) -> None:
        self.log = log
        self.event = event
        self.first_wait = first_wait
        self.max_wait = max_wait
        self.failures = 0
        self._error: str | None = None
        self._wait = first_wait

    def failed(self, exc: BaseException, **context: Any) -> float:
        """Note one failure; return the seconds to wait before the next try."""
        error = f"{type(exc).__name__}: {exc}"
        self.failures += 1
        if error != self._error:
            if self._error is None:  # the first of a run: with its traceback
                self.log.exception(self.event, error=error, **context)
            else:
                self.log.error(self.event, error=error, failures=self.failures, **context)
            self._error = error
            self._wait = self.first_wait
        else:
            self._wait = min(self.max_wait, self._wait * 2)
        return self._wait

    def succeeded(self, **context: Any) -> None:
        if self._error is None:
            return
        self.log.warning(f"{self.event}: recovered", failures=self.failures,
                         last_error=self._error, **context)
        self.failures = 0
        self._error = None
        self._wait = self.first_wait
