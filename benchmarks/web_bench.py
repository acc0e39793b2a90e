"""The web page's server time with 100,000 jobs and 100,000 chunks, and what live pages cost.

    python benchmarks/web_bench.py                    # 100k jobs, 100k chunks, 5 rounds
    python benchmarks/web_bench.py --quick            # CI's small run: 5k of each, 2 rounds

A real agent (``ingest-agent run``) serves the page over an index of real text (Python's
documentation chunks, repeated, with random vectors: ``search_bench.build``) and a queue of
finished jobs. Measured from a client on the same machine (loopback), so the figures include
HTTP on loopback, which is what a user's browser waits for:
(a) p50 of ``/``, ``/jobs`` (first page and a page deep in the list, by cursor) and a
    ``/search`` of natural questions, interleaved by round; goal: pages ≤ 100 ms, and search ≤
    the shell search's p50 (``ingest-agent search``, agent running) + 50 ms.
(b) 50 job lists open on live updates (their long polls), the agent idle: its CPU time over a
    minute, against the same minute with no page open; goal: < 5 % of a core more.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.measure import Series, report  # noqa: E402
from benchmarks.search_bench import QUERIES, build, shell_p50  # noqa: E402


def fill_queue(config: Path, n_jobs: int) -> None:
    """``n_jobs`` finished jobs (as the agent leaves them), in batches of 5,000."""
    from agent.config.settings import load_config
    from agent.queue import open_queue
    from agent.queue.base import NewJob

    settings = load_config(config)
    queue = open_queue(settings)
    for start in range(0, n_jobs, 5000):
        queue.enqueue_many([NewJob(f"/nowhere/file-{n}.pdf", f"file-{n}.pdf",
                                   {"size": n, "source": "bench"}, inbox="docs",
                                   content_key=uuid.uuid4().hex)
                            for n in range(start, min(n_jobs, start + 5000))])
    queue.close()
    with sqlite3.connect(settings.queue_path) as db:  # finished, so the agent stays idle
        db.execute("UPDATE job_queue SET status = 'completed', progress = 100, "
                   "finished_at = updated_at, message = 'indexed 3 chunks'")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (not its children: the worker is apart)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def page_times(client: object, paths: list[str]) -> list[float]:
    times = []
    for path in paths:
        started = time.perf_counter()
        response = client.get(path)  # type: ignore[attr-defined]
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return times


def idle_cost(pid: int, url: str, pages: int, seconds: float) -> float:
    """The agent's CPU share of one core while ``pages`` job lists long-poll it."""
    import httpx

    stop = threading.Event()

    def live_page() -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            first = client.get("/jobs")
            seen = first.headers.get("X-Generation", "0")
            while not stop.is_set():
                try:
                    answer = client.get(f"/jobs?rows=1&seen={seen}&busy=0")
                except httpx.HTTPError:  # the agent stopped under a waiting poll
                    return
                seen = answer.headers.get("X-Generation", seen)

    threads = [threading.Thread(target=live_page, daemon=True) for _ in range(pages)]
    for thread in threads:
        thread.start()
    time.sleep(3)  # every page has loaded and is waiting
    before, started = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    used = cpu_seconds(pid) - before
    elapsed = time.monotonic() - started
    stop.set()
    return 100 * used / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--idle-seconds", type=float, default=60)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.jobs, args.chunks, args.rounds, args.idle_seconds = 5000, 5000, 2, 10

    import httpx

    from tests.helpers import AgentProcess, agent_config, free_port, wait_until

    base = Path(tempfile.mkdtemp(prefix="web-bench-"))
    port = free_port()
    config = agent_config(base, inbox={"name": "docs", "path": "inbox"},
                          api={"enabled": True, "port": port})
    started = time.perf_counter()
    stored = build(base / "data" / "index.db", args.chunks)
    fill_queue(config, args.jobs)
    print(f"index: {stored:,} chunks; queue: {args.jobs:,} jobs; built in "
          f"{time.perf_counter() - started:.0f} s")
    agent = AgentProcess(config)
    url = f"http://127.0.0.1:{port}"
    try:
        agent.ready()
        wait_until((base / "data" / "search.sock").exists, 60, "the search socket")
        client = httpx.Client(base_url=url, timeout=120)
        client.get("/search", params={"q": "warm up the model"})
        deep = client.get("/jobs").text  # a cursor half-way down the list
        middle = str(args.jobs // 2)
        assert "Older jobs" in deep
        sides = {
            "/": ["/"] * 10,
            "/jobs": ["/jobs"] * 10,
            f"/jobs?cursor={middle}": [f"/jobs?cursor={middle}"] * 10,
            "/search": [f"/search?q={q}" for q in QUERIES[:10]],
        }
        series = {name: Series(f"GET {name}", "ms") for name in sides}
        shell = Series("ingest-agent search (shell, agent running)", "ms")
        shell_p50(config, 1, QUERIES[:2])
        for _ in range(args.rounds):
            for name, paths in sides.items():
                series[name].add(statistics.median(page_times(client, paths)))
            shell.add(shell_p50(config, 1, QUERIES[:10]))
        report("(a) p50 per round, loopback client", [*series.values(), shell])
        pages_ok = all(series[n].median <= 100 for n in sides if n != "/search")
        extra = series["/search"].median - shell.median
        print(f"    pages ≤ 100 ms: {'met' if pages_ok else 'MISS'}; /search − shell search: "
              f"{extra:+.0f} ms (goal ≤ +50 ms: {'met' if extra <= 50 else 'MISS'})")
        client.close()
        quiet = idle_cost(agent.pid, url, 0, args.idle_seconds)
        live = idle_cost(agent.pid, url, 50, args.idle_seconds)
        print(f"(b) agent CPU over {args.idle_seconds:.0f} s, idle: no page {quiet:.2f} % of a "
              f"core, 50 live job lists {live:.2f} %: {live - quiet:+.2f} points (goal < 5: "
              f"{'met' if live - quiet < 5 else 'MISS'}; load {os.getloadavg()[0]:.1f})")
    finally:
        agent.stop()


if __name__ == "__main__":
    main()
