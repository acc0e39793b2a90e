"""Jupyter notebooks read as what a person sees in them: markdown cells as Markdown (their
headings become the sections' headings), code cells and their text outputs as code blocks;
pictures and other rich outputs left out, counted in one warning. nbformat 4 and 3."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agent.errors import PermanentError
from agent.pipeline.readers.extract import ExtractOptions, read_text_blocks
from agent.pipeline.readers.outline import Section, markdown_sections
from agent.stages import Stage

TEXT_OUTPUTS = ("text/plain", "text/markdown")


def extract_notebook(path: Path, _options: ExtractOptions | None = None) -> Iterator[Section]:
    """The notebook's cells in order, as one Markdown document cut at its headings."""
    try:
        notebook = json.loads("".join(read_text_blocks(path)))
    except ValueError as exc:
        raise PermanentError(f"the notebook is not valid JSON ({exc})", stage=Stage.EXTRACT) \
            from None
    if not isinstance(notebook, dict):
        raise PermanentError("the notebook is not a JSON object", stage=Stage.EXTRACT)
    blocks: list[str] = []
    left_out = 0
    for cell in _cells(notebook):
        kind, source = cell.get("cell_type"), _text(cell.get("source", cell.get("input", "")))
        if kind == "markdown" or kind == "raw":
            blocks.append(source.strip() + "\n\n")
        elif kind == "code":
            if source.strip():
                blocks.append(f"```\n{source.rstrip()}\n```\n\n")
            for output in cell.get("outputs") or []:
                text, pictures = _output_text(output)
                left_out += pictures
                if text.strip():
                    blocks.append(f"```\n{text.rstrip()}\n```\n\n")
    yield from markdown_sections(iter(blocks))
    if left_out:
        yield Section("", note=f"{left_out} picture or rich output{'s' if left_out > 1 else ''}"
                               " of the notebook's cells left out (no text to index)")


def _cells(notebook: dict[str, Any]) -> list[dict[str, Any]]:
    if isinstance(notebook.get("cells"), list):  # nbformat 4
        return [c for c in notebook["cells"] if isinstance(c, dict)]
    cells: list[dict[str, Any]] = []  # nbformat 3: cells inside worksheets
    for sheet in notebook.get("worksheets") or []:
        if isinstance(sheet, dict):
            cells += [c for c in sheet.get("cells") or [] if isinstance(c, dict)]
    return cells


def _text(value: Any) -> str:
    """A notebook string: one string, or a list of lines."""
    if isinstance(value, list):
        return "".join(str(part) for part in value)
    return value if isinstance(value, str) else ""


def _output_text(output: Any) -> tuple[str, int]:
    """An output's text, and how many pictures or rich parts of it were left out."""
    if not isinstance(output, dict):
        return "", 0
    kind = output.get("output_type")
    if kind == "stream":
        return _text(output.get("text")), 0
    if kind == "error":
        return "\n".join(_plain(line) for line in output.get("traceback") or []), 0
    data = output.get("data") or {key: output[key] for key in ("text", "png", "jpeg", "html")
                                  if key in output}  # nbformat 3 put them at the top
    text = next((_text(data[key]) for key in (*TEXT_OUTPUTS, "text") if key in data), "")
    pictures = sum(1 for key in data if key.startswith("image/") or key in ("png", "jpeg"))
    return text, pictures


def _plain(line: Any) -> str:
    """A traceback line without its terminal colours."""
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", str(line))
