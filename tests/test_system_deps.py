"""Every program the agent, its tests and its benchmarks call is installed by
`scripts/install-system-deps.sh` (or is part of every Debian system), so `make test` passes on
a fresh machine and not only on one that happens to have it (antiword did not, issue 41)."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "install-system-deps.sh"
SCANNED = ("agent", "tests", "benchmarks", "dashboards")
PREREQUISITE = "prerequisite"  # the README's: make, and git to clone
BASE = "base"  # Essential or Priority: required in Debian: on every Debian system

# program → (the Debian package that owns it, what installs it: a package of the script,
# PREREQUISITE or BASE). A program added to the code must be added here, which makes its
# author say how a fresh machine gets it.
PROGRAMS: dict[str, tuple[str, str]] = {
    "antiword": ("antiword", "antiword"),
    "catdoc": ("catdoc", "catdoc"),
    "catppt": ("catdoc", "catdoc"),
    "xls2csv": ("catdoc", "catdoc"),
    "soffice": ("libreoffice-common", "libreoffice-writer-nogui"),
    "libreoffice": ("libreoffice-common", "libreoffice-writer-nogui"),
    "tesseract": ("tesseract-ocr", "tesseract-ocr"),
    "chromium": ("chromium", "chromium"),
    "redis-server": ("redis-tools", "redis-server"),
    "prometheus": ("prometheus", "prometheus"),
    "promtool": ("prometheus", "prometheus"),
    "time": ("time", "time"),
    "systemd-analyze": ("systemd", "systemd"),
    "make": ("make", PREREQUISITE),
    "git": ("git", PREREQUISITE),
    "mount": ("mount", BASE),
    "umount": ("mount", BASE),
    "unshare": ("util-linux", BASE),
    "timeout": ("coreutils", BASE),
    "bash": ("bash", BASE),
    "dpkg-query": ("dpkg", BASE),
}
RUNTIME = {"catdoc", "tesseract"}  # called by the agent itself: `make run` installs them
SUBPROCESS_CALLS = {"run", "Popen", "check_output", "check_call", "call"}
COMMAND_WORD = re.compile(r"[a-z][a-z0-9.+_-]*")


def _literal(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _program(first: ast.expr) -> str | None:
    """The program a command list starts with: a literal ("/usr/bin/time" → "time"), or a
    helper that looks one up by its literal name (`_tool("promtool")`)."""
    if isinstance(first, ast.Call) and len(first.args) == 1:
        first = first.args[0]
    name = _literal(first)
    return Path(name).name if name else None


def programs_called() -> dict[str, list[str]]:
    """Every program the code calls, with where: `shutil.which("X")`, subprocess calls whose
    command list starts with one, and tables of commands (a dict of lists like
    `["antiword", "-w", "0"]`)."""
    found: dict[str, list[str]] = {}
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            where = str(path.relative_to(ROOT))
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names: list[str | None] = []
                if isinstance(node, ast.Call):
                    func = node.func
                    called = func.attr if isinstance(func, ast.Attribute) else \
                        getattr(func, "id", "")
                    if called == "which" and node.args:
                        names.append(_literal(node.args[0]))
                    elif called in SUBPROCESS_CALLS and node.args and isinstance(
                            node.args[0], (ast.List, ast.Tuple)) and node.args[0].elts:
                        names.append(_program(node.args[0].elts[0]))
                elif isinstance(node, ast.Dict):
                    for value in node.values:
                        if isinstance(value, ast.List) and len(value.elts) >= 2 and \
                                (_literal(value.elts[1]) or "").startswith("-"):
                            names.append(_program(value.elts[0]))
                for name in names:
                    if name and COMMAND_WORD.fullmatch(name):
                        found.setdefault(name, []).append(f"{where}:{getattr(node, 'lineno', 0)}")
    return found


def script_packages(*flags: str) -> set[str]:
    out = subprocess.run(["bash", str(SCRIPT), "--list", *flags], capture_output=True,
                         text=True, check=True).stdout
    return set(out.split())


def _owner(program: str) -> str | None:
    """The Debian package that owns the program found on PATH (links resolved)."""
    path = shutil.which(program)
    if path is None:
        return None
    for candidate in dict.fromkeys([os.path.realpath(path), path,
                                    str(Path("/bin") / program), str(Path("/usr/bin") / program)]):
        done = subprocess.run(["dpkg-query", "-S", candidate], capture_output=True, text=True)
        if done.returncode == 0:
            return done.stdout.split(":", 1)[0].split(",")[0].strip()
    return None


def test_every_program_called_is_known_and_installed_by_the_script() -> None:
    """Each program the code calls has an entry saying who installs it; the script installs
    every such package (the runtime's with --runtime too); base packages really are in every
    Debian system; the prerequisites are the README's."""
    called = programs_called()
    unknown = {name: where for name, where in called.items() if name not in PROGRAMS}
    assert not unknown, f"programs called with no entry in PROGRAMS: {unknown}"
    assert {"antiword", "catdoc", "chromium", "redis-server", "promtool", "tesseract",
            "systemd-analyze"} <= set(called), sorted(called)
    everything, runtime = script_packages(), script_packages("--runtime")
    for program, (owner, installer) in PROGRAMS.items():
        if installer == PREREQUISITE:
            assert f"`{program}`" in (ROOT / "README.md").read_text() or program == "git"
        elif installer == BASE:
            fields = subprocess.run(["dpkg-query", "-W", "-f=${Essential} ${Priority}", owner],
                                    capture_output=True, text=True, check=True).stdout
            assert fields.startswith("yes") or fields.endswith("required"), (owner, fields)
        else:
            assert installer in everything, f"{program}: {installer} is not installed"
            if program in RUNTIME:
                assert installer in runtime, f"{program}: {installer} is not in --runtime"


def test_each_program_comes_from_the_package_named() -> None:
    """After the script ran (`make test` runs it first), every program is on PATH and owned by
    the package its entry names, so the table cannot claim a package that does not bring it."""
    wrong = {program: (_owner(program), owner) for program, (owner, _) in PROGRAMS.items()
             if _owner(program) != owner}
    assert not wrong, f"program: (owned by, entry says) {wrong}"
