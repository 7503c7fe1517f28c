"""Settings: one typed model, read from `TELEMETRY_MCP_*` environment variables and CLI flags.

Every field documents itself (its flag, env var and help text come from the model), so `--help`,
the README and `server.json` can never drift from what is actually read.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from telemetry_mcp.errors import ConfigError

ENV_PREFIX = "TELEMETRY_MCP_"
MEMORY = ":memory:"


def default_db_path() -> str:
    """The default store: a DuckDB file in the user data directory."""
    return str(Path(platformdirs.user_data_dir("telemetry-mcp", appauthor=False)) / "telemetry.duckdb")


class Settings(BaseModel):
    """Everything configurable. Defaults are the SPEC's defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    db: str = Field(default_factory=default_db_path, description="DuckDB store file, or :memory:")
    # privacy pipeline (SPEC section 3), each step switchable
    honor_dnt: bool = Field(True, description="drop events or batches marked do_not_track")
    sample_rate: float = Field(1.0, gt=0.0, le=1.0, description="keep this fraction of users (0 < r <= 1)")
    exclude_fields: bool = Field(True, description="remove configured paths and secret-named property keys")
    excluded_paths: tuple[str, ...] = Field(
        ("properties.password", "properties.token"),
        description="comma-separated dotted paths always removed",
    )
    scrub_values: bool = Field(True, description="redact e-mails, IPs, JWTs, bearer tokens, card numbers")
    anonymize_urls: bool = Field(True, description="drop query/fragment and id-like segments of URLs")
    hash_user_ids: bool = Field(True, description="store user_id as a keyed HMAC-SHA256 hash")
    salt: str | None = Field(
        None, description="hex key for user_id hashing (default: random, generated once per store)"
    )
    # limits
    max_batch_events: int = Field(10_000, ge=1, le=100_000, description="events per ingest call")
    max_request_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="bytes per ingest call / request")
    session_timeout_minutes: float = Field(30.0, gt=0, le=24 * 60, description="gap that starts a session")
    query_timeout_seconds: float = Field(30.0, gt=0, le=3600, description="cancel analyses running longer")
    sql_max_rows: int = Field(1000, ge=1, le=100_000, description="rows returned by run_sql")
    sql_max_bytes: int = Field(1_000_000, ge=1024, description="characters returned by run_sql")
    answer_max_chars: int = Field(
        25_000,
        ge=2_000,
        le=10_000_000,
        description="characters per tool answer (text and structured content each)",
    )
    # engine
    threads: int = Field(
        default_factory=lambda: os.cpu_count() or 2, ge=1, le=256, description="DuckDB worker threads"
    )
    collector_workers: int = Field(
        default_factory=lambda: min(4, os.cpu_count() or 1) if (os.cpu_count() or 1) > 1 else 0,
        ge=0,
        le=64,
        description="processes that decode, map and validate collector requests (0: threads of the serve)",
    )
    memory_limit: str = Field("1GB", description="DuckDB memory limit, e.g. 1GB or 512MB")
    import_memory_limit: str = Field(
        "256MB", description="DuckDB memory limit of the store while `import` loads files into it"
    )
    # the service (SPEC section 8)
    write_key: str | None = Field(
        None, description="collector write key (default: generated once per store, printed at start)"
    )
    token: str | None = Field(
        None, description="bearer token for /mcp and read endpoints; required to listen beyond loopback"
    )
    # data lifecycle (SPEC section 9)
    raw_retention_days: int = Field(90, ge=0, le=36_500, description="days raw events are kept (0: forever)")
    maintenance_interval_minutes: float = Field(
        10.0,
        ge=0,
        le=7 * 24 * 60,
        description="minutes between the owner's background prune steps (0: never)",
    )
    maintenance_chunk_rows: int = Field(
        50_000, ge=100, le=10_000_000, description="rows deleted per transaction when pruning or forgetting"
    )
    rollup_property_keys: tuple[str, ...] = Field(
        (),
        max_length=3,
        description="comma-separated property keys (at most 3) kept as rollup dimensions, values cut to "
        "100 characters",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("WARNING", description="stderr log level")

    @field_validator("salt")
    @classmethod
    def _salt_is_hex(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        try:
            raw = bytes.fromhex(v)
        except ValueError:
            raise ValueError("must be hexadecimal (e.g. 32 hex characters)") from None
        if len(raw) < 8:
            raise ValueError("must be at least 16 hex characters (8 bytes)")
        return v

    @field_validator("write_key", "token")
    @classmethod
    def _secret_shape(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        if len(v) < 8 or any(c.isspace() for c in v):
            raise ValueError("must be at least 8 characters with no spaces")
        return v

    @field_validator("rollup_property_keys")
    @classmethod
    def _property_keys_shape(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        import re

        keys = tuple(dict.fromkeys(k.strip().removeprefix("properties.") for k in v if k.strip()))
        for key in keys:  # the tools' property key rule: these go into rollup SQL as JSON paths
            if not re.fullmatch(r"[A-Za-z0-9_\-.$@ :/]{1,128}", key):
                raise ValueError(
                    f"property key {key[:60]!r}: 1-128 letters, digits, and _ - . $ @ : / or space"
                )
        return keys

    @field_validator("memory_limit", "import_memory_limit")
    @classmethod
    def _memory_limit_shape(cls, v: str) -> str:
        import re

        if not re.fullmatch(r"\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*", v, re.IGNORECASE):
            raise ValueError("must be a size such as 512MB or 2GB")
        return v.strip()

    @property
    def is_memory(self) -> bool:
        return self.db == MEMORY


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def flag_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def _coerce(field: str, raw: str) -> Any:
    """Turn an env/flag string into what the model expects (bools and lists need help)."""
    annotation = Settings.model_fields[field].annotation
    if annotation is bool:
        low = raw.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{env_name(field)}={raw!r}: expected true or false")
    if field in ("excluded_paths", "rollup_property_keys"):
        return tuple(p.strip() for p in raw.split(",") if p.strip())
    return raw


def load_settings(
    overrides: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Build settings from environment variables, then explicit overrides (CLI flags win).

    Raises ConfigError with one line naming the setting, its source and what is accepted.
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    source: dict[str, str] = {}
    for field in Settings.model_fields:
        raw = env.get(env_name(field))
        if raw is not None and raw != "":
            values[field] = _coerce(field, raw)
            source[field] = env_name(field)
    for field, value in (overrides or {}).items():
        if value is None:
            continue
        values[field] = _coerce(field, value) if isinstance(value, str) else value
        source[field] = flag_name(field)
    try:
        return Settings(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else "?"
        where = source.get(field, field)
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"invalid setting {where}={values.get(field)!r}: {msg}") from None
