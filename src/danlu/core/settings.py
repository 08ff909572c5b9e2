"""Settings, declared once as data.

Every setting is a :class:`SettingSpec` in :data:`SPECS`: its name, type,
default and help text. :func:`load_settings` reads them from the environment
(``DANLU_<NAME>``) and explicit overrides (the CLI), and ``docs/settings.md``
is generated from the same declaration (``danlu doctor --settings-markdown``),
so the documentation cannot drift from the code.

Settings are read once into a frozen :class:`Settings` and passed in; nothing
imports a global settings object.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from danlu.core.errors import ConfigError


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"expected one of 1/0, true/false, yes/no, on/off, got {raw!r}")


_PARSERS: dict[type, Callable[[str], Any]] = {
    str: str,
    int: int,
    float: float,
    bool: _parse_bool,
    Path: lambda raw: Path(raw).expanduser(),
}


@dataclass(frozen=True)
class SettingSpec:
    """One setting: read from ``DANLU_<NAME>`` unless overridden."""

    name: str
    type: type
    default: Any
    help: str

    @property
    def env(self) -> str:
        return f"DANLU_{self.name.upper()}"


SPECS: tuple[SettingSpec, ...] = (
    SettingSpec(
        "home", Path, Path("~/.danlu"), "Where danlu keeps its data: database, blobs, logs."
    ),
    SettingSpec(
        "database_url",
        str,
        "",
        "SQLAlchemy URL of the metadata database. Empty means SQLite at HOME/danlu.db; "
        "use postgresql+psycopg://user@host/db for PostgreSQL.",
    ),
    SettingSpec("host", str, "127.0.0.1", "Address `danlu serve` listens on."),
    SettingSpec("port", int, 8000, "Port `danlu serve` listens on."),
    SettingSpec(
        "admin_password",
        str,
        "",
        "Password of the first admin user, created on first start. Empty: a random one is "
        "generated and printed once.",
    ),
    SettingSpec(
        "max_body_bytes",
        int,
        16 * 1024 * 1024,
        "Largest JSON request body the API accepts; larger bodies get 413.",
    ),
    SettingSpec(
        "embedded_models",
        bool,
        True,
        "Serve the embedded chat (SmolLM2-135M-Instruct) and embedding (multilingual-e5-small) "
        "models.",
    ),
    SettingSpec(
        "llama_threads",
        int,
        0,
        "CPU threads per llama.cpp model; 0 means one per core.",
    ),
    SettingSpec(
        "llama_context", int, 4096, "Context window (tokens) of embedded llama.cpp models."
    ),
    SettingSpec(
        "queue_max_waiting",
        int,
        64,
        "Requests that may wait for one local model before new ones get 429.",
    ),
    SettingSpec(
        "providers_file",
        Path,
        Path(""),
        "TOML file of upstream providers. Empty means HOME/providers.toml if it exists.",
    ),
    SettingSpec(
        "upstream_timeout",
        float,
        600.0,
        "Seconds to wait for an upstream provider before giving up.",
    ),
    SettingSpec("log_level", str, "info", "Log level: debug, info, warning or error."),
    SettingSpec(
        "secret_key",
        str,
        "",
        "Secret for signing upload links. Empty: one is generated in HOME/secret.key. Set the "
        "same value on every server of a cluster.",
    ),
    SettingSpec(
        "hub_anonymous_read",
        bool,
        True,
        "Let callers without a key read public hub repos (as the public hubs do).",
    ),
    SettingSpec(
        "hub_max_file_bytes",
        int,
        100 * 1024**3,
        "Largest single file the hub accepts (LFS uploads).",
    ),
    SettingSpec(
        "builder_http_allow",
        str,
        "",
        "Comma-separated addresses or CIDR ranges (e.g. 10.0.0.0/8) that apps' HTTP nodes may "
        "reach although they are private; by default only public addresses are allowed.",
    ),
    SettingSpec(
        "hub_inline_upload_bytes",
        int,
        64 * 1024**2,
        "Files up to this size are uploaded inside the commit (no LFS), so huggingface_hub works "
        "without HF_HUB_DISABLE_XET; larger ones go through LFS.",
    ),
    SettingSpec(
        "hub_max_commit_bytes",
        int,
        1024**3,
        "Largest commit request (inline files, base64) the hub accepts.",
    ),
    SettingSpec(
        "vector_index",
        str,
        "auto",
        "Where knowledge-base vectors are searched: `memory` (exact, in each server process), "
        "`pgvector` (in PostgreSQL, HNSW; needs the `vector` extension) or `auto` (pgvector "
        "when the database is PostgreSQL with the extension available, else memory).",
    ),
    SettingSpec(
        "redis_url",
        str,
        "",
        "Redis URL (redis://[:password@]host:6379/0) where rate limits are kept, so they hold "
        "across server processes. Empty: limits are kept in each process. If Redis is "
        "unreachable, requests get 503 rather than pass unchecked.",
    ),
    SettingSpec(
        "billing",
        bool,
        False,
        "Charge model calls to workspace balances at the model prices set by admins: each call "
        "holds its worst-case cost first (402 when it does not fit) and a model without a "
        "price is refused. Off: calls are metered and recorded, not charged.",
    ),
    SettingSpec(
        "free_quota",
        str,
        "0",
        "Credit in yuan (e.g. `10` or `0.5`) granted once to every workspace when billing is "
        "on, at its first billed call.",
    ),
    SettingSpec(
        "free_quota_days",
        int,
        0,
        "Days the free quota stays valid (0: it does not expire).",
    ),
    SettingSpec(
        "refinery_workers",
        int,
        1,
        "Fine-tuning worker processes `danlu serve` starts (0: none; run "
        "`python -m danlu.refinery.worker` elsewhere against the same database and files).",
    ),
    SettingSpec(
        "refinery_threads",
        int,
        0,
        "CPU threads each fine-tuning job trains with (0: all cores but one, at least one; "
        "PyTorch's threads wait for each other, so sharing cores with the server hurts).",
    ),
    SettingSpec(
        "refinery_backend",
        str,
        "local",
        "Where a fine-tuning job trains: `local` (in the worker process) or `ray` (Ray Train, "
        "`refinery_ray_workers` ranks; needs `pip install danlu[refinery-ray]`).",
    ),
    SettingSpec(
        "refinery_ray_address",
        str,
        "",
        "The Ray cluster the `ray` backend trains on (e.g. `ray://head:10001` or `auto`); "
        "empty: a local Ray started in the worker process.",
    ),
    SettingSpec(
        "refinery_ray_workers",
        int,
        2,
        "Training ranks (Ray Train workers) of the `ray` backend; each holds a copy of the base "
        "model and trains with `refinery_threads` CPU threads (0: one), and the effective batch "
        "stays the job's.",
    ),
    SettingSpec(
        "community_posts_per_minute",
        int,
        10,
        "Discussions, comments and edits one user may post per minute (site admins are not "
        "limited); more get 429 saying when to retry. 0: no limit.",
    ),
    SettingSpec(
        "insight_store",
        str,
        "auto",
        "Where app analytics (events and daily rollups) are kept: `duckdb` (a DuckDB file in "
        "HOME, one server process), `database` (the PostgreSQL metadata database, schema "
        "`insight`), a `postgresql+psycopg://` URL of its own, or `auto` (duckdb with SQLite, "
        "database with PostgreSQL).",
    ),
    SettingSpec(
        "insight_timezone",
        str,
        "Asia/Shanghai",
        "IANA time zone in which analytics count days (DAU, retention), unless a workspace "
        "sets its own.",
    ),
    SettingSpec(
        "insight_flush_seconds",
        float,
        2.0,
        "How often recorded app events are written to the analytics store, in seconds.",
    ),
)


@dataclass(frozen=True)
class Settings:
    """The resolved settings; defaults live in :data:`SPECS`. Build with :func:`load_settings`."""

    home: Path
    database_url: str
    host: str
    port: int
    admin_password: str = field(repr=False)
    max_body_bytes: int
    embedded_models: bool
    llama_threads: int
    llama_context: int
    queue_max_waiting: int
    providers_file: Path
    upstream_timeout: float
    log_level: str
    secret_key: str = field(repr=False)
    hub_anonymous_read: bool
    hub_max_file_bytes: int
    builder_http_allow: str
    hub_inline_upload_bytes: int
    hub_max_commit_bytes: int
    vector_index: str
    redis_url: str = field(repr=False)
    billing: bool = False
    free_quota: str = "0"
    free_quota_days: int = 0
    refinery_workers: int = 1
    refinery_threads: int = 0
    refinery_backend: str = "local"
    refinery_ray_address: str = ""
    refinery_ray_workers: int = 2
    community_posts_per_minute: int = 10
    insight_store: str = "auto"
    insight_timezone: str = "Asia/Shanghai"
    insight_flush_seconds: float = 2.0

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'danlu.db'}"

    @property
    def blob_dir(self) -> Path:
        return self.home / "blobs"

    @property
    def resolved_providers_file(self) -> Path | None:
        if str(self.providers_file) not in {"", "."}:
            return self.providers_file
        default = self.home / "providers.toml"
        return default if default.exists() else None

    @property
    def resolved_llama_threads(self) -> int:
        return self.llama_threads or (os.cpu_count() or 1)

    def describe(self) -> dict[str, Any]:
        """Settings as shown by ``danlu doctor``: secrets hidden."""
        shown: dict[str, Any] = {}
        for spec in SPECS:
            value = getattr(self, spec.name)
            if spec.name in {"admin_password", "secret_key"}:
                value = "(set)" if value else "(not set)"
            shown[spec.name] = str(value)
        shown["database_url"] = _hide_password(self.resolved_database_url)
        shown["redis_url"] = _hide_password(self.redis_url)
        return shown


def _hide_password(url: str) -> str:
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else url


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read settings from ``environ`` (default ``os.environ``), then apply overrides.

    Overrides whose value is ``None`` are ignored, so CLI options can be passed
    straight through. A malformed value raises :class:`ConfigError` naming the
    variable and what it expects.
    """
    env = os.environ if environ is None else environ
    known = {spec.name for spec in SPECS}
    unknown = set(overrides) - known
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for spec in SPECS:
        value: Any = spec.default
        raw = env.get(spec.env)
        if raw is not None and raw != "":
            try:
                value = _PARSERS[spec.type](raw)
            except ValueError as exc:
                raise ConfigError(
                    f"{spec.env}={raw!r} is not a valid {spec.type.__name__}: {exc}. {spec.help}"
                ) from exc
        if overrides.get(spec.name) is not None:
            value = overrides[spec.name]
        if spec.type is Path:
            value = Path(value).expanduser()
        values[spec.name] = value
    settings = Settings(**values)
    _validate(settings)
    return settings


def _validate(settings: Settings) -> None:
    if settings.max_body_bytes < 1024:
        raise ConfigError("DANLU_MAX_BODY_BYTES must be at least 1024")
    if settings.queue_max_waiting < 0:
        raise ConfigError("DANLU_QUEUE_MAX_WAITING must not be negative")
    if not 0 < settings.port < 65536:
        raise ConfigError("the port must be between 1 and 65535")
    if settings.log_level not in {"debug", "info", "warning", "error"}:
        raise ConfigError("DANLU_LOG_LEVEL must be one of debug, info, warning, error")
    if settings.refinery_backend not in {"local", "ray"}:
        raise ConfigError("DANLU_REFINERY_BACKEND must be local or ray")
    if settings.community_posts_per_minute < 0:
        raise ConfigError("DANLU_COMMUNITY_POSTS_PER_MINUTE must not be negative")
    if settings.refinery_ray_workers < 1:
        raise ConfigError("DANLU_REFINERY_RAY_WORKERS must be at least 1")
    if settings.insight_flush_seconds <= 0:
        raise ConfigError("DANLU_INSIGHT_FLUSH_SECONDS must be more than 0")


def settings_markdown() -> str:
    """The settings reference, generated from :data:`SPECS` (docs/settings.md)."""
    lines = [
        "# Settings",
        "",
        "Generated from `danlu/core/settings.py` by `danlu doctor --settings-markdown`; "
        "do not edit by hand.",
        "Every setting is read from its environment variable; `danlu serve` also takes "
        "`--home`, `--host` and `--port`.",
        "",
        "| variable | type | default | meaning |",
        "|---|---|---|---|",
    ]
    for spec in SPECS:
        default = spec.default if str(spec.default) not in {"", "."} else "(empty)"
        lines.append(f"| `{spec.env}` | {spec.type.__name__} | `{default}` | {spec.help} |")
    return "\n".join(lines) + "\n"
