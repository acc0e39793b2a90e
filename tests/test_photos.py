"""OCR of photos never worse than the Tesseract CLI (issue 43 item 5): a photo's layout (signs
at angles, text scattered over a scene) defeats page segmentation, so a doubtful read of a
photo is followed by a sparse-text read whose confident words are added."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

from tests.helpers import cli, drain

PHOTO = Path(__file__).parent / "fixtures" / "real" / "ocrmypdf" / "baiona_color.jpg"


def _cli_words(picture: Path) -> set[str]:
    """Words `tesseract picture -` reads with confidence ≥ 60 (4 letters or more)."""
    tsv = subprocess.run(["tesseract", str(picture), "-", "tsv"], capture_output=True,
                         text=True, check=True, timeout=120).stdout
    words = set()
    for line in tsv.splitlines()[1:]:
        fields = line.split("\t")
        if len(fields) == 12 and float(fields[10]) >= 60 and len(fields[11]) >= 4:
            words.add(fields[11])
    return words


def test_a_street_sign_photo_gives_every_word_the_cli_reads(tmp_path: Path) -> None:
    """OCRmyPDF's photo of a road sign in Baiona: every word the CLI reads confidently is in
    the index (before: `Bokale` and `Angelu` were missing) and a search by them finds it."""
    expected = _cli_words(PHOTO)
    assert len(expected) >= 5, expected  # the CLI reads the sign
    config, by_name = drain(tmp_path, PHOTO)
    assert by_name["baiona_color.jpg"]["status"] == "completed", by_name
    with sqlite3.connect(tmp_path / "data" / "index.db") as conn:
        text = " ".join(t for (t,) in conn.execute("SELECT text FROM chunks"))
    assert expected <= set(text.split()), sorted(expected - set(text.split()))
    found = cli(config, "search", "Bokale Angelu", "--json")
    assert found.returncode == 0 and '"file": "baiona_color.jpg"' in found.stdout, found.stdout


def test_a_page_in_a_script_no_language_reads_is_left_out_as_image_or_in_a_pdf(
        tmp_path: Path) -> None:
    """Unstructured's picture of Simplified Chinese text, as a JPEG and as the page of a PDF:
    both are left out naming the package that reads Han, never indexed as made-up Latin
    (before: `MeO AMAD, SSRN MOE ASA” …` was indexed from both, with no warning; OSD called
    the enlarged page Latin)."""
    from PIL import Image

    picture = Path(__file__).parent / "fixtures" / "real" / "unstructured" / "chi_sim_image.jpeg"
    staged = tmp_path / "staged"
    staged.mkdir()
    Image.open(picture).convert("RGB").save(staged / "notice.pdf", resolution=150)
    _, by_name = drain(tmp_path, picture, staged / "notice.pdf")
    for name in ("chi_sim_image.jpeg", "notice.pdf"):
        job = by_name[name]
        assert job["status"] == "failed", job
        assert "a page in Han script was not read" in job["message"], job["message"]
        assert "tesseract-ocr-chi-sim" in job["message"], job["message"]
    with sqlite3.connect(tmp_path / "data" / "index.db") as conn:
        assert conn.execute("SELECT count(*) FROM chunks").fetchone()[0] == 0
