"""``kds serve``: the REST gateway (docs/api.md). Every option also reads its ``KDS_*`` variable."""

from __future__ import annotations

from enum import StrEnum

from kds.cli.common import DatabaseUrlOption, ReadDatabaseUrlOption, fail, reports_errors, settings
from kds.cli.options import setting_option
from kds.durations import DURATION_EXAMPLES


class LogFormat(StrEnum):
    json = "json"
    text = "text"


def serve(
    host: str | None = setting_option("--host", "ADDRESS", "Bind address", default="0.0.0.0"),
    port: int | None = setting_option("--port", "PORT", "Port", default="8080"),
    workers: int | None = setting_option("--workers", "N", "Worker processes", default="1"),
    pool_size: int | None = setting_option("--pool-size", "N", "Database connections per worker", default="10"),
    shutdown_delay: str | None = setting_option(
        "--shutdown-delay",
        "DURATION",
        f"Keep serving this long after SIGTERM while readiness is off, e.g. {DURATION_EXAMPLES}",
        default="5s; 0 with a preStop sleep",
    ),
    drain_timeout: str | None = setting_option(
        "--drain-timeout", "DURATION", "Longest wait for in-flight requests on shutdown", default="30s"
    ),
    database_url: str | None = DatabaseUrlOption,
    read_database_url: str | None = ReadDatabaseUrlOption,
    log_format: LogFormat | None = setting_option("--log-format", "FORMAT", "Log lines: json or text", default="json"),
) -> None:
    """Serve the REST API (incidents, health, metrics, OpenAPI) with Kubernetes-aware graceful shutdown."""
    _serve(
        host=host,
        port=port,
        workers=workers,
        pool_size=pool_size,
        shutdown_delay=shutdown_delay,
        drain_timeout=drain_timeout,
        database_url=database_url,
        read_database_url=read_database_url,
        log_format=log_format.value if log_format else None,
    )


@reports_errors
def _serve(**options: object) -> None:
    config = settings(**options)
    from kds.server.process.runner import run

    try:
        run(config)
    except KeyboardInterrupt:  # Ctrl-C before the server started handling signals
        raise fail("kds serve: interrupted", 130) from None
    except OSError as exc:  # typically the address is already in use
        raise fail(f"kds serve: cannot listen on {config.host}:{config.port}: {exc.strerror or exc}", 1) from None
