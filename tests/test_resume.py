"""Long documents never start over: the real agent checkpoints embedded chunks as it goes, a
kill -9 at about 60 % resumes from the checkpoint, and search never sees the half document."""

from __future__ import annotations

import re
import signal
import sqlite3
import urllib.request
from pathlib import Path

from agent.config.settings import load_config
from agent.queue import Job, JobFilter, JobStatus, open_queue
from tests.documents import PYTHON_DOCS
from tests.helpers import AgentProcess, agent_config, cli, free_port, jobs, wait_until


def _manual(path: Path, pages: int) -> Path:
    """A long real text: Python library pages (python3-doc), one after another."""
    from agent.pipeline.readers.extract import html_sections

    parts = []
    for page in sorted(PYTHON_DOCS.glob("library/*.html"))[:pages]:
        parts += [s.text for s in html_sections(page.read_text())]
    path.write_text("\n\n".join(parts))
    return path


def _embedded_metric(port: int) -> float:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    match = re.search(r'^ingest_chunks_embedded_total\{inbox="box"\} (\S+)$', body, re.M)
    assert match, "ingest_chunks_embedded_total is not exported"
    return float(match.group(1))


def _progress(config: Path) -> tuple[int, int] | None:
    """(chunks embedded so far, chunks in the document) from the job's progress message."""
    for job in jobs(config):
        match = re.search(r"embedding (\d+)/(\d+) chunks", job.get("message") or "")
        if match:
            return int(match.group(1)), int(match.group(2))
    return None


def test_kill_9_at_60_percent_resumes_from_the_checkpoint(tmp_path: Path) -> None:
    port = free_port()
    config = agent_config(tmp_path, metrics={"port": port})
    agent = AgentProcess(config).ready()
    manual = _manual(tmp_path / "inbox" / "manual.txt", 10)
    try:
        def at_60_percent() -> tuple[int, int] | None:
            seen = _progress(config)
            return seen if seen and seen[0] >= 0.6 * seen[1] else None

        done, total = wait_until(at_60_percent, 900, "the manual 60 % embedded")
        assert total >= 250, total
        agent.signal_group(signal.SIGKILL)
        agent.proc.wait(timeout=30)
    finally:
        agent.kill()
    index = sqlite3.connect(tmp_path / "data" / "index.db")
    saved = index.execute("SELECT count(*) FROM embedding_checkpoints").fetchone()[0]
    # Each checkpoint stages the whole chunk (text, offsets), not only its vector.
    assert index.execute("SELECT count(*) FROM embedding_checkpoints WHERE length(text) > 0 "
                         "AND char_end > char_start").fetchone()[0] == saved
    assert index.execute("SELECT count(*) FROM documents").fetchone()[0] == 0
    index.close()
    assert done <= saved < total, (done, saved, total)
    # The half-embedded manual is invisible: search finds nothing of it.
    out = cli(config, "search", "regular expression", "--json")
    assert '"manual.txt"' not in out.stdout, out.stdout[:500]

    agent = AgentProcess(config).ready()
    try:
        wait_until(lambda: any(j["status"] == "completed" for j in jobs(config)), 900,
                   "the manual completed after the restart")
        again = _embedded_metric(port)
    finally:
        agent.stop()
    print(f"killed at {done}/{total} reported, {saved} checkpointed; {again:.0f} embedded after "
          "the restart")
    assert again == total - saved, (again, total, saved)  # the checkpoint was reused whole
    job = jobs(config)[0]
    assert job["metadata"]["chunks"] == total
    index = sqlite3.connect(tmp_path / "data" / "index.db")
    assert index.execute("SELECT count(*) FROM embedding_checkpoints").fetchone()[0] == 0
    assert index.execute("SELECT count(*) FROM chunks").fetchone()[0] == total
    # Staged and freshly embedded chunks make one document: every ordinal once, in text order.
    assert index.execute("SELECT min(ordinal), max(ordinal), count(DISTINCT ordinal), "
                         "count(*) FROM chunks").fetchone() == (0, total - 1, total, total)
    offsets = [r[0] for r in index.execute("SELECT char_start FROM chunks ORDER BY ordinal")]
    assert offsets == sorted(offsets)
    index.close()
    assert manual.exists() is False and (tmp_path / "done" / "manual.txt").is_file()


def test_a_small_file_overtakes_a_long_one_without_re_embedding(tmp_path: Path) -> None:
    """With one worker, a one-line file dropped while a long manual is embedding completes
    within settle + 10 s: the manual pauses at its next checkpoint, lets it through and
    resumes, embedding none of its chunks twice. The manual's record adds up its turns: its
    first start kept, stage times summed and never negative, progress that never goes back,
    and how often it paused, in `job`, the API and the page."""
    import time

    import httpx

    port = free_port()
    config = agent_config(tmp_path, metrics={"port": port},
                          processing={"yield_after_seconds": 3.0}, api={"enabled": True})
    agent = AgentProcess(config).ready()
    seen: list[int] = []  # the manual's progress, as anyone watching its job saw it

    def manual_job() -> Job | None:
        with open_queue(load_config(config, environ={}), readonly=True) as q:
            found = q.page_jobs(JobFilter(name="manual.txt"), limit=1).jobs
        if found and found[0].status is JobStatus.PROCESSING:
            seen.append(found[0].progress)
        return found[0] if found else None

    try:
        site = agent.wait_log("web page served")["url"]
        _manual(tmp_path / "inbox" / "manual.txt", 10)
        wait_until(lambda: manual_job() and (_progress(config) or (0, 1))[0] >= 64, 600,
                   "the manual's first checkpoint")
        (tmp_path / "inbox" / "note.txt").write_text("The gate code for the boathouse is 4711.")
        dropped = time.time()
        note = wait_until(lambda: manual_job() and next(
            (j for j in jobs(config) if j["original_filename"].endswith("note.txt")
             and j["status"] == "completed"), None), 300, "the note completed")
        manual_then = next(j for j in jobs(config) if j["original_filename"].endswith("manual.txt"))
        latency = note["finished_at"] - dropped
        wait_until(lambda: (j := manual_job()) and j.status is JobStatus.COMPLETED, 900,
                   "the manual completed", interval=0.05)
        embedded = _embedded_metric(port)
        paused = [e for e in agent.logs() if e.get("event") == "job paused for waiting files; "
                  "it resumes from its checkpoint"]
        api = httpx.get(f"{site}api/v1/jobs/manual.txt", timeout=30).json()
        page = httpx.get(f"{site}jobs/{api['job_id']}", timeout=30).text
    finally:
        agent.stop()
    manual = next(j for j in jobs(config) if j["original_filename"].endswith("manual.txt"))
    print(f"note completed {latency:.1f} s after it was dropped; manual paused {len(paused)}×; "
          f"stages {manual['metadata']['stages']}; progress seen {seen}")
    assert manual_then["status"] != "completed"  # the note did overtake the manual
    assert latency <= 0.2 + 10, latency
    assert paused and embedded == manual["metadata"]["chunks"] + 1, (embedded, manual)
    turns = manual["metadata"]["turns"]
    assert turns == len(paused) and api["paused"] == turns
    assert manual["started_at"] < note["started_at"], "the manual's first start was lost"
    stages = manual["metadata"]["stages"]
    assert all(seconds >= 0 for seconds in stages.values()), stages
    # Every chunk was embedded in some turn: no model here embeds 200 chunks a second.
    assert stages["embed"] >= manual["metadata"]["chunks"] / 200, stages
    assert api["stages"] == stages
    assert seen == sorted(seen) and len(set(seen)) > 2, seen
    shown = cli(config, "job", "manual.txt").stdout
    expected = "once" if turns == 1 else f"{turns} times"
    assert re.search(rf"^paused +{expected}$", shown, re.M), shown
    assert f"{expected} (to let waiting files through" in page
