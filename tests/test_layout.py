"""The house's shape, checked: folders by concern in layers, nothing importing a layer above
its own or a sideways folder of its layer, no import running in a circle, and the core (files,
queue, pipeline, intake, processing, search) knowing nothing of metrics, HTTP or the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

AGENT = Path(__file__).resolve().parent.parent / "agent"
# Lowest first. A module may import its own folder and any folder of a lower layer; "agent"
# is the package's own __init__ only, so a module in a folder listed nowhere fails.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("agent", "agent.errors", "agent.events", "agent.identity", "agent.backoff", "agent.formats",
     "agent.stages",
     "agent.sqlitedb", "agent.logs", "agent.terminal", "agent.config"),
    ("agent.files",),
    ("agent.queue",),
    ("agent.pipeline",),
    ("agent.intake", "agent.processing", "agent.search"),
    ("agent.ops",),
    ("agent.web",),
    ("agent.service",),
    ("agent.cli",),
    ("agent.__main__",),
)
CORE = ("agent.files", "agent.queue", "agent.pipeline", "agent.intake", "agent.processing",
        "agent.search", "agent.events", "agent.config", "agent.sqlitedb")
EDGE_LIBRARIES = ("prometheus_client", "fastapi", "starlette", "uvicorn", "click", "http.server",
                  "agent.ops", "agent.web", "agent.cli")


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


def _folder(module: str) -> tuple[int, str]:
    """The layer and folder (the longest listed prefix) a module belongs to."""
    found = [(n, name) for n, names in enumerate(LAYERS) for name in names
             if module == name or (name != "agent" and module.startswith(name + "."))]
    assert found, f"{module} is in no layer of tests/test_layout.py"
    return max(found, key=lambda item: len(item[1]))


def test_every_folder_says_what_lives_in_it() -> None:
    """Each package under agent/ opens with a docstring: a newcomer reads the tree by it."""
    bare = [str(p.relative_to(AGENT.parent)) for p in AGENT.rglob("__init__.py")
            if ast.get_docstring(ast.parse(p.read_text())) is None]
    assert bare == []


def test_nothing_imports_upward_or_sideways() -> None:
    """Folders import only their own folder and lower layers: search, intake and processing
    never import one another; nothing below the web page imports it."""
    wrong = []
    for module, deps in _imports().items():
        layer, folder = _folder(module)
        for dep in (d for d in deps if d == "agent" or d.startswith("agent.")):
            dep_layer, dep_folder = _folder(dep)
            if dep_layer > layer or (dep_layer == layer and dep_folder != folder and layer > 0):
                wrong.append(f"{module} → {dep}")
    assert wrong == []


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
