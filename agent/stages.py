"""The stages a job goes through, one name each: an error names the stage it happened in, the
job's record keeps it, the pipeline times its stages under these names and the metrics label
them so."""

from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    CLAIM = "claim"  # moving the file into processing/
    SIZE = "size"  # checked against the inbox's max_file_bytes
    READ = "read"  # hashing the file
    DETECT = "detect"
    EXTRACT = "extract"
    OCR = "ocr"
    CHUNK = "chunk"
    EMBED = "embed"
    INDEX = "index"
    DONE = "done"  # filing it in done/
    PIPELINE = "pipeline"  # somewhere in the pipeline (its worker killed or gone)


# The pipeline's stages that are timed (a job's `stages`, the stage duration histogram).
TIMED: tuple[Stage, ...] = (Stage.DETECT, Stage.EXTRACT, Stage.OCR, Stage.CHUNK, Stage.EMBED,
                            Stage.INDEX)
