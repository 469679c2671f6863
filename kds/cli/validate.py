"""``kds validate-infra``: prove the database and configuration are ready (docs/cli.md)."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from kds.cli.common import DatabaseUrlOption, reports_errors
from kds.cli.options import setting_option
from kds.durations import DURATION_EXAMPLES
from kds.errors import ConfigurationError

if TYPE_CHECKING:
    from kds.checks.runner import Context

DEFAULT_TIMEOUT = "5s"
DEFAULT_MAX_LAG = "30s"


class Format(StrEnum):
    text = "text"
    json = "json"


def _duration(option: str, raw: str, *, positive: bool) -> float:
    from kds.durations import parse_duration

    try:
        value = parse_duration(raw)
    except ValueError as error:
        raise ConfigurationError.of(option, raw, str(error)) from None
    if positive and value <= 0:
        raise ConfigurationError.of(option, raw, "must be greater than 0")
    if value < 0:
        raise ConfigurationError.of(option, raw, "must not be negative")
    return value


def _ids(values: list[str]) -> list[str]:
    """Repeatable options that also accept comma-separated lists."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _locate_database(context: Context, database_url: str | None) -> None:
    """Fill in the database URL (docs/configuration.md), or why there is none; never raises."""
    import os

    from kds.db.source import resolve
    from kds.errors import EmbeddedUnavailable, KdsError
    from kds.settings import Settings, load_settings

    try:
        settings = load_settings(database_url=database_url)
    except ConfigurationError:
        # The configuration check reports the bad value; the database checks still run.
        settings = Settings.model_construct(database_url=database_url or os.environ.get("KDS_DATABASE_URL") or None)
    try:
        context.database_url = resolve(settings).url
    except EmbeddedUnavailable as error:
        context.database_error = str(error)
        context.database_fix = "set KDS_DATABASE_URL or pass --database-url, or pip install 'kds[embedded]'"
    except KdsError as error:
        context.database_error = str(error)
        context.database_fix = "set KDS_DATABASE_URL or pass --database-url"


@reports_errors
def validate_infra(
    database_url: str | None = DatabaseUrlOption,
    output: Format = typer.Option(
        Format.text, "-o", "--output", metavar="FORMAT", help="text (a table on a terminal) or json."
    ),
    junit: Path | None = typer.Option(
        None, "--junit", help="Also write a JUnit XML report (one testcase per check) to FILE.", metavar="FILE"
    ),
    only: list[str] = typer.Option([], "--only", help="Run only this check (repeatable).", metavar="ID"),
    skip: list[str] = typer.Option([], "--skip", help="Do not run this check (repeatable).", metavar="ID"),
    strict: bool = typer.Option(False, "--strict", help="Warnings fail too (exit 1)."),
    timeout: str = typer.Option(
        DEFAULT_TIMEOUT, "--timeout", metavar="DURATION", help=f"Time limit of each check ({DURATION_EXAMPLES})."
    ),
    grace_period: str | None = setting_option(
        "--grace-period",
        "DURATION",
        "The pods' terminationGracePeriodSeconds",
        default="40s",
        env="KDS_TERMINATION_GRACE_PERIOD",
    ),
    server_url: str | None = typer.Option(
        None, "--server-url", envvar="KDS_SERVER_URL", metavar="URL", help="Base URL of a running kds serve to check."
    ),
    read_database_url: str | None = typer.Option(
        None,
        "--read-database-url",
        metavar="URL",
        help="The read database to check (a streaming replica) [env: KDS_READ_DATABASE_URL].",
        show_default=False,
    ),
    max_lag: str = typer.Option(
        DEFAULT_MAX_LAG,
        "--max-lag",
        metavar="DURATION",
        help=f"read-database warns when its replay lag is above this ({DURATION_EXAMPLES}).",
    ),
    server_token: str | None = typer.Option(
        None,
        "--server-token",
        metavar="TOKEN",
        envvar="KDS_SERVER_TOKEN",
        help="Bearer token with metrics:read, when the server has authentication on; prefer KDS_SERVER_TOKEN or "
        "--token-file (an option value shows in ps).",
        show_default=False,
    ),
    token_file: Path | None = typer.Option(
        None,
        "--token-file",
        envvar="KDS_SERVER_TOKEN_FILE",
        metavar="FILE",
        help="File holding the bearer token; wins over --server-token and KDS_SERVER_TOKEN.",
        show_default=False,
    ),
) -> None:
    """Check that the database, configuration and server are ready for kds (CI pre-deploy check).

    Checks: database-connection, database-version, schema-version, required-tables, required-columns,
    required-indexes, partitions, privileges, python-dependencies, configuration, server, read-database,
    connection-pooler.
    Exit 0 when nothing failed, 1 when a check failed (or warned, with --strict), 2 for an invalid invocation.
    """
    from kds.checks import catalogue, present
    from kds.checks.runner import Context, run_checks

    per_check = _duration("--timeout", timeout, positive=True)
    grace = _duration("--grace-period", grace_period, positive=False) if grace_period is not None else None
    lag_limit = _duration("--max-lag", max_lag, positive=False)
    try:
        checks = catalogue.select(_ids(only), _ids(skip))
    except ValueError as error:
        raise ConfigurationError(f"unknown check id: {error} (known: {', '.join(catalogue.CHECK_IDS)})") from None
    if not checks:
        raise ConfigurationError("--only/--skip leave no check to run")

    context = Context(
        timeout=per_check,
        settings_overrides={
            "database_url": database_url,
            "read_database_url": read_database_url,
            "termination_grace_period": grace,
        },
        max_lag=lag_limit,
        server_url=server_url,
        server_token=_server_token(server_token, token_file),
    )
    if any(check.needs_database or check.opens_connection or check.uses_database_url for check in checks):
        _locate_database(context, database_url)
    try:
        outcomes = run_checks(checks, context, connect=catalogue.connect)
    finally:
        context.close()

    if output is Format.json:
        sys.stdout.write(present.to_json(outcomes))
    else:
        from rich.console import Console

        console = Console(highlight=False)
        if console.is_terminal:
            present.render_table(outcomes, console, strict=strict)
        else:
            present.render_plain(outcomes, sys.stdout, strict=strict)
    if junit is not None:
        try:
            junit.write_bytes(present.to_junit(outcomes, strict=strict))
        except OSError as error:
            raise ConfigurationError.of("--junit", junit, f"cannot write ({error.strerror})") from None
    raise typer.Exit(present.exit_code(outcomes, strict=strict))


def _server_token(token: str | None, token_file: Path | None) -> str | None:
    """The same rule as the remote CLI (docs/remote.md): a token file wins over a token value."""
    if token_file is None:
        return token
    from kds.remote.credentials import read_token_file

    return read_token_file(token_file)
