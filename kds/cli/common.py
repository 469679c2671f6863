"""What every command shares: option declarations, error reporting and database sessions."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import typer

from kds.errors import ConfigurationError, EmbeddedUnavailable, InvalidInput, KdsError

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

    from kds.settings import Settings

P = ParamSpec("P")
R = TypeVar("R")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_INVALID = 2

DatabaseUrlOption = typer.Option(
    None,
    "--database-url",
    metavar="URL",
    help="PostgreSQL URL [env: KDS_DATABASE_URL; default: the embedded server].",
    show_default=False,
)

# Remote mode (docs/remote.md): each also reads its KDS_* variable through the settings model.
ServerUrlOption = typer.Option(
    None,
    "--server-url",
    metavar="URL",
    help="Ask this running kds serve instead of the database [env: KDS_SERVER_URL].",
    show_default=False,
)
TokenFileOption = typer.Option(
    None,
    "--token-file",
    metavar="FILE",
    help="File holding the server's bearer token [env: KDS_SERVER_TOKEN_FILE; or the token in KDS_SERVER_TOKEN].",
    show_default=False,
)
CaFileOption = typer.Option(
    None,
    "--ca-file",
    metavar="FILE",
    help="CA certificates for an https server, instead of the system's [env: KDS_SERVER_CA_FILE].",
    show_default=False,
)
ReadDatabaseUrlOption = typer.Option(
    None,
    "--read-database-url",
    metavar="URL",
    help="PostgreSQL URL for reads: a streaming replica or a pooler in front of replicas "
    "[env: KDS_READ_DATABASE_URL; default: the database of --database-url].",
    show_default=False,
)


def fail(message: str, code: int) -> typer.Exit:
    print(message, file=sys.stderr)
    return typer.Exit(code)


def exit_code_for(error: KdsError) -> int:
    return EXIT_INVALID if isinstance(error, InvalidInput | ConfigurationError) else EXIT_FAILURE


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn expected failures into ``slug: detail`` on stderr and their exit code (docs/cli.md).

    Driver errors are mapped to kds errors where the database is called (``kds.db.connection.database_errors``);
    anything else is a bug, reported by the root command group (``kds.cli.group``)."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except KdsError as error:
            raise fail(str(error), exit_code_for(error)) from None

    return wrapper


def settings(**options: Any) -> Settings:
    from kds.settings import load_settings

    return load_settings(**options)


def source_settings(
    *,
    database_url: str | None,
    read_database_url: str | None,
    server_url: str | None,
    token_file: Path | None,
    ca_file: Path | None,
) -> Settings:
    """The settings of a command that reads incidents from the database or a server (kds.cli.sources)."""
    return settings(
        database_url=database_url,
        read_database_url=read_database_url,
        server_url=server_url,
        server_token_file=token_file,
        server_ca_file=ca_file,
    )


def maintenance_timeout(config: Settings) -> float:
    """Statement timeout of schema and bulk-data commands: none unless KDS_STATEMENT_TIMEOUT is set.

    The 5 s default is sized for requests; an index build on a large table takes longer.
    """
    return config.statement_timeout if "statement_timeout" in config.model_fields_set else 0.0


def transaction_setup(config: Settings, statement_timeout: float) -> sql.SQL | None:
    """What starts each transaction of a command that manages its own transactions (``kds db``).

    ``None`` on a direct connection (the session carries the settings); behind a pooler the statement
    timeout, for that transaction only (docs/scaling.md).
    """
    from kds.db.policy import ConnectionPolicy

    return ConnectionPolicy("kds-cli", statement_timeout, pooler=config.database_pooler).transaction_setup()


@contextmanager
def session(
    config: Settings,
    *,
    read_only: bool,
    application_name: str = "kds-cli",
    statement_timeout: float | None = None,
    reads: bool = False,
) -> Iterator[psycopg.Connection]:
    """A connection to the configured (or embedded) database, closed on exit.

    ``reads=True`` (incident reads) connects to ``KDS_READ_DATABASE_URL`` when it is set
    (docs/scaling.md#read-replicas); ``kds db`` and every write use the primary.
    """
    from kds.db.connection import connect
    from kds.db.source import resolve

    url = config.read_database_url if reads and config.read_database_url else resolve(config).url
    conn = connect(
        url,
        application_name=application_name,
        statement_timeout=config.statement_timeout if statement_timeout is None else statement_timeout,
        connect_timeout=config.connect_timeout,
        read_only=read_only,
        pooler=config.database_pooler,
    )
    try:
        yield conn
    finally:
        conn.close()


__all__ = [
    "EXIT_FAILURE",
    "EXIT_INVALID",
    "EXIT_OK",
    "DatabaseUrlOption",
    "EmbeddedUnavailable",
    "ReadDatabaseUrlOption",
    "fail",
    "reports_errors",
    "session",
    "settings",
]
