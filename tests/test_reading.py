"""Valid files read, and the files that cannot be read told apart in one line people can act
on (issue 30, first part), through the real agent, pipeline and model."""

from __future__ import annotations

import base64
import datetime
import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT, agent_config, cli, jobs


def _drain(config: Path) -> dict[str, dict[str, Any]]:
    out = cli(config, "run", "--drain", timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return {str(j["original_filename"]): j for j in jobs(config)}


def _pretty_odt(path: Path) -> Path:
    """An ODT whose content.xml is pretty-printed (indented, one element a line), as some
    generators and hand edits leave it."""
    from lxml import etree

    from tests import documents as d

    plain = d.write_odt(path.with_suffix(".plain.odt"), "Berth allocation",
                        ["Ferries use berth 4 during the summer timetable.",
                         "Cargo ships wait at the outer anchorage."])
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w") as out:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "content.xml":
                data = etree.tostring(etree.fromstring(data), pretty_print=True)
            out.writestr(item, data)
    plain.unlink()
    return path


def _picture_deck(path: Path) -> Path:
    from PIL import Image
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[6])  # blank layout: no placeholders
    picture = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 40)).save(picture, "PNG")
    picture.seek(0)
    slide.shapes.add_picture(picture, Inches(1), Inches(1))
    deck.save(str(path))
    return path


def test_valid_files_are_read_and_the_unreadable_ones_say_why(tmp_path: Path) -> None:
    """A pretty-printed ODT, an HTML page whose only text is headings and a PDF whose every
    page is one sentence (issue 42 item 15: the running-header rule dropped it as a running
    line and failed the file as "no text layer") are indexed; a zip, a deck of pictures only
    and a blank photo fail, each with a short line naming its case."""
    from PIL import Image

    from tests.documents import make_pdf

    config = agent_config(tmp_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    _pretty_odt(inbox / "berths.odt")
    (inbox / "hours.html").write_text(
        "<html><head><title>Harbour office</title></head><body>"
        "<h1>Opening hours of the harbour office</h1><h2>Monday to Friday, 9 to 17</h2>"
        "</body></html>")
    with zipfile.ZipFile(inbox / "bundle.zip", "w") as archive:
        archive.writestr("a.txt", "inside a zip")
    _picture_deck(inbox / "photos.pptx")
    Image.new("RGB", (800, 600), (120, 160, 200)).save(inbox / "sky.png")
    make_pdf(inbox / "motto.pdf", ["The lighthouse keeper logs every passing tanker."] * 12)
    found = _drain(config)
    assert found["berths.odt"]["status"] == "completed"
    assert found["motto.pdf"]["status"] == "completed", found["motto.pdf"]["message"]
    assert found["hours.html"]["status"] == "completed"
    unsupported = found["bundle.zip"]["message"]
    assert unsupported == ("unsupported type application/zip (a zip archive): unpack it into "
                           "the inbox")
    assert found["photos.pptx"]["message"] == (
        "no text found: the slides hold no text (pictures or charts only, or empty boxes; no "
        "tables or notes)")
    assert found["sky.png"]["message"].startswith("no text found: OCR read nothing in the picture")
    assert all(len(j["message"]) <= 200 for j in found.values())
    hits = cli(config, "search", "when is the harbour office open", "--json")
    assert hits.returncode == 0 and '"hours.html"' in hits.stdout
    berth = cli(config, "search", "which berth do ferries use in summer", "--json")
    assert berth.returncode == 0 and '"berths.odt"' in berth.stdout
    motto = cli(config, "search", "lighthouse keeper logs every passing tanker", "--json")
    assert motto.returncode == 0 and '"motto.pdf"' in motto.stdout


MAIL = ("From: Harbour Office <office@example.org>\r\nTo: crew@example.org\r\n"
        "Subject: Berth change for the ferry\r\nDate: Mon, 1 Dec 2025 09:00:00 +0000\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "The ferry moves to berth 7 from Monday; the pilot boards at the breakwater.\r\n")
HEAD = ("From: a@example.org\r\nTo: b@example.org\r\nSubject: {subject}\r\n"
        "Date: Mon, 1 Dec 2025 09:00:00 +0000\r\nMIME-Version: 1.0\r\n")


def test_wide_mail_is_read_and_encrypted_mail_is_never_indexed(tmp_path: Path) -> None:
    """Mail saved as UTF-16 (with a byte order mark, or big-endian without) and as UTF-32 is
    read like any mail; PGP (inline and PGP/MIME) and S/MIME mail fail as encrypted, and not
    one word of their ciphertext is indexed."""
    config = agent_config(tmp_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "utf16-bom.eml").write_bytes(b"\xff\xfe" + MAIL.encode("utf-16-le"))
    (inbox / "utf16be.eml").write_bytes(MAIL.replace("berth 7", "berth 8").encode("utf-16-be"))
    (inbox / "utf32.eml").write_bytes(MAIL.replace("berth 7", "berth 9").encode("utf-32-le"))
    (inbox / "pgp-inline.eml").write_text(
        HEAD.format(subject="Plans") + "Content-Type: text/plain\r\n\r\n"
        "-----BEGIN PGP MESSAGE-----\r\n\r\nhQEMA5x9c2Qw1xyzAQfZqCiphertextWord\r\n=abcd\r\n"
        "-----END PGP MESSAGE-----\r\n")
    (inbox / "pgp-mime.eml").write_text(
        HEAD.format(subject="Plans too") + 'Content-Type: multipart/encrypted; '
        'protocol="application/pgp-encrypted"; boundary="XX"\r\n\r\n--XX\r\n'
        "Content-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n--XX\r\n"
        "Content-Type: application/octet-stream\r\n\r\n-----BEGIN PGP MESSAGE-----\r\n"
        "hQEMAzzCiphertextWord\r\n-----END PGP MESSAGE-----\r\n--XX--\r\n")
    (inbox / "smime.eml").write_text(
        HEAD.format(subject="Sealed") + "Content-Type: application/pkcs7-mime; "
        'smime-type=enveloped-data; name="smime.p7m"\r\nContent-Transfer-Encoding: base64'
        "\r\n\r\nMIAGCSqGSIb3DQEHA6CAMIACAQAxggE=\r\n")
    # Outlook and Exchange send PGP/MIME as two attachments of a multipart/mixed mail (the
    # shape mail clients document and handle: a "PGPMIME version identification" control part
    # and the armoured ciphertext as encrypted.asc); no public .msg of it was found
    armour = base64.b64encode(b"-----BEGIN PGP MESSAGE-----\n\nhQEMA5uvCiphertextWord\n"
                              b"=xxxx\n-----END PGP MESSAGE-----\n").decode()
    (inbox / "outlook-pgp.eml").write_text(
        HEAD.format(subject="Quarterly") + 'Content-Type: multipart/mixed; boundary="OB"\r\n'
        '\r\n--OB\r\nContent-Type: text/plain\r\n\r\n\r\n--OB\r\n'
        'Content-Type: application/pgp-encrypted; name="PGPMIME version identification"\r\n'
        "Content-Disposition: attachment; filename=\"PGPMIME version identification\"\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\nVmVyc2lvbjogMQ0K\r\n--OB\r\n"
        'Content-Type: application/octet-stream; name="encrypted.asc"\r\n'
        'Content-Disposition: attachment; filename="encrypted.asc"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{armour}\r\n--OB--\r\n")
    # a readable mail with an encrypted file attached under a harmless name: the mail is read,
    # the attachment is not, whatever libmagic would call it
    (inbox / "attached-secret.eml").write_text(
        HEAD.format(subject="The harbour rota") + 'Content-Type: multipart/mixed; '
        'boundary="AB"\r\n\r\n--AB\r\nContent-Type: text/plain\r\n\r\nThe harbour rota '
        "for December is attached.\r\n--AB\r\nContent-Type: text/plain; name=\"rota.txt\"\r\n"
        'Content-Disposition: attachment; filename="rota.txt"\r\n\r\n'
        "-----BEGIN PGP MESSAGE-----\r\nhQEMAzzCiphertextWord\r\n-----END PGP MESSAGE-----"
        "\r\n--AB--\r\n")
    found = _drain(config)
    assert found["outlook-pgp.eml"]["message"] == (
        "the mail is encrypted (PGP/MIME, carried as attachments); its text cannot be read "
        "without the key"), found["outlook-pgp.eml"]
    secret = found["attached-secret.eml"]
    assert secret["status"] == "completed" and any(
        "attachment rota.txt not read: it is encrypted (PGP)" in w
        for w in secret["metadata"]["warnings"]), secret
    for name in ("utf16-bom.eml", "utf16be.eml", "utf32.eml"):
        assert found[name]["status"] == "completed", found[name]["message"]
    for name, kind in (("pgp-inline.eml", "PGP"), ("pgp-mime.eml", "PGP"),
                       ("smime.eml", "S/MIME")):
        assert found[name]["message"] == (f"the mail is encrypted ({kind}); its text cannot be "
                                          "read without the key"), found[name]
    hit = cli(config, "search", "which berth does the ferry move to", "-k", "5", "--json")
    files = {r["file"] for r in json.loads(hit.stdout)["results"]}
    assert {"utf16-bom.eml", "utf16be.eml", "utf32.eml"} <= files
    import sqlite3

    with sqlite3.connect(tmp_path / "data" / "index.db") as conn:
        leaked = conn.execute("SELECT count(*) FROM chunks WHERE text LIKE '%PGP MESSAGE%' "
                              "OR text LIKE '%CiphertextWord%' OR text LIKE '%MIAGCSqG%'"
                              ).fetchone()[0]
        documents = conn.execute("SELECT count(*) FROM documents").fetchone()[0]
    assert leaked == 0 and documents == 4


def test_json_lines_xml_and_hocr_are_read_as_their_text(tmp_path: Path) -> None:
    """JSON Lines (one bad line among them is skipped), XML and an hOCR page are indexed as
    the text they hold, never as their markup."""
    import sqlite3

    config = agent_config(tmp_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "sales.jsonl").write_text(
        '{"zone": "NA", "sales": 12553, "period": "January-June 2023"}\n'
        "this line is not JSON\n"
        '{"zone": "EU", "sales": 9876, "period": "January-June 2023"}\n')
    (inbox / "catalog.xml").write_text(
        '<?xml version="1.0"?>\n<catalog>\n  <book id="b1">\n'
        "    <title>Harbour pilots of the northern coast</title>\n"
        "    <author>Ann Lee</author>\n  </book>\n</catalog>\n")
    (inbox / "page.hocr").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml">'
        '<head><title>scan</title><meta name="ocr-system" content="tesseract"/></head><body>'
        '<div class="ocr_page" title="bbox 0 0 100 100"><span class="ocr_line">'
        '<span class="ocrx_word">Tide</span> <span class="ocrx_word">tables</span> '
        '<span class="ocrx_word">for</span> <span class="ocrx_word">the</span> '
        '<span class="ocrx_word">estuary</span></span></div></body></html>\n')
    found = _drain(config)
    assert {name: j["status"] for name, j in found.items()} == {
        "sales.jsonl": "completed", "catalog.xml": "completed", "page.hocr": "completed"}
    with sqlite3.connect(tmp_path / "data" / "index.db") as conn:
        texts = [t for (t,) in conn.execute("SELECT text FROM chunks")]
    joined = "\n".join(texts)
    assert "zone: NA" in joined and "sales: 9876" in joined and "not JSON" not in joined
    assert "Harbour pilots of the northern coast" in joined and "Tide tables" in joined
    assert "<" not in joined and "ocrx_word" not in joined


REAL = Path(__file__).parent / "fixtures" / "real"



def test_a_slide_that_holds_only_a_chart_is_read_by_its_title_and_data(tmp_path: Path) -> None:
    """A deck whose one slide is a chart (no text box): its title, series and categories are
    text, each value under its category's name, so "ferry passengers in winter" finds it."""
    from agent.pipeline.readers.office import extract_pptx
    from tests.documents import write_pptx_chart

    deck = write_pptx_chart(tmp_path / "ferries.pptx", "Ferry passengers by season",
                            ["Winter", "Summer"], {"Harbour line": [1200, 5400],
                                                   "Island line": [300, 2100]})
    (section,) = list(extract_pptx(deck))
    assert section.page == 1 and section.path == ("Slide 1",)
    assert section.text.splitlines() == [
        "Chart: Ferry passengers by season",
        "Series: Harbour line · Winter: 1200 · Summer: 5400",
        "Series: Island line · Winter: 300 · Summer: 2100"]
    dated = write_pptx_chart(tmp_path / "dated.pptx", "Crossings", [datetime.date(2026, 1, 1),
                                                                     datetime.date(2026, 2, 1)],
                             {"Crossings": [310, 295]})
    assert list(extract_pptx(dated))[0].text.splitlines()[1] == (
        "Series: Crossings · 2026-01-01: 310 · 2026-02-01: 295"), "dates, not Excel serials"
    broken = tmp_path / "broken.pptx"
    with zipfile.ZipFile(deck) as good, zipfile.ZipFile(broken, "w") as bad:
        for item in good.infolist():
            data = good.read(item)
            bad.writestr(item, b"<c:chartSpace" if item.filename.startswith("ppt/charts/chart")
                         else data)
    (note,) = list(extract_pptx(broken))
    assert note.text == "" and note.note.startswith("slide 1: a chart not read: ")


def test_a_chart_in_a_word_document_is_read_where_it_stands(tmp_path: Path) -> None:
    """A report's chart between two paragraphs: its title and data, in reading order."""
    from agent.pipeline.readers.extract import extract_docx
    from tests.documents import write_docx_chart

    report = write_docx_chart(tmp_path / "report.docx", "Passengers rose again this year.",
                              "Ferry passengers by season", ["Winter", "Summer"],
                              {"Harbour line": [1200, 5400]}, "The island line is next.")
    lines = [line for line in "".join(s.text for s in extract_docx(report)).splitlines()
             if line.strip()]
    assert lines == ["Passengers rose again this year.", "Chart: Ferry passengers by season",
                     "Series: Harbour line · Winter: 1200 · Summer: 5400",
                     "The island line is next."]


def test_a_sheet_of_declared_repeats_is_read_as_what_it_holds(tmp_path: Path) -> None:
    """calamine's issue_594_dos.ods (1.3 KB) declares one cell repeated 10⁹ columns in a row
    repeated 10⁹ times; it was read as a million cells of "X" (12,320 chunks, 400 s). A
    repeated row is read once, a repeated cell at most 1,000 times."""
    from agent.pipeline.readers.office import extract_odf

    sections = list(extract_odf(REAL / "sheets" / "issue_594_dos.ods"))
    text = "".join(section.text for section in sections)
    assert text.strip().split(" | ") == ["X"] * 1000, "one row of the cell's 1,000 copies"


def test_a_workbook_whose_used_range_reaches_the_last_cell_is_read(tmp_path: Path) -> None:
    """A workbook with one cell at XFD1048576 (as calamine's issue_174.xlsx has): every row was
    padded to 16,384 cells, and the file failed as over 2,000,000 cells. Its rows are read as
    they are, the far cell too."""
    from openpyxl import Workbook

    from agent.pipeline.readers.office import extract_xlsx

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in (["Harbour", "Boats"], ["North quay", "12"], ["South quay", "7"]):
        sheet.append(row)
    sheet.cell(row=1048576, column=16384, value="the far corner")
    book.save(tmp_path / "far.xlsx")
    lines = "".join(s.text for s in extract_xlsx(tmp_path / "far.xlsx")).splitlines()
    assert lines[:2] == ["Harbour: North quay · Boats: 12", "Harbour: South quay · Boats: 7"]
    assert lines[-1].endswith("the far corner")


def test_an_xls_xlrd_asserts_on_is_read_through_libreoffice(tmp_path: Path) -> None:
    """Excel writes workbooks whose string table declares more strings than it holds
    (calamine's gh548 file, 427 KB of NHS statistics): xlrd stops on an assertion and the
    file failed as corrupt. Tika's real testEXCEL.xls with its count raised the same way is
    read, through LibreOffice."""
    import re
    import struct

    from agent.pipeline.readers.legacy import extract_xls

    data = bytearray((REAL / "legacy" / "testEXCEL.xls").read_bytes())
    sst = next(m.start() for m in re.finditer(rb"\xfc\x00", data)
               if struct.unpack_from("<HII", data, m.start() + 2)[1:] == (4, 4))
    struct.pack_into("<I", data, sst + 8, 7)  # four unique strings declared as seven
    (tmp_path / "counted-wrong.xls").write_bytes(data)
    text = "".join(section.text for section in extract_xls(tmp_path / "counted-wrong.xls"))
    assert "Number: 7 · Square: 49" in text


@pytest.mark.parametrize("kind", ["xlsx", "docx"])
def test_a_package_whose_part_names_use_backslashes_is_read(tmp_path: Path, kind: str) -> None:
    """Some Windows tools write ``xl\\workbook.xml`` for ``xl/workbook.xml`` (calamine's
    issue_530.xlsx, a real attendance report): Excel opens it; it failed as corrupt here."""
    from agent.formats import SHORT_TYPES
    from agent.pipeline.readers.registry import extract
    from tests.documents import make_docx

    written = tmp_path / f"written.{kind}"
    if kind == "xlsx":
        from openpyxl import Workbook

        book = Workbook()
        sheet = book.active
        assert sheet is not None
        sheet.append(["Team", "Present"])
        sheet.append(["Platform engineering", "9"])
        book.save(written)
        wanted, mime = "Team: Platform engineering · Present: 9", SHORT_TYPES["xlsx"]
    else:
        make_docx(written, ["Platform engineering was present in full."])
        wanted, mime = "Platform engineering was present in full.", SHORT_TYPES["docx"]
    windows = tmp_path / f"windows.{kind}"
    with zipfile.ZipFile(written) as good, zipfile.ZipFile(windows, "w") as bad:
        for item in good.infolist():
            bad.writestr(item.filename.replace("/", "\\"), good.read(item))
    with zipfile.ZipFile(windows) as check:
        assert any("\\" in name for name in check.namelist())
    text = "".join(section.text for section in extract(windows, mime))
    assert wanted in text

MAIL_CASES = {
    # Declared GB2312, written in UTF-8 (as a real spam sample is): read as UTF-8.
    "utf8-declared-gb2312.eml": (
        "Subject: =?gb2312?B?" + base64.b64encode("代开发票".encode("gbk")).decode() + "?=\n"
        "Content-Type: text/plain; charset=\"GB2312\"\nContent-Transfer-Encoding: 8bit\n\n",
        "你好！我公司可代开各类增值税发票".encode(), ["代开发票", "我公司可代开各类增值税发票"]),
    # Declared GB2312, with a character only GBK has, in the subject's encoded word too.
    "gbk-declared-gb2312.eml": (
        "Subject: =?gb2312?B?" + base64.b64encode("这是什么屄，好".encode("gbk")).decode()
        + "?=\nContent-Type: text/plain; charset=gb2312\nContent-Transfer-Encoding: 8bit\n\n",
        "正文：这是什么屄，好。".encode("gbk"), ["这是什么屄，好", "正文：这是什么屄，好。"]),
    # No charset at all, Latin-1 bytes (Spanish).
    "latin1-undeclared.eml": (
        "Subject: Recibo\nContent-Type: text/plain\nContent-Transfer-Encoding: 8bit\n\n",
        "Información de la compañía: el baño está listo.".encode("latin-1"),
        ["Información de la compañía: el baño está listo."]),
}


@pytest.mark.parametrize("name", sorted(MAIL_CASES))
def test_mail_charsets_are_read_as_mail_clients_read_them(tmp_path: Path, name: str) -> None:
    """What senders write under a charset: UTF-8 under a GB2312 label, GBK characters under
    GB2312, Latin-1 under none. Each is read without a replacement character."""
    from agent.pipeline.readers.mail import extract_eml

    head, body, wanted = MAIL_CASES[name]
    path = tmp_path / name
    path.write_bytes(b"From: sender@example.org\nTo: you@example.org\nMIME-Version: 1.0\n"
                     + head.encode() + body + b"\n")
    text = "\n".join(section.text for section in extract_eml(path))
    for words in wanted:
        assert words in text, (words, text)
    assert "\ufffd" not in text


def test_a_real_odt_that_libmagic_calls_a_zip_is_read(tmp_path: Path) -> None:
    """odfpy's own textWithImages.odt (see fixtures/real/SOURCES.md) is a zip to libmagic; its
    suffix names the container, so it is read as the document it is."""
    import shutil

    config = agent_config(tmp_path)
    (tmp_path / "inbox").mkdir()
    shutil.copy(REAL / "textWithImages.odt", tmp_path / "inbox" / "textWithImages.odt")
    found = _drain(config)
    assert found["textWithImages.odt"]["status"] == "completed", found
    import sqlite3

    with sqlite3.connect(tmp_path / "data" / "index.db") as conn:
        (mime,) = conn.execute("SELECT mime FROM documents").fetchone()
    assert mime == "application/vnd.oasis.opendocument.text"


def _ruled_table(path: Path) -> Path:
    """A picture of a ruled table, five rows of three cells, at screenshot size."""
    from PIL import Image, ImageDraw, ImageFont

    rows = [("Zone", "Sales", "Period"), ("NA", "12553", "Jan-Jun 2023"),
            ("EMEA", "3318", "Jan-Jun 2023"), ("APAC", "7710", "Jan-Jun 2023"),
            ("LATAM", "2051", "Jan-Jun 2023")]
    image = Image.new("L", (900, 405), 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 22)
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            x, y = 10 + c * 290, 10 + r * 48
            draw.rectangle([x, y, x + 290, y + 48], outline=0, width=2)
            draw.text((x + 8, y + 12), cell, font=font, fill=0)
    image.save(path)
    return path


def _chunk_texts(data: Path) -> dict[str, str]:
    import sqlite3

    with sqlite3.connect(data / "index.db") as conn:
        rows = conn.execute("SELECT d.source_name, c.text FROM chunks c "
                            "JOIN documents d ON d.id = c.document_id").fetchall()
    found: dict[str, str] = {}
    for name, text in rows:
        found[name] = found.get(name, "") + "\n" + text
    return found


def test_real_scans_read_at_least_as_well_as_tesseract_and_other_scripts_are_never_garbage(
        tmp_path: Path) -> None:
    """An illustrated book page that the deskew once turned into nothing is read (Tesseract's
    CLI reads it too); a ruled table keeps its five rows; a Hebrew page with only English data
    installed is left out with the package that reads it named: the picture fails, a PDF with
    an English page too completes with a warning. With ``heb`` added, the page is read."""
    import shutil

    from PIL import Image

    from tests.scans import save_image_pdf

    config = agent_config(tmp_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    scans = REAL / "scans"
    shutil.copy(scans / "c02-22.pdf", inbox / "huck.pdf")
    shutil.copy(scans / "hebrew.png", inbox / "hebrew.png")
    _ruled_table(inbox / "sales.png")
    with Image.open(scans / "phototest.tif") as english, Image.open(scans / "hebrew.png") as hebrew:
        save_image_pdf([english.convert("L"), hebrew.convert("L")], inbox / "mixed.pdf", dpi=200)
    found = _drain(config)
    assert found["huck.pdf"]["status"] == "completed", found["huck.pdf"]
    assert found["sales.png"]["status"] == "completed", found["sales.png"]
    hebrew_job = found["hebrew.png"]
    assert hebrew_job["status"] == "failed"
    assert "Hebrew" in hebrew_job["message"] and "tesseract-ocr-heb" in hebrew_job["message"]
    mixed = found["mixed.pdf"]
    assert mixed["status"] == "completed", mixed
    assert len(mixed["warnings"]) == 1
    assert mixed["warnings"][0].startswith("page 2: a page in Hebrew script was not read")
    assert "tesseract-ocr-heb" in mixed["warnings"][0]
    texts = _chunk_texts(tmp_path / "data")
    assert "We scrouched down and laid still" in " ".join(texts["huck.pdf"].split())
    table_lines = [" ".join(line.split()) for line in texts["sales.png"].splitlines()]
    for row in ("Zone Sales Period", "NA 12553 Jan-Jun 2023", "EMEA 3318 Jan-Jun 2023",
                "APAC 7710 Jan-Jun 2023", "LATAM 2051 Jan-Jun 2023"):
        assert row in table_lines, (row, table_lines)
    assert not any("\u0590" <= ch <= "\u05ff" for ch in texts["mixed.pdf"])
    hits = cli(config, "search", "We scrouched down and laid still", "--json")
    assert hits.returncode == 0 and json.loads(hits.stdout)["results"][0]["file"] \
        == "huck.pdf"

    both = agent_config(tmp_path, "both", ocr={"languages": ["eng", "heb"]},
                        agent={"data_dir": "data-both"},
                        inbox={"path": "inbox-both"})
    checked = cli(both, "check")
    assert "OCR reads eng, heb (Latin, Hebrew scripts)" in checked.stdout, checked.stdout
    assert "tesseract-ocr-chi-sim" in checked.stdout
    (tmp_path / "inbox-both").mkdir()
    shutil.copy(scans / "hebrew.png", tmp_path / "inbox-both" / "hebrew.png")
    found = _drain(both)
    assert found["hebrew.png"]["status"] == "completed", found["hebrew.png"]
    hebrew_text = _chunk_texts(tmp_path / "data-both")["hebrew.png"]
    assert sum("\u05d0" <= ch <= "\u05ea" for ch in hebrew_text) >= 100


def _deck_with_a_broken_slide(path: Path) -> Path:
    """Three slides; the second's XML is cut off mid-element, as a crashed writer leaves it."""
    from tests import documents as d

    whole = d.write_pptx(path.with_suffix(".whole.pptx"), [
        ("Harbour dues", "Dues for ferries are paid at the gate office.", ""),
        ("Broken slide", "This slide is damaged.", ""),
        ("Pilot service", "Pilots board at the breakwater buoy.", "")])
    with zipfile.ZipFile(whole) as source, zipfile.ZipFile(path, "w") as out:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "ppt/slides/slide2.xml":
                data = data[: len(data) // 2]
            out.writestr(item, data)
    whole.unlink()
    return path


def test_one_bad_part_never_fails_the_file(tmp_path: Path) -> None:
    """A mail whose attachments include a corrupt PDF and a zip, a mail with more attachments
    than the cap, and a deck with one damaged slide all complete: the rest is indexed, and
    the job's warnings (in ``jobs --json``, ``job`` and the API's job) name what was skipped."""
    from tests import documents as d

    config = agent_config(tmp_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    d.write_eml(inbox / "survey.eml", "Hull survey", "The hull survey of the Nordlys is due "
                "in March.", attachments=[
                    ("notes.txt", b"Survey notes: the keel plates are sound.", "text/plain"),
                    ("scan.pdf", b"%PDF-1.4\n" + bytes(range(256)) * 8, "application/pdf"),
                    ("bundle.zip", b"PK\x05\x06" + bytes(18), "application/zip")])
    d.write_eml(inbox / "many.eml", "Crew lists", "All crew lists for the season.",
                attachments=[(f"crew-{n:03}.txt", f"Crew list {n}".encode(), "text/plain")
                             for n in range(103)])
    _deck_with_a_broken_slide(inbox / "dues.pptx")
    found = _drain(config)
    survey = found["survey.eml"]
    assert survey["status"] == "completed", survey
    assert len(survey["warnings"]) == 2, survey["warnings"]
    assert survey["warnings"][0].startswith("attachment scan.pdf not read: the PDF is corrupt")
    assert survey["warnings"][1].startswith("attachment bundle.zip not read: unsupported type")
    many = found["many.eml"]
    assert many["status"] == "completed", many
    assert many["warnings"] == ["3 of 103 attachments over the cap (100) not read"]
    deck = found["dues.pptx"]
    assert deck["status"] == "completed", deck
    assert len(deck["warnings"]) == 1 and deck["warnings"][0].startswith(
        "slide 2 unreadable: ppt/slides/slide2.xml"), deck["warnings"]
    assert "slide 2 unreadable" in deck["message"]  # the one-line message says so too
    shown = cli(config, "job", "dues.pptx")
    assert shown.returncode == 0 and "slide 2 unreadable" in shown.stdout, shown.stdout
    for query, name in (("keel plates are sound", "survey.eml"),
                        ("pilots board at the breakwater buoy", "dues.pptx"),
                        ("hull survey due in March", "survey.eml")):
        hits = cli(config, "search", query, "--json")
        assert hits.returncode == 0 and json.loads(hits.stdout)["results"][0]["file"] == name, \
            (query, hits.stdout[:500])


def test_legacy_office_files_and_heic_photos_are_read(tmp_path: Path) -> None:
    """Real Word, Excel and PowerPoint 97-2003 files (Apache Tika's test documents) are read
    by catdoc, xlrd and LibreOffice, the spreadsheet's rows with their column names; a HEIC
    photo of a page is OCRed; Tika's real HEIF photo, which holds no text, is decoded and
    failed as a picture with nothing to read, not refused as an unknown type. The agent runs
    on the example config `make run` uses (on free ports), which must take them all."""
    import shutil

    import pillow_heif

    from tests.scans import render_page

    example = (ROOT / "config.example.toml").read_text()
    config = tmp_path / "config.toml"
    config.write_text(re.sub(r"^port = \d+", "port = 0", example, flags=re.M))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name in ("testWORD.doc", "testEXCEL.xls", "testPPT.ppt"):
        shutil.copy(REAL / "legacy" / name, inbox / name)
    shutil.copy(REAL / "testHEIF.heic", inbox / "photo.heic")
    page = render_page("The tide tables for the northern harbour are posted at the pier "
                       "office every Monday morning before the first ferry leaves.")
    pillow_heif.from_pillow(page.convert("RGB")).save(  # type: ignore[attr-defined]
        inbox / "notice.heic", quality=90)
    found = _drain(config)
    for name in ("testWORD.doc", "testEXCEL.xls", "testPPT.ppt", "notice.heic"):
        assert found[name]["status"] == "completed", found[name]
    assert found["photo.heic"]["status"] == "failed"
    assert found["photo.heic"]["message"].startswith("no text found: OCR read nothing"), \
        found["photo.heic"]
    chunks = _chunk_texts(tmp_path / "data")
    flat = {name: " ".join(text.split()) for name, text in chunks.items()}
    assert "This is a sample Microsoft Word Document" in flat["testWORD.doc"]
    assert "Number: 9 · Square: 81" in flat["testEXCEL.xls"]
    assert "Sample Powerpoint Slide" in flat["testPPT.ppt"]
    assert "tide tables for the northern harbour" in flat["notice.heic"]
    import sqlite3

    with sqlite3.connect(tmp_path / "data" / "index.db") as conn:
        mimes = dict(conn.execute("SELECT source_name, mime FROM documents"))
    assert mimes["testWORD.doc"] == "application/msword"
    assert mimes["notice.heic"] == "image/heic"


def test_real_files_once_wrongly_failed_are_read_or_named_right(tmp_path: Path) -> None:
    """From Apache Tika's test documents: a .doc libmagic calls a bare OLE container (catdoc
    cannot parse it; LibreOffice can), a Chinese Outlook message whose RTF body crashed the
    reader, a file of pretty-printed JSON records one after another, a Strict Open XML
    workbook (read as empty sheets) and one with a DDE link openpyxl cannot open: all read.
    An encrypted ODT fails as encrypted, not as corrupt. From mail-parser's malformed mails:
    one failed as binary data, then read with its body lost, is read whole."""
    import shutil

    config = agent_config(tmp_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for path in [*(REAL / "tika").iterdir(), REAL / "mail" / "mail_malformed_3"]:
        shutil.copy(path, inbox / path.name)
    found = _drain(config)
    for name in ("simple_lower_case.doc", "testMSG_chinese.msg", "test.json",
                 "testEXCEL.strict.xlsx", "testDdeLink.xlsx"):
        assert found[name]["status"] == "completed", found[name]
    assert found["testODTEncrypted.odt"]["message"] == (
        "the OpenDocument file is encrypted (password protected)")
    flat = {name: " ".join(text.split()) for name, text in _chunk_texts(
        tmp_path / "data").items()}
    assert "Alfresco MSG format testing" in flat["testMSG_chinese.msg"]
    # A real spam mail: two NUL bytes make it "data" to libmagic, its header names a boundary
    # its body never uses, and its HTML part names no charset (Latin-1 Spanish).
    spam = found["mail_malformed_3"]
    assert spam["status"] == "completed", spam
    assert "boundary the body does use" in spam["message"]
    assert "Subject: Ahorre Dinero en su Recibo de Luz" in flat["mail_malformed_3"]
    assert "información" in flat["mail_malformed_3"] and "baño" in flat["mail_malformed_3"]
    assert "\ufffd" not in flat["mail_malformed_3"]
    assert "[2].fetchKey: 2.xml" in flat["test.json"]
    assert "2nd row: This one is red" in flat["testEXCEL.strict.xlsx"]
    assert "cb=1: 1 · cb=10: 10 · cb=2: 2 · cb=sum: 13" in flat["testEXCEL.strict.xlsx"]
