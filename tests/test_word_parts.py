"""Word files whole (issue 43 item 2): footnotes, endnotes and comments under headings of
their own, note references in the text, equations as linear text, page headers and footers
once — tried on Apache Tika's own test documents."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from lxml import etree

from agent.pipeline.readers.omml import math_text
from tests.helpers import cli, drain

REAL = Path(__file__).parent / "fixtures" / "real" / "tika"


def test_notes_comments_equations_and_headers_are_indexed(tmp_path: Path) -> None:
    """Before: only word/document.xml was read, so each of these was missing and the equation
    left a gap in its sentence."""
    config, by_name = drain(tmp_path, REAL / "testWORD_2006ml.docx", REAL / "footnotes.docx",
                            REAL / "testComment.docx")
    assert {job["status"] for job in by_name.values()} == {"completed"}, by_name
    with sqlite3.connect(tmp_path / "data" / "index.db") as conn:
        text = "\n".join(t for (t,) in conn.execute("SELECT text FROM chunks"))
    for expected in ("This should have a footnote[1]", "[1] And this is the footnote",
                     "[1] This is an endnote", "Allison, Timothy B.: This is a comment",
                     "3/4", "Odd page header", "First page footer", "[1] snoska",
                     "Michael McCandless: Here is a comment"):
        assert expected in text, expected
    assert text.count("Odd page header") == 1, "each header once"
    hit = json.loads(cli(config, "search", "And this is the footnote", "--json").stdout)
    first = hit["results"][0]
    assert first["file"] == "testWORD_2006ml.docx" and "Footnotes" in (first["heading"] or ""), \
        first


def test_an_equation_reads_as_a_person_would_type_it() -> None:
    """The quadratic formula as Word stores it (a fraction over a root over a power)."""
    ns = ('xmlns:m="http://schemas.openxmlformats.org/officeDocument/2006/math" '
          'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"')
    formula = (f'<m:oMath {ns}><m:r><m:t>x=</m:t></m:r><m:f><m:fPr><m:ctrlPr><w:rPr><w:i/>'
               '</w:rPr></m:ctrlPr></m:fPr><m:num><m:r><m:t>-b±</m:t></m:r><m:rad><m:radPr>'
               '<m:degHide m:val="1"/></m:radPr><m:deg/><m:e><m:sSup><m:e><m:r><m:t>b</m:t>'
               '</m:r></m:e><m:sup><m:r><m:t>2</m:t></m:r></m:sup></m:sSup><m:r><m:t>-4ac'
               '</m:t></m:r></m:e></m:rad></m:num><m:den><m:r><m:t>2a</m:t></m:r></m:den>'
               '</m:f></m:oMath>')
    assert math_text(etree.fromstring(formula)) == "x=(-b±√(b²-4ac))/2a"


def test_a_legacy_doc_keeps_its_text_and_loses_catdoc_residue(tmp_path: Path) -> None:
    """catdoc prints a .doc's field instructions (`HYPERLINK \\l "_Toc…"`, `PAGEREF`) and, for
    some files, dozens of one-character lines read out of its font and style tables (Tika's
    testControlCharacters.doc ended with 34): both are left out; a short list of one-letter
    items (testWORD_override_list_numbering.doc: 1, B, C, A) is kept."""
    _, by_name = drain(tmp_path, REAL / "testControlCharacters.doc",
                       REAL / "testWORD_override_list_numbering.doc")
    assert {job["status"] for job in by_name.values()} == {"completed"}, by_name
    with sqlite3.connect(tmp_path / "data" / "index.db") as conn:
        texts = {name: text for name, text in conn.execute(
            "SELECT d.source_name, group_concat(c.text, '') FROM chunks c "
            "JOIN documents d ON d.id = c.document_id GROUP BY d.id")}
    manual = texts["testControlCharacters.doc"]
    assert "Istruzioni per passare un CDR da off-line a on-line" in manual
    assert "HYPERLINK" not in manual and "PAGEREF" not in manual and "_Toc" not in manual
    longest = run = 0
    for line in manual.splitlines():
        run = run + 1 if len(line.strip()) <= 2 else 0
        longest = max(longest, run)
    assert longest < 8, f"{longest} short lines in a row"
    assert "Test 4: ListFormatOverride\n1\nB\nC\nA" in texts["testWORD_override_list_numbering.doc"]
