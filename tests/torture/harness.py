"""Crash torture: drop files while `ingest-agent run` is SIGKILLed at random moments, restart it,
let it drain, then check that nothing was lost and nothing was done twice.

    python -m tests.torture --files 1000 --kills 20 [--seed N]     # the full run
    python -m tests.torture --files 200 --kills 5                  # what CI runs

The seed is printed first, so a failure can be replayed exactly (file contents, drop patterns
and kill times all come from it).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import entries

ROOT = Path(__file__).resolve().parents[2]
WORDS = ('harbour lantern glacier ledger orchard protocol satellite volcano ferry meadow '
         'copper quarry signal tariff walnut zenith canyon dialect furnace pension ').split()


@dataclass
class Dropped:
    name: str
    content: bytes
    pattern: str

    @property
    def sha(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass
class Report:
    seed: int
    files: int
    kills: int
    seconds: float = 0.0
    violations: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.violations


def make_files(rng: random.Random, n: int) -> list[Dropped]:
    """Mixed kinds; about a tenth duplicates another file's content; a few are junk."""
    from tests.documents import make_pdf

    files: list[Dropped] = []
    scratch = Path(os.environ.get("TMPDIR", "/tmp")) / f"torture-pdf-{os.getpid()}"
    scratch.mkdir(exist_ok=True)
    for i in range(n):
        roll = rng.random()
        pattern = rng.choice(["burst", "burst", "slow", "rename_in", "temp_rename"])
        if files and roll < 0.1:
            twin = rng.choice(files)
            suffix = twin.name.rsplit(".", 1)[1]
            files.append(Dropped(f"f{i:05d}-dup.{suffix}", twin.content, pattern))
            continue
        paragraphs = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 120)))
                      for _ in range(rng.randint(1, 6))]
        text = f"Document {i}.\n\n" + "\n\n".join(paragraphs) + "\n"
        if roll < 0.15:
            files.append(Dropped(f"f{i:05d}.bin", rng.randbytes(rng.randint(100, 5000)), pattern))
        elif roll < 0.22:
            pdf = make_pdf(scratch / f"{i}.pdf", paragraphs[:2])
            files.append(Dropped(f"f{i:05d}.pdf", pdf.read_bytes(), pattern))
        elif roll < 0.32:
            body = "".join(f"<p>{p}</p>" for p in paragraphs)
            files.append(Dropped(f"f{i:05d}.html", f"<html><body>{body}</body></html>".encode(),
                                 pattern))
        elif roll < 0.38:
            files.append(Dropped(f"f{i:05d}.json", json.dumps({"i": i, "text": paragraphs}
                                                              ).encode(), pattern))
        else:
            files.append(Dropped(f"f{i:05d}.{rng.choice(['txt', 'md'])}", text.encode(), pattern))
    return files


def produce(files: list[Dropped], inbox: Path, staging: Path, rng: random.Random,
            stop: threading.Event) -> None:
    """Drop files in bursts, slowly, renamed in, or under a temporary name renamed inside."""
    staging.mkdir(parents=True, exist_ok=True)
    for item in files:
        if stop.is_set():
            return
        target = inbox / item.name
        if item.pattern == "burst":
            target.write_bytes(item.content)
        elif item.pattern == "slow":
            third = max(1, len(item.content) // 3)
            with open(target, "wb") as fh:
                for start in range(0, len(item.content), third):
                    fh.write(item.content[start:start + third])
                    fh.flush()
                    time.sleep(rng.uniform(0.05, 0.3))
        elif item.pattern == "rename_in":
            temp = staging / item.name
            temp.write_bytes(item.content)
            os.rename(temp, target)
        else:
            temp = inbox / (item.name + ".part")
            temp.write_bytes(item.content)
            os.rename(temp, target)
        if rng.random() < 0.05:
            time.sleep(rng.uniform(0.2, 1.0))  # pauses between bursts


def write_config(base: Path) -> Path:
    config = base / "agent.toml"
    config.write_text(textwrap.dedent("""
        [agent]
        data_dir = "data"
        log_format = "json"
        log_level = "warning"
        [[inbox]]
        name = "torture"
        path = "inbox"
        settle_seconds = 0.3
        scan_interval_seconds = 5
        [queue]
        job_timeout_seconds = 60
        max_retries = 30
        retry_backoff_seconds = 0.2
        retry_backoff_max_seconds = 1
        [metrics]
        port = 0
    """))
    return config


def start_agent(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "agent", "--config", str(config), "run"],
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def kill_hard(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def counts(config: Path) -> dict[str, int]:
    out = subprocess.run([sys.executable, "-m", "agent", "--config", str(config), "status",
                          "--json"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    return json.loads(out.stdout)["counts"] if out.returncode == 0 else {}


def run_torture(base: Path, n_files: int, kills: int, seed: int,
                drain_timeout: float = 900) -> Report:
    rng = random.Random(seed)
    report = Report(seed, n_files, kills)
    started = time.monotonic()
    inbox = base / "inbox"
    inbox.mkdir(parents=True)
    config = write_config(base)
    log = base / "agent.log"
    files = make_files(rng, n_files)
    stop = threading.Event()
    producer = threading.Thread(target=produce, name="torture-producer",
                                args=(files, inbox, base / "staging", random.Random(seed + 1),
                                      stop))
    producer.start()
    try:
        for k in range(kills):
            agent = start_agent(config, log)
            time.sleep(rng.uniform(2.0, 5.0) if k == 0 else rng.uniform(0.3, 4.0))
            kill_hard(agent)
        producer.join()
        agent = start_agent(config, log)
        deadline = time.monotonic() + drain_timeout
        while time.monotonic() < deadline:
            c = counts(config)
            settled = c and c["queued"] + c["processing"] == 0
            inbox_empty = not any(p for p in inbox.iterdir())
            if settled and inbox_empty and not entries(base / "processing"):
                break
            if agent.poll() is not None:
                report.violations.append(f"the agent exited on its own ({agent.returncode})")
                break
            time.sleep(1)
        else:
            report.violations.append(f"did not drain within {drain_timeout:.0f} s")
        agent.send_signal(signal.SIGTERM)
        try:
            agent.wait(timeout=60)
        except subprocess.TimeoutExpired:
            kill_hard(agent)
    finally:
        stop.set()
        producer.join()
    report.counts = counts(config)
    report.violations.extend(check_invariants(base, config, files))
    report.seconds = time.monotonic() - started
    return report


def check_invariants(base: Path, config: Path, files: list[Dropped]) -> list[str]:
    from agent.config.settings import load_config
    from agent.pipeline.store.sqlite import SQLiteIndex

    problems: list[str] = []
    done = {p.name: p for p in (base / "done").iterdir()} if (base / "done").is_dir() else {}
    failed = {p.name: p for p in (base / "failed").iterdir()
              if not p.name.endswith(".error.json")} if (base / "failed").is_dir() else {}
    leftovers = [p.name for p in (base / "inbox").iterdir()]
    leftovers += [f"processing/{name}" for name in entries(base / "processing")]
    if leftovers:
        problems.append(f"left behind: {sorted(leftovers)[:10]}")
    expected = {f.name: f for f in files}
    for name in set(done) | set(failed):
        if name not in expected:
            problems.append(f"unexpected file {name!r} (processed twice, or renamed?)")
    for item in files:
        where = [d[item.name] for d in (done, failed) if item.name in d]
        if len(where) != 1:
            problems.append(f"{item.name}: found {len(where)} times in done/ and failed/")
            continue
        if hashlib.sha256(where[0].read_bytes()).hexdigest() != item.sha:
            problems.append(f"{item.name}: content differs from what was dropped")
        if item.name in failed and not (base / "failed" / f"{item.name}.error.json").is_file():
            problems.append(f"{item.name}: in failed/ without its .error.json")
    settings = load_config(config, environ={})
    conn = sqlite3.connect(settings.queue_path)
    rows = conn.execute("SELECT original_filename, status FROM job_queue").fetchall()
    problems += [f"queue integrity_check: {r}" for (r,) in conn.execute("PRAGMA integrity_check")
                 if r != "ok"]
    conn.close()
    per_name: dict[str, list[str]] = {}
    for name, status in rows:
        per_name.setdefault(name, []).append(status)
    for item in files:
        statuses = per_name.get(item.name, [])
        if len(statuses) != 1 or statuses[0] not in ("completed", "failed", "timeout"):
            problems.append(f"{item.name}: jobs {statuses} (want exactly one, finished)")
    index = SQLiteIndex(settings.index_path)
    problems += [f"index: {p}" for p in index.integrity_problems()]
    indexed = {sha for (sha,) in index._conn().execute("SELECT content_sha256 FROM documents")}
    index.close()
    done_shas = {hashlib.sha256(p.read_bytes()).hexdigest() for p in done.values()}
    if indexed != done_shas:
        problems.append(f"index holds {len(indexed)} documents, done/ {len(done_shas)} unique "
                        f"contents ({len(indexed - done_shas)} extra, {len(done_shas - indexed)} "
                        "missing)")
    conn = sqlite3.connect(settings.index_path)
    problems += [f"index integrity_check: {r}" for (r,) in conn.execute("PRAGMA integrity_check")
                 if r != "ok"]
    conn.close()
    return problems
