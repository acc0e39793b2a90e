"""The ``ingest-agent`` commands: a thin layer over the library; heavy imports stay inside
commands. The group, its context and the printing helpers are in ``base``; ``search`` is in
``search_command`` (imported here so it is registered)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from agent.errors import AgentError
from agent.files.names import display_name
from agent.terminal import terminal_text

if TYPE_CHECKING:
    from agent.config.settings import Settings
    from agent.files.folders import InboxFolders
    from agent.queue import Job, JobQueue

import agent.cli.search_command  # noqa: F401 - registers the search command
from agent.cli.base import Context, _age, _print_json, _say, _when, cli, pass_ctx


@cli.command()
@pass_ctx
def check(ctx: Context) -> None:
    """Validate the config and say what `run` would create; check permissions and databases."""
    from agent.ops.preflight import preflight

    found = preflight(ctx.settings)
    for line in found.notes:
        _say(f"ok       {line}")
    for line in found.problems:
        _say(f"problem  {line}", err=True)
    if found.problems:
        raise AgentError(f"{len(found.problems)} problem(s) found")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@pass_ctx
def status(ctx: Context, as_json: bool) -> None:
    """Show jobs per status, the backlog, the oldest queued job and the health checks."""
    from agent.ops.health import HealthChecker

    ctx.say_which_config()
    settings = ctx.settings
    with ctx.queue(readonly=True) as q:
        stats = q.stats()
        checks = HealthChecker(q, settings.agent.data_dir, settings.health,
                               read_only=True).checks()
    agent = _running_agent_readiness(settings)
    data = {
        "config": str(settings.source) if settings.source else None,
        "counts": {str(k): v for k, v in stats.counts.items()},
        "backlog": {"due": stats.due, "waiting_retry": stats.waiting_retry},
        "oldest_queued_age_seconds": stats.oldest_queued_age,
        "expired_leases": stats.expired_leases,
        "checks": [c.to_dict() for c in checks],
        "agent": agent,
    }
    if as_json:
        _print_json(data)
        return
    for status, n in stats.counts.items():
        _say(f"{status:<12}{n:>10}")
    _say(f"{'due':<12}{stats.due:>10}")
    _say(f"{'retry-wait':<12}{stats.waiting_retry:>10}")
    _say(f"oldest queued job: {_age(stats.oldest_queued_age)}")
    if stats.expired_leases:
        _say(f"jobs past their lease: {stats.expired_leases}")
    _say("")
    rows = [("ok" if c.ok else "FAIL", c.name, c.detail) for c in checks]
    if not agent["reachable"]:
        rows.append(("-", "agent", agent["detail"]))
    rows += [("ok" if c["ok"] else "FAIL", c["name"], c["detail"]) for c in agent.get("checks", [])
             if c["name"].startswith(("watcher", "worker"))]
    _table(rows)


def _table(rows: Sequence[tuple[str, ...]], header: tuple[str, ...] | None = None) -> None:
    """Columns padded to their widest cell, two spaces apart; the last column runs free."""
    everything = ([header] if header else []) + list(rows)
    if not everything:
        return
    widths = [max(len(r[i]) for r in everything) for i in range(len(everything[0]) - 1)]
    for row in everything:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        _say("  ".join([*cells, row[-1]]).rstrip())


def _running_agent_readiness(settings: Settings) -> dict[str, Any]:
    """The running agent's own /readyz (watchers, worker), if the agent answering on the
    configured port is this config's agent (same host and data folder)."""
    import urllib.error
    import urllib.request

    from agent.identity import agent_id

    if not settings.metrics.enabled:
        return {"reachable": False, "detail": "metrics server disabled: watcher and worker "
                "state unknown"}
    host = settings.metrics.host if settings.metrics.host not in ("0.0.0.0", "::") else "127.0.0.1"
    url = f"http://{host}:{settings.metrics.port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            body = json.load(response)
    except urllib.error.HTTPError as err:
        body = json.load(err)
    except (OSError, ValueError):
        return {"reachable": False, "detail": f"no agent answering at {url} (not running?)"}
    theirs = body.get("agent") or {}
    if theirs.get("id") != agent_id(settings.agent.data_dir):
        return {"reachable": False, "detail": f"the agent answering at {url} is another "
                f"config's (data_dir {theirs.get('data_dir', 'unknown')})"}
    return {"reachable": True, "ready": body.get("status") == "ready",
            "checks": body.get("checks", [])}


JOB_HEADER = ("JOB", "STATUS", "DONE", "INBOX", "UPDATED", "FILE", "MESSAGE")


def _job_row(job: Job) -> tuple[str, ...]:
    from agent.processing.job_view import shown_progress, shown_status

    name = display_name(job.original_filename or Path(job.file_path).name)
    return (job.job_id[:12], shown_status(job), shown_progress(job), job.inbox or "-",
            _when(job.updated_at), name, job.message or "")


@cli.command()
@click.option("--status", "status_filter", type=click.Choice(
    ["queued", "processing", "completed", "failed", "timeout"]), help="Only jobs in this status.")
@click.option("--inbox", help="Only jobs of this inbox.")
@click.option("--name", help="Only jobs whose file name contains this (any case).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000),
              help="How many jobs, newest first.")
@click.option("--all", "show_all", is_flag=True, help="Every matching job (no --limit).")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@pass_ctx
def jobs(ctx: Context, status_filter: str | None, inbox: str | None, name: str | None,
         limit: int, show_all: bool, as_json: bool) -> None:
    """List jobs, newest first (a job id's first characters, or its file name, is enough for
    `job`)."""
    from agent.queue import JobFilter, JobStatus

    ctx.say_which_config()
    where = JobFilter(JobStatus(status_filter) if status_filter else None, inbox, name or None)
    with ctx.queue(readonly=True) as q:
        found, more = _jobs_page(q, where, None if show_all else limit)
        total = q.count_jobs(where) if more else len(found)
    if as_json:
        _print_json([j.to_dict() for j in found])
        return
    if not found:
        _say("no jobs")
        return
    _table([_job_row(j) for j in found], JOB_HEADER)
    if more:
        _say(f"{len(found)} of {total} shown (--limit N, --all)")


def _jobs_page(q: JobQueue, where: Any, limit: int | None) -> tuple[list[Job], bool]:
    """Up to ``limit`` jobs (every one when None), newest first, and whether more exist."""
    found: list[Job] = []
    cursor: str | None = None
    while True:
        want = 1000 if limit is None else min(1000, limit - len(found))
        page = q.page_jobs(where, limit=want, cursor=cursor)
        found += page.jobs
        cursor = page.next_cursor
        if cursor is None:
            return found, False
        if limit is not None and len(found) >= limit:
            return found, True


@cli.command()
@click.argument("job_id", metavar="JOB")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@pass_ctx
def job(ctx: Context, job_id: str, as_json: bool) -> None:
    """Show one job in full: its id, a unique prefix of it (at least 4 characters), or its
    file name (several matches are listed)."""
    from agent.processing.job_view import (
        current_location,
        paused_times,
        shown_progress,
        shown_status,
        stage_times,
    )

    ctx.say_which_config()
    with ctx.queue(readonly=True) as q:
        found = _find_job(q, job_id)
    data = found.to_dict()
    from agent.files.folders import build_inboxes

    data["location"] = current_location(found, build_inboxes(ctx.settings))
    if as_json:
        _print_json(data)
        return
    data["status"] = shown_status(found)
    data["progress"] = shown_progress(found)
    metadata = data.pop("metadata")
    for key in ("document_id", "chunks", "mime", "ocr_pages"):
        if metadata.get(key) is not None:
            data[key] = metadata[key]
    data["paused"] = _times(paused_times(found))
    data["stages"] = "  ".join(f"{stage} {seconds:.2f} s"
                               for stage, seconds in stage_times(found).items()) or "-"
    data["warnings"] = "; ".join(data["warnings"]) or "-"
    for key, value in data.items():
        if key.endswith("_at") or key == "run_after":
            value = _when(value)
        _say(f"{key:<18}{'-' if value is None else value}")
    history = metadata.get("history") or []
    if history:
        _say("")
        _table([(str(a.get("attempt", "-")), a.get("at", "-"), a.get("stage") or "-",
                 a.get("error_type") or "-", a.get("error") or "") for a in history],
               ("ATTEMPT", "AT", "STAGE", "ERROR", "MESSAGE"))


def _times(n: int) -> str:
    return "never" if n == 0 else "once" if n == 1 else f"{n} times"


def _find_job(q: JobQueue, wanted: str) -> Job:
    """The job ``wanted`` names (id, unique prefix or file name); several are listed first."""
    from agent.errors import AmbiguousJobError
    from agent.queue.refs import find_job

    try:
        return find_job(q, wanted)
    except AmbiguousJobError as exc:
        _table([_job_row(q.get_job_status(job_id)) for job_id in exc.job_ids], JOB_HEADER)
        raise


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@pass_ctx
def enqueue(ctx: Context, paths: tuple[Path, ...]) -> None:
    """Queue files that already sit in a configured inbox (as if the watcher had seen them)."""
    from agent.cli.progress import WorkProgress
    from agent.files.folders import build_inboxes

    inboxes = build_inboxes(ctx.settings)
    failures = 0
    # Off a terminal each file's own line is the progress; on one, a bar under those lines.
    with ctx.queue() as q, WorkProgress("enqueue", "file", lines=False) as shown:
        shown.start(len(paths))
        for n, path in enumerate(paths, 1):
            line, ok = _enqueue_one(q, inboxes, path)
            shown.say(terminal_text(line), err=not ok)
            failures += not ok
            shown.step(n, display_name(path.name))
    if failures:
        raise AgentError(f"{failures} of {len(paths)} path(s) not queued")


def _enqueue_one(q: JobQueue, inboxes: list[InboxFolders], path: Path) -> tuple[str, bool]:
    """Queue one file as the watcher would; the line to print, and whether it was queued."""
    from agent.files.folders import identify, is_regular_file, locate

    where = locate(path, inboxes)
    if where is None:
        return f"skipped  {path}: not inside a configured inbox", False
    box, rel = where
    try:
        st = path.stat()
    except OSError as exc:
        return f"skipped  {path}: {exc.strerror}", False
    if not is_regular_file(st):
        return f"skipped  {path}: not a regular file", False
    job = q.enqueue_job(str(box.inbox / rel), Path(rel).name,
                        {"source": "cli", "size": st.st_size}, inbox=box.name,
                        content_key=identify(box.name, rel, st).key)
    return f"{job.job_id}  {job.status}  {display_name(str(path))}", True


@cli.command()
@click.option("--drain", is_flag=True,
              help="Process what is in the inboxes and the queue, then exit.")
@click.option("--pipeline", "factory", default="agent.pipeline:build_pipeline", hidden=True,
              help="module:function building the pipeline (tests and benchmarks).")
@pass_ctx
def run(ctx: Context, drain: bool, factory: str) -> None:
    """Run the agent in the foreground: watch the inboxes and process every file."""
    from agent.logs import configure_logging
    from agent.service import Agent

    settings = ctx.settings
    configure_logging(settings.agent.log_level, settings.agent.log_format)
    agent = Agent(settings, factory=factory)
    agent.install_signal_handlers()
    sys.exit(agent.run(drain=drain))


@cli.command()
@click.argument("jobs_named", metavar="JOB...", nargs=-1)
@click.option("--all-failed", is_flag=True, help="Retry every failed and timed-out job.")
@pass_ctx
def retry(ctx: Context, jobs_named: tuple[str, ...], all_failed: bool) -> None:
    """Move failed jobs' files back and queue them again with a fresh retry budget (name each
    job by its id, a unique prefix of it, or its file name, as for `job`)."""
    from agent.cli.progress import WorkProgress
    from agent.files.folder_record import pinned_inboxes
    from agent.processing.retry import retry_failed_job

    if not jobs_named and not all_failed:
        raise AgentError("name jobs (id, id prefix or file name) or use --all-failed")
    boxes = pinned_inboxes(ctx.settings)
    refused = 0
    with ctx.queue() as q:
        ids: list[str] = []
        for wanted in jobs_named:
            try:
                ids.append(_find_job(q, wanted).job_id)
            except AgentError as exc:
                _say(f"ingest-agent: {exc}", err=True)
                refused += 1
        if all_failed:
            ids += [j.job_id for status in ("failed", "timeout")
                    for j in q.list_jobs(status=status, limit=1_000_000)]
        with WorkProgress("retry", "job", lines=False) as shown:
            shown.start(len(ids))
            for n, job_id in enumerate(ids, 1):
                try:
                    job = retry_failed_job(q, boxes, job_id)
                except AgentError as exc:
                    shown.say(terminal_text(f"ingest-agent: {job_id[:12]}: {exc}"), err=True)
                    refused += 1
                else:
                    name = display_name(job.original_filename or job.file_path)
                    shown.say(terminal_text(f"{job.job_id}  {job.status}  {name}"))
                shown.step(n, job_id[:12])
    if refused:
        raise AgentError(f"{refused} job(s) not retried")


@cli.command()
@click.option("--older-than", "older_than", default="30d", show_default=True,
              help="Age of finished jobs to delete: 30d, 12h, 90m …")
@click.option("--done-files", is_flag=True, help="Also delete those jobs' files in done/.")
@pass_ctx
def purge(ctx: Context, older_than: str, done_files: bool) -> None:
    """Delete finished jobs older than a given age (and, if asked, their done/ files)."""
    from agent.ops.maintenance import parse_age
    from agent.ops.maintenance import purge as purge_jobs

    seconds = parse_age(older_than)
    with ctx.queue() as q:
        jobs_deleted, files_deleted = purge_jobs(q, seconds, done_files=done_files)
    _say(f"deleted {jobs_deleted} job(s)"
               + (f" and {files_deleted} file(s) in done/" if done_files else ""))


@cli.command()
@pass_ctx
def vacuum(ctx: Context) -> None:
    """Give the space of deleted jobs back to the file system (VACUUM the queue)."""
    if ctx.settings.queue.backend != "sqlite":
        raise AgentError("vacuum applies to the SQLite queue; Redis frees memory on its own")
    with ctx.queue() as q:
        before = ctx.settings.queue_path.stat().st_size
        q.vacuum()  # type: ignore[attr-defined]
        after = ctx.settings.queue_path.stat().st_size
    _say(f"queue database {before / 2**20:.1f} MiB -> {after / 2**20:.1f} MiB")


@cli.command()
@click.argument("dest", type=click.Path(path_type=Path))
@pass_ctx
def backup(ctx: Context, dest: Path) -> None:
    """Copy the queue and the index into the folder DEST while the agent runs."""
    from agent.ops.maintenance import backup as backup_databases

    if ctx.settings.queue.backend != "sqlite":
        raise AgentError("backup copies the SQLite queue and index; back up Redis with its AOF "
                         "or BGSAVE and Postgres with pg_dump")
    with ctx.queue() as q:
        written = backup_databases(ctx.settings, q, dest)
    for path in written:
        _say(f"wrote {path}")


@cli.command()
@pass_ctx
def reindex(ctx: Context) -> None:
    """Re-embed every indexed document from its file in done/ (after a model change), with a
    progress bar (progress lines when the output is not a terminal)."""
    from agent.cli.progress import WorkProgress
    from agent.ops.maintenance import reindex as reindex_all

    with WorkProgress("reindex", "document") as shown:

        def progress(n: int, total: int, name: str) -> None:
            if n == 0:
                shown.start(total, name)
            else:
                shown.step(n, display_name(name))

        done, skipped = reindex_all(ctx.settings, progress)
    _say(f"re-embedded {done} document(s); {skipped} skipped (file no longer in done/)")


def _config_after_the_command(ctx: click.Context, _param: click.Parameter,
                              value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(Context).config_path = value


# `ingest-agent status -c x.toml` as well as `ingest-agent -c x.toml status`: people type both.
for _command in cli.commands.values():
    _command.params.insert(0, click.Option(
        ["--config", "-c"], metavar="PATH", expose_value=False, is_eager=True,
        callback=_config_after_the_command, help="TOML config file (also accepted before the "
        "command; default: $INGEST_AGENT_CONFIG, ./ingest-agent.toml, ./config.toml)."))

