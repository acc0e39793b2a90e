"""What users and attackers drop can neither block an inbox nor be indexed wrong (issue 12).

Every test drives the real agent: `ingest-agent run` in its own process, real folders and
inotify, the real HTTP API. Where the pipeline's work is beside the point, the scripted pipeline
(tests/pipelines.py) stands in for parsing and embedding; where what is indexed matters, the
real pipeline and model run.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from agent.files.locks import OWN_FILES
from tests.helpers import (
    SCRIPTED,
    AgentProcess,
    RedisServer,
    agent_config,
    cli,
    free_port,
    job,
    jobs,
    scaled,
    wait_until,
)

TOKEN = "intake-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _names(folder: Path) -> set[bytes]:
    """Entries of a folder as the bytes on disk (minus the agent's own lock files)."""
    return {n for n in os.listdir(os.fsencode(folder)) if os.fsdecode(n) not in OWN_FILES}


def _by_name(config: Path) -> dict[str, dict[str, object]]:
    return {str(j["original_filename"]): j for j in jobs(config)}


# -- 1. names that are not UTF-8, and several bad entries at once ------------------------------

def test_undecodable_names_and_bad_entries_never_block_an_inbox(tmp_path: Path) -> None:
    """Names that are not UTF-8 beside a FIFO, a dangling link, a folder and a good file: every
    regular file is filed under its own bytes, each odd entry is skipped with a log line, and
    no watcher step fails."""
    config = agent_config(tmp_path, inbox={"settle_seconds": 0.3})
    agent = AgentProcess(config, pipeline=SCRIPTED).ready()
    try:
        inbox = tmp_path / "inbox"
        (inbox / os.fsdecode(b"bad\xff.txt")).write_text("x\n")
        (inbox / os.fsdecode(b"caf\xe9 menu.md")).write_text("# menu\n")
        os.mkfifo(inbox / os.fsdecode(b"pipe\xfe"))
        os.symlink(inbox / "missing-target", inbox / os.fsdecode(b"dangling\xfd"))
        (inbox / os.fsdecode(b"folder\xfc")).mkdir()
        (inbox / "good.txt").write_text("ok\n")
        done = tmp_path / "done"
        wait_until(lambda: done.is_dir() and {b"bad\xff.txt", b"caf\xe9 menu.md", b"good.txt"}
                   <= _names(done), 60, "the three regular files in done/")
        skipped = {e["file"]: e["reason"] for e in agent.logs() if e["event"] == "file skipped"}
        assert "FIFO" in skipped["pipe\\xfe"] and "symbolic link" in skipped["dangling\\xfd"]
        assert "folder" in skipped["folder\\xfc"]
        assert not [e for e in agent.logs() if e["event"] == "watcher step failed; will retry"]
        listing = cli(config, "jobs")
        assert listing.returncode == 0 and "bad\\xff.txt" in listing.stdout
        assert "caf\\xe9 menu.md" in listing.stdout
        by_name = _by_name(config)
        assert by_name["bad\\xff.txt"]["status"] == "completed"
    finally:
        assert agent.stop() == 0


def test_long_names_that_are_not_utf8_are_processed_under_a_name_that_fits(
        tmp_path: Path) -> None:
    """A 72-byte cp1251 name (each byte shown as four characters in processing/: 272 bytes
    with the job's prefix) and a 198-byte UTF-8 one both go through processing/ under a shortened name that fits the
    file system's limit, are completed on the first attempt, and are filed in done/ under
    their own bytes."""
    config = agent_config(tmp_path, inbox={"settle_seconds": 0.3})
    agent = AgentProcess(config, pipeline=SCRIPTED).ready()
    cp1251 = ("ОтчётПродажиТретийКварталПоволжьеУралИтогиГодаДляСоветаДиректоровФирмы"
              .encode("cp1251")[:68] + b".txt")
    utf8 = ("Ведомость" * 11).encode("utf-8")[:194] + b".txt"
    assert len(cp1251) == 72 and len(utf8) == 198
    try:
        inbox = tmp_path / "inbox"
        for name in (cp1251, utf8):
            with open(os.path.join(os.fsencode(inbox), name), "wb") as f:
                f.write(b"a note with a long name\n")
        done = tmp_path / "done"
        wait_until(lambda: done.is_dir() and {cp1251, utf8} <= _names(done), 60,
                   "both long names in done/")
        by_name = _by_name(config)
        assert len(by_name) == 2
        for entry in by_name.values():
            assert entry["status"] == "completed" and entry["attempts"] == 1, entry
    finally:
        assert agent.stop() == 0


# -- 2. a failure report never replaces a file -------------------------------------------------

def _upload(url: str, name: str, content: bytes) -> dict[str, object]:
    response = httpx.post(f"{url}/api/v1/upload", files={"file": (name, content)},
                          headers=AUTH, timeout=scaled(30))
    assert response.status_code == 201, response.text
    return dict(response.json())


def _api_agent(tmp_path: Path, **api: object) -> tuple[Path, AgentProcess, str]:
    port = free_port()
    config = agent_config(tmp_path, api={"enabled": True, "port": port, "token": TOKEN, **api})
    agent = AgentProcess(config, pipeline=SCRIPTED).ready()
    return config, agent, f"http://127.0.0.1:{port}"


def test_failure_report_never_replaces_a_users_file(tmp_path: Path) -> None:
    """A user's own file in failed/ named r.txt.error.json keeps its content when r.txt
    fails; r.txt's report goes beside a free name, and a retry removes only the job's own
    report. (Such a name no longer comes in by upload: the inbox excludes *.error.json.)"""
    config, agent, url = _api_agent(tmp_path)
    failed = tmp_path / "failed"
    try:
        failed.mkdir(exist_ok=True)
        (failed / "r.txt.error.json").write_bytes(b"PERMANENT\nthe user's own notes\n")
        second = _upload(url, "r.txt", b"PERMANENT\nanother file\n")
        wait_until(lambda: job(config, str(second["job_id"]))["status"] == "failed", 60,
                   "the second upload to fail")
    finally:
        assert agent.stop() == 0
    assert (failed / "r.txt.error.json").read_bytes() == b"PERMANENT\nthe user's own notes\n"
    meta = job(config, str(second["job_id"]))["metadata"]
    assert meta["failed_path"] == str(failed / "r (2).txt")
    assert meta["failed_report"] == str(failed / "r (2).txt.error.json")
    report = json.loads((failed / "r (2).txt.error.json").read_text())
    assert report["job_id"] == second["job_id"] and report["file"] == "r.txt"
    retried = cli(config, "retry", str(second["job_id"]))
    assert retried.returncode == 0, retried.stderr
    assert not (failed / "r (2).txt.error.json").exists()
    assert (failed / "r.txt.error.json").read_bytes().startswith(b"PERMANENT\nthe user's")


# -- 3. the index agrees with the file it filed ------------------------------------------------

WRITER = textwrap.dedent("""
    import sys, time
    path, rounds, pause, size = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    words = "harbour lantern keeper tide chart buoy northern cape signal ".split()
    with open(path, "w") as fh:
        for r in range(rounds):
            line = " ".join(words[(r + i) % len(words)] for i in range(size // 8))
            fh.write(f"Round {r}. {line}.\\n\\n")
            fh.flush()
            time.sleep(pause)
""")


def _documents(data_dir: Path) -> list[tuple[str, int, int]]:
    with sqlite3.connect(data_dir / "index.db") as conn:
        return list(conn.execute("SELECT content_sha256, bytes, chunk_count FROM documents"))


def test_file_open_for_writing_is_not_queued_until_closed(tmp_path: Path) -> None:
    """A writer that keeps its file open and pauses longer than settle_seconds: one job, after
    the close, and the index records the hash and size of the whole file (real pipeline)."""
    config = agent_config(tmp_path, inbox={"settle_seconds": 0.5})
    agent = AgentProcess(config).ready()
    try:
        target = tmp_path / "inbox" / "growing.txt"
        subprocess.run([sys.executable, "-c", WRITER, str(target), "5", "1.0", "2000"],
                       check=True, timeout=scaled(60))
        done = tmp_path / "done" / "growing.txt"
        wait_until(done.is_file, 120, "growing.txt in done/")
    finally:
        assert agent.stop() == 0
    content = done.read_bytes()
    assert content.count(b"Round ") == 5
    assert _documents(tmp_path / "data") == [
        (hashlib.sha256(content).hexdigest(), len(content), _documents(tmp_path / "data")[0][2])]
    assert len(jobs(config)) == 1


def test_file_changed_during_processing_is_read_again_uncounted(tmp_path: Path) -> None:
    """A writer still appending after max_open_write_seconds: the job that read a changing file
    goes back to the queue without spending a retry, and the document finally indexed is the
    file's final content (real pipeline)."""
    config = agent_config(tmp_path, inbox={"settle_seconds": 0.3, "max_open_write_seconds": 1},
                          queue={"max_retries": 0})
    agent = AgentProcess(config).ready()
    try:
        target = tmp_path / "inbox" / "log.txt"
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(target), "40", "0.4",
                                   "6000"])
        agent.wait_log("file changed while it was processed; requeued without spending a "
                       "retry", timeout=120)
        writer.wait(timeout=scaled(60))
        done = tmp_path / "done" / "log.txt"
        wait_until(done.is_file, 300, "log.txt in done/")
    finally:
        assert agent.stop() == 0
    content = done.read_bytes()
    assert content.count(b"Round ") == 40
    (sha, size, _), = _documents(tmp_path / "data")
    assert (sha, size) == (hashlib.sha256(content).hexdigest(), len(content))
    (only,) = jobs(config)
    assert only["status"] == "completed" and only["retries"] == 0
    assert int(only["metadata"]["changes"]) >= 1


# -- 4. an entry swapped for something that is not a file --------------------------------------

@pytest.mark.parametrize("swap", ["fifo", "symlink"])
def test_queued_file_swapped_for_a_fifo_or_link_fails_at_once(tmp_path: Path, swap: str) -> None:
    """A queued file replaced by a FIFO or a link to a file outside the inboxes fails at once
    with the reason; nothing is read through it and nothing stays in processing/."""
    config = agent_config(tmp_path, queue={"job_timeout_seconds": 300})
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    path = inbox / "swapped.txt"
    path.write_text("harmless\n")
    queued = cli(config, "enqueue", str(path))
    assert queued.returncode == 0, queued.stderr
    job_id = queued.stdout.split()[0]
    path.unlink()
    secret = tmp_path / "secret.txt"
    secret.write_text("must never be read\n")
    if swap == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to(secret)
    started = time.monotonic()
    agent = AgentProcess(config, "--drain", pipeline=SCRIPTED)
    assert agent.proc.wait(timeout=scaled(120)) == 0, agent.text()[-2000:]
    assert time.monotonic() - started < scaled(60), "failed at once, not at the job timeout"
    found = job(config, job_id)
    assert found["status"] == "failed"
    expected = "FIFO" if swap == "fifo" else "symbolic link"
    assert f"not a regular file ({expected})" in str(found["message"])
    assert _names(tmp_path / "processing") == set()
    assert secret.read_text() == "must never be read\n"
    done = tmp_path / "done"
    assert not done.exists() or not any(done.iterdir()), "nothing was read through the swap"


# -- 5. a crash mid-upload leaves no temp file behind ------------------------------------------

def test_crash_mid_upload_leaves_no_temp_file_after_restart(tmp_path: Path) -> None:
    """kill -9 while an upload streams in: its temp file is in processing/; the next start
    removes it (never acknowledged, never queued)."""
    config, agent, url = _api_agent(tmp_path)
    port = int(url.rsplit(":", 1)[1])
    processing = tmp_path / "processing"
    boundary = "b0undary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"big.txt\"\r\n\r\n").encode()
    sock = socket.create_connection(("127.0.0.1", port))
    try:
        sock.sendall((f"POST /api/v1/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}"
                      f"\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
                      f"Content-Length: 10000000\r\n\r\n").encode() + head + b"x" * 200_000)
        wait_until(lambda: [p for p in processing.iterdir() if p.name.endswith(".upload")],
                   30, "the upload's temp file")
        agent.kill()
    finally:
        sock.close()
    assert [p for p in processing.iterdir() if p.name.endswith(".upload")]
    again = AgentProcess(config, pipeline=SCRIPTED).ready()
    try:
        assert not [p for p in processing.iterdir() if p.name.endswith(".upload")]
        assert any(e["event"] == "removed a temporary file left by a stopped agent"
                   for e in again.logs())
        assert _names(tmp_path / "inbox") == set()
    finally:
        assert again.stop() == 0


# -- 6. two agents on one data folder or one inbox ---------------------------------------------

def _refused(config: Path) -> str:
    second = AgentProcess(config, pipeline=SCRIPTED)
    assert second.proc.wait(timeout=scaled(60)) == 1
    lines = [line for line in second.text().splitlines() if line.startswith("ingest-agent:")]
    assert len(lines) == 1, second.text()
    return lines[0]


def test_second_agent_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    """Same data_dir, another inbox and port: the second exits 1 naming the holder."""
    first_cfg = agent_config(tmp_path, "first")
    second_cfg = agent_config(tmp_path, "second", inbox={"name": "other", "path": "other/in",
                                                         "processing_dir": "other/processing",
                                                         "done_dir": "other/done",
                                                         "failed_dir": "other/failed"})
    first = AgentProcess(first_cfg, pipeline=SCRIPTED).ready()
    try:
        line = _refused(second_cfg)
        assert f"pid {first.pid}" in line and str(first_cfg) in line and "data_dir" in line
    finally:
        assert first.stop() == 0


def test_second_agent_on_the_same_inbox_is_refused(tmp_path: Path) -> None:
    """Another data_dir, the same inbox (SQLite queue): refused, naming the holder, and no job
    of the first agent fails as "file vanished"."""
    first_cfg = agent_config(tmp_path, "first")
    second_cfg = agent_config(tmp_path, "second", agent={"data_dir": "data2"})
    first = AgentProcess(first_cfg, pipeline=SCRIPTED).ready()
    try:
        line = _refused(second_cfg)
        assert f"pid {first.pid}" in line and "inbox box" in line
    finally:
        assert first.stop() == 0


def test_redis_agents_share_an_inbox_only_within_one_namespace(tmp_path: Path) -> None:
    """Two agents of one Redis namespace run on one inbox; one of another namespace is refused."""
    (tmp_path / "redis").mkdir()
    redis = RedisServer(tmp_path / "redis")

    def config(name: str, namespace: str) -> Path:
        return agent_config(tmp_path, name, agent={"data_dir": f"{name}-data"},
                            inbox={"mode": "poll", "poll_interval_seconds": 0.3},
                            queue={"backend": "redis", "redis_url": redis.url,
                                   "redis_namespace": namespace})
    agents = [AgentProcess(config(n, "shared"), pipeline=SCRIPTED) for n in ("a", "b")]
    try:
        for agent in agents:
            agent.ready()
        line = _refused(config("c", "elsewhere"))
        assert "redis namespace shared" in line
        (tmp_path / "inbox" / "note.txt").write_text("hello\n")
        wait_until(lambda: (tmp_path / "done" / "note.txt").is_file(), 60, "note.txt filed")
    finally:
        for agent in agents:
            assert agent.stop() == 0
        redis.stop()


_TAKE_LOCKS = textwrap.dedent("""
    import sys
    from agent.config.settings import load_config
    from agent.errors import AgentError
    from agent.files.locks import AgentLocks

    settings = load_config(sys.argv[1])
    print("ready", flush=True)
    sys.stdin.readline()  # the test says go to every process at once
    try:
        AgentLocks(settings).acquire()
    except AgentError as exc:
        print("refused", exc, flush=True)
    else:
        print("held", flush=True)
    sys.stdin.read()  # hold the locks until the test lets go
""")


def _start_together(tmp_path: Path, queues: list[dict[str, str]]) -> list[str]:
    """Take one inbox's locks in one process per queue, all let go at the same instant."""
    procs = []
    for i, queue in enumerate(queues):
        config = agent_config(tmp_path, f"locker{i}", agent={"data_dir": f"data{i}"},
                              queue=queue)
        procs.append(subprocess.Popen([sys.executable, "-c", _TAKE_LOCKS, str(config)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
    try:
        for p in procs:  # every interpreter is up and waits for the word
            assert p.stdout is not None and p.stdout.readline() == "ready\n"
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        return [p.stdout.readline().strip() for p in procs if p.stdout is not None]
    finally:
        for p in procs:
            p.communicate(timeout=scaled(30))


def test_agents_starting_together_share_an_inbox_only_within_one_namespace(
        tmp_path: Path) -> None:
    """Redis agents of one namespace started at the same instant all hold the inbox, never
    "holder unknown"; mixed with another namespace and an SQLite agent, the first namespace in
    wins and every other agent is refused naming it."""
    same = {"backend": "redis", "redis_url": "redis://127.0.0.1:1/0", "redis_namespace": "one"}
    other = {**same, "redis_namespace": "two"}
    for _ in range(5):
        outcomes = _start_together(tmp_path, [same] * 6)
        assert outcomes == ["held"] * 6, outcomes
    for _ in range(5):
        outcomes = _start_together(tmp_path, [same, other] * 3 + [{"backend": "sqlite"}])
        assert len(outcomes) == 7, outcomes
        held = [q for q, o in zip([same, other] * 3 + [{}], outcomes, strict=True)
                if o == "held"]
        assert held and all(q == held[0] for q in held), outcomes
        winner = f"redis namespace {held[0]['redis_namespace']}" if held[0] else "sqlite "
        refused = [o for o in outcomes if o != "held"]
        assert len(refused) == 7 - len(held) and len(held) in (1, 3), outcomes
        assert all(o.startswith("refused inbox box") and winner in o for o in refused), outcomes


# -- 7. an API open to the network needs a token -----------------------------------------------

def test_api_on_a_network_address_without_token_is_refused(tmp_path: Path) -> None:
    """0.0.0.0 with no token: run exits 1 with one line and check reports it, unless
    api.allow_anonymous is set."""
    port = free_port()
    config = agent_config(tmp_path, api={"enabled": True, "host": "0.0.0.0", "port": port})
    line = _refused(config)
    assert "api.token" in line and "allow_anonymous" in line
    checked = cli(config, "check")
    assert checked.returncode == 1 and "api.host = '0.0.0.0'" in checked.stderr
    allowed = agent_config(tmp_path, "allowed", api={"enabled": True, "host": "0.0.0.0",
                                                     "port": port, "allow_anonymous": True})
    agent = AgentProcess(allowed, pipeline=SCRIPTED).ready()
    try:
        response = httpx.post(f"http://127.0.0.1:{port}/api/v1/upload",
                              files={"file": ("a.txt", b"anonymous\n")}, timeout=scaled(30))
        assert response.status_code == 201
    finally:
        assert agent.stop() == 0


# -- 8. form fields before and after the file --------------------------------------------------

def test_form_fields_around_the_file_are_kept_as_metadata(tmp_path: Path) -> None:
    """Fields before and after the file part are accepted and kept with the job."""
    config, agent, url = _api_agent(tmp_path)
    boundary = "xYz"

    def part(name: str, value: bytes, filename: str | None = None) -> bytes:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"'
                                                     if filename else "")
        return (f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n").encode() + \
            value + b"\r\n"
    body = (part("source", b"scanner-3") + part("file", b"hello\n", "note.txt")
            + part("comment", b"hello") + f"--{boundary}--\r\n".encode())
    try:
        response = httpx.post(f"{url}/api/v1/upload", content=body, timeout=scaled(30),
                              headers={**AUTH, "Content-Type":
                                       f"multipart/form-data; boundary={boundary}"})
        assert response.status_code == 201, response.text
        found = job(config, response.json()["job_id"])
        assert found["metadata"]["fields"] == {"source": "scanner-3", "comment": "hello"}
    finally:
        assert agent.stop() == 0


# -- 9. invisible characters in names ----------------------------------------------------------

def test_bidi_and_invisible_characters_leave_uploaded_names(tmp_path: Path) -> None:
    """A right-to-left override and a zero-width space are stripped from the name written."""
    config, agent, url = _api_agent(tmp_path)
    try:
        body = _upload(url, "invoice\u202etxt.exe", b"hello\n")
        assert body["file"] == "invoicetxt.exe"
        _upload(url, "zero\u200bwidth.txt", b"hello again\n")
        wait_until(lambda: {b"invoicetxt.exe", b"zerowidth.txt"} <= _names(tmp_path / "done"),
                   60, "both files filed under clean names")
    finally:
        assert agent.stop() == 0


def test_uploads_pass_the_inboxs_name_filters(tmp_path: Path) -> None:
    """An upload is a file dropped in the inbox: a name its exclude patterns skip (an Office
    lock file, Thumbs.db, a partial download) is refused with the pattern named, before any
    byte is written, and nothing of it reaches the inbox or the queue."""
    config, agent, url = _api_agent(tmp_path)
    try:
        for name, pattern in (("~$report.docx", "~$*"), ("Thumbs.db", "Thumbs.db"),
                              ("movie.mkv.part", "*.part")):
            response = httpx.post(f"{url}/api/v1/upload", files={"file": (name, b"x" * 10)},
                                  headers=AUTH, timeout=scaled(30))
            assert response.status_code == 400, response.text
            detail = response.json()["detail"]
            assert f"excluded by pattern {pattern!r}" in detail and "include/exclude" in detail
        _upload(url, "kept.txt", b"a file the inbox takes\n")
        wait_until(lambda: b"kept.txt" in _names(tmp_path / "done"), 60, "kept.txt filed")
        assert [j["original_filename"] for j in jobs(config)] == ["kept.txt"]
        assert not [n for n in _names(tmp_path / "inbox") | _names(tmp_path / "processing")
                    if b"report" in n or b"Thumbs" in n or b"movie" in n]
    finally:
        assert agent.stop() == 0


# -- 10. signals to the whole process group ----------------------------------------------------

def test_sigterm_to_the_process_group_does_not_kill_the_worker(tmp_path: Path) -> None:
    """`timeout` or systemd signal the whole group: the worker lives on, the job finishes in
    the grace period without spending a retry, and the agent exits 0."""
    config = agent_config(tmp_path, processing={"shutdown_grace_seconds": 60})
    agent = AgentProcess(config, pipeline=SCRIPTED).ready()
    (tmp_path / "inbox" / "slow.txt").write_text("SLEEP 3\n")
    agent.wait_log("processing job", timeout=60)
    agent.signal_group(signal.SIGTERM)
    assert agent.proc.wait(timeout=scaled(60)) == 0
    (only,) = jobs(config)
    assert only["status"] == "completed" and only["retries"] == 0
    assert "error_type" not in only["metadata"]


def test_job_interrupted_at_shutdown_is_claimed_first_on_restart(tmp_path: Path) -> None:
    """Past the grace period the job is requeued uncounted; on the next start it runs before
    the files that were queued behind it."""
    config = agent_config(tmp_path, processing={"shutdown_grace_seconds": 1})
    agent = AgentProcess(config, pipeline=SCRIPTED).ready()
    (tmp_path / "inbox" / "long.txt").write_text("SLEEP 30\n")
    agent.wait_log("processing job", timeout=60)
    for name in ("a.txt", "b.txt"):
        (tmp_path / "inbox" / name).write_text("quick\n")
    wait_until(lambda: len(jobs(config)) == 3, 60, "a.txt and b.txt queued behind long.txt")
    agent.signal_group(signal.SIGINT)
    assert agent.proc.wait(timeout=scaled(60)) == 0
    interrupted = _by_name(config)["long.txt"]
    assert interrupted["status"] == "queued" and interrupted["retries"] == 0
    (tmp_path / "processing" / f"{interrupted['job_id']}__long.txt").write_text("quick now\n")
    again = AgentProcess(config, "--drain", pipeline=SCRIPTED)
    assert again.proc.wait(timeout=scaled(120)) == 0
    order = [e["job_id"] for e in again.logs() if e["event"] == "processing job"]
    assert len(order) == 3 and order[0] == interrupted["job_id"]
