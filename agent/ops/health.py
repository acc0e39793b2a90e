"""Liveness and readiness: each check names itself and says why it failed."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.config.settings import HealthSettings
from agent.queue.base import JobQueue


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


class HealthChecker:
    """Readiness of the running agent; the parts it cannot see from here are passed in."""

    def __init__(self, queue: JobQueue, data_dir: Path, limits: HealthSettings, *,
                 watchers: Callable[[], Iterable[tuple[str, bool, str | None]]] | None = None,
                 worker_alive: Callable[[], bool] | None = None, read_only: bool = False,
                 identity: Mapping[str, str] | None = None) -> None:
        """``read_only``: a reader's view (``status``), which checks the database by reading.
        ``identity`` is reported with readiness, so a client knows whose agent answered."""
        self.queue = queue
        self.data_dir = data_dir
        self.limits = limits
        self.watchers = watchers
        self.worker_alive = worker_alive
        self.read_only = read_only
        self.identity = dict(identity or {})

    def checks(self) -> list[Check]:
        out = [self._database()]
        out.append(self._disk())
        if self.watchers is not None:
            for inbox, up, problem in self.watchers():
                out.append(Check(f"watcher:{inbox}", up, "watching" if up else
                                 f"not watching: {problem or 'inbox missing?'}"))
        if self.worker_alive is not None:
            alive = self.worker_alive()
            out.append(Check("worker", alive, "model loaded, worker running" if alive
                             else "worker subprocess is not running"))
        out.extend(self._backlog())
        return out

    def ready(self) -> tuple[bool, list[Check]]:
        found = self.checks()
        return all(c.ok for c in found), found

    def _database(self) -> Check:
        if self.read_only:
            try:
                self.queue.get_pending_jobs_count()
            except Exception as exc:  # noqa: BLE001 - any failure here means "not ready"
                return Check("database", False, f"queue database not readable: {exc}")
            return Check("database", True, "queue database readable")
        try:
            self.queue.check_writable()
        except Exception as exc:  # noqa: BLE001 - any failure here means "not ready"
            return Check("database", False, f"queue database not writable: {exc}")
        return Check("database", True, "queue database reachable and writable")

    def _disk(self) -> Check:
        try:
            free = shutil.disk_usage(self.data_dir).free
        except OSError as exc:
            return Check("disk", False, f"cannot read free space of {self.data_dir}: {exc}")
        need = self.limits.min_free_disk_bytes
        return Check("disk", free >= need,
                     f"{free / 2**30:.2f} GiB free in {self.data_dir} (need {need / 2**30:.2f})")

    def _backlog(self) -> list[Check]:
        try:
            stats = self.queue.stats()
        except Exception as exc:  # noqa: BLE001
            return [Check("backlog", False, f"cannot read the queue: {exc}")]
        age = stats.oldest_queued_age or 0.0
        return [
            Check("backlog", stats.due <= self.limits.max_backlog,
                  f"{stats.due} due (limit {self.limits.max_backlog})"),
            Check("oldest_job", age <= self.limits.max_oldest_queued_age_seconds,
                  f"oldest queued job {age:.0f} s old "
                  f"(limit {self.limits.max_oldest_queued_age_seconds:.0f} s)"),
        ]
