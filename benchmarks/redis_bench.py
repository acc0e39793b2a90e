"""Scale-out: the Redis backend vs raw redis-py streams, and two agents against one.

    python benchmarks/redis_bench.py                           # 5 samples: 5,000 jobs, 24 pages
    python benchmarks/redis_bench.py --samples 2 --n 1000 --pages 6   # quick
    python benchmarks/redis_bench.py --queue-only                     # (a) alone

(a) claim+complete throughput: RedisStreamsJobQueue vs raw XREADGROUP + XACK + XDEL on the same
    server, interleaved, a fresh stream per sample (goal >= 0.7x, median).
(b) the same 2 cores used two ways on real documents (Python's HTML documentation, python3-doc
    library/ pages, evenly spread): 2 agents with ``embedding.threads = 1`` each against 1 agent
    with ``embedding.threads = 2``, sharing one Redis queue and one Postgres + pgvector index,
    interleaved, a fresh namespace and database per sample. Reported in files/s and chunks/s,
    first job's start to last job's end; no goal, both are reported.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.measure import interleave, ratio, report, verdict  # noqa: E402


def raw_streams(url: str, n: int) -> float:
    """Claims+completes per second with raw redis-py: the strongest fair raw baseline, one
    round trip per claim and one for ack + delete."""
    import redis

    r: Any = redis.Redis.from_url(url, decode_responses=True)
    stream = f"raw-{uuid.uuid4().hex[:6]}"
    r.xgroup_create(stream, "g", id="0", mkstream=True)
    pipe = r.pipeline()
    for i in range(n):
        pipe.xadd(stream, {"job": f"/inbox/f{i}"})
    pipe.execute()
    t0 = time.perf_counter()
    done = 0
    while True:
        got = r.xreadgroup("g", "c", {stream: ">"}, count=1)
        if not got:
            break
        entry_id = got[0][1][0][0]
        finish = r.pipeline(transaction=False)
        finish.xack(stream, "g", entry_id)
        finish.xdel(stream, entry_id)
        finish.execute()
        done += 1
    rate = done / (time.perf_counter() - t0)
    r.delete(stream)
    r.close()
    return rate


def agent_streams(url: str, n: int) -> float:
    """Claims+completes per second through RedisStreamsJobQueue."""
    from agent.queue.redis_streams import RedisStreamsJobQueue

    q = RedisStreamsJobQueue(url, namespace=f"bench-{uuid.uuid4().hex[:6]}")
    for i in range(n):
        q.enqueue_job(f"/inbox/f{i}")
    t0 = time.perf_counter()
    done = 0
    while (job := q.get_next_job("bench")) is not None:
        q.update_job_status(job.job_id, "completed", 100, lease_token=job.lease_token)
        done += 1
    rate = done / (time.perf_counter() - t0)
    q.close()
    return rate


def doc_pages(n: int) -> list[Path]:
    files = sorted(Path("/usr/share/doc/python3-doc/html/library").glob("*.html"))
    if not files:
        sys.exit("Python docs not found: apt-get install python3-doc")
    step = max(1, len(files) // n)
    return files[::step][:n]


def run_agents(base: Path, url: str, dsn: str, n_agents: int, threads: int,
               files: list[Path]) -> tuple[float, float]:
    """Files/s and chunks/s of ``n_agents`` agents with ``threads`` embedding threads each,
    sharing one inbox, Redis queue and Postgres index, from the first start to the last end."""
    import psycopg

    inbox = base / "shared" / "inbox"
    inbox.mkdir(parents=True)
    namespace = f"agents-{uuid.uuid4().hex[:6]}"
    configs = []
    for a in range(n_agents):
        config = base / f"agent{a}.toml"
        config.write_text(textwrap.dedent(f"""
            [agent]
            data_dir = "data{a}"
            log_level = "warning"
            [[inbox]]
            name = "shared"
            path = "shared/inbox"
            mode = "poll"
            poll_interval_seconds = 0.5
            settle_seconds = 0.2
            [queue]
            backend = "redis"
            redis_url = "{url}"
            redis_namespace = "{namespace}"
            [embedding]
            threads = {threads}
            [index]
            backend = "postgres"
            dsn = "{dsn}"
            [metrics]
            port = 0
        """))
        configs.append(config)
    procs = [subprocess.Popen([sys.executable, "-m", "agent", "--config", str(c), "run"],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for c in configs]
    for f in files:  # copied in only once every agent is starting, so they share the work
        shutil.copy(f, inbox / f.name)

    def filed() -> int:
        return sum(len(list((base / "shared" / kind).glob("*.html")))
                   for kind in ("done", "failed"))

    try:
        from tests.helpers import wait_until

        wait_until(lambda: filed() >= len(files), 3600, f"{len(files)} files filed",
                   interval=0.5)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=60)
    jobs = json.loads(subprocess.run(
        [sys.executable, "-m", "agent", "--config", str(configs[0]), "jobs", "--limit",
         str(len(files) * 2), "--json"], cwd=ROOT, capture_output=True, text=True).stdout)
    failed = [j for j in jobs if j["status"] != "completed"]
    if failed:
        sys.exit(f"{len(failed)} pages did not complete: {failed[:3]}")
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM chunks").fetchone()
        chunks = row[0] if row else 0
    seconds = max(j["finished_at"] for j in jobs) - min(j["started_at"] for j in jobs)
    return len(jobs) / seconds, chunks / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--n", type=int, default=5_000, help="jobs per queue sample")
    parser.add_argument("--pages", type=int, default=24, help="real pages per scale-out sample")
    parser.add_argument("--queue-only", action="store_true", help="(a) only, about a minute")
    args = parser.parse_args()
    import pgserver
    import psycopg

    from tests.helpers import RedisServer

    files = doc_pages(args.pages)
    with tempfile.TemporaryDirectory(prefix="redis-bench-") as tmp:
        base = Path(tmp)
        (base / "redis").mkdir()
        redis_server = RedisServer(base / "redis")
        url = redis_server.url
        pg = pgserver.get_server(base / "pg", cleanup_mode="stop")
        try:
            queue = interleave({"raw redis-py": lambda: raw_streams(url, args.n),
                                "RedisStreamsJobQueue": lambda: agent_streams(url, args.n)},
                               args.samples, "jobs/s")
            report(f"(a) claim+complete, {args.n:,} jobs per sample, interleaved:",
                   list(queue.values()))
            r = ratio(queue["RedisStreamsJobQueue"], queue["raw redis-py"])
            print(f"    agent / raw: {r.spread('.2f')}; {verdict(r, 0.7)}", flush=True)
            if args.queue_only:
                return
            chunk_rates: dict[str, list[float]] = {}
            runs = 0

            def side(n_agents: int, threads: int) -> float:
                nonlocal runs
                runs += 1
                name = f"bench{runs}"
                with psycopg.connect(pg.get_uri(), autocommit=True) as conn:
                    conn.execute(f"CREATE DATABASE {name}")
                dsn = pg.get_uri().replace("/postgres?", f"/{name}?")
                files_s, chunks_s = run_agents(base / f"run{runs}", url, dsn, n_agents, threads,
                                               files)
                chunk_rates.setdefault(f"{n_agents}x{threads}", []).append(chunks_s)
                print(f"    sample: {n_agents} agent(s) x {threads} thread(s): {files_s:.3f} "
                      f"files/s, {chunks_s:.1f} chunks/s", flush=True)
                return files_s

            scale = interleave({"2 agents x 1 thread": lambda: side(2, 1),
                                "1 agent x 2 threads": lambda: side(1, 2)},
                               args.samples, "files/s")
            report(f"(b) {len(files)} real pages per sample, Redis queue + Postgres index, "
                   "interleaved:", list(scale.values()))
            for key, rates in chunk_rates.items():
                print(f"    {key}: chunks/s {sorted(rates)}")
            r = ratio(scale["2 agents x 1 thread"], scale["1 agent x 2 threads"])
            print(f"    2x1 / 1x2: {r.spread('.2f')}")
        finally:
            pg.cleanup()
            redis_server.stop()


if __name__ == "__main__":
    main()
