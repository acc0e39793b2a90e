"""Bounded memory and time (issue 29), each beside its baseline in the same run.

    python benchmarks/bounded_bench.py            # 200 OCR reads, 20,000- and 900,000-paragraph DOCX
    python benchmarks/bounded_bench.py --quick    # 40 reads, smaller files (a few minutes)

1. **OCR engines.** ``PageReader.read_pages`` on one small scan, ``--reads`` times in a row, in
   this process: resident size after 10 and after all reads, for today's reader (a fixed pool
   of ``ocr.threads`` engines) and for the reader before issue 29 (an engine per thread of a
   pool made per call), loaded from git (``--before``, default f1b249f).
2. **DOCX reader.** Seconds and peak RSS (a fresh process each) to read a DOCX of
   ``--small-paragraphs`` short paragraphs: python-docx (the reader before) against the
   streaming reader.
3. **A large-XML DOCX through the real agent** (``--big-paragraphs``, ≥ 64 MB of XML): the
   time from drop to its end (it fails on the chunk cap, set to ``--cap``), the worker's peak
   RSS, and how long a note dropped behind it while it was being read waited to be filed.
4. **A note behind one dense picture** (``--side`` px square of small text: one OCR page with
   no checkpoint inside), through the real agent: how long the note waited and how long the
   picture took, with pausing off (as before issue 42 item 8) and on (the job parked, the note
   run on a relief worker). ``--only 4`` runs this part alone.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import AgentProcess, agent_config, jobs, wait_until  # noqa: E402


def _rss_mb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    return 0


OCR_LOOP = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {root!r})
    {load}
    from tests.scans import render_page
    page = render_page("The lighthouse keeper trimmed the lamp at dusk. " * 4, dpi=150)
    reader = PageReader(OcrOptions())
    def rss():
        return int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) // 1024
    marks = {{}}
    for n in range(1, {reads} + 1):
        list(reader.read_pages([(1, page)]))
        if n in (10, {reads}):
            marks[n] = rss()
    print(json.dumps(marks))
""")


def _source_at(commit: str, *paths: str) -> str:
    """A module's source at ``commit``, wherever it lived then (the readers moved into
    agent/pipeline/readers/ with issue 44)."""
    for path in paths:
        found = subprocess.run(["git", "show", f"{commit}:{path}"], cwd=ROOT,
                               capture_output=True, text=True)
        if found.returncode == 0:
            return found.stdout
    raise SystemExit(f"none of {paths} exists at {commit}")


def ocr_rss(reads: int, before: str) -> dict[str, dict[str, int]]:
    old = _source_at(before, "agent/pipeline/readers/ocr.py", "agent/pipeline/ocr.py")
    out = {}
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "ocr_before.py").write_text(old)
        sides = {
            "today": "from agent.pipeline.readers.ocr import PageReader, OcrOptions",
            "before": f"sys.path.insert(0, {folder!r}); from ocr_before import PageReader, "
                      "OcrOptions",
        }
        for name, load in sides.items():
            code = OCR_LOOP.format(root=str(ROOT), load=load, reads=reads)
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                  check=True)
            out[name] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


READ_DOCX = textwrap.dedent("""
    import json, resource, sys, time
    from pathlib import Path
    sys.path.insert(0, {root!r})
    path = Path({path!r})
    started = time.perf_counter()
    if {old!r}:
        import importlib.util
        spec = importlib.util.spec_from_file_location("extract_before", {old!r})
        before = importlib.util.module_from_spec(spec)
        sys.modules["extract_before"] = before
        spec.loader.exec_module(before)
        chars = sum(len(s.text) for s in before.extract_docx(path))
    else:
        from agent.pipeline.readers.extract import extract_docx
        chars = sum(len(s.text) for s in extract_docx(path))
    print(json.dumps({{"seconds": time.perf_counter() - started, "chars": chars,
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}}))
""")


def docx_reader(path: Path, before: str) -> dict[str, dict[str, float]]:
    """The agent's DOCX reader before issue 29 (python-docx, a style looked up per paragraph),
    loaded from git, against today's, each in a fresh process."""
    old = _source_at(before, "agent/pipeline/readers/extract.py", "agent/pipeline/extract.py")
    out = {}
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "extract_before.py").write_text(old)
        for name, module in (("python-docx", str(Path(folder) / "extract_before.py")),
                             ("streaming", "")):
            code = READ_DOCX.format(root=str(ROOT), path=str(path), old=module)
            done = subprocess.run([sys.executable, "-c", code], capture_output=True,
                                  text=True, check=True)
            out[name] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def big_docx_through_the_agent(paragraphs: int, cap: int) -> dict[str, float]:
    from tests.test_bounded import NOTE, _big_docx, _worker_pid

    with tempfile.TemporaryDirectory(prefix="bounded-bench-") as folder:
        base = Path(folder)
        config = agent_config(base, processing={"max_chunks_per_file": cap,
                                                "yield_after_seconds": 5})
        staging = base / "staging"
        staging.mkdir()
        big = _big_docx(staging / "minutes.docx", paragraphs)
        import zipfile

        with zipfile.ZipFile(big) as archive:
            xml_mb = archive.getinfo("word/document.xml").file_size / 2**20
        agent = AgentProcess(config).ready()
        try:
            worker = _worker_pid(agent)
            dropped = time.monotonic()
            big.rename(base / "inbox" / "minutes.docx")
            wait_until(lambda: any(j["status"] == "processing" and "extracting" in
                                   (j["message"] or "") for j in jobs(config)), 300,
                       "the DOCX being read")
            time.sleep(6)  # well into its reading: past yield_after_seconds
            (base / "inbox" / "note.txt").write_text(NOTE)
            note_dropped = time.monotonic()
            wait_until(lambda: (base / "done" / "note.txt").is_file(), 600, "the note filed")
            note_wait = time.monotonic() - note_dropped
            wait_until(lambda: (base / "failed" / "minutes.docx").is_file()
                       or (base / "done" / "minutes.docx").is_file(), 3600, "the DOCX ended")
            ended = time.monotonic() - dropped
            peak = 0
            for line in Path(f"/proc/{_worker_pid(agent)}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = int(line.split()[1]) // 1024
            same_worker = _worker_pid(agent) == worker
        finally:
            agent.stop()
        return {"xml_mb": round(xml_mb, 1), "seconds_to_end": round(ended, 1),
                "worker_peak_mb": peak, "note_wait_seconds": round(note_wait, 1),
                "same_worker": same_worker}


def note_behind_a_dense_picture(side: int, yield_after: float | None) -> dict[str, float]:
    """A note dropped while one dense side × side picture is being read by OCR (one page, no
    checkpoint inside): seconds until the note is filed and until the picture is; with
    ``yield_after`` None nothing pauses (the behaviour before issue 42 item 8)."""
    from tests.test_bounded import NOTE, _dense_photo

    with tempfile.TemporaryDirectory(prefix="bounded-bench-") as folder:
        base = Path(folder)
        # no pause: asked only after a day (TOML has no "unset" to write)
        config = agent_config(base, processing={"yield_after_seconds": yield_after or 86400.0})
        staging = base / "staging"
        staging.mkdir()
        photo = _dense_photo(staging / "board.png", side)
        agent = AgentProcess(config).ready()
        try:
            started = time.monotonic()
            photo.rename(base / "inbox" / "board.png")
            agent.wait_log("processing job", file="board.png")
            time.sleep(1)
            (base / "inbox" / "note.txt").write_text(NOTE)
            dropped = time.monotonic()
            wait_until(lambda: (base / "done" / "note.txt").is_file(), 600, "the note filed")
            note_wait = time.monotonic() - dropped
            wait_until(lambda: (base / "done" / "board.png").is_file(), 900, "the picture")
            picture = time.monotonic() - started
        finally:
            agent.stop()
        board = next(j for j in jobs(config) if j["original_filename"] == "board.png")
        return {"note_wait_seconds": round(note_wait, 1), "picture_seconds": round(picture, 1),
                "picture_attempts": board["attempts"]}


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--small-paragraphs", type=int, default=20_000)
    parser.add_argument("--big-paragraphs", type=int, default=900_000)
    parser.add_argument("--cap", type=int, default=20_000)
    parser.add_argument("--before", default="f1b249f")
    parser.add_argument("--side", type=int, default=4000, help="the dense picture's side, px")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=("1", "2", "3", "4"), help="one part alone")
    args = parser.parse_args()
    if args.quick:
        args.reads, args.small_paragraphs, args.big_paragraphs = 40, 5000, 200_000
        args.cap, args.side = 5000, 4000
    if args.only == "4":
        return _dense_part(args.side)

    print(f"## 1. OCR: resident MB after 10 and after {args.reads} reads of one scan")
    rss = ocr_rss(args.reads, args.before)
    for name, marks in rss.items():
        first, last = marks["10"], marks[str(args.reads)]
        print(f"{name:>8}: {first} MB after 10, {last} MB after {args.reads} "
              f"({last / first:.2f}×)")

    print(f"\n## 2. DOCX reader: {args.small_paragraphs:,} paragraphs, a fresh process each")
    from tests.test_bounded import _big_docx

    with tempfile.TemporaryDirectory() as folder:
        small = _big_docx(Path(folder) / "small.docx", args.small_paragraphs)
        readers = docx_reader(small, args.before)
    for name, figures in readers.items():
        print(f"{name:>12}: {figures['seconds']:.2f} s, peak {figures['peak_mb']} MB")
    speed = readers["python-docx"]["seconds"] / readers["streaming"]["seconds"]
    print(f"streaming is {speed:.0f}× as fast")

    print(f"\n## 3. A {args.big_paragraphs:,}-paragraph DOCX through the agent (cap {args.cap:,})")
    print(json.dumps(big_docx_through_the_agent(args.big_paragraphs, args.cap), indent=2))
    _dense_part(args.side)


def _dense_part(side: int) -> None:
    print(f"\n## 4. A note behind one dense {side}×{side} picture being read (one OCR page)")
    before = note_behind_a_dense_picture(side, None)  # never asked to pause
    after = note_behind_a_dense_picture(side, 2.0)
    print(f"no pause (before):      {json.dumps(before)}")
    print(f"parked + relief (today): {json.dumps(after)}")
    print(f"the note waited {before['note_wait_seconds'] / max(after['note_wait_seconds'], 0.1):.1f}"
          "× less")


if __name__ == "__main__":
    main()
