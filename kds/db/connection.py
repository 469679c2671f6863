"""The one place that opens database connections.

Every connection carries an ``application_name`` (``kds-cli``, ``kds-serve``, ...), the configured
statement timeout and, for inspection commands, a read-only default transaction mode.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kds.errors import KdsError, QueryTimeout, ServiceUnavailable

if TYPE_CHECKING:
    import psycopg


def connection_kwargs(
    *,
    application_name: str,
    statement_timeout: float,
    connect_timeout: float = 5.0,
    read_only: bool = False,
) -> dict[str, Any]:
    """Keyword arguments for ``psycopg.connect`` (and pool ``kwargs``)."""
    options = [f"-c statement_timeout={int(statement_timeout * 1000)}"]
    if read_only:
        options.append("-c default_transaction_read_only=on")
    return {
        "application_name": application_name,
        "connect_timeout": max(1, round(connect_timeout)),
        "options": " ".join(options),
    }


def connect(
    url: str,
    *,
    application_name: str,
    statement_timeout: float = 5.0,
    connect_timeout: float = 5.0,
    read_only: bool = False,
    autocommit: bool = False,
) -> psycopg.Connection:
    """Open a synchronous connection; failures become :class:`ServiceUnavailable`."""
    import psycopg

    kwargs = connection_kwargs(
        application_name=application_name,
        statement_timeout=statement_timeout,
        connect_timeout=connect_timeout,
        read_only=read_only,
    )
    try:
        return psycopg.connect(url, autocommit=autocommit, **kwargs)
    except psycopg.Error as exc:
        raise translate_error(exc) from exc


def translate_error(exc: BaseException) -> KdsError:
    """Map a driver exception to the SPEC's error vocabulary, without leaking driver text."""
    import psycopg
    from psycopg import errors as pg_errors

    if isinstance(exc, KdsError):
        return exc
    if isinstance(exc, pg_errors.QueryCanceled):
        return QueryTimeout("the query took longer than the statement timeout")
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return ServiceUnavailable("the database is unreachable")
    return KdsError("the database reported an unexpected error")


def pool_exhausted() -> ServiceUnavailable:
    """The wait for a free pooled connection ran out (psycopg_pool's ``PoolTimeout`` / ``TooManyRequests``)."""
    return ServiceUnavailable("no database connection became available in time; retry shortly")
