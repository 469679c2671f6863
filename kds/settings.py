"""All configuration of kds: one pydantic-settings model read from ``KDS_*`` variables.

Command-line options override the environment by being passed as keyword arguments to
:func:`load_settings`; a value that does not parse raises :class:`kds.errors.ConfigurationError`
naming the variable (or the option) it came from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kds.db.policy import Pooler
from kds.durations import parse_duration
from kds.errors import ConfigurationError

Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]

ENV_PREFIX = "KDS_"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    # database
    database_url: str | None = None
    # reads (list, get, summary, export, watch) go here when set: a streaming replica, or a pooler in
    # front of replicas; writes, migrations and ``kds db`` always use database_url (docs/scaling.md)
    read_database_url: str | None = None
    # what sits between kds and PostgreSQL: "pgbouncer" (any transaction-mode pooler) moves the session
    # settings into each transaction and stops preparing statements (docs/scaling.md)
    database_pooler: Pooler = "none"
    statement_timeout: Duration = 5.0
    connect_timeout: Duration = 5.0
    # server
    host: str = "0.0.0.0"
    port: int = Field(8080, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64)
    pool_size: int = Field(10, ge=1, le=1000)
    pool_timeout: Duration = 2.0
    shutdown_delay: Duration = 5.0
    drain_timeout: Duration = 30.0
    log_format: Literal["json", "text"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    max_body_bytes: int = Field(65536, ge=1)
    request_timeout: Duration = 60.0
    response_timeout: Duration = 60.0
    cors_origins: str = ""
    auth_tokens_file: Path | None = None
    cursor_secret: SecretStr | None = None
    max_watches: int = Field(100, ge=1, le=100_000)  # open watch streams per worker (docs/remote.md)
    # remote mode: the CLI through a running kds serve (docs/remote.md); validate-infra's server check too
    server_url: str | None = None
    server_token: SecretStr | None = None
    server_token_file: Path | None = None
    server_ca_file: Path | None = None
    server_connect_timeout: Duration = 5.0
    server_timeout: Duration = 30.0
    # validate-infra
    termination_grace_period: Duration = 40.0

    @field_validator("server_url")
    @classmethod
    def _server_url(cls, value: str | None) -> str | None:
        """``http(s)://host[:port][/prefix]``; a trailing slash is dropped."""
        if value is None or value == "":
            return None
        from urllib.parse import urlsplit

        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host, e.g. https://kds.example.com")
        if parts.query or parts.fragment:
            raise ValueError("must not carry a query string or fragment")
        return value.rstrip("/")

    @property
    def cursor_key(self) -> bytes:
        """HMAC key of keyset cursors: ``KDS_CURSOR_SECRET`` (same on every replica) or the built-in one."""
        if self.cursor_secret is None:
            from kds.query.cursor import DEFAULT_KEY

            return DEFAULT_KEY
        return self.cursor_secret.get_secret_value().encode()

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]


def _normalise(field: str, value: Any) -> Any:
    if field == "log_level" and isinstance(value, str):
        return value.upper()
    if field in ("log_format", "database_pooler") and isinstance(value, str):
        return value.lower()
    return value


def load_settings(**overrides: Any) -> Settings:
    """Read the environment, apply the non-``None`` overrides (command-line options) on top."""
    given = {key: _normalise(key, value) for key, value in overrides.items() if value is not None}
    try:
        env_values = _normalised_environment()
        return Settings(**{**env_values, **given})
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "?"
        source = f"--{field.replace('_', '-')}" if field in given else f"{ENV_PREFIX}{field.upper()}"
        value = given.get(field, error.get("input"))
        message = error["msg"].removeprefix("Value error, ")
        raise ConfigurationError.of(source, value, message) from None


def _normalised_environment() -> dict[str, Any]:
    """Environment values whose spelling we forgive (``KDS_LOG_LEVEL=info``)."""
    import os

    values: dict[str, Any] = {}
    for field in ("log_level", "log_format", "database_pooler"):
        raw = os.environ.get(f"{ENV_PREFIX}{field.upper()}")
        if raw is not None:
            values[field] = _normalise(field, raw)
    return values
