"""Detection → completed latency for single small files dropped into a running agent.

    python benchmarks/latency_bench.py [--samples 5] [--files 10] [--settle 2.0]

Each file is written and closed, then the job's finished_at is read from the queue; the
figure includes settle_seconds (the agent waits that long before it trusts a file is whole).
A sample is the p50 of ``--files`` files in a row; the samples' median and spread are printed
with the load average beside each.
"""

from __future__ import annotations

import argparse
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.measure import Series  # noqa: E402
from tests.helpers import wait_until  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--files", type=int, default=10, help="files per sample")
    parser.add_argument("--settle", type=float, default=2.0)
    args = parser.parse_args()
    from agent.config.settings import load_config
    from agent.queue import open_queue

    with tempfile.TemporaryDirectory(prefix="latency-") as tmp:
        base = Path(tmp)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        config = base / "agent.toml"
        config.write_text(f'[agent]\ndata_dir = "data"\nlog_level = "warning"\n[[inbox]]\n'
                          f'name = "lat"\npath = "inbox"\nsettle_seconds = {args.settle}\n'
                          f"[metrics]\nport = {port}\n")
        (base / "inbox").mkdir()
        agent = subprocess.Popen([sys.executable, "-m", "agent", "--config", str(config), "run"],
                                 cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        settings = load_config(config, environ={})
        try:
            import urllib.request

            def ready() -> bool:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1)
                    return True
                except OSError:
                    return False

            wait_until(ready, 120, "the agent to be ready", interval=0.2)
            delays: list[float] = []
            p50s = Series("close -> completed, p50 of a sample", "s")
            queue = open_queue(settings)
            for i in range(args.files * args.samples):
                path = base / "inbox" / f"single{i}.txt"
                with open(path, "w") as fh:
                    fh.write(f"Single small file number {i} about tide tables and harbours.\n")
                closed = time.time()

                def finished(name: str = path.name) -> float | None:
                    return next((j.finished_at for j in queue.list_jobs(limit=5)
                                 if j.original_filename == name and j.finished_at), None)

                delays.append(wait_until(finished, 120, f"{path.name} to finish",
                                         interval=0.01) - closed)
                if len(delays) % args.files == 0:
                    p50s.add(statistics.median(delays[-args.files:]))
            queue.close()
        finally:
            agent.send_signal(signal.SIGTERM)
            agent.wait(timeout=60)
    delays.sort()
    p50 = statistics.median(delays)
    p99 = delays[max(0, int(len(delays) * 0.99) - 1)]
    print(f"per sample of {args.files} files: {p50s.spread('.2f')}")
    print(f"close -> completed over all {len(delays)} single files: p50 {p50:.2f} s, p99 "
          f"{p99:.2f} s (settle_seconds {args.settle} included; processing itself p50 "
          f"{(p50 - args.settle) * 1000:.0f} ms)")


if __name__ == "__main__":
    main()
