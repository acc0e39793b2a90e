"""Phrases and figures (issue 31): a row name with its figure finds the row, a passage copied
from a document finds that document before near copies of another, a quoted phrase is found
as written or not at all; snippets centre on what matched. Through the real pipeline, model
and index (figures and proximity on SQLite's FTS5; quoted phrases on both backends)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import documents as d

HARBOUR = ("The pilot boats of the harbour leave the inner basin early. Pilots guide the "
           "freighters past the breakwater at high water, and the harbour master logs each "
           "pilot boat that leaves and returns. Pilot boats wait at the outer buoy when the "
           "tide turns, and the pilots climb aboard by the rope ladder.")
ALMANAC = ("# Coastal almanac\n\nThe almanac lists sunrise, sunset and moon phases for the "
           "year. Fishermen use it to plan their trips, and the lighthouse keeper checks it "
           "before lighting the lamp.\n\nIn the old days the pilot boat leaves the inner basin "
           "at dawn when the tide turns, a habit the almanac's author recorded in 1911.\n\n"
           "Lunar tables follow on the next pages, with the height of each spring tide.")
MAIL = ("The EMEA sales team met on Monday to review EMEA sales across the region. EMEA sales "
        "grew in every quarter, and the EMEA sales leads presented the pipeline for next "
        "year's EMEA sales targets.")
SALES = {"Regions": [["Zone", "Sales", "Period"], ["EMEA", "2990", "2022"],
                     ["EMEA", "3318", "2023"], ["NA", "12553", "2023"], ["APAC", "7710", "2023"],
                     ["LATAM", "2051", "2023"]]}


def _searcher(base: Path, index: dict[str, Any]) -> Any:
    from agent.config.settings import Settings
    from agent.pipeline import IngestPipeline, JobRequest
    from agent.search.engine import Searcher

    settings = Settings.model_validate({"agent": {"data_dir": str(base / "data")},
                                        "index": index})
    files = base / "files"
    files.mkdir()
    for n in range(4):  # near copies of one page, as a scan, a PDF and a re-scan leave them
        (files / f"harbour-{n}.txt").write_text(HARBOUR + f"\n\nScan {n + 1}.\n")
    (files / "almanac.md").write_text(ALMANAC)
    d.write_eml(files / "review.eml", "EMEA sales review", MAIL)
    d.write_xlsx(files / "sales.xlsx", SALES)
    (files / "valves.txt").write_text("Spare parts: the SNB22-3 valve fits the bilge pump; "
                                      "the SNB22 housing and bracket 3 are stocked apart.")
    (files / "housing.txt").write_text("The SNB22 housing of the bilge pump valve is cast "
                                       "iron; valve seats and pump valve parts are listed.")
    pipeline = IngestPipeline(settings)
    for path in sorted(files.iterdir()):
        pipeline.run(JobRequest(f"job-{path.name}", str(path), "docs", path.name),
                     lambda *_: None)
    pipeline.index.close()
    return Searcher(settings)


@pytest.fixture(scope="module")
def sqlite_searcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    searcher = _searcher(tmp_path_factory.mktemp("phrases"), {"backend": "sqlite"})
    yield searcher
    searcher.index.close()


def _ask(searcher: Any, query: str, **kw: Any) -> Any:
    from agent.search.engine import SearchRequest

    return searcher.answer(SearchRequest(query, **kw))


def test_a_row_name_and_its_figure_find_the_row(sqlite_searcher: Any) -> None:
    """"EMEA 3318" puts the spreadsheet first, above a mail that says EMEA sales over and
    over, and its snippet starts at the 2023 row, not the year before."""
    found = _ask(sqlite_searcher, "EMEA 3318")
    top = found.results[0]
    assert top.chunk.source_name == "sales.xlsx", [r.chunk.source_name for r in found.results]
    assert "phrase" in top.matched
    assert top.snippet.replace("**", "").lstrip("…").startswith(
        "Zone: EMEA · Sales: 3318 · Period: 2023"), top.snippet


def test_a_code_with_a_word_finds_where_they_stand_together(sqlite_searcher: Any) -> None:
    found = _ask(sqlite_searcher, "SNB22-3 valve")
    assert found.results[0].chunk.source_name == "valves.txt", found.results
    assert "**SNB22-3**" in found.results[0].snippet


def test_a_copied_passage_finds_its_document_before_near_copies_of_another(
        sqlite_searcher: Any) -> None:
    """A sentence copied from the almanac ranks it first, although four near copies of a page
    about pilot boats and tides are closer in meaning; a question with the same words keeps
    ranking by meaning."""
    sentence = "the pilot boat leaves the inner basin at dawn when the tide turns"
    found = _ask(sqlite_searcher, sentence)
    assert found.results[0].chunk.source_name == "almanac.md", \
        [r.chunk.source_name for r in found.results]
    assert "**pilot** **boat** **leaves** **the** **inner** **basin**" in \
        found.results[0].snippet or "pilot boat leaves" in found.results[0].snippet.replace(
            "**", "")
    vector_only = _ask(sqlite_searcher, sentence, mode="vector")
    assert vector_only.results[0].chunk.source_name.startswith("harbour-"), \
        "without the phrase, meaning alone ranks the copies first (the case this fixes)"


def test_a_quoted_phrase_is_found_as_written_or_not_at_all(sqlite_searcher: Any) -> None:
    found = _ask(sqlite_searcher, 'boats "inner basin at dawn"')
    assert [r.chunk.source_name for r in found.results] == ["almanac.md"]
    assert "**inner basin at dawn**" in found.results[0].snippet
    reversed_words = _ask(sqlite_searcher, '"dawn at basin inner"')
    assert not reversed_words.answered and reversed_words.results == []
    assert reversed_words.note == 'no document holds "dawn at basin inner"'


def test_a_quoted_phrase_on_postgres(tmp_path: Path, pg_dsn: str) -> None:
    searcher = _searcher(tmp_path, {"backend": "postgres", "dsn": pg_dsn})
    try:
        found = _ask(searcher, '"inner basin at dawn"')
        assert [r.chunk.source_name for r in found.results] == ["almanac.md"]
        assert not _ask(searcher, '"dawn at basin inner"').answered
    finally:
        searcher.index.close()


def test_near_copies_of_a_page_are_one_result_that_names_the_others(tmp_path: Path) -> None:
    """Tesseract's real phototest page as a TIFF, as an image-only PDF and as a PDF of the
    page turned upside down (OCR reads each slightly differently): one result, "also in" the
    other two, so the next document is not pushed out; ``all_copies`` shows them apart. The
    CLI prints the copies under the hit."""
    import json

    from PIL import Image

    from tests.helpers import agent_config, cli
    from tests.scans import save_image_pdf

    config = agent_config(tmp_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    real = Path(__file__).parent / "fixtures" / "real" / "scans" / "phototest.tif"
    with Image.open(real) as page:
        gray = page.convert("L")
        gray.save(inbox / "phototest.tif")
        save_image_pdf([gray], inbox / "scan.pdf", dpi=200)
        save_image_pdf([gray.rotate(180)], inbox / "upside-down.pdf", dpi=200)
    (inbox / "notes.txt").write_text("Notes on testing OCR: the quick brown dog text and a lot "
                                     "of other point sizes were tried on every file format.")
    out = cli(config, "run", "--drain", timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    query = "a lot of 12 point text to test the ocr code"
    one = json.loads(cli(config, "search", query, "--json").stdout)
    names = [r["file"] for r in one["results"]]
    assert len([n for n in names if n in {"phototest.tif", "scan.pdf", "upside-down.pdf"}]) == 1
    top = one["results"][0]
    assert sorted([top["file"], *top["also_in"]]) == ["phototest.tif", "scan.pdf",
                                                      "upside-down.pdf"], top
    assert "notes.txt" in names
    apart = json.loads(cli(config, "search", query, "--json", "--all-copies").stdout)
    assert {"phototest.tif", "scan.pdf", "upside-down.pdf"} <= {
        r["file"] for r in apart["results"]}
    assert all(r["also_in"] == [] for r in apart["results"])
    shown = cli(config, "search", query)
    assert "   also in: " in shown.stdout, shown.stdout


PASSAGE_QUESTIONS = [  # a question, and what the passage that answers it holds
    ("write rows to a file with a semicolon as the delimiter", "csv.html", "delimiter"),
    ("json.dumps indent", "json.html", "indent"),
    ("copy a whole folder with everything inside to another place", "shutil.html", "copytree"),
    ("read a gzip compressed file", "gzip.html", "gzip.open"),
    ("what happens to NaN and Infinity when encoding JSON", "json.html", "NaN"),
]


def test_the_passage_shown_is_the_one_that_answers(tmp_path: Path) -> None:
    """On real pages (Python's documentation), one result per document: the passage shown for
    the page is the one holding the answer, deep in the page, not the page's opening, and
    its snippet shows the answer's words."""
    from agent.config.settings import Settings
    from agent.pipeline import IngestPipeline, JobRequest
    from agent.search.engine import Searcher, SearchRequest

    settings = Settings.model_validate({"agent": {"data_dir": str(tmp_path / "data")}})
    pipeline = IngestPipeline(settings)
    for name in ("csv.html", "json.html", "shutil.html", "gzip.html"):
        pipeline.run(JobRequest(f"job-{name}", str(d.PYTHON_DOCS / "library" / name), "docs",
                                name), lambda *_: None)
    pipeline.index.close()
    searcher = Searcher(settings)
    try:
        for question, page, answer in PASSAGE_QUESTIONS:
            top = searcher.answer(SearchRequest(question, k=3)).results[0]
            assert top.chunk.source_name == page, (question, top.chunk.source_name)
            assert answer.lower() in top.chunk.text.lower(), (question, top.chunk.text[:300])
            assert top.chunk.ordinal > 0, "not the page's opening"
            shown = top.snippet.replace("**", "").lower()
            assert answer.lower().split(".")[0] in shown, (question, top.snippet)
    finally:
        searcher.index.close()
