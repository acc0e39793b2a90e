"""structlog set-up: JSON lines for machines, coloured console for people; stdlib logs joined in."""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any, TextIO

import structlog

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR}


def configure_logging(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Route structlog and stdlib logging (watchdog, onnxruntime) to one stream in one format.

    Libraries' own log lines (extract-msg's INFO chatter) and Python warnings (Pillow's
    ``UserWarning``) pass at WARNING and above, through the same renderer and with the job's
    context; below that only when the level is ``debug``."""
    out = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not out.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if use_json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if not use_json:  # a terminal: text from documents must not drive it (JSON escapes itself)
        shared.append(_terminal_safe)
    levelno = LEVELS[level]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(levelno),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    # Every stdlib record here is a library's (the agent logs through structlog): quiet below
    # WARNING unless debugging. Libraries' loggers may be set lower (watchdog's, for overflows).
    handler.setLevel(levelno if levelno <= logging.DEBUG else max(levelno, logging.WARNING))
    logging.captureWarnings(True)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(levelno)


def _terminal_safe(_logger: Any, _name: str, event: MutableMapping[str, Any]
                   ) -> Mapping[str, Any]:
    from agent.terminal import terminal_text

    return {key: terminal_text(value) if isinstance(value, str) else value
            for key, value in event.items()}


class StrayOutput:
    """Turns what native libraries write straight to file descriptor 2 (Tesseract's
    "Estimating resolution", a C library's warning) into structured log lines.

    ``start()`` points fd 2 at a pipe and returns a stream on the real stderr for the logger;
    a thread logs each line read from the pipe with the context ``context()`` gives then.
    """

    def __init__(self, context: Callable[[], dict[str, Any]]) -> None:
        self.context = context
        self._thread: threading.Thread | None = None

    def start(self) -> TextIO:
        real = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
        self._thread = threading.Thread(target=self._pump, args=(read_end,), name="stray-output",
                                        daemon=True)
        self._thread.start()
        return os.fdopen(real, "w", buffering=1, encoding="utf-8", errors="backslashreplace")

    def _pump(self, fd: int) -> None:
        log = structlog.get_logger("agent.stray")
        with os.fdopen(fd, "rb") as pipe:
            for raw in pipe:
                line = raw.decode("utf-8", "backslashreplace").rstrip()
                if line:
                    log.warning("library output", line=line[:2000], **self.context())
