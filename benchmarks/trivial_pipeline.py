"""A pipeline that only reads the file: measures the processor's own overhead per job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.config import Settings
from agent.pipeline import JobRequest, Progress


class ReadOnlyPipeline:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def run(self, request: JobRequest, progress: Progress) -> dict[str, Any]:
        size = len(Path(request.path).read_bytes())
        return {"document_id": None, "chunks": 0, "bytes": size, "stages": {}}


def build(settings: Settings) -> ReadOnlyPipeline:
    return ReadOnlyPipeline(settings)
