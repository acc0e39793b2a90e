"""The watcher on real folders with real watchdog observers and a real SQLite queue."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.config.settings import InboxSettings
from agent.events import EventBus, EventRecorder, FileDetected, FileIgnored, WatcherOverflow
from agent.files.folders import InboxFolders
from agent.intake.mounts import choose_mode
from agent.intake.watcher import InboxWatcher
from agent.queue.base import JobStatus
from agent.queue.sqlite import SQLiteJobQueue
from tests.conftest import ManualClock
from tests.helpers import claim_next, scaled

BURST = int(os.environ.get("WATCH_BURST", "20000"))

WRITERS = {
    "in_place": """
        for i in range(n):
            with open(os.path.join(inbox, f"f{i}.txt"), "w") as fh:
                fh.write("x" * 64)
    """,
    "rename_in": """
        stage = os.path.join(os.path.dirname(inbox), "staging")
        os.makedirs(stage, exist_ok=True)
        for i in range(n):
            tmp = os.path.join(stage, f"f{i}.txt")
            with open(tmp, "w") as fh:
                fh.write("x" * 64)
            os.rename(tmp, os.path.join(inbox, f"f{i}.txt"))
    """,
    "temp_rename": """
        for i in range(n):
            tmp = os.path.join(inbox, f"f{i}.txt.part")
            with open(tmp, "w") as fh:
                fh.write("x" * 64)
            os.rename(tmp, os.path.join(inbox, f"f{i}.txt"))
    """,
}


class ObservedWatcher(InboxWatcher):
    """The real watcher, telling the harness when the observer thread hands it an event, so the
    harness waits for events instead of sleeping."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.activity = threading.Event()
        self.delivered: set[str] = set()

    def on_fs_event(self, path: str, is_directory: bool, kind: str = "created",
                    dest: str | None = None) -> None:
        super().on_fs_event(path, is_directory, kind, dest)
        self.delivered.add(dest or path)
        self.activity.set()


class Harness:
    """An inbox, its queue and its watcher on a hand-moved clock.

    The watcher's time (settle, open-for-writing, poll and scan intervals) moves only when the
    harness moves it, ``TICK`` per step, so a busy machine cannot make a file look settled. Real
    time is waited only for what is real: the observer thread delivering events and writer
    processes, each a wait on that state.
    """

    TICK = 0.05

    def __init__(self, root: Path, queue: SQLiteJobQueue | None = None, **inbox: object) -> None:
        inbox.setdefault("settle_seconds", 0.3)
        self.settings = InboxSettings.model_validate({"name": "box", "path": root / "inbox",
                                                      **inbox})
        self.box = InboxFolders(self.settings)
        self.queue = queue or SQLiteJobQueue(root / "queue.db")
        self.bus = EventBus()
        self.recorder = EventRecorder()
        self.bus.subscribe_all(self.recorder)
        self.clock = ManualClock()
        self.watcher = ObservedWatcher(self.box, self.queue, self.bus, clock=self.clock)
        self.watcher.start()
        self._barriers = 0

    @property
    def inbox(self) -> Path:
        return self.box.inbox

    def jobs(self) -> int:
        return self.queue.get_pending_jobs_count()

    def tick(self) -> None:
        """One step of the watcher, then its clock moves on; waits (briefly) for the observer."""
        self.watcher.step()
        self.clock.advance(self.TICK)
        if self.watcher.activity.wait(0.01):
            self.watcher.activity.clear()

    def pump(self, until: Callable[[], bool], timeout: float = 30.0) -> bool:
        """Step until ``until()`` holds; ``timeout`` is real seconds, a guard against a hang."""
        deadline = time.monotonic() + scaled(timeout)
        while time.monotonic() < deadline:
            self.watcher.step()
            if until():
                return True
            self.tick()
        return until()

    def drain(self) -> None:
        """Return once every event of what was written so far has reached the watcher.

        inotify events come in order through one observer, so once a marker file written now
        has been delivered, all before it have been too; the marker is then removed before any
        step could queue it. In poll mode there are no events: the next step's listing sees all.
        """
        if self.watcher.mode != "inotify" or self.watcher._observer is None:
            return
        self._barriers += 1
        marker = self.inbox / f"zz-barrier-{self._barriers}.txt"
        marker.write_text("barrier")
        deadline = time.monotonic() + scaled(30)
        while str(marker) not in self.watcher.delivered:
            assert time.monotonic() < deadline, "the observer never delivered the marker's event"
            self.watcher.activity.wait(0.05)
            self.watcher.activity.clear()
        marker.unlink()

    def settle(self, seconds: float | None = None) -> None:
        """Once all events are in, step through more than the settle time (the watcher's), so
        anything that was going to be queued is."""
        self.drain()
        end = self.clock() + (seconds or self.settings.settle_seconds * 3 + 0.3)
        while self.clock() < end:
            self.watcher.step()
            self.clock.advance(self.TICK)
        self.watcher.step()

    def ignored(self) -> list[str]:
        return [e.reason for e in self.recorder.of(FileIgnored)]

    def close(self) -> None:
        self.watcher.stop()
        self.queue.close()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make(**inbox: Any) -> Harness:
        h = Harness(tmp_path, **inbox)
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()


def _start_writer(pattern: str, inbox: Path, n: int) -> subprocess.Popen[bytes]:
    code = "import os, sys\ninbox, n = sys.argv[1], int(sys.argv[2])\n" + textwrap.dedent(
        WRITERS[pattern]
    )
    return subprocess.Popen([sys.executable, "-c", code, str(inbox), str(n)])


@pytest.mark.parametrize("mode", ["inotify", "poll"])
@pytest.mark.parametrize("pattern", sorted(WRITERS))
def test_burst_ends_with_exactly_one_job_per_file(harness: Callable[..., Harness], mode: str,
                                                  pattern: str) -> None:
    """A separate process drops BURST files; every one is queued once, none twice."""
    h = harness(mode=mode, settle_seconds=0.5, poll_interval_seconds=0.5)
    h.watcher.step()
    writer = _start_writer(pattern, h.inbox, BURST)
    h.pump(lambda: writer.poll() is not None, timeout=120)
    assert writer.returncode == 0
    assert h.pump(lambda: h.jobs() >= BURST, timeout=60), f"only {h.jobs()} of {BURST} queued"
    h.settle(1.0)
    jobs = h.queue.list_jobs(limit=BURST + 10)
    assert len(jobs) == BURST
    assert len({j.file_path for j in jobs}) == BURST
    assert {j.original_filename for j in jobs} == {f"f{i}.txt" for i in range(BURST)}


@pytest.mark.parametrize("mode", ["inotify", "poll"])
def test_slow_writer_is_queued_once_after_it_stops_growing(harness: Callable[..., Harness],
                                                           mode: str) -> None:
    """A writer process adds a piece every 0.5 s (of the watcher's time) and holds the file
    open: not queued half-written, and queued once when it stops. In poll mode nothing says the
    file is open, so the settle rule alone must hold it back."""
    h = harness(mode=mode, settle_seconds=1.0, poll_interval_seconds=0.1)
    code = textwrap.dedent("""
        import sys
        with open(sys.argv[1], "w") as fh:
            for line in sys.stdin:
                fh.write("chunk " * 1000)
                fh.flush()
                print("written", flush=True)
    """)
    target = h.inbox / "slow.txt"
    writer = subprocess.Popen([sys.executable, "-c", code, str(target)], text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert writer.stdin is not None and writer.stdout is not None
    for _ in range(5):
        writer.stdin.write("next\n")
        writer.stdin.flush()
        assert writer.stdout.readline() == "written\n"
        end = h.clock() + 0.5
        while h.clock() < end:
            h.tick()
        assert h.jobs() == 0, "queued while still being written"
    writer.stdin.close()
    assert writer.wait(timeout=scaled(30)) == 0
    assert h.pump(lambda: h.jobs() == 1, timeout=10)
    h.settle(1.5)
    (job,) = h.queue.list_jobs()
    assert job.metadata["size"] == target.stat().st_size == 5 * 6000


def test_files_dropped_while_stopped_are_queued_at_start(tmp_path: Path) -> None:
    """Restart: the start-up scan finds what arrived while the agent was down."""
    h = Harness(tmp_path, settle_seconds=0.2)
    (h.inbox / "before.txt").write_text("first")
    assert h.pump(lambda: h.jobs() == 1)
    h.close()
    for i in range(5):
        (tmp_path / "inbox" / f"offline{i}.txt").write_text(f"dropped while down {i}")
    h2 = Harness(tmp_path, settle_seconds=0.2)
    try:
        assert h2.pump(lambda: h2.jobs() == 6)
        sources = {e.source for e in h2.recorder.of(FileDetected)}
        assert sources == {"startup"}
        h2.settle()
        assert h2.jobs() == 6, "before.txt was already known and must not be queued again"
    finally:
        h2.close()


def test_event_and_scan_of_the_same_file_make_one_job(harness: Callable[..., Harness]) -> None:
    """A file reported by an event and then listed by a reconcile scan is queued once."""
    h = harness(settle_seconds=0.2)
    (h.inbox / "a.txt").write_text("hello")
    assert h.pump(lambda: h.jobs() == 1)
    h.watcher.scan("interval")
    h.settle()
    assert h.jobs() == 1


def test_replaced_file_after_processing_is_a_new_job(harness: Callable[..., Harness]) -> None:
    """Same name, new content after the first was taken away: a second job."""
    h = harness(settle_seconds=0.2)
    path = h.inbox / "report.txt"
    path.write_text("version 1")
    assert h.pump(lambda: h.jobs() == 1)
    job = claim_next(h.queue)
    path.unlink()  # the processor moved it out
    h.queue.update_job_status(job.job_id, "completed", lease_token=job.lease_token)
    path.write_text("version 2, longer")
    assert h.pump(lambda: h.jobs() == 1)
    assert len(h.queue.list_jobs()) == 2


@pytest.mark.parametrize(
    "name",
    [".hidden", "x.tmp", "y.part", "z.crdownload", "w.filepart", "~$doc.docx", ".~lock.a.odt#",
     "Thumbs.db", ".DS_Store", "._mac", "r.txt.error.json"],
)
def test_default_ignore_rules(harness: Callable[..., Harness], name: str) -> None:
    """Partial downloads, lock files and OS litter are skipped with a logged reason."""
    h = harness(settle_seconds=0.1)
    (h.inbox / name).write_text("ignore me")
    h.watcher.scan("interval")
    h.settle()
    assert h.jobs() == 0
    assert h.ignored() == ["excluded"]


def test_include_patterns_limit_what_is_taken(harness: Callable[..., Harness]) -> None:
    """With include = ['*.pdf'], a .txt is skipped and a .pdf queued."""
    h = harness(settle_seconds=0.1, include=["*.pdf"])
    (h.inbox / "a.txt").write_text("no")
    (h.inbox / "b.pdf").write_text("yes")
    h.watcher.scan("interval")
    h.settle()
    assert [j.original_filename for j in h.queue.list_jobs()] == ["b.pdf"]
    assert h.ignored() == ["not_included"]


def test_special_files_are_skipped_once(harness: Callable[..., Harness], tmp_path: Path) -> None:
    """FIFO, socket, folder and symlinks are never queued; each skip is logged once."""
    h = harness(settle_seconds=0.1)
    os.mkfifo(h.inbox / "pipe")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(h.inbox / "sock"))
    (h.inbox / "folder").mkdir()
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    (h.inbox / "escape.txt").symlink_to(outside)
    (h.inbox / "real.txt").write_text("real")
    (h.inbox / "alias.txt").symlink_to(h.inbox / "real.txt")
    (h.inbox / "loop").symlink_to(h.inbox / "loop")
    try:
        for _ in range(3):
            h.watcher.scan("interval")
            h.settle(0.3)
    finally:
        sock.close()
    assert [j.original_filename for j in h.queue.list_jobs()] == ["real.txt"]
    assert sorted(h.ignored()) == sorted(
        ["not_regular", "not_regular", "folder", "symlink_outside", "symlink", "symlink"]
    )


def test_recursive_inbox_takes_a_folder_moved_in_whole(harness: Callable[..., Harness],
                                                        tmp_path: Path) -> None:
    """recursive = true: a tree moved in at once is queued file by file; hidden dirs skipped."""
    h = harness(settle_seconds=0.2, recursive=True)
    h.watcher.step()
    tree = tmp_path / "tree"
    (tree / "sub" / "deeper").mkdir(parents=True)
    (tree / ".git").mkdir()
    (tree / ".git" / "config").write_text("skip")
    for rel in ("a.txt", "sub/b.txt", "sub/deeper/c.txt"):
        (tree / rel).write_text(rel)
    os.rename(tree, h.inbox / "tree")
    assert h.pump(lambda: h.jobs() == 3)
    h.settle()
    assert sorted(j.metadata["relpath"] for j in h.queue.list_jobs()) == [
        "tree/a.txt", "tree/sub/b.txt", "tree/sub/deeper/c.txt"]


def test_non_recursive_inbox_ignores_subfolders(harness: Callable[..., Harness]) -> None:
    """recursive = false: files in subfolders are not taken; the folder is reported once."""
    h = harness(settle_seconds=0.1)
    (h.inbox / "sub").mkdir()
    (h.inbox / "sub" / "x.txt").write_text("x")
    h.watcher.scan("interval")
    h.settle()
    assert h.jobs() == 0 and h.ignored() == ["folder"]


def test_deleted_inbox_is_reported_and_rewatched(harness: Callable[..., Harness]) -> None:
    """Removing the inbox marks the watcher down; when it returns, new files are queued."""
    h = harness(settle_seconds=0.2)
    h.watcher.step()
    os.rmdir(h.inbox)
    assert h.pump(lambda: not h.watcher.up, timeout=5)
    h.inbox.mkdir()
    assert h.pump(lambda: h.watcher.up, timeout=5)
    (h.inbox / "after.txt").write_text("back")
    assert h.pump(lambda: h.jobs() == 1)


def test_overflow_log_triggers_a_reconcile_scan(harness: Callable[..., Harness]) -> None:
    """watchdog's 'queue overflowed' warning makes the watcher scan at once and find the file."""
    h = harness(settle_seconds=0.1, scan_interval_seconds=3600)
    h.watcher.step()
    h.watcher._stop_observer()  # from here on events are lost, as in an overflow
    (h.inbox / "missed.txt").write_text("its event was lost")
    h.settle()
    assert h.jobs() == 0, "without events or a scan nothing can find the file"
    logging.getLogger("watchdog.observers.inotify_c").warning(
        "Inotify queue overflowed; filesystem events were lost")
    assert h.pump(lambda: h.jobs() == 1)
    assert len(h.recorder.of(WatcherOverflow)) == 1
    assert [e.source for e in h.recorder.of(FileDetected)] == ["scan"]


def test_auto_mode_polls_on_network_mounts(tmp_path: Path) -> None:
    """mode = auto reads the mount table: NFS, CIFS and FUSE folders are polled."""
    mounts = tmp_path / "mounts"
    share = tmp_path / "share"
    share.mkdir()
    mounts.write_text(
        f"/dev/vda / ext4 rw 0 0\nserver:/export {share} nfs4 rw 0 0\n"
        f"sshfs#me@host: {tmp_path}/fuse fuse.sshfs rw 0 0\n"
    )
    assert choose_mode("auto", share / "inbox", str(mounts)) == "poll"
    assert choose_mode("auto", tmp_path / "fuse" / "in", str(mounts)) == "poll"
    assert choose_mode("auto", tmp_path / "local", str(mounts)) == "inotify"
    assert choose_mode("inotify", share, str(mounts)) == "inotify"


def test_poll_mode_finds_files_without_events(harness: Callable[..., Harness]) -> None:
    """In poll mode no observer runs; the folder listing finds new files."""
    h = harness(mode="poll", settle_seconds=0.2, poll_interval_seconds=0.1)
    assert h.watcher._observer is None
    (h.inbox / "polled.txt").write_text("found by listing")
    assert h.pump(lambda: h.jobs() == 1)
    assert h.queue.list_jobs()[0].status is JobStatus.QUEUED


def test_file_changed_while_its_job_waits_is_not_queued_twice(
        harness: Callable[..., Harness]) -> None:
    """The queued job reads the file as it is when claimed; a change before that adds no job."""
    h = harness(settle_seconds=0.2)
    path = h.inbox / "growing.txt"
    path.write_text("first version")
    assert h.pump(lambda: h.jobs() == 1)
    path.write_text("second, longer version of the same file")
    h.watcher.scan("interval")
    h.settle(1.0)
    assert h.jobs() == 1
    assert len(h.queue.list_jobs()) == 1


class RefusingQueue(SQLiteJobQueue):
    """The real SQLite queue, refusing one file's job the way an entry-specific bug would.

    No name on disk breaks the queue any more (names are stored losslessly), so this stands in
    for the next such bug: what matters is that one entry cannot stop the others.
    """

    def enqueue_many(self, items):  # type: ignore[no-untyped-def]
        if any(item.original_filename == "poison.txt" for item in items):
            raise ValueError("this entry cannot be stored")
        return super().enqueue_many(items)


def test_one_entry_the_queue_refuses_never_stops_the_others(tmp_path: Path) -> None:
    """A batch with one entry the queue refuses: the others are queued, the odd one is set
    aside with one log line and not retried on every step."""
    h = Harness(tmp_path, queue=RefusingQueue(tmp_path / "queue.db"), settle_seconds=0.1)
    try:
        for name in ("a.txt", "poison.txt", "b.txt", "c.txt"):
            (h.inbox / name).write_text(name)
        assert h.pump(lambda: h.jobs() == 3)
        h.settle()
        assert sorted(j.original_filename or "" for j in h.queue.list_jobs()) == ["a.txt", "b.txt",
                                                                            "c.txt"]
        assert h.ignored() == ["unqueueable"]
    finally:
        h.close()
