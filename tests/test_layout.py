"""The house's shape, checked: no import runs in a circle, and the core (queue, pipeline,
watcher, processor) knows nothing of metrics, HTTP or the command line."""

from __future__ import annotations

import ast
from pathlib import Path

AGENT = Path(__file__).resolve().parent.parent / "agent"
CORE = ("agent.queue", "agent.pipeline", "agent.watcher", "agent.processor", "agent.folders",
        "agent.worker", "agent.names", "agent.events", "agent.config", "agent.sqlitedb")
EDGE_LIBRARIES = ("prometheus_client", "fastapi", "starlette", "uvicorn", "click", "http.server",
                  "agent.metrics", "agent.http_metrics", "agent.api", "agent.cli")


def _imports() -> dict[str, set[str]]:
    """Every agent module and the modules it imports (anywhere in it, even inside functions)."""
    found: dict[str, set[str]] = {}
    for path in AGENT.rglob("*.py"):
        name = ".".join(path.relative_to(AGENT.parent).with_suffix("").parts)
        name = name.removesuffix(".__init__")
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                deps.add(node.module)
            elif isinstance(node, ast.Import):
                deps.update(alias.name for alias in node.names)
        found[name] = deps
    return found


def test_no_module_imports_one_that_imports_it_back() -> None:
    """The import graph of agent/ has no cycle (not even through a function-level import)."""
    graph = {m: {d for d in deps if d.startswith("agent")} for m, deps in _imports().items()}
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        for dep in sorted(graph.get(node, ())):
            if dep in path:
                cycles.append(path[path.index(dep):] + [dep])
            elif len(path) < 40:
                visit(dep, [*path, dep])

    for module in sorted(graph):
        visit(module, [module])
    assert not cycles, f"import cycles: {cycles[:3]}"


def test_the_core_knows_nothing_of_metrics_http_or_cli() -> None:
    """Metrics, HTTP and the CLI hook in at the edges; the core never imports them."""
    offenders = {m: sorted(d for d in deps if d.startswith(EDGE_LIBRARIES))
                 for m, deps in _imports().items() if m.startswith(CORE)}
    assert {m: d for m, d in offenders.items() if d} == {}


def test_dependencies_are_what_agent_imports() -> None:
    """Issue 44: every distribution agent/ imports is declared in pyproject's dependencies
    (or an extra, when the import is the optional backend's), and nothing is declared there
    that agent/ never imports (hiredis, redis-py's parser, is loaded by redis-py itself)."""
    import importlib.metadata
    import re
    import sys
    import tomllib

    project = tomllib.loads((AGENT.parent / "pyproject.toml").read_text())["project"]

    def names(requirements: list[str]) -> set[str]:
        return {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower().replace("_", "-")
                for r in requirements}

    declared = names(project["dependencies"])
    extras = {name for group in project["optional-dependencies"].values()
              for name in names(group)}
    owners = importlib.metadata.packages_distributions()
    imported = {owner.lower().replace("_", "-")
                for deps in _imports().values() for module in deps
                if (top := module.split(".")[0]) not in sys.stdlib_module_names
                and top != "agent" for owner in owners.get(top, [top])}
    assert imported - declared - extras == set(), "imported, not declared"
    assert declared - imported == {"hiredis"}, "declared, never imported"
