"""Which original file a download may send: one the agent filed in done/ or failed/.

The path comes from the agent's own records (the job's metadata, the document's location),
never from the client, and is sent only if it still resolves inside that inbox's done/ or
failed/ folder and is a regular file (not a link someone put there since).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

from agent.folders import InboxFolders
from agent.queue.base import Job


def _inside(path: Path, folders: Iterable[Path]) -> Path | None:
    try:
        st = os.lstat(path)
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    for folder in folders:
        try:
            if real.is_relative_to(folder.resolve(strict=True)):
                return real
        except (OSError, RuntimeError):
            continue
    return None


def job_original(job: Job, boxes: Mapping[str, InboxFolders]) -> Path | None:
    """The job's file, if it is filed in its inbox's done/ or failed/ folder."""
    box = boxes.get(job.inbox or "")
    if box is None:
        return None
    for key in ("done_path", "failed_path"):
        recorded = job.metadata.get(key)
        if isinstance(recorded, str) and recorded:
            found = _inside(Path(recorded), (box.done, box.failed))
            if found is not None:
                return found
    return None


def document_original(location: str | None, inbox: str | None,
                      boxes: Mapping[str, InboxFolders]) -> Path | None:
    """The indexed document's original, if it is in its inbox's done/ folder."""
    box = boxes.get(inbox or "")
    if not location or box is None:
        return None
    return _inside(Path(location), (box.done,))
