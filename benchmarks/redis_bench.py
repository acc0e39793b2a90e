"""Scale-out: the Redis backend vs raw redis-py streams, and two agents vs one.

    python benchmarks/redis_bench.py                 # 20,000 jobs; 2,000 files
    python benchmarks/redis_bench.py --n 2000 --files 200   # quick

(a) claim+complete throughput: RedisStreamsJobQueue vs raw XREADGROUP + XACK + XDEL on the same
    server in the same run (goal >= 0.7x).
(b) 2 agents vs 1 on the same files, each agent with embedding.threads = 1, sharing one Redis
    queue and one Postgres + pgvector index (goal >= 1.6x files/s on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import RedisServer, wait_until  # noqa: E402


def bench_queue(url: str, n: int) -> tuple[float, float]:
    import redis

    from agent.queue.redis_streams import RedisStreamsJobQueue

    r = redis.Redis.from_url(url, decode_responses=True)
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
        finish = r.pipeline(transaction=False)  # the strongest fair raw baseline: one round trip
        finish.xack(stream, "g", entry_id)
        finish.xdel(stream, entry_id)
        finish.execute()
        done += 1
    raw = done / (time.perf_counter() - t0)
    q = RedisStreamsJobQueue(url, namespace=f"bench-{uuid.uuid4().hex[:6]}")
    for i in range(n):
        q.enqueue_job(f"/inbox/f{i}")
    t0 = time.perf_counter()
    done = 0
    while (job := q.get_next_job("bench")) is not None:
        q.update_job_status(job.job_id, "completed", 100, lease_token=job.lease_token)
        done += 1
    ours = done / (time.perf_counter() - t0)
    q.close()
    r.close()
    return raw, ours


def run_agents(base: Path, url: str, dsn: str, n_agents: int, n_files: int) -> float:
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
            threads = 1
            [index]
            backend = "postgres"
            dsn = "{dsn}"
            [metrics]
            port = 0
        """))
        configs.append(config)
    for i in range(n_files):
        (inbox / f"f{i:05d}.txt").write_text(
            f"Small file {i}: the ferry to the island leaves at {i % 24}:00 from pier {i % 7}.\n")
    procs = [subprocess.Popen([sys.executable, "-m", "agent", "--config", str(c), "run"],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for c in configs]
    try:
        wait_until(lambda: len(list((base / "shared" / "done").glob("*.txt"))) >= n_files,
                   3600, f"{n_files} files filed", interval=0.5)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=60)
    jobs = json.loads(subprocess.run(
        [sys.executable, "-m", "agent", "--config", str(configs[0]), "jobs", "--limit",
         str(n_files * 2), "--json"], cwd=ROOT, capture_output=True, text=True).stdout)
    first = min(j["started_at"] for j in jobs)
    last = max(j["finished_at"] for j in jobs)
    return len(jobs) / (last - first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--files", type=int, default=2000)
    args = parser.parse_args()
    import pgserver
    import psycopg

    with tempfile.TemporaryDirectory(prefix="redis-bench-") as tmp:
        base = Path(tmp)
        (base / "redis").mkdir()
        redis_server = RedisServer(base / "redis")
        url = redis_server.url
        pg = pgserver.get_server(base / "pg", cleanup_mode="stop")
        try:
            raw, ours = bench_queue(url, args.n)
            print(f"(a) claim+complete over {args.n} jobs: raw redis-py XREADGROUP/XACK "
                  f"{raw:.0f}/s, RedisStreamsJobQueue {ours:.0f}/s -> {ours / raw:.2f}x "
                  f"(goal >= 0.7)", flush=True)
            rates = {}
            for agents in (1, 2):
                name = f"bench{agents}"
                with psycopg.connect(pg.get_uri(), autocommit=True) as conn:
                    conn.execute(f"CREATE DATABASE {name}")
                dsn = pg.get_uri().replace("/postgres?", f"/{name}?")
                rates[agents] = run_agents(base / f"run{agents}", url, dsn, agents, args.files)
                print(f"(b) {agents} agent(s), {args.files} small files, threads=1 each: "
                      f"{rates[agents]:.1f} files/s", flush=True)
            print(f"(b) 2 agents / 1 agent = {rates[2] / rates[1]:.2f}x (goal >= 1.6)")
        finally:
            pg.cleanup()
            redis_server.stop()


if __name__ == "__main__":
    main()
