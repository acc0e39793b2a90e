"""The thread that steps every inbox's watcher; one inbox that fails never stops the others."""

from __future__ import annotations

import threading
import time

import structlog

from agent.backoff import RepeatedFailure
from agent.intake.watcher import InboxWatcher

log = structlog.get_logger("agent.intake.watcher")


class WatchService:
    """Runs every inbox's watcher from one thread, stepping them every ``interval`` seconds."""

    def __init__(self, watchers: list[InboxWatcher], interval: float = 0.05) -> None:
        self.watchers = watchers
        self.interval = interval
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        for watcher in self.watchers:
            watcher.start()
        self._thread = threading.Thread(target=self._run, name="watch-service", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        failures: dict[str, RepeatedFailure] = {}
        retry_at: dict[str, float] = {}
        while not self._stop.is_set():
            with self._lock:
                for watcher in self.watchers:
                    name = watcher.box.name
                    if time.monotonic() < retry_at.get(name, 0.0):
                        continue
                    failing = failures.setdefault(name, RepeatedFailure(
                        log, "watcher step failed; will retry"))
                    try:
                        watcher.step()
                    except Exception as exc:  # noqa: BLE001 - one inbox must not stop the rest
                        retry_at[name] = time.monotonic() + failing.failed(exc, inbox=name)
                        continue
                    failing.succeeded(inbox=name)
            self._stop.wait(self.interval)

    def replace(self, new: dict[str, InboxWatcher], removed: list[str]) -> None:
        """Swap watchers in place (config reload): changed inboxes are re-watched from a scan."""
        with self._lock:
            keep = [w for w in self.watchers
                    if w.box.name not in new and w.box.name not in removed]
            for watcher in self.watchers:
                if watcher not in keep:
                    watcher.stop()
            for watcher in new.values():
                watcher.start()
            self.watchers = keep + list(new.values())

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for watcher in self.watchers:
            watcher.stop()

    @property
    def thread_alive(self) -> bool:
        return bool(self._thread and self._thread.is_alive())
