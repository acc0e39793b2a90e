"""The ingest-agent command: help everywhere, one-line errors, and commands over real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from agent.cli import cli
from tests.helpers import agent_config, free_port


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return agent_config(tmp_path, inbox={"name": "docs", "path": "inbox"},
                        agent={"log_format": "console"}, metrics={"port": free_port()})


def run(*args: str) -> click.testing.Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _commands() -> list[str]:
    return sorted(cli.commands)


@pytest.mark.parametrize("command", _commands())
def test_every_command_has_help_text(command: str) -> None:
    """`ingest-agent COMMAND --help` works and says what the command does."""
    result = run(command, "--help")
    assert result.exit_code == 0
    assert cli.commands[command].help, f"{command} has no docstring"
    assert cli.commands[command].help.split("\n")[0] in " ".join(result.output.split())


def test_top_level_help_lists_commands() -> None:
    """`ingest-agent --help` names every command."""
    result = run("--help")
    assert result.exit_code == 0
    for command in _commands():
        assert command in result.output


def test_check_lists_what_run_would_create_and_creates_nothing(config: Path) -> None:
    """check names every missing folder and the queue it would create, and creates none."""
    before = sorted(config.parent.iterdir())
    result = run("--config", str(config), "check")
    assert result.exit_code == 0, result.output
    base = config.parent
    for folder in ("inbox", "processing", "done", "failed", "data"):
        assert f"would create {base / folder}" in result.output
    assert f"queue: would create {base / 'data' / 'queue.db'}" in result.output
    assert "web page: http://127.0.0.1:<a free port, logged at start>/ for anyone on this " \
        "machine" in result.output
    assert sorted(config.parent.iterdir()) == before


def test_check_reports_unwritable_folder(config: Path) -> None:
    """A file where a folder should be is named, and check exits 1."""
    (config.parent / "done").write_text("a file where a folder should be")
    result = CliRunner().invoke(cli, ["--config", str(config), "check"])
    assert result.exit_code == 1
    assert "done is not a folder" in result.output and "problem" in result.output


def test_bad_config_is_one_line_without_traceback(tmp_path: Path) -> None:
    """A config error prints 'ingest-agent: file: key: reason' and exits 1."""
    bad = tmp_path / "bad.toml"
    bad.write_text("[queue]\nmax_retries = -1\n")
    proc = subprocess.run(
        [sys.executable, "-m", "agent", "--config", str(bad), "status"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"ingest-agent: {bad}: queue.max_retries: must be ≥ 0"
    assert "Traceback" not in proc.stderr


def test_enqueue_jobs_job_and_status(config: Path) -> None:
    """A file in the inbox is queued once; jobs, job and status show it."""
    dropped = config.parent / "inbox" / "report.txt"
    dropped.parent.mkdir()
    dropped.write_text("hello")
    first = run("--config", str(config), "enqueue", str(dropped))
    again = run("--config", str(config), "enqueue", str(dropped))
    job_id = first.output.split()[0]
    assert again.output.split()[0] == job_id, "same file, same job"
    listed = json.loads(run("--config", str(config), "jobs", "--json").output)
    assert [j["job_id"] for j in listed] == [job_id]
    assert listed[0]["inbox"] == "docs" and listed[0]["original_filename"] == "report.txt"
    shown = json.loads(run("--config", str(config), "job", job_id, "--json").output)
    assert shown["status"] == "queued" and "lease_token" not in shown
    assert shown["location"] == str(dropped)
    status = json.loads(run("--config", str(config), "status", "--json").output)
    assert status["counts"]["queued"] == 1 and status["backlog"]["due"] == 1
    assert [c["name"] for c in status["checks"]] == ["database", "disk", "backlog", "oldest_job"]
    assert status["agent"]["reachable"] is False
    human = run("--config", str(config), "status").output
    assert "queued" in human and "oldest queued job" in human
    assert "ok  database" in human


def test_enqueue_refuses_paths_outside_inboxes(config: Path, tmp_path: Path) -> None:
    """A file outside every inbox (or a link escaping it) is not queued."""
    (config.parent / "inbox").mkdir()
    outside = tmp_path / "secret.txt"
    outside.write_text("x")
    link = config.parent / "inbox" / "link.txt"
    link.symlink_to(outside)
    result = CliRunner().invoke(cli, ["--config", str(config), "enqueue", str(outside), str(link)])
    assert result.exit_code == 1
    assert result.output.count("not inside a configured inbox") == 2


def test_unknown_job_is_one_line(config: Path) -> None:
    """`job` with a name that is neither an id nor a file name exits 1 with it named."""
    dropped = config.parent / "inbox" / "a.txt"
    dropped.parent.mkdir()
    dropped.write_text("x")
    run("--config", str(config), "enqueue", str(dropped))
    result = CliRunner().invoke(cli, ["--config", str(config), "job", "nope"])
    assert result.exit_code == 1
    assert result.output == "ingest-agent: no job has the id or file name 'nope'\n"


def test_job_is_found_by_its_file_name_and_several_matches_are_listed(config: Path) -> None:
    """`job report.pdf` shows that file's job; a name several jobs match lists them all and
    exits 1 asking for an id; an exact name wins over names that merely contain it."""
    inbox = config.parent / "inbox"
    inbox.mkdir()
    for name in ("report.pdf", "report.pdf.bak", "minutes-1.txt", "minutes-2.txt"):
        (inbox / name).write_text(name)
        run("--config", str(config), "enqueue", str(inbox / name))
    one = CliRunner().invoke(cli, ["--config", str(config), "job", "report.pdf", "--json"])
    assert one.exit_code == 0, one.output
    assert json.loads(one.output)["original_filename"] == "report.pdf"
    several = CliRunner().invoke(cli, ["--config", str(config), "job", "MINUTES"])
    assert several.exit_code == 1
    assert "minutes-1.txt" in several.output and "minutes-2.txt" in several.output
    assert "2 jobs match 'MINUTES': give one's id" in several.output


def test_jobs_says_how_many_more_exist(config: Path) -> None:
    """`jobs --limit 3` over 7 jobs shows 3 and says "3 of 7 shown"; --all shows all 7 and
    says nothing more; failed jobs show their stage, not a percentage."""
    from agent.config.settings import load_config
    from agent.queue import open_queue

    inbox = config.parent / "inbox"
    inbox.mkdir()
    for n in range(7):
        (inbox / f"f{n}.txt").write_text(str(n))
        run("--config", str(config), "enqueue", str(inbox / f"f{n}.txt"))
    with open_queue(load_config(config, environ={})) as q:
        claimed = q.get_next_job()
        assert claimed is not None
        q.update_job_status(claimed.job_id, "failed", message="no text found",
                            metadata={"stage": "extract"}, lease_token=claimed.lease_token)
    few = CliRunner().invoke(cli, ["--config", str(config), "jobs", "--limit", "3"])
    assert few.exit_code == 0 and len(few.output.splitlines()) == 1 + 3 + 1
    assert few.output.splitlines()[-1] == "3 of 7 shown (--limit N, --all)"
    every = CliRunner().invoke(cli, ["--config", str(config), "jobs", "--all"])
    rows = every.output.splitlines()
    assert len(rows) == 1 + 7 and "shown" not in every.output
    failed_row = next(r for r in rows if "failed" in r)
    assert "extract" in failed_row.split() and "%" not in failed_row.split()[2]


def test_cli_does_not_import_heavy_libraries() -> None:
    """status/check/--help stay fast: fastembed and onnxruntime are not imported by the CLI."""
    code = (
        "import sys; from agent.cli import cli; import agent.queue.sqlite, agent.files.folders;"
        "heavy = [m for m in ('fastembed', 'onnxruntime', 'pypdfium2', 'docx', 'magic') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_sqlite_only_commands_explain_themselves_on_redis(tmp_path: Path) -> None:
    """vacuum and backup on a Redis-backed config exit 1 with a one-line reason."""
    config = tmp_path / "redis.toml"
    config.write_text('[queue]\nbackend = "redis"\nredis_url = "redis://127.0.0.1:1/0"\n')
    for command in (["vacuum"], ["backup", str(tmp_path / "bk")]):
        result = CliRunner().invoke(cli, ["--config", str(config), *command])
        assert result.exit_code == 1
        assert "Redis" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("argv, expected", [
    (["search", "csv files"], {"query": "csv files", "k": 5, "chunks": False, "json": False}),
    (["-c", "a.toml", "search", "-k", "3", "--mode", "lexical", "--json", "os.replace"],
     {"config": "a.toml", "k": 3, "mode": "lexical", "json": True, "query": "os.replace"}),
    (["search", "q", "--config=b.toml", "--type", "pdf", "--type=md", "--chunks",
      "--path", "*.pdf", "--inbox", "docs"],
     {"config": "b.toml", "types": ["pdf", "md"], "chunks": True, "path": "*.pdf",
      "inbox": "docs"}),
    (["search", "--", "--starts-with-dashes"], {"query": "--starts-with-dashes"}),
    (["search", "q", "--after", "2026-11-30", "--before", "1800000000"],
     {"before": 1800000000.0}),
])
def test_quick_search_parses_the_common_forms(argv: list[str], expected: dict[str, object]
                                              ) -> None:
    """The quick path (no click, no pydantic) reads the options the full command takes."""
    from agent.search.quick import parse_search

    parsed = parse_search(argv)
    assert parsed is not None
    assert {key: parsed[key] for key in expected} == expected


@pytest.mark.parametrize("argv", [
    ["search", "--help"], ["search"], ["search", "  "], ["search", "q", "-k", "zero"],
    ["search", "q", "--mode", "fuzzy"], ["search", "q", "--unknown"], ["status"],
    ["search", "q", "-k"], ["search", "a", "b"], ["search", "q", "--after", "yesterday"],
])
def test_quick_search_leaves_everything_else_to_the_full_cli(argv: list[str]) -> None:
    """Help, other commands and anything malformed go to click, which reports it properly."""
    from agent.search.quick import parse_search

    assert parse_search(argv) is None


@pytest.mark.parametrize("data_dir, env", [
    (None, {}), ("data", {}), ("/var/lib/x", {}), ("~/ingest", {}),
    ("data", {"INGEST_AGENT_AGENT__DATA_DIR": "elsewhere"}),
])
def test_quick_search_finds_the_data_folder_as_the_full_config_does(
        tmp_path: Path, data_dir: str | None, env: dict[str, str]) -> None:
    """The quick path's data folder (where the socket is) equals load_config's, relative
    paths, home folders and environment overrides included."""
    from agent.config.file import data_dir_of
    from agent.config.settings import load_config

    config = tmp_path / "agent.toml"
    config.write_text(f'[agent]\ndata_dir = "{data_dir}"\n' if data_dir else "")
    assert data_dir_of(config, env) == load_config(config, environ=env).agent.data_dir
