"""Finds every file dropped into an inbox and enqueues it exactly once.

watchdog's events are hints: inotify drops events when its queue overflows, so the folder itself
is the truth. Reconcile scans run at start-up, every ``scan_interval_seconds`` and at once after
an overflow. A file is enqueued when its size, mtime and ctime have held still for
``settle_seconds``, and is known by (inbox, relative path, device, inode, size, mtime).
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import structlog
from watchdog.events import FileSystemEvent, FileSystemEventHandler

from agent.events import EventBus, FileDetected, FileIgnored, ScanFinished, WatcherOverflow
from agent.files.folders import InboxFolders, file_kind, identify
from agent.files.moves import is_agent_temp
from agent.files.names import display_name
from agent.intake.filters import NameFilter
from agent.intake.mounts import choose_mode
from agent.intake.overflow import OverflowHook
from agent.intake.skips import SkipKind, SkipReason
from agent.queue.base import JobQueue, NewJob
from agent.queue.record import record_patch

log = structlog.get_logger("agent.intake.watcher")

CANDIDATE_EVENTS = frozenset({"created", "moved", "closed", "modified"})
WRITE_EVENTS = frozenset({"modified", "closed", "deleted", "moved"})
# Errors that come from an entry (its name, its metadata), not from the queue being locked,
# full or away: those set the entry aside; any other error keeps it for the next step.
ENTRY_ERRORS = (ValueError, TypeError)
OVERFLOW_BLIND_SECONDS = 10.0


@dataclass(slots=True)
class _Candidate:
    signature: tuple[int, int, int]
    stable_since: float
    source: str


class InboxWatcher:
    """Watches one inbox; ``step()`` does one round of work so tests can drive it directly."""

    def __init__(
        self,
        box: InboxFolders,
        queue: JobQueue,
        events: EventBus | None = None,
        *,
        clock: Callable[[], float] = time.time,
        mounts_file: str = "/proc/self/mounts",
    ) -> None:
        self.box = box
        self.settings = box.settings
        self.queue = queue
        self.events = events or EventBus()
        self.clock = clock
        self.mode = choose_mode(self.settings.mode, box.inbox, mounts_file)
        self.name_filter = NameFilter(self.settings.include, self.settings.exclude)
        self.up = False
        self.problem: str | None = None  # why the inbox is not watched, for the health check
        self.last_scan_at: float | None = None
        self._pending: set[str] = set()
        self._dirs_to_scan: set[str] = set()
        self._scan_reason: str | None = "startup"
        self._lock = threading.Lock()
        self._candidates: dict[str, _Candidate] = {}
        self._enqueued: dict[str, tuple[int, int, int]] = {}
        self._skipped: dict[str, SkipReason] = {}
        self._writing: dict[str, float] = {}  # path → when inotify first saw it written, unclosed
        self._writing_noted: set[str] = set()
        self._writing_blind_until = 0.0
        self._overflow_hook = OverflowHook(self._on_overflow)
        self._observer: object | None = None
        self._trust_ctime = self.mode == "inotify"
        self._next_poll = 0.0
        self._log = log.bind(inbox=box.name)
        self._root_prefix = str(box.inbox).rstrip("/") + "/"

    # -- watchdog side (runs in the observer's thread: record and return) -----------------------

    def on_fs_event(self, path: str, is_directory: bool, kind: str = "created",
                    dest: str | None = None) -> None:
        """Record one watchdog event (observer thread): a path to look at, and whether a writer
        still holds the file open (written, not yet closed)."""
        with self._lock:
            if kind in WRITE_EVENTS and not is_directory:
                if kind != "modified":  # closed after writing, deleted, or renamed away
                    self._writing.pop(path, None)
                elif self.clock() >= self._writing_blind_until:
                    self._writing.setdefault(path, self.clock())
            if kind in CANDIDATE_EVENTS:
                target = dest if kind == "moved" and dest else path
                (self._dirs_to_scan if is_directory else self._pending).add(target)

    def request_scan(self, reason: str) -> None:
        with self._lock:
            if self._scan_reason is None:
                self._scan_reason = reason

    def _on_overflow(self) -> None:
        # Closes were lost with the other events, so open-for-writing marks cannot be trusted:
        # drop them, and ignore the writes still being dispatched from before the overflow for
        # a while (the settle rule alone decides meanwhile).
        with self._lock:
            self._writing.clear()
            self._writing_blind_until = self.clock() + OVERFLOW_BLIND_SECONDS
        self.events.emit(WatcherOverflow(self.box.name))
        self.request_scan("overflow")

    def start(self) -> None:
        """Create the inbox if needed, start the observer, and schedule the start-up scan."""
        self.box.inbox.mkdir(parents=True, exist_ok=True)
        self._overflow_hook.install()
        self._start_observer()
        self._log.info("watching inbox", path=str(self.box.inbox), mode=self.mode,
                       recursive=self.settings.recursive)

    def _start_observer(self) -> None:
        if self.mode == "inotify":
            from watchdog.observers.inotify import InotifyObserver

            observer = InotifyObserver()
            observer.schedule(_Handler(self), str(self.box.inbox), recursive=self.settings.recursive)
            observer.daemon = True
            observer.start()
            self._observer = observer
        self.up = True

    def _stop_observer(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()  # type: ignore[attr-defined]
            observer.join(timeout=10)  # type: ignore[attr-defined]

    def stop(self) -> None:
        self._overflow_hook.remove()
        self._stop_observer()
        self.up = False

    # -- one round of work ------------------------------------------------------------------

    def step(self) -> int:
        """Take in events, scan when due, enqueue the files that have settled; return how many."""
        now = self.clock()
        if not self._check_inbox_alive(now):
            return 0
        with self._lock:
            pending, self._pending = self._pending, set()
            dirs, self._dirs_to_scan = self._dirs_to_scan, set()
            reason, self._scan_reason = self._scan_reason, None
        for path in pending:
            self._consider_safely(path, "event", now)
        for folder in dirs:
            if self.settings.recursive and os.path.isdir(folder):
                for path in self._walk(folder):
                    self._consider_safely(path, "event", now)
            elif not self.settings.recursive and os.path.isdir(folder):
                rel = self._rel(folder)
                if "/" not in rel and rel not in (".", ".."):
                    self._skip_once(rel, FOLDER_NOT_RECURSIVE)
        if reason is None:
            if self.mode == "poll" and now >= self._next_poll:
                reason = "poll"
            elif self.last_scan_at is not None and (
                now - self.last_scan_at >= self.settings.scan_interval_seconds
            ):
                reason = "interval"
        if reason is not None:
            self.scan(reason, now)
        return self._enqueue_settled(now)

    def _check_inbox_alive(self, now: float) -> bool:
        swapped = self.box.problem()
        inbox_there = swapped is None and self.box.inbox.is_dir()
        observer_dead = (
            self.mode == "inotify" and self._observer is not None
            and not self._observer.is_alive()  # type: ignore[attr-defined]
        )
        if self.up and (not inbox_there or observer_dead):
            reason = swapped or ("inbox folder is gone" if not inbox_there else "observer died")
            self._log.error("inbox watch lost", path=str(self.box.inbox), reason=reason)
            self._stop_observer()
            self.up = False
        self.problem = swapped or (None if inbox_there else "inbox folder is gone")
        if not self.up and inbox_there:
            self._log.warning("inbox is back; watching again", path=str(self.box.inbox))
            self._start_observer()
            self.request_scan("rewatch")
        return self.up

    def scan(self, reason: str, now: float | None = None) -> int:
        """List the inbox and consider every file; returns the number of files seen."""
        now = self.clock() if now is None else now
        started = time.monotonic()
        seen: set[str] = set()
        for path in self._walk(str(self.box.inbox), seen):
            seen.add(self._rel(path))
            self._consider_safely(path, "scan" if reason != "startup" else "startup", now)
        # forget what left the inbox, so memory follows the folder
        for table in (self._enqueued, self._skipped, self._candidates):
            for rel in [r for r in table if r not in seen]:
                del table[rel]
        with self._lock:
            for path in [p for p in self._writing if self._rel(p) not in seen]:
                del self._writing[path]
        self.last_scan_at = now
        if self.mode == "poll":
            self._next_poll = now + self.settings.poll_interval_seconds
        self.events.emit(ScanFinished(self.box.name, reason, len(seen),
                                      time.monotonic() - started))
        return len(seen)

    def _walk(self, top: str, seen: set[str] | None = None) -> Iterator[str]:
        stack = [top]
        while stack:
            folder = stack.pop()
            if folder != str(self.box.inbox) and self._agent_folder(folder):
                continue
            pinned = self.box.pinned_fd(Path(folder)) if folder == top else None
            try:
                # The inbox itself is listed through the folder pinned at start, never
                # through whatever its path leads to now.
                with os.scandir(folder if pinned is None else pinned) as it:
                    entries = [(os.path.join(folder, e.name), e) for e in it]
            except OSError as exc:
                if folder == top:
                    self._log.warning("cannot list folder", path=folder, error=exc.strerror)
                continue
            for path, entry in entries:
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                except OSError:
                    continue
                if is_dir:
                    if self.settings.recursive and not self.name_filter.skips_dir(entry.name):
                        stack.append(path)
                    elif not self.settings.recursive:
                        rel = self._rel(path)
                        if seen is not None:
                            seen.add(rel)
                        self._skip_once(rel, FOLDER_NOT_RECURSIVE)
                    continue
                yield path

    def _agent_folder(self, folder: str) -> bool:
        """Whether a folder met inside the inbox is one of the agent's own (its data folder
        moved in): never walked into; the inbox's next check stops its intake."""
        try:
            guarded = self.box.is_guarded(os.stat(folder, follow_symlinks=False))
        except OSError:
            return False
        if guarded:
            self._log.error("the agent's own folder is inside the inbox; not taken in",
                            path=display_name(folder))
        return guarded

    def _rel(self, path: str) -> str:
        if path.startswith(self._root_prefix):
            return path[len(self._root_prefix):]
        return os.path.relpath(path, self.box.inbox).replace(os.sep, "/")

    def _skip_once(self, rel: str, reason: SkipReason, warn: bool = False) -> None:
        if self._skipped.get(rel) == reason:
            return
        self._skipped[rel] = reason
        (self._log.warning if warn else self._log.info)("file skipped", file=display_name(rel),
                                                        reason=reason.text)
        self.events.emit(FileIgnored(self.box.name, reason.kind.value))

    def _consider_safely(self, path: str, source: str, now: float) -> None:
        """``_consider`` one entry; an entry that breaks it is skipped with a log line, so one
        odd name or file never stops a scan or a watcher step."""
        try:
            self._consider(path, source, now)
        except Exception as exc:  # noqa: BLE001 - one entry must not stop the others
            rel = self._rel(path)
            self._candidates.pop(rel, None)
            self._skip_once(rel, _unreadable(exc), warn=True)

    def _consider(self, path: str, source: str, now: float) -> None:
        rel = self._rel(path)
        if rel.startswith("../") or rel == "." or rel == "..":
            return
        if is_agent_temp(rel.rsplit("/", 1)[-1]):
            return  # the agent's own temporary file (an upload or a copy being written)
        if "/" in rel and not self.settings.recursive:
            return
        reason = self.name_filter.reason_to_skip(rel)
        if reason is not None:
            if source == "event":  # temp names of writers that rename: noise until a scan finds one staying
                return
            self._skip_once(rel, reason)
            return
        try:
            st = os.lstat(path)
        except OSError:
            self._candidates.pop(rel, None)
            return
        mode = st.st_mode
        if stat.S_ISLNK(mode):
            target = os.path.realpath(path)
            inbox_root = os.path.realpath(self.box.inbox)
            if not target.startswith(inbox_root + os.sep):
                self._skip_once(rel, SkipReason(SkipKind.SYMLINK_OUTSIDE, "symbolic link pointing "
                                                           f"outside the inbox ({target})"),
                                warn=True)
            else:
                self._skip_once(rel, SkipReason(SkipKind.SYMLINK, "symbolic link (the file it points "
                                                           "to is ingested itself)"))
            return
        if stat.S_ISDIR(mode):
            if self.settings.recursive and source == "event":
                with self._lock:
                    self._dirs_to_scan.add(path)
            return
        if not stat.S_ISREG(mode):
            self._skip_once(rel, SkipReason(SkipKind.NOT_REGULAR,
                                            f"not a regular file ({file_kind(mode)})"), warn=True)
            return
        signature = (st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if self._enqueued.get(rel) == signature:
            return
        current = self._candidates.get(rel)
        if current is not None and current.signature == signature:
            return
        since = now
        if self._trust_ctime:
            since = min(now, st.st_ctime_ns / 1e9)
        self._candidates[rel] = _Candidate(
            signature, since, current.source if current else source
        )

    def _enqueue_settled(self, now: float) -> int:
        ready: list[tuple[str, os.stat_result, str]] = []
        for rel, cand in list(self._candidates.items()):
            try:
                st = self._settled(rel, cand, now)
            except Exception as exc:  # noqa: BLE001 - one entry must not stop the others
                del self._candidates[rel]
                self._skip_once(rel, _unreadable(exc), warn=True)
                continue
            if st is not None:
                ready.append((rel, st, cand.source))
        if not ready:
            return 0
        try:
            return self._queue_files(ready, now)
        except ENTRY_ERRORS:
            # Something about one of these entries (the store itself failing raises other
            # errors, which keep every candidate for the next step): queue them one by one,
            # so only the odd one is set aside.
            return sum(self._enqueue_one(item, now) for item in ready)

    def _enqueue_one(self, item: tuple[str, os.stat_result, str], now: float) -> int:
        try:
            return self._queue_files([item], now)
        except ENTRY_ERRORS:
            rel, st, _ = item
            self._candidates.pop(rel, None)
            self._enqueued[rel] = (st.st_size, st.st_mtime_ns, st.st_ctime_ns)
            self._log.exception("file cannot be queued", file=display_name(rel))
            self._skip_once(rel, SkipReason(SkipKind.UNQUEUEABLE, "cannot be queued (see the error "
                                                               "logged above)"), warn=True)
            return 0

    def _settled(self, rel: str, cand: _Candidate, now: float) -> os.stat_result | None:
        """The file's stat if it is ready to queue: quiet for ``settle_seconds`` and (inotify)
        closed by its writer, or open past ``max_open_write_seconds``."""
        if now - cand.stable_since < self.settings.settle_seconds:
            return None
        path = os.path.join(self.box.inbox, rel)
        with self._lock:
            writing_since = self._writing.get(path)
        if writing_since is not None:
            open_for = now - writing_since
            if open_for < self.settings.max_open_write_seconds:
                return None
            if path not in self._writing_noted:
                self._writing_noted.add(path)
                self._log.warning("file still open for writing; queued by the settle rule alone",
                                  file=display_name(rel), open_seconds=round(open_for),
                                  limit=self.settings.max_open_write_seconds)
        try:
            st = os.lstat(path)
        except OSError:
            del self._candidates[rel]
            return None
        signature = (st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if signature != cand.signature or not stat.S_ISREG(st.st_mode):
            del self._candidates[rel]
            self._consider(path, cand.source, now)
            return None
        return st

    def _queue_files(self, ready: list[tuple[str, os.stat_result, str]], now: float) -> int:
        idents = {rel: identify(self.box.name, rel, st) for rel, st, _ in ready}
        paths = {rel: self._root_prefix + rel for rel, _, _ in ready}  # a burst has thousands
        known = self.queue.known_keys(i.key for i in idents.values())
        unknown = [rel for rel, _, _ in ready if idents[rel].key not in known]
        # A file changed while its job still waits: that job reads it as it is then.
        waiting = self.queue.queued_paths(paths[rel] for rel in unknown)
        new_jobs = []
        sources = []
        for rel, st, source in ready:
            ident = idents[rel]
            if ident.key in known or paths[rel] in waiting:
                continue
            new_jobs.append(NewJob(
                file_path=paths[rel], original_filename=rel.rsplit("/", 1)[-1],
                metadata=record_patch(size=st.st_size, source=source, relpath=rel),
                inbox=self.box.name, content_key=ident.key,
            ))
            sources.append(source)
        # Only once the queue has them are they forgotten as candidates: if this write fails
        # (full disk, locked database) the next step tries again.
        jobs = self.queue.enqueue_many(new_jobs) if new_jobs else []
        for rel, st, _ in ready:
            del self._candidates[rel]
            self._enqueued[rel] = (st.st_size, st.st_mtime_ns, st.st_ctime_ns)
            self._writing_noted.discard(paths[rel])
        for job, source in zip(jobs, sources, strict=True):
            self._log.info("file queued", job_id=job.job_id,
                           file=display_name(job.original_filename or ""), source=source)
            self.events.emit(FileDetected(self.box.name, source, job.job_id))
        return len(jobs)

    @property
    def waiting(self) -> int:
        """Files seen but not yet settled."""
        return len(self._candidates)


class _Handler(FileSystemEventHandler):
    """watchdog's handler: records candidate paths and returns; it must never block or raise."""

    def __init__(self, watcher: InboxWatcher) -> None:
        super().__init__()
        self.watcher = watcher

    def dispatch(self, event: FileSystemEvent) -> None:
        try:
            kind = event.event_type
            if kind not in CANDIDATE_EVENTS and kind not in WRITE_EVENTS:
                return
            path = os.fsdecode(event.src_path)
            dest = os.fsdecode(event.dest_path) if kind == "moved" else None
            self.watcher.on_fs_event(path, event.is_directory, kind, dest)
        except Exception:  # noqa: BLE001 - an exception here would end watchdog's dispatch thread
            pass


FOLDER_NOT_RECURSIVE = SkipReason(SkipKind.FOLDER, "a folder (recursive = false)")


def _unreadable(exc: Exception) -> SkipReason:
    return SkipReason(SkipKind.UNREADABLE, f"cannot be looked at ({type(exc).__name__}: {exc})")
