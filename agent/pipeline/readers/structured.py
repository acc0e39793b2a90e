"""Data formats read as the text they hold: JSON Lines (one record a line) and XML (the text
of its elements, not its markup), both streamed, so memory does not grow with the file.

A JSON Lines record becomes ``key.path: value`` lines, records a paragraph apart; a line that
is not JSON is skipped (one bad record never fails the file), and a file with no valid record
fails saying so. XML is parsed by lxml as a stream of events with a parser that resolves no
entity and touches no DTD or network; each element's text is a line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agent.errors import PermanentError
from agent.pipeline.readers.extract import ExtractOptions, read_text_blocks
from agent.pipeline.readers.outline import OutlineBuilder, Section
from agent.pipeline.readers.xmlstream import SAFE_PARSING
from agent.stages import Stage

MAX_DEPTH = 200
MAX_LINE_CHARS = 16 * 1024 * 1024  # one record longer than this is skipped, not parsed
XML_BLOCK = 64 * 1024


def _fail(message: str) -> PermanentError:
    return PermanentError(message, stage=Stage.EXTRACT)


def record_lines(node: Any, prefix: str = "", depth: int = 0) -> Iterator[str]:
    """``key.path: value`` for every leaf of a JSON value."""
    if depth > MAX_DEPTH:
        raise _fail(f"the JSON is nested deeper than {MAX_DEPTH} levels")
    if isinstance(node, dict):
        for key, value in node.items():
            yield from record_lines(value, f"{prefix}.{key}" if prefix else str(key), depth + 1)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from record_lines(value, f"{prefix}[{i}]", depth + 1)
    elif node is not None and str(node).strip():
        yield f"{prefix}: {node}" if prefix else str(node)


def _lines(path: Path) -> Iterator[str]:
    rest = ""
    for block in read_text_blocks(path):
        rest += block
        *whole, rest = rest.split("\n")
        yield from whole
        if len(rest) > MAX_LINE_CHARS:
            rest = ""  # a runaway line: dropped, its record skipped
    if rest:
        yield rest


def extract_ndjson(path: Path, _options: ExtractOptions | None = None) -> Iterator[Section]:
    """JSON Lines: each valid record's fields, a paragraph each."""
    builder = OutlineBuilder()
    good = bad = 0
    for line in _lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            bad += 1
            continue
        good += 1
        text = "\n".join(record_lines(record))
        if text:
            yield from builder.text(text + "\n\n")
    if not good:
        raise _fail(f"not JSON Lines: none of its {bad:,} lines is a JSON value")
    yield from builder.finish()


class _XmlText:
    """lxml parser target: collects element text in document order, a line per element."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0

    def start(self, tag: Any, attrib: Any) -> None:
        self._break()

    def end(self, tag: Any) -> None:
        self._break()

    def data(self, data: str) -> None:
        self.parts.append(data)
        self.size += len(data)

    def _break(self) -> None:
        if self.parts and not self.parts[-1].endswith("\n"):
            self.parts.append("\n")

    def take(self) -> str:
        lines = (" ".join(line.split()) for line in "".join(self.parts).split("\n"))
        self.parts, self.size = [], 0
        return "\n".join(line for line in lines if line)

    def close(self) -> None:
        return None


def extract_xml(path: Path, _options: ExtractOptions | None = None) -> Iterator[Section]:
    """The text of an XML document's elements, a line each, read as a stream."""
    from lxml import etree

    target = _XmlText()
    parser = etree.XMLParser(target=target, **SAFE_PARSING)
    builder = OutlineBuilder()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(XML_BLOCK), b""):
                parser.feed(block)
                if target.size >= XML_BLOCK:
                    text = target.take()
                    if text:
                        yield from builder.text(text + "\n")
            parser.close()
    except etree.XMLSyntaxError as exc:
        raise _fail(f"the XML is not well-formed ({exc})") from None
    text = target.take()
    if text:
        yield from builder.text(text + "\n")
    yield from builder.finish()
