"""A new user's first hour (issue 13), through the installed `ingest-agent` command: an install
that runs only what it needs, a CLI that answers as people type it, read-only commands that
change nothing, and errors that say how to fix them."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import SCRIPTED, AgentProcess, agent_config, free_port, scaled, wait_until

ROOT = Path(__file__).resolve().parent.parent
COMMAND = Path(sys.executable).parent / "ingest-agent"


def ingest_agent(*args: str, cwd: Path, env: dict[str, str] | None = None,
                 timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The console script pip installed, run as a user runs it."""
    assert COMMAND.is_file(), f"{COMMAND} is missing: install the project first"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_AGENT_")}
    return subprocess.run([str(COMMAND), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=scaled(timeout), env={**clean, **(env or {})})


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# -- 1 and 2: the run command installs the runtime, and says what the system lacks -------------

def test_make_run_installs_the_runtime_only() -> None:
    """`make run` installs the project without its test, benchmark or Postgres extras, and
    asks only for the runtime's system packages; `make test` adds the rest."""
    dry = subprocess.run(["make", "-n", "-B", "run"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    installs = [line for line in dry.splitlines() if "pip install" in line and "-e" in line]
    assert installs and all("[" not in line for line in installs), installs
    assert "install-system-deps.sh --runtime" in dry
    test = subprocess.run(["make", "-n", "-B", "test"], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout
    assert "'.[test,bench,postgres]'" in test


@pytest.mark.slow
def test_a_fresh_runtime_venv_is_small_and_complete(tmp_path: Path) -> None:
    """A new venv with `pip install .` alone: no test tools, under 450 MB, and the agent's
    model and libraries load (full-size proof: `make test-full`). 351 MB before the office,
    mail and OCR readers; 428 MB with them (tesserocr 34 MB, extract-msg's cryptography and
    oletools, openpyxl, python-pptx, odfpy, ebooklib); 432 MB with psutil (2026-12-07)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", str(ROOT)], check=True,
                   timeout=900)
    installed = subprocess.run([str(venv / "bin" / "pip"), "list", "--format=json"],
                               capture_output=True, text=True, check=True).stdout
    names = {p["name"].lower() for p in json.loads(installed)}
    assert not names & {"pytest", "pgserver", "schemathesis", "hypothesis", "ruff", "mypy"}
    size = sum(p.stat().st_size for p in venv.rglob("*") if p.is_file()) / 2**20
    print(f"runtime venv: {size:.0f} MB, {len(names)} packages")
    assert size <= 450


def test_missing_libmagic_is_one_line_saying_what_to_install(tmp_path: Path) -> None:
    """On a machine without libmagic (hidden here by a private mount), check and run stop at
    once with one line naming the package, instead of failing file by file."""
    unshare = shutil.which("unshare")
    assert unshare, "unshare (util-linux) is needed to hide libmagic from one process"
    libs = [p for p in Path("/usr/lib").rglob("libmagic.so*") if p.is_file()]
    assert libs, "libmagic1 is expected on this machine"
    config = agent_config(tmp_path)
    hide = " && ".join(f"mount --bind /dev/null {lib}" for lib in libs)
    for command in ("check", "run"):
        proc = subprocess.run(
            [unshare, "--mount", "sh", "-c", f"{hide} && exec {COMMAND} -c {config} {command}"],
            capture_output=True, text=True, timeout=scaled(120))
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "libmagic is not installed" in proc.stderr and "apt-get install libmagic1" in \
            proc.stderr


# -- 3: --config before or after the command -----------------------------------------------------

@pytest.mark.parametrize("command", [["status"], ["jobs"], ["check"], ["status", "--json"]])
def test_config_is_accepted_after_the_command(tmp_path: Path, command: list[str]) -> None:
    """`ingest-agent status --config x.toml` works as `ingest-agent --config x.toml status`."""
    config = agent_config(tmp_path)
    AgentProcess(config, "--drain", pipeline=SCRIPTED).proc.wait(timeout=scaled(120))
    before = ingest_agent("--config", str(config), *command, cwd=tmp_path)
    after = ingest_agent(*command, "--config", str(config), cwd=tmp_path)
    short = ingest_agent(*command, "-c", str(config), cwd=tmp_path)
    assert before.returncode == after.returncode == short.returncode == 0, after.stderr
    assert "No such option" not in after.stderr


# -- 4: read-only commands change nothing ---------------------------------------------------------

def test_read_only_commands_create_nothing_and_say_which_config(tmp_path: Path) -> None:
    """status, jobs, job and search in a folder with no config: nothing is created, they say
    they use the built-in defaults, and that no agent has run there."""
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    for command in (["status"], ["jobs"], ["job", "abcd1234"], ["search", "harbour"]):
        proc = ingest_agent(*command, cwd=empty)
        assert proc.returncode == 1, (command, proc.stdout)
        assert "using the built-in defaults" in proc.stderr
        assert "no agent has run with this config" in proc.stderr or \
            "nothing has been indexed" in proc.stderr, proc.stderr
        assert _tree(empty) == [], f"{command} created {_tree(empty)}"


def test_status_shows_only_its_own_running_agent(tmp_path: Path) -> None:
    """An agent of another config answering on this config's metrics port is not reported as
    this config's watchers and worker; this config's own agent is."""
    port = free_port()
    (tmp_path / "other").mkdir()
    other = agent_config(tmp_path / "other", metrics={"port": port})
    mine = agent_config(tmp_path, "mine", agent={"data_dir": "mine-data"},
                        inbox={"name": "mine", "path": "mine/inbox"}, metrics={"port": port})
    AgentProcess(mine, "--drain", pipeline=SCRIPTED).proc.wait(timeout=scaled(120))
    running = AgentProcess(other, pipeline=SCRIPTED).ready()
    try:
        before = _tree(tmp_path / "mine-data")
        shown = ingest_agent("status", "-c", str(mine), cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr
        assert "watcher" not in shown.stdout and "another config's" in shown.stdout
        assert _tree(tmp_path / "mine-data") == before, "status changed the data folder"
        own = ingest_agent("status", "-c", str(other), cwd=tmp_path)
        assert "watcher:box" in own.stdout and "model loaded" in own.stdout
    finally:
        assert running.stop() == 0


# -- 5: folders a typo would create --------------------------------------------------------------

def test_run_names_every_folder_it_creates(tmp_path: Path) -> None:
    """A typo in an inbox path still starts (a fresh install needs the folders) but the log
    names every folder created; check lists them beforehand."""
    config = agent_config(tmp_path, inbox={"path": "inbx/in"})
    checked = ingest_agent("check", "-c", str(config), cwd=tmp_path)
    assert f"would create {tmp_path / 'inbx' / 'in'}" in checked.stdout
    agent = AgentProcess(config, pipeline=SCRIPTED).ready()
    try:
        warning = agent.wait_log("created missing folders (check the config if a path has a "
                                 "typo)")
        assert str(tmp_path / "inbx" / "in") in warning["folders"]
        assert str(tmp_path / "inbx" / "done") in warning["folders"]
    finally:
        assert agent.stop() == 0


# -- 6: a typo'd key names the fix ---------------------------------------------------------------

def test_typo_in_a_key_suggests_the_right_one(tmp_path: Path) -> None:
    """`settle_second` → "did you mean settle_seconds?", in one line."""
    config = tmp_path / "agent.toml"
    config.write_text('[[inbox]]\nname = "box"\npath = "inbox"\nsettle_second = 2\n')
    proc = ingest_agent("check", "-c", str(config), cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"ingest-agent: {config}: inbox[0].settle_second: unknown key "
                                   "(check its spelling and section); did you mean "
                                   "settle_seconds?")


# -- 7: what a user sees at once -----------------------------------------------------------------

def test_jobs_table_job_prefix_locations_and_attempt_history(tmp_path: Path) -> None:
    """jobs has a header; job takes a unique prefix and shows where the file came from and
    where it is now; a job that completed after a failed attempt shows that attempt in its
    history, not as its error."""
    config = agent_config(tmp_path, queue={"max_retries": 2, "retry_backoff_seconds": 0.1})
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "flaky.txt").write_text("KILL\n")
    agent = AgentProcess(config, pipeline=SCRIPTED).ready()
    try:
        agent.wait_log("job will be retried", timeout=60)
        processing = next((tmp_path / "processing").glob("*__flaky.txt"))
        processing.write_text("fine now\n")
        wait_until(lambda: (tmp_path / "done" / "flaky.txt").is_file(), 60, "flaky.txt filed")
    finally:
        assert agent.stop() == 0
    listing = ingest_agent("jobs", "-c", str(config), cwd=tmp_path)
    header = listing.stdout.splitlines()[0].split()
    assert header == ["JOB", "STATUS", "DONE", "INBOX", "UPDATED", "FILE", "MESSAGE"]
    short_id = listing.stdout.splitlines()[1].split()[0]
    shown = json.loads(ingest_agent("job", short_id[:6], "--json", "-c", str(config),
                                    cwd=tmp_path).stdout)
    assert shown["job_id"].startswith(short_id[:6]) and shown["status"] == "completed"
    assert shown["file_path"] == str(inbox / "flaky.txt")
    assert shown["location"] == str(tmp_path / "done" / "flaky.txt")
    assert "error_type" not in shown["metadata"]
    (attempt,) = shown["metadata"]["history"]
    assert attempt["error_type"] == "WorkerDied" and attempt["attempt"] == 1
    text = ingest_agent("job", short_id, "-c", str(config), cwd=tmp_path).stdout
    assert f"location          {tmp_path / 'done' / 'flaky.txt'}" in text


def test_status_columns_never_run_together(tmp_path: Path) -> None:
    """Every status row has at least two spaces between its columns, however long the name."""
    config = agent_config(tmp_path, inbox={"name": "a-rather-long-inbox-name"},
                          metrics={"port": free_port()})
    agent = AgentProcess(config, pipeline=SCRIPTED).ready()
    try:
        out = ingest_agent("status", "-c", str(config), cwd=tmp_path).stdout
    finally:
        assert agent.stop() == 0
    row = next(line for line in out.splitlines() if "watcher:a-rather-long-inbox-name" in line)
    assert "watcher:a-rather-long-inbox-name  watching" in row


# -- issue 41: what a new user meets in the first hour ------------------------------------------

def test_retry_and_job_take_a_short_id_or_a_file_name(tmp_path: Path) -> None:
    """`retry` takes what `jobs` prints (a 12-character id) and a file name, as `job` does; a
    name several jobs share lists them and exits 1, retrying none of them."""
    config = agent_config(tmp_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name in ("alpha.txt", "beta.txt", "notes-1.txt", "notes-2.txt"):
        (inbox / name).write_text("PERMANENT\n")
    drained = ingest_agent("run", "--drain", "--pipeline", SCRIPTED, "-c", str(config),
                           cwd=tmp_path)
    assert drained.returncode == 0, drained.stderr[-2000:]
    listing = ingest_agent("jobs", "-c", str(config), cwd=tmp_path).stdout.splitlines()[1:]
    short = {row.split()[6]: row.split()[0] for row in listing}  # UPDATED is date and time
    assert all(len(job_id) == 12 for job_id in short.values()), short

    by_short_id = ingest_agent("retry", short["alpha.txt"], "-c", str(config), cwd=tmp_path)
    assert by_short_id.returncode == 0, by_short_id.stderr
    assert "queued  alpha.txt" in by_short_id.stdout
    by_name = ingest_agent("retry", "beta.txt", "-c", str(config), cwd=tmp_path)
    assert by_name.returncode == 0, by_name.stderr
    assert "queued  beta.txt" in by_name.stdout
    several = ingest_agent("retry", "notes", "-c", str(config), cwd=tmp_path)
    assert several.returncode == 1
    assert "notes-1.txt" in several.stdout and "notes-2.txt" in several.stdout
    assert "2 jobs match 'notes': give one's id" in several.stderr
    shown = {j["original_filename"]: j["status"] for j in json.loads(
        ingest_agent("jobs", "--json", "-c", str(config), cwd=tmp_path).stdout)}
    assert shown == {"alpha.txt": "queued", "beta.txt": "queued", "notes-1.txt": "failed",
                     "notes-2.txt": "failed"}
    assert sorted(p.name for p in (tmp_path / "failed").iterdir()) == [
        "notes-1.txt", "notes-1.txt.error.json", "notes-2.txt", "notes-2.txt.error.json"]


def test_job_shows_its_attempts_as_a_table(tmp_path: Path) -> None:
    """`job` prints a failed job's attempts as rows under a header (`--json` keeps the
    history as data), not as a JSON blob."""
    config = agent_config(tmp_path, queue={"max_retries": 1, "retry_backoff_seconds": 0.1})
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "flaky.txt").write_text("TRANSIENT\n")
    drained = ingest_agent("run", "--drain", "--pipeline", SCRIPTED, "-c", str(config),
                           cwd=tmp_path)
    assert drained.returncode == 0, drained.stderr[-2000:]
    text = ingest_agent("job", "flaky.txt", "-c", str(config), cwd=tmp_path).stdout
    assert "{" not in text, text
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("ATTEMPT"))
    assert lines[header].split() == ["ATTEMPT", "AT", "STAGE", "ERROR", "MESSAGE"]
    rows = [line.split(None, 4) for line in lines[header + 1:]]
    assert [(r[0], r[2], r[3]) for r in rows] == [("1", "index", "TransientError"),
                                                  ("2", "index", "TransientError")]
    assert all(r[4] == "scripted transient failure" for r in rows)
    assert re.search(r"^paused +never$", text, re.M)
    data = json.loads(ingest_agent("job", "flaky.txt", "--json", "-c", str(config),
                                   cwd=tmp_path).stdout)
    assert [a["attempt"] for a in data["metadata"]["history"]] == [1, 2]


def test_the_editable_install_prints_no_banner(tmp_path: Path) -> None:
    """`pip install --quiet -e .`, as `make` runs it, prints nothing of the project's own
    build: no setuptools banner about its editable finder. (This machine's pip config adds
    "Location … is ignored" lines of its own, which are not the project's.)"""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                           "install", "--quiet", "--no-deps", "-e", str(ROOT)],
                          capture_output=True, text=True, timeout=scaled(300))
    assert proc.returncode == 0, proc.stderr
    said = [line for line in (proc.stdout + proc.stderr).splitlines()
            if line.strip() and not re.match(r"WARNING: Location '.*' is ignored", line)]
    assert said == [], "\n".join(said)
    found = subprocess.run([str(venv / "bin" / "python"), "-c", "import agent; print(agent."
                            "__file__)"], capture_output=True, text=True, cwd=tmp_path)
    assert found.stdout.strip() == str(ROOT / "agent" / "__init__.py"), found.stderr


def test_a_taken_port_is_one_line_naming_its_holder_before_anything_starts(
        tmp_path: Path) -> None:
    """`check` tries the web page's and the metrics' ports; a taken one is a problem naming the
    process that holds it and how to choose another. `run` says the same in one line and exits
    1 before it serves, watches or starts a worker; uvicorn's own "[Errno 98]" line is gone."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import socket, sys\ns = socket.socket()\n"
         "s.bind(('127.0.0.1', 0))\ns.listen()\nprint(s.getsockname()[1], flush=True)\n"
         "sys.stdin.read()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        port = int(holder.stdout.readline())
        for role in ("api", "metrics"):
            config = agent_config(tmp_path, role, **{role: {"enabled": True, "port": port}})
            said = (f"{role}: port {port} on 127.0.0.1 is in use by pid {holder.pid} "
                    f"({sys.executable} -c import socket, sys")
            fix = f"choose another with [{role}] port in {config} or " \
                  f"INGEST_AGENT_{role.upper()}__PORT"
            checked = ingest_agent("check", "-c", str(config), cwd=tmp_path)
            assert checked.returncode == 1
            assert said in checked.stderr and fix in checked.stderr, checked.stderr
            ran = ingest_agent("run", "--pipeline", SCRIPTED, "-c", str(config), cwd=tmp_path)
            assert ran.returncode == 1
            last = ran.stderr.strip().splitlines()[-1]
            assert last.startswith(f"ingest-agent: {said}") and last.endswith(fix), ran.stderr
            assert "Errno 98" not in ran.stderr + ran.stdout
            started = [e for e in (ran.stdout + ran.stderr).splitlines()
                       if any(word in e for word in ("served", "agent ready", "worker"))]
            assert started == [], started
    finally:
        holder.kill()
        holder.wait()
    free = ingest_agent("check", "-c", str(config), cwd=tmp_path)
    assert free.returncode == 0 and f"metrics and health: http://127.0.0.1:{port}/metrics" in \
        free.stdout, free.stdout + free.stderr


def test_every_log_line_about_a_file_names_its_job_and_file(tmp_path: Path) -> None:
    """What libraries log while a file is read names the job and the file, also on the OCR
    reader's threads: tesserocr's "No text returned" on a picture of stripes (no text) did
    not."""
    from PIL import Image, ImageDraw

    config = agent_config(tmp_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    picture = Image.new("RGB", (800, 600), "white")
    draw = ImageDraw.Draw(picture)
    for x in range(0, 800, 7):
        draw.line([(x, 0), (x, 600)], fill="gray")
    picture.save(inbox / "stripes.png")
    drained = ingest_agent("run", "--drain", "-c", str(config), cwd=tmp_path, timeout=300)
    assert drained.returncode == 0, drained.stderr[-2000:]
    lines = [json.loads(line) for line in drained.stderr.splitlines() if line.startswith("{")]
    job_id = next(e["job_id"] for e in lines if e["event"] == "processing job")
    library = [e for e in lines if e.get("logger") and not e["logger"].startswith("agent")]
    assert any(e["logger"] == "tesserocr" for e in library), lines
    for entry in library:
        assert entry.get("job_id") == job_id and entry.get("file") == "stripes.png", entry


def test_the_listening_socket_lets_the_server_send_without_waiting() -> None:
    """The web page's socket is bound before uvicorn takes it; asyncio turns Nagle's algorithm
    off (TCP_NODELAY) only on sockets created as TCP, and without it every response waited
    for the client's delayed ACK (40 ms a page, web_bench 2026-12-07). An asyncio server on
    the socket, as uvicorn runs one, has TCP_NODELAY on the connection it accepts."""
    import asyncio
    import socket

    from agent.ops.listeners import Port, listen

    async def accepted_nodelay() -> int:
        seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(on_connect, sock=listen(Port("api", "127.0.0.1", 0)))
        host, port = server.sockets[0].getsockname()[:2]
        _, writer = await asyncio.open_connection(host, port)
        try:
            return await asyncio.wait_for(seen, 30)
        finally:
            writer.close()
            server.close()
            await server.wait_closed()

    assert asyncio.run(accepted_nodelay()) != 0
