"""Write what is derived from agent/formats.py into the files people read: the table in
docs/formats.md and the commented default allowed_types in config.example.toml
(`make docs`; tests/test_formats_record.py and tests/test_config.py fail while they differ)."""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.formats import DEFAULT_ALLOWED_TYPES, formats_table  # noqa: E402

BEGIN, END = "<!-- formats:begin -->\n", "<!-- formats:end -->"


def allowed_types_comment() -> str:
    items = ", ".join(f'"{mime}"' for mime in DEFAULT_ALLOWED_TYPES)
    lines = textwrap.wrap(f"allowed_types = [{items}]", width=96, break_long_words=False,
                          break_on_hyphens=False, subsequent_indent="  ")
    return "\n".join("# " + line for line in lines)


def main() -> None:
    docs = ROOT / "docs" / "formats.md"
    text = docs.read_text(encoding="utf-8")
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    docs.write_text(text[:start] + formats_table() + text[end:], encoding="utf-8")
    example = ROOT / "config.example.toml"
    text = example.read_text(encoding="utf-8")
    text = re.sub(r"^# allowed_types = \[.*?\]$", lambda _: allowed_types_comment(), text,
                  count=1, flags=re.M | re.S)
    example.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
