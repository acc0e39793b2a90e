"""Shared fixtures: real SQLite files in temp folders, a controllable clock, leak checks."""

from __future__ import annotations

import functools
import inspect
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.queue.base import JobQueue, RetryPolicy
from agent.queue.sqlite import SQLiteJobQueue


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="run the full-size proofs too")


# What a test needs, read from its own source and its fixtures' (so the marks stay true as
# tests change): each becomes a marker, and `make test-quick` runs the tests that need none.
NEEDS = {
    "agent": re.compile(r'AgentProcess\(|\bcli\(|"-m", "agent"|\bProcessor\(|\bAgent\(|'
                        r'\bCOMMAND\b|"-m", "venv"|run_torture\('),
    "model": re.compile(r"IngestPipeline|\bSearcher\(|SharedSearcher|Embedder\(|embed_query"),
    "services": re.compile(r"RedisServer|redis_url|pg_dsn|pg_server|prometheus\b|promtool"),
    "browser": re.compile(r"playwright|chromium"),
    "bench": re.compile(r"benchmarks[./]"),
    "root": re.compile(r"\bmount\b|tmpfs|geteuid"),
}
PARAMETRIZED_BACKENDS = {"redis": "services", "postgres": "services"}


@functools.cache
def _source(func: object) -> str:
    try:
        return inspect.getsource(func)  # type: ignore[arg-type]
    except (OSError, TypeError):
        return ""


CALLED = re.compile(r"\b([A-Za-z_]\w*)\(")


def _with_helpers(source: str, module: object, depth: int = 2) -> list[str]:
    """``source`` and the sources of the test module's own functions and classes it calls
    (``_drain``, ``Runner``), ``depth`` calls deep."""
    found, frontier = [source], [source]
    for _ in range(depth):
        called = {name for text in frontier for name in CALLED.findall(text)}
        frontier = [_source(helper) for name in sorted(called)
                    if (helper := getattr(module, name, None)) is not None
                    and getattr(helper, "__module__", None) == getattr(module, "__name__", "")
                    and inspect.isfunction(helper) | inspect.isclass(helper)]
        found += frontier
    return found


def _needs(item: pytest.Item) -> set[str]:
    params = getattr(getattr(item, "callspec", None), "params", {})
    module = getattr(item, "module", None)
    sources = _with_helpers(_source(getattr(item, "function", None)), module)
    infos = getattr(item, "_fixtureinfo", None)
    for name in getattr(item, "fixturenames", ()):
        if name in params:  # a backend parameter: its value says what it needs
            continue
        definitions = infos.name2fixturedefs.get(name, ()) if infos is not None else ()
        for definition in definitions:
            sources += _with_helpers(_source(definition.func), module)
    needs = {need for need, pattern in NEEDS.items() if any(pattern.search(s) for s in sources)}
    needs |= {PARAMETRIZED_BACKENDS[v] for v in params.values()
              if isinstance(v, str) and v in PARAMETRIZED_BACKENDS}
    return needs


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Each test is marked with what it needs; full-size proofs are deselected (not skipped)
    unless asked for, so nothing counts as skipped."""
    for item in items:
        for need in _needs(item):
            item.add_marker(need)
    if config.getoption("--run-slow"):
        return
    keep = [item for item in items if "slow" not in item.keywords]
    dropped = [item for item in items if "slow" in item.keywords]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


class ManualClock:
    """A clock the test moves by hand, so lease expiry and backoff need no sleeping."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


POLICY = RetryPolicy(max_retries=2, base_delay=10, max_delay=25)


@pytest.fixture
def sqlite_queue(tmp_path: Path, clock: ManualClock) -> Iterator[SQLiteJobQueue]:
    q = SQLiteJobQueue(tmp_path / "queue.db", lease_seconds=60, retry_policy=POLICY, clock=clock)
    yield q
    q.close()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server (Debian's package, installed by `make test`) on a private socket."""
    from tests.helpers import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("redis"), aof=False)
    yield server.url
    server.stop()


@pytest.fixture(params=["sqlite", "redis"])
def queue(request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock) -> Iterator[JobQueue]:
    """Every contract test runs against both backends."""
    if request.param == "sqlite":
        q: JobQueue = SQLiteJobQueue(tmp_path / "queue.db", lease_seconds=60, retry_policy=POLICY,
                                   clock=clock)
    else:
        import uuid

        from agent.queue.redis_streams import RedisStreamsJobQueue

        q = RedisStreamsJobQueue(request.getfixturevalue("redis_url"),
                                 namespace=f"test-{uuid.uuid4().hex[:8]}", lease_seconds=60,
                                 retry_policy=POLICY, clock=clock)
    yield q
    q.close()  # type: ignore[attr-defined]


# Threads named so are pooled. By AnyIO for a module-scoped API server's sync endpoints; they
# end with that server, whose own thread the API tests check at teardown. By the executor of
# Playwright's event loop ("asyncio_N"), which lives as long as the browser tests'
# module-scoped browser.
POOLED_THREADS = ("AnyIO worker thread", "asyncio_")


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves threads (observers, workers) running behind it."""
    before = set(threading.enumerate())
    yield
    deadline = threading.Event()
    leaked: list[threading.Thread] = []
    for _ in range(50):
        leaked = [t for t in threading.enumerate()
                  if t not in before and t.is_alive() and not t.name.startswith(POOLED_THREADS)]
        if not leaked:
            break
        deadline.wait(0.1)
    assert not leaked, f"threads left running: {[t.name for t in leaked]}"


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A real Postgres 16 with pgvector (PyPI's pgserver) in a temp folder, on a unix socket."""
    import pgserver

    server = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
    yield server
    server.cleanup()


@pytest.fixture
def pg_dsn(pg_server: object) -> str:
    """A fresh database on the session's server, so tests do not see each other's rows."""
    import uuid

    import psycopg

    name = f"t_{uuid.uuid4().hex[:10]}"
    base = pg_server.get_uri()  # type: ignore[attr-defined]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return base.replace("/postgres?", f"/{name}?")
