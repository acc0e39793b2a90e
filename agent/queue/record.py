"""What a job's metadata holds, typed and versioned: where its file came from, what the
pipeline made of it, how its attempts and turns went, where its file is now.

Both queue backends store it as one JSON object and merge a change into it the same way, as a
JSON merge patch (RFC 7396: objects merge key by key, recursively; a null removes the key; any
other value replaces). Writers build a change with ``record_patch`` (an unknown key or a value
of the wrong type fails there, not in a reader); readers take ``job.record``. Keys the agent
does not know (written by an older or newer agent, or by code using the predecessor's API)
are kept and passed through.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

RECORD_VERSION = 1


class Attempt(BaseModel):
    """One failed attempt, as the job's history keeps it."""

    model_config = ConfigDict(extra="allow", frozen=True)

    attempt: int = 0
    stage: str = ""
    error_type: str = ""
    error: str = ""
    at: str = ""


class JobRecord(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    record_version: int = RECORD_VERSION
    # how it was queued (the watcher, a scan, an upload, `enqueue`)
    source: str | None = None
    relpath: str | None = None  # inside its inbox
    size: int | None = None  # bytes when queued
    fields: dict[str, str] = Field(default_factory=dict)  # an upload's other form fields
    # what the pipeline made of it
    document_id: str | None = None
    chunks: int | None = None
    mime: str | None = None
    warnings: list[str] = Field(default_factory=list)  # parts of the file left out
    ocr_pages: int | None = None
    ocr_page_numbers: list[int] = Field(default_factory=list)
    stages: dict[str, float] = Field(default_factory=dict)  # seconds, over every turn
    # where its file went
    done_path: str | None = None
    done_inode: int | None = None
    failed_path: str | None = None
    failed_report: str | None = None
    # how its attempts and turns went
    stage: str | None = None  # where the last failure happened
    error_type: str | None = None
    history: list[Attempt] = Field(default_factory=list)
    paused: bool = False  # made way for waiting files and will resume
    turns: int = 0  # times it paused
    changes: int = 0  # times its file changed under it (no retry spent)
    recoveries: int = 0  # times a crashed run left it processing
    skip_pages: list[str] = Field(default_factory=list)  # pictures whose OCR held the worker

    @classmethod
    def of(cls, metadata: dict[str, Any]) -> JobRecord:
        """The record a job's stored metadata holds: unknown keys kept as extras, a known key
        whose stored value has the wrong type (written by hand, or by an agent before the
        record was typed) left out rather than failing the reader."""
        try:
            return cls.model_validate(metadata)
        except ValidationError as exc:
            bad = {str(error["loc"][0]) for error in exc.errors() if error["loc"]}
            return cls.model_validate({k: v for k, v in metadata.items() if k not in bad})


def record_patch(**changes: Any) -> dict[str, Any]:
    """A change to a job's record, checked: each key must be a field of ``JobRecord`` and its
    value of the field's type. None, or an empty list or mapping (the field's default),
    removes the key, so no patch carries an empty container (Lua cannot tell ``{}`` from
    ``[]``)."""
    unknown = set(changes) - set(JobRecord.model_fields)
    if unknown:
        raise TypeError(f"not fields of a job's record: {', '.join(sorted(unknown))}")
    given = {key: value for key, value in changes.items()
             if value is not None and not (isinstance(value, list | tuple | dict) and not value)}
    checked = JobRecord.model_validate(given).model_dump(mode="json", include=set(given))
    return {"record_version": RECORD_VERSION, **checked,
            **{key: None for key in changes if key not in given}}
