"""Real files of every office, mail and e-book format, written by each format's own writer
library (openpyxl, python-pptx, odfpy, ebooklib, the standard library's ``email``), each
holding a phrase unique to it so a search can prove the agent read it.

Outlook ``.msg`` has no writer library, so ``write_msg`` lays out the MAPI property streams of
MS-OXMSG itself and has extract-msg's own ``OleWriter`` write the OLE2 compound file: a real
.msg file, not a fake of the reader. (A real Outlook message from msg-extractor's examples was
also read by hand while building the reader; it is not in this repository.)
"""

from __future__ import annotations

import email.message
import email.policy
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path


def write_xlsx(path: Path, sheets: Mapping[str, Sequence[Sequence[object]]]) -> Path:
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

    doc = OpenDocumentSpreadsheet()
    for name, rows in sheets.items():
        doc.spreadsheet.addElement(_odf_table(name, rows))
    doc.save(str(path))
    return path


def _odf_table(name: str, rows: list[list[str]]) -> object:
    """An OpenDocument table of string cells (a sheet of an ODS, a table in an ODT)."""
    from odf.table import Table, TableCell, TableColumn, TableRow
    from odf.text import P

    table = Table(name=name)
    table.addElement(TableColumn(numbercolumnsrepeated=max(map(len, rows), default=1)))
    for row in rows:
        tr = TableRow()
        for value in row:
            cell = TableCell(valuetype="string")
            cell.addElement(P(text=str(value)))
            tr.addElement(cell)
        table.addElement(tr)
    return table


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
    def escape(text: str) -> str:  # RTF is 7-bit: braces and backslashes escaped, \uN? beyond
        out = text.replace("\\", r"\\").replace("{", r"\{").replace("}", r"\}")
        return "".join(c if ord(c) < 128 else f"\\u{ord(c) if ord(c) < 32768 else ord(c) - 65536}?"
                       for c in out)

    body = "".join(r"\pard " + escape(p) + r"\par" + "\n" for p in paragraphs)
    path.write_text(r"{\rtf1\ansi\deff0{\fonttbl{\f0 Times New Roman;}}" + "\n" + body + "}",
                    encoding="ascii")
    return path


def write_zip_bomb_xlsx(path: Path) -> Path:
    """An .xlsx whose one sheet part expands about 1000× (a zip bomb shape)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"<" + b" " * (50 * 1024 * 1024) + b"/>")
    return path


def _msg_properties(header: bytes, fixed: dict[int, bytes], variable: dict[int, bytes]) -> bytes:
    """A MAPI ``__properties_version1.0`` stream: the header, then 16 bytes per property
    (tag, flags, value — or, for strings and binaries, their size)."""
    import struct

    out = [header]
    for tag, value in fixed.items():
        out.append(struct.pack("<II", tag, 6) + value.ljust(8, b"\0"))
    for tag, data in variable.items():  # strings count their terminating NUL, not stored
        extra = 2 if tag & 0xFFFF == 0x001F else 0
        out.append(struct.pack("<IIII", tag, 6, len(data) + extra, 0))
    return b"".join(out)


def _unicode(text: str) -> bytes:
    return text.encode("utf-16-le")


def write_msg(path: Path, subject: str, body: str,
              attachments: list[tuple[str, bytes]] = ()) -> Path:  # type: ignore[assignment]
    """An Outlook .msg (MS-OXMSG): an OLE2 compound file written by extract-msg's own
    ``OleWriter``, holding the message's properties, a recipient and attachments by value."""
    import struct

    from extract_msg.ole_writer import OleWriter

    writer = OleWriter()
    headers = (f"From: Grace Hopper <grace@example.org>\r\nTo: Alan Turing <alan@example.org>\r\n"
               f"Subject: {subject}\r\nDate: Tue, 01 Dec 2026 09:30:00 +0000\r\n\r\n")
    strings = {0x001A001F: _unicode("IPM.Note"), 0x0037001F: _unicode(subject),
               0x0C1A001F: _unicode("Grace Hopper"), 0x0E04001F: _unicode("Alan Turing"),
               0x1000001F: _unicode(body), 0x007D001F: _unicode(headers)}
    for tag, data in strings.items():
        writer.addEntry(f"__substg1.0_{tag:08X}", data)
    top = struct.pack("<8xIIII8x", 1, len(attachments), 1, len(attachments))
    writer.addEntry("__properties_version1.0", _msg_properties(top, {}, strings))
    writer.addEntry("__nameid_version1.0", storage=True)
    for stream in ("00020102", "00030102", "00040102"):
        writer.addEntry(f"__nameid_version1.0/__substg1.0_{stream}", b"")
    recipient = "__recip_version1.0_#00000000"
    writer.addEntry(recipient, storage=True)
    fields = {0x3001001F: _unicode("Alan Turing"), 0x3003001F: _unicode("alan@example.org")}
    for tag, data in fields.items():
        writer.addEntry(f"{recipient}/__substg1.0_{tag:08X}", data)
    writer.addEntry(f"{recipient}/__properties_version1.0",
                    _msg_properties(b"\0" * 8, {0x0C150003: struct.pack("<I", 1)}, fields))
    for n, (name, data) in enumerate(attachments):
        folder = f"__attach_version1.0_#{n:08X}"
        writer.addEntry(folder, storage=True)
        parts = {0x3707001F: _unicode(name), 0x3704001F: _unicode(name[:12]), 0x37010102: data}
        for tag, value in parts.items():
            writer.addEntry(f"{folder}/__substg1.0_{tag:08X}", value)
        writer.addEntry(f"{folder}/__properties_version1.0",
                        _msg_properties(b"\0" * 8, {0x37050003: struct.pack("<I", 1)}, parts))
    writer.write(str(path))
    return path


def write_docx_table(path: Path, heading: str, rows: list[list[str]],
                     irregular: list[list[str]] | None = None) -> Path:
    """A Word document: a heading, a paragraph, the table ``rows`` (python-docx), and when
    ``irregular`` is given a second table whose first row starts one grid column late
    (``w:gridBefore``) and whose second spans two columns, as real files from other writers
    have them."""
    from docx import Document
    from docx.oxml.ns import qn
    from docx.oxml.parser import OxmlElement

    doc = Document()
    doc.add_heading(heading, level=1)
    doc.add_paragraph("The figures below are from the regional sales report.")
    table = doc.add_table(rows=len(rows), cols=len(rows[0]))
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    if irregular:
        odd = doc.add_table(rows=len(irregular), cols=3)
        for r, row in enumerate(irregular):
            for c, value in enumerate(row):
                odd.cell(r, c).text = value
        first = odd.rows[0]._tr
        props = first.get_or_add_trPr()
        before = OxmlElement("w:gridBefore")
        before.set(qn("w:val"), "1")
        props.append(before)
        first.remove(first.findall(qn("w:tc"))[-1])  # one cell fewer, shifted right
        second = odd.rows[1]._tr
        cells = second.findall(qn("w:tc"))
        span = OxmlElement("w:gridSpan")
        span.set(qn("w:val"), "2")
        cells[0].get_or_add_tcPr().append(span)
        second.remove(cells[1])
    doc.add_paragraph("Closing remarks of the harbour sales team follow the tables.")
    doc.save(str(path))
    return path


def write_odt_table(path: Path, heading: str, rows: list[list[str]]) -> Path:
    from odf.opendocument import OpenDocumentText
    from odf.text import H, P

    doc = OpenDocumentText()
    doc.text.addElement(H(outlinelevel=1, text=heading))
    doc.text.addElement(P(text="The figures below are from the regional sales report."))
    doc.text.addElement(_odf_table("Sales", rows))
    doc.save(str(path))
    return path


def write_pptx_table(path: Path, title: str, rows: list[list[str]]) -> Path:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[5])  # title only
    slide.shapes.title.text = title
    shape = slide.shapes.add_table(len(rows), len(rows[0]), Inches(0.5), Inches(1.5),
                                   Inches(9), Inches(3))
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            shape.table.cell(r, c).text = value
    deck.save(str(path))
    return path


def write_pptx_chart(path: Path, title: str, categories: Sequence[object],
                     series: dict[str, list[float]]) -> Path:
    """One slide holding only a column chart (python-pptx writes its data into the chart
    part, as PowerPoint does; dates as Excel date serials under a date format)."""
    from pptx import Presentation
    from pptx.chart.data import CategoryChartData
    from pptx.enum.chart import XL_CHART_TYPE
    from pptx.util import Inches

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[6])  # blank: no text boxes at all
    data = CategoryChartData()
    data.categories = categories
    for name, values in series.items():
        data.add_series(name, values)
    frame = slide.shapes.add_chart(XL_CHART_TYPE.COLUMN_CLUSTERED, Inches(1), Inches(1),
                                   Inches(8), Inches(5), data)
    frame.chart.has_title = True
    frame.chart.chart_title.text_frame.text = title
    deck.save(str(path))
    return path


def write_docx_chart(path: Path, before: str, title: str, categories: Sequence[object],
                     series: dict[str, list[float]], after: str) -> Path:
    """A Word document: a paragraph, a chart in its own paragraph (the chart part as
    PowerPoint writes it, by python-pptx, related from the document as Word relates one),
    then a paragraph."""
    import re
    import tempfile
    import zipfile

    with tempfile.TemporaryDirectory() as folder:
        deck = write_pptx_chart(Path(folder) / "chart.pptx", title, categories, series)
        with zipfile.ZipFile(deck) as pptx:
            chart = pptx.read(next(n for n in pptx.namelist()
                                   if re.fullmatch(r"ppt/charts/chart\d+\.xml", n)))
        plain = make_docx(Path(folder) / "plain.docx", [before, after])
        drawing = (
            '<w:p><w:r><w:drawing><wp:inline xmlns:wp="http://schemas.openxmlformats.org/'
            'drawingml/2006/wordprocessingDrawing"><a:graphic xmlns:a="http://schemas.'
            'openxmlformats.org/drawingml/2006/main"><a:graphicData uri="http://schemas.'
            'openxmlformats.org/drawingml/2006/chart"><c:chart xmlns:c="http://schemas.'
            'openxmlformats.org/drawingml/2006/chart" xmlns:r="http://schemas.openxmlformats.'
            'org/officeDocument/2006/relationships" r:id="rIdChart1"/></a:graphicData>'
            '</a:graphic></wp:inline></w:drawing></w:r></w:p>')
        relation = ('<Relationship Id="rIdChart1" Type="http://schemas.openxmlformats.org/'
                    'officeDocument/2006/relationships/chart" Target="charts/chart1.xml"/>')
        with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w") as target:
            for item in source.infolist():
                data = source.read(item)
                if item.filename == "word/document.xml":
                    text = data.decode()
                    first_end = text.index("</w:p>") + len("</w:p>")
                    data = (text[:first_end] + drawing + text[first_end:]).encode()
                elif item.filename == "word/_rels/document.xml.rels":
                    data = data.replace(b"</Relationships>",
                                        relation.encode() + b"</Relationships>")
                target.writestr(item, data)
            target.writestr("word/charts/chart1.xml", chart)
    return path


PYTHON_DOCS = Path("/usr/share/doc/python3-doc/html")  # a real corpus: Debian's python3-doc


def make_pdf(path: Path, pages: list[str], password: str | None = None) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 6, text)
    if password:
        pdf.set_encryption(owner_password=password, user_password=password)
    pdf.output(str(path))
    return path


def make_docx(path: Path, paragraphs: list[str], table: list[list[str]] | None = None) -> Path:
    import docx

    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    document.save(str(path))
    return path
