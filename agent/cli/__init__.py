"""The ``ingest-agent`` command: one entry point, ``main``.

A search while an agent runs is answered through its socket before anything heavy is imported
(``agent.search.quick``: a few milliseconds, where importing click and pydantic would take a
quarter of a second); every other command, and every search the quick path leaves, goes to the
click commands in ``agent.cli.commands``.
"""

from __future__ import annotations

import sys
from typing import Any


def main() -> None:
    from agent.search.quick import answer_quickly

    status = answer_quickly(sys.argv[1:])
    if status is not None:
        sys.exit(status)
    from agent.cli.commands import cli

    cli(prog_name="ingest-agent")


def __getattr__(name: str) -> Any:
    """``agent.cli.cli``, the click group, imported only when asked for (tests, embedding)."""
    if name == "cli":
        from agent.cli.commands import cli

        return cli
    raise AttributeError(name)
