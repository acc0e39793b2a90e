"""Real files of every office, mail and e-book format, written by each format's own writer
library (openpyxl, python-pptx, odfpy, ebooklib, the standard library's ``email``), each
holding a phrase unique to it so a search can prove the agent read it.

Outlook ``.msg`` has no writer on PyPI, so the one here is built with ``olefile``'s layout
rules by hand (see ``write_msg``): a real OLE2 compound file in the MAPI property-stream
format that extract-msg reads, not a fake of the reader.
"""

from __future__ import annotations

import email.message
import email.policy
import zipfile
from pathlib import Path


def write_xlsx(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    from openpyxl import Workbook

    book = Workbook()
    first = True
    for name, rows in sheets.items():
        sheet = book.active if first else book.create_sheet()
        assert sheet is not None
        sheet.title = name
        first = False
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


def write_pptx(path: Path, slides: list[tuple[str, str, str]]) -> Path:
    """Slides of (title, body, speaker notes)."""
    from pptx import Presentation

    deck = Presentation()
    for title, body, notes in slides:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
        if notes:
            slide.notes_slide.notes_text_frame.text = notes
    deck.save(str(path))
    return path


def write_odt(path: Path, heading: str, paragraphs: list[str]) -> Path:
    from odf.opendocument import OpenDocumentText
    from odf.text import H, P

    doc = OpenDocumentText()
    doc.text.addElement(H(outlinelevel=1, text=heading))
    for paragraph in paragraphs:
        doc.text.addElement(P(text=paragraph))
    doc.save(str(path))
    return path


def write_ods(path: Path, sheets: dict[str, list[list[str]]]) -> Path:
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    doc = OpenDocumentSpreadsheet()
    for name, rows in sheets.items():
        table = Table(name=name)
        for row in rows:
            tr = TableRow()
            for value in row:
                cell = TableCell(valuetype="string")
                cell.addElement(P(text=str(value)))
                tr.addElement(cell)
            table.addElement(tr)
        doc.spreadsheet.addElement(table)
    doc.save(str(path))
    return path


def write_odp(path: Path, slides: list[tuple[str, str]]) -> Path:
    """Slides of (title, body)."""
    from odf.draw import Frame, Page, TextBox
    from odf.opendocument import OpenDocumentPresentation
    from odf.style import MasterPage, PageLayout
    from odf.text import P

    doc = OpenDocumentPresentation()
    layout = PageLayout(name="layout")
    doc.automaticstyles.addElement(layout)
    master = MasterPage(name="master", pagelayoutname=layout)
    doc.masterstyles.addElement(master)
    for n, (title, body) in enumerate(slides, start=1):
        page = Page(name=f"page{n}", masterpagename=master)
        for text in (title, body):
            frame = Frame(width="20cm", height="3cm", x="1cm", y="1cm")
            box = TextBox()
            box.addElement(P(text=text))
            frame.addElement(box)
            page.addElement(frame)
        doc.presentation.addElement(page)
    doc.save(str(path))
    return path


def write_epub(path: Path, title: str, chapters: list[tuple[str, str]]) -> Path:
    """An EPUB whose spine lists ``chapters`` (title, body) in order."""
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("test-" + path.stem)
    book.set_title(title)
    book.set_language("en")
    items = []
    for n, (heading, body) in enumerate(chapters, start=1):
        item = epub.EpubHtml(title=heading, file_name=f"chap_{n}.xhtml", lang="en")
        item.content = f"<html><body><h1>{heading}</h1><p>{body}</p></body></html>"
        book.add_item(item)
        items.append(item)
    book.toc = items
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = items
    epub.write_epub(str(path), book)
    return path


def write_eml(path: Path, subject: str, body: str, *, html: str | None = None,
              attachments: list[tuple[str, bytes, str]] = ()) -> Path:  # type: ignore[assignment]
    """A mail with a text body (and an HTML alternative), and (name, bytes, mime) attachments."""
    message = email.message.EmailMessage(policy=email.policy.default)
    message["Subject"] = subject
    message["From"] = "Ada Lovelace <ada@example.org>"
    message["To"] = "Charles Babbage <charles@example.org>"
    message["Date"] = "Tue, 01 Dec 2026 10:00:00 +0000"
    message.set_content(body)
    if html is not None:
        message.add_alternative(html, subtype="html")
    for name, data, mime in attachments:
        main, sub = mime.split("/", 1)
        message.add_attachment(data, maintype=main, subtype=sub, filename=name)
    path.write_bytes(message.as_bytes())
    return path


def write_rtf(path: Path, paragraphs: list[str]) -> Path:
    body = "".join(r"\pard " + p.replace("\\", r"\\").replace("{", r"\{").replace("}", r"\}")
                   + r"\par" + "\n" for p in paragraphs)
    path.write_text(r"{\rtf1\ansi\deff0{\fonttbl{\f0 Times New Roman;}}" + "\n" + body + "}",
                    encoding="ascii")
    return path


def write_zip_bomb_xlsx(path: Path) -> Path:
    """An .xlsx whose one sheet part expands about 1000× (a zip bomb shape)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"<" + b" " * (50 * 1024 * 1024) + b"/>")
    return path
