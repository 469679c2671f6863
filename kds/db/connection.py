"""The one place that opens database connections.

Every connection carries an ``application_name`` (``kds-cli``, ``kds-serve``, ...), the configured
statement timeout and, for inspection commands, read-only transactions; how they travel (startup
options, or per transaction behind a pooler) is :mod:`kds.db.policy`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kds.db.policy import SWITCH, ConnectionPolicy, Pooler, apply_transaction_settings, refuses_startup_options
from kds.errors import KdsError, QueryTimeout, ServiceUnavailable

if TYPE_CHECKING:
    import psycopg


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
    """Open a synchronous connection; failures become :class:`ServiceUnavailable`.

    A read-only, non-autocommit connection is an inspection session: one read-only transaction, rolled
    back when it closes. Behind a pooler that transaction starts here, with the per-transaction settings.
    """
    import psycopg

    policy = ConnectionPolicy(application_name, statement_timeout, connect_timeout, read_only, pooler)
    try:
        conn = psycopg.connect(url, autocommit=autocommit, **policy.kwargs())
    except psycopg.Error as exc:
        if refuses_startup_options(exc):
            raise ServiceUnavailable(
                f"the database URL points at a connection pooler (PgBouncer); set {SWITCH}=pgbouncer"
            ) from exc
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
