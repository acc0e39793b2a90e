"""Short names for the document types the agent reads, as users type them (``--type xlsx``)
and as metrics label them (``type="xlsx"``); MIME types stay the stored truth."""

from __future__ import annotations

SHORT_TYPES = {
    "txt": "text/plain", "text": "text/plain", "md": "text/markdown", "markdown": "text/markdown",
    "html": "text/html", "htm": "text/html", "csv": "text/csv", "json": "application/json",
    "jsonl": "application/x-ndjson", "ndjson": "application/x-ndjson", "xml": "application/xml",
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "xlsm": "application/vnd.ms-excel.sheet.macroenabled.12",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "odt": "application/vnd.oasis.opendocument.text",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "odp": "application/vnd.oasis.opendocument.presentation",
    "epub": "application/epub+zip", "eml": "message/rfc822",
    "msg": "application/vnd.ms-outlook", "rtf": "text/rtf",
    "png": "image/png", "jpeg": "image/jpeg", "jpg": "image/jpeg", "tiff": "image/tiff",
    "webp": "image/webp", "bmp": "image/bmp", "gif": "image/gif",
    "heic": "image/heic", "heif": "image/heif",
    "doc": "application/msword", "xls": "application/vnd.ms-excel",
    "ppt": "application/vnd.ms-powerpoint",
}
_NAMES: dict[str, str] = {}
for _short, _mime in SHORT_TYPES.items():
    _NAMES.setdefault(_mime, _short)


def short_type(mime: str | None) -> str:
    """``xlsx`` for the spreadsheet MIME type; ``other`` for what has no short name."""
    return _NAMES.get(mime or "", "other")


def metric_types() -> list[str]:
    """One label per type (txt, not also text), for series created before any document."""
    return sorted(set(_NAMES.values()))
