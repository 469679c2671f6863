"""``connection-pooler``: does the connection go through PgBouncer, in which pool mode, and is kds set for it.

Detection needs no admin rights (docs/validate-infra.md, docs/scaling.md):

1. a connection that sends the startup parameter ``options`` (what kds sends on a direct connection):
   PostgreSQL accepts it, PgBouncer refuses it with ``unsupported startup parameter: options``;
2. the pooler's admin console, database ``pgbouncer`` at the same address: when the role is in
   PgBouncer's ``admin_users`` or ``stats_users``, ``SHOW VERSION`` and the pool mode (``SHOW DATABASES``,
   else ``SHOW CONFIG``); other roles get PgBouncer's ``not allowed`` (a PgBouncer that ignores
   ``options`` is still recognised); PostgreSQL itself answers that no database ``pgbouncer`` exists.

A direct connection always passes; a pooler with ``KDS_DATABASE_POOLER`` left at ``none`` warns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from kds.checks.runner import CheckResult, Context, passed, skipped, warned
from kds.db.failures import Cause, cause_of, describe
from kds.db.policy import SWITCH

if TYPE_CHECKING:
    import psycopg

    from kds.db.policy import Pooler

APPLICATION_NAME = "kds-validate-infra"
ADMIN_DATABASE = "pgbouncer"
# PgBouncer's answer on its admin console to a role outside admin_users / stats_users
ADMIN_REFUSAL = "not allowed"
SWITCH_FIX = describe(Cause.POOLER_REFUSED_OPTIONS).fix


def configured_pooler(context: Context) -> Pooler:
    """The switch as configured; ``none`` when the settings do not parse (``configuration`` reports that)."""
    from kds.errors import ConfigurationError
    from kds.settings import load_settings

    try:
        return load_settings(**context.settings_overrides).database_pooler
    except ConfigurationError:
        return "none"


@dataclass(frozen=True, slots=True)
class Detection:
    pgbouncer: bool
    direct: bool  # answered like PostgreSQL (took the startup options, no PgBouncer console)
    version: str = ""
    pool_mode: str = ""


def _connect(url: str, timeout: float, **kwargs: object) -> psycopg.Connection:
    import psycopg

    return psycopg.connect(
        url,
        autocommit=True,
        prepare_threshold=None,
        connect_timeout=max(1, round(timeout)),
        application_name=APPLICATION_NAME,
        **kwargs,  # type: ignore[arg-type]
    )


def _options_refused(url: str, timeout: float) -> bool | None:
    """True: refused like PgBouncer; False: accepted; None: the attempt failed for another reason."""
    import psycopg

    try:
        _connect(url, timeout, options=f"-c statement_timeout={int(timeout * 1000)}").close()
    except psycopg.Error as exc:
        return True if cause_of(exc) is Cause.POOLER_REFUSED_OPTIONS else None
    return False


def _admin_console(url: str, dbname: str, timeout: float) -> Detection | None:
    """What PgBouncer's admin console tells; ``direct`` when PostgreSQL answered; None when inconclusive."""
    import psycopg

    try:
        conn = _connect(url, timeout, dbname=ADMIN_DATABASE)
    except psycopg.Error as exc:
        if getattr(exc, "sqlstate", None) == "3D000" or f'database "{ADMIN_DATABASE}" does not exist' in str(exc):
            return Detection(pgbouncer=False, direct=True)
        if ADMIN_REFUSAL in str(exc):
            return Detection(pgbouncer=True, direct=False)
        return None
    with conn:
        try:
            version = str(conn.execute("SHOW VERSION").fetchone()[0])  # type: ignore[index]
            cur = conn.execute("SHOW DATABASES")
            columns = [column.name for column in cur.description or []]
            rows = [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]
            mode = next((row.get("pool_mode") for row in rows if row.get("name") == dbname), None)
            if not mode:
                config = {row[0]: row[1] for row in conn.execute("SHOW CONFIG").fetchall()}
                mode = config.get("pool_mode")
        except psycopg.Error:  # a console that answers but not these commands: still PgBouncer
            return Detection(pgbouncer=True, direct=False)
    return Detection(pgbouncer=True, direct=False, version=version, pool_mode=str(mode or ""))


def detect(url: str, *, timeout: float) -> Detection:
    from psycopg.conninfo import conninfo_to_dict

    dbname = str(conninfo_to_dict(url).get("dbname") or "")
    refused = _options_refused(url, timeout)
    console = _admin_console(url, dbname, timeout)
    if console is not None and console.pgbouncer:
        return console
    if refused:
        return Detection(pgbouncer=True, direct=False)
    return Detection(pgbouncer=False, direct=refused is False)  # PostgreSQL took kds's startup options


def check_connection_pooler(context: Context) -> CheckResult:
    if context.database_url is None:
        return skipped("skipped: no database is configured")
    switch = configured_pooler(context)
    found = detect(context.database_url, timeout=context.timeout)
    if not found.pgbouncer:
        if not found.direct:
            return skipped("skipped: no database connection (see database-connection)")
        if switch == "none":
            return passed("direct connection, no pooler")
        return passed(
            f"direct connection, no pooler; {SWITCH}=pgbouncer is set: safe, but a direct connection is faster "
            f"with {SWITCH}=none (prepared statements, settings once per connection)"
        )
    name = found.version or "PgBouncer"
    mode = f"in {found.pool_mode} pooling mode" if found.pool_mode else "(pool mode not visible to this role)"
    if switch == "none":
        return warned(
            f"the connection goes through {name} {mode}, but {SWITCH} is none: kds's startup options are "
            "refused and its prepared statements would clash",
            SWITCH_FIX,
        )
    if found.pool_mode == "statement":
        return warned(
            f"{name} is in statement pooling mode: kds's multi-statement transactions (audit writes, exports, "
            "per-transaction settings) are refused",
            "set pool_mode = transaction for kds's database entry in pgbouncer.ini",
        )
    return passed(f"through {name} {mode}; {SWITCH}=pgbouncer")
