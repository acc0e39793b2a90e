"""OCR engines side by side on pages rendered from known text, in one run.

Pages: real prose (Python's tutorial, Debian ``python3-doc``) set in DejaVu Serif and Sans
(Debian ``fonts-dejavu-core``) on A4 at 300 dpi, read clean, turned 90/180/270°, skewed ±3°,
and noisy (JPEG quality 40 with 1 % salt-and-pepper). Engines, on the same pages, alternating
which goes first on each page:

- **tesseract**: the agent's reader (tesserocr, Debian's ``eng`` + ``osd`` data; pages deskewed
  and median-filtered first), as the worker runs it;
- **rapidocr**: ``rapidocr-onnxruntime`` with the models inside its wheel, on the raw page.

Reported per condition: character error rate (edit distance over the true text, whitespace
collapsed) and seconds per page (one page at a time, one thread); then each engine's peak RSS
in a fresh process, the agent worker's peak RSS with OCR and the embedding model loaded, the
seconds per page of a long scan read end to end (two pages OCRed at once, then chunked and
embedded), and how the bad inputs end.

    python benchmarks/ocr_bench.py            # 5 pages × 7 conditions × 2 engines (≈ 10 min)
    python benchmarks/ocr_bench.py --quick    # 1 page × 4 conditions, RapidOCR on the clean one (CI)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.scans import Damage, render_page, save_image_pdf, write_bomb_png  # noqa: E402

TUTORIAL = Path("/usr/share/doc/python3-doc/html/tutorial")
PAGES = ("controlflow.html", "datastructures.html", "inputoutput.html", "errors.html",
         "classes.html", "modules.html")
FONTS = ("DejaVuSerif.ttf", "DejaVuSans.ttf")
CONDITIONS = {
    "clean": Damage(),
    "rotated 90°": Damage(rotate=90),
    "rotated 180°": Damage(rotate=180),
    "rotated 270°": Damage(rotate=270),
    "skewed +3°": Damage(skew=3),
    "skewed −3°": Damage(skew=-3),
    "noisy (JPEG q40, 1 % salt-and-pepper)": Damage(jpeg_quality=40, salt_pepper=0.01),
}
QUICK = ("clean", "rotated 90°", "skewed −3°", "noisy (JPEG q40, 1 % salt-and-pepper)")
WORDS_PER_PAGE = 330
GOALS = {"clean": 0.02, "damaged": 0.05, "seconds": 3.0, "worker_rss_mb": 1200}


def page_texts(count: int) -> list[str]:
    """The first words of real tutorial pages (what each rendered page must read back)."""
    from agent.pipeline.readers.extract import html_sections

    texts = []
    for name in PAGES[:count]:
        body = " ".join(s.text for s in html_sections((TUTORIAL / name).read_text()))
        texts.append(" ".join(body.split()[:WORDS_PER_PAGE]))
    return texts


def cer(read: str, truth: str) -> float:
    from rapidfuzz.distance import Levenshtein

    a, b = " ".join(read.split()), " ".join(truth.split())
    return Levenshtein.distance(a, b) / max(1, len(b))


def tesseract_engine() -> Callable[[Any], str]:
    from agent.pipeline.readers.ocr import OcrOptions, PageReader

    reader = PageReader(OcrOptions())
    return reader.read


def rapidocr_engine() -> Callable[[Any], str]:
    import numpy as np
    from rapidocr_onnxruntime import RapidOCR

    engine = RapidOCR()

    def read(image: Any) -> str:
        result, _ = engine(np.asarray(image.convert("RGB")))
        return "\n".join(line[1] for line in result or [])

    return read


ENGINES = {"tesseract": tesseract_engine, "rapidocr": rapidocr_engine}


def accuracy(texts: list[str], conditions: list[str], engines: list[str],
             peer_conditions: list[str] | None = None
             ) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """condition → engine → [(CER, seconds)] per page; engines alternate who reads first.
    Engines after the first read only ``peer_conditions`` (all when None)."""
    readers = {name: ENGINES[name]() for name in engines}
    for read in readers.values():  # warm up: the first page pays for loading models
        read(render_page("warm up", dpi=100))
    out: dict[str, dict[str, list[tuple[float, float]]]] = {}
    turn = 0
    for condition in conditions:
        here = [e for e in engines if e == engines[0] or peer_conditions is None
                or condition in peer_conditions]
        out[condition] = {name: [] for name in here}
        for n, truth in enumerate(texts):
            image = render_page(truth, font=FONTS[n % 2], damage=CONDITIONS[condition], seed=n)
            order = here if turn % 2 == 0 else here[::-1]
            turn += 1
            for name in order:
                started = time.perf_counter()
                found = readers[name](image)
                out[condition][name].append((cer(found, truth), time.perf_counter() - started))
    return out


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: its own, unlike ru_maxrss, which a child
    inherits from the parent that forked it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def engine_rss(name: str, text: str) -> float:
    """Peak RSS (MB) of a fresh process that loads one engine and reads one page."""
    code = (f"import sys, resource; sys.path.insert(0, {str(ROOT)!r})\n"
            "from benchmarks.ocr_bench import ENGINES, peak_rss_mb\n"
            "from tests.scans import render_page\n"
            f"ENGINES[{name!r}]()(render_page({text!r}))\nprint(peak_rss_mb())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return float(out.stdout.split()[-1])


WORKER = """
import json, sys, time
sys.path.insert(0, {root!r})
from benchmarks.ocr_bench import peak_rss_mb
from agent.config.settings import Settings
from agent.errors import AgentError
from agent.pipeline import IngestPipeline, JobRequest
pipeline = IngestPipeline(Settings.model_validate({{"agent": {{"data_dir": {data!r}}},
                                                   "ocr": {{"max_pages": 100}}}}))
fates = {{}}
for n, path in enumerate({files!r}):
    started = time.perf_counter()
    try:
        result = pipeline.run(JobRequest(f"j{{n}}", path, "box", path), lambda *_: None)
        pages = result.ocr_pages
        fate = (f"done: {{result.chunks}} chunks, {{pages}} OCR pages, "
                f"{{(time.perf_counter() - started) / max(pages, 1):.2f}} s/page end to end")
    except AgentError as exc:
        fate = f"failed: {{exc}}"
    fates[path] = (fate, time.perf_counter() - started, peak_rss_mb())
print(json.dumps(fates))
"""


def tiled_pages(texts: list[str], width: int, height: int) -> Any:
    """A ``width`` × ``height`` picture of text: 300-dpi pages side by side, those at the
    edges cut off (so the largest image the agent accepts is read, not skipped as blank)."""
    from PIL import Image

    canvas = Image.new("L", (width, height), 255)
    pages = [render_page(text) for text in texts]
    n = 0
    for top in range(0, height, pages[0].height):
        for left in range(0, width, pages[0].width):
            canvas.paste(pages[n % len(pages)], (left, top))
            n += 1
    return canvas


def worker_run(folder: Path, texts: list[str], scan_pages: int
               ) -> dict[str, tuple[str, float, float]]:
    """The real pipeline (model + OCR, ``ocr.max_pages = 100``) in a fresh process over a
    one-page scan, a ``scan_pages``-page scan and the bad inputs; per file: its fate,
    seconds, and the process's peak RSS after it (MB)."""
    one = save_image_pdf([render_page(texts[0])], folder / "scan-1-page.pdf")
    pages = [render_page(texts[n % len(texts)], dpi=300) for n in range(scan_pages)]
    scan = save_image_pdf(pages, folder / f"scan-{scan_pages}-pages.pdf")
    del pages
    huge = write_bomb_png(folder / "huge-20000x20000.png", 20000, 20000)
    bomb = write_bomb_png(folder / "bomb-60000x60000.png", 60000, 60000)  # 3.6 G pixels
    largest = folder / "largest-allowed-8000x8000.png"
    tiled_pages(texts, 8000, 8000).save(largest)
    long_scan = save_image_pdf([render_page("", dpi=10)] * 500, folder / "blank-500-pages.pdf",
                               dpi=10)  # over the cap of 100: refused before any page is read
    blank = save_image_pdf([render_page("", dpi=10)] * 50, folder / "blank-50-pages.pdf",
                           dpi=10)
    jpeg = folder / "truncated.jpg"
    render_page(texts[0]).save(jpeg, quality=80)
    jpeg.write_bytes(jpeg.read_bytes()[: jpeg.stat().st_size // 3])
    files = [str(p) for p in (one, scan, huge, bomb, largest, long_scan, blank, jpeg)]
    code = WORKER.format(root=str(ROOT), data=str(folder / "data"), files=files)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return {Path(k).name: tuple(v) for k, v in json.loads(out.stdout.splitlines()[-1]).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=5, help="pages per condition (≤ 6)")
    parser.add_argument("--quick", action="store_true", help="1 page, 4 conditions")
    parser.add_argument("--engines", default="tesseract,rapidocr")
    parser.add_argument("--scan-pages", type=int, default=30,
                        help="pages of the long scan the worker reads (memory over length)")
    args = parser.parse_args()
    engines = [e for e in args.engines.split(",") if e]
    texts = page_texts(1 if args.quick else min(args.pages, len(PAGES)))
    conditions = list(QUICK if args.quick else CONDITIONS)
    load_before = os.getloadavg()[0]
    results = accuracy(texts, conditions, engines, ["clean"] if args.quick else None)
    print(f"OCR on {len(texts)} A4 page(s) per condition at 300 dpi, {WORDS_PER_PAGE} words of "
          f"the Python tutorial each; load {load_before:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after\n")
    head = " | ".join(f"{e} CER (max) | {e} s/page (min–max)" for e in engines)
    print(f"| condition | {head} |")
    print("|---" * (1 + 2 * len(engines)) + "|")
    for condition, by_engine in results.items():
        cells = []
        for name in engines:
            if name not in by_engine:
                cells.append("— | —")
                continue
            errors = [c for c, _ in by_engine[name]]
            seconds = [s for _, s in by_engine[name]]
            cells.append(f"{statistics.median(errors):.2%} ({max(errors):.2%}) | "
                         f"{statistics.median(seconds):.2f} ({min(seconds):.2f}–"
                         f"{max(seconds):.2f})")
        print(f"| {condition} | {' | '.join(cells)} |")
    print()
    if len(engines) == 2:
        first, second = engines
        paired = [b[1] / a[1] for by in results.values() if second in by
                  for a, b in zip(by[first], by[second], strict=True)]
        print(f"{second} ÷ {first} seconds on the same page: median {statistics.median(paired):.2f}"
              f"× (min {min(paired):.2f}, max {max(paired):.2f}; n={len(paired)} pages)\n")
    rss = {name: engine_rss(name, texts[0]) for name in engines}
    print("peak RSS, one engine + one page in a fresh process: "
          + ", ".join(f"{n} {mb:.0f} MB" for n, mb in rss.items()))
    with tempfile.TemporaryDirectory() as folder:
        fates = worker_run(Path(folder), texts, 3 if args.quick else args.scan_pages)
    print("\nagent worker (embedding model + OCR) in a fresh process:")
    for name, (fate, took, peak) in fates.items():
        print(f"- {name}: {fate} ({took:.2f} s; peak RSS so far {peak:.0f} MB)")
    worker_peak = max(p for _, _, p in fates.values())
    long_name = next(n for n in fates if n.startswith("scan-") and n != "scan-1-page.pdf")
    per_page = float(fates[long_name][0].split(" s/page")[0].rsplit(", ", 1)[1])
    tess = results.get("clean", {}).get("tesseract")
    if tess:
        damaged = [c for cond, by in results.items() if cond != "clean"
                   for c, _ in by["tesseract"]]
        clean_cer = statistics.median(c for c, _ in tess)
        print(f"\ngoals (tesseract): clean CER {clean_cer:.2%} ≤ 2 %: "
              f"{'met' if clean_cer <= GOALS['clean'] else 'MISS'}; damaged CER worst "
              f"{max(damaged):.2%} ≤ 5 %: {'met' if max(damaged) <= GOALS['damaged'] else 'MISS'}"
              f"; {long_name} read at {per_page:.2f} s/page (2 OCR threads, with embedding) "
              f"≤ 3 s: {'met' if per_page <= GOALS['seconds'] else 'MISS'}; worker "
              f"peak {worker_peak:.0f} MB ≤ 1200 MB: "
              f"{'met' if worker_peak <= GOALS['worker_rss_mb'] else 'MISS'}")
    print(f"(this process, both engines loaded: peak RSS {peak_rss_mb():.0f} MB)")


if __name__ == "__main__":
    main()
