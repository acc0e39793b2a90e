"""Valid files read, and the files that cannot be read told apart in one line people can act
on (issue 30, first part), through the real agent, pipeline and model."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

from tests.helpers import agent_config, cli, jobs


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
    """A pretty-printed ODT and an HTML page whose only text is headings are indexed; a zip,
    a deck of pictures only and a blank photo fail, each with a short line naming its case."""
    from PIL import Image

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
    found = _drain(config)
    assert found["berths.odt"]["status"] == "completed"
    assert found["hours.html"]["status"] == "completed"
    unsupported = found["bundle.zip"]["message"]
    assert unsupported == ("unsupported type application/zip (a zip archive): unpack it into "
                           "the inbox")
    assert found["photos.pptx"]["message"] == (
        "no text found: the slides hold pictures only (no text boxes, tables or notes)")
    assert found["sky.png"]["message"].startswith("no text found: OCR read nothing in the picture")
    assert all(len(j["message"]) <= 200 for j in found.values())
    hits = cli(config, "search", "when is the harbour office open", "--json")
    assert hits.returncode == 0 and '"hours.html"' in hits.stdout
    berth = cli(config, "search", "which berth do ferries use in summer", "--json")
    assert berth.returncode == 0 and '"berths.odt"' in berth.stdout
