"""Long documents through the real agent: uninterrupted, killed at 60 %, overtaken by a small
file, and the worker's memory by document size.

    python benchmarks/long_bench.py                 # a 5,000-chunk document, 5 rounds (≈ 80 min)
    python benchmarks/long_bench.py --chunks 1500   # a shorter proof (≈ 25 min)
    python benchmarks/long_bench.py --chunks 300 --samples 1   # does it still run (≈ 2 min)

The document is real text: Python's library pages (Debian ``python3-doc``) one after another,
as many as make ``--chunks`` chunks. Each run is a fresh ``ingest-agent run`` (real watcher,
queue, worker, model and index) on a fresh data folder, default settings but settle_seconds
0.2 (as in the tests):

1. uninterrupted: drop → completed;
2. ``kill -9`` of the whole agent at 60 % of the embedding, restarted at once: drop → completed,
   minus the restart (start-up until "agent ready"); goal: median ≤ 1.1× run 1 of its round;
3. a one-line file dropped at 30 % of the embedding: its latency (goal ≤ settle + 10 s)
   and how much longer the document took than run 1 of its round (goal: the median growth is
   no more than the small file's own processing time, measured alone);
4. peak RSS of a worker process (``VmHWM``) reading one page, a 500-page PDF and a 50 MB text.

Runs 1–3 are ``--samples`` interleaved rounds (benchmarks/measure.py), each on a fresh folder;
run 4 is one sample per file.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.measure import Series, interleave, ratio, verdict  # noqa: E402
from tests.helpers import AgentProcess, agent_config, free_port, wait_until  # noqa: E402

DOCS = Path("/usr/share/doc/python3-doc/html")


def long_text(chunks: int) -> str:
    """Library pages, whole, until the chunker makes at least ``chunks`` chunks of them."""
    from agent.pipeline.chunk import Chunker
    from agent.pipeline.embed import bundled_tokenizer
    from agent.pipeline.readers.extract import html_sections
    from agent.pipeline.readers.outline import Section

    chunker = Chunker(bundled_tokenizer(), 200, 32)
    parts: list[str] = []
    made = 0
    for page in sorted(DOCS.glob("library/*.html")):
        text = "\n\n".join(s.text for s in html_sections(page.read_text()))
        parts.append(text)
        made += len(list(chunker.chunk([Section(text)])))
        if made >= chunks:
            return "\n\n".join(parts)
    raise SystemExit(f"the Python docs make only {made} chunks")


def _job(config: Path, name: str) -> dict[str, Any] | None:
    """The job of ``name``, read from the queue file directly: polling with the CLI would
    spend most of a core starting Python, and slow down what is measured."""
    path = config.parent / "data" / "queue.db"
    if not path.exists():
        return None
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        row = conn.execute(
            "SELECT status, message, metadata, started_at, finished_at FROM job_queue "
            "WHERE original_filename LIKE ? ORDER BY created_at DESC LIMIT 1",
            (f"%{name}",)).fetchone()
    except sqlite3.OperationalError:  # the agent is creating its tables
        return None
    finally:
        conn.close()
    if row is None:
        return None
    return {"status": row[0], "message": row[1], "metadata": json.loads(row[2] or "{}"),
            "started_at": row[3], "finished_at": row[4]}


def _completed(config: Path, name: str) -> dict[str, Any] | None:
    job = _job(config, name)
    return job if job and job["status"] == "completed" else None


def _embedding_share(config: Path, name: str) -> float:
    job = _job(config, name) or {}
    match = re.search(r"embedding (\d+)/(\d+)", job.get("message") or "")
    return int(match.group(1)) / int(match.group(2)) if match else 0.0


class Run:
    """A fresh agent on a fresh folder."""

    yield_after: float | None = None  # processing.yield_after_seconds; None: the default

    def __init__(self, base: Path) -> None:
        self.base = base
        base.mkdir(parents=True, exist_ok=True)
        processing = {} if self.yield_after is None else {"yield_after_seconds": self.yield_after}
        self.config = agent_config(base, agent={"log_level": "info"},
                                   metrics={"port": free_port()}, processing=processing)
        self.agent = self.start()

    def start(self) -> AgentProcess:
        return AgentProcess(self.config).ready(timeout=600)

    def drop(self, name: str, text: str) -> float:
        path = self.base / "inbox" / name
        tmp = path.with_name("." + name)
        tmp.write_text(text)
        os.replace(tmp, path)  # appears whole: the settle time is the agent's only wait
        return time.time()

    def until_embedded(self, share: float) -> None:
        """Wait until the manual's embedding has reached ``share`` of its chunks."""
        wait_until(lambda: _embedding_share(self.config, "manual.txt") >= share, 3600,
                   f"{share:.0%} embedded", interval=0.5)

    def finish(self, name: str, timeout: float = 3600) -> dict[str, Any]:
        return dict(wait_until(lambda: _completed(self.config, name), timeout, f"{name} done",
                               interval=0.5))

    def stop(self) -> None:
        self.agent.stop()


def uninterrupted(base: Path, text: str) -> tuple[float, int]:
    run = Run(base)
    try:
        dropped = run.drop("manual.txt", text)
        job = run.finish("manual.txt")
    finally:
        run.stop()
    return job["finished_at"] - dropped, int(job["metadata"]["chunks"])


def killed_at_60(base: Path, text: str) -> tuple[float, float]:
    """(drop → completed, the restart's start-up time)."""
    run = Run(base)
    try:
        dropped = run.drop("manual.txt", text)
        run.until_embedded(0.6)
        run.agent.signal_group(signal.SIGKILL)
        run.agent.proc.wait(timeout=60)
        restarted = time.monotonic()
        run.agent = run.start()
        restart = time.monotonic() - restarted
        job = run.finish("manual.txt")
    finally:
        run.agent.kill()
    return job["finished_at"] - dropped, restart


NOTE = "The gate code for the boathouse is 4711; the key hangs beside the oars."


def small_alone(base: Path) -> float:
    run = Run(base)
    try:
        run.drop("note.txt", NOTE)
        job = run.finish("note.txt")
    finally:
        run.stop()
    return job["finished_at"] - job["started_at"]


def overtaken(base: Path, text: str) -> tuple[float, float]:
    """(the note's drop → completed, the manual's drop → completed)."""
    run = Run(base)
    try:
        dropped = run.drop("manual.txt", text)
        run.until_embedded(0.3)
        note_dropped = run.drop("note.txt", NOTE)
        note = run.finish("note.txt")
        manual = run.finish("manual.txt")
    finally:
        run.stop()
    return note["finished_at"] - note_dropped, manual["finished_at"] - dropped


WORKER = """
import json, sys
sys.path.insert(0, {root!r})
from benchmarks.ocr_bench import peak_rss_mb
from agent.config.settings import Settings
from agent.errors import AgentError
from agent.pipeline import IngestPipeline, JobRequest
pipeline = IngestPipeline(Settings.model_validate({{"agent": {{"data_dir": {data!r}}}}}))
try:
    result = pipeline.run(JobRequest("j", {path!r}, "box", {path!r}), lambda *_: None)
    fate = f"done, {{result.chunks}} chunks"
except AgentError as exc:
    fate = f"failed: {{exc}}"
print(json.dumps([fate, peak_rss_mb()]))
"""


def worker_rss(base: Path, path: Path) -> tuple[str, float]:
    code = WORKER.format(root=str(ROOT), data=str(base / f"data-{path.stem}"), path=str(path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    fate, peak = json.loads(out.stdout.splitlines()[-1])
    return str(fate), float(peak)


def memory_files(base: Path, text: str) -> dict[str, Path]:
    from fpdf import FPDF

    one = base / "one-page.txt"
    one.write_text(text[:3000])
    pdf = FPDF(format="A4")
    pdf.set_font("helvetica", size=10)
    words = text.encode("latin-1", "replace").decode("latin-1").split()
    for page in range(500):
        pdf.add_page()
        start = (page * 350) % max(1, len(words) - 350)
        pdf.multi_cell(0, 5, " ".join(words[start:start + 350]))
    pdf.output(str(base / "manual-500-pages.pdf"))
    big = base / "text-50-MB.txt"
    with open(big, "w") as fh:
        while fh.tell() < 50 * 2**20:
            fh.write(text)
    return {"1 page": one, "500-page PDF": base / "manual-500-pages.pdf", "50 MB text": big}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=5000)
    parser.add_argument("--samples", type=int, default=5, help="interleaved rounds of runs 1–3")
    parser.add_argument("--yield-after", type=float, default=None,
                        help="processing.yield_after_seconds (default: the agent's default)")
    args = parser.parse_args()
    Run.yield_after = args.yield_after
    print(f"yield_after_seconds: {args.yield_after or 'the default'}", flush=True)
    text = long_text(args.chunks)
    with tempfile.TemporaryDirectory(prefix="long-bench-") as tmp:
        folder = Path(tmp)
        runs = itertools.count(1)

        def fresh() -> Path:
            """A new folder for one run, the previous runs' folders removed (disk stays flat)."""
            for old in folder.glob("run-*"):
                shutil.rmtree(old)
            return folder / f"run-{next(runs)}"

        chunks: list[int] = []
        restarts, note_latency = Series("restart", "s"), Series("one-line file latency", "s")
        own = Series("one-line file alone, processing", "s")

        def run1() -> float:
            alone, made = uninterrupted(fresh(), text)
            chunks.append(made)
            print(f"   1. uninterrupted: {alone:.0f} s (load {os.getloadavg()[0]:.1f})", flush=True)
            return alone

        def run2() -> float:
            total, restart = killed_at_60(fresh(), text)
            restarts.add(restart)
            print(f"   2. kill -9 at 60 %: {total:.0f} s, restart {restart:.1f} s "
                  f"(load {os.getloadavg()[0]:.1f})", flush=True)
            return total - restart

        def run3() -> float:
            own.add(small_alone(fresh()))
            latency, with_note = overtaken(fresh(), text)
            note_latency.add(latency)
            print(f"   3. overtaken: document {with_note:.0f} s, the file {latency:.1f} s "
                  f"(load {os.getloadavg()[0]:.1f})", flush=True)
            return with_note

        print(f"{args.samples} interleaved rounds of runs 1–3 (order flips each round):",
              flush=True)
        series = interleave({"uninterrupted": run1, "kill -9, minus the restart": run2,
                             "overtaken by a one-line file": run3}, args.samples, unit="s")
        alone, killed, with_note = series.values()
        print(f"document: {chunks[0]:,} chunks, {len(text) / 2**20:.1f} MB of Python docs text")
        print(f"1. uninterrupted: {alone.spread('.0f')} "
              f"({chunks[0] / alone.median:.1f} chunks/s at the median)")
        kill_ratio = ratio(killed, alone)
        print(f"2. kill -9 at 60 %, restarted at once, minus the restart: {killed.spread('.0f')}; "
              f"restart {restarts.spread('.1f')}")
        print(f"   ÷ uninterrupted, per round: {kill_ratio.spread('.2f')} — "
              + verdict(kill_ratio, 1.10, at_least=False))
        growth = Series("growth", "s")
        for doc, base, load in zip(with_note.values, alone.values, with_note.loads, strict=True):
            growth.values.append(doc - base)
            growth.loads.append(load)
        grew_ok = growth.median <= own.median
        print(f"3. one-line file dropped at 30 %: completed {note_latency.spread('.1f')} after it "
              f"was dropped (goal ≤ settle 0.2 s + 10 s: "
              f"{'met' if max(note_latency.values) <= 10.2 else 'MISS'} in every round)")
        print(f"   the document took {with_note.spread('.0f')}; growth against run 1 of the same "
              f"round {growth.spread('+.1f')}; the file alone takes {own.spread('.1f')}. Goal: "
              f"median growth ≤ that: {'met' if grew_ok else 'MISS'} (run 1 alone spans "
              f"{max(alone.values) - min(alone.values):.0f} s across rounds)")
        print("4. worker peak RSS (VmHWM of a fresh process, model loaded):")
        base_rss = None
        for name, path in memory_files(folder, text).items():
            fate, peak = worker_rss(folder, path)
            base_rss = base_rss or peak
            print(f"   - {name}: {peak:.0f} MB ({peak / base_rss:.2f}× one page; goal ≤ 1.10) "
                  f"— {fate}")


if __name__ == "__main__":
    main()
