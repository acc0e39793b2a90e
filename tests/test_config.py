"""Config loading: the example file, overrides, and errors that name the key and the reason."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from agent.config.settings import DEFAULT_ALLOWED_TYPES, InboxSettings, Settings, load_config
from agent.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.toml"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def test_example_config_loads_with_paths_beside_it() -> None:
    """config.example.toml is valid and its relative paths resolve next to it."""
    settings = load_config(EXAMPLE, environ={})
    assert settings.agent.data_dir == ROOT / "data"
    assert settings.inbox[0].path == ROOT / "inbox"
    assert settings.inbox[0].done_dir == ROOT / "done"
    assert settings.queue_path == ROOT / "data" / "queue.db"


def test_every_key_is_documented_in_the_example() -> None:
    """Each settings field appears (set or commented) in the example with a comment."""
    text = EXAMPLE.read_text()
    sections = {
        "agent": Settings.model_fields["agent"], "queue": None, "processing": None,
        "embedding": None, "index": None, "metrics": None, "api": None, "inbox": None,
        "health": None,
    }
    for section in sections:
        model: Any = Settings.model_fields[section].annotation
        fields = (model.__args__[0] if section == "inbox" else model).model_fields
        for key in fields:
            same_line = rf"^#? ?{key} = .*# \S"
            line_above = rf"^# \S.*\n#? ?{key} = "
            assert re.search(same_line, text, re.MULTILINE) or re.search(
                line_above, text, re.MULTILINE
            ), f"[{section}] {key} is not documented"


def test_example_values_equal_the_defaults() -> None:
    """What the example sets is what the agent uses when a key is left out, in every section
    and in its [[inbox]]; so the file `make run` uses narrows nothing the README promises."""
    example = tomllib.loads(EXAMPLE.read_text())
    defaults = Settings()
    (inbox,) = example.pop("inbox")
    assert set(example) == set(Settings.model_fields) - {"inbox", "source"}, "a section is missing"
    checked = 0
    for section, values in example.items():
        for key, value in values.items():
            default = getattr(getattr(defaults, section), key)
            assert str(default) == str(value) or default == value, f"{section}.{key}"
            checked += 1
    inbox_defaults = InboxSettings(name=inbox["name"], path=inbox["path"])
    for key, value in inbox.items():
        assert getattr(inbox_defaults, key) == value or str(getattr(inbox_defaults, key)) == \
            str(value), f"inbox.{key}"
    assert "allowed_types" not in inbox, "the example must not narrow the types read"
    assert checked > 40


def test_example_documents_allowed_types_as_the_default() -> None:
    """The commented allowed_types in the example is the built-in list, every type read."""
    text = EXAMPLE.read_text()
    block = re.search(r"^# allowed_types = (\[.*?\])$", text, re.M | re.S)
    assert block, "allowed_types is not shown commented in the example"
    shown = tomllib.loads("x = " + re.sub(r"^#\s*", "", block.group(1), flags=re.M))["x"]
    assert shown == DEFAULT_ALLOWED_TYPES


def test_missing_file_and_bad_toml_are_clear(tmp_path: Path) -> None:
    """A missing file or a TOML syntax error names the file."""
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml", environ={})
    path = _write(tmp_path, "[agent\nlog_level = 'info'")
    with pytest.raises(ConfigError, match=r"agent\.toml: not valid TOML"):
        load_config(path, environ={})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[inbox]]\nname='a'\npath='in'\n[[inbox]]\nname='b'\npath='in2'\nsettle_seconds=-1",
         "inbox[1].settle_seconds: must be ≥ 0"),
        ("[queue]\nmax_retriez = 3", "queue.max_retriez: unknown key"),
        ("[agent]\nlog_level = 'loud'", "agent.log_level: must be one of"),
        ("[processing]\nchunk_tokens = 100\nchunk_overlap_tokens = 100",
         "processing: chunk_overlap_tokens must be smaller than chunk_tokens"),
        ("[[inbox]]\npath='in'", "inbox[0].name: is required"),
        ("[[inbox]]\nname='../x'\npath='in'", "inbox[0].name: must match"),
        ("[metrics]\nport = 70000", "metrics.port: must be ≤ 65535"),
        ("[queue]\nbackend = 'redis'", "queue: backend 'redis' needs redis_url"),
        ("[queue]\njob_timeout_seconds = 'soon'", "queue.job_timeout_seconds: Input should be a valid number"),
    ],
)
def test_invalid_values_name_file_key_and_reason(tmp_path: Path, text: str, message: str) -> None:
    """Every validation error reads 'file: key: reason'."""
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    assert str(err.value).startswith(str(path))
    assert message in str(err.value)


def test_colliding_work_folders_are_rejected(tmp_path: Path) -> None:
    """Two inboxes in one parent folder would share processing/: refused with a fix."""
    path = _write(tmp_path, "[[inbox]]\nname='a'\npath='a'\n[[inbox]]\nname='b'\npath='b'\n")
    with pytest.raises(ConfigError, match=r"inbox\[1\]\.processing_dir .* same folder as inbox\[0\]"):
        load_config(path, environ={})


def test_work_folder_inside_an_inbox_is_rejected(tmp_path: Path) -> None:
    """done/ inside the inbox would be ingested again."""
    path = _write(tmp_path, "[[inbox]]\nname='a'\npath='in'\ndone_dir='in/done'\n")
    with pytest.raises(ConfigError, match="lies inside inbox"):
        load_config(path, environ={})


def test_duplicate_inbox_names_are_rejected(tmp_path: Path) -> None:
    """Inbox names label jobs and metrics, so they must be unique."""
    path = _write(tmp_path, "[[inbox]]\nname='a'\npath='x/in'\n[[inbox]]\nname='a'\npath='y/in'\n")
    with pytest.raises(ConfigError, match="inbox names must be unique: a"):
        load_config(path, environ={})


def test_environment_overrides_keys_and_inbox_items(tmp_path: Path) -> None:
    """INGEST_AGENT_<SECTION>__<KEY> wins over the file; list items by index."""
    path = _write(tmp_path, "[queue]\nmax_retries = 1\n[[inbox]]\nname='a'\npath='in'\n")
    settings = load_config(path, environ={
        "INGEST_AGENT_QUEUE__MAX_RETRIES": "5",
        "INGEST_AGENT_INBOX__0__SETTLE_SECONDS": "0.5",
        "INGEST_AGENT_METRICS__ENABLED": "false",
        "INGEST_AGENT_AGENT__DATA_DIR": "/srv/agent",
        "INGEST_AGENT_CONFIG": str(path),
        "UNRELATED": "1",
    })
    assert settings.queue.max_retries == 5
    assert settings.inbox[0].settle_seconds == 0.5
    assert settings.metrics.enabled is False
    assert settings.agent.data_dir == Path("/srv/agent")


def test_an_override_is_read_by_its_settings_type(tmp_path: Path) -> None:
    """Issue 44: an all-digit or "true" token is a token, not a number or a boolean (every
    value was JSON-decoded first, and refused); numbers, booleans and lists still read."""
    settings = load_config(None, environ={
        "INGEST_AGENT_API__TOKEN": "12345678901234567890",
        "INGEST_AGENT_INBOX__0__NAME": "007",
        "INGEST_AGENT_INBOX__0__PATH": str(tmp_path / "in"),
        "INGEST_AGENT_QUEUE__STALL_TIMEOUT_SECONDS": "200",
        "INGEST_AGENT_API__SECURE_COOKIES": "true",
        "INGEST_AGENT_OCR__LANGUAGES": '["eng", "deu"]',
    })
    assert settings.api.token is not None
    assert settings.api.token.get_secret_value() == "12345678901234567890"
    assert settings.inbox[0].name == "007"
    assert settings.queue.stall_timeout_seconds == 200.0
    assert settings.api.secure_cookies is True
    assert settings.ocr.languages == ["eng", "deu"]
    truthy = load_config(None, environ={"INGEST_AGENT_API__TOKEN": "true"})
    assert truthy.api.token is not None and truthy.api.token.get_secret_value() == "true"


def test_bad_override_names_the_variable(tmp_path: Path) -> None:
    """An invalid value from the environment says which variable set it."""
    with pytest.raises(ConfigError, match=r"\(set by INGEST_AGENT_QUEUE__MAX_RETRIES\)"):
        load_config(None, environ={"INGEST_AGENT_QUEUE__MAX_RETRIES": "-2"})
    with pytest.raises(ConfigError, match="take the form"):
        load_config(None, environ={"INGEST_AGENT_QUEUE": "x"})


def test_job_ceiling_and_lease_follow_the_timeouts() -> None:
    """Unset, the ceiling grows with the file (600 s + 1 s per 2 KiB); set, job_timeout_seconds
    is the ceiling whatever the size. The lease is cut from the shorter timeout."""
    from agent.config.settings import QueueSettings, job_ceiling, lease_basis

    default = QueueSettings()
    assert job_ceiling(default, 0) == 600 and job_ceiling(default, 60 * 2**20) == 600 + 30720
    assert lease_basis(default) == 300
    fixed = QueueSettings(job_timeout_seconds=20)
    assert job_ceiling(fixed, 60 * 2**20) == 20 and lease_basis(fixed) == 20
    assert lease_basis(QueueSettings(stall_timeout_seconds=None)) == 600
