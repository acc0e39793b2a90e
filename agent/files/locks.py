"""Locks held for the agent's life, so two agents never share what only one may own.

* The data folder (queue, index, model cache, the agent's identity): one agent, always.
* Each inbox's folders: one agent with the embedded SQLite queue. Agents sharing one Redis
  namespace share inboxes on purpose (the queue gives each file one job), so they hold the
  lock shared; an agent of another namespace, or an SQLite agent, is refused.

``flock`` locks vanish with the process that held them (even on kill -9), so a crash never
leaves a stale lock. Each lock file records who holds it, for the refusal message.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

import structlog

from agent.config.settings import InboxSettings, Settings
from agent.errors import AgentError, LockHeldError

log = structlog.get_logger("agent.files.locks")
LOCK_NAME = ".ingest-agent.lock"
GATE_NAME = ".ingest-agent.gate"
GATE_WAIT_SECONDS = 10.0
OWN_FILES = (LOCK_NAME, GATE_NAME)  # what the agent keeps in a processing folder
_BUSY = (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)


class AgentLocks:
    """Takes the data-folder and inbox locks of one agent; ``release()`` lets them go."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._fds: list[int] = []
        self._inbox_fds: dict[str, tuple[tuple[Path, Path | None], list[int]]] = {}
        self.me = {"pid": os.getpid(), "host": socket.gethostname(),
                   "config": str(settings.source) if settings.source else "built-in defaults",
                   "queue": self._queue_identity(), "since": time.strftime("%Y-%m-%dT%H:%M:%S")}

    def _queue_identity(self) -> str:
        queue = self.settings.queue
        if queue.backend == "redis":
            return f"redis namespace {queue.redis_namespace}"
        return f"sqlite {self.settings.queue_path}"

    def acquire(self) -> AgentLocks:
        try:
            self._lock_data_dir()
            for box in self.settings.inbox:
                self.lock_inbox(box)
        except BaseException:
            self.release()
            raise
        return self

    def lock_inbox(self, box: InboxSettings) -> None:
        """Take one inbox's locks (again, after a reload moved its folders)."""
        where = (box.path, box.processing_dir)
        held = self._inbox_fds.get(box.name)
        if held is not None and held[0] == where:
            return
        before = len(self._fds)
        self._lock_inbox(box.name, box.path, box.processing_dir)
        taken = self._fds[before:]
        del self._fds[before:]
        if held is not None:
            self._close(held[1])
        self._inbox_fds[box.name] = (where, taken)

    def unlock_inbox(self, name: str) -> None:
        held = self._inbox_fds.pop(name, None)
        if held is not None:
            self._close(held[1])

    def release(self) -> None:
        fds, self._fds = self._fds, []
        for _, inbox_fds in self._inbox_fds.values():
            fds += inbox_fds
        self._inbox_fds = {}
        self._close(fds)

    @staticmethod
    def _close(fds: list[int]) -> None:
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)

    # -- the data folder ---------------------------------------------------------------------

    def _lock_data_dir(self) -> None:
        data_dir = self.settings.agent.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = self._open(data_dir / "agent.lock")
        if not self._flock(fd, fcntl.LOCK_EX):
            holder = _describe(self._holder_record(fd))
            os.close(fd)
            raise LockHeldError(f"data_dir {data_dir} is in use by another ingest-agent "
                                f"({holder}); give each agent its own data_dir")
        _write_holder(fd, self.me)

    # -- inboxes ------------------------------------------------------------------------------

    def _lock_inbox(self, name: str, inbox: Path, processing: Path | None) -> None:
        shared = self.settings.queue.backend == "redis"
        assert processing is not None
        processing.mkdir(parents=True, exist_ok=True)
        fd = self._open(processing / LOCK_NAME)
        if not shared:
            if not self._flock(fd, fcntl.LOCK_EX):
                raise self._refusal(name, inbox, self._holder_record(fd))
            _write_holder(fd, self.me)
        else:
            self._share(fd, processing / GATE_NAME, name, inbox)
        self._lock_folder(name, inbox, shared)

    def _share(self, fd: int, gate_path: Path, name: str, inbox: Path) -> None:
        """Hold the inbox shared with agents of the same Redis namespace, and only those.

        The first sharer writes its namespace under an exclusive lock, then converts it to a
        shared one; flock's conversion is not atomic, and a sharer starting at that moment
        would see the lock held and the record not yet written. So sharers take turns through
        a gate lock beside it: within the gate, an exclusive holder of ``fd`` can only be an
        SQLite agent, and a shared one has written its namespace before letting the gate go.
        """
        gate = self._open(gate_path)
        self._fds.remove(gate)
        try:
            self._wait_for(gate, name, inbox)
            if self._flock(fd, fcntl.LOCK_EX):  # first one here: say which namespace owns it
                _write_holder(fd, self.me)
                if not self._flock(fd, fcntl.LOCK_SH):  # an SQLite agent came in between
                    raise self._refusal(name, inbox, self._holder_record(fd))
                return
            if not self._flock(fd, fcntl.LOCK_SH):
                raise self._refusal(name, inbox, self._holder_record(fd))
            holder = _read_holder(fd)
            if holder.get("queue") != self.me["queue"]:
                raise self._refusal(name, inbox, holder)
        finally:
            os.close(gate)  # lets the gate go

    def _wait_for(self, gate: int, name: str, inbox: Path) -> None:
        """Take the gate; it is held for a few milliseconds at a time, so waiting is short."""
        deadline = time.monotonic() + GATE_WAIT_SECONDS
        while not self._flock(gate, fcntl.LOCK_EX):
            if time.monotonic() > deadline:
                raise LockHeldError(f"inbox {name} ({inbox}): another ingest-agent has held "
                                    f"{GATE_NAME} for {GATE_WAIT_SECONDS:g} s; is it stuck?")
            time.sleep(0.02)

    @staticmethod
    def _holder_record(fd: int) -> dict[str, Any]:
        """The holder's record; an SQLite agent writes it just after taking its lock."""
        holder = _read_holder(fd)
        for _ in range(20):
            if holder:
                break
            time.sleep(0.05)
            holder = _read_holder(fd)
        return holder

    def _lock_folder(self, name: str, inbox: Path, shared: bool) -> None:
        """The inbox folder itself, so an agent with other work folders is refused too."""
        inbox.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(inbox, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise AgentError(f"inbox {name}: cannot open {inbox}: {exc.strerror}") from None
        self._fds.append(fd)
        if not self._flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX):
            pid = _flock_holder_pid(fd)
            raise LockHeldError(
                f"inbox {name} ({inbox}) is watched by another ingest-agent"
                f"{f' (pid {pid}: {_cmdline(pid)})' if pid else ''}; one inbox, one agent "
                "(or agents sharing one Redis namespace)")

    def _refusal(self, name: str, inbox: Path, holder: dict[str, Any]) -> LockHeldError:
        return LockHeldError(
            f"inbox {name} ({inbox}) is used by another ingest-agent ({_describe(holder)}); "
            "one inbox, one agent (or agents sharing one Redis namespace)")

    # -- primitives ---------------------------------------------------------------------------

    def _open(self, path: Path) -> int:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise AgentError(f"cannot open lock file {path}: {exc.strerror}") from None
        self._fds.append(fd)
        return fd

    @staticmethod
    def _flock(fd: int, mode: int) -> bool:
        """True when taken; False when another holds it. A file system without locks (some
        network mounts) is logged and treated as taken: the agent runs, unprotected."""
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return True
        except OSError as exc:
            if exc.errno in _BUSY:
                return False
            log.warning("cannot take a lock here; two agents on it would not be detected",
                        error=exc.strerror)
            return True


def _write_holder(fd: int, me: dict[str, Any]) -> None:
    data = json.dumps(me).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


def _read_holder(fd: int) -> dict[str, Any]:
    try:
        data = os.pread(fd, 4096, 0)
        holder = json.loads(data) if data else {}
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "holder unknown"
    return (f"pid {holder.get('pid')} on {holder.get('host')}, config {holder.get('config')}, "
            f"{holder.get('queue')}")


def _flock_holder_pid(fd: int) -> int | None:
    """The process holding a flock on ``fd``'s file, from /proc/locks (Linux)."""
    st = os.fstat(fd)
    wanted = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) > 5 and parts[1] == "FLOCK" and parts[5] == wanted:
                    pid = int(parts[4])
                    if pid != os.getpid():
                        return pid
    except (OSError, ValueError):
        return None
    return None


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "command unknown"
    return " ".join(os.fsdecode(p) for p in raw.split(b"\0") if p) or sys.executable
