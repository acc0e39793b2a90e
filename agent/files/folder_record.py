"""Who the agent's folders were at its last run, so a folder replaced while it was stopped is
refused at start rather than adopted (its files ingested, recovery moving them about).

The record is ``folders.json`` in the data folder: each configured folder's path and inode
(not its device number, which an NFS mount may change from boot to boot). A folder replaced
by an *empty* one (a careless ``rm -rf done; mkdir done``) is adopted with a warning: nothing
of anyone else's can be taken from it.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

import structlog

from agent.config.settings import Settings
from agent.errors import AgentError
from agent.files.folders import InboxFolders, PinnedFolder, build_inboxes

RECORD_NAME = "folders.json"
log = structlog.get_logger("agent.files.folders")


def _load(record: Path) -> dict[str, int]:
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        log.warning("the record of the agent's folders is unreadable; starting a new one",
                    file=str(record))
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): v for k, v in data.items() if isinstance(v, int)}


def _is_empty(pin: PinnedFolder) -> bool:
    try:
        with os.scandir(pin.fd) as it:
            return next(it, None) is None
    except OSError:
        return False


def check_folders(pins: Iterable[PinnedFolder], data_dir: Path) -> list[str]:
    """One line per pinned folder that is not the folder the last run used (and not empty);
    when there is none, the record is brought up to date."""
    record = data_dir / RECORD_NAME
    known = _load(record)
    problems = []
    now: dict[str, int] = {}
    for pin in pins:
        key = str(pin.path)
        now[key] = pin.inode
        before = known.get(key)
        if before is None or before == pin.inode:
            continue
        if _is_empty(pin):
            log.warning("a folder was replaced by an empty one while the agent was stopped; "
                        "using the new one", folder=key)
            continue
        problems.append(
            f"{key} is not the folder the agent used last run (inode {before}, now "
            f"{pin.inode}) and it holds files: refused rather than adopted; if you replaced "
            f"it on purpose, delete {record} and start again")
    if not problems and now != known:
        tmp = record.with_name(f".{RECORD_NAME}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(now, indent=1, sort_keys=True), encoding="utf-8")
            os.replace(tmp, record)
        except OSError as exc:
            log.warning("cannot keep the record of the agent's folders", file=str(record),
                        error=exc.strerror)
            with contextlib.suppress(OSError):
                tmp.unlink()
    return problems


def pinned_inboxes(settings: Settings) -> dict[str, InboxFolders]:
    """The configured inboxes with their folders pinned and checked as ``run`` checks them,
    for a command that moves files (``retry``) without a running agent's pins."""
    boxes = {box.name: box for box in build_inboxes(settings)}
    problems = [p for box in boxes.values() for p in box.ensure()]
    if not problems and settings.agent.data_dir.is_dir():
        problems = check_folders([pin for box in boxes.values() for pin in box.pins()],
                                 settings.agent.data_dir)
    if problems:
        for box in boxes.values():
            box.close()
        raise AgentError("; ".join(problems))
    return boxes
