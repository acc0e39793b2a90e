"""A pipeline that only reads the file: measures the processor's own overhead per job."""

from __future__ import annotations

from pathlib import Path

from agent.config.settings import Settings
from agent.pipeline import JobRequest, Progress
from agent.pipeline.result import PipelineResult


class ReadOnlyPipeline:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def run(self, request: JobRequest, progress: Progress) -> PipelineResult:
        size = len(Path(request.path).read_bytes())
        return PipelineResult(bytes=size)


def build(settings: Settings) -> ReadOnlyPipeline:
    return ReadOnlyPipeline(settings)
