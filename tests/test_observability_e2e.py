"""A real Prometheus scrapes a running agent; every dashboard and alert expression is checked.

Prometheus and promtool come from Debian's `prometheus` package, which `make test` installs.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from agent.ops.metrics import AgentMetrics
from agent.queue.sqlite import SQLiteJobQueue
from tests.helpers import agent_config, free_port, wait_until

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS = ROOT / "dashboards"
METRIC = re.compile(r"\b(ingest_[a-z_]+|up)\b(?!\s*\()")


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not installed: `make test` installs Debian's prometheus package"
    return path


def _get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except OSError:
        return 0, b""


def dashboard_exprs() -> list[str]:
    board = json.loads((DASHBOARDS / "ingest-agent.json").read_text())
    return [t["expr"] for p in board["panels"] for t in p["targets"]]


def alert_rules() -> list[dict[str, str]]:
    rules = yaml.safe_load((DASHBOARDS / "alerts.yml").read_text())
    return [r for g in rules["groups"] for r in g["rules"]]


def concrete(expr: str) -> str:
    """Grafana's variables as Prometheus sees them with 'All' selected."""
    return (expr.replace("$__rate_interval", "1m").replace("$inbox", ".*")
            .replace("$instance", ".*"))


@pytest.fixture(scope="module")
def running_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    base = tmp_path_factory.mktemp("observed")
    port = free_port()
    config = agent_config(base, inbox={"name": "docs", "path": "inbox"},
                          metrics={"port": port})
    inbox = base / "inbox"
    inbox.mkdir()
    (inbox / "notes.txt").write_text("Observability means the agent can be watched on a board.")
    (inbox / "guide.md").write_text("# Guide\n\nDrop files in the inbox and they are indexed.")
    (inbox / "junk.pdf").write_bytes(b"\xfe\xed" + bytes(range(256)) * 8)
    proc = subprocess.Popen([sys.executable, "-m", "agent", "--config", str(config), "run"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: _get(f"http://127.0.0.1:{port}/readyz")[0] == 200, 90, "agent ready")

        def finished() -> bool:
            _, body = _get(f"http://127.0.0.1:{port}/metrics")
            text = body.decode()
            return (re.search(r'ingest_jobs\{queue="[^"]*",status="completed"\} 2\.0', text)
                    is not None and re.search(r'ingest_jobs\{queue="[^"]*",status="failed"\} '
                                              r'1\.0', text) is not None)

        wait_until(finished, 90, "the three files to be processed")
        yield port, base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def prometheus(running_agent: tuple[int, Path]) -> Iterator[str]:
    agent_port, base = running_agent
    proc, url = _prometheus(base, [f"127.0.0.1:{agent_port}"])
    try:
        wait_until(lambda: _get(f"{url}/-/ready")[0] == 200, 60, "prometheus ready")
        wait_until(lambda: _scraped(url, times=3), 60, "three scrapes of the agent")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _scraped(url: str, times: int) -> bool:
    """Every finished-jobs series has ``times`` samples: rate() over 1m then has data."""
    series = query(url, "ingest_jobs_finished_total[1m]")["result"]
    return bool(series) and all(len(s["values"]) >= times for s in series)  # type: ignore[index]


def query(url: str, expr: str) -> dict[str, Any]:
    code, body = _get(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    data = json.loads(body)
    assert code == 200 and data["status"] == "success", f"{expr}: {data.get('error')}"
    return data["data"]  # type: ignore[no-any-return]


def test_every_dashboard_expression_returns_data(prometheus: str) -> None:
    """Each panel query parses in a real Prometheus and returns series from the real agent."""
    for expr in dashboard_exprs():
        result = query(prometheus, concrete(expr))["result"]
        assert result, f"dashboard query returned no data: {expr}"


def test_every_alert_rule_is_healthy_and_wired_to_real_series(prometheus: str) -> None:
    """Prometheus loaded every rule and evaluated it without error; each metric it reads exists."""
    wait_until(lambda: all(r.get("health") == "ok" for g in json.loads(
        _get(f"{prometheus}/api/v1/rules")[1])["data"]["groups"] for r in g["rules"]),
        20, "every rule evaluated")
    groups = json.loads(_get(f"{prometheus}/api/v1/rules")[1])["data"]["groups"]
    loaded = {r["name"] for g in groups for r in g["rules"]}
    assert loaded == {r["alert"] for r in alert_rules()}
    for rule in alert_rules():
        query(prometheus, rule["expr"])  # parses and evaluates
        for metric in set(METRIC.findall(rule["expr"])):
            series = query(prometheus, f'count({{__name__="{metric}"}})')["result"]
            assert series, f"{rule['alert']}: no series named {metric}"


def test_alerts_are_quiet_on_a_healthy_agent(prometheus: str) -> None:
    """Nothing fires while the agent is healthy (one failed file of three is no alarm)."""
    alerts = json.loads(_get(f"{prometheus}/api/v1/alerts")[1])["data"]["alerts"]
    assert [a["labels"]["alertname"] for a in alerts if a["state"] == "firing"] == []


def test_promtool_check_metrics_on_a_real_scrape(running_agent: tuple[int, Path]) -> None:
    """The live /metrics output passes promtool's linter."""
    port, _ = running_agent
    _, body = _get(f"http://127.0.0.1:{port}/metrics")
    proc = subprocess.run([_tool("promtool"), "check", "metrics"], input=body,
                          capture_output=True)
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()


def test_idle_and_half_sent_connections_do_not_blind_the_metrics_port(
        running_agent: tuple[int, Path]) -> None:
    """Issue 42 item 3: an idle socket and one that sent half a request line stay open while
    /healthz, /readyz and /metrics answer; the server cuts both after its request timeout."""
    from agent.ops.metrics_server import REQUEST_TIMEOUT

    port, _ = running_agent
    idle = socket.create_connection(("127.0.0.1", port))
    half = socket.create_connection(("127.0.0.1", port))
    half.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # no blank line
    try:
        for path in ("/healthz", "/readyz", "/metrics"):
            code, _ = _get(f"http://127.0.0.1:{port}{path}", timeout=REQUEST_TIMEOUT / 2)
            assert code == 200, f"{path} answered {code} with two silent sockets open"
        for sock in (idle, half):
            sock.settimeout(REQUEST_TIMEOUT * 4)
            assert sock.recv(1024) == b"", "the server closes a connection that sends nothing"
    finally:
        idle.close()
        half.close()


def test_promtool_checks_and_unit_tests_the_rules() -> None:
    """promtool check rules and promtool test rules pass on the shipped files."""
    check = subprocess.run([_tool("promtool"), "check", "rules", str(DASHBOARDS / "alerts.yml")],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 11 rules found" in check.stdout
    tests = subprocess.run([_tool("promtool"), "test", "rules", "alerts.test.yml"],
                           capture_output=True, text=True, cwd=DASHBOARDS)
    assert tests.returncode == 0, tests.stdout + tests.stderr


def test_example_scrape_config_is_valid(tmp_path: Path) -> None:
    """The shipped scrape config passes promtool check config (rules path pointed at ours)."""
    text = (DASHBOARDS / "prometheus.example.yml").read_text().replace(
        "/etc/prometheus/rules/ingest-agent-alerts.yml", str(DASHBOARDS / "alerts.yml"))
    config = tmp_path / "prometheus.yml"
    config.write_text(text)
    proc = subprocess.run([_tool("promtool"), "check", "config", str(config)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dashboard_structure(tmp_path: Path) -> None:
    """Stable uid, pinned schema, datasource variable on every panel and query, inbox variable,
    $__rate_interval in every rate, and only metric names the exporter really has."""
    board = json.loads((DASHBOARDS / "ingest-agent.json").read_text())
    assert board["uid"] == "ingest-agent-overview" and isinstance(board["schemaVersion"], int)
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["inbox"]["includeAll"] and variables["inbox"]["allValue"] == ".*"
    assert "DS_PROMETHEUS" not in json.dumps(board)
    queue = SQLiteJobQueue(tmp_path / "q.db")
    registry = CollectorRegistry()
    AgentMetrics(registry, queue, ["docs"], watcher_state=lambda: [("docs", True, 0, 1.0)],
                 worker_alive=lambda: True)
    exported = set(re.findall(r"^([a-z_]+)(?:\{| )", generate_latest(registry).decode(), re.M))
    queue.close()
    exported.add("up")
    for panel in board["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], f"panel {panel['title']} has no query"
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
            expr = target["expr"]
            if "rate(" in expr or "increase(" in expr:
                assert "[$__rate_interval]" in expr, expr
            for metric in METRIC.findall(expr):
                assert metric in exported, f"{panel['title']}: {metric} is not exported"
    built = subprocess.run([sys.executable, str(DASHBOARDS / "build.py"), "--check"],
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stdout


def _prometheus(base: Path, targets: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    """A real Prometheus scraping ``targets`` every second, with the shipped alert rules."""
    port = free_port()
    config = base / "prometheus.yml"
    config.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(DASHBOARDS / "alerts.yml")],
        "scrape_configs": [{"job_name": "ingest-agent",
                            "static_configs": [{"targets": targets}]}],
    }))
    proc = subprocess.Popen(
        [_tool("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={base / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, f"http://127.0.0.1:{port}"


def test_two_agents_on_one_queue_count_its_backlog_once(tmp_path: Path) -> None:
    """Two agents share one Redis queue and both export its gauges: the dashboard's backlog,
    status and oldest-job expressions, evaluated by a real Prometheus scraping both, equal the
    queue's true figures (not twice them)."""
    from tests.helpers import SCRIPTED, AgentProcess, RedisServer, agent_config, cli

    (tmp_path / "redis").mkdir()
    redis = RedisServer(tmp_path / "redis")
    ports = [free_port(), free_port()]
    configs = [agent_config(tmp_path, name, agent={"data_dir": f"{name}-data"},
                            inbox={"mode": "poll", "poll_interval_seconds": 0.3},
                            queue={"backend": "redis", "redis_url": redis.url,
                                   "redis_namespace": "shared", "job_timeout_seconds": 300},
                            metrics={"port": port},
                            processing={"shutdown_grace_seconds": 0.5})
               for name, port in zip(("a", "b"), ports, strict=True)]
    agents = [AgentProcess(c, pipeline=SCRIPTED) for c in configs]
    prometheus, url = _prometheus(tmp_path, [f"127.0.0.1:{p}" for p in ports])
    try:
        for agent in agents:
            agent.ready()
        inbox = tmp_path / "inbox"
        for i in range(5):
            (inbox / f"slow{i}.txt").write_text("SLEEP 120\n")

        def settled() -> dict[str, object] | None:
            status = json.loads(cli(configs[0], "status", "--json").stdout)
            counts = status["counts"]
            return status if counts["processing"] == 2 and counts["queued"] == 3 else None

        status = wait_until(settled, 90, "two jobs running, three waiting")
        assert status["backlog"]["due"] == 3
        wait_until(lambda: _scraped_both(url), 60, "both agents scraped")
        board = {t["legendFormat"]: t["expr"] for expr_panel in json.loads(
            (DASHBOARDS / "ingest-agent.json").read_text())["panels"]
            for t in expr_panel["targets"]}
        backlog = {r["metric"]["state"]: float(r["value"][1])  # type: ignore[index]
                   for r in query(url, concrete(board["{{state}}"]))["result"]}
        assert backlog == {"due": 3.0, "retry_wait": 0.0}
        by_status = {r["metric"]["status"]: float(r["value"][1])  # type: ignore[index]
                     for r in query(url, concrete(board["{{status}}"]))["result"]}
        assert by_status["queued"] == 3 and by_status["processing"] == 2
        naive = query(url, 'sum(ingest_backlog_jobs{state="due"})')["result"]
        assert float(naive[0]["value"][1]) == 6, "each agent reports the shared queue"  # type: ignore[index]
        assert status["counts"]["queued"] == 3
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=20)
        for agent in agents:
            agent.kill()
        redis.stop()


def _scraped_both(url: str) -> bool:
    result = query(url, 'count by (instance) (ingest_backlog_jobs{state="due"})')["result"]
    return len(result) == 2  # type: ignore[arg-type]
