"""The quick path of ``ingest-agent search`` when an agent runs (``agent.cli.main`` tries it
first).

Asking the running agent over its socket takes a few milliseconds, but importing click and
pydantic would take a quarter of a second. So the common forms of ``ingest-agent search …``
are parsed here with nothing heavy imported, and answered by the agent; anything else — help,
an option this parser does not know, a malformed value, no agent answering — goes to the full
CLI (``agent.cli``), which parses it again and handles it, errors included. Both print results
through ``format_results``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agent.search.options import DEFAULT_K, K_RANGE, MODES, SEARCH_OPTIONS
from agent.search.output import epoch_of, format_results, json_text

VALUE_OPTIONS = {name: o.dest for o in SEARCH_OPTIONS if o.kind != "flag" for name in o.names}
FLAGS = {name: o.dest for o in SEARCH_OPTIONS if o.kind == "flag" for name in o.names}
CONFIG_OPTIONS = ("-c", "--config")


def parse_search(argv: Sequence[str]) -> dict[str, Any] | None:
    """The options of ``[-c CONFIG] search [options] QUERY``, or None to leave it to click."""
    args = list(argv)
    found: dict[str, Any] = {"config": None, "k": DEFAULT_K}
    found.update({o.dest: [] if o.kind == "multiple" else False
                  for o in SEARCH_OPTIONS if o.kind in ("multiple", "flag")})
    query: str | None = None
    seen_command = False
    i = 0
    while i < len(args):
        arg = args[i]
        name, has_inline, inline = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if arg == "search" and not seen_command:
            seen_command = True
        elif arg == "--":
            if not seen_command or query is not None or i + 2 != len(args):
                return None
            query = args[i + 1]
            break
        elif name in CONFIG_OPTIONS or (seen_command and name in VALUE_OPTIONS):
            if has_inline:
                value = inline
            elif i + 1 < len(args):
                i += 1
                value = args[i]
            else:
                return None
            key = "config" if name in CONFIG_OPTIONS else VALUE_OPTIONS[name]
            if isinstance(found.get(key), list):
                found[key].append(value)
            else:
                found[key] = value
        elif seen_command and arg in FLAGS:
            found[FLAGS[arg]] = True
        elif seen_command and not arg.startswith("-") and query is None:
            query = arg
        else:
            return None
        i += 1
    if not seen_command or query is None or not query.strip():
        return None
    try:
        found["k"] = int(found["k"])
        after, before = epoch_of(found.get("after")), epoch_of(found.get("before"))
    except ValueError:
        return None
    if not K_RANGE[0] <= found["k"] <= K_RANGE[1] or found.get("mode") not in (None, *MODES):
        return None
    found.update(query=query, after=after, before=before)
    return found


def request_of(options: dict[str, Any]) -> dict[str, Any]:
    """The search socket's request for parsed options."""
    return {"query": options["query"], "k": options["k"], "mode": options.get("mode"),
            "per_document": not options["chunks"], "all_copies": options["all_copies"],
            "inbox": options.get("inbox"),
            "types": options["types"], "path": options.get("path"),
            "after": options.get("after"), "before": options.get("before")}


def answer_quickly(argv: Sequence[str]) -> int | None:
    """Exit status after answering a search through the running agent, or None when the full
    CLI must handle the command."""
    options = parse_search(argv)
    if options is None:
        return None
    from agent.search.channel import ask_running_agent

    response = ask_running_agent(options["config"], request_of(options))
    if response is None or "error" in response:
        return None  # the full CLI searches itself, or reports the error its usual way
    print(json_text(response) if options["json"] else format_results(response))
    return 0 if response["answered"] else 1

