"""Extraction speed per format: files of a realistic size written by each format's writer
library (the same writers as the tests), read by the agent's reader, 5 samples each.

Text is real prose (Python's tutorial from Debian ``python3-doc``), so sizes and word shapes are
those of real documents. Reported per format: file size, characters extracted, median seconds
(min–max) and characters per second, with the load average.

    python benchmarks/formats_bench.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import documents  # noqa: E402

TUTORIAL = Path("/usr/share/doc/python3-doc/html/tutorial")
SAMPLES = 5


def paragraphs(count: int) -> list[str]:
    from agent.pipeline.readers.extract import html_sections

    out: list[str] = []
    for page in sorted(TUTORIAL.glob("*.html")):
        for section in html_sections(page.read_text()):
            out += [p.strip() for p in section.text.split("\n") if len(p.strip()) > 40]
    return [out[i % len(out)] for i in range(count)]


def build(folder: Path) -> dict[str, tuple[Path, str]]:
    """name → (file, MIME type): each about what a user drops."""
    text = paragraphs(3000)
    words = " ".join(text).split()
    rows = [[f"R{i}", words[i % len(words)], words[(i * 7) % len(words)], i * 3.5]
            for i in range(20000)]
    files = {
        "xlsx (20,000 rows × 4, 2 sheets)": (documents.write_xlsx(
            folder / "big.xlsx", {"Data": rows[:10000], "More": rows[10000:]}),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        "pptx (200 slides with notes)": (documents.write_pptx(
            folder / "big.pptx", [(f"Slide {i}", text[i], text[i + 1]) for i in range(200)]),
            "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
        "odt (3,000 paragraphs)": (documents.write_odt(folder / "big.odt", "Tutorial", text),
                                   "application/vnd.oasis.opendocument.text"),
        "ods (5,000 rows × 3)": (documents.write_ods(
            folder / "big.ods", {"Data": [[str(c) for c in r[:3]] for r in rows[:5000]]}),
            "application/vnd.oasis.opendocument.spreadsheet"),
        "epub (60 chapters)": (documents.write_epub(
            folder / "big.epub", "Tutorial", [(f"Chapter {i}", " ".join(text[i * 50:i * 50 + 50]))
                                              for i in range(60)]), "application/epub+zip"),
        "eml (body + 3 text attachments)": (documents.write_eml(
            folder / "big.eml", "Tutorial", "\n\n".join(text[:500]),
            attachments=[(f"part{i}.txt", "\n".join(text[i * 500:i * 500 + 500]).encode(),
                          "text/plain") for i in range(1, 4)]), "message/rfc822"),
        "msg (body + 1 attachment)": (documents.write_msg(
            folder / "big.msg", "Tutorial", "\n\n".join(text[:500]),
            [("part.txt", "\n".join(text[500:1000]).encode())]), "application/vnd.ms-outlook"),
        "rtf (3,000 paragraphs)": (documents.write_rtf(folder / "big.rtf", text), "text/rtf"),
    }
    return files


def timed(read: Callable[[], int]) -> tuple[float, int]:
    started = time.perf_counter()
    chars = read()
    return time.perf_counter() - started, chars


def main() -> None:
    from agent.pipeline.readers.registry import extract

    with tempfile.TemporaryDirectory() as folder:
        files = build(Path(folder))
        print("| format | file | characters | seconds (min–max) | characters/s | load |")
        print("|---|---|---|---|---|---|")
        for name, (path, mime) in files.items():
            samples = []
            loads = []
            chars = 0
            for _ in range(SAMPLES):
                def read(p: Path = path, m: str = mime) -> int:
                    return sum(len(s.text) for s in extract(p, m))

                seconds, chars = timed(read)
                samples.append(seconds)
                loads.append(os.getloadavg()[0])
            median = statistics.median(samples)
            print(f"| {name} | {path.stat().st_size / 2**20:.1f} MB | {chars:,} | "
                  f"{median:.2f} ({min(samples):.2f}–{max(samples):.2f}) | "
                  f"{chars / median / 1e6:.2f} M | {min(loads):.1f}–{max(loads):.1f} |")


if __name__ == "__main__":
    main()
