"""The bad-input corpus through the real agent: every file ends where it should, the agent keeps
running, memory stays bounded, and `ingest-agent status` accounts for every file."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from agent.files.locks import LOCK_NAME
from agent.files.names import display_name
from tests.corpus import KINDS, LIMIT

ROOT = Path(__file__).resolve().parent.parent
RSS_LIMIT_MB = 1536  # the worker at default settings, with a 100 MB one-line file in the mix


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent", "--config", str(config), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_bad_input_corpus(tmp_path: Path) -> None:
    """40 kinds of awkward input, each with its expected end state."""
    config = tmp_path / "agent.toml"
    config.write_text(textwrap.dedent(f"""
        [agent]
        data_dir = "data"
        log_format = "json"
        [[inbox]]
        name = "corpus"
        path = "inbox"
        settle_seconds = 0.5
        max_file_bytes = {LIMIT}
        [queue]
        job_timeout_seconds = 20
        max_retries = 0
        [metrics]
        port = 0
    """))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    keep_alive = []
    for kind in KINDS:
        if kind.make is not None:
            made = kind.make(inbox / kind.name)
            if made is not None and hasattr(made, "close"):
                keep_alive.append(made)
    # Deleted right after it was detected: queued while the agent is down, then removed.
    vanishing = next(k for k in KINDS if k.fate == "gone")
    queued = _cli(config, "enqueue", str(inbox / vanishing.name))
    assert queued.returncode == 0, queued.stderr
    (inbox / vanishing.name).unlink()
    # Rewritten while processed: the writer pauses past the settle time, then writes on.
    rewritten = inbox / "rewritten.txt"
    writer = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import sys, time
        with open(sys.argv[1], "w") as fh:
            for i in range(4):
                fh.write(f"line {i} of a file that keeps changing\\n")
                fh.flush()
                time.sleep(1.5)
    """), str(rewritten)])
    log_path = tmp_path / "agent.log"
    with open(log_path, "w") as log:
        agent = subprocess.Popen([sys.executable, "-m", "agent", "--config", str(config), "run"],
                                 cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    with_jobs = [k for k in KINDS if k.fate in ("done", "failed", "gone")]
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            status = json.loads(_cli(config, "status", "--json").stdout)
            counts = status["counts"]
            finished = counts["completed"] + counts["failed"] + counts["timeout"]
            if finished >= len(with_jobs) + 1 and counts["queued"] + counts["processing"] == 0:
                break
            assert agent.poll() is None, "the agent stopped: " + log_path.read_text()[-3000:]
            time.sleep(1)
        assert agent.poll() is None, "the agent must keep running through the corpus"
        writer.wait(timeout=30)
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=60)
        for sock in keep_alive:
            sock.close()
    assert agent.returncode == 0
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS of the agent and its worker: {peak_mb:.0f} MB")
    assert peak_mb < RSS_LIMIT_MB

    logs = [json.loads(line) for line in log_path.read_text().splitlines()
            if line.startswith("{")]
    skipped = {(e.get("file"), e.get("reason")) for e in logs if e.get("event") == "file skipped"}
    done = tmp_path / "done"
    failed = tmp_path / "failed"
    jobs = {j["original_filename"]: j for j in json.loads(
        _cli(config, "jobs", "--limit", "1000", "--json").stdout)}
    problems = []
    for kind in KINDS:
        name = kind.done_name or kind.name
        if kind.fate == "done":
            if not (done / name).is_file():
                problems.append(f"{kind.name!r}: expected in done/ as {name!r}")
            elif kind.reason and kind.reason not in (jobs[display_name(kind.name)]["message"]
                                                     or ""):
                problems.append(f"{kind.name!r}: message lacks {kind.reason!r}")
        elif kind.fate == "failed":
            sidecar = failed / f"{kind.name}.error.json"
            if not (failed / kind.name).exists() or not sidecar.is_file():
                problems.append(f"{kind.name!r}: expected in failed/ with a sidecar")
            elif kind.reason not in json.loads(sidecar.read_text())["error"]:
                problems.append(f"{kind.name!r}: reason lacks {kind.reason!r}: "
                                f"{json.loads(sidecar.read_text())['error']}")
        elif kind.fate == "skipped":
            reasons = [r for f, r in skipped if f == display_name(kind.name)]
            if not reasons or not any(kind.reason in r for r in reasons):
                problems.append(f"{kind.name!r}: no skip log line with {kind.reason!r}")
            if not os.path.lexists(tmp_path / "inbox" / kind.name):
                problems.append(f"{kind.name!r}: a skipped file must stay where it was")
        elif kind.fate == "gone":
            job = jobs[display_name(kind.name)]
            if job["status"] != "failed" or kind.reason not in job["message"]:
                problems.append(f"{kind.name!r}: expected a failed job saying {kind.reason!r}")
    assert (done / "rewritten.txt").is_file(), "the rewritten file must end in done/"
    assert not problems, "\n".join(problems)
    assert [p.name for p in (tmp_path / "processing").iterdir()] == [LOCK_NAME], \
        "nothing but the agent's lock stays in processing/"
    all_jobs = json.loads(_cli(config, "jobs", "--limit", "1000", "--json").stdout)
    names = sorted(j["original_filename"] for j in all_jobs)
    assert len(names) == len(set(names)), f"a file got two jobs: {names}"
    status = json.loads(_cli(config, "status", "--json").stdout)["counts"]
    assert sum(status.values()) == len(with_jobs) + 1, "status must count every file with a job"
    assert status["completed"] == sum(k.fate == "done" for k in KINDS) + 1
    # What was indexed reads right: the CSV split on commas, UTF-16 without a BOM decoded.
    for query, expected in (("Warty Warthog release",
                             "version: 4.10 · codename: Warty Warthog · series: warty"),
                            ("Grüße aus Köln", "Grüße aus Köln, né.")):
        hits = json.loads(_cli(config, "search", query, "-k", "3", "--json").stdout)["results"]
        assert any(expected in h["text"] for h in hits), (query, hits)


def test_corpus_text_files_are_ones_libmagic_misnames(tmp_path: Path) -> None:
    """The corpus's text kinds really are named by their looks (so the suffix rule is tested)."""
    import magic

    from tests.corpus import (
        DOTTED_CSV,
        HTML_LOOKING_LIKE_JS,
        MARKDOWN_WITH_JS,
        TEXT_LOOKING_LIKE_C,
    )

    verdicts = {
        MARKDOWN_WITH_JS.encode(): "application/javascript",
        HTML_LOOKING_LIKE_JS.encode(): "application/javascript",
        TEXT_LOOKING_LIKE_C.encode(): "text/x-c",
        ("Grüße aus Köln, né. " * 40).encode("utf-16-le"): "application/octet-stream",
        DOTTED_CSV.encode(): "text/plain",
    }
    for data, expected in verdicts.items():
        assert magic.from_buffer(data, mime=True) == expected, data[:60]
