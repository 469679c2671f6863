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

MINIMUM_SERVER_VERSION = 130000
APPLICATION_NAME = "kds-validate-infra"


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


_CONNECT_FIX = (
    "check that PostgreSQL is running and reachable from here (host, port, DNS, network policy), "
    "and that --database-url / KDS_DATABASE_URL points at it"
)


def _connect_failure(exc: Exception) -> tuple[str, str]:
    """(reason, fix) for a failed connection attempt, without the driver's text."""
    import psycopg

    state = getattr(exc, "sqlstate", None)
    text = str(exc).lower()
    if isinstance(exc, psycopg.ProgrammingError) and not state:
        return "the URL is not a valid PostgreSQL URL or conninfo string", "fix --database-url / KDS_DATABASE_URL"
    if state in ("28P01", "28000"):
        return "authentication failed", "check the user name and password (the Kubernetes Secret) and pg_hba.conf"
    if state == "3D000":
        return "the database does not exist", "create the database or fix the database name in the URL"
    if state == "53300":
        return "the server has no free connection slots", "raise max_connections or lower the pool sizes"
    if state in ("57P03", "57P01"):
        return "the server is starting up or shutting down", "retry once PostgreSQL has finished starting"
    if "timeout expired" in text:
        return "no answer within the connect timeout", _CONNECT_FIX + "; raise --timeout for a slow link"
    if "connection refused" in text:
        return "connection refused", _CONNECT_FIX
    if "translate host name" in text or "name or service not known" in text:
        return "the host name does not resolve", "fix the host name in the URL, or the cluster DNS"
    if "no such file or directory" in text:
        return "no server listens on the unix socket", _CONNECT_FIX
    return "the database is unreachable", _CONNECT_FIX


def connect_and_probe(url: str, *, timeout: float) -> tuple[CheckResult, psycopg.Connection | None]:
    """Open a read-only, autocommit connection and report the server version and latency."""
    import psycopg

    from kds.db.connection import connection_kwargs

    target = describe_target(url)
    started = time.perf_counter()
    try:
        kwargs = connection_kwargs(
            application_name=APPLICATION_NAME, statement_timeout=timeout, connect_timeout=timeout, read_only=True
        )
        conn = psycopg.connect(url, autocommit=True, **kwargs)
    except psycopg.Error as exc:
        reason, fix = _connect_failure(exc)
        return failed(f"cannot connect to {target}: {reason}", fix), None
    try:
        result = probe_connection(conn, started=started, target=target)
    except psycopg.Error as exc:
        conn.close()
        reason, fix = _connect_failure(exc)
        return failed(f"connected to {target} but a query failed: {reason}", fix), None
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
    return connect_and_probe(context.database_url, timeout=context.timeout)


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
