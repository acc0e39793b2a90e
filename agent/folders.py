"""An inbox's folders on disk: where files are, who they are, and moving them without loss.

Moves never overwrite: a name taken in the destination gets a ``name (2).ext`` suffix, and a
failure report is only written where neither the file nor the report would replace anything.
Within one file system a move is a hard link of the entry itself (never of what a symbolic link
points to) and an unlink; across file systems it is copy, fsync, link, unlink. The agent's own
temporary files carry a ``.ingest-tmp-<host>-<pid>-`` prefix so recovery can tell them apart
from users' files.
"""

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

from agent.config import InboxSettings, Settings
from agent.errors import AgentError
from agent.names import display_name, safe_filename

REPORT_SUFFIX = ".error.json"
TEMP_PREFIX = ".ingest-tmp-"
_TEMP_NAME = re.compile(r"^\.ingest-tmp-(?P<host>.+)-(?P<pid>\d+)-[0-9a-f]{8}(?:\..*)?$")
_HOST = socket.gethostname().replace("/", "_")

__all__ = ["safe_filename", "FileIdentity", "identify", "move_no_clobber", "InboxFolders"]


@dataclass(frozen=True, slots=True)
class FileIdentity:
    """What makes a dropped file "the same file": its place and its inode's state."""

    inbox: str
    relpath: str
    device: int
    inode: int
    size: int
    mtime_ns: int

    @property
    def key(self) -> str:
        # No device: an NFS share has a different st_dev on each client, the same inode.
        return f"{self.inbox}:{self.relpath}:{self.inode}:{self.size}:{self.mtime_ns}"


def identify(inbox: str, relpath: str, st: os.stat_result) -> FileIdentity:
    return FileIdentity(inbox, relpath, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


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


def _free_names(dest_dir: Path, name: str) -> Iterable[Path]:
    for n in range(1, 10_000):
        yield dest_dir / (name if n == 1 else _numbered(name, n))
    raise AgentError(f"{dest_dir}: no free name for {name} after 10,000 tries")


def move_no_clobber(src: Path, dest_dir: Path, name: str) -> Path:
    """Move ``src`` into ``dest_dir`` under ``name`` or the first free ``name (n)``; return it."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    for candidate in _free_names(dest_dir, name):
        try:
            _link_or_copy(src, candidate)
        except FileExistsError:
            continue
        _unlink_quietly(src)
        return candidate
    raise AssertionError("unreachable")


class NotARegularFileError(AgentError):
    """A path that should hold a file's content is a FIFO, socket, device, folder or link."""


def _link_or_copy(src: Path, dest: Path) -> None:
    """Create ``dest`` as ``src``'s entry without replacing an existing ``dest``.

    The entry itself is linked, never what a symbolic link points to; a copy (another file
    system) is made only of a regular file, opened without following links or blocking.
    """
    try:
        os.link(src, dest, follow_symlinks=False)
        return
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK):
            raise
    # Different file system (or no hard links): copy under a temp name, fsync, then link in.
    fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    tmp = dest.with_name(temp_name("partial"))
    created = False
    try:
        with open(fd, "rb") as fin:
            if not stat.S_ISREG(os.fstat(fin.fileno()).st_mode):
                raise NotARegularFileError(f"{src}: not a regular file; not copied")
            with open(tmp, "xb") as fout:
                created = True
                shutil.copyfileobj(fin, fout, 1024 * 1024)
                fout.flush()
                os.fsync(fout.fileno())
            _copy_times(fin.fileno(), tmp)
        os.link(tmp, dest)
    finally:
        if created:
            _unlink_quietly(tmp)
    _fsync_dir(dest.parent)


def _copy_times(fd: int, dest: Path) -> None:
    st = os.fstat(fd)
    with contextlib.suppress(OSError):
        os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.chmod(dest, stat.S_IMODE(st.st_mode))


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def write_new_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON to ``path`` only if nothing is there (``FileExistsError`` otherwise)."""
    tmp = path.with_name(temp_name("json"))
    with open(tmp, "x", encoding="utf-8", errors="backslashreplace") as fh:
        try:
            json.dump(data, fh, indent=2, ensure_ascii=False, default=str)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
            os.link(tmp, path)
        finally:
            _unlink_quietly(tmp)
    _fsync_dir(path.parent)


class InboxFolders:
    """The four folders of one inbox, and the moves between them."""

    def __init__(self, settings: InboxSettings) -> None:
        assert settings.processing_dir and settings.done_dir and settings.failed_dir
        self.settings = settings
        self.name = settings.name
        self.inbox = settings.path
        self.processing = settings.processing_dir
        self.done = settings.done_dir
        self.failed = settings.failed_dir

    def all_dirs(self) -> list[Path]:
        return [self.inbox, self.processing, self.done, self.failed]

    def ensure(self) -> list[str]:
        """Create missing folders; return one line per problem (empty when all is well)."""
        problems = []
        for folder in self.all_dirs():
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                problems.append(f"inbox {self.name}: cannot create {folder}: {exc.strerror}")
                continue
            if not folder.is_dir():
                problems.append(f"inbox {self.name}: {folder} is not a folder")
            elif not os.access(folder, os.R_OK | os.W_OK | os.X_OK):
                problems.append(f"inbox {self.name}: {folder} is not readable and writable")
        return problems

    def same_filesystem(self) -> bool:
        """Whether moves out of the inbox are renames (else copy + fsync + unlink)."""
        try:
            devices = {folder.stat().st_dev for folder in self.all_dirs()}
        except OSError:
            return False
        return len(devices) == 1

    def relative(self, path: Path) -> str | None:
        """``path`` relative to the inbox, or None if it resolves outside it."""
        try:
            real = Path(os.path.realpath(path))
            root = Path(os.path.realpath(self.inbox))
        except OSError:
            return None
        if real == root or root not in real.parents:
            return None
        return real.relative_to(root).as_posix()

    def processing_name(self, job_id: str, original: str) -> str:
        """``<job_id>__<name>``, as valid UTF-8 (undecodable bytes shown as ``\\xff``), so every
        parser can open it; the name in done/ or failed/ keeps the original bytes."""
        return f"{job_id}__{display_name(safe_filename(original))}"

    def move_to_processing(self, src: Path, job_id: str, original: str) -> Path:
        return move_no_clobber(src, self.processing, self.processing_name(job_id, original))

    def move_to_inbox(self, src: Path, original: str) -> Path:
        """Give a file back to the inbox (an orphan from processing/, or an operator's retry)."""
        return move_no_clobber(src, self.inbox, safe_filename(original))

    def move_to_done(self, src: Path, original: str) -> Path:
        return move_no_clobber(src, self.done, safe_filename(original))

    def move_to_failed(self, src: Path, original: str, report: dict[str, Any]
                       ) -> tuple[Path, Path]:
        """Move to failed/ and write ``<name>.error.json`` beside it; return both paths.

        Neither ever replaces a file: the name chosen is the first whose report name is free
        too, and a report name taken meanwhile gets the job id in it.
        """
        self.failed.mkdir(parents=True, exist_ok=True)
        for candidate in _free_names(self.failed, safe_filename(original)):
            report_path = candidate.with_name(candidate.name + REPORT_SUFFIX)
            if os.path.lexists(report_path):
                continue
            try:
                _link_or_copy(src, candidate)
            except FileExistsError:
                continue
            _unlink_quietly(src)
            try:
                write_new_json(report_path, report)
            except FileExistsError:
                report_path = candidate.with_name(
                    f"{candidate.name}.{str(report.get('job_id', 'job'))[:12]}{REPORT_SUFFIX}")
                write_new_json(report_path, report)
            return candidate, report_path
        raise AssertionError("unreachable")

    def remove_stale_temp_files(self, pid_alive: Any) -> list[Path]:
        """Delete the agent's own temp files (uploads, copies, reports) left by a dead process."""
        removed = []
        for folder in self.all_dirs():
            try:
                names = [e.name for e in os.scandir(folder) if e.name.startswith(TEMP_PREFIX)]
            except OSError:
                continue
            for name in names:
                if stale_agent_temp(name, pid_alive):
                    _unlink_quietly(folder / name)
                    removed.append(folder / name)
        return removed


def build_inboxes(settings: Settings) -> list[InboxFolders]:
    return [InboxFolders(box) for box in settings.inbox]


def locate(path: Path, inboxes: Iterable[InboxFolders]) -> tuple[InboxFolders, str] | None:
    """The inbox that holds ``path`` (after resolving links) and the path relative to it."""
    for box in inboxes:
        rel = box.relative(path)
        if rel is not None:
            return box, rel
    return None


def is_regular_file(st: os.stat_result) -> bool:
    return stat.S_ISREG(st.st_mode)


def file_kind(mode: int) -> str:
    """What a non-regular entry is, in words for a log line or a failure reason."""
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISLNK(mode):
        return "symbolic link"
    return "regular file" if stat.S_ISREG(mode) else "special file"


def special_entry(path: Path) -> str | None:
    """None if ``path`` is a regular file; else what it is (checked without following a link
    or blocking on a FIFO). Raises ``OSError`` if it cannot be looked at."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link"
        if exc.errno in (errno.ENXIO, errno.EOPNOTSUPP):  # a socket, or a FIFO without writer
            return file_kind(os.lstat(path).st_mode)
        raise
    try:
        mode = os.fstat(fd).st_mode
    finally:
        os.close(fd)
    return None if stat.S_ISREG(mode) else file_kind(mode)
