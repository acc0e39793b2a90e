"""Table rows as lines that keep their column headers, whatever the format the table came from.

A figure alone ("3318") cannot be tied to its column or period by a search or by a reader of
the hit; ``Zone: EMEA · Sales: 3318 · Period: Jan–Jun 2023`` can. Every reader of tables
(spreadsheets, CSV, Word and OpenDocument tables, slide tables, HTML tables) gives its rows
to a ``TableLines`` and indexes what it returns.

How the header is found, in the first rows of a table:
- leading rows with at most one filled cell are titles and notes: returned as their own
  lines, the first two name the table (its caption, "Sales by zone, 2023");
- the first row with two or more filled cells, none of them a number, is the header;
- a header row with gaps (a merged cell spanning columns, "2023 | | 2024 | ") followed by a
  second such row ("Sales | Units | Sales | Units") makes a two-row header: each column's name
  is the top name carried over the gap, then its own ("2023 Sales");
- a table whose first filled row holds a number has no header: its rows stay ``a | b | c``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.pipeline.readers.outline import OutlineBuilder, Section

NUMBER = re.compile(r"[-+−]?[$€£¥]?\d[\d.,  ']*%?")
YEAR = re.compile(r"(19|20)\d\d")  # a year heads a column ("Zone | 2022 | 2023")
MAX_CAPTION_ROWS = 2
CELL_SEPARATOR = " · "
HEADER_ROWS = 2
MAX_HEADER_CHARS = 60  # a column name longer than this is a sentence, not a name


def date_text(moment: datetime) -> str:
    """A spreadsheet's date cell as text: the date alone at midnight, else date and time."""
    return moment.date().isoformat() if moment.time().isoformat() == "00:00:00" \
        else moment.isoformat(sep=" ")


def is_number(cell: str) -> bool:
    """A cell that is a figure (12553, 3.2 %, −4,5, $1,200), not a label."""
    return NUMBER.fullmatch(cell.strip()) is not None


def _is_label_row(cells: list[str]) -> bool:
    """Two or more names and no figure; years count as names when the row also has a word,
    or when it has gaps (years spanning merged columns)."""
    filled = [c for c in cells if c]
    years = [c for c in filled if YEAR.fullmatch(c)]
    return len(filled) >= 2 and (len(years) < len(filled) or "" in cells) and not any(
        (is_number(c) and c not in years) or len(c) > MAX_HEADER_CHARS for c in filled)


class TableLines:
    """One table's rows in, lines out: captions, then each data row with its column names."""

    def __init__(self) -> None:
        self.header: list[str] | None = None
        self.caption = ""
        self._pending: list[str] | None = None  # a header row with gaps: maybe the top of two
        self._settled = False  # the header is decided (found, or there is none)
        self._captions = 0
        self._data_rows = 0

    def row(self, cells: Iterable[str]) -> list[str]:
        """The lines one row becomes (none for an empty row or a header row)."""
        cells = [" ".join(c.split()) for c in cells]
        while cells and not cells[-1]:
            cells.pop()
        if not any(cells):
            return []
        if self._settled:
            return [self._line(cells)]
        filled = sum(1 for c in cells if c)
        if filled <= 1 and self._pending is None:  # a title or a note above the table
            text = next(c for c in cells if c)
            if self._captions < MAX_CAPTION_ROWS:  # the first ones name it
                self._captions += 1
                self.caption = f"{self.caption} {text}".strip() if self.caption else text
            return [text]
        if self._pending is not None:
            top, self._pending = self._pending, None
            if _is_label_row(cells) and sum(1 for c in cells if c) > sum(1 for c in top if c):
                self.header = _two_row_header(top, cells)
                self._settled = True
                return []
            self.header = top
            self._settled = True
            return [self._line(cells)]
        if _is_label_row(cells):
            if "" in cells:
                self._pending = cells
                return []
            self.header = cells
            self._settled = True
            return []
        self._settled = True  # the first filled row holds a figure: no header
        return [self._line(cells)]

    def finish(self) -> list[str]:
        """Lines still held at the end of the table (a header row with nothing under it)."""
        held, self._pending = self._pending, None
        if held is not None:
            return [" | ".join(c for c in held if c)]
        if self.header is not None and not self._data_rows:
            return [" | ".join(c for c in self.header if c)]
        return []

    def _line(self, cells: list[str]) -> str:
        self._data_rows += 1
        header = self.header
        if not header:
            return " | ".join(cells)
        parts = []
        for index, cell in enumerate(cells):
            if not cell:
                continue
            name = header[index] if index < len(header) else ""
            parts.append(f"{name}: {cell}" if name and name != cell else cell)
        return CELL_SEPARATOR.join(parts)


def _two_row_header(top: list[str], bottom: list[str]) -> list[str]:
    names, carried = [], ""
    for index in range(max(len(top), len(bottom))):
        above = top[index] if index < len(top) else ""
        carried = above or carried
        below = bottom[index] if index < len(bottom) else ""
        names.append(" ".join(part for part in (carried, below) if part))
    return names


def table_lines(rows: Iterable[Iterable[str]]) -> list[str]:
    """A whole (small) table's lines at once: a slide's table, an HTML table."""
    table = TableLines()
    lines = [line for cells in rows for line in table.row(cells)]
    return lines + table.finish()


def row_values(text: str) -> str:
    """The values of every table row in ``text``, in order and without their column names
    ("Zone: EMEA · Sales: 3318" → "EMEA 3318"), a row a line: indexed beside the text so a
    query made of a row's values matches the row as a phrase. Empty when ``text`` has no such
    row (a row without column names already reads as its values)."""
    rows = []
    for line in text.splitlines():
        if CELL_SEPARATOR not in line:
            continue
        cells = [part.split(": ", 1)[-1] for part in line.split(CELL_SEPARATOR)]
        rows.append(" ".join(cells))
    return "\n".join(rows)


def rows_text(builder: OutlineBuilder, lines: list[str]) -> Iterator[Section]:
    """A table's lines given to an outline, as the text of the section they are in."""
    return builder.text("\n".join(lines) + "\n") if lines else iter(())
