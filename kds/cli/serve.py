"""``kds serve``: the REST gateway (docs/api.md). Every option also reads its ``KDS_*`` variable."""

from __future__ import annotations

from enum import StrEnum

import typer

from kds.cli.common import DatabaseUrlOption, fail, reports_errors, settings
from kds.durations import DURATION_EXAMPLES


class LogFormat(StrEnum):
    json = "json"
    text = "text"


def serve(
    host: str | None = typer.Option(
        None, "--host", metavar="ADDRESS", help="Bind address [env: KDS_HOST; default: 0.0.0.0]."
    ),
    port: int | None = typer.Option(
        None, "--port", metavar="PORT", help="Port [env: KDS_PORT; default: 8080].", show_default=False
    ),
    workers: int | None = typer.Option(
        None, "--workers", metavar="N", help="Worker processes [env: KDS_WORKERS; default: 1].", show_default=False
    ),
    pool_size: int | None = typer.Option(
        None,
        "--pool-size",
        metavar="N",
        help="Database connections per worker [env: KDS_POOL_SIZE; default: 10].",
        show_default=False,
    ),
    shutdown_delay: str | None = typer.Option(
        None,
        "--shutdown-delay",
        metavar="DURATION",
        help=f"Keep serving this long after SIGTERM while readiness is off, e.g. {DURATION_EXAMPLES} "
        "[env: KDS_SHUTDOWN_DELAY; default: 5s; 0 with a preStop sleep].",
        show_default=False,
    ),
    drain_timeout: str | None = typer.Option(
        None,
        "--drain-timeout",
        metavar="DURATION",
        help="Longest wait for in-flight requests on shutdown [env: KDS_DRAIN_TIMEOUT; default: 30s].",
        show_default=False,
    ),
    database_url: str | None = DatabaseUrlOption,
    log_format: LogFormat | None = typer.Option(
        None,
        "--log-format",
        metavar="FORMAT",
        help="Log lines: json or text [env: KDS_LOG_FORMAT; default: json].",
        show_default=False,
    ),
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
