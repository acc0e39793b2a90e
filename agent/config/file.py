"""Which config file applies, and where its data folder is, without validating the whole file.

``agent.config.settings`` validates everything with pydantic, which costs about a quarter of a second to
import; a CLI search that a running agent will answer needs only the data folder (where the
agent's search socket lives), so it reads just that key here, by the same rules.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path

ENV_PREFIX = "INGEST_AGENT_"
CONFIG_ENV = "INGEST_AGENT_CONFIG"
DEFAULT_CONFIG_NAMES = ("ingest-agent.toml", "config.toml")
DATA_DIR_ENV = f"{ENV_PREFIX}AGENT__DATA_DIR"


def find_config_path(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The file to load: ``--config``, else ``$INGEST_AGENT_CONFIG``, else a default name here."""
    if explicit:
        return Path(explicit)
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    for name in DEFAULT_CONFIG_NAMES:
        if Path(name).is_file():
            return Path(name)
    return None


def data_dir_of(config_path: Path | None, environ: Mapping[str, str] | None = None
                ) -> Path | None:
    """``agent.data_dir`` as ``load_config`` resolves it (relative to the config's folder, the
    environment override first); None when the file cannot be read (the full load will say
    why)."""
    env = os.environ if environ is None else environ
    value: object = env.get(DATA_DIR_ENV)
    if value is None and config_path is not None:
        try:
            with open(config_path, "rb") as fh:
                value = tomllib.load(fh).get("agent", {}).get("data_dir")
        except (OSError, tomllib.TOMLDecodeError, AttributeError):
            return None
    path = Path(str(value) if value is not None else "data").expanduser()
    if path.is_absolute():
        return path
    base = config_path.resolve().parent if config_path is not None else Path.cwd()
    return base / path
