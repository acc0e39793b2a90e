"""Queue throughput: ingest-agent's SQLiteJobQueue vs raw sqlite3 and litequeue, in one run.

    python benchmarks/queue_bench.py            # N=20,000, plus the 1M-completed-rows check
    python benchmarks/queue_bench.py --n 2000 --big-rows 0 --samples 2   # quick

Each implementation enqueues N jobs into a fresh database, then 1 and 2 consumer processes
claim+complete them all; the implementations take turns, ``--samples`` rounds (5), and each
figure is the median with its min–max and load. Every claimed id is returned to the parent,
which counts duplicates.
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing as mp
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.queue.sqlite import SQLiteJobQueue  # noqa: E402
from benchmarks.measure import Series, interleave, ratio, report, verdict  # noqa: E402

# -- the three implementations, each as (setup, enqueue_all, consume) ---------------------------


def raw_setup(path: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS q (id INTEGER PRIMARY KEY, payload TEXT, status TEXT)"
    )
    conn.execute("CREATE INDEX IF NOT EXISTS q_status ON q (status)")
    conn.close()


def raw_connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def raw_enqueue(path: str, n: int) -> None:
    conn = raw_connect(path)
    for i in range(n):
        conn.execute("INSERT INTO q (payload, status) VALUES (?, 'queued')", (f"/inbox/f{i}",))
    conn.close()


def raw_consume(path: str) -> list[str]:
    conn = raw_connect(path)
    got = []
    while True:
        row = conn.execute(
            "UPDATE q SET status = 'processing' WHERE id = "
            "(SELECT id FROM q WHERE status = 'queued' LIMIT 1) RETURNING id"
        ).fetchone()
        if row is None:
            break
        conn.execute("UPDATE q SET status = 'done' WHERE id = ?", (row[0],))
        got.append(str(row[0]))
    conn.close()
    return got


def agent_setup(path: str) -> None:
    SQLiteJobQueue(path).close()


def agent_enqueue(path: str, n: int) -> None:
    q = SQLiteJobQueue(path)
    for i in range(n):
        q.enqueue_job(f"/inbox/f{i}", f"f{i}")
    q.close()


def agent_consume(path: str) -> list[str]:
    q = SQLiteJobQueue(path)
    got = []
    while (job := q.get_next_job("bench")) is not None:
        q.update_job_status(job.job_id, "completed", 100, lease_token=job.lease_token)
        got.append(job.job_id)
    q.close()
    return got


def lite_setup(path: str) -> None:
    from litequeue import LiteQueue

    LiteQueue(path).close()


def lite_enqueue(path: str, n: int) -> None:
    from litequeue import LiteQueue

    q = LiteQueue(path, timeout=30)
    for i in range(n):
        q.put(f"/inbox/f{i}")
    q.close()


def lite_consume(path: str) -> list[str]:
    from litequeue import LiteQueue

    q = LiteQueue(path, timeout=30)
    got = []
    while (msg := q.pop()) is not None:
        q.done(msg.message_id)
        got.append(msg.message_id)
    q.close()
    return got


IMPLS = {
    "raw sqlite3": (raw_setup, raw_enqueue, raw_consume),
    "ingest-agent": (agent_setup, agent_enqueue, agent_consume),
    "litequeue": (lite_setup, lite_enqueue, lite_consume),
}


def _worker(name: str, path: str, start: mp.synchronize.Event, out: mp.Queue) -> None:
    start.wait()
    out.put(IMPLS[name][2](path))


def run_one(name: str, n: int, consumers: int, folder: Path) -> dict[str, float]:
    setup, enqueue, _ = IMPLS[name]
    path = str(folder / f"{name.replace(' ', '_')}-{consumers}.db")
    setup(path)
    t0 = time.perf_counter()
    enqueue(path, n)
    enqueue_rate = n / (time.perf_counter() - t0)
    ctx = mp.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(name, path, start, out)) for _ in range(consumers)]
    for p in procs:
        p.start()
    time.sleep(0.2)
    t0 = time.perf_counter()
    start.set()
    claimed: list[str] = []
    for _ in procs:
        claimed.extend(out.get())
    elapsed = time.perf_counter() - t0
    for p in procs:
        p.join()
    dupes = sum(c - 1 for c in Counter(claimed).values() if c > 1)
    return {
        "enqueue_per_s": enqueue_rate,
        "claim_complete_per_s": len(claimed) / elapsed,
        "claimed": len(claimed),
        "duplicates": dupes,
    }


def big_table_check(n: int, big_rows: int, folder: Path, samples: int) -> tuple[Series, Series]:
    """Claim+complete rate on an empty table vs one already holding ``big_rows`` completed,
    interleaved (the big table is built once; each of its samples adds ``n`` rows to it)."""
    big = str(folder / "big.db")
    SQLiteJobQueue(big).close()
    conn = sqlite3.connect(big, isolation_level=None)
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO job_queue (job_id, file_path, status, content_key, created_at, "
        "updated_at, run_after, finished_at) VALUES (?, ?, 'completed', ?, 0, 0, 0, 0)",
        ((f"old{i}", f"/old/{i}", f"/old/{i}") for i in range(big_rows)),
    )
    conn.execute("COMMIT")
    conn.close()
    rounds = iter(range(10**9))

    def drain(path: str) -> float:
        q = SQLiteJobQueue(path)
        tag = next(rounds)
        for i in range(n):
            q.enqueue_job(f"/inbox/{tag}/f{i}")
        t0 = time.perf_counter()
        while (job := q.get_next_job()) is not None:
            q.update_job_status(job.job_id, "completed", lease_token=job.lease_token)
        rate = n / (time.perf_counter() - t0)
        q.close()
        return rate

    series = interleave({"empty table": lambda: drain(str(folder / f"empty-{next(rounds)}.db")),
                         f"{big_rows:,} completed rows": lambda: drain(big)}, samples, "/s")
    return series["empty table"], series[f"{big_rows:,} completed rows"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--big-rows", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=5)
    args = parser.parse_args()
    dupes: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="queue-bench-") as tmp:
        for consumers in (1, 2):
            enqueue = {name: Series(f"{name} enqueue", "/s") for name in IMPLS}

            def side(name: str, consumers: int = consumers,
                     enqueue: dict[str, Series] = enqueue) -> float:
                folder = Path(tempfile.mkdtemp(dir=tmp))
                r = run_one(name, args.n, consumers, folder)
                enqueue[name].add(r["enqueue_per_s"])
                dupes[name] = dupes.get(name, 0) + r["duplicates"]
                if r["claimed"] != args.n:
                    sys.exit(f"{name}: claimed {r['claimed']:.0f} of {args.n}")
                shutil.rmtree(folder)
                return r["claim_complete_per_s"]

            series = interleave({name: functools.partial(side, name) for name in IMPLS},
                                args.samples, "/s")
            report(f"claim+complete, {consumers} consumer(s), N={args.n:,}",
                   list(series.values()))
            report("enqueue", list(enqueue.values()))
            ours = series["ingest-agent"]
            print(f"    ingest-agent / raw sqlite3: {ratio(ours, series['raw sqlite3']).spread('.2f')}"
                  f"; {verdict(ratio(ours, series['raw sqlite3']), 0.7)}")
            print(f"    ingest-agent / litequeue: {ratio(ours, series['litequeue']).spread('.2f')}"
                  f"; {verdict(ratio(ours, series['litequeue']), 2)}", flush=True)
        if args.big_rows:
            empty, big = big_table_check(args.n, args.big_rows, Path(tmp), args.samples)
            report(f"claim+complete, empty table vs {args.big_rows:,} completed rows",
                   [empty, big])
            slowdown = ratio(empty, big)
            print(f"    slowdown (empty ÷ big): {slowdown.spread('.2f')}; "
                  f"{verdict(slowdown, 1.2, at_least=False)}")
    print(f"duplicate claims with 1 and 2 consumers: {dupes}")
    if dupes.get("ingest-agent"):
        sys.exit(1)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
