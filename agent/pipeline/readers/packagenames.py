"""Office packages whose part names use Windows backslashes (``xl\\workbook.xml``).

Some Windows tools write the zip of a workbook or document with ``\\`` in its part names;
Excel opens them, openpyxl, LibreOffice and the readers here look for ``xl/workbook.xml`` and
find nothing (calamine's issue_530.xlsx). The names are fixed in a copy, byte for byte in the
zip's headers (``\\`` and ``/`` are one byte each, and never part of a longer UTF-8 or CP437
character), so nothing is unpacked to do it and the zip-bomb checks see the copy as it is.
"""

from __future__ import annotations

import shutil
import struct
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

LOCAL_HEADER = 30  # bytes before a local header's name; its length at offset 26
CENTRAL_HEADER = 46  # bytes before a central entry's name; name, extra, comment lengths at 28


def has_backslash_names(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return any("\\" in name for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False  # the reader says what is wrong with it


def forward_slashed(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` with ``\\`` in every part name turned into ``/``."""
    with zipfile.ZipFile(source) as archive:
        entries = archive.infolist()
        directory = archive.start_dir  # type: ignore[attr-defined]
    shutil.copyfile(source, target)
    with open(target, "r+b") as fh:
        for entry in entries:
            _fix_name(fh, entry.header_offset + 26, entry.header_offset + LOCAL_HEADER)
        position = directory
        for _ in entries:
            fh.seek(position + 28)
            name, extra, comment = struct.unpack("<HHH", fh.read(6))
            _fix_name(fh, position + 28, position + CENTRAL_HEADER)
            position += CENTRAL_HEADER + name + extra + comment


def _fix_name(fh: Any, length_at: int, name_at: int) -> None:
    fh.seek(length_at)
    (length,) = struct.unpack("<H", fh.read(2))
    fh.seek(name_at)
    name = fh.read(length)
    fh.seek(name_at)
    fh.write(name.replace(b"\\", b"/"))


def read_forward_slashed(reader: Callable[[Path, Any], Iterator[Any]], path: Path,
                         options: Any) -> Iterator[Any]:
    """``reader`` over a copy of the package with its part names fixed, removed after."""
    with tempfile.TemporaryDirectory(prefix="ingest-package-") as folder:
        fixed = Path(folder) / f"package{path.suffix.lower()[:8]}"
        forward_slashed(path, fixed)
        yield from reader(fixed, options)
