"""``database-connection`` and ``database-version``: can kds reach the server, and is it new enough.

:func:`check_database_connection` also works on its own (e.g. for a readiness probe).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from kds.checks.common import connection
from kds.checks.runner import CheckResult, Context, failed, passed

if TYPE_CHECKING:
    import psycopg

    from kds.db.policy import Pooler

MINIMUM_SERVER_VERSION = 130000
APPLICATION_NAME = "kds-validate-infra"


def connect_and_probe(
    url: str, *, timeout: float, pooler: Pooler = "none"
) -> tuple[CheckResult, psycopg.Connection | None]:
    """Open a read-only, autocommit connection and report the server version and latency."""
    import psycopg

    from kds.db.connection import connection_failed, connection_kwargs, describe_target
    from kds.db.failures import classify, url_problem

    target = describe_target(url)
    problem = url_problem(url)
    if problem is not None:
        return failed(f"cannot connect: {problem}", "fix --database-url / KDS_DATABASE_URL"), None
    started = time.perf_counter()
    kwargs = connection_kwargs(
        application_name=APPLICATION_NAME,
        statement_timeout=timeout,
        connect_timeout=timeout,
        read_only=True,
        pooler=pooler,
    )
    try:
        conn = psycopg.connect(url, autocommit=True, **kwargs)
    except psycopg.Error as exc:
        error = connection_failed(url, exc, kwargs)
        return failed(error.detail, error.fix), None
    try:
        result = probe_connection(conn, started=started, target=target)
    except psycopg.Error as exc:
        conn.close()
        failure = classify(exc)
        return failed(f"connected to {target} but a query failed: {failure.reason}", failure.fix), None
    return result, conn


def probe_connection(conn: psycopg.Connection, *, started: float | None = None, target: str = "") -> CheckResult:
    """The cheap part of ``database-connection``: one round trip (no catalogue scan)."""
    begin = time.perf_counter() if started is None else started
    conn.execute("SELECT 1").fetchone()
    latency_ms = (time.perf_counter() - begin) * 1000
    where = f" {target}" if target else ""
    return passed(f"connected to{where} (PostgreSQL {version_text(conn)}) in {latency_ms:.0f} ms")


def check_database_connection(url: str, *, timeout: float = 5.0) -> CheckResult:
    """``database-connection`` on its own: connect, probe, close."""
    result, conn = connect_and_probe(url, timeout=timeout)
    if conn is not None:
        conn.close()
    return result


def open_database(context: Context) -> tuple[CheckResult, psycopg.Connection | None]:
    """The runner's connector: the database the front end located, or why there is none."""
    if context.database_error is not None:
        return failed(context.database_error, context.database_fix), None
    if context.database_url is None:
        return failed("no database is configured", "pass --database-url or set KDS_DATABASE_URL"), None
    from kds.checks.pooler import configured_pooler

    return connect_and_probe(context.database_url, timeout=context.timeout, pooler=configured_pooler(context))


def version_text(conn: psycopg.Connection) -> str:
    number = conn.info.server_version
    major, rest = divmod(number, 10000)
    return f"{major}.{rest}" if major >= 10 else f"{major}.{rest // 100}.{rest % 100}"


def check_database_version(context: Context) -> CheckResult:
    conn = connection(context)
    if conn.info.server_version >= MINIMUM_SERVER_VERSION:
        return passed(f"PostgreSQL {version_text(conn)} (13 or newer required)")
    return failed(
        f"PostgreSQL {version_text(conn)} is older than 13",
        "upgrade the server to PostgreSQL 13 or newer (pg_upgrade, or a managed-service major version upgrade)",
    )
