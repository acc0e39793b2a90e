"""Every format users drop, through the real agent: files written by each format's own writer
library, scans rendered from text (and damaged), all found by `ingest-agent search` with the
phrase unique to each as the top hit, with where in the file the hit is; bad files end in a
named state."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import documents
from tests.helpers import AgentProcess, agent_config, cli, free_port, jobs, wait_until
from tests.scans import Damage, render_page, save_image_pdf, write_bomb_png

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _scan_text(subject: str) -> str:
    return (f"Field report. The survey team recorded {subject} along the northern ridge "
            "during the spring count.\n\nEach observer wrote the numbers in a notebook and the "
            "totals were checked twice before the report was filed.")


def _mixed_pdf(path: Path) -> Path:
    """Page 1 has a text layer; page 2 is only a scanned picture of a page."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.multi_cell(0, 8, "Minutes of the harbour board. The board approved the new "
                   "tugboat schedule for the winter season.")
    pdf.add_page()
    pdf.image(render_page(_scan_text("seven hooded mergansers"), dpi=150), x=0, y=0, w=210)
    pdf.output(str(path))
    return path


def write_inputs(inbox: Path) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """file name → (unique query, expected top file, fields the top hit must have)."""
    d = documents
    d.write_xlsx(inbox / "budget.xlsx", {
        "Summary": [["Quarter", "Total"], ["Q1", 1200]],
        "Travel": [["Item", "Cost"], ["Reindeer sleigh rental in Tromsø", 4300]]})
    d.write_xlsx(inbox / "macros.xlsm", {"Sheet1": [["Gooseberry jam inventory", 17]]})
    d.write_pptx(inbox / "deck.pptx", [
        ("Welcome", "Agenda for the offsite", ""),
        ("Roadmap", "Ship the telescope firmware", "Remind everyone about the aurora webcam")])
    d.write_odt(inbox / "letter.odt", "Complaint", ["The lighthouse foghorn woke the entire "
                                                     "village at three in the morning."])
    d.write_ods(inbox / "stock.ods", {"Pantry": [["Saffron threads from La Mancha", "4"]]})
    d.write_odp(inbox / "talk.odp", [("Intro", "Hello"), ("Volcanoes",
                                                          "Basalt columns cool into hexagons")])
    d.write_epub(inbox / "novel.epub", "A Novel", [
        ("The Harbour", "Gulls circled the fishing boats at dawn."),
        ("The Storm", "The albatross rode the gale past the breakwater for hours.")])
    d.write_eml(inbox / "mail.eml", "Kayak trip planning", "Bring the waterproof maps.",
                attachments=[("packing.txt", b"Pack the marmalade sandwiches and a thermos.",
                              "text/plain")])
    d.write_msg(inbox / "outlook.msg", "Telescope maintenance window",
                "The observatory dome closes for cleaning on Thursday.",
                [("filters.txt", b"Polish the hydrogen-alpha filter with a lint-free cloth.")])
    d.write_rtf(inbox / "memo.rtf", ["The cafeteria will serve pumpkin gnocchi on Friday."])
    render_page(_scan_text("eleven snow leopards")).save(inbox / "page.png")
    render_page(_scan_text("three arctic foxes"), damage=Damage(rotate=90, jpeg_quality=60)
                ).save(inbox / "photo.jpg", quality=60)
    frames = [render_page(_scan_text(f"{animal}"), dpi=200)
              for animal in ("a pair of golden eagles", "nine mountain hares")]
    frames[0].save(inbox / "fax.tiff", save_all=True, append_images=frames[1:], dpi=(200, 200))
    render_page(_scan_text("four red squirrels"), damage=Damage(skew=-3), dpi=200).save(
        inbox / "tilted.webp")
    render_page(_scan_text("five wild boars"), dpi=200).save(inbox / "old.bmp")
    render_page(_scan_text("two white storks"), dpi=200).save(inbox / "anim.gif")
    save_image_pdf([render_page(_scan_text("six grey herons"))], inbox / "scan.pdf")
    _mixed_pdf(inbox / "mixed.pdf")
    return {
        "budget.xlsx": ("reindeer sleigh rental", "budget.xlsx", {"heading": "Sheet: Travel"}),
        "macros.xlsm": ("gooseberry jam inventory", "macros.xlsm", {}),
        "deck.pptx": ("aurora webcam", "deck.pptx", {"heading": "Slide 2: Roadmap", "page": 2}),
        "letter.odt": ("foghorn woke the village", "letter.odt", {"heading": "Complaint"}),
        "stock.ods": ("saffron threads", "stock.ods", {"heading": "Sheet: Pantry"}),
        "talk.odp": ("basalt columns hexagons", "talk.odp", {"page": 2}),
        "novel.epub": ("albatross rode the gale", "novel.epub",
                       {"heading": "Chapter 2 › The Storm"}),
        "mail.eml": ("marmalade sandwiches thermos", "mail.eml",
                     {"heading": "Attachment packing.txt of mail “Kayak trip planning”"}),
        "outlook.msg": ("hydrogen-alpha filter", "outlook.msg",
                        {"heading": "Attachment filters.txt of mail “Telescope maintenance "
                                    "window”"}),
        "memo.rtf": ("pumpkin gnocchi", "memo.rtf", {}),
        "page.png": ("snow leopards", "page.png", {"page": 1}),
        "photo.jpg": ("arctic foxes", "photo.jpg", {}),
        "fax.tiff": ("mountain hares", "fax.tiff", {"page": 2}),
        "tilted.webp": ("red squirrels", "tilted.webp", {}),
        "old.bmp": ("wild boars", "old.bmp", {}),
        "anim.gif": ("white storks", "anim.gif", {}),
        "scan.pdf": ("grey herons", "scan.pdf", {"page": 1}),
        "mixed.pdf": ("hooded mergansers", "mixed.pdf", {"page": 2}),
    }


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[AgentProcess, Path, dict[str, Any], int]]:
    base = tmp_path_factory.mktemp("formats")
    port = free_port()
    config = agent_config(base, metrics={"port": port})
    config.write_text(config.read_text() + '\n[[inbox]]\nname = "noocr"\npath = "noocr/inbox"\n'
                      'settle_seconds = 0.2\nocr = false\n')
    agent = AgentProcess(config)
    agent.ready()
    expected = write_inputs(base / "inbox")
    render_page("This picture must not be read.").save(base / "noocr" / "inbox" / "pic.png")
    wait_until(lambda: sum(j["status"] in ("completed", "failed") for j in jobs(config))
               == len(expected) + 1, 600, "every format processed")
    try:
        yield agent, config, expected, port
    finally:
        agent.stop()


def _search(config: Path, query: str) -> dict[str, Any]:
    out = cli(config, "search", query, "--json")
    assert out.returncode == 0, (query, out.stdout, out.stderr)
    return dict(json.loads(out.stdout))


def test_every_format_is_indexed_and_its_phrase_is_the_top_hit(agent: Any) -> None:
    _, config, expected, _ = agent
    by_file = {Path(j["original_filename"]).name: j for j in jobs(config)}
    failed = {name: j["message"] for name, j in by_file.items()
              if name in expected and j["status"] != "completed"}
    assert not failed, failed
    misses = {}
    for name, (query, top_file, fields) in expected.items():
        top = _search(config, query)["results"][0]
        wrong = {k: top.get(k) for k, v in fields.items() if top.get(k) != v}
        if top["file"] != top_file or wrong:
            misses[name] = (query, top["file"], wrong, top["text"][:200])
    assert not misses, misses


def test_the_mail_names_its_headers_and_attachments(agent: Any) -> None:
    """Subject, sender and the attachment's name are searchable in the mail's first chunk."""
    _, config, _, _ = agent
    top = _search(config, "Ada Lovelace kayak trip")["results"][0]
    assert top["file"] == "mail.eml" and top["heading"] == "Mail “Kayak trip planning”"
    assert "From: Ada Lovelace <ada@example.org>" in top["text"]
    assert "Attachments: packing.txt" in top["text"]
    outlook = _search(config, "Grace Hopper telescope maintenance")["results"][0]
    assert outlook["file"] == "outlook.msg"
    assert outlook["heading"] == "Mail “Telescope maintenance window”"
    assert "From: Grace Hopper <grace@example.org>" in outlook["text"]
    assert "Date: Tue, 01 Dec 2026 09:30:00 +0000" in outlook["text"]


def test_ocr_off_for_an_inbox_fails_its_images_with_the_reason(agent: Any) -> None:
    _, config, _, _ = agent
    pic = next(j for j in jobs(config) if j["original_filename"].endswith("pic.png"))
    assert pic["status"] == "failed"
    assert "OCR is off for this inbox" in pic["message"]
    assert (config.parent / "noocr" / "failed" / "pic.png.error.json").is_file()


def test_ocr_and_types_are_on_the_metrics(agent: Any) -> None:
    """OCR pages, the ocr stage's time and documents by type are exported."""
    _, _, expected, port = agent
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    values = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
              for line in body.splitlines() if line and not line.startswith("#")}
    # page.png, photo.jpg, fax.tiff (2), tilted.webp, old.bmp, anim.gif, scan.pdf, mixed.pdf p2;
    # libmagic names the .xlsm by its content, a workbook: both count as xlsx
    assert values['ingest_ocr_pages_total{inbox="box"}'] == 9
    assert values['ingest_stage_duration_seconds_count{stage="ocr"}'] == 8
    for kind, count in (("xlsx", 2), ("pptx", 1), ("epub", 1), ("eml", 1), ("msg", 1), ("png", 1),
                        ("pdf", 2), ("tiff", 1)):
        assert values[f'ingest_documents_indexed_by_type_total{{type="{kind}"}}'] == count, kind


@pytest.mark.parametrize("name, make, reason", [
    ("huge.png", lambda p: write_bomb_png(p, 20000, 20000),
     "20000×20000 pixels (400 MP), over ocr.max_image_pixels"),
    ("bomb.png", lambda p: write_bomb_png(p, 60000, 60000), "(3600 MP), over ocr.max_image"),
    ("cut.jpg", lambda p: p.write_bytes(_jpeg_bytes()[:30000]), "truncated"),
    ("bomb.xlsx", documents.write_zip_bomb_xlsx, "zip bomb"),
    ("locked.xlsx", lambda p: _encrypted_xlsx(p), "encrypted"),
    ("long-scan.pdf", lambda p: _many_page_scan(p, 500), "500 pages need OCR, over ocr.max_pages"),
])
def test_bad_inputs_end_in_a_named_state(tmp_path: Path, name: str, make: Any,
                                         reason: str) -> None:
    """Each bad file fails permanently with its reason; the pixel and page caps are checked
    before any pixel is decoded or any page is read (memory is measured in ocr_bench)."""
    from agent.config.settings import Settings
    from agent.pipeline import IngestPipeline, JobRequest
    from agent.pipeline.detect import detect_type

    path = tmp_path / name
    make(path)
    settings = Settings.model_validate({"agent": {"data_dir": str(tmp_path / "data")},
                                        "ocr": {"max_pages": 100}})
    pipeline = IngestPipeline(settings)
    from agent.errors import PermanentError

    with pytest.raises(PermanentError) as caught:
        detect_type(path)  # detection alone may already refuse it (encrypted)
        pipeline.run(JobRequest("j1", str(path), "box", name), lambda *_: None)
    assert reason in str(caught.value)


def _jpeg_bytes() -> bytes:
    import io

    buffer = io.BytesIO()
    render_page(_scan_text("a lost page")).save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def _encrypted_xlsx(path: Path) -> None:
    from msoffcrypto.format.ooxml import OOXMLFile

    plain = documents.write_xlsx(path.with_name("plain.xlsx"), {"S": [["secret numbers"]]})
    with open(plain, "rb") as fh, open(path, "wb") as out:
        OOXMLFile(fh).encrypt("hunter2", out)


def _many_page_scan(path: Path, pages: int) -> None:
    from PIL import Image

    page = Image.new("L", (83, 117), 255)  # A4 at 10 dpi: a real image-only page, tiny
    save_image_pdf([page] * pages, path, dpi=10)
