"""Scrape cost with a big queue: /metrics with 1,000,000 finished and 10,000 queued jobs.

    python benchmarks/metrics_bench.py              # goal: a scrape under 100 ms
    python benchmarks/metrics_bench.py --rows 100000

Five samples (``--samples``), each the median of 30 scrapes, with the load average beside each.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prometheus_client import CollectorRegistry, generate_latest  # noqa: E402

from agent.ops.metrics import AgentMetrics  # noqa: E402
from agent.queue.sqlite import SQLiteJobQueue  # noqa: E402
from benchmarks.measure import Series  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queued", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="metrics-bench-") as tmp:
        path = Path(tmp) / "q.db"
        queue = SQLiteJobQueue(path)
        conn = sqlite3.connect(path)
        conn.executemany(
            "INSERT INTO job_queue (job_id, file_path, status, content_key, created_at, "
            "updated_at, run_after, finished_at) VALUES (?, ?, ?, ?, 0, 0, 0, 0)",
            ((f"old{i}", f"/old/{i}", "completed" if i % 10 else "failed", f"/old/{i}")
             for i in range(args.rows)))
        conn.commit()
        conn.close()
        for i in range(args.queued):
            queue.enqueue_job(f"/in/{i}")
        registry = CollectorRegistry()
        AgentMetrics(registry, queue, ["docs"], watcher_state=lambda: [("docs", True, 0, 1.0)],
                     worker_alive=lambda: True)
        medians = Series("scrape, median of 30", "ms")
        worst = 0.0
        for _ in range(args.samples):
            times = []
            for _ in range(30):
                t0 = time.perf_counter()
                body = generate_latest(registry)
                times.append(time.perf_counter() - t0)
            medians.add(statistics.median(times) * 1000)
            worst = max(worst, max(times) * 1000)
        queue.close()
    assert b'status="completed"}' in body and b'ingest_jobs{queue=' in body
    print(f"scrape with {args.rows:,} finished + {args.queued:,} queued jobs: "
          f"{medians.spread('.1f')}; slowest single scrape {worst:.1f} ms (goal < 100 ms: "
          f"{'met' if medians.median < 100 else 'MISS'})")


if __name__ == "__main__":
    main()
