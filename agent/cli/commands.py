"""The ``ingest-agent`` command: a thin layer over the library; heavy imports stay inside commands."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from agent import __version__
from agent.errors import AgentError
from agent.names import display_name
from agent.search_output import epoch_of, format_results, terminal_text
from agent.search_output import json_text as _json_text

if TYPE_CHECKING:
    from agent.config import Settings
    from agent.queue import Job, JobQueue

class Context:
    """What every command shares: the config path and the lazily loaded settings."""

    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from agent.config import find_config_path, load_config

            self._settings = load_config(find_config_path(self.config_path))
        return self._settings

    def say_which_config(self) -> None:
        """When no config was named (flag or environment), say on stderr which one is used."""
        if self.config_path is None:
            source = self.settings.source
            _say(f"ingest-agent: using {source}" if source else
                       "ingest-agent: no --config given and no ./ingest-agent.toml or "
                       "./config.toml here: using the built-in defaults", err=True)

    @contextmanager
    def queue(self, *, readonly: bool = False) -> Iterator[JobQueue]:
        from agent.queue import open_queue

        q = open_queue(self.settings, readonly=readonly)
        try:
            yield q
        finally:
            q.close()


pass_ctx = click.make_pass_decorator(Context)


class AgentGroup(click.Group):
    """Turns every ``AgentError`` into one line on stderr and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AgentError as exc:
            _say(f"ingest-agent: {exc}", err=True)
            sys.exit(1)


@click.group(cls=AgentGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config", "-c", "config_path", metavar="PATH", envvar="INGEST_AGENT_CONFIG",
    help="TOML config file (default: $INGEST_AGENT_CONFIG, ./ingest-agent.toml, ./config.toml).",
)
@click.version_option(__version__, prog_name="ingest-agent")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Watch inbox folders, queue every file durably, embed it offline and make it searchable."""
    ctx.obj = Context(config_path)


def _say(text: str, err: bool = False) -> None:
    """Print a line for people: text from documents, names and errors may hold terminal control
    sequences (clear the screen, set the title), which are shown escaped, never sent. JSON is
    printed as it is."""
    click.echo(terminal_text(text), err=err)


def _print_json(data: Any) -> None:
    click.echo(_json_text(data))


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.1f}s"


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


@cli.command()
@pass_ctx
def check(ctx: Context) -> None:
    """Validate the config and say what `run` would create; check permissions and databases."""
    from agent.preflight import preflight

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
    from agent.health import HealthChecker

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
    from agent.job_view import shown_progress, shown_status

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
    from agent.job_view import current_location, shown_progress, shown_status

    ctx.say_which_config()
    with ctx.queue(readonly=True) as q:
        found = _find_job(q, job_id)
    data = found.to_dict()
    data["location"] = current_location(ctx.settings, found)
    if as_json:
        _print_json(data)
        return
    data["status"] = shown_status(found)
    data["progress"] = shown_progress(found)
    for key, value in data.items():
        if key.endswith("_at") or key == "run_after":
            value = _when(value)
        elif key == "metadata":
            value = _json_text(value, indent=None)
        _say(f"{key:<18}{value}")


def _find_job(q: JobQueue, wanted: str) -> Job:
    """The job ``wanted`` names: an id or its prefix, else a file name (exact before partial)."""
    from agent.errors import InvalidJobUpdateError, JobNotFoundError
    from agent.queue import JobFilter

    try:
        return q.get_job_status(q.resolve_job_id(wanted.lower()))
    except (JobNotFoundError, InvalidJobUpdateError) as exc:
        by_id_error = exc
    named = q.page_jobs(JobFilter(name=wanted), limit=20).jobs
    exact = [j for j in named if j.original_filename == wanted]
    matches = exact or named
    if len(matches) == 1:
        return matches[0]
    if not matches:
        if isinstance(by_id_error, InvalidJobUpdateError) and "several" in str(by_id_error):
            raise by_id_error
        raise AgentError(f"no job has the id or file name {wanted!r}")
    _table([_job_row(j) for j in matches], JOB_HEADER)
    raise AgentError(f"{len(matches)}{'+' if len(matches) == 20 else ''} jobs match "
                     f"{wanted!r}: give one's id (or a longer part of it)")



@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@pass_ctx
def enqueue(ctx: Context, paths: tuple[Path, ...]) -> None:
    """Queue files that already sit in a configured inbox (as if the watcher had seen them)."""
    from agent.folders import build_inboxes, identify, is_regular_file, locate

    inboxes = build_inboxes(ctx.settings)
    failures = 0
    with ctx.queue() as q:
        for path in paths:
            where = locate(path, inboxes)
            if where is None:
                _say(f"skipped  {path}: not inside a configured inbox", err=True)
                failures += 1
                continue
            box, rel = where
            try:
                st = path.stat()
            except OSError as exc:
                _say(f"skipped  {path}: {exc.strerror}", err=True)
                failures += 1
                continue
            if not is_regular_file(st):
                _say(f"skipped  {path}: not a regular file", err=True)
                failures += 1
                continue
            ident = identify(box.name, rel, st)
            job = q.enqueue_job(
                str(box.inbox / rel), Path(rel).name, {"source": "cli", "size": st.st_size},
                inbox=box.name, content_key=ident.key,
            )
            _say(f"{job.job_id}  {job.status}  {display_name(str(path))}")
    if failures:
        raise AgentError(f"{failures} of {len(paths)} path(s) not queued")


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


def _epoch(value: str | None, option: str) -> float | None:
    try:
        return epoch_of(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (2026-11-30, 2026-11-30T14:00) "
                                 "or epoch seconds", param_hint=option) from None


def _search_options(command: Any) -> Any:
    """The search command's options, from the one table the quick path parses with too."""
    from agent.search_options import DEFAULT_K, K_RANGE, MODES, SEARCH_OPTIONS

    for option in reversed(SEARCH_OPTIONS):
        kwargs: dict[str, Any] = {"help": option.help, "metavar": option.metavar}
        if option.kind == "flag":
            kwargs["is_flag"] = True
        elif option.kind == "multiple":
            kwargs["multiple"] = True
        elif option.kind == "int":
            kwargs.update(type=click.IntRange(*K_RANGE), default=DEFAULT_K)
        elif option.kind == "choice":
            kwargs["type"] = click.Choice(MODES)
        command = click.option(*option.names, option.dest, **kwargs)(command)
    return command


@cli.command()
@click.argument("query")
@_search_options
@pass_ctx
def search(ctx: Context, query: str, **options: Any) -> None:
    """Search the index for the passages that best answer QUERY.

    A running agent answers (it holds the model); otherwise the model is loaded here, which
    takes a few seconds. Exit status 0 with results, 1 when nothing is relevant enough (JSON:
    "answered": false), 2 for a usage error such as an empty query.
    """
    if not query.strip():
        raise click.UsageError("the query is empty: say what to search for")
    request = {"query": query, "k": options["k"], "mode": options["mode"],
               "per_document": not options["chunks"], "all_copies": options["all_copies"],
               "inbox": options["inbox"], "types": list(options["types"]),
               "path": options["path"], "after": _epoch(options["after"], "--after"),
               "before": _epoch(options["before"], "--before")}
    from agent.search_socket import ask_running_agent

    response = ask_running_agent(ctx.config_path, request)
    if response is None:
        response = _search_here(ctx, request)
    if "error" in response:
        if response.get("usage"):
            raise click.UsageError(response["error"])
        raise AgentError(response["error"])
    if options["json"]:
        _print_json(response)
    else:
        _print_results(response)
    if not response["answered"]:
        sys.exit(1)


def _search_here(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    from agent.search import Searcher, SearchRequest, SearchUsageError

    ctx.say_which_config()
    settings = ctx.settings
    if request["inbox"] is not None:
        settings.inbox_by_name(request["inbox"])
    try:
        search_request = SearchRequest.from_dict(request).checked()
    except SearchUsageError as exc:
        raise click.UsageError(str(exc)) from None
    if (search_request.mode or settings.search.mode) != "lexical":
        _say("ingest-agent: no running agent answers for this config; loading the model "
                   "here (a few seconds)", err=True)
    return Searcher(settings, readonly=True).answer(search_request).to_dict()


def _print_results(response: dict[str, Any]) -> None:
    _say(format_results(response))


@cli.command()
@click.argument("job_ids", nargs=-1)
@click.option("--all-failed", is_flag=True, help="Retry every failed and timed-out job.")
@pass_ctx
def retry(ctx: Context, job_ids: tuple[str, ...], all_failed: bool) -> None:
    """Move failed jobs' files back and queue them again with a fresh retry budget."""
    from agent.folders import build_inboxes
    from agent.retry import retry_failed_job

    if not job_ids and not all_failed:
        raise AgentError("name job ids or use --all-failed")
    boxes = {b.name: b for b in build_inboxes(ctx.settings)}
    with ctx.queue() as q:
        ids = list(job_ids)
        if all_failed:
            ids += [j.job_id for status in ("failed", "timeout")
                    for j in q.list_jobs(status=status, limit=1_000_000)]
        for job_id in ids:
            job = retry_failed_job(q, boxes, job_id)
            _say(f"{job.job_id}  {job.status}  "
                       f"{display_name(job.original_filename or job.file_path)}")


@cli.command()
@click.option("--older-than", "older_than", default="30d", show_default=True,
              help="Age of finished jobs to delete: 30d, 12h, 90m …")
@click.option("--done-files", is_flag=True, help="Also delete those jobs' files in done/.")
@pass_ctx
def purge(ctx: Context, older_than: str, done_files: bool) -> None:
    """Delete finished jobs older than a given age (and, if asked, their done/ files)."""
    from agent.maintenance import parse_age
    from agent.maintenance import purge as purge_jobs

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
    from agent.maintenance import backup as backup_databases

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
    """Re-embed every indexed document from its file in done/ (after a model change)."""
    from tqdm import tqdm

    from agent.maintenance import reindex as reindex_all

    tqdm.monitor_interval = 0  # no monitor thread for a short command
    bar = tqdm(unit="doc", disable=None)

    def progress(n: int, total: int, name: str) -> None:
        bar.total = total
        bar.set_postfix_str(name[:40], refresh=False)
        bar.update(1)

    try:
        done, skipped = reindex_all(ctx.settings, progress)
    finally:
        bar.close()
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

