"""A tiny synchronous event bus: the core emits facts, metrics and logs subscribe at the edge."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    fields: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)


Subscriber = Callable[[Event], None]


class EventBus:
    """Delivers each event to every subscriber; a failing subscriber never breaks the emitter."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers = [*self._subscribers, subscriber]

    def emit(self, name: str, **fields: Any) -> None:
        event = Event(name, fields)
        for subscriber in self._subscribers:
            try:
                subscriber(event)
            except Exception:
                structlog.get_logger("agent.events").exception(
                    "event subscriber failed", event_name=name
                )


class EventRecorder:
    """Keeps every event it is given (tests subscribe one to see what the core emitted)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)

    def named(self, name: str) -> list[Event]:
        with self._lock:
            return [e for e in self.events if e.name == name]
