"""What ``ingest-agent check`` probes before the agent runs: the config, the system's libraries
and OCR data, the folders ``run`` would use or create, and the queue — creating nothing. The CLI
only prints what this finds."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from agent.config.settings import Settings


@dataclass
class Findings:
    notes: list[str] = field(default_factory=list)  # what is fine, or would be done
    problems: list[str] = field(default_factory=list)  # what stops ``run``


def preflight(settings: Settings) -> Findings:
    """Every check ``check`` makes, in the order it reports them."""
    from agent.config.settings import anonymous_api_problem
    from agent.ops.system import legacy_office_note, libmagic_problem, ocr_note, ocr_problem

    found = Findings(notes=[f"config: {settings.source or 'built-in defaults'}"])
    found.problems += filter(None, [libmagic_problem(), anonymous_api_problem(settings.api),
                                    ocr_problem(settings.ocr)])
    found.notes += filter(None, [ocr_note(settings.ocr), legacy_office_note()])
    _check_ports(settings, found)
    if not settings.inbox:
        found.problems.append("no [[inbox]] is configured: nothing would be watched")
    _check_folders(settings, found)
    if not found.problems:
        found.notes.append(queue_note(settings))
    return found


def web_note(settings: Settings) -> str:
    """Where the web page will be, and who may open it."""
    api = settings.api
    if not api.enabled:
        return "web page and API: off (api.enabled = false)"
    from agent.config.settings import answering_hosts, is_loopback_host

    if api.token:
        who = "a login with api.token"
    elif is_loopback_host(api.host):
        who = "anyone on this machine (loopback, no token)"
    else:
        who = "anyone who reaches it (no token: api.allow_anonymous)"
    port = api.port or "<a free port, logged at start>"
    hosts = answering_hosts(api)
    named = "any Host" if hosts == ["*"] else "Host " + ", ".join(hosts)
    return (f"web page: http://{api.host}:{port}/ for {who}; the JSON API under /api/v1; "
            f"answers {named} (api.allowed_hosts)")


def _check_ports(settings: Settings, found: Findings) -> None:
    """Try the metrics and web page ports as ``run`` will take them: a taken one names its
    holder and the key that chooses another."""
    from agent.ops.listeners import Port, try_port

    config = str(settings.source or "the config")
    metrics = settings.metrics
    if metrics.enabled:
        refused = try_port(Port("metrics", metrics.host, metrics.port, config))
        if refused is not None:
            found.problems.append(str(refused))
        else:
            port = metrics.port or "<a free port, logged at start>"
            found.notes.append(f"metrics and health: http://{metrics.host}:{port}/metrics")
    api = settings.api
    refused = try_port(Port("api", api.host, api.port, config)) if api.enabled else None
    if refused is None:
        found.notes.append(web_note(settings))
    elif refused.taken and "enabled" not in api.model_fields_set:
        found.notes.append(f"web page: left off by `run` while its port is taken: {refused}")
    else:
        found.problems.append(str(refused))


def _check_folders(settings: Settings, found: Findings) -> None:
    from agent.files.folders import build_inboxes

    boxes = build_inboxes(settings)
    for folder in [settings.agent.data_dir] + [f for b in boxes for f in b.all_dirs()]:
        if folder.is_dir():
            if not os.access(folder, os.R_OK | os.W_OK | os.X_OK):
                found.problems.append(f"{folder} is not readable and writable by this user")
        elif folder.exists():
            found.problems.append(f"{folder} is not a folder")
        else:
            parent = _nearest_existing(folder)
            if os.access(parent, os.W_OK | os.X_OK):
                found.notes.append(f"would create {folder}")
            else:
                found.problems.append(f"cannot create {folder}: {parent} is not writable")
    for box in boxes:
        if box.inbox.is_dir():
            move = "rename" if box.same_filesystem() else "copy + fsync + unlink (other file system)"
            found.notes.append(f"inbox {box.name}: {box.inbox}; moves by {move}")


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def queue_note(settings: Settings) -> str:
    """Open the queue read-only when it exists (creating nothing): it must be usable."""
    if settings.queue.backend == "sqlite" and not settings.queue_path.exists():
        return f"queue: would create {settings.queue_path}"
    from agent.errors import QueueDatabaseError
    from agent.queue import open_queue

    try:
        q = open_queue(settings, readonly=True)
        try:
            q.stats()
        finally:
            q.close()
    except QueueDatabaseError as exc:
        if "older than" not in str(exc):
            raise
        return f"queue: {settings.queue_path} will be upgraded when the agent starts"
    where = settings.queue_path if settings.queue.backend == "sqlite" else settings.queue.redis_url
    return f"queue: {where} ok"
