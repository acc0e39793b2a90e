"""``ingest-agent search``: a search answered by the running agent, or here when none runs."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from agent.errors import AgentError
from agent.search.output import epoch_of, format_results

if TYPE_CHECKING:
    pass

from agent.cli.base import Context, _print_json, _say, cli, pass_ctx


def _epoch(value: str | None, option: str) -> float | None:
    try:
        return epoch_of(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (2026-11-30, 2026-11-30T14:00) "
                                 "or epoch seconds", param_hint=option) from None


def _search_options(command: Any) -> Any:
    """The search command's options, from the one table the quick path parses with too."""
    from agent.search.options import DEFAULT_K, K_RANGE, MODES, SEARCH_OPTIONS

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
    from agent.search.channel import ask_running_agent

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
    from agent.errors import SearchUsageError
    from agent.search.engine import Searcher, SearchRequest

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
    try:
        return Searcher(settings, readonly=True).answer(search_request).to_dict()
    except SearchUsageError as exc:  # asked of an index this config cannot search, say
        raise click.UsageError(str(exc)) from None


def _print_results(response: dict[str, Any]) -> None:
    _say(format_results(response))
