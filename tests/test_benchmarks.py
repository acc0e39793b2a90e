"""The long benchmarks in their small configurations, so CI proves they still run and still
show what they are there to show."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT, scaled


def _table(stdout: str) -> dict[str, list[str]]:
    rows = [line.strip("|").split(" | ") for line in stdout.splitlines()
            if line.startswith("| ") and not line.startswith("| run")]
    return {row[0].strip(): [cell.strip() for cell in row[1:]] for row in rows}


def test_retrieval_benchmark_quick_run(tmp_path: Path) -> None:
    """retrieval_bench.py --quick builds today's and the full index over real Python doc pages
    with the real model; the full hybrid finds pasted identifiers at least as often as today's
    vector search, and refuses every question the docs cannot answer."""
    out = subprocess.run([sys.executable, "benchmarks/retrieval_bench.py", "--quick",
                          "--cache", str(tmp_path / "cache")], cwd=ROOT, capture_output=True,
                         text=True, timeout=scaled(900))
    assert out.returncode == 0, out.stderr[-3000:]
    table = _table(out.stdout)
    today, full = table["today: vector, every chunk"], table["full: all four, hybrid"]
    for column in (2, 3):  # identifier top-1, development and held-out halves
        assert float(full[column]) >= float(today[column]), (column, today, full)
    assert full[4].startswith("6/6 refused"), full
