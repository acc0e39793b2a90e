"""Clean text and structure: main content of real HTML, heading paths from HTML, Markdown, DOCX
and PDF bookmarks, chunks that carry their path within the model's budget."""

from __future__ import annotations

from pathlib import Path

from agent.pipeline.chunk import Chunker
from agent.pipeline.embed import bundled_tokenizer
from agent.pipeline.readers.extract import PLAIN
from agent.pipeline.readers.outline import Section
from agent.pipeline.readers.registry import extract
from tests.documents import PYTHON_DOCS

NAV = ("Table of Contents", "Previous topic", "Next topic", "Report a Bug", "Show Source",
       "Quick search")


def test_real_sphinx_page_keeps_content_code_and_headings_but_not_navigation() -> None:
    """Python's csv page (python3-doc): navigation, sidebar and footer are gone, the example
    code stays, and every section knows its heading path."""
    page = PYTHON_DOCS / "library" / "csv.html"
    sections = list(extract(page, "text/html"))
    text = "\n".join(s.text for s in sections)
    assert not [n for n in NAV if n in text], "navigation text was indexed"
    assert "reader = csv.reader(f)" in " ".join(text.split()), "a code example was dropped"
    paths = [s.path for s in sections]
    assert paths[0] == ("csv — CSV File Reading and Writing",)
    assert ("csv — CSV File Reading and Writing", "Module Contents") in paths
    plain = "\n".join(s.text for s in extract(page, "text/html", PLAIN))
    assert "Previous topic" in plain and len(plain) > len(text), "the plain reader keeps all"


def test_markdown_sections_follow_headings_outside_code_fences(tmp_path: Path) -> None:
    """ATX and setext headings cut sections (level 1–2) or mark a sub-path (level 3); a '#'
    line inside fenced code is code, not a heading."""
    doc = tmp_path / "guide.md"
    doc.write_text("Guide\n=====\n\nIntro words.\n\n## Install\n\nRun the installer.\n\n"
                   "```sh\n# not a heading\nmake install\n```\n\n### On Debian\n\n"
                   "Use apt.\n\nUsage\n-----\n\nCall it.\n")
    sections = list(extract(doc, "text/markdown"))
    assert [s.path for s in sections] == [("Guide",), ("Guide", "Install"), ("Guide", "Usage")]
    install = sections[1]
    assert "# not a heading" in install.text and "## Install" not in install.text
    assert install.path_at(install.text.index("Use apt")) == ("Guide", "Install", "On Debian")
    assert install.path_at(0) == ("Guide", "Install")


def test_docx_heading_styles_become_paths(tmp_path: Path) -> None:
    """Title and Heading 1/2 paragraph styles of a real .docx cut sections with their path."""
    import docx

    document = docx.Document()
    document.add_heading("Annual report", level=0)
    document.add_paragraph("Opening words.")
    document.add_heading("Revenue", level=1)
    document.add_paragraph("Revenue grew by eight percent.")
    document.add_heading("By region", level=2)
    document.add_paragraph("The north led.")
    path = tmp_path / "report.docx"
    document.save(str(path))
    sections = list(extract(path, "application/vnd.openxmlformats-officedocument."
                                  "wordprocessingml.document"))
    paths = {s.path: s.text.strip() for s in sections}
    assert paths[("Annual report", "Revenue")] == "Revenue grew by eight percent."
    assert paths[("Annual report", "Revenue", "By region")] == "The north led."


def test_pdf_bookmarks_give_each_page_its_path(tmp_path: Path) -> None:
    """A PDF's outline (bookmarks written by fpdf2) names the chapter of each page."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    for chapter, body in (("Owls", "Owls hunt at night."), ("Bats", "Bats use echoes.")):
        pdf.add_page()
        pdf.start_section(chapter)
        pdf.multi_cell(0, 6, body)
    path = tmp_path / "animals.pdf"
    pdf.output(str(path))
    sections = list(extract(path, "application/pdf"))
    assert [(s.page, s.path) for s in sections] == [(1, ("Owls",)), (2, ("Bats",))]


def test_chunks_carry_their_heading_within_the_token_budget() -> None:
    """Each chunk's heading is its section's (or sub-heading's) path, and heading plus text fit
    the chunk budget by the model's own tokenizer."""
    chunker = Chunker(bundled_tokenizer(), chunk_tokens=64, overlap_tokens=8)
    body = "The river bends past the old mill near the harbour. " * 30
    section = Section(body + body, path=("Atlas", "Rivers"),
                      marks=((len(body), ("Atlas", "Rivers", "Mills")),))
    chunks = list(chunker.chunk([section]))
    assert {c.heading for c in chunks} == {"Atlas › Rivers", "Atlas › Rivers › Mills"}
    assert chunks[0].heading == "Atlas › Rivers" and chunks[-1].heading.endswith("Mills")
    for chunk in chunks:
        assert chunker.count_tokens(chunk.heading) + chunker.count_tokens(chunk.text) <= 64
        assert chunk.embed_text.startswith(chunk.heading + "\n\n")


def test_pdf_running_headers_and_page_footers_are_dropped(tmp_path: Path) -> None:
    """A title repeated at the top of every page and "Page N of M" at the bottom are not
    indexed as content; the body of each page is; the plain reader keeps them."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_auto_page_break(False)
    pdf.set_font("helvetica", size=11)
    bodies = [f"Chapter {i} explains how the {w} pump is serviced."
              for i, w in enumerate(["bilge", "fuel", "water", "oil", "deck"], 1)]
    for i, body in enumerate(bodies, 1):
        pdf.add_page()
        pdf.multi_cell(0, 6, "ACME Pump Handbook")
        pdf.ln(10)
        pdf.multi_cell(0, 6, body)
        pdf.set_y(-20)
        pdf.multi_cell(0, 6, f"Page {i} of {len(bodies)}")
    path = tmp_path / "handbook.pdf"
    pdf.output(str(path))
    pages = [s.text for s in extract(path, "application/pdf")]
    assert [" ".join(p.split()) for p in pages] == bodies
    plain = "".join(s.text for s in extract(path, "application/pdf", PLAIN))
    assert plain.count("ACME Pump Handbook") == 5 and "Page 3 of 5" in plain
