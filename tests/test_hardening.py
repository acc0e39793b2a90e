"""What the attacker's and the newcomer's runs found (issue 32), each proved on the real agent:
a swapped inbox, a data folder inside an inbox, a restart right after kill -9, terminal escapes
in documents, a burst of socket searches, and libraries talking on stderr.

Where the pipeline's work is beside the point the scripted pipeline stands in (tests/pipelines.py);
where what is indexed matters the real pipeline and model run.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from agent.errors import SearchSocketUnavailable
from agent.search.channel import ask, socket_path
from tests.helpers import (
    SCRIPTED,
    AgentProcess,
    agent_config,
    cli,
    entries,
    free_port,
    jobs,
    scaled,
    wait_until,
    watcher_check,
)

# -- 1. an inbox replaced by a link to another folder ----------------------------------------

def test_an_inbox_swapped_for_a_link_leaves_the_other_folder_alone(tmp_path: Path) -> None:
    """`mv inbox inbox.orig && ln -s elsewhere inbox` while the agent runs: the inbox stops
    with one error line and a failing health check, and the other folder's files are neither
    queued nor moved. Put back, the inbox is watched again and files flow."""
    port = free_port()
    config = agent_config(tmp_path, inbox={"scan_interval_seconds": 0.5},
                          metrics={"port": port})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for n in range(3):
        (elsewhere / f"private-{n}.txt").write_text(f"not for the agent {n}\n")
    agent = AgentProcess(config, pipeline=SCRIPTED).ready()
    inbox = tmp_path / "inbox"
    try:
        (inbox / "before.txt").write_text("dropped before the swap\n")
        wait_until(lambda: (tmp_path / "done" / "before.txt").is_file(), 60, "before.txt filed")
        inbox.rename(tmp_path / "inbox.orig")
        inbox.symlink_to(elsewhere)
        check = wait_until(lambda: (c := watcher_check(port)) and not c["ok"] and c, 30,
                           "the watcher's health check to fail")
        assert "replaced by a symbolic link" in check["detail"]
        # Several scan intervals pass while the agent is told to look (the reconcile scan
        # would have queued the files by now): it stays stopped and takes nothing.
        agent.wait_log("inbox watch lost")
        for _ in range(3):
            assert not watcher_check(port)["ok"]
        assert sorted(p.name for p in elsewhere.iterdir()) == [f"private-{n}.txt" for n in range(3)]
        assert [j["original_filename"] for j in jobs(config)] == ["before.txt"]
        lost = [e for e in agent.logs() if e["event"] == "inbox watch lost"]
        assert len(lost) == 1 and "replaced by a symbolic link" in lost[0]["reason"]
        inbox.unlink()
        (tmp_path / "inbox.orig").rename(inbox)
        wait_until(lambda: watcher_check(port)["ok"], 30, "the inbox to be watched again")
        (inbox / "after.txt").write_text("dropped once it was back\n")
        wait_until(lambda: (tmp_path / "done" / "after.txt").is_file(), 60, "after.txt filed")
    finally:
        assert agent.stop() == 0
    assert sorted(p.name for p in elsewhere.iterdir()) == [f"private-{n}.txt" for n in range(3)]


def test_jobs_of_a_swapped_inbox_wait_and_never_move_the_other_folders_files(
        tmp_path: Path) -> None:
    """A job queued before its inbox was swapped is not claimed from the other folder: it
    waits, uncounted, with the reason in its message, and the same-named file there stays."""
    from agent.config.settings import load_config
    from agent.events import EventBus
    from agent.files.folders import InboxFolders
    from agent.processing.processor import Processor
    from agent.queue import open_queue

    config = agent_config(tmp_path)
    settings = load_config(config, environ={})
    box = InboxFolders(settings.inbox[0])
    assert box.ensure() == []
    (box.inbox / "report.txt").write_text("ours\n")
    queue = open_queue(settings)
    try:
        queued = queue.enqueue_job(str(box.inbox / "report.txt"), "report.txt", inbox="box")
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        (elsewhere / "report.txt").write_text("theirs\n")
        box.inbox.rename(tmp_path / "inbox.orig")
        box.inbox.symlink_to(elsewhere)
        processor = Processor(settings, queue, {"box": box}, EventBus(), factory=SCRIPTED)
        assert processor.run_once() is True
        held = queue.get_job_status(queued.job_id)
        assert held.status.value == "queued" and held.retries == 0 and held.attempts == 0
        assert "replaced by a symbolic link" in (held.message or "")
        assert (elsewhere / "report.txt").read_text() == "theirs\n"
        assert (tmp_path / "inbox.orig" / "report.txt").read_text() == "ours\n"
        assert entries(box.processing) == []
    finally:
        queue.close()
        box.close()


# -- 2. the agent's own folders inside an inbox --------------------------------------------

@pytest.mark.parametrize(("section", "key", "value", "named"), [
    ("agent", "data_dir", "inbox/data", "agent.data_dir"),
    ("embedding", "model_path", "inbox/models/minilm", "embedding.model_path"),
    ("inbox", "done_dir", "inbox/done", "inbox[0].done_dir"),
])
def test_an_agent_folder_inside_a_recursive_inbox_is_refused(
        tmp_path: Path, section: str, key: str, value: str, named: str) -> None:
    """`check` and `run` refuse a data folder, model folder or done/ inside a watched inbox,
    naming the key, and nothing in the inbox is touched (before, run ingested queue.db)."""
    if section == "inbox":
        config = agent_config(tmp_path, inbox={"recursive": True, key: value})
    else:
        config = agent_config(tmp_path, inbox={"recursive": True},
                              **{section: {key: value}})  # type: ignore[arg-type]
    (tmp_path / "inbox" / "data").mkdir(parents=True)
    (tmp_path / "inbox" / "data" / "queue.db").write_bytes(b"SQLite format 3\x00")
    for command in (["check"], ["run", "--drain"]):
        out = cli(config, *command)
        assert out.returncode == 1, out.stdout + out.stderr
        line = out.stderr.strip().splitlines()[-1]
        assert f"{named} (" in line and "lies inside inbox[0].path" in line, line
    assert (tmp_path / "inbox" / "data" / "queue.db").is_file()
    assert not (tmp_path / "done").exists() and not (tmp_path / "failed").exists()


def test_an_inbox_inside_the_data_folder_is_refused(tmp_path: Path) -> None:
    """The other way round: an inbox inside data_dir is refused too, naming both keys."""
    config = agent_config(tmp_path, inbox={"path": "data/inbox"})
    out = cli(config, "check")
    assert out.returncode == 1
    assert "inbox[0].path" in out.stderr and "lies inside agent.data_dir" in out.stderr


# -- 3. a restart right after kill -9 ------------------------------------------------------------

def test_a_restart_right_after_kill_9_resumes_the_job_at_once_uncounted(tmp_path: Path) -> None:
    """The agent is killed mid-job and restarted at once, while the killed process is still
    a zombie (its pid answers kill(0)): the new agent holds the data folder's lock, so it knows
    the old run is dead and takes the job back at once, without spending a retry. Before, the
    job waited for its lease (here over three minutes) and spent a retry."""
    config = agent_config(tmp_path, queue={"job_timeout_seconds": 180})
    agent = AgentProcess(config, pipeline=SCRIPTED).ready()
    (tmp_path / "inbox" / "slow.txt").write_text("SLEEP 4\n")
    wait_until(lambda: [j["status"] for j in jobs(config)] == ["processing"], 60,
               "the job to be processing")
    os.killpg(agent.pid, signal.SIGKILL)  # not reaped yet: a zombie until agent.kill() below
    try:
        restarted = AgentProcess(config, pipeline=SCRIPTED).ready()
        try:
            requeued = restarted.wait_log("requeued a job left running by a stopped agent")
            assert requeued["retry_spent"] is False
            wait_until(lambda: (tmp_path / "done" / "slow.txt").is_file(), 60,
                       "the job to finish well before its lease would expire")
        finally:
            assert restarted.stop() == 0
    finally:
        agent.kill()
    (found,) = jobs(config)
    assert found["status"] == "completed" and found["retries"] == 0 and found["attempts"] == 1


# -- 4. terminal escapes in a document ---------------------------------------------------------

def test_escape_sequences_in_a_document_never_reach_the_terminal(tmp_path: Path) -> None:
    """A document holding "clear the screen" and "set the window title" sequences, searched
    from the CLI: the escape and bell characters are taken out when the text is read
    (pipeline.hygiene), so neither the human nor the JSON output carries a byte a terminal
    acts on; what is left of the sequences shows as text, and a bidirectional override is
    shown escaped (\\u202e), not obeyed."""
    config = agent_config(tmp_path)
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "log.txt").write_text(
        "Lighthouse keeper log.\n\nThe \x1b[2J lamp was trimmed at dusk \x1b]0;pwned\x07 "
        "and the fog horn \u202e sounded twice.\n")
    drained = cli(config, "run", "--drain", timeout=300)
    assert drained.returncode == 0, drained.stderr[-2000:]
    human = cli(config, "search", "fog horn lamp")
    assert human.returncode == 0, human.stderr
    assert "\x1b" not in human.stdout and "\x07" not in human.stdout
    assert "\u202e" not in human.stdout and "\\u202e" in human.stdout
    assert "[2J **lamp**" in human.stdout and "]0;pwned" in human.stdout
    machine = json.loads(cli(config, "search", "fog horn lamp", "--json").stdout)
    snippet = machine["results"][0]["snippet"]
    assert "[2J" in snippet and "\x1b" not in snippet and "\x07" not in snippet
    listing = cli(config, "jobs")
    assert "\x1b" not in listing.stdout


# -- 5. a burst of searches on the socket -------------------------------------------------------

def test_a_burst_of_200_socket_searches_is_answered(tmp_path: Path) -> None:
    """200 searches connect at the same instant: every one is answered by the running agent
    (before, a listen backlog of 5 refused 175 of them)."""
    config = agent_config(tmp_path, search={"mode": "lexical"})
    agent = AgentProcess(config, pipeline=SCRIPTED).ready()
    path = socket_path(tmp_path / "data")
    start = threading.Barrier(200)
    answers: list[dict[str, Any]] = []
    refused: list[str] = []

    def one() -> None:
        start.wait()
        try:
            answers.append(ask(path, {"query": "harbour lantern", "k": 3}, timeout=scaled(120)))
        except (SearchSocketUnavailable, OSError) as exc:
            refused.append(str(exc))

    try:
        threads = [threading.Thread(target=one) for _ in range(200)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=scaled(180))
    finally:
        assert agent.stop() == 0
    assert refused == [] and len(answers) == 200
    assert all("answered" in a for a in answers), answers[:2]


# -- 6. libraries talking on stderr ---------------------------------------------------------------

def test_libraries_output_is_structured_and_quiet(tmp_path: Path) -> None:
    """While a job runs, native output on fd 2, Python warnings and library log lines reach
    the log as JSON lines carrying the job's id; a library's INFO chatter is dropped."""
    config = agent_config(tmp_path)
    agent = AgentProcess(config, pipeline=SCRIPTED).ready()
    try:
        (tmp_path / "inbox" / "noisy.txt").write_text("NOISE\n")
        wait_until(lambda: (tmp_path / "done" / "noisy.txt").is_file(), 60, "noisy.txt filed")
        native = agent.wait_log("library output")
    finally:
        assert agent.stop() == 0
    (found,) = jobs(config)
    assert native["line"] == "Estimating resolution as 301"
    assert native["job_id"] == found["job_id"] and native["file"] == "noisy.txt"
    text = agent.text()
    unstructured = [line for line in text.splitlines() if line and not line.startswith("{")]
    assert unstructured == []
    lines = agent.logs()
    warned = [e for e in lines if "image file could be truncated" in str(e.get("event"))]
    assert warned and warned[0]["job_id"] == found["job_id"]
    decoded = [e for e in lines if e.get("event") == "attachment could not be decoded"]
    assert decoded and decoded[0]["job_id"] == found["job_id"]
    assert "chatter nobody needs" not in text


# -- 7. a failure that repeats is logged once per change ------------------------------------------

def test_a_repeating_failure_is_logged_once_per_change_with_growing_waits() -> None:
    """Ten identical failures make one line (with its traceback) and waits that double up to
    the cap; a new error makes one more line; recovery makes one line and resets the wait."""
    import structlog

    from agent.backoff import RepeatedFailure

    with structlog.testing.capture_logs() as logged:
        failing = RepeatedFailure(structlog.get_logger("t"), "loop failed", max_wait=8.0)
        waits = [failing.failed(OSError(28, "No space left on device")) for _ in range(10)]
        failing.failed(OSError(30, "Read-only file system"))
        failing.succeeded()
        failing.succeeded()
        assert failing.failed(OSError(28, "No space left on device")) == 1.0
    assert waits == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0]
    events = [(e["event"], e.get("error", e.get("last_error"))) for e in logged]
    assert events == [
        ("loop failed", "OSError: [Errno 28] No space left on device"),
        ("loop failed", "OSError: [Errno 30] Read-only file system"),
        ("loop failed: recovered", "OSError: [Errno 30] Read-only file system"),
        ("loop failed", "OSError: [Errno 28] No space left on device"),
    ]
    assert logged[0]["exc_info"] is True and logged[1]["failures"] == 11
