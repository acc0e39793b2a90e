"""Moving a file without loss and without overwriting: a hard link of the entry and an unlink
within a file system, copy + fsync + link + unlink across them, the first free ``name (n)``
when the name is taken, and JSON written whole or not at all. The agent's own temporary files
carry a ``.ingest-tmp-<host>-<pid>-`` prefix so recovery can tell them apart from users' files."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import shutil
import socket
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.errors import AgentError, NotARegularFileError

TEMP_PREFIX = ".ingest-tmp-"
_TEMP_NAME = re.compile(r"^\.ingest-tmp-(?P<host>.+)-(?P<pid>\d+)-[0-9a-f]{8}(?:\..*)?$")
_HOST = socket.gethostname().replace("/", "_")


def temp_name(kind: str) -> str:
    """A hidden name for one of the agent's own temporary files, unique and attributable."""
    return f"{TEMP_PREFIX}{_HOST}-{os.getpid()}-{secrets.token_hex(4)}.{kind}"


def is_agent_temp(name: str) -> bool:
    return name.startswith(TEMP_PREFIX) and _TEMP_NAME.match(name) is not None


def stale_agent_temp(name: str, pid_alive: Any) -> bool:
    """An agent temp file whose writer (on this host) is gone, or this very process at start."""
    match = _TEMP_NAME.match(name)
    if match is None or match.group("host") != _HOST:
        return False
    pid = int(match.group("pid"))
    return pid == os.getpid() or not pid_alive(pid)


def _numbered(name: str, n: int) -> str:
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        return f"{name} ({n})"
    return f"{stem} ({n}).{ext}"


def free_names(dest_dir: Path, name: str) -> Iterable[Path]:
    for n in range(1, 10_000):
        yield dest_dir / (name if n == 1 else _numbered(name, n))
    raise AgentError(f"{dest_dir}: no free name for {name} after 10,000 tries")


@dataclass(frozen=True, slots=True)
class At:
    """A name inside an open folder (``dir_fd``), or a plain path when ``dir_fd`` is None.

    Working from a pinned folder's descriptor means a folder swapped for a link to somewhere
    else after start is never followed: the name is looked up in the folder that was pinned.
    """

    dir_fd: int | None
    name: str
    shown: Path

    @classmethod
    def path(cls, path: Path) -> At:
        return cls(None, str(path), path)

    def sibling(self, name: str) -> At:
        parent = self.shown.parent / name
        if self.dir_fd is None:
            return At.path(parent)
        return At(self.dir_fd, name, parent)


def move_no_clobber(src: Path, dest_dir: Path, name: str) -> Path:
    """Move ``src`` into ``dest_dir`` under ``name`` or the first free ``name (n)``; return it."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    return move_at(At.path(src), None, dest_dir, name)


def move_at(src: At, dest_fd: int | None, dest_dir: Path, name: str) -> Path:
    for candidate in free_names(dest_dir, name):
        dest = At(dest_fd, candidate.name, candidate) if dest_fd is not None else At.path(candidate)
        try:
            link_or_copy(src, dest)
        except FileExistsError:
            continue
        unlink_quietly(src)
        return candidate
    raise AssertionError("unreachable")


def link_or_copy(src: At, dest: At) -> None:
    """Create ``dest`` as ``src``'s entry without replacing an existing ``dest``.

    The entry itself is linked, never what a symbolic link points to; a copy (another file
    system) is made only of a regular file, opened without following links or blocking.
    """
    try:
        os.link(src.name, dest.name, src_dir_fd=src.dir_fd, dst_dir_fd=dest.dir_fd,
                follow_symlinks=False)
        return
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK):
            raise
    # Different file system (or no hard links): copy under a temp name, fsync, then link in.
    fd = os.open(src.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=src.dir_fd)
    tmp = dest.sibling(temp_name("partial"))
    created = False
    try:
        with open(fd, "rb") as fin:
            st = os.fstat(fin.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise NotARegularFileError(f"{src.shown}: not a regular file; not copied")
            out_fd = os.open(tmp.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                             0o600, dir_fd=tmp.dir_fd)
            created = True
            with open(out_fd, "wb") as fout:
                shutil.copyfileobj(fin, fout, 1024 * 1024)
                fout.flush()
                copy_times(st, fout.fileno())
                os.fsync(fout.fileno())
        os.link(tmp.name, dest.name, src_dir_fd=tmp.dir_fd, dst_dir_fd=dest.dir_fd)
    finally:
        if created:
            unlink_quietly(tmp)
    fsync_dir(dest)


def copy_times(st: os.stat_result, fd: int) -> None:
    with contextlib.suppress(OSError):
        os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.fchmod(fd, stat.S_IMODE(st.st_mode))


def fsync_dir(where: At) -> None:
    if where.dir_fd is not None:
        with contextlib.suppress(OSError):
            os.fsync(where.dir_fd)
        return
    try:
        fd = os.open(where.shown.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def unlink_quietly(where: At | Path) -> None:
    at = where if isinstance(where, At) else At.path(where)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(at.name, dir_fd=at.dir_fd)


def write_new_json(path: Path | At, data: dict[str, Any]) -> None:
    """Write JSON to ``path`` only if nothing is there (``FileExistsError`` otherwise)."""
    dest = path if isinstance(path, At) else At.path(path)
    tmp = dest.sibling(temp_name("json"))
    fd = os.open(tmp.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644,
                 dir_fd=tmp.dir_fd)
    with open(fd, "w", encoding="utf-8", errors="backslashreplace") as fh:
        try:
            json.dump(data, fh, indent=2, ensure_ascii=False, default=str)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
            os.link(tmp.name, dest.name, src_dir_fd=tmp.dir_fd, dst_dir_fd=dest.dir_fd)
        finally:
            unlink_quietly(tmp)
    fsync_dir(dest)
