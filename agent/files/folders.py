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
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.config.settings import InboxSettings, Settings
from agent.errors import FolderSwappedError
from agent.files.moves import (
    TEMP_PREFIX,
    At,
    free_names,
    link_or_copy,
    move_at,
    move_no_clobber,
    stale_agent_temp,
    unlink_quietly,
    write_new_json,
)
from agent.files.names import NAME_MAX, display_name, fit_name, safe_filename

REPORT_SUFFIX = ".error.json"

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


@dataclass(slots=True)
class PinnedFolder:
    """A folder opened once at start: its descriptor and the (device, inode) it had."""

    path: Path
    fd: int
    device: int
    inode: int

    @classmethod
    def open(cls, path: Path) -> PinnedFolder:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        st = os.fstat(fd)
        return cls(path, fd, st.st_dev, st.st_ino)

    def problem(self) -> str | None:
        """Why the configured path no longer leads to the pinned folder, or None."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return f"{self.path} is gone"
        except OSError as exc:
            return f"{self.path} cannot be looked at ({exc.strerror})"
        if (st.st_dev, st.st_ino) != (self.device, self.inode):
            what = "a symbolic link to another folder" if os.path.islink(self.path) else \
                "another folder"
            return (f"{self.path} was replaced by {what} since the agent started; "
                    "the agent leaves it alone")
        return None

    def open_parent(self, rel: str) -> tuple[int, str]:
        """The descriptor of ``rel``'s folder, inside this one, and its last name. Every
        sub-folder is opened without following links; the caller closes a descriptor that is
        not ``self.fd``."""
        parts = rel.split("/")
        fd = self.fd
        try:
            for part in parts[:-1]:
                if part in ("", ".", ".."):
                    raise FolderSwappedError(f"{rel!r} leaves {self.path}")
                nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                              dir_fd=fd)
                if fd != self.fd:
                    os.close(fd)
                fd = nxt
        except BaseException:
            if fd != self.fd:
                os.close(fd)
            raise
        return fd, parts[-1]

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1


def _relative_to(path: Path, folder: Path) -> str | None:
    """``path`` below ``folder``, by their names alone (no link is resolved)."""
    prefix = str(folder).rstrip("/") + "/"
    text = str(path)
    return text[len(prefix):] if text.startswith(prefix) and len(text) > len(prefix) else None


class InboxFolders:
    """The four folders of one inbox, and the moves between them.

    ``ensure()`` pins the four folders (opened once, device and inode kept): moves then work
    from those descriptors, and ``problem()`` says when a configured path no longer leads to
    its pinned folder, so a folder swapped for a link never has its files taken.
    """

    def __init__(self, settings: InboxSettings) -> None:
        assert settings.processing_dir and settings.done_dir and settings.failed_dir
        self.settings = settings
        self.name = settings.name
        self.inbox = settings.path
        self.processing = settings.processing_dir
        self.done = settings.done_dir
        self.failed = settings.failed_dir
        self._pins: dict[Path, PinnedFolder] = {}
        self._guarded: list[PinnedFolder] = []

    def all_dirs(self) -> list[Path]:
        return [self.inbox, self.processing, self.done, self.failed]

    def ensure(self) -> list[str]:
        """Create missing folders and pin them; return one line per problem (empty when all
        is well)."""
        problems = []
        for folder in self.all_dirs():
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                problems.append(f"inbox {self.name}: cannot create {folder}: {exc.strerror}")
                continue
            if folder.is_symlink():
                problems.append(f"inbox {self.name}: {folder} is a symbolic link (to "
                                f"{os.path.realpath(folder)}); set the folder itself in the "
                                "config")
            elif not folder.is_dir():
                problems.append(f"inbox {self.name}: {folder} is not a folder")
            elif not os.access(folder, os.R_OK | os.W_OK | os.X_OK):
                problems.append(f"inbox {self.name}: {folder} is not readable and writable")
        if not problems:
            self.pin()
        return problems

    def pin(self) -> None:
        """Open the four folders and keep who they are (again, after a reload)."""
        self.close()
        self._pins = {folder: PinnedFolder.open(folder) for folder in self.all_dirs()}

    def pinned_fd(self, folder: Path) -> int | None:
        pin = self._pins.get(folder)
        return None if pin is None else pin.fd

    def pins(self) -> list[PinnedFolder]:
        return list(self._pins.values())

    def guard(self, folders: Iterable[PinnedFolder]) -> None:
        """The agent's own folders (its data folder, other inboxes' work folders) that must
        never be taken in: while one sits inside this (recursive) inbox, intake stops."""
        self._guarded = [f for f in folders if f.path not in self._pins]

    def is_guarded(self, st: os.stat_result) -> bool:
        """Whether a folder met while walking the inbox is one of the agent's own."""
        return any((g.device, g.inode) == (st.st_dev, st.st_ino) for g in self._guarded)

    def problem(self) -> str | None:
        """Why this inbox must not be touched (a pinned folder was replaced, or one of the
        agent's own folders was moved into it), or None."""
        for pin in self._pins.values():
            found = pin.problem()
            if found is not None:
                return f"inbox {self.name}: {found}"
        if self.settings.recursive and self._guarded:
            return self._intruder()
        return None

    def _intruder(self) -> str | None:
        inbox_pin = self._pins.get(self.inbox)
        if inbox_pin is None:
            return None
        root = _current_path(inbox_pin.fd)
        for folder in self._guarded:
            now_at = _current_path(folder.fd)
            if root and now_at and now_at.startswith(root.rstrip("/") + "/"):
                return (f"inbox {self.name}: the agent's folder {folder.path} is now inside it "
                        f"(at {now_at}); intake stopped until it is moved out")
        return None

    def open_filed(self, path: Path, folders: Iterable[Path]) -> int | None:
        """A read-only descriptor of ``path`` if it is a regular file in one of this inbox's
        pinned ``folders`` (done/, failed/), reached through the folder pinned at start and
        without following a link; None otherwise (also while a folder is swapped)."""
        if self.problem() is not None:
            return None
        for folder in folders:
            pin, rel = self._pins.get(folder), _relative_to(path, folder)
            if pin is None or rel is None:
                continue
            try:
                parent, name = pin.open_parent(rel)
            except (OSError, FolderSwappedError):
                return None
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                             dir_fd=parent)
            except OSError:
                return None
            finally:
                if parent != pin.fd:
                    os.close(parent)
            if stat.S_ISREG(os.fstat(fd).st_mode):
                return fd
            os.close(fd)
            return None
        return None

    def list_processing(self) -> list[Path]:
        """The names in processing/, listed through the folder pinned at start."""
        pin = self._pins.get(self.processing)
        with os.scandir(pin.fd if pin is not None else self.processing) as it:
            return sorted(self.processing / e.name for e in it)

    def close(self) -> None:
        for pin in self._pins.values():
            pin.close()
        self._pins = {}

    def __del__(self) -> None:
        self.close()

    @contextlib.contextmanager
    def _at(self, path: Path) -> Iterator[At]:
        """``path`` as a name under the pinned folder that holds it (a plain path if none)."""
        for folder, pin in self._pins.items():
            rel = _relative_to(path, folder)
            if rel is None:
                continue
            fd, name = pin.open_parent(rel)
            try:
                yield At(fd, name, path)
            finally:
                if fd != pin.fd:
                    os.close(fd)
            return
        yield At.path(path)

    def _dest(self, folder: Path) -> int | None:
        pin = self._pins.get(folder)
        if pin is None:
            folder.mkdir(parents=True, exist_ok=True)
            return None
        return pin.fd

    def move_into(self, src: Path, folder: Path, name: str, *, exact: bool = False) -> Path:
        """Move ``src`` into one of this inbox's folders, never over an existing name (taken:
        the first free ``name (n)``, or ``FileExistsError`` when the name must be ``exact``)."""
        dest_fd = self._dest(folder)
        with self._at(src) as at:
            if not exact:
                return move_at(at, dest_fd, folder, name)
            link_or_copy(at, At(dest_fd, name, folder / name) if dest_fd is not None
                         else At.path(folder / name))
            unlink_quietly(at)
            return folder / name

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
        parser can open it, shortened to fit the file system's name limit (each shown byte
        takes four); the name in done/ or failed/ keeps the original bytes."""
        prefix = f"{job_id}__"
        return prefix + fit_name(display_name(safe_filename(original)),
                                 NAME_MAX - len(prefix.encode("utf-8")))

    def move_to_processing(self, src: Path, job_id: str, original: str) -> Path:
        return self.move_into(src, self.processing, self.processing_name(job_id, original))

    def move_to_inbox(self, src: Path, original: str) -> Path:
        """Give a file back to the inbox (an orphan from processing/, or an operator's retry)."""
        return self.move_into(src, self.inbox, safe_filename(original))

    def move_to_done(self, src: Path, original: str) -> Path:
        return self.move_into(src, self.done, safe_filename(original))

    def move_to_failed(self, src: Path, original: str, report_data: dict[str, Any]
                       ) -> tuple[Path, Path]:
        """Move to failed/ and write ``<name>.error.json`` beside it; return both paths.

        Neither ever replaces a file: the name chosen is the first whose report name is free
        too, and a report name taken meanwhile gets the job id in it.
        """
        failed_fd = self._dest(self.failed)
        with self._at(src) as at:
            for candidate in free_names(self.failed, safe_filename(original)):
                dest = At(failed_fd, candidate.name, candidate) if failed_fd is not None \
                    else At.path(candidate)
                report = dest.sibling(candidate.name + REPORT_SUFFIX)
                if _lexists(report):
                    continue
                try:
                    link_or_copy(at, dest)
                except FileExistsError:
                    continue
                unlink_quietly(at)
                try:
                    write_new_json(report, report_data)
                except FileExistsError:
                    report = dest.sibling(
                        f"{candidate.name}.{str(report_data.get('job_id', 'job'))[:12]}"
                        f"{REPORT_SUFFIX}")
                    write_new_json(report, report_data)
                return candidate, report.shown
        raise AssertionError("unreachable")

    def remove_stale_temp_files(self, pid_alive: Any) -> list[Path]:
        """Delete the agent's own temp files (uploads, copies, reports) left by a dead process."""
        removed = []
        for folder in self.all_dirs():
            pin = self._pins.get(folder)
            try:
                with os.scandir(pin.fd if pin is not None else folder) as it:
                    names = [e.name for e in it if e.name.startswith(TEMP_PREFIX)]
            except OSError:
                continue
            for name in names:
                if stale_agent_temp(name, pid_alive):
                    unlink_quietly(At(pin.fd, name, folder / name) if pin is not None
                                    else At.path(folder / name))
                    removed.append(folder / name)
        return removed


def _current_path(fd: int) -> str | None:
    """Where an open folder is now (it follows the folder through renames), or None."""
    try:
        where = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    return None if where.endswith(" (deleted)") else where


def _lexists(at: At) -> bool:
    try:
        os.stat(at.name, dir_fd=at.dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


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
