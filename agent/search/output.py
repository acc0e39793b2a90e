"""What the full CLI and its quick search path share, light to import: how dates in options are
read, and how results and JSON are printed."""

from __future__ import annotations

import json
import re
from typing import Any

from agent.terminal import one_line, terminal_text


def format_results(response: dict[str, Any]) -> str:
    """A search response as people read it: rank, file, page, similarity, heading, snippet.

    Every field comes from documents or their names, so each is shown on one line with its
    control characters escaped."""
    if not response["answered"]:
        return terminal_text(f"no good answer: {response['note']}")
    lines = []
    for hit in response["results"]:
        where = one_line(str(hit["location"] or hit["file"]))
        page = f" p.{one_line(str(hit['page']))}" if hit["page"] else ""
        similarity = f"  cos {hit['similarity']:.2f}" if hit["similarity"] is not None else ""
        lines.append(f"{hit['rank']}. {one_line(str(hit['file']))}{page}{similarity}  ({where})")
        if hit["heading"]:
            lines.append(f"   {one_line(str(hit['heading']))}")
        lines.append(f"   {one_line(str(hit['snippet']))}")
        if hit.get("also_in"):
            lines.append(f"   also in: {one_line(', '.join(map(str, hit['also_in'])))}")
    return "\n".join(lines)


def json_text(data: Any, indent: int | None = 2) -> str:
    text = json.dumps(data, indent=indent, ensure_ascii=False, default=str)
    # Undecodable bytes of file names stay valid JSON escapes, not unprintable text.
    return re.sub("[\ud800-\udfff]", lambda m: f"\\u{ord(m.group()):04x}", text)


def epoch_of(value: str | None) -> float | None:
    """An ISO date or date-time (local time when no zone is given), or epoch seconds;
    ``ValueError`` for anything else."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        from datetime import datetime

        return datetime.fromisoformat(value).timestamp()
