"""A document's headings, turned into sections that know their place (title › heading › sub).

Every reader that sees structure (HTML h1–h3, Markdown ``#``, DOCX heading styles, PDF
bookmarks) feeds the same builder: headings of level 1 and 2 start a new section, so no chunk
crosses a top-level section; a level-3 heading starts a new *part* of its section (a mark at its
offset), which changes the path of the chunks after it without cutting them. Heading lines are
kept out of the body text: they travel as the path, which the chunker puts in front of every
chunk it embeds and stores beside it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

SPLIT_LEVEL = 2  # headings of this level or above end a section
MARK_LEVEL = 3  # deeper ones up to this level only change the path
PATH_SEPARATOR = " › "
MAX_HEADING_CHARS = 200
MAX_HEADINGS_KEPT = 200
MAX_SECTION_CHARS = 1 << 20  # a section this long is flushed (same path), to keep memory flat


@dataclass(frozen=True, slots=True)
class Section:
    """A run of text from one page (when the format has pages) under one heading path.

    ``marks`` are (offset in ``text``, path) where a sub-heading changes the path inside it.
    ``note`` says what of this part was skipped and why (a page in a script no language reads,
    an unreadable table): it becomes one of the job's warnings. ``ocr``: the text was read
    from a picture of the page (the web page marks those pages).
    """

    text: str
    page: int | None = None
    path: tuple[str, ...] = ()
    marks: tuple[tuple[int, tuple[str, ...]], ...] = field(default=())
    note: str = ""
    ocr: bool = False  # read from a picture of the page

    def path_at(self, offset: int) -> tuple[str, ...]:
        """The heading path in force at ``offset`` of the text."""
        path = self.path
        for at, mark in self.marks:
            if at > offset:
                break
            path = mark
        return path


def clean_heading(text: str) -> str:
    """A heading as one short line: whitespace collapsed, permalink signs (¶ #) dropped."""
    text = " ".join(text.replace("¶", " ").split()).strip(" #")
    return text[:MAX_HEADING_CHARS]


class OutlineBuilder:
    """Collects headings and body text in reading order and yields sections."""

    def __init__(self, page: int | None = None, root: tuple[str, ...] = ()) -> None:
        self.page = page
        self.stack: list[tuple[int, str]] = [(0, t) for t in root]
        self._parts: list[str] = []
        self._size = 0
        self._section_path = self.path
        self._marks: list[tuple[int, tuple[str, ...]]] = []
        self._yielded = False
        self._headings: list[str] = []  # the first few, for a document that is only headings

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(text for _, text in self.stack)

    def heading(self, level: int, text: str) -> Iterator[Section]:
        """A heading of ``level`` (1 = top); yields the section it ends, if any."""
        text = clean_heading(text)
        if not text:
            return
        if len(self._headings) < MAX_HEADINGS_KEPT:
            self._headings.append(text)
        while self.stack and self.stack[-1][0] >= level:
            self.stack.pop()
        self.stack.append((level, text))
        if level <= SPLIT_LEVEL:
            yield from self.flush()  # the next section starts under the new path
        elif level <= MARK_LEVEL:
            self._marks.append((self._size, self.path))

    def text(self, body: str) -> Iterator[Section]:
        """Body text under the current heading."""
        if not body:
            return
        if self._parts and not self._parts[-1].endswith("\n"):
            body = "\n" + body
        self._parts.append(body)
        self._size += len(body)
        if self._size >= MAX_SECTION_CHARS:
            yield from self.flush()

    def flush(self) -> Iterator[Section]:
        """The section collected so far (nothing if it holds no text)."""
        text = "".join(self._parts)
        marks = tuple((at, path) for at, path in self._marks if at < len(text))
        self._parts, self._size, self._marks = [], 0, []
        if text.strip():
            self._yielded = True
            yield Section(text, self.page, self._section_path, marks)
        self._section_path = self.path

    def finish(self) -> Iterator[Section]:
        """The last section. A document whose only text is its headings (a title page, a
        page of headings and nothing under them) is read as those headings, not as empty."""
        yield from self.flush()
        if not self._yielded and self._headings:
            self._yielded = True
            yield Section("\n".join(self._headings) + "\n", self.page, ())


_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")


def markdown_sections(blocks: Iterable[str]) -> Iterator[Section]:
    """Sections of Markdown text read in blocks: ATX (``## x``) and setext (``x`` over
    ``===``/``---``) headings outside fenced code."""
    builder = OutlineBuilder()
    fence: str | None = None
    carry = ""
    pending: list[str] = []  # body lines not yet handed over (the last may be a setext title)

    def body() -> Iterator[Section]:
        if pending:
            yield from builder.text("".join(pending))
            pending.clear()

    for block in [*blocks, None]:
        if block is None:
            lines = [carry] if carry else []
        else:
            carry += block
            lines = carry.splitlines(keepends=True)
            carry = lines.pop() if lines and not lines[-1].endswith(("\n", "\r")) else ""
        for line in lines:
            stripped = line.rstrip("\r\n")
            if fence is not None:
                if stripped.lstrip().startswith(fence):
                    fence = None
                pending.append(line)
                continue
            opening = _FENCE.match(stripped)
            if opening:
                fence = opening.group(1)[:3]
                pending.append(line)
                continue
            atx = _ATX.match(stripped)
            if atx:
                yield from body()
                yield from builder.heading(len(atx.group(1)), atx.group(2))
                continue
            setext = _SETEXT.match(stripped)
            if setext and pending and pending[-1].strip() and not pending[-1].lstrip().startswith(
                    ("-", "*", "+", "|", ">")):
                title = pending.pop()
                yield from body()
                yield from builder.heading(1 if setext.group(1)[0] == "=" else 2, title)
                continue
            pending.append(line)
            if len(pending) >= 512:
                yield from body()
    yield from body()
    yield from builder.finish()


def align_headings(text: str, headings: Iterable[tuple[int, str]]) -> Iterator[Section]:
    """Sections of ``text`` (extracted main content) cut at the lines that are its headings.

    ``headings`` are (level, text) in document order, found in the markup; those that are not
    lines of ``text`` (navigation that the content extractor dropped) are skipped.
    """
    lines = text.splitlines(keepends=True)
    where: dict[str, list[int]] = {}
    for i, line in enumerate(lines):
        key = clean_heading(line)
        if key:
            where.setdefault(key, []).append(i)
    found: dict[int, int] = {}
    after = -1
    for level, heading in headings:
        candidates = where.get(clean_heading(heading), [])
        line_no = next((i for i in candidates if i > after), None)
        if line_no is not None:
            found[line_no] = level
            after = line_no
    builder = OutlineBuilder()
    body: list[str] = []
    for i, line in enumerate(lines):
        if i in found:
            yield from builder.text("".join(body))
            body = []
            yield from builder.heading(found[i], line)
        else:
            body.append(line)
    yield from builder.text("".join(body))
    yield from builder.finish()
