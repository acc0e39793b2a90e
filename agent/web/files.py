"""Which original file a download may send: one the agent filed in done/ or failed/.

The path comes from the agent's own records (the job's metadata, the document's location),
never from the client, and the file is opened through the done/ or failed/ folder the agent
pinned at start, without following a link: a folder swapped for a link, or a link put in
its place, sends nothing. The open descriptor is what is sent, so nothing can be swapped
between the check and the download.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from agent.files.folders import InboxFolders
from agent.queue.base import Job

BLOCK = 256 * 1024


@dataclass(slots=True)
class Original:
    """An original file opened for sending; ``blocks()`` reads it and closes it."""

    fd: int
    size: int

    def blocks(self) -> Iterator[bytes]:
        try:
            while block := os.read(self.fd, BLOCK):
                yield block
        finally:
            self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _open(box: InboxFolders, recorded: object, folders: tuple[Path, ...]) -> Original | None:
    if not isinstance(recorded, str) or not recorded:
        return None
    fd = box.open_filed(Path(recorded), folders)
    return None if fd is None else Original(fd, os.fstat(fd).st_size)


def open_job_original(job: Job, boxes: Mapping[str, InboxFolders]) -> Original | None:
    """The job's file, opened, if it is filed in its inbox's done/ or failed/ folder."""
    box = boxes.get(job.inbox or "")
    if box is None:
        return None
    record = job.record
    for filed in (record.done_path, record.failed_path):
        found = _open(box, filed, (box.done, box.failed))
        if found is not None:
            return found
    return None


def open_document_original(location: str | None, inbox: str | None,
                           boxes: Mapping[str, InboxFolders]) -> Original | None:
    """The indexed document's original, opened, if it is in its inbox's done/ folder."""
    box = boxes.get(inbox or "")
    return None if box is None else _open(box, location, (box.done,))


def can_send(found: Original | None) -> bool:
    """Whether a download link should be shown (the descriptor is not kept)."""
    if found is None:
        return False
    found.close()
    return True


def content_disposition(name: str) -> str:
    """An attachment header for ``name`` (RFC 6266: plain when it is ASCII, else UTF-8)."""
    name = name.replace('"', "'")
    quoted = quote(name)
    if quoted != name:
        return f"attachment; filename*=utf-8''{quoted}"
    return f'attachment; filename="{name}"'
