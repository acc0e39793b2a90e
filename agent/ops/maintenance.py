"""Operator maintenance: purge old jobs (and their done/ files), back up, re-embed everything."""

from __future__ import annotations

import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from agent.config.settings import Settings
from agent.errors import AgentError
from agent.queue.base import Job, JobQueue, JobStatus

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 86400, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_age(text: str) -> float:
    """'30d', '12h', '90m', '45s', '2w' (a bare number means days) → seconds."""
    match = _DURATION.match(text)
    if not match:
        raise AgentError(f"not a duration: {text!r} (use e.g. 30d, 12h, 90m)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def purge(queue: JobQueue, older_than: float, *, done_files: bool = False,
          now: float | None = None) -> tuple[int, int]:
    """Delete finished jobs older than ``older_than`` seconds; optionally their done/ files.

    Returns (jobs deleted, files deleted). Only files the agent itself filed in done/ are
    touched (the same inode it filed, not a later file under that name), and failed/ is never
    purged automatically.
    """
    import time

    cutoff = (now if now is not None else time.time()) - older_than
    removed_files = 0
    if done_files:
        for job in _finished_before(queue, cutoff):
            path = job.record.done_path
            if job.status is JobStatus.COMPLETED and path and _is_filed(Path(path), job):
                Path(path).unlink()
                removed_files += 1
    return queue.purge(older_than), removed_files


def _is_filed(path: Path, job: Job) -> bool:
    """``path`` is still the regular file this job filed there."""
    try:
        st = path.lstat()
    except OSError:
        return False
    inode = job.record.done_inode
    return stat.S_ISREG(st.st_mode) and (inode is None or st.st_ino == inode)


def _finished_before(queue: JobQueue, cutoff: float) -> Iterator[Job]:
    for job in queue.list_jobs(status=JobStatus.COMPLETED, limit=10_000_000):
        if job.finished_at is not None and job.finished_at < cutoff:
            yield job


def backup(settings: Settings, queue: JobQueue, dest: Path) -> list[Path]:
    """Online, consistent copies of the queue and the index into the folder ``dest``."""
    import sqlite3

    dest.mkdir(parents=True, exist_ok=True)
    queue_copy = dest / "queue.db"
    index_copy = dest / "index.db"
    for target in (queue_copy, index_copy):
        if target.exists():
            raise AgentError(f"{target}: already exists; choose an empty folder")
    written = [queue.backup(queue_copy)]  # type: ignore[attr-defined]
    if settings.index.backend == "sqlite" and settings.index_path.is_file():
        src = sqlite3.connect(settings.index_path)
        out = sqlite3.connect(index_copy)
        try:
            src.backup(out)
        finally:
            out.close()
            src.close()
        written.append(index_copy)
    return written


def reindex(settings: Settings, progress: Callable[[int, int, str], None]) -> tuple[int, int]:
    """Re-embed every document whose original is still in done/ (e.g. after a model change).
    ``progress(n, total, name)`` is called once before the model loads (n = 0) and after each
    document.

    Returns (re-embedded, skipped because the file is gone).
    """
    from agent.pipeline import IngestPipeline, JobRequest, file_sha256
    from agent.pipeline.store.backends import open_index

    index = open_index(settings)
    rows = index.documents()
    index.close()
    progress(0, len(rows), "loading the model")
    pipeline = IngestPipeline(settings)
    done = skipped = 0
    try:
        for n, (doc_id, job_id, inbox, name, location, sha) in enumerate(rows, 1):
            if not location or not Path(location).is_file() or file_sha256(Path(location)) != sha:
                skipped += 1
            else:
                pipeline.run(JobRequest(job_id or doc_id, location, inbox, name, reindex=True),
                             lambda *_: None)
                pipeline.index.set_location(doc_id, location)
                done += 1
            progress(n, len(rows), name)
    finally:
        pipeline.index.close()
    return done, skipped
