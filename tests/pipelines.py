"""A stand-in pipeline for processor tests: it hangs, crashes or fails when a file asks it to.

A parser that hangs or segfaults on cue cannot be had otherwise; everything around it (worker
subprocess, queue, folders, signals) is the real thing. The real pipeline has its own tests.
"""

from __future__ import annotations

import logging
import os
import signal
import time
import warnings
from pathlib import Path

from agent.config.settings import Settings
from agent.errors import PermanentError, TransientError
from agent.pipeline import JobRequest, Progress
from agent.pipeline.result import PipelineResult


class ScriptedPipeline:
    """Reads the file's first line as an instruction: SLEEP n (silent), TICK n t (n seconds,
    reporting progress every t), STOPSELF (SIGSTOP, as a hung parser), KILL, PERMANENT,
    TRANSIENT, NOISE (talks as libraries do: raw bytes on fd 2, a Python warning, INFO and
    WARNING lines of a library's logger)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def run(self, request: JobRequest, progress: Progress) -> PipelineResult:
        first = Path(request.path).read_text(errors="replace").split("\n", 1)[0].split()
        command = first[0] if first else ""
        progress(50, f"scripted: {command or 'echo'}")
        if command == "SLEEP":
            time.sleep(float(first[1]))
        elif command == "TICK":
            until, every = time.monotonic() + float(first[1]), float(first[2])
            while time.monotonic() < until:
                time.sleep(every)
                progress(60, "scripted: still working")
        elif command == "STOPSELF":
            os.kill(os.getpid(), signal.SIGSTOP)
        elif command == "KILL":
            os.kill(os.getpid(), signal.SIGKILL)
        elif command == "PERMANENT":
            raise PermanentError("scripted permanent failure", stage="extract")
        elif command == "TRANSIENT":
            raise TransientError("scripted transient failure", stage="index")
        elif command == "NOISE":
            os.write(2, b"Estimating resolution as 301\n")  # as Tesseract's C++ does
            warnings.warn("image file could be truncated", UserWarning, stacklevel=1)
            logging.getLogger("extract_msg").info("chatter nobody needs")
            logging.getLogger("extract_msg").warning("attachment could not be decoded")
        return PipelineResult(document_id=f"doc-{request.job_id[:8]}", chunks=1,
                              stages={"extract": 0.001})


def build(settings: Settings) -> ScriptedPipeline:
    return ScriptedPipeline(settings)
