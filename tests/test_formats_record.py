"""One record per format (agent/formats.py): everything derived from the records agrees with
them, every record is whole, and a format added as one record and one reader is read through
the real agent (issue 44 item 2; subtitles, issue 43)."""

from __future__ import annotations

import json
from pathlib import Path

from agent.formats import (
    ALIASES,
    BY_MIME,
    CONTAINER_SUFFIXES,
    FORMATS,
    TEXT_SUFFIXES,
    formats_table,
    metric_types,
    no_text_message,
)
from tests.helpers import cli, drain

ROOT = Path(__file__).resolve().parent.parent
REAL = Path(__file__).parent / "fixtures" / "real" / "tika"


def test_the_docs_table_is_the_records() -> None:
    """docs/formats.md's table is written from the records (`make docs`), never by hand."""
    page = (ROOT / "docs" / "formats.md").read_text(encoding="utf-8")
    table = page.split("<!-- formats:begin -->\n", 1)[1].split("<!-- formats:end -->", 1)[0]
    assert table == formats_table(), "docs/formats.md is stale: run `make docs`"
    for fmt in FORMATS:
        assert f"`{fmt.mime}`" in table


def test_every_record_is_whole_and_no_two_claim_a_name() -> None:
    from agent.pipeline.readers.registry import READERS

    names = [name for fmt in FORMATS for name in fmt.names]
    assert len(names) == len(set(names)), "a short name names two formats"
    suffixes = [s for fmt in FORMATS for s in fmt.text_suffixes + fmt.container_suffixes]
    assert len(suffixes) == len(set(suffixes)), "a suffix names two formats"
    assert set(TEXT_SUFFIXES) | set(CONTAINER_SUFFIXES) == set(suffixes)
    assert not set(ALIASES) & set(BY_MIME), "an alias hides a format's own type"
    assert len(metric_types()) == len(FORMATS)
    for fmt in FORMATS:
        assert fmt.what and fmt.names and fmt.no_text_message.startswith("no text found: ")
        if fmt.family == "mail":
            assert fmt.mime not in READERS  # read with its attachments, apart
        else:
            assert callable(READERS[fmt.mime]), fmt.mime
    assert no_text_message("application/vnd.ms-powerpoint").endswith("(pictures or charts "
                                                                      "only, or empty boxes; "
                                                                      "no tables or notes)")


def test_subtitles_are_read_as_the_words_spoken(tmp_path: Path) -> None:
    """Real WebVTT and SubRip files (Apache Tika's test documents): every cue's words are
    indexed, found by a copied line, and none of the cue numbers, timings or markup (before:
    refused as 'unsupported type text/vtt')."""
    config, by_name = drain(tmp_path, REAL / "testWebVTT.vtt", REAL / "test_subrip.srt")
    assert by_name["testWebVTT.vtt"]["status"] == "completed", by_name["testWebVTT.vtt"]
    assert by_name["testWebVTT.vtt"]["metadata"]["mime"] == "text/vtt"
    assert by_name["test_subrip.srt"]["status"] == "completed", by_name["test_subrip.srt"]
    assert by_name["test_subrip.srt"]["metadata"]["mime"] == "application/x-subrip"
    for query, name in (("Phone conversations where people truly connect", "testWebVTT.vtt"),
                        ("Dans le rôle de TOTO", "test_subrip.srt")):
        found = cli(config, "search", query, "--json")
        assert found.returncode == 0, found.stdout + found.stderr
        hits = json.loads(found.stdout)["results"]
        assert hits[0]["file"] == name, hits
        assert "-->" not in hits[0]["snippet"] and "<c." not in hits[0]["snippet"], hits[0]
    import sqlite3

    with sqlite3.connect(tmp_path / "data" / "index.db") as conn:
        text = "\n".join(t for (t,) in conn.execute("SELECT text FROM chunks"))
    assert "truly connect" in text and "-->" not in text and "00:00:" not in text
    assert "<c.highlight>" not in text and "A:start" not in text


def test_text_formats_and_a_notebook_are_read_as_what_they_are(tmp_path: Path) -> None:
    """reStructuredText and Org files (Unstructured's READMEs) and a Jupyter notebook
    (nbformat's own test4.ipynb), each named by its suffix while libmagic calls it text/plain
    or JSON: the .rst is cut at its underlined headings, and the notebook is read as its cells
    — markdown, code and text outputs — not as JSON paths, its picture output left out with a
    warning (before: the notebook was indexed as JSON paths, `cells[4].source[3]: …`; an .rst
    or .org was plain text, and an .rst libmagic takes for Python was refused)."""
    real = Path(__file__).parent / "fixtures" / "real"
    config, by_name = drain(tmp_path, real / "unstructured" / "README.rst",
                            real / "unstructured" / "README.org", real / "nbformat" / "test4.ipynb")
    assert {name: job["metadata"]["mime"] for name, job in by_name.items()} == {
        "README.rst": "text/x-rst", "README.org": "text/org",
        "test4.ipynb": "application/x-ipynb+json"}, by_name
    assert by_name["test4.ipynb"]["metadata"]["warnings"] == [
        "1 picture or rich output of the notebook's cells left out (no text to index)"]
    import sqlite3

    with sqlite3.connect(tmp_path / "data" / "index.db") as conn:
        notebook = "\n".join(text for (text,) in conn.execute(
            "SELECT c.text FROM chunks c JOIN documents d ON d.id = c.document_id "
            "WHERE d.source_name = 'test4.ipynb'"))
    assert "Lorem ipsum" in notebook and 'print("hello")' in notebook
    assert "cells[" not in notebook and "image/png" not in notebook and "iVBOR" not in notebook
    for query, name, heading in (("print hello", "test4.ipynb", "Printed Using Python"),
                                 ("example 10-K in inline XBRL format", "README.rst",
                                  "Example Docs")):
        hit = json.loads(cli(config, "search", query, "--json").stdout)["results"][0]
        assert hit["file"] == name and heading in (hit["heading"] or ""), hit
    found = cli(config, "search", "nbconvert latex test", "--json")
    assert found.returncode == 0 and json.loads(found.stdout)["results"][0]["file"] == \
        "test4.ipynb", found.stdout[-2000:]
