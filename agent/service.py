"""Builds the whole agent from its settings and runs it until a signal says stop.

SIGTERM/SIGINT: stop claiming, let the current job finish within
``processing.shutdown_grace_seconds``, else kill it and requeue it uncounted; exit 0.
A second signal kills the current job at once, still without losing its file.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog

from agent.config.settings import Settings
from agent.errors import AgentError
from agent.events import EventBus, FileDetected
from agent.files.folders import InboxFolders, build_inboxes
from agent.identity import agent_id
from agent.intake.watch_service import WatchService
from agent.intake.watcher import InboxWatcher
from agent.ops.health import HealthChecker
from agent.ops.system import libmagic_problem, ocr_problem
from agent.processing.processor import Processor
from agent.processing.worker import DEFAULT_FACTORY
from agent.queue import JobStatus, open_queue

log = structlog.get_logger("agent.service")


class Agent:
    """The watchers, the processors, the metrics exporter, the web page and API and the search
    socket, wired together around one queue and one event bus."""

    def __init__(self, settings: Settings, *, factory: str = DEFAULT_FACTORY,
                 events: EventBus | None = None) -> None:
        self.settings = settings
        self.events = events or EventBus()
        self.boxes: dict[str, InboxFolders] = {b.name: b for b in build_inboxes(settings)}
        if not self.boxes:
            raise AgentError(f"{settings.source or 'config'}: no [[inbox]] configured")
        missing = libmagic_problem()
        if missing is not None:
            raise AgentError(missing)
        ocr_missing = ocr_problem(settings.ocr)
        if ocr_missing is not None:
            log.warning("ocr unavailable", problem=ocr_missing)
        created = [str(f) for f in [settings.agent.data_dir,
                                    *(f for b in self.boxes.values() for f in b.all_dirs())]
                   if not f.exists()]
        problems = [p for box in self.boxes.values() for p in box.ensure()]
        if problems:
            raise AgentError("; ".join(problems))
        if created:
            log.warning("created missing folders (check the config if a path has a typo)",
                        folders=created)
        for box in self.boxes.values():
            if not box.same_filesystem():
                log.warning("inbox and work folders are on different file systems: files are "
                            "moved by copy + fsync + rename + unlink", inbox=box.name)
        settings.agent.data_dir.mkdir(parents=True, exist_ok=True)
        self._pin_folders()
        from agent.files.locks import AgentLocks

        self.locks = AgentLocks(settings).acquire()
        self.queue = open_queue(settings)
        self.watchers = [InboxWatcher(b, self.queue, self.events) for b in self.boxes.values()]
        self.watch_service = WatchService(self.watchers)
        # processing.workers: N processors, each with its own worker subprocess and model.
        self.processors = [Processor(settings, self.queue, self.boxes, self.events,
                                     factory=factory, slot=n)
                           for n in range(settings.processing.workers)]
        self.processor = self.processors[0]
        self.events.subscribe(FileDetected, self._wake_processors)
        self.metrics_server: Any = None
        self.health: HealthChecker | None = None
        if settings.metrics.enabled:
            self._setup_metrics()
        from agent.search.engine import SharedSearcher

        self.searcher = SharedSearcher(settings)
        self.api_server: Any = None
        self.search_socket: Any = None
        if settings.search.socket:
            from agent.search.channel import SearchSocketServer, socket_path

            self.search_socket = SearchSocketServer(socket_path(settings.agent.data_dir),
                                                    self.searcher.answer_dict)
        self.stop_event = threading.Event()
        from agent.ops.systemd import Notifier

        self.notifier = Notifier()
        self._signals = 0
        self._reload_lock = threading.Lock()
        self._grace_timer: threading.Timer | None = None
        self.on_ready: list[Callable[[], None]] = []

    def _pin_folders(self) -> None:
        """Refuse folders that are links or were replaced since the last run; guard the data
        folder and every inbox's work folders against being moved into an inbox."""
        from agent.files.folder_record import check_folders
        from agent.files.folders import PinnedFolder

        data_dir = self.settings.agent.data_dir
        if data_dir.is_symlink():
            raise AgentError(f"data_dir {data_dir} is a symbolic link (to "
                             f"{os.path.realpath(data_dir)}); set the folder itself")
        self.data_pin = PinnedFolder.open(data_dir)
        problems = check_folders([pin for box in self.boxes.values() for pin in box.pins()],
                                 data_dir)
        if problems:
            raise AgentError("; ".join(problems))
        self.guard_folders()

    def guard_folders(self) -> None:
        """Each inbox learns the agent's own folders (again after a reload changed inboxes)."""
        pins = [self.data_pin, *(pin for box in self.boxes.values() for pin in box.pins())]
        for box in self.boxes.values():
            box.guard(pins)

    def _setup_metrics(self) -> None:
        from prometheus_client import CollectorRegistry

        from agent.ops.metrics import AgentMetrics

        self.registry = CollectorRegistry()
        self.metrics = AgentMetrics(
            self.registry, self.queue, list(self.boxes),
            watcher_state=lambda: [(w.box.name, w.up, w.waiting, w.last_scan_at)
                                   for w in self.watchers],
            worker_alive=self._workers_alive,
        )
        self.metrics.subscribe(self.events)
        data_dir = self.settings.agent.data_dir
        self.health = HealthChecker(
            self.queue, data_dir, self.settings.health,
            watchers=lambda: [(w.box.name, w.up, w.problem) for w in self.watchers],
            worker_alive=self._workers_alive,
            identity={"id": agent_id(data_dir), "data_dir": str(data_dir),
                      "config": str(self.settings.source or "built-in defaults")},
        )

    def _wake_processors(self, _event: FileDetected) -> None:
        for processor in self.processors:
            processor.wake.set()

    def _workers_alive(self) -> bool:
        return all(p.worker.alive for p in self.processors)

    def _listen(self, drain: bool) -> None:
        """Take the metrics and web page ports before anything starts: a port that cannot be
        had is one line naming its holder and the key to change, not a half-started agent.
        A page that is on only by default and finds its port taken is left off with a
        warning, and the agent runs on."""
        from agent.ops.listeners import Port, PortUnavailable, listen

        config = str(self.settings.source or "the config")
        if self.settings.metrics.enabled:
            from agent.ops.metrics_server import MetricsServer

            assert self.health is not None  # made with the metrics, in __init__
            metrics = self.settings.metrics
            self.metrics_server = MetricsServer(
                self.registry, self.health, listen(Port("metrics", metrics.host, metrics.port,
                                                        config)))
        if not self._page_wanted(drain):
            return
        from agent.config.settings import anonymous_api_problem

        api = self.settings.api
        try:
            problem = anonymous_api_problem(api)
            if problem is not None:
                raise AgentError(problem)
            listener = listen(Port("api", api.host, api.port, config))
        except PortUnavailable as exc:
            if exc.taken and "enabled" not in api.model_fields_set:
                log.warning("web page not served: its port is taken; set api.port, or "
                            "api.enabled = false", error=str(exc))
                return
            self._close_metrics()
            raise
        except AgentError:
            self._close_metrics()
            raise
        from agent.web.api import ApiServer, create_app

        app = create_app(self.settings, self.queue, self.boxes, self.searcher, self.health,
                         self.events)
        self.api_server = ApiServer(app, listener, self.settings.api)

    def _close_metrics(self) -> None:
        if self.metrics_server is not None:
            self.metrics_server.server.server_close()
            self.metrics_server = None

    def _start_search_socket(self) -> None:
        """Serve CLI searches locally; an agent that cannot bind the socket (a path too long
        for a Unix socket, a read-only folder) still runs, and the CLI searches by itself."""
        if self.search_socket is None:
            return
        try:
            self.search_socket.start()
        except OSError as exc:
            log.warning("search socket not served: `ingest-agent search` will load the model "
                        "itself", path=str(self.search_socket.path), error=str(exc))
            self.search_socket = None

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGHUP, lambda *_: threading.Thread(
            target=self.reload, name="config-reload", daemon=True).start())

    def reload(self) -> bool:
        """Re-read the config file and apply what can change in place; keep it all if invalid."""
        from agent.ops.reload import Reloader

        with self._reload_lock:
            return Reloader(self).reload()

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self._signals += 1
        name = signal.Signals(signum).name
        if self._signals == 1:
            log.info("stopping: finishing the current job", signal=name,
                     grace_seconds=self.settings.processing.shutdown_grace_seconds)
            self.request_stop()
        else:
            log.warning("second signal: interrupting the current job now", signal=name)
            for processor in self.processors:
                processor.abort_current()

    def request_stop(self) -> None:
        if self.stop_event.is_set():
            return
        self.stop_event.set()
        for processor in self.processors:
            processor.wake.set()
        self.notifier.stopping()
        self._grace_timer = threading.Timer(self.settings.processing.shutdown_grace_seconds,
                                            self._grace_over)
        self._grace_timer.daemon = True
        self._grace_timer.start()

    def _grace_over(self) -> None:
        for processor in self.processors:
            if processor.current is not None:
                log.warning("grace period over: interrupting the current job")
                processor.abort_current()

    def _page_wanted(self, drain: bool) -> bool:
        """The web page and API are served unless switched off; a drain run (a batch that
        ends when its work does) serves them only when the config asks for them by name."""
        api = self.settings.api
        return api.enabled and (not drain or "enabled" in api.model_fields_set)

    def _start_api(self) -> None:
        self.api_server.start()
        base = f"http://{self.settings.api.host}:{self.api_server.port}"
        log.info("web page served", url=f"{base}/", api=f"{base}/docs")

    def run(self, *, drain: bool = False) -> int:
        """Run in the foreground; with ``drain`` stop once nothing is waiting or queued."""
        started = time.monotonic()
        self._listen(drain)
        if self.metrics_server is not None:
            self.metrics_server.start()
            log.info("metrics and health served", url=f"http://{self.settings.metrics.host}:"
                     f"{self.metrics_server.port}/metrics")
        try:
            for processor in self.processors:
                processor.start(recover=processor is self.processor)
            if self.api_server is not None:
                self._start_api()
            self._start_search_socket()
        except BaseException:
            if self.metrics_server is not None:
                self.metrics_server.stop()
            for processor in self.processors:
                processor.stop()
            raise
        try:
            self.watch_service.start()
            log.info("agent ready", inboxes=list(self.boxes), queue=str(self.settings.queue_path),
                     startup_seconds=round(time.monotonic() - started, 2))
            for callback in self.on_ready:
                callback()
            self.notifier.ready(self.status_line())
            self.notifier.start_watchdog(self.healthy_for_watchdog, self.status_line)
            self._process(until_drained=drain)
        finally:
            if self._grace_timer is not None:
                self._grace_timer.cancel()
            self.notifier.stopping()
            self.notifier.close()
            self.watch_service.stop()
            for processor in self.processors:
                processor.stop()
            if self.api_server is not None:
                self.api_server.stop()
            if self.search_socket is not None:
                self.search_socket.stop()
            if self.metrics_server is not None:
                self.metrics_server.stop()
            self.queue.close()
            self.locks.release()
        log.info("agent stopped")
        return 0

    def status_line(self) -> str:
        """One line for systemctl status: backlog and the current job."""
        try:
            stats = self.queue.stats()
        except Exception:  # noqa: BLE001 - a status line must never fail the agent
            return "queue unreadable"
        files = [p.current.original_filename for p in self.processors if p.current is not None]
        doing = f"processing {', '.join(str(f) for f in files)}" if files else "idle"
        return (f"{stats.due} due, {stats.waiting_retry} waiting to retry, "
                f"{stats.counts.get(JobStatus.COMPLETED, 0)} completed; {doing}")

    def healthy_for_watchdog(self, max_tick_age: float = 30.0) -> bool:
        """The main loop ticked recently, the watch thread runs and the worker is up."""
        now = time.monotonic()
        loops_alive = all(now - p.last_tick < max_tick_age for p in self.processors)
        return loops_alive and self.watch_service.thread_alive and self._workers_alive()

    def _process(self, *, until_drained: bool) -> None:
        """Every processor in a thread of its own until a stop (or, draining, until nothing is
        waiting, queued or in progress for a few rounds in a row)."""
        finish = threading.Event() if until_drained else self.stop_event
        threads = [threading.Thread(target=p.run_forever, args=(finish,),
                                    name=f"processor-{p.slot}", daemon=True)
                   for p in self.processors]
        for thread in threads:
            thread.start()
        if until_drained:
            self._wait_until_drained(finish)
        for thread in threads:
            thread.join()

    def _wait_until_drained(self, finish: threading.Event, quiet_rounds: int = 3) -> None:
        quiet = 0
        while not self.stop_event.is_set() and quiet < quiet_rounds:
            self.stop_event.wait(0.3)
            counts = self.queue.stats().counts
            busy = any(p.current is not None for p in self.processors)
            idle = (sum(w.waiting for w in self.watchers) == 0 and not busy
                    and counts.get(JobStatus.QUEUED, 0) == 0
                    and counts.get(JobStatus.PROCESSING, 0) == 0)
            quiet = quiet + 1 if idle else 0
        finish.set()
