"""Watcher: detection latency, 20k-file bursts (vs bare watchdog and watchfiles), big scans.

    python benchmarks/watch_bench.py                    # 200 files, 20k bursts, 100k scan
    python benchmarks/watch_bench.py --burst 2000 --scan 10000   # quick

(a) latency from a file's close to its job in the queue, reported as settle + overhead
    (goal: overhead p99 <= 100 ms);
(b) each burst pattern, ``--burst-rounds`` interleaved rounds of four sides (the agent in
    inotify mode, in poll mode, bare watchdog, watchfiles; the order flips each round): files
    the agent lost (goal 0) and seconds from the writer's end to its last job (goal: median
    <= settle + 2 s), beside how many files bare watchdog's and watchfiles' events named;
(b') the temp-name burst again, ``--burst-samples`` times while another process keeps one core
    busy, with each run's timeline: when the overflow was seen, when each reconcile scan ended,
    the first and last job found by events and by scans (goal: median <= settle + 2 s);
(c) a reconcile scan of an inbox holding N files, ``--scan-samples`` times with a fresh queue
    and again with every file queued (goal: median <= 1 s), and the process RSS.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.config.settings import InboxSettings  # noqa: E402
from agent.files.folders import InboxFolders  # noqa: E402
from agent.intake.watch_service import WatchService  # noqa: E402
from agent.intake.watcher import InboxWatcher  # noqa: E402
from agent.queue.sqlite import SQLiteJobQueue  # noqa: E402
from benchmarks.measure import Series, interleave  # noqa: E402

SETTLE = 0.5
WRITERS = {
    "write in place": """
        for i in range(n):
            with open(os.path.join(inbox, f"f{i}.txt"), "w") as fh:
                fh.write("x" * 64)""",
    "write elsewhere, rename in": """
        stage = os.path.join(os.path.dirname(inbox), "staging")
        os.makedirs(stage, exist_ok=True)
        for i in range(n):
            tmp = os.path.join(stage, f"f{i}.txt")
            with open(tmp, "w") as fh:
                fh.write("x" * 64)
            os.rename(tmp, os.path.join(inbox, f"f{i}.txt"))""",
    "temp name, rename inside": """
        for i in range(n):
            tmp = os.path.join(inbox, f"f{i}.txt.part")
            with open(tmp, "w") as fh:
                fh.write("x" * 64)
            os.rename(tmp, os.path.join(inbox, f"f{i}.txt"))""",
}


def run_writer(pattern: str, inbox: Path, n: int) -> float:
    code = "import os, sys\ninbox, n = sys.argv[1], int(sys.argv[2])\n" + textwrap.dedent(
        WRITERS[pattern])
    subprocess.run([sys.executable, "-c", code, str(inbox), str(n)], check=True)
    return time.time()


def agent_burst(pattern: str, mode: Literal["auto", "inotify", "poll"], n: int
                ) -> tuple[int, float]:
    with tempfile.TemporaryDirectory(prefix="watch-bench-") as tmp:
        base = Path(tmp)
        box = InboxFolders(InboxSettings(name="b", path=base / "inbox", settle_seconds=SETTLE,
                                         mode=mode, poll_interval_seconds=0.5))
        queue = SQLiteJobQueue(base / "q.db")
        service = WatchService([InboxWatcher(box, queue)])
        service.start()
        time.sleep(0.3)
        writer_end = run_writer(pattern, box.inbox, n)
        deadline = time.time() + 60
        while queue.get_pending_jobs_count() < n and time.time() < deadline:
            time.sleep(0.05)
        last = max(j.created_at for j in queue.list_jobs(limit=n + 10))
        count = queue.get_pending_jobs_count()
        service.stop()
        queue.close()
    return n - count, max(0.0, last - writer_end)


# Spins one core until its parent is gone (so a killed benchmark leaves no busy process).
BUSY = "import os\nparent = os.getppid()\nwhile os.getppid() == parent:\n    pass"


def burst_timeline(n: int) -> dict[str, float]:
    """One temp-name burst into an inotify agent, with the times (after the writer ended) of
    the overflow, of each reconcile scan, and of the first and last job the scans found."""
    from agent.events import EventBus, FileDetected, ScanFinished, WatcherOverflow

    marks: dict[str, float] = {}
    scans: list[tuple[float, float, int]] = []
    with tempfile.TemporaryDirectory(prefix="watch-bench-") as tmp:
        base = Path(tmp)
        bus = EventBus()
        def overflow_seen(_event: WatcherOverflow) -> None:
            marks.setdefault("overflow", time.time())

        bus.subscribe(WatcherOverflow, overflow_seen)
        bus.subscribe(ScanFinished, lambda e: scans.append((time.time(), e.seconds, e.files)))

        def detected(e: FileDetected) -> None:
            now = time.time()
            marks.setdefault(f"first {e.source}", now)
            marks[f"last {e.source}"] = now

        bus.subscribe(FileDetected, detected)
        box = InboxFolders(InboxSettings(name="b", path=base / "inbox", settle_seconds=SETTLE,
                                         poll_interval_seconds=0.5))
        queue = SQLiteJobQueue(base / "q.db")
        watcher = InboxWatcher(box, queue, bus)
        scan_starts: list[tuple[float, str]] = []
        enqueues: list[tuple[float, float, int]] = []  # end, seconds, jobs
        plain_scan, plain_enqueue = watcher.scan, watcher._enqueue_settled

        def timed_scan(reason: str, now: float | None = None) -> int:
            scan_starts.append((time.time(), reason))
            return plain_scan(reason, now)

        def timed_enqueue(now: float) -> int:
            started = time.time()
            queued = plain_enqueue(now)
            if queued:
                enqueues.append((time.time(), time.time() - started, queued))
            return queued

        watcher.scan = timed_scan  # type: ignore[method-assign]
        watcher._enqueue_settled = timed_enqueue  # type: ignore[method-assign]
        service = WatchService([watcher])
        service.start()
        time.sleep(0.3)
        scans.clear()  # the start-up scan's end and start are left out alike
        scan_starts.clear()
        writer_end = run_writer("temp name, rename inside", box.inbox, n)
        deadline = time.time() + 60
        while queue.get_pending_jobs_count() < n and time.time() < deadline:
            time.sleep(0.02)
        lost = n - queue.get_pending_jobs_count()
        last = max(j.created_at for j in queue.list_jobs(limit=n + 10))
        service.stop()
        queue.close()
    out = {k: v - writer_end for k, v in marks.items()}
    out["last job"] = last - writer_end
    out["lost"] = lost
    for i, (end, seconds, files) in enumerate(scans[:4]):
        out[f"scan {i + 1} ({files} files, {seconds:.2f} s) ended"] = end - writer_end
    for i, (start, reason) in enumerate(scan_starts[:4]):
        out[f"scan {i + 1} ({reason}) started"] = start - writer_end
    after = [e for e in enqueues if e[0] >= writer_end]
    if after:
        out[f"{len(after)} enqueues after the writer, the last ({after[-1][2]} jobs, "
            f"{after[-1][1]:.2f} s) ended"] = after[-1][0] - writer_end
    return out


def burst_samples(n: int, samples: int, busy: bool) -> None:
    """The temp-name burst ``samples`` times, with another process keeping one core busy."""
    hog = subprocess.Popen([sys.executable, "-c", BUSY]) if busy else None
    try:
        lasts = []
        for i in range(samples):
            timeline = burst_timeline(n)
            lasts.append(timeline["last job"])
            print(f"    run {i + 1} (load {os.getloadavg()[0]:.1f}): " + ", ".join(
                f"{k} {v:+.2f} s" if k != "lost" else f"lost {v:.0f}"
                for k, v in sorted(timeline.items(), key=lambda kv: kv[1])), flush=True)
        print(f"(b') temp name, rename inside, inotify, {n} files, {samples} runs"
              f"{' with one core kept busy' if busy else ''}: last job median "
              f"{statistics.median(lasts):.2f} s after the writer ended (min {min(lasts):.2f}, "
              f"max {max(lasts):.2f}; goal <= {SETTLE + 2:.1f} s: "
              f"{'met' if statistics.median(lasts) <= SETTLE + 2 else 'MISS'})", flush=True)
    finally:
        if hog is not None:
            hog.kill()


def burst_rounds(pattern: str, n: int, rounds: int) -> None:
    """One pattern's burst, ``rounds`` times for each side, interleaved (see measure.py)."""
    lost: dict[str, list[int]] = {"inotify": [], "poll": []}

    def agent(mode: Literal["inotify", "poll"]) -> Callable[[], float]:
        def side() -> float:
            missing, drain = agent_burst(pattern, mode, n)
            lost[mode].append(missing)
            return drain
        return side

    sides: dict[str, Callable[[], float]] = {
        "inotify": agent("inotify"), "poll": agent("poll"),
        "bare watchdog": lambda: float(watchdog_burst(pattern, n))}
    if importlib.util.find_spec("watchfiles") is not None:
        sides["watchfiles"] = lambda: float(watchfiles_burst(pattern, n) or 0)
    series = interleave(sides, rounds, unit="s")
    for mode in ("inotify", "poll"):
        drains = series[mode]
        goal = "met" if drains.median <= SETTLE + 2 else "MISS"
        missed = (f"lost 0 of {n} in each round" if not any(lost[mode]) else
                  f"LOST up to {max(lost[mode])} of {n} (per round {lost[mode]})")
        print(f"(b) {pattern:28s} {mode:8s} agent {missed}, last job after the writer ended "
              f"{drains.spread('.2f')}"
              f" (goal median <= {SETTLE + 2:.1f} s: {goal})", flush=True)
    seen = ", ".join(f"{name} saw {statistics.median(series[name].values):,.0f} of {n} "
                     f"(min {min(series[name].values):,.0f}, max {max(series[name].values):,.0f})"
                     for name in sides if name not in lost)
    print(f"    {pattern:28s} {seen}", flush=True)


def watchdog_burst(pattern: str, n: int) -> int:
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers.inotify import InotifyObserver

    seen: set[str] = set()

    class Recorder(FileSystemEventHandler):
        def on_any_event(self, event: object) -> None:
            path = getattr(event, "dest_path", "") or getattr(event, "src_path", "")
            if str(path).endswith(".txt"):
                seen.add(os.path.basename(path))

    with tempfile.TemporaryDirectory(prefix="watchdog-bench-") as tmp:
        inbox = Path(tmp) / "inbox"
        inbox.mkdir()
        observer = InotifyObserver()
        observer.schedule(Recorder(), str(inbox))
        observer.start()
        run_writer(pattern, inbox, n)
        time.sleep(2.0)
        observer.stop()
        observer.join()
    return len(seen)


def watchfiles_burst(pattern: str, n: int) -> int | None:
    try:
        import watchfiles
    except ImportError:
        return None
    seen: set[str] = set()
    stop = threading.Event()
    with tempfile.TemporaryDirectory(prefix="watchfiles-bench-") as tmp:
        inbox = Path(tmp) / "inbox"
        inbox.mkdir()

        def watch() -> None:
            for changes in watchfiles.watch(inbox, stop_event=stop, debounce=200,
                                            rust_timeout=100, yield_on_timeout=True):
                for _, path in changes:
                    if path.endswith(".txt"):
                        seen.add(os.path.basename(path))

        thread = threading.Thread(target=watch)
        thread.start()
        time.sleep(0.5)
        run_writer(pattern, inbox, n)
        time.sleep(2.0)
        stop.set()
        thread.join()
    return len(seen)


def latency(n: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="latency-bench-") as tmp:
        base = Path(tmp)
        box = InboxFolders(InboxSettings(name="b", path=base / "inbox", settle_seconds=SETTLE))
        queue = SQLiteJobQueue(base / "q.db")
        service = WatchService([InboxWatcher(box, queue)])
        service.start()
        closes = {}
        for i in range(n):
            path = box.inbox / f"l{i}.txt"
            with open(path, "w") as fh:
                fh.write("latency probe")
            closes[path.name] = time.time()
            time.sleep(0.02)
        deadline = time.time() + 30
        while queue.get_pending_jobs_count() < n and time.time() < deadline:
            time.sleep(0.05)
        jobs = queue.list_jobs(limit=n + 10)
        service.stop()
        queue.close()
    delays = sorted(j.created_at - closes[j.original_filename or ""] - SETTLE for j in jobs)
    return statistics.median(delays) * 1000, delays[int(len(delays) * 0.99) - 1] * 1000


def big_scan(n: int, samples: int) -> tuple[Series, Series, float]:
    """Reconcile scans of an inbox holding ``n`` files, ``samples`` times each way: first (a
    fresh queue, every file new; the files stay) and again (every file already queued)."""
    first, again = Series("first (all new)", "s"), Series("again (all known)", "s")
    with tempfile.TemporaryDirectory(prefix="scan-bench-") as tmp:
        base = Path(tmp)
        inbox = base / "inbox"
        inbox.mkdir()
        for i in range(n):
            (inbox / f"s{i}.txt").write_bytes(b"x")
        for sample in range(samples):
            box = InboxFolders(InboxSettings(name="b", path=inbox, settle_seconds=0.0,
                                             mode="poll"))
            queue = SQLiteJobQueue(base / f"q{sample}.db")
            watcher = InboxWatcher(box, queue)
            watcher.start()
            t0 = time.perf_counter()
            watcher.scan("startup")
            first.add(time.perf_counter() - t0)
            watcher.step()  # enqueue them all (settle 0)
            t0 = time.perf_counter()
            watcher.scan("interval")
            again.add(time.perf_counter() - t0)
            watcher.stop()
            queue.close()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return first, again, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-files", type=int, default=200)
    parser.add_argument("--burst", type=int, default=20_000)
    parser.add_argument("--scan", type=int, default=100_000)
    parser.add_argument("--scan-samples", type=int, default=5)
    parser.add_argument("--burst-rounds", type=int, default=5,
                        help="interleaved rounds of each burst pattern's four sides")
    parser.add_argument("--burst-samples", type=int, default=5,
                        help="temp-name bursts repeated with one core busy (0: skip)")
    parser.add_argument("--only-burst-samples", action="store_true")
    args = parser.parse_args()
    from agent.logs import configure_logging

    configure_logging("warning", "console")  # a log line per queued file would be measured too
    if args.only_burst_samples:
        burst_samples(args.burst, args.burst_samples, busy=True)
        return
    p50, p99 = latency(args.latency_files)
    print(f"(a) close -> queued over {args.latency_files} files: settle {SETTLE} s + overhead "
          f"p50 {p50:.0f} ms, p99 {p99:.0f} ms (goal p99 <= 100 ms)", flush=True)
    for pattern in WRITERS:
        burst_rounds(pattern, args.burst, args.burst_rounds)
    if args.burst_samples:
        burst_samples(args.burst, args.burst_samples, busy=True)
    first, again, rss = big_scan(args.scan, args.scan_samples)
    goal = "met" if max(first.median, again.median) <= 1 else "MISS"
    print(f"(c) reconcile scan of {args.scan:,} files: first (all new) {first.spread('.2f')}, "
          f"again (all known) {again.spread('.2f')} (goal median <= 1 s: {goal}); "
          f"max RSS {rss:.0f} MB")


if __name__ == "__main__":
    main()
