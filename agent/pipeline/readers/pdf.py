"""PDF: a section per page under its bookmark, running headers and footers dropped, pages
without a usable text layer OCRed (two at once while the next is rendered)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from agent.pipeline.readers.extract import ExtractOptions, _fail
from agent.pipeline.readers.ocr import PageReader, PageText
from agent.pipeline.readers.outline import (
    Section,
    clean_heading,
)


def extract_pdf(path: Path, options: ExtractOptions = ExtractOptions()) -> Iterator[Section]:
    """One section per page, under the path of the bookmark in force on it. Pages without a
    usable text layer are OCRed (when OCR is on); encrypted or corrupt files fail clearly."""
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        reason = str(exc).lower()
        if "password" in reason:
            raise _fail("the PDF is encrypted (password protected)") from None
        raise _fail(f"the PDF is corrupt or unreadable ({exc})") from None
    problems: dict[int, str] = {}  # pages that could not be read, and why

    def text_of(index: int) -> str:
        if layer is not None:
            return layer[index]
        return _page_text(pdf, index, problems)

    try:
        # With OCR on, every page's text layer is read once, up front, to find the scans.
        layer = [_page_text(pdf, i, problems) for i in range(len(pdf))] if options.ocr else None
        scans = _pages_to_ocr(layer, options.ocr) - problems.keys()
        outline = _pdf_outline(pdf) if options.headings else {}
        running = _running_lines(len(pdf), text_of) if options.main_content else frozenset()
        path_now: tuple[str, ...] = ()
        any_text = False
        notes = []
        for index, read in _page_texts(pdf, text_of, scans, running, options.ocr):
            path_now = outline.get(index, path_now)
            if read.text.strip():
                any_text = True
            note = read.note or (f"unreadable ({problems[index]})" if index in problems else "")
            if note:
                notes.append(note)
            yield Section(read.text, page=index + 1, path=path_now,
                          note=f"page {index + 1}: {note}" if note else "", ocr=index in scans)
        if not any_text:
            if notes:
                raise _fail(f"no text read: {notes[0]}")
            if options.ocr is None:
                raise _fail("the PDF has no text layer (a scan?) and OCR is off for this inbox")
            raise _fail("no text found: the PDF has no text layer and OCR read nothing")
    finally:
        pdf.close()


def _page_texts(pdf: Any, text_of: Callable[[int], str], scans: frozenset[int],
                running: frozenset[str], ocr: PageReader | None) -> Iterator[tuple[int, PageText]]:
    """(page index, text) in order: the text layer, or OCR of the rendered page for scans
    (two read at once while the next is rendered)."""
    def pages() -> Iterator[tuple[int, Any]]:
        import pypdfium2 as pdfium

        for index in range(len(pdf)):
            if index in scans and ocr is not None:
                try:
                    yield index, render_page(pdf, index, ocr.options.dpi)
                except pdfium.PdfiumError as exc:
                    yield index, PageText("", f"unreadable ({exc})")
            else:
                text = text_of(index)
                yield index, _drop_running_lines(text, running) if running else text

    if ocr is None or not scans:
        return ((index, PageText(text)) for index, text in pages())
    return ocr.read_pages(pages())


MIN_TEXT_LAYER_CHARS = 16  # fewer letters and digits than this on a page: it is a picture


def _pages_to_ocr(layer: list[str] | None, ocr: PageReader | None) -> frozenset[int]:
    """Pages whose text layer is missing or nearly empty; refused when they are more than
    ``ocr.max_pages`` (before any is read, so a huge scan costs nothing)."""
    if ocr is None or layer is None:
        return frozenset()
    scans = frozenset(i for i, text in enumerate(layer)
                      if sum(c.isalnum() for c in text) < MIN_TEXT_LAYER_CHARS)
    if len(scans) > ocr.options.max_pages:
        raise _fail(f"{len(scans)} pages need OCR, over ocr.max_pages ({ocr.options.max_pages})")
    return scans


def render_page(pdf: Any, index: int, dpi: int) -> Any:
    """The page as a grayscale picture at ``dpi``, smaller when that would exceed the OCR
    working size (a poster-sized page)."""
    from agent.pipeline.readers.pageprep import WORK_PIXELS

    page = pdf[index]
    try:
        width, height = page.get_size()
        scale = dpi / 72
        if width * height * scale * scale > WORK_PIXELS:
            scale = (WORK_PIXELS / max(width * height, 1)) ** 0.5
        picture = page.render(scale=scale, grayscale=True).to_pil()
        picture.info["dpi"] = (scale * 72, scale * 72)  # a render is never enlarged for OCR
        return picture
    finally:
        page.close()


def _page_text(pdf: Any, index: int, problems: dict[int, str]) -> str:
    """A page's text layer; "" with the reason in ``problems`` when the page is broken."""
    import pypdfium2 as pdfium

    try:
        page = pdf[index]
    except pdfium.PdfiumError as exc:
        problems[index] = str(exc)
        return ""
    try:
        textpage = page.get_textpage()
        text = str(textpage.get_text_bounded())
        textpage.close()
    except pdfium.PdfiumError as exc:
        problems[index] = str(exc)
        return ""
    finally:
        page.close()
    # pdfium gives a hyphen drawn on the page as U+00AD when the font says so (``e\xadfile``),
    # and marks a line-end hyphenation with U+0002 (joined later, in pipeline.hygiene)
    return text.replace("\r\n", "\n").replace("\x00", "").replace("\u00ad", "-")


RUNNING_EDGE_LINES = 2  # lines at the top and at the bottom of a page that may be running
RUNNING_SAMPLE_PAGES = 40


def _line_shape(line: str) -> str:
    """A page's header or footer line with its page numbers blurred ("Page 3 of 9")."""
    return re.sub(r"\d+", "#", " ".join(line.split()))


def _edges(text: str) -> list[str]:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[:RUNNING_EDGE_LINES] + lines[-RUNNING_EDGE_LINES:]


def _running_lines(total: int, text_of: Callable[[int], str]) -> frozenset[str]:
    """Shapes of the header and footer lines that repeat on most pages (a running title, "Page
    N"), from a sample of up to 40 pages; documents of fewer than 3 pages have none."""
    if total < 3:
        return frozenset()
    step = max(1, total // RUNNING_SAMPLE_PAGES)
    sample = range(0, total, step)
    seen: dict[str, int] = {}
    for index in sample:
        for shape in {_line_shape(line) for line in _edges(text_of(index))}:
            seen[shape] = seen.get(shape, 0) + 1
    pages = len(sample)
    return frozenset(shape for shape, n in seen.items() if n >= max(3, 0.6 * pages))


def _drop_running_lines(text: str, running: frozenset[str]) -> str:
    """The page without its running header and footer lines (only at its top and bottom);
    a page that holds nothing else keeps them (a page of one repeated sentence is its text)."""
    lines = text.splitlines(keepends=True)
    content = [i for i, line in enumerate(lines) if line.strip()]
    edge = set(content[:RUNNING_EDGE_LINES] + content[-RUNNING_EDGE_LINES:])
    kept = [line for i, line in enumerate(lines)
            if i not in edge or _line_shape(line) not in running]
    return "".join(kept) if any(line.strip() for line in kept) else text


def _pdf_outline(pdf: Any, max_items: int = 5000, levels: int = 3
                 ) -> dict[int, tuple[str, ...]]:
    """Page index → the path (its first ``levels`` titles) of the first bookmark that points
    into it. The whole outline is walked, as a deeper bookmark may be the first on its page
    (and pypdfium2 logs a warning for every subtree a depth limit cuts off)."""
    pages: dict[int, tuple[str, ...]] = {}
    stack: list[str] = []
    try:
        for n, item in enumerate(pdf.get_toc()):
            if n >= max_items:
                break
            del stack[item.level:]
            stack.append(clean_heading(item.get_title() or ""))
            dest = item.get_dest()
            index = dest.get_index() if dest is not None else None
            if index is not None and index >= 0 and index not in pages:
                pages[index] = tuple(t for t in stack[:levels] if t)
    except Exception:  # a broken outline is no reason to lose the text
        return {}
    return pages
