"""The one place that opens database connections.

Every connection carries an ``application_name`` (``kds-cli``, ``kds-serve``, ...), the configured
statement timeout and, for inspection commands, a read-only default transaction mode.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from kds.db.policy import ConnectionPolicy, Pooler, apply_transaction_settings
from kds.errors import ConfigurationError, ConnectionFailed, KdsError, QueryTimeout, ServiceUnavailable

if TYPE_CHECKING:
    import psycopg

T = TypeVar("T")


def connection_kwargs(
    *,
    application_name: str,
    statement_timeout: float,
    connect_timeout: float = 5.0,
    read_only: bool = False,
    pooler: Pooler = "none",
) -> dict[str, Any]:
    """Keyword arguments for ``psycopg.connect`` (and pool ``kwargs``)."""
    return ConnectionPolicy(application_name, statement_timeout, connect_timeout, read_only, pooler).kwargs()


def describe_target(url: str) -> str:
    """``user@host:port/dbname`` of a URL or conninfo string, never its password."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(url)
    except Exception:
        return "the configured database"
    host = str(parts.get("host") or "localhost")
    if host.startswith("/"):
        host = f"socket {host}"
    port = f":{parts['port']}" if parts.get("port") else ""
    user = f"{parts['user']}@" if parts.get("user") else ""
    dbname = f"/{parts['dbname']}" if parts.get("dbname") else ""
    return f"{user}{host}{port}{dbname}"


def check_url(url: str) -> None:
    """Raise :class:`ConfigurationError` (``invalid-parameter``) unless ``url`` is a PostgreSQL URL or conninfo."""
    from kds.db.failures import url_problem

    problem = url_problem(url)
    if problem is not None:
        raise ConfigurationError(problem)


def connection_failed(url: str, exc: BaseException, connect_kwargs: dict[str, Any]) -> ConnectionFailed:
    """``cannot connect to user@host:port/dbname: <reason>`` for a failed attempt, with its cause.

    ``connect_kwargs`` are those of the failed attempt: a rejection without SQLSTATE is asked
    again with them (:func:`kds.db.failures.classify`).
    """
    from psycopg.conninfo import make_conninfo

    from kds.db.failures import classify

    conninfo = make_conninfo(url, **connect_kwargs)
    failure = classify(exc, conninfo=conninfo, timeout=float(connect_kwargs.get("connect_timeout", 5)))
    return ConnectionFailed(f"cannot connect to {describe_target(url)}: {failure.reason}", failure.cause, failure.fix)


def connect(
    url: str,
    *,
    application_name: str,
    statement_timeout: float = 5.0,
    connect_timeout: float = 5.0,
    read_only: bool = False,
    autocommit: bool = False,
    pooler: Pooler = "none",
) -> psycopg.Connection:
    """Open a synchronous connection.

    An unusable URL raises :class:`ConfigurationError`; a failed attempt :class:`ConnectionFailed`
    naming the cause (see :mod:`kds.db.failures`). A read-only, non-autocommit connection is an
    inspection session: one read-only transaction, rolled back when it closes; behind a pooler that
    transaction starts here, with the per-transaction settings (docs/scaling.md).
    """
    import psycopg

    check_url(url)
    policy = ConnectionPolicy(application_name, statement_timeout, connect_timeout, read_only, pooler)
    kwargs = policy.kwargs()
    try:
        conn = psycopg.connect(url, autocommit=autocommit, **kwargs)
    except psycopg.OperationalError as exc:
        raise connection_failed(url, exc, kwargs) from exc
    except psycopg.Error as exc:
        raise translate_error(exc) from exc
    try:
        policy.configure(conn)
        if read_only and not autocommit:
            apply_transaction_settings(conn, policy)
    except psycopg.Error as exc:
        conn.close()
        raise translate_error(exc) from exc
    return conn


def translate_error(exc: BaseException) -> KdsError:
    """Map a driver exception to kds's error vocabulary (docs/api.md), without leaking driver text.

    A lost or refused connection keeps its cause (:func:`kds.db.failures.classify`).
    """
    import psycopg
    from psycopg import errors as pg_errors

    if isinstance(exc, KdsError):
        return exc
    if isinstance(exc, pg_errors.QueryCanceled):
        return QueryTimeout("the query took longer than the statement timeout")
    if isinstance(exc, psycopg.OperationalError):
        from kds.db.failures import classify

        failure = classify(exc)
        return ConnectionFailed(failure.reason, failure.cause, failure.fix)
    if isinstance(exc, psycopg.InterfaceError):
        return ServiceUnavailable("the database is unreachable")
    return KdsError("the database reported an unexpected error")


@contextmanager
def database_errors() -> Iterator[None]:
    """Driver exceptions raised inside the block become kds errors (in the style of httpx's
    ``map_httpcore_exceptions``). Wrap database calls only: any other exception passes through untouched."""
    import psycopg

    try:
        yield
    except psycopg.Error as exc:
        raise translate_error(exc) from exc


def database_rows(rows: Iterable[T]) -> Iterator[T]:
    """``rows`` (a stream fetched lazily from the database), with :func:`database_errors` around each fetch only,
    so that failures of whatever consumes the rows are never taken for database errors."""
    iterator = iter(rows)
    while True:
        with database_errors():
            try:
                row = next(iterator)
            except StopIteration:
                return
        yield row


def pool_exhausted() -> ServiceUnavailable:
    """The wait for a free pooled connection ran out (psycopg_pool's ``PoolTimeout`` / ``TooManyRequests``)."""
    return ServiceUnavailable("no database connection became available in time; retry shortly")
