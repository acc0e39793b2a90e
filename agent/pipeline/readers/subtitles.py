"""Subtitles and captions (WebVTT, SubRip): the words spoken, one cue a line, without the cue
numbers, timings, cue settings, comments, styles or markup that surround them; streamed."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

from agent.pipeline.readers.extract import BLOCK_BYTES, ExtractOptions, read_text_blocks
from agent.pipeline.readers.outline import Section

# 00:01:14,440 --> 00:01:15,760 (SubRip) or 00:03.500 --> 00:05.000 A:start (WebVTT)
TIMING = re.compile(r"^\s*(?:\d+:)?\d{1,2}:\d{2}[.,]\d{1,3}\s*-->")
TAG = re.compile(r"</?[A-Za-z0-9.:_ -]{1,64}>|<\d{1,2}:\d{2}[:.\d]*>")  # <c.x>, <v Roger>, <00:01.000>
SKIPPED_BLOCKS = ("WEBVTT", "NOTE", "STYLE", "REGION")  # header, comments and settings


def extract_subtitles(path: Path, _options: ExtractOptions | None = None) -> Iterator[Section]:
    """Each cue's text, in order, in sections of about ``BLOCK_BYTES``."""
    out: list[str] = []
    size = 0
    for cue in _cues(_lines(path)):
        out.append(cue)
        size += len(cue) + 1
        if size >= BLOCK_BYTES:
            yield Section("\n".join(out) + "\n")
            out, size = [], 0
    if out:
        yield Section("\n".join(out) + "\n")


def _lines(path: Path) -> Iterator[str]:
    carry = ""
    for block in read_text_blocks(path):
        carry += block
        *whole, carry = carry.split("\n")
        yield from whole
    if carry:
        yield carry


def _cues(lines: Iterator[str]) -> Iterator[str]:
    """The text of each cue: the lines after its timing line, up to a blank line."""
    block: list[str] = []
    for line in (*lines, ""):
        line = line.rstrip("\r").lstrip("\ufeff")
        if line.strip():
            block.append(line)
            continue
        if block and not block[0].startswith(SKIPPED_BLOCKS):
            timing = next((i for i, text in enumerate(block) if TIMING.match(text)), None)
            text = block if timing is None else block[timing + 1:]
            cue = " ".join(html.unescape(TAG.sub("", t)).strip() for t in text).strip()
            if cue:
                yield cue
        block = []
