"""``read-database``: the database kds reads from (``KDS_READ_DATABASE_URL``), when one is configured.

It must accept a read-only connection (a hot standby accepts nothing else), hold the tables and columns
kds reads (the same functions as ``required-tables`` / ``required-columns``, run on this connection) and
replay within ``--max-lag`` of its primary (lag as in :mod:`kds.db.replica`; above it: warn). Without a
read database it is skipped. docs/validate-infra.md, docs/scaling.md#read-replicas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kds.checks.runner import CheckResult, Context, Status, failed, passed, skipped, warned

if TYPE_CHECKING:
    import psycopg

URL_FIX = "fix --read-database-url / KDS_READ_DATABASE_URL"
LAG_FIX = (
    "find why the replica falls behind (pg_stat_replication on the primary: network, disk, long queries on "
    "the replica holding replay back with max_standby_streaming_delay); or raise --max-lag if this lag is "
    "acceptable for reads"
)


def configured_read_database(context: Context) -> str | None:
    """``--read-database-url`` > ``KDS_READ_DATABASE_URL``; ``None`` when unset or when the settings do not
    parse (``configuration`` reports that)."""
    from kds.errors import ConfigurationError
    from kds.settings import load_settings

    try:
        return load_settings(**context.settings_overrides).read_database_url or None
    except ConfigurationError:
        return None


def check_read_database(context: Context) -> CheckResult:
    from kds.checks.connection import connect_and_probe
    from kds.checks.pooler import configured_pooler
    from kds.db.failures import url_problem

    url = configured_read_database(context)
    if url is None:
        return skipped("skipped: no read database is configured (--read-database-url / KDS_READ_DATABASE_URL)")
    problem = url_problem(url)
    if problem is not None:
        return failed(f"read database: cannot connect: {problem}", URL_FIX)
    connected, conn = connect_and_probe(url, timeout=context.timeout, pooler=configured_pooler(context))
    if conn is None:
        return failed(f"read database: {connected.message}", connected.fix)
    try:
        return _inspect(conn, connected.message, context.max_lag, context.timeout)
    finally:
        conn.close()


def _inspect(conn: psycopg.Connection, connected: str, max_lag: float, timeout: float) -> CheckResult:
    from kds.checks import schema
    from kds.db.replica import replica_lag

    on_this = Context(timeout=timeout, connection=conn)
    for check in (schema.check_required_tables, schema.check_required_columns):
        result = check(on_this)
        if result.status is Status.FAIL:
            return failed(f"read database: {result.message}", result.fix)
    lag, in_recovery = replica_lag(conn)
    role = f"a streaming replica, replay lag {lag:.1f} s" if in_recovery else "not a replica (lag 0 s)"
    message = f"{connected}; {role}; required tables and columns present"
    if lag > max_lag:
        return warned(f"{message}; the lag is above --max-lag {max_lag:g} s", LAG_FIX)
    return passed(message)
