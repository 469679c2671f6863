"""Checks that look at the database: connection, version, schema, partitions, privileges.

Every requirement comes from :mod:`kds.db.schema` (tables, columns, indexes) and
:mod:`kds.db.migrate` (migrations), the same definitions the migrations and queries use.
All statements are read-only catalogue queries with bound parameters.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from kds.checks.runner import CheckResult, Context, failed, passed, skipped, warned
from kds.db.schema import AUDIT_TABLE, INCIDENT_TABLE, INDEXES, READ_TABLES, TABLES, Column, describe_type

if TYPE_CHECKING:
    import psycopg

    from kds.db.policy import Pooler

MINIMUM_SERVER_VERSION = 130000
APPLICATION_NAME = "kds-validate-infra"
MIGRATE_FIX = "run `kds db migrate` against this database (for example from the Kubernetes migration Job)"

# ----------------------------------------------------------------------------------------------
# database-connection (usable on its own, e.g. by a readiness probe)


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


def connect_and_probe(
    url: str, *, timeout: float, pooler: Pooler = "none"
) -> tuple[CheckResult, psycopg.Connection | None]:
    """Open a read-only, autocommit connection and report the server version and latency."""
    import psycopg

    from kds.checks.pooler import refused_connection
    from kds.db.connection import connection_kwargs
    from kds.db.policy import refuses_startup_options

    target = describe_target(url)
    started = time.perf_counter()
    try:
        kwargs = connection_kwargs(
            application_name=APPLICATION_NAME,
            statement_timeout=timeout,
            connect_timeout=timeout,
            read_only=True,
            pooler=pooler,
        )
        conn = psycopg.connect(url, autocommit=True, **kwargs)
    except psycopg.Error as exc:
        if refuses_startup_options(exc):
            return failed(*refused_connection(target)), None
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
    return passed(f"connected to{where} (PostgreSQL {_version_text(conn)}) in {latency_ms:.0f} ms")


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


def _connection(context: Context) -> psycopg.Connection:
    assert context.connection is not None, "the runner only calls database checks with a connection"
    return context.connection


def _version_text(conn: psycopg.Connection) -> str:
    number = conn.info.server_version
    major, rest = divmod(number, 10000)
    return f"{major}.{rest}" if major >= 10 else f"{major}.{rest // 100}.{rest % 100}"


# ----------------------------------------------------------------------------------------------
# database-version


def check_database_version(context: Context) -> CheckResult:
    conn = _connection(context)
    if conn.info.server_version >= MINIMUM_SERVER_VERSION:
        return passed(f"PostgreSQL {_version_text(conn)} (13 or newer required)")
    return failed(
        f"PostgreSQL {_version_text(conn)} is older than 13",
        "upgrade the server to PostgreSQL 13 or newer (pg_upgrade, or a managed-service major version upgrade)",
    )


# ----------------------------------------------------------------------------------------------
# schema-version


def check_schema_version(context: Context) -> CheckResult:
    import psycopg

    from kds.db import migrate

    conn = _connection(context)
    try:
        state = migrate.status(conn)
        recorded = migrate.applied_versions(conn)
    except psycopg.errors.InsufficientPrivilege:
        return warned(
            f"cannot verify: this role may not read {migrate.MIGRATIONS_TABLE}",
            f"GRANT SELECT ON {migrate.MIGRATIONS_TABLE} TO {conn.info.user}; or run the check as the migration role",
        )
    known = {m.version for m in migrate.available_migrations()}
    unknown = [version for version in recorded if version not in known]
    if state.pending:
        return failed(
            f"{len(state.pending)} pending migration(s): {', '.join(state.pending)}",
            MIGRATE_FIX,
        )
    if unknown:
        return warned(
            f"all {len(state.applied)} kds migrations applied, but the database also records migrations "
            f"this kds does not know: {', '.join(unknown)} (kds is older than the schema)",
            "deploy the kds version that matches the schema",
        )
    return passed(f"all {len(state.applied)} migrations applied (latest {state.applied[-1]})")


# ----------------------------------------------------------------------------------------------
# required-tables / required-columns / required-indexes

_TABLES_SQL = """
SELECT c.relname, c.oid::bigint
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND c.relname = ANY(%s)
"""


def existing_tables(conn: psycopg.Connection, names: list[str] | None = None) -> dict[str, int]:
    """Name → oid of the required tables present in the current schema."""
    wanted = names if names is not None else list(TABLES)
    return {name: oid for name, oid in conn.execute(_TABLES_SQL, (wanted,))}


def check_required_tables(context: Context) -> CheckResult:
    conn = _connection(context)
    present = existing_tables(conn)
    missing = [name for name in TABLES if name not in present]
    if missing:
        return failed(
            f"missing table(s): {', '.join(missing)} (schema {_schema(conn)})",
            f"{MIGRATE_FIX}; if the tables live in another schema, set search_path for this role "
            "(ALTER ROLE ... SET search_path = ...)",
        )
    return passed(f"all {len(TABLES)} tables present: {', '.join(TABLES)}")


def _schema(conn: psycopg.Connection) -> str:
    row = conn.execute("SELECT current_schema()").fetchone()
    return str(row[0]) if row and row[0] else "(none: search_path is empty)"


@dataclass(frozen=True, slots=True)
class FoundColumn:
    name: str
    data_type: str
    length: int | None = None
    precision: tuple[int, int] | None = None  # numeric (precision, scale); None when unconstrained

    def describe(self) -> str:
        return describe_type(self.data_type, self.length, self.precision)


_WIDER_TYPES = {
    "smallint": {"smallint", "integer", "bigint"},
    "integer": {"integer", "bigint"},
    "bigint": {"bigint"},
    "character varying": {"character varying", "text"},
}


def compatible(required: Column, found: FoundColumn) -> bool:
    """Can ``found`` hold every value kds reads or writes as ``required``?

    Same type, or a wider one (integer → bigint, varchar → text); a longer varchar is fine, a
    shorter one is not; a numeric needs at least the same scale and as many integer digits.
    """
    if found.data_type not in _WIDER_TYPES.get(required.data_type, {required.data_type}):
        return False
    if required.length is not None and found.data_type == "character varying" and found.length is not None:
        return found.length >= required.length
    if required.precision is not None and found.precision is not None:
        need_precision, need_scale = required.precision
        have_precision, have_scale = found.precision
        return have_scale >= need_scale and have_precision - have_scale >= need_precision - need_scale
    return True


_COLUMNS_SQL = """
SELECT table_name::text, column_name::text, data_type::text, character_maximum_length::int,
       numeric_precision::int, numeric_scale::int, is_nullable::text, column_default IS NOT NULL,
       is_identity::text, is_generated::text
  FROM information_schema.columns
 WHERE table_schema = current_schema() AND table_name = ANY(%s)
 ORDER BY table_name, ordinal_position
"""


def check_required_columns(context: Context) -> CheckResult:
    conn = _connection(context)
    present = existing_tables(conn)
    found: dict[str, dict[str, FoundColumn]] = {}
    blocking: list[str] = []  # extra NOT NULL columns without a default in a table kds writes
    required_names = {table: {c.name for c in columns} for table, columns in TABLES.items()}
    for table, column, dtype, length, precision, scale, nullable, has_default, identity, generated in conn.execute(
        _COLUMNS_SQL, (list(present),)
    ):
        numeric = (precision, scale) if dtype == "numeric" and precision is not None else None
        found.setdefault(table, {})[column] = FoundColumn(column, dtype, length, numeric)
        extra = column not in required_names[table]
        writes_fail = nullable == "NO" and not has_default and identity == "NO" and generated == "NEVER"
        if table == AUDIT_TABLE and extra and writes_fail:
            blocking.append(f"{table}.{column}")
    missing: list[str] = []
    wrong: list[str] = []
    for table, columns in TABLES.items():
        if table not in present:
            continue
        for column in columns:
            have = found.get(table, {}).get(column.name)
            if have is None:
                missing.append(f"{table}.{column.name}")
            elif not compatible(column, have):
                wrong.append(f"{table}.{column.name} is {have.describe()}, needs {column.describe()}")
    absent = [table for table in TABLES if table not in present]
    not_checked = f"; not checked (table missing, see required-tables): {', '.join(absent)}" if absent else ""
    problems = []
    if missing:
        problems.append(f"missing column(s): {', '.join(missing)}")
    if wrong:
        problems.append(f"incompatible type(s): {'; '.join(wrong)}")
    if blocking:
        problems.append(f"NOT NULL column(s) without a default that kds does not write: {', '.join(blocking)}")
    if problems:
        fixes = []
        if missing:
            fixes.append("add the missing columns with the types of SPEC 2.1 (ALTER TABLE ... ADD COLUMN ...)")
        if wrong:
            fixes.append("widen the columns to at least the required type (ALTER TABLE ... ALTER COLUMN ... TYPE ...)")
        if blocking:
            fixes.append("give those columns a DEFAULT or drop NOT NULL (ALTER TABLE ... ALTER COLUMN ... SET ...)")
        return failed("; ".join(problems) + not_checked, "; ".join(fixes))
    if not present:
        return skipped("skipped: none of the tables exists (see required-tables)")
    checked = sum(len(TABLES[table]) for table in present)
    return passed(f"all {checked} columns present with compatible types{not_checked}")


_INDEXES_SQL = """
SELECT c.relname::text, i.indisvalid
  FROM pg_index i
  JOIN pg_class c ON c.oid = i.indexrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = current_schema() AND c.relname = ANY(%s)
"""


def check_required_indexes(context: Context) -> CheckResult:
    conn = _connection(context)
    present = existing_tables(conn)
    wanted = [index for index in INDEXES if index.table in present]
    found = {name: valid for name, valid in conn.execute(_INDEXES_SQL, ([index.name for index in wanted],))}
    missing = [f"{index.name} ({index.purpose})" for index in wanted if index.name not in found]
    invalid = [index.name for index in wanted if found.get(index.name) is False]
    if missing or invalid:
        parts = []
        if missing:
            parts.append(f"missing index(es): {', '.join(missing)}")
        if invalid:
            parts.append(f"invalid index(es) (a failed CREATE INDEX CONCURRENTLY?): {', '.join(invalid)}")
        fix = MIGRATE_FIX + " (it creates the indexes with CREATE INDEX IF NOT EXISTS)"
        if invalid:
            fix += "; DROP the invalid indexes first so that the migration recreates them"
        return warned("; ".join(parts) + " — queries work but are slow", fix)
    if not wanted:
        return skipped("skipped: none of the indexed tables exists (see required-tables)")
    return passed(f"all {len(wanted)} indexes present and valid")


# ----------------------------------------------------------------------------------------------
# partitions

_PARTITIONING_SQL = """
SELECT c.oid::bigint, c.relkind::text, pt.partstrat::text, pt.partnatts::int, a.attname::text
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_partitioned_table pt ON pt.partrelid = c.oid
  LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = pt.partattrs[0]
 WHERE n.nspname = current_schema() AND c.relname = %s
"""

_PARTITIONS_SQL = """
SELECT c.relname::text, pg_get_expr(c.relpartbound, c.oid)
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = %s::oid
 ORDER BY c.relname
"""

_RANGE_BOUND = re.compile(r"^FOR VALUES FROM \((?P<low>.*)\) TO \((?P<high>.*)\)$", re.DOTALL)
_LITERAL = re.compile(r"^'((?:[^']|'')*)'$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class RangePartition:
    name: str
    low: datetime | None  # None: MINVALUE
    high: datetime | None  # None: MAXVALUE

    def covers(self, moment: datetime) -> bool:
        return (self.low is None or self.low <= moment) and (self.high is None or moment < self.high)


def _bound_literal(text: str) -> str | None:
    """The timestamp text of a bound literal; None for MINVALUE/MAXVALUE."""
    text = text.strip()
    if text in ("MINVALUE", "MAXVALUE"):
        return None
    match = _LITERAL.match(text)
    if match is None:
        raise ValueError(f"unexpected partition bound {text!r}")
    return match.group(1).replace("''", "'")


def _next_month(moment: datetime, months: int = 1) -> datetime:
    year, month = divmod(moment.month - 1 + months, 12)
    return datetime(moment.year + year, month + 1, 1, tzinfo=UTC)


PARTITION_FIX_EXAMPLE = (
    "CREATE TABLE {table}_{year:04d}_{month:02d} PARTITION OF {table} FOR VALUES FROM ('{start}') TO ('{end}')"
)


def _create_partition_sql(month_start: datetime) -> str:
    end = _next_month(month_start)
    return PARTITION_FIX_EXAMPLE.format(
        table=INCIDENT_TABLE,
        year=month_start.year,
        month=month_start.month,
        start=month_start.strftime("%Y-%m-%d 00:00:00+00"),
        end=end.strftime("%Y-%m-%d 00:00:00+00"),
    )


def check_partitions(context: Context) -> CheckResult:
    conn = _connection(context)
    row = conn.execute(_PARTITIONING_SQL, (INCIDENT_TABLE,)).fetchone()
    if row is None:
        return skipped(f"skipped: {INCIDENT_TABLE} does not exist (see required-tables)")
    oid, relkind, strategy, key_count, key_column = row
    if relkind != "p":
        return passed(f"{INCIDENT_TABLE} is not partitioned: every row has a place")
    if strategy != "r" or key_count != 1 or key_column != "action_timestamp":
        return warned(
            f"{INCIDENT_TABLE} is not range-partitioned on action_timestamp alone; cannot verify where rows go",
            "partition resource_action_traces by RANGE (action_timestamp) as SPEC 2.1 describes",
        )
    ranges: list[tuple[str, str | None, str | None]] = []
    defaults: list[str] = []
    for name, bound in conn.execute(_PARTITIONS_SQL, (oid,)):
        if bound == "DEFAULT":
            defaults.append(name)
            continue
        match = _RANGE_BOUND.match(bound or "")
        if match is None:
            return warned(f"cannot read the bound of partition {name}", "report this bound to the kds maintainers")
        ranges.append((name, _bound_literal(match["low"]), _bound_literal(match["high"])))
    # The server parses its own bound texts (same session, same DateStyle and TimeZone).
    literals = sorted({text for _, low, high in ranges for text in (low, high) if text is not None})
    parsed: dict[str, datetime] = {}
    now = conn.execute("SELECT now()").fetchone()[0]
    if literals:
        parsed = dict(conn.execute("SELECT x, x::timestamptz FROM unnest(%s::text[]) AS x", (literals,)).fetchall())
    partitions = [
        RangePartition(name, parsed[low] if low else None, parsed[high] if high else None) for name, low, high in ranges
    ]
    now = now.astimezone(UTC)
    next_start = _next_month(now)
    next_end = _next_month(now, 2) - timedelta(microseconds=1)
    periods = {
        f"now ({now:%Y-%m-%d %H:%M} UTC)": ([now], _next_month(now, 0)),
        f"next month ({next_start:%Y-%m})": ([next_start, next_end], next_start),
    }
    dedicated: list[str] = []
    only_default: list[str] = []
    uncovered: list[str] = []
    needed_months: list[datetime] = []
    for label, (moments, month_start) in periods.items():
        owners = [[p.name for p in partitions if p.covers(moment)] for moment in moments]
        if all(owners):
            dedicated.append(f"{label}: {', '.join(sorted({name for names in owners for name in names}))}")
            continue
        needed_months.append(month_start)
        (only_default if defaults else uncovered).append(label)
    create = "; ".join(_create_partition_sql(month) for month in needed_months)
    if uncovered:
        return failed(
            f"no partition of {INCIDENT_TABLE} takes rows for {' and '.join(uncovered)}, and there is no "
            "DEFAULT partition: inserts fail",
            f"create the monthly partitions ahead of time ({create}) and a DEFAULT partition "
            f"(CREATE TABLE {INCIDENT_TABLE}_default PARTITION OF {INCIDENT_TABLE} DEFAULT)",
        )
    if only_default:
        return warned(
            f"only the DEFAULT partition {defaults[0]} takes rows for {' and '.join(only_default)}",
            f"create the monthly partitions ahead of time ({create}); move rows of that month out of the DEFAULT "
            "partition first, or the CREATE fails",
        )
    default_note = f"; DEFAULT partition {defaults[0]}" if defaults else "; no DEFAULT partition"
    return passed(f"dedicated partitions for {'; '.join(dedicated)}{default_note}")


# ----------------------------------------------------------------------------------------------
# privileges

_PRIVILEGES_SQL = """
SELECT c.relname::text, has_table_privilege(c.oid, 'SELECT'), has_table_privilege(c.oid, 'INSERT')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND c.relname = ANY(%s)
"""

_SEQUENCE_SQL = """
SELECT s.seq, has_sequence_privilege(s.seq, 'USAGE')
  FROM (SELECT pg_get_serial_sequence(format('%%I.%%I', current_schema(), %s::text), 'id') AS seq) AS s
 WHERE s.seq IS NOT NULL
"""


def check_privileges(context: Context) -> CheckResult:
    conn = _connection(context)
    role = conn.info.user
    rights = {name: (select, insert) for name, select, insert in conn.execute(_PRIVILEGES_SQL, (list(TABLES),))}
    lacking: list[str] = []
    grants: list[str] = []
    for table in READ_TABLES:
        if table in rights and not rights[table][0]:
            lacking.append(f"SELECT on {table}")
            grants.append(f"GRANT SELECT ON {table} TO {role}")
    if AUDIT_TABLE in rights:
        if not rights[AUDIT_TABLE][1]:
            lacking.append(f"INSERT on {AUDIT_TABLE}")
            grants.append(f"GRANT INSERT ON {AUDIT_TABLE} TO {role}")
        sequence = conn.execute(_SEQUENCE_SQL, (AUDIT_TABLE,)).fetchone()
        if sequence is not None and not sequence[1]:
            lacking.append(f"USAGE on sequence {sequence[0]} (needed to insert into {AUDIT_TABLE})")
            grants.append(f"GRANT USAGE ON SEQUENCE {sequence[0]} TO {role}")
    absent = [table for table in (*READ_TABLES, AUDIT_TABLE) if table not in rights]
    not_checked = f"; not checked (table missing, see required-tables): {', '.join(absent)}" if absent else ""
    if lacking:
        return failed(f"role {role} lacks {', '.join(lacking)}{not_checked}", "; ".join(grants))
    if not rights:
        return skipped("skipped: none of the tables exists (see required-tables)")
    return passed(
        f"role {role} can SELECT {', '.join(t for t in READ_TABLES if t in rights)}"
        + (f" and INSERT into {AUDIT_TABLE}" if AUDIT_TABLE in rights else "")
        + not_checked
    )
