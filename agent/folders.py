"""An inbox's folders on disk: where files are, who they are, and moving them without loss.

Moves never overwrite: a name taken in the destination gets a ``name (2).ext`` suffix.
Within one file system a move is a rename; across file systems it is copy, fsync, rename, unlink.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import stat
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.config import InboxSettings, Settings
from agent.errors import AgentError

MAX_NAME_BYTES = 200  # leaves room for a collision suffix and ".error.json" within NAME_MAX=255
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]")


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


def safe_filename(name: str, fallback: str = "file") -> str:
    """A file name with no path parts or control characters, at most ``MAX_NAME_BYTES`` long."""
    name = unicodedata.normalize("NFC", name)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name).strip().lstrip(".")
    if not name or name in {".", ".."}:
        name = fallback
    stem, dot, ext = name.rpartition(".") if "." in name else (name, "", "")
    if len(ext.encode()) > 16:
        stem, dot, ext = name, "", ""
    budget = MAX_NAME_BYTES - len((dot + ext).encode())
    encoded = stem.encode()[:budget]
    stem = encoded.decode("utf-8", errors="ignore") or fallback
    return stem + dot + ext


def _numbered(name: str, n: int) -> str:
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        return f"{name} ({n})"
    return f"{stem} ({n}).{ext}"


def move_no_clobber(src: Path, dest_dir: Path, name: str) -> Path:
    """Move ``src`` into ``dest_dir`` under ``name`` or the first free ``name (n)``; return it."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        candidate = dest_dir / (name if n == 1 else _numbered(name, n))
        try:
            _link_or_copy(src, candidate)
        except FileExistsError:
            continue
        _unlink_quietly(src)
        return candidate
    raise AgentError(f"{dest_dir}: no free name for {name} after 10,000 tries")


def _link_or_copy(src: Path, dest: Path) -> None:
    """Create ``dest`` as ``src``'s content without replacing an existing ``dest``."""
    try:
        os.link(src, dest)
        return
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK):
            raise
    # Different file system (or no hard links): copy under a temp name, fsync, then link in.
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.partial")
    try:
        with open(src, "rb") as fin, open(tmp, "xb") as fout:
            shutil.copyfileobj(fin, fout, 1024 * 1024)
            fout.flush()
            os.fsync(fout.fileno())
        shutil.copystat(src, tmp)
        try:
            os.link(tmp, dest)
        except OSError as exc:
            if isinstance(exc, FileExistsError):
                raise
            if dest.exists():
                raise FileExistsError(str(dest)) from None
            os.rename(tmp, dest)
    finally:
        _unlink_quietly(tmp)
    _fsync_dir(dest.parent)


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


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, ensure_ascii=False, default=str)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


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
        return f"{job_id}__{safe_filename(original)}"

    def move_to_processing(self, src: Path, job_id: str, original: str) -> Path:
        return move_no_clobber(src, self.processing, self.processing_name(job_id, original))

    def move_to_inbox(self, src: Path, original: str) -> Path:
        """Give a file back to the inbox (an orphan from processing/, or an operator's retry)."""
        return move_no_clobber(src, self.inbox, safe_filename(original))

    def move_to_done(self, src: Path, original: str) -> Path:
        return move_no_clobber(src, self.done, safe_filename(original))

    def move_to_failed(self, src: Path, original: str, report: dict[str, Any]) -> Path:
        """Move to failed/ and write ``<name>.error.json`` beside it with the reason."""
        dest = move_no_clobber(src, self.failed, safe_filename(original))
        write_json_atomic(dest.with_name(dest.name + ".error.json"), report)
        return dest


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
