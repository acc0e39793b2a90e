"""watchdog only logs an inotify overflow (events were dropped); this hook turns that log line
into a call, so the watcher rescans its inbox at once."""

from __future__ import annotations

import logging
from collections.abc import Callable

WATCHDOG_LOGGERS = ("watchdog.observers.inotify_c", "watchdog.observers.inotify")


class OverflowHook(logging.Handler):
    """watchdog only logs an inotify overflow; this turns that log line into a callback.

    Installed by a watcher's ``start()`` and removed by its ``stop()``; the loggers are set to
    WARNING so the line is made even when the agent logs only errors.
    """

    def __init__(self, callback: Callable[[], None]) -> None:
        super().__init__(level=logging.WARNING)
        self.callback = callback

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            self.callback()

    def install(self) -> None:
        for name in WATCHDOG_LOGGERS:
            logger = logging.getLogger(name)
            logger.setLevel(logging.WARNING)
            logger.addHandler(self)

    def remove(self) -> None:
        for name in WATCHDOG_LOGGERS:
            logging.getLogger(name).removeHandler(self)
