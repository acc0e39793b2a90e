"""The benchmarks stay runnable: every script runs at a small size and prints its figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_benchmark_runs_at_a_small_size() -> None:
    """benchmarks/run_all.py --quick runs each script to completion (figures not asserted)."""
    proc = subprocess.run([sys.executable, "benchmarks/run_all.py", "--quick", "--no-write"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for needle in ("ingest-agent/raw", "agent lost 0 of 1000", "search over", "scrape with",
                   "close -> completed", "duplicate claims, ingest-agent with 2 consumers: 0",
                   "2 agents / 1 agent"):
        assert needle in proc.stdout, f"missing {needle!r} in:\n{proc.stdout[-3000:]}"
