"""One text hygiene step for every reader (issue 43 item 1): what no person sees as text never
reaches the index, and the words around it are stored as they are read."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from agent.pipeline.hygiene import clean_section, clean_text
from agent.pipeline.readers.outline import Section
from tests.helpers import cli, drain

REAL = Path(__file__).parent / "fixtures" / "real" / "unstructured"
INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ue000-\uf8ff\ufffe\uffff\u00ad]")


def test_real_pdfs_are_indexed_without_control_characters_and_with_whole_words(
        tmp_path: Path) -> None:
    """Two real PDFs (Unstructured's test documents): a paper whose line-end hyphenations
    pdfium marks with U+0002 (229 of them: `ef\\x02ficient`, `us\\x02ing`), whose accents are
    drawn apart (`Luk ´ acs`) and whose formulas hold U+0001 and U+001C; and a report whose
    bullets are a symbol font's private-use U+F0A7. Before: every one of those reached the
    index and the words they split could not be found."""
    config, by_name = drain(tmp_path, REAL / "multi-column.pdf", REAL / "negative-coords.pdf")
    assert {job["status"] for job in by_name.values()} == {"completed"}, by_name
    with sqlite3.connect(tmp_path / "data" / "index.db") as conn:
        text = "\n".join(t for (t,) in conn.execute("SELECT text FROM chunks"))
    assert not INVISIBLE.findall(text), sorted(set(INVISIBLE.findall(text)))
    for words in ("relies on efficient passage retrieval", "implemented using dense",
                  "Lucene-BM25", "Lukács", "Jégou", "• Life Cycle Assessment course"):
        assert words in text, words
    found = cli(config, "search", "efficient passage retrieval", "--mode", "lexical", "--json")
    assert found.returncode == 0 and '"file": "multi-column.pdf"' in found.stdout, found.stdout


def test_each_rule_on_the_text_a_reader_hands_over() -> None:
    assert clean_text("ef\x02ficient and us\ufffe\ning it") == "efficient and using it"
    assert clean_text("Lucene\x02BM25 and COVID\x0219") == "Lucene-BM25 and COVID-19"
    assert clean_text("Donau\u00addampf") == "Donaudampf"  # a soft hyphen inside a word
    assert clean_text("prote´ge´ of Herve J ´ egou, 2017. ´\nNext") == \
        "protégé of Herve Jégou, 2017. \nNext"
    assert clean_text("don´t") == "don´t", "no Latin-1 letter: left as it is"
    assert clean_text("cafe\u0301") == "caf\u00e9"  # NFC
    assert clean_text("\x01 first\n\uf0a7 second\nx\x1cy") == "• first\n• second\nxy"
    assert clean_text("old Mac\rline ends\r\nand Windows") == "old Mac\nline ends\nand Windows"
    assert clean_text("plain text, untouched") == "plain text, untouched"


def test_sub_heading_offsets_move_with_the_cleaned_text() -> None:
    """A section's marks (where a sub-heading starts inside its text) still point at the same
    words once characters before them are taken out."""
    text = "Intro ef\x02ficient.\nPart two starts here."
    at = text.index("Part")
    cleaned = clean_section(Section(text, marks=((at, ("Two\x01",)),), path=("Top\uf0a7",)))
    (offset, path), = cleaned.marks
    assert cleaned.text[offset:].startswith("Part two") and path == ("Two",)
    assert cleaned.path == ("Top",)
