"""What the core tells the edges: each fact a small dataclass, named once.

The watcher and the processor emit; metrics (and the service, to wake its processors) subscribe
to the kinds they need. The bus is synchronous and a failing subscriber never breaks the
emitter.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog


@dataclass(frozen=True, slots=True)
class FileDetected:
    """A file was queued (``source``: event, scan or startup)."""

    inbox: str
    source: str
    job_id: str


@dataclass(frozen=True, slots=True)
class FileIgnored:
    """The watcher skipped an entry (``reason``: a low-cardinality label)."""

    inbox: str
    reason: str


@dataclass(frozen=True, slots=True)
class WatcherOverflow:
    """inotify dropped events; a reconcile scan follows."""

    inbox: str


@dataclass(frozen=True, slots=True)
class ScanFinished:
    """A reconcile scan listed the inbox."""

    inbox: str
    reason: str
    files: int
    seconds: float


@dataclass(frozen=True, slots=True)
class JobStarted:
    """A job was claimed after waiting ``waited`` seconds in the queue."""

    inbox: str | None
    job_id: str
    waited: float


@dataclass(frozen=True, slots=True)
class StageTimed:
    """One pipeline stage of one job took ``seconds``."""

    inbox: str | None
    stage: str
    seconds: float


@dataclass(frozen=True, slots=True)
class JobRetried:
    """A job goes back to the queue and spends a retry (``reason``: the error type)."""

    inbox: str | None
    job_id: str
    reason: str
    delay: float


@dataclass(frozen=True, slots=True)
class JobRequeued:
    """A job goes back to the queue without spending a retry (its file changed, say)."""

    inbox: str | None
    job_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class JobTimedOut:
    """A job was killed for running past its time limit."""

    inbox: str | None
    job_id: str


@dataclass(frozen=True, slots=True)
class LeaseExpired:
    """A job's lease expired (its worker stopped answering) and the queue took it back."""

    inbox: str | None
    job_id: str
    status: str


@dataclass(frozen=True, slots=True)
class JobFinished:
    """A job ended (``outcome``: completed, duplicate, failed or timeout)."""

    inbox: str | None
    job_id: str
    outcome: str
    seconds: float
    chunks: int = 0
    bytes: int = 0
    mime: str | None = None
    ocr_pages: int = 0


@dataclass(frozen=True, slots=True)
class ChunksEmbedded:
    """The worker embedded ``chunks`` more chunks of the job in flight (checkpointed)."""

    inbox: str | None
    chunks: int


@dataclass(frozen=True, slots=True)
class WorkerStarted:
    """A worker subprocess loaded the pipeline in ``seconds`` (``reason``: start, timeout,
    died)."""

    reason: str
    seconds: float


E = TypeVar("E")
Subscriber = Callable[[Any], None]


class EventBus:
    """Delivers each event to the subscribers of its kind (and to those of every kind)."""

    def __init__(self) -> None:
        self._by_kind: dict[type, list[Subscriber]] = defaultdict(list)
        self._everything: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, kind: type[E], subscriber: Callable[[E], None]) -> None:
        with self._lock:
            self._by_kind[kind] = [*self._by_kind[kind], subscriber]

    def subscribe_all(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._everything = [*self._everything, subscriber]

    def emit(self, event: object) -> None:
        for subscriber in (*self._by_kind.get(type(event), ()), *self._everything):
            try:
                subscriber(event)
            except Exception:
                structlog.get_logger("agent.events").exception(
                    "event subscriber failed", event_kind=type(event).__name__)


class EventRecorder:
    """Keeps every event it is given (tests subscribe one to see what the core emitted)."""

    def __init__(self) -> None:
        self.events: list[object] = []
        self._lock = threading.Lock()

    def __call__(self, event: object) -> None:
        with self._lock:
            self.events.append(event)

    def of(self, kind: type[E]) -> list[E]:
        with self._lock:
            return [e for e in self.events if isinstance(e, kind)]
