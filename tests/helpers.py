"""What many tests and benchmarks need: configs, a real agent process, the CLI, waits, servers.

Waits are on states, never fixed sleeps. Timeouts are generous and scaled by
``INGEST_TEST_TIME_SCALE`` (default 1; raise it on a slow or busy machine).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from agent.queue.base import Job, JobQueue

ROOT = Path(__file__).resolve().parent.parent
SCRIPTED = "tests.pipelines:build"
TIME_SCALE = float(os.environ.get("INGEST_TEST_TIME_SCALE", "1"))


def scaled(seconds: float) -> float:
    return seconds * TIME_SCALE


def wait_until(predicate: Callable[[], Any], timeout: float, what: str,
               interval: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + scaled(timeout)
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {scaled(timeout):.0f} s waiting for {what}")
        time.sleep(interval)


def entries(folder: Path) -> list[str]:
    """A folder's entry names, sorted, without the agent's own inbox lock files."""
    from agent.files.locks import OWN_FILES

    return sorted(p.name for p in folder.iterdir() if p.name not in OWN_FILES)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def write_config(path: Path, sections: Mapping[str, Any]) -> Path:
    """A TOML file from {"agent": {...}, "inbox": [{...}], "queue": {...}} (lists → [[table]])."""
    lines: list[str] = []
    for section, body in sections.items():
        tables = body if isinstance(body, list) else [body]
        for table in tables:
            lines.append(f"[[{section}]]" if isinstance(body, list) else f"[{section}]")
            lines += [f"{key} = {_toml_value(value)}" for key, value in table.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def agent_config(base: Path, name: str = "agent", *, inbox: Mapping[str, Any] | None = None,
                 **sections: Mapping[str, Any]) -> Path:
    """A config for one agent under ``base``: inbox ``box`` at ``base/inbox`` by default, JSON
    logs, metrics and the web page on free ports; keyword sections are merged over these."""
    config: dict[str, Any] = {
        "agent": {"data_dir": "data", "log_format": "json"},
        "inbox": [{"name": "box", "path": "inbox", "settle_seconds": 0.2, **(inbox or {})}],
        "metrics": {"port": 0},
        "api": {"port": 0},
    }
    for section, values in sections.items():
        config[section] = {**config.get(section, {}), **values}
    return write_config(base / f"{name}.toml", config)


def cli(config: Path, *args: str, timeout: float = 120,
        env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The installed command, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "agent", "--config", str(config), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=scaled(timeout),
                          env={**os.environ, **(env or {})})


def drain(base: Path, *files: Path, timeout: float = 300) -> tuple[Path, dict[str, Any]]:
    """Copy real ``files`` into a fresh agent's inbox and run it until they are all filed, as
    `ingest-agent run --drain`: its config, and its jobs by file name."""
    import shutil

    config = agent_config(base)
    (base / "inbox").mkdir(exist_ok=True)
    for file in files:
        shutil.copy(file, base / "inbox" / file.name)
    out = cli(config, "run", "--drain", timeout=timeout)
    assert out.returncode == 0, out.stderr[-2000:]
    return config, {job["original_filename"]: job for job in jobs(config)}


def jobs(config: Path) -> list[dict[str, Any]]:
    out = cli(config, "jobs", "--limit", "100000", "--json")
    assert out.returncode == 0, out.stderr
    return list(json.loads(out.stdout))


def job(config: Path, job_id: str) -> dict[str, Any]:
    out = cli(config, "job", job_id, "--json")
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))


def readyz(port: int) -> dict[str, Any]:
    """The agent's /readyz answer (ready or not) from its metrics port."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
            return dict(json.load(r))
    except urllib.error.HTTPError as err:
        return dict(json.load(err))


def watcher_check(port: int, inbox: str = "box") -> dict[str, Any]:
    """The readiness check of one inbox's watcher."""
    return dict(next(c for c in readyz(port)["checks"] if c["name"] == f"watcher:{inbox}"))


class AgentProcess:
    """``ingest-agent run`` in its own process group, logging JSON lines to a file."""

    def __init__(self, config: Path, *args: str, env: Mapping[str, str] | None = None,
                 pipeline: str | None = None, max_descriptors: int | None = None) -> None:
        self.config = config
        self.log_path = config.with_suffix(".log")
        extra = [f"--pipeline={pipeline}"] if pipeline else []
        self._offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "agent", "--config", str(config), "run", *extra, *args],
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, **(env or {})},
                preexec_fn=None if max_descriptors is None else functools.partial(
                    resource.setrlimit, resource.RLIMIT_NOFILE,
                    (max_descriptors, max_descriptors)))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def logs(self) -> list[dict[str, Any]]:
        """This run's JSON log lines (an earlier run with the same config logged above them)."""
        out = []
        for line in self.text().splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out

    def text(self) -> str:
        with open(self.log_path, "rb") as fh:
            fh.seek(self._offset)
            return fh.read().decode(errors="replace")

    def wait_log(self, event: str, timeout: float = 120, **fields: Any) -> dict[str, Any]:
        """The first log line with this event (and fields); fails if the agent exits first."""
        def found() -> dict[str, Any] | None:
            for entry in self.logs():
                if entry.get("event") == event and all(entry.get(k) == v
                                                       for k, v in fields.items()):
                    return entry
            if self.proc.poll() is not None:
                raise AssertionError(f"the agent exited ({self.proc.returncode}) before "
                                     f"{event!r}:\n{self.text()[-3000:]}")
            return None
        return dict(wait_until(found, timeout, f"log line {event!r} {fields or ''}"))

    def ready(self, timeout: float = 180) -> AgentProcess:
        self.wait_log("agent ready", timeout)
        return self

    def signal_group(self, signum: int) -> None:
        """As a terminal, `timeout` or systemd do: the whole process group."""
        os.killpg(self.proc.pid, signum)

    def stop(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=scaled(timeout))
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError("the agent did not stop within "
                                     f"{scaled(timeout):.0f} s:\n{self.text()[-3000:]}") from None
        return int(self.proc.returncode)

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)


class RedisServer:
    """A private redis-server (Debian's package) on a unix socket in ``folder``; restartable."""

    def __init__(self, folder: Path, *, aof: bool = True) -> None:
        self.folder = folder
        self.sock = folder / "redis.sock"
        self.aof = aof
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"unix://{self.sock}"

    def start(self) -> None:
        server = shutil.which("redis-server")
        assert server, "redis-server is not installed: `make test` installs Debian's redis-server"
        persistence = (["--appendonly", "yes", "--appendfsync", "everysec"] if self.aof
                       else ["--appendonly", "no"])
        self.proc = subprocess.Popen(
            [server, "--port", "0", "--unixsocket", str(self.sock), "--unixsocketperm", "700",
             "--save", "", *persistence, "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self.sock.exists, 20, "redis-server to listen", interval=0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
            self.proc = None


def claim_next(queue: JobQueue, worker_id: str | None = None, **kwargs: Any) -> Job:
    """The next due job, claimed; a test that expects one fails here if none is due."""
    job = queue.get_next_job(worker_id, **kwargs)
    assert job is not None, "a job was due"
    return job
