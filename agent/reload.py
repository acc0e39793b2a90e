"""What a config reload (SIGHUP) may change in place, and what needs a restart."""

from __future__ import annotations

from typing import Any

from agent.config import Settings

# Applied without a restart. Everything else that changed is reported as needing one.
RELOADABLE = {
    "agent.log_level", "agent.log_format",
    "queue.job_timeout_seconds", "queue.max_retries", "queue.retry_backoff_seconds",
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
