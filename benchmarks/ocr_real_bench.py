"""The agent's OCR against the ``tesseract`` CLI at its defaults, on real scans nobody here made.

Pages come from public projects' own test corpora (see ``REAL_SCANS``): Tesseract's test
images (UNLV magazine scans, eurotext, phototest and its rotations, Devanagari and Hebrew),
OCRmyPDF's test resources (a Huckleberry Finn page, a two-column manual page, straight, skewed
and rotated, a typewriter sheet, a French page) and pytesseract's test pictures. Each is read
twice on the same pixels: by the agent's reader as the worker runs it (``PageReader``), and by
``tesseract page.png -`` with no options. Where the corpus ships the page's true text, both
get a character error rate (edit distance over the true text, whitespace collapsed); elsewhere
both get their length, and "read nothing" is flagged.

Goal (issue #30): no page where the agent's CER is more than 1 point worse than the CLI's, and
"read nothing" only where the CLI reads nothing too.

    python benchmarks/ocr_real_bench.py                 # every page found (≈ 3 min)
    python benchmarks/ocr_real_bench.py --quick         # the pages committed in tests/fixtures/real
    python benchmarks/ocr_real_bench.py --corpus DIR    # a folder of pages (NAME.txt beside = truth)

The full set is exported from the mirrors ``fetch`` brings (``github:tesseract-ocr/test``,
``github:ocrmypdf/OCRmyPDF``, ``github:madmaze/pytesseract``) into a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MIRRORS = Path("/work/.mirror")
FIXTURES = ROOT / "tests" / "fixtures" / "real"
# (mirror, folder in it, page file, truth file or None)
REAL_SCANS: tuple[tuple[str, str, str, str | None], ...] = (
    ("tesseract-ocr+test", "testing", "8071_093.3B.tif", "8071_093.3B.txt"),
    ("tesseract-ocr+test", "testing", "8087_054.3B.tif", "8087_054.3B.txt"),
    ("tesseract-ocr+test", "testing", "eurotext.tif", "eurotext.txt"),
    ("tesseract-ocr+test", "testing", "phototest.tif", "phototest.txt"),
    ("tesseract-ocr+test", "testing", "phototest-rotated-180.png", "phototest.txt"),
    ("tesseract-ocr+test", "testing", "phototest-rotated-L.png", "phototest.txt"),
    ("tesseract-ocr+test", "testing", "phototest-rotated-R.png", "phototest.txt"),
    ("tesseract-ocr+test", "testing", "phototestrot.tif", None),
    ("tesseract-ocr+test", "testing", "segmodeimg.tif", None),
    ("tesseract-ocr+test", "testing", "deslant.tif", None),
    ("tesseract-ocr+test", "testing", "devatest.png", None),
    ("tesseract-ocr+test", "testing", "hebrew.png", None),
    ("ocrmypdf+OCRmyPDF", "tests/resources", "linn.png", "linn.txt"),
    ("ocrmypdf+OCRmyPDF", "tests/resources", "linn.pdf", "linn.txt"),
    ("ocrmypdf+OCRmyPDF", "tests/resources", "skew.pdf", "linn.txt"),
    ("ocrmypdf+OCRmyPDF", "tests/resources", "rotated_skew.pdf", "linn.txt"),
    ("ocrmypdf+OCRmyPDF", "tests/resources", "c02-22.pdf", None),
    ("ocrmypdf+OCRmyPDF", "tests/resources", "typewriter.png", None),
    ("ocrmypdf+OCRmyPDF", "tests/resources", "francais.pdf", None),
    ("ocrmypdf+OCRmyPDF", "tests/resources", "cardinal.pdf", None),
    ("ocrmypdf+OCRmyPDF", "tests/resources", "baiona.png", None),
    ("ocrmypdf+OCRmyPDF", "tests/resources", "crom.png", None),
    ("ocrmypdf+OCRmyPDF", "tests/resources", "ccitt.pdf", None),
    ("madmaze+pytesseract", "tests/data", "test.jpg", None),
    ("madmaze+pytesseract", "tests/data", "test-european.jpg", None),
    ("madmaze+pytesseract", "tests/data", "test-small.jpg", None),
    ("madmaze+pytesseract", "tests/data", "test.gif", None),
)


@dataclass
class PageResult:
    page: str
    truth_chars: int | None
    agent_chars: int
    cli_chars: int
    agent_cer: float | None
    cli_cer: float | None
    agent_seconds: float
    cli_seconds: float
    left_out: str = ""  # why the agent left the page out (a script no language reads)

    @property
    def verdict(self) -> str:
        if self.left_out:
            return f"left out: {self.left_out.split(':')[0]}"
        if self.agent_chars == 0 and self.cli_chars > 0:
            return "WORSE: agent read nothing"
        if self.agent_cer is not None and self.cli_cer is not None \
                and self.agent_cer > self.cli_cer + 0.01:
            return "WORSE"
        return "ok"


def cer(read: str, truth: str) -> float:
    from rapidfuzz.distance import Levenshtein

    a, b = " ".join(read.split()), " ".join(truth.split())
    return Levenshtein.distance(a, b) / max(1, len(b))


def export(folder: Path) -> list[tuple[Path, Path | None]]:
    """The real pages found in the mirrors, written to ``folder``: (page, truth)."""
    pages: list[tuple[Path, Path | None]] = []
    for mirror, under, name, truth in REAL_SCANS:
        git = MIRRORS / mirror / "repo"
        if not git.is_dir():
            continue
        out = folder / f"{mirror.split('+')[0]}_{name}"
        out.write_bytes(subprocess.run(["git", f"--git-dir={git}", "show", f"HEAD:{under}/{name}"],
                                       check=True, capture_output=True).stdout)
        truth_path = None
        if truth:
            truth_path = folder / f"{mirror.split('+')[0]}_{truth}.truth"
            truth_path.write_bytes(subprocess.run(
                ["git", f"--git-dir={git}", "show", f"HEAD:{under}/{truth}"],
                check=True, capture_output=True).stdout)
        pages.append((out, truth_path))
    return pages


def corpus(folder: Path) -> list[tuple[Path, Path | None]]:
    """Pages in a folder, each with ``NAME.txt`` beside it as its truth when there is one."""
    pages = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".gif", ".pdf"}:
            truth = path.with_suffix(".txt")
            pages.append((path, truth if truth.is_file() else None))
    return pages


def page_images(path: Path) -> list[Any]:
    """The page pictures the worker would read: image frames, or PDF pages rendered as the
    PDF reader renders a scan."""
    from agent.pipeline.readers.ocr import OcrOptions, image_pages

    if path.suffix.lower() != ".pdf":
        return [page for _, page in image_pages(path, OcrOptions())]
    import pypdfium2 as pdfium

    from agent.pipeline.readers.pdf import render_page

    pdf = pdfium.PdfDocument(str(path))
    try:
        return [render_page(pdf, i, OcrOptions().dpi) for i in range(len(pdf))]
    finally:
        pdf.close()


def read_cli(image: Any, scratch: Path) -> str:
    png = scratch / "page.png"
    image.save(png)
    done = subprocess.run(["tesseract", str(png), "-"], capture_output=True, text=True,
                          check=False)
    return done.stdout


def measure(pages: list[tuple[Path, Path | None]]) -> list[PageResult]:
    from agent.pipeline.readers.ocr import OcrOptions, PageReader

    reader = PageReader(OcrOptions(threads=1))
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        for path, truth_path in pages:
            truth = truth_path.read_text(encoding="utf-8", errors="replace") if truth_path else None
            agent_text, cli_text, left_out = "", "", ""
            agent_s = cli_s = 0.0
            for image in page_images(path):
                started = time.perf_counter()
                (_, read), = reader.read_pages([(0, image)])
                agent_text += read.text + "\n"
                left_out = left_out or read.note
                agent_s += time.perf_counter() - started
                started = time.perf_counter()
                cli_text += read_cli(image, Path(scratch)) + "\n"
                cli_s += time.perf_counter() - started
            results.append(PageResult(
                page=path.name, truth_chars=len(truth) if truth else None,
                agent_chars=len(agent_text.strip()), cli_chars=len(cli_text.strip()),
                agent_cer=cer(agent_text, truth) if truth else None,
                cli_cer=cer(cli_text, truth) if truth else None,
                agent_seconds=agent_s, cli_seconds=cli_s, left_out=left_out))
            print(f"  {path.name}: {results[-1].verdict}", file=sys.stderr, flush=True)
    reader.close()
    return results


def table(results: list[PageResult]) -> str:
    def pct(value: float | None) -> str:
        return "—" if value is None else f"{value * 100:.1f} %"

    lines = ["| page | truth chars | agent CER | CLI CER | agent chars | CLI chars "
             "| agent s | CLI s | verdict |",
             "|---|--:|--:|--:|--:|--:|--:|--:|---|"]
    for r in results:
        lines.append(f"| {r.page} | {r.truth_chars or '—'} | {pct(r.agent_cer)} "
                     f"| {pct(r.cli_cer)} | {r.agent_chars} | {r.cli_chars} "
                     f"| {r.agent_seconds:.1f} | {r.cli_seconds:.1f} | {r.verdict} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="only the real pages committed under tests/fixtures/real")
    parser.add_argument("--corpus", type=Path, help="a folder of pages, NAME.txt = truth")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        if args.corpus:
            pages = corpus(args.corpus)
        elif args.quick:
            pages = corpus(FIXTURES / "scans")
        else:
            pages = export(Path(folder))
        if not pages:
            sys.exit("no pages found: fetch github:tesseract-ocr/test (and the others), "
                     "or give --corpus DIR")
        results = measure(pages)
    print(table(results))
    worse = [r.page for r in results if r.verdict.startswith("WORSE")]
    print(f"\n{len(results)} pages, {len(worse)} worse than the CLI"
          + (f": {', '.join(worse)}" if worse else ""))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1))
    if worse:
        sys.exit(1)


if __name__ == "__main__":
    main()
