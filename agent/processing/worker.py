"""The pipeline runs in a worker subprocess, so a hung or crashing parser can be killed.

The worker loads the model once, then takes one request at a time over a pipe and answers
with progress messages and one outcome. The parent enforces the hard timeout.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing as mp
import os
import signal
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from multiprocessing.connection import Connection
from typing import Any

import structlog

from agent.config.settings import Settings
from agent.errors import PermanentError, TransientError, WorkerStartError
from agent.files.names import display_name
from agent.pipeline import JobRequest
from agent.pipeline.result import PipelineResult
from agent.processing.page_deadlines import PageDeadlines
from agent.stages import Stage

DEFAULT_FACTORY = "agent.pipeline:build_pipeline"


class Outcome(StrEnum):
    """How one job went in the worker."""

    OK = "ok"
    PERMANENT = "permanent"  # retrying cannot help
    TRANSIENT = "transient"  # retrying may help
    TIMEOUT = "timeout"  # killed past its ceiling, or stalled
    DIED = "died"  # the worker process ended under the job
    YIELDED = "yielded"  # paused at a checkpoint to let waiting files through


class ErrorKind(StrEnum):
    """The errors the processor treats apart from the rest (named as reported)."""

    FILE_CHANGED = "FileChangedError"  # changed under the worker: read again, no retry spent
    MEMORY_LIMIT = "MemoryLimit"  # past processing.worker_memory_mb: a fresh worker follows
    WORKER_DIED = "WorkerDied"


@dataclass(slots=True)
class WorkerOutcome:
    kind: Outcome
    result: PipelineResult | None = None  # with OK
    error_type: str = ""  # the exception's class name, or an ErrorKind's
    stage: str = ""
    message: str = ""
    skip_pages: tuple[str, ...] = ()  # with TIMEOUT: pictures whose OCR held the worker

    def is_error(self, kind: ErrorKind) -> bool:
        return self.error_type == kind.value


def _load_factory(spec: str) -> Callable[[Settings], Any]:
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]


def _die_with_parent() -> None:
    """Linux: the kernel kills the worker if the agent dies (kill -9), so no orphan goes on."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


# Signals a terminal, `timeout`, `kill -- -PGID` or systemd send to the whole process group: the
# agent handles them (finish the job within the grace period, or requeue it); the worker must
# not die of them mid-job. The parent stops the worker with SIGKILL.
PARENT_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


# What the worker and its parent say over the pipe. Parent → worker: a JobRequest, PAUSE
# during a job, None to stop. Worker → parent: Ready or Fatal once, then per job Progress
# messages and one WorkerOutcome.
@dataclass(frozen=True, slots=True)
class Ready:
    pid: int


@dataclass(frozen=True, slots=True)
class Fatal:
    message: str  # why the pipeline could not be loaded


@dataclass(frozen=True, slots=True)
class Progress:
    percent: int
    message: str
    embedded: int = 0  # chunks embedded since the last report


@dataclass(frozen=True, slots=True)
class Pause:
    """Pause at the next checkpoint (asked when files wait)."""


PAUSE = Pause()


class JobYielded(BaseException):
    """Raised inside the pipeline right after a checkpoint, when the agent asked the job to
    make way for waiting files (a BaseException: no parser's ``except Exception`` eats it)."""


def _worker_main(conn: Connection, settings: Settings, factory: str,
                 pages: PageDeadlines | None = None) -> None:
    _die_with_parent()
    for signum in PARENT_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, PARENT_SIGNALS)  # blocked by start() until now
    from agent.logs import StrayOutput, configure_logging

    _limit_memory(settings.processing.worker_memory_mb)
    if pages is not None:
        from agent.pipeline.pagewatch import install

        install(pages)
    current: dict[str, Any] = {}
    stderr = StrayOutput(lambda: dict(current)).start()
    configure_logging(settings.agent.log_level, "json", stream=stderr)
    try:
        pipeline = _load_factory(factory)(settings)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which exits clearly
        conn.send(Fatal(f"{type(exc).__name__}: {exc}"))
        return
    conn.send(Ready(os.getpid()))
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request is None:
            return
        if isinstance(request, Pause):
            continue  # asked after the job had already ended

        def progress(percent: int, message: str, embedded: int = 0, checkpoint: bool = False,
                     /) -> None:
            conn.send(Progress(percent, message, embedded))
            if checkpoint and conn.poll() and isinstance(conn.recv(), Pause):
                raise JobYielded  # just after a checkpoint: nothing read or embedded is lost

        current.update(job_id=request.job_id, inbox=request.inbox,
                       file=display_name(request.original_filename))
        _reset_peak_memory()
        try:
            with structlog.contextvars.bound_contextvars(**current):
                result = pipeline.run(request, progress)
            conn.send(WorkerOutcome(Outcome.OK, result=result))
        except JobYielded:
            conn.send(WorkerOutcome(Outcome.YIELDED, message="paused at a checkpoint"))
        except PermanentError as exc:
            conn.send(_failed(Outcome.PERMANENT, exc, exc.stage, str(exc)))
        except TransientError as exc:
            conn.send(_failed(Outcome.TRANSIENT, exc, exc.stage, str(exc)))
        except MemoryError:
            # Past processing.worker_memory_mb: this file fails, and a fresh worker (whose
            # memory is not fragmented by the attempt) takes the next job. Memory is still
            # short here (even a context manager's object may not be had: CI saw that turn
            # into "the worker died (exit code 1)" and a retry), so nothing may stop the exit
            # code that says why.
            try:
                conn.send(WorkerOutcome(Outcome.PERMANENT,
                                        error_type=ErrorKind.MEMORY_LIMIT.value,
                                        stage=getattr(pipeline, "current_stage", "")))
            except BaseException:  # noqa: BLE001, S110 - the exit code below says it all
                pass
            finally:
                os._exit(MEMORY_EXIT_CODE)
        except (OSError, sqlite3.OperationalError) as exc:  # full disk, lock
            stage = getattr(pipeline, "current_stage", "")
            conn.send(_failed(Outcome.TRANSIENT, exc, stage, str(exc) or type(exc).__name__))
        except Exception as exc:  # noqa: BLE001 - a parser bug on this file: retrying won't help
            stage = getattr(pipeline, "current_stage", "")
            conn.send(_failed(Outcome.PERMANENT, exc, stage, f"unexpected error: {exc}"))


MEMORY_EXIT_CODE = 75  # the worker ran out of its memory and left to be replaced


def _failed(kind: Outcome, exc: BaseException, stage: str, message: str) -> WorkerOutcome:
    return WorkerOutcome(kind, error_type=type(exc).__name__, stage=stage, message=message)


def _limit_memory(megabytes: int) -> None:
    """Cap the worker's data segment (heap and anonymous mappings): an allocation past it fails
    as ``MemoryError`` instead of growing until the OOM killer picks a process."""
    import resource

    limit = megabytes * 2**20
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def _reset_peak_memory() -> None:
    """Start the peak resident size (VmHWM) afresh for the job about to run."""
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def memory_of(pid: int | None) -> tuple[int, int]:
    """(resident, peak resident) MB of a process, from /proc; (0, 0) if unknown."""
    if pid is None:
        return 0, 0
    rss = peak = 0
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) // 1024
                elif line.startswith("VmHWM:"):
                    peak = int(line.split()[1]) // 1024
    except (OSError, ValueError):
        return 0, 0
    return rss, peak


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class WorkerProcess:
    """One worker subprocess; restarted by the processor after a timeout or a crash."""

    def __init__(self, settings: Settings, factory: str = DEFAULT_FACTORY,
                 start_timeout: float = 300.0) -> None:
        self.settings = settings
        self.factory = factory
        self.start_timeout = start_timeout
        self._proc: Any = None
        self._conn: Connection | None = None
        self._pages: PageDeadlines | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    def request_yield(self) -> None:
        """Ask the job in flight to pause at its next checkpoint (it then ends as
        ``yielded``; a job that has no more checkpoints to make just finishes)."""
        if self._conn is not None:
            with contextlib.suppress(BrokenPipeError, OSError):
                self._conn.send(PAUSE)

    def start(self) -> None:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        self._pages = PageDeadlines(ctx)
        self._proc = ctx.Process(target=_worker_main,
                                 args=(child, self.settings, self.factory, self._pages),
                                 name="ingest-worker", daemon=True)
        # The child inherits the blocked mask across exec, so a Ctrl-C while it is starting
        # cannot kill it before it has ignored the signal; here it is only delayed.
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, PARENT_SIGNALS)
        try:
            self._proc.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        child.close()
        self._conn = parent
        if not parent.poll(self.start_timeout):
            self.kill()
            raise WorkerStartError(f"the worker did not start within {self.start_timeout:.0f} s")
        try:
            message = parent.recv()
        except EOFError:
            code = self._exit_description()
            self.kill()
            raise WorkerStartError(f"the worker exited while starting ({code})") from None
        if isinstance(message, Fatal):
            self.kill()
            raise WorkerStartError(f"the worker could not load the pipeline: {message.message}")

    def suspend(self) -> None:
        """Freeze the worker mid-job (SIGSTOP): it holds its memory and resumes where it was."""
        if self._proc is not None and self._proc.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self._proc is not None and self._proc.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._proc.pid, signal.SIGCONT)

    def run(self, request: JobRequest, timeout: float,
            on_progress: Callable[[int, str, int], None],
            on_wait: Callable[[], float | None] | None = None,
            stall_timeout: float | None = None) -> WorkerOutcome:
        """Send one job and wait for its outcome, killing the worker past ``timeout`` or when
        it reports no progress for ``stall_timeout`` (a hung parser, a stopped process).
        Seconds ``on_wait`` returns are seconds the worker was suspended: they count toward
        neither limit."""
        proc, conn = self._proc, self._conn
        assert proc is not None and conn is not None
        deadline = time.monotonic() + timeout
        last_progress = time.monotonic()
        limit_mb = self.settings.processing.worker_memory_mb
        highest = 0
        paused = 0.0  # seconds the worker spent frozen during this job
        try:
            conn.send(request)
        except (BrokenPipeError, OSError):
            return WorkerOutcome(Outcome.DIED, error_type=ErrorKind.WORKER_DIED.value,
                                 message=f"worker gone before the job ({self._exit_description()})")
        while True:
            now = time.monotonic()
            remaining = deadline - now
            if remaining <= 0:
                self.kill()
                return WorkerOutcome(Outcome.TIMEOUT, message=f"killed after {timeout:g} s "
                                     "(the job's ceiling)")
            if stall_timeout is not None:
                quiet = now - last_progress
                if quiet >= stall_timeout:
                    self.kill()
                    return WorkerOutcome(Outcome.TIMEOUT, message=(
                        f"killed after {quiet:.0f} s without progress "
                        f"(stall_timeout_seconds = {stall_timeout:g})"))
                remaining = min(remaining, stall_timeout - quiet)
            if on_wait is not None:
                suspended = on_wait()
                if suspended:
                    deadline += suspended
                    last_progress += suspended
                    paused += suspended
                    continue
            late = self._pages.overdue(time.monotonic(), paused) if self._pages else []
            if late:
                self.kill()
                return WorkerOutcome(Outcome.TIMEOUT, stage=Stage.EXTRACT, skip_pages=tuple(late),
                                     message="one page's OCR ran far past its time "
                                             "(ocr.page_timeout_seconds) and was stopped")
            resident = memory_of(proc.pid)[0]
            highest = max(highest, resident)
            if resident > limit_mb:  # what the data limit does not count (a file mapping)
                self.kill()
                return self._out_of_memory("")
            try:
                if not conn.poll(min(remaining, 1.0)):
                    if not proc.is_alive():
                        raise EOFError
                    continue
                message = conn.recv()
            except (EOFError, OSError):
                proc.join(timeout=5)
                code = proc.exitcode
                description = _describe_exit(code)
                self.kill()
                if code == MEMORY_EXIT_CODE or (
                        code is not None and code < 0 and highest >= 0.8 * limit_mb):
                    return self._out_of_memory("")  # killed or aborted near its ceiling
                return WorkerOutcome(Outcome.DIED, error_type=ErrorKind.WORKER_DIED.value,
                                     message=f"the worker died ({description})")
            if isinstance(message, Progress):
                last_progress = time.monotonic()
                on_progress(message.percent, message.message, message.embedded)
                continue
            assert isinstance(message, WorkerOutcome), message
            if message.is_error(ErrorKind.MEMORY_LIMIT):  # the worker is leaving: see it gone
                proc.join(timeout=10)
                self.kill()
                return self._out_of_memory(message.stage)
            return message

    def _out_of_memory(self, stage: str) -> WorkerOutcome:
        limit = self.settings.processing.worker_memory_mb
        return WorkerOutcome(Outcome.PERMANENT, error_type=ErrorKind.MEMORY_LIMIT.value,
                             stage=stage,
                             message=f"needs more than {limit:,} MB to read "
                                     "(processing.worker_memory_mb)")

    @property
    def peak_mb(self) -> int:
        """The worker's peak resident size since its job began (0 if unknown)."""
        return memory_of(self.pid)[1]

    def _exit_description(self) -> str:
        return _describe_exit(self._proc.exitcode if self._proc is not None else None)

    def kill(self) -> None:
        """Kill the worker (it ignores SIGTERM, which belongs to the agent) and wait for it."""
        proc, conn = self._proc, self._conn
        self._proc, self._conn = None, None
        if proc is None:
            return
        if proc.is_alive():
            proc.kill()
            proc.join(timeout=10)
        if conn is not None:
            conn.close()

    def stop(self) -> None:
        """Ask the worker to finish, then make sure it has."""
        if self._conn is not None and self.alive:
            with contextlib.suppress(OSError):
                self._conn.send(None)
            self._proc.join(timeout=10)
        self.kill()
