"""What a file is, from its content (libmagic); the suffix only breaks ties between text types."""

from __future__ import annotations

from pathlib import Path

from agent.errors import PermanentError

# libmagic says text/plain for these; the suffix tells them apart.
_TEXT_BY_SUFFIX = {
    ".md": "text/markdown", ".markdown": "text/markdown", ".csv": "text/csv",
    ".tsv": "text/csv", ".json": "application/json", ".htm": "text/html", ".html": "text/html",
}
_ALIASES = {"text/x-markdown": "text/markdown", "application/csv": "text/csv",
            "text/x-csv": "text/csv", "text/xml": "text/plain"}
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def detect_type(path: Path, allowed: list[str] | None = None) -> str:
    """The MIME type to extract ``path`` as; ``PermanentError`` when it is not allowed."""
    import magic  # libmagic: loaded only where files are processed

    try:
        detected = magic.from_file(str(path), mime=True)
    except (OSError, magic.MagicException) as exc:
        raise PermanentError(f"cannot detect the type: {exc}", stage="detect") from None
    mime = _ALIASES.get(detected, detected)
    suffix = path.suffix.lower()
    if mime == "text/plain" and suffix in _TEXT_BY_SUFFIX:
        mime = _TEXT_BY_SUFFIX[suffix]
    elif mime in ("application/zip", "application/octet-stream") and suffix == ".docx":
        mime = DOCX  # some libmagic builds stop at "zip"; extraction verifies it really is DOCX
    elif mime == "application/x-empty" or (mime == "inode/x-empty"):
        raise PermanentError("the file is empty (0 bytes)", stage="detect")
    if allowed is not None and mime not in {_ALIASES.get(a, a) for a in allowed}:
        raise PermanentError(
            f"unsupported type {mime} (detected from content); allowed: {', '.join(allowed)}",
            stage="detect",
        )
    return mime
