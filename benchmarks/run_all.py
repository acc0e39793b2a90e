"""Run every benchmark and write their raw output into benchmarks/latest-run.md.

    python benchmarks/run_all.py          # about two hours on 2 cores (`make bench`)
    python benchmarks/run_all.py --quick  # smaller sizes, to check that they all still run

retrieval_bench.py (an hour at --pages 200) and long_bench.py (about 20 minutes) are run on
their own; benchmarks/README.md has their latest figures.
"""

from __future__ import annotations

import argparse
import datetime
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
README = HERE / "latest-run.md"  # the raw output; README.md explains the figures
START, END = "<!-- latest-run:start -->", "<!-- latest-run:end -->"

FULL: dict[str, list[str]] = {
    "ingest_bench.py": [],
    "queue_bench.py": [],
    "watch_bench.py": [],
    "pipeline_bench.py": [],
    "chunk_bench.py": [],
    "search_bench.py": [],
    "metrics_bench.py": [],
    "latency_bench.py": [],
    "redis_bench.py": [],
    "formats_bench.py": [],
    "ocr_bench.py": [],
    "ocr_real_bench.py": [],
    "legacy_bench.py": [],
    "html_bench.py": [],
    "bounded_bench.py": [],
    "web_bench.py": [],
}
QUICK: dict[str, list[str]] = {
    "ingest_bench.py": ["--pages", "6", "--rounds", "2"],
    "queue_bench.py": ["--n", "2000", "--big-rows", "20000", "--samples", "2"],
    "watch_bench.py": ["--latency-files", "20", "--burst", "1000", "--burst-rounds", "2",
                       "--scan", "5000", "--scan-samples", "2"],
    "pipeline_bench.py": ["--docs", "20", "--jobs", "200", "--chunks", "5000"],
    "chunk_bench.py": ["--mb", "6", "--samples", "3", "--baseline-mb", "1"],
    "search_bench.py": ["--chunks", "20000", "--rounds", "2"],
    "metrics_bench.py": ["--rows", "50000", "--samples", "2"],
    "latency_bench.py": ["--samples", "2", "--files", "3"],
    "redis_bench.py": ["--samples", "2", "--n", "1000", "--pages", "4"],
    "formats_bench.py": [],
    "ocr_bench.py": ["--quick"],
    "ocr_real_bench.py": ["--quick"],
    "legacy_bench.py": ["--quick"],
    "html_bench.py": ["--samples", "1"],
    "bounded_bench.py": ["--quick"],
    "web_bench.py": ["--quick"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    sections = []
    failed = False
    for script, extra in plan.items():
        print(f"== {script} {' '.join(extra)}", flush=True)
        proc = subprocess.run([sys.executable, str(HERE / script), *extra], capture_output=True,
                              text=True, cwd=HERE.parent)
        lines = [line for line in proc.stdout.splitlines() if line.strip()]
        print("\n".join(lines), flush=True)
        if proc.returncode != 0:
            failed = True
            lines.append(f"(exit {proc.returncode}) {proc.stderr.strip().splitlines()[-1:]}")
        sections.append(f"`{script} {' '.join(extra)}`".replace(" `", "`") + "\n\n```\n"
                        + "\n".join(lines) + "\n```\n")
    if not args.no_write:
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        body = (f"{START}\n## Latest run ({'quick' if args.quick else 'full'}, {stamp})\n\n"
                + "\n".join(sections) + END)
        text = README.read_text()
        if START in text:
            text = text[:text.index(START)] + body + text[text.index(END) + len(END):]
        else:
            text = text.rstrip() + "\n\n" + body + "\n"
        README.write_text(text)
        print(f"wrote {README}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
