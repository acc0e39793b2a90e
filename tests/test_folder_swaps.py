"""Folders swapped around downloads, retries, recovery and start-up (issue 42, items 4, 5, 9),
each on the real agent: every path it acts on goes through the folders it pinned at start, a
folder that is a link or was replaced while it was stopped is refused, and its data folder
moved into an inbox stops that inbox's intake.

The scripted pipeline stands in where what is indexed is beside the point (tests/pipelines.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import (
    SCRIPTED,
    AgentProcess,
    agent_config,
    cli,
    entries,
    free_port,
    jobs,
    wait_until,
    watcher_check,
)


def _filed(config: Path, name: str, status: str) -> dict[str, Any]:
    return dict(wait_until(lambda: next((j for j in jobs(config) if j["original_filename"]
                                         == name and j["status"] == status), None),
                           60, f"{name} {status}"))


def _swap(folder: Path, target: Path) -> Path:
    """``folder`` set aside and replaced by a link to ``target``; returns where it went."""
    aside = folder.with_name(folder.name + ".orig")
    folder.rename(aside)
    folder.symlink_to(target)
    return aside


def _put_back(folder: Path, aside: Path) -> None:
    folder.unlink()
    aside.rename(folder)


def test_downloads_and_retries_never_follow_a_swapped_folder(tmp_path: Path) -> None:
    """done/ swapped for a link: "Download the original" sends nothing (404), not the other
    folder's file; failed/ or processing/ swapped: Retry is refused (409), in the page and the
    CLI, and nothing moves in or out of the other folder. Put back, both work."""
    port = free_port()
    config = agent_config(tmp_path, api={"enabled": True, "port": port})
    agent = AgentProcess(config, pipeline=SCRIPTED).ready()
    url = f"http://127.0.0.1:{port}"
    inbox, done, failed = tmp_path / "inbox", tmp_path / "done", tmp_path / "failed"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("not the agent's\n")
    (elsewhere / "bad.txt").write_text("not the agent's either\n")
    try:
        (inbox / "keep.txt").write_text("the user's own file\n")
        (inbox / "bad.txt").write_text("PERMANENT\n")
        kept = _filed(config, "keep.txt", "completed")
        bad = _filed(config, "bad.txt", "failed")
        download = f"{url}/jobs/{kept['job_id']}/original"
        assert httpx.get(download).content == b"the user's own file\n"

        aside = _swap(done, elsewhere)
        swapped = httpx.get(download)
        assert swapped.status_code == 404 and b"not the agent's" not in swapped.content
        page = httpx.get(f"{url}/jobs/{kept['job_id']}").text
        assert "/original" not in page, "no download link while done/ is swapped"
        _put_back(done, aside)
        assert httpx.get(download).content == b"the user's own file\n"

        client = httpx.Client(base_url=url, headers={"Origin": url})
        client.get("/jobs")
        csrf = client.cookies["ingest_csrf"]
        retry = f"/jobs/{bad['job_id']}/retry"
        foreign = tmp_path / "foreign"
        foreign.mkdir()
        for folder, target in ((failed, elsewhere), (tmp_path / "processing", foreign)):
            aside = _swap(folder, target)
            refused = client.post(retry, data={"csrf": csrf})
            assert refused.status_code == 409, refused.text
            assert "replaced by a symbolic link" in refused.text
            by_cli = cli(config, "retry", bad["job_id"])
            assert by_cli.returncode == 1 and "is a symbolic link" in by_cli.stderr
            _put_back(folder, aside)
            assert entries(foreign) == [] and entries(elsewhere) == ["bad.txt", "keep.txt"]
            assert (elsewhere / "bad.txt").read_text() == "not the agent's either\n"
            assert "bad.txt" in entries(failed)
            assert next(j for j in jobs(config) if j["job_id"] == bad["job_id"])[
                "status"] == "failed"
        assert client.post(retry, data={"csrf": csrf}).status_code == 303
        wait_until(lambda: next(j for j in jobs(config) if j["job_id"] == bad["job_id"])[
            "attempts"] >= 2, 60, "the retried job to run again")
    finally:
        assert agent.stop() == 0


def test_a_folder_replaced_while_the_agent_was_stopped_is_refused_at_start(
        tmp_path: Path) -> None:
    """Between two runs the inbox, or failed/, becomes a link, or another folder with files:
    `run` refuses with one line naming it and takes, moves and writes nothing there. A folder
    replaced by an empty one is adopted."""
    config = agent_config(tmp_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "first.txt").write_text("the first run's file\n")
    assert cli(config, "run", "--drain", "--pipeline", SCRIPTED).returncode == 0
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "private.txt").write_text("another folder's file\n")

    def refused(named: Path, why: str, holding: Path) -> None:
        run = cli(config, "run", "--drain", "--pipeline", SCRIPTED)
        assert run.returncode != 0, run.stdout + run.stderr
        assert str(named) in run.stderr and why in run.stderr, run.stderr
        assert sorted(os.listdir(holding)) == ["private.txt"], "nothing taken, moved or written"

    for folder in (inbox, tmp_path / "failed"):
        aside = _swap(folder, theirs)
        refused(folder, "is a symbolic link", theirs)
        folder.unlink()
        theirs.rename(folder)  # the other folder itself, moved into the configured place
        refused(folder, "is not the folder the agent used last run", folder)
        folder.rename(theirs)
        aside.rename(folder)
    inbox.rename(tmp_path / "inbox.old")
    inbox.mkdir()  # a careless `rm -rf inbox; mkdir inbox`: empty, so adopted
    (tmp_path / "inbox.old" / "first.txt").unlink(missing_ok=True)
    assert cli(config, "run", "--drain", "--pipeline", SCRIPTED).returncode == 0
    (inbox / "second.txt").write_text("the second run's file\n")
    assert cli(config, "run", "--drain", "--pipeline", SCRIPTED).returncode == 0
    assert sorted(j["original_filename"] for j in jobs(config)) == ["first.txt", "second.txt"]


def test_the_data_folder_moved_into_a_recursive_inbox_stops_its_intake(tmp_path: Path) -> None:
    """`mv data inbox/` under a running agent: the inbox stops taking files (its health check
    names the data folder) and none of the agent's own files is queued or moved; moved back
    out, intake resumes."""
    port = free_port()
    config = agent_config(tmp_path, inbox={"recursive": True, "scan_interval_seconds": 0.5},
                          metrics={"port": port})
    agent = AgentProcess(config, pipeline=SCRIPTED).ready()
    inbox, data = tmp_path / "inbox", tmp_path / "data"
    try:
        (inbox / "before.txt").write_text("dropped first\n")
        wait_until(lambda: (tmp_path / "done" / "before.txt").is_file(), 60, "before.txt filed")
        own = sorted(p.name for p in data.iterdir())
        data.rename(inbox / "data")
        check = wait_until(lambda: (c := watcher_check(port)) and not c["ok"] and c, 30,
                           "the watcher's health check to fail")
        assert "the agent's folder" in check["detail"] and str(data) in check["detail"]
        agent.wait_log("inbox watch lost")
        for _ in range(3):  # several scan intervals: still stopped
            assert not watcher_check(port)["ok"]
        assert set(own) <= {p.name for p in (inbox / "data").iterdir()}
        (inbox / "data").rename(data)
        wait_until(lambda: watcher_check(port)["ok"], 30, "the inbox to be watched again")
        (inbox / "after.txt").write_text("dropped once it was out\n")
        wait_until(lambda: (tmp_path / "done" / "after.txt").is_file(), 60, "after.txt filed")
    finally:
        assert agent.stop() == 0
    assert sorted(j["original_filename"] for j in jobs(config)) == ["after.txt", "before.txt"]
    assert entries(tmp_path / "failed") == []
