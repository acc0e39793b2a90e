"""What every command shares: the click group, the context with the config and settings, and
printing for people and for programs."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from agent import __version__
from agent.errors import AgentError
from agent.search.output import json_text as _json_text
from agent.terminal import terminal_text

if TYPE_CHECKING:
    from agent.config.settings import Settings
    from agent.queue import JobQueue

class Context:
    """What every command shares: the config path and the lazily loaded settings."""

    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from agent.config.settings import find_config_path, load_config

            self._settings = load_config(find_config_path(self.config_path))
        return self._settings

    def say_which_config(self) -> None:
        """When no config was named (flag or environment), say on stderr which one is used."""
        if self.config_path is None:
            source = self.settings.source
            _say(f"ingest-agent: using {source}" if source else
                       "ingest-agent: no --config given and no ./ingest-agent.toml or "
                       "./config.toml here: using the built-in defaults", err=True)

    @contextmanager
    def queue(self, *, readonly: bool = False) -> Iterator[JobQueue]:
        from agent.queue import open_queue

        q = open_queue(self.settings, readonly=readonly)
        try:
            yield q
        finally:
            q.close()


pass_ctx = click.make_pass_decorator(Context)


class AgentGroup(click.Group):
    """Turns every ``AgentError`` into one line on stderr and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AgentError as exc:
            _say(f"ingest-agent: {exc}", err=True)
            sys.exit(1)


@click.group(cls=AgentGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config", "-c", "config_path", metavar="PATH", envvar="INGEST_AGENT_CONFIG",
    help="TOML config file (default: $INGEST_AGENT_CONFIG, ./ingest-agent.toml, ./config.toml).",
)
@click.version_option(__version__, prog_name="ingest-agent")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Watch inbox folders, queue every file durably, embed it offline and make it searchable."""
    ctx.obj = Context(config_path)


def _say(text: str, err: bool = False) -> None:
    """Print a line for people: text from documents, names and errors may hold terminal control
    sequences (clear the screen, set the title), which are shown escaped, never sent. JSON is
    printed as it is."""
    click.echo(terminal_text(text), err=err)


def _print_json(data: Any) -> None:
    click.echo(_json_text(data))


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.1f}s"


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"
