"""A config reload (SIGHUP): what may change in place, what needs a restart, and applying it.

A reload is all or nothing: an invalid file, a folder that cannot be made or an inbox held by
another agent leaves the running config as it was.
"""

from __future__ import annotations

from typing import Any, Protocol

import structlog

from agent.config.settings import InboxSettings, Settings, load_config
from agent.errors import AgentError, ConfigError
from agent.events import EventBus
from agent.files.folders import InboxFolders
from agent.files.locks import AgentLocks
from agent.ops.health import HealthChecker
from agent.queue.base import JobQueue

log = structlog.get_logger("agent.ops.reload")


class RunningAgent(Protocol):
    """What a reload changes in the running agent (``agent.service.Agent``)."""

    settings: Settings
    queue: JobQueue
    locks: AgentLocks
    events: EventBus
    health: HealthChecker | None
    boxes: dict[str, InboxFolders]
    processors: list[Any]
    watch_service: Any
    watchers: list[Any]

    def guard_folders(self) -> None: ...


# Applied without a restart. Everything else that changed is reported as needing one.
RELOADABLE = {
    "agent.log_level", "agent.log_format",
    "queue.job_timeout_seconds", "queue.stall_timeout_seconds", "queue.max_retries",
    "queue.retry_backoff_seconds",
    "queue.retry_backoff_max_seconds", "queue.retention_days",
    "health.min_free_disk_bytes", "health.max_backlog", "health.max_oldest_queued_age_seconds",
    "processing.shutdown_grace_seconds",
}


def _flatten(settings: Settings) -> dict[str, Any]:
    data = settings.model_dump(exclude={"source"})
    flat: dict[str, Any] = {}
    for section, values in data.items():
        if section == "inbox":
            for box in values:
                flat[f"inbox[{box['name']}]"] = box
            continue
        for key, value in values.items():
            flat[f"{section}.{key}"] = value
    return flat


def changed_keys(old: Settings, new: Settings) -> list[str]:
    """Keys whose value differs; an inbox counts as one key, named by its name."""
    a, b = _flatten(old), _flatten(new)
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def needs_restart(keys: list[str]) -> list[str]:
    """Changed keys that a reload cannot apply (paths, ports, model, workers …)."""
    return [k for k in keys if k not in RELOADABLE and not k.startswith("inbox[")]


class Reloader:
    """Applies a re-read config to a running agent, in steps that each do one thing."""

    def __init__(self, agent: RunningAgent) -> None:
        self.agent = agent

    def reload(self) -> bool:
        agent = self.agent
        try:
            new = load_config(agent.settings.source)
        except ConfigError as exc:
            return self._reject(str(exc))
        changes = changed_keys(agent.settings, new)
        restart = needs_restart(changes)
        old_boxes = {b.name: b for b in agent.settings.inbox}
        new_boxes = {b.name: b for b in new.inbox}
        changed = [n for n in new_boxes if old_boxes.get(n) != new_boxes[n]]
        removed = [n for n in old_boxes if n not in new_boxes]
        replacements = {n: InboxFolders(new_boxes[n]) for n in changed}
        problems = self._prepare_inboxes(replacements, [new_boxes[n] for n in changed])
        if problems:
            return self._reject("; ".join(problems))
        for name in removed:
            agent.locks.unlock_inbox(name)
        self._apply_settings(new)
        self._swap_inboxes(replacements, removed)
        log.info("config reloaded", applied=[k for k in changes if k not in restart],
                 inboxes_rewatched=changed, inboxes_removed=removed)
        if restart:
            log.warning("some changes need a restart to apply", keys=restart)
        return True

    @staticmethod
    def _reject(reason: str) -> bool:
        log.error("config reload rejected; the running config stays", error=reason)
        return False

    def _prepare_inboxes(self, replacements: dict[str, InboxFolders],
                         boxes: list[InboxSettings]) -> list[str]:
        """Folders made and locks taken for the new or changed inboxes; problems if not."""
        problems = [p for box in replacements.values() for p in box.ensure()]
        try:
            for box in boxes:
                self.agent.locks.lock_inbox(box)
        except AgentError as exc:
            problems.append(str(exc))
        return problems

    def _apply_settings(self, new: Settings) -> None:
        """Logging, retry policy, lease, health limits, grace period: in place."""
        from agent.config.settings import lease_basis
        from agent.logs import configure_logging
        from agent.queue import lease_seconds
        from agent.queue.base import RetryPolicy

        agent = self.agent
        current = agent.settings
        configure_logging(new.agent.log_level, new.agent.log_format)
        agent.queue.configure(
            retry_policy=RetryPolicy(new.queue.max_retries, new.queue.retry_backoff_seconds,
                                     new.queue.retry_backoff_max_seconds),
            lease_seconds=lease_seconds(lease_basis(new.queue)))
        current.agent.log_level = new.agent.log_level
        current.agent.log_format = new.agent.log_format
        current.queue = new.queue.model_copy(update={
            "path": current.queue.path, "backend": current.queue.backend,
            "redis_url": current.queue.redis_url})
        current.health = new.health
        current.processing.shutdown_grace_seconds = new.processing.shutdown_grace_seconds
        current.inbox = new.inbox
        for processor in agent.processors:
            processor.settings = current
        if agent.health is not None:
            agent.health.limits = new.health

    def _swap_inboxes(self, replacements: dict[str, InboxFolders], removed: list[str]) -> None:
        """New and changed inboxes are watched from a fresh scan; removed ones stop."""
        from agent.intake.watcher import InboxWatcher

        agent = self.agent
        for name, box in replacements.items():
            agent.boxes[name] = box
            for processor in agent.processors:  # queued jobs of a removed inbox still finish
                processor.inboxes[name] = box
        agent.watch_service.replace(
            {n: InboxWatcher(b, agent.queue, agent.events) for n, b in replacements.items()},
            removed)
        agent.watchers = agent.watch_service.watchers
        agent.guard_folders()
