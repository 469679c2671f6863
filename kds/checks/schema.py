"""Schema checks: ``schema-version``, ``required-tables``, ``required-columns``, ``required-indexes``.

Every requirement comes from :mod:`kds.db.schema` (tables, columns, indexes) and
:mod:`kds.db.migrate` (migrations), the same definitions the migrations and queries use.
All statements are read-only catalogue queries with bound parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from kds.checks.common import MIGRATE_FIX, connection
from kds.checks.runner import CheckResult, Context, failed, passed, skipped, warned
from kds.db.schema import AUDIT_TABLE, INDEXES, TABLES, Column, describe_type

if TYPE_CHECKING:
    import psycopg

CHANGED_FIX = (
    "restore the migration files as they were applied (deploy the kds release that applied them); "
    "put schema changes in a new migration"
)


def check_schema_version(context: Context) -> CheckResult:
    import psycopg

    from kds.db import migrate

    conn = connection(context)
    try:
        state = migrate.status(conn)
        recorded = migrate.applied_versions(conn)
        changed = migrate.changed_migrations(conn)
    except psycopg.errors.InsufficientPrivilege:
        return warned(
            f"cannot verify: this role may not read {migrate.MIGRATIONS_TABLE}",
            f"GRANT SELECT ON {migrate.MIGRATIONS_TABLE} TO {conn.info.user}; or run the check as the migration role",
        )
    known = {m.version for m in migrate.available_migrations()}
    unknown = [version for version in recorded if version not in known]
    problems: list[str] = []
    fixes: list[str] = []
    if changed:
        problems.append(f"migration file(s) changed after being applied: {', '.join(m.filename for m in changed)}")
        fixes.append(CHANGED_FIX)
    if state.pending:
        problems.append(f"{len(state.pending)} pending migration(s): {', '.join(state.pending)}")
        fixes.append(MIGRATE_FIX)
    if problems:
        return failed("; ".join(problems), "; ".join(fixes))
    if unknown:
        return warned(
            f"all {len(state.applied)} kds migrations applied, but the database also records migrations "
            f"this kds does not know: {', '.join(unknown)} (kds is older than the schema)",
            "deploy the kds version that matches the schema",
        )
    return passed(f"all {len(state.applied)} migrations applied (latest {state.applied[-1]})")


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
    conn = connection(context)
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
    conn = connection(context)
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
    needed: list[str] = []  # the missing columns with the type kds needs
    wrong: list[str] = []
    for table, columns in TABLES.items():
        if table not in present:
            continue
        for column in columns:
            have = found.get(table, {}).get(column.name)
            if have is None:
                missing.append(f"{table}.{column.name}")
                needed.append(f"{table}.{column.name} {column.describe()}")
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
            fixes.append(f"add the missing columns (ALTER TABLE ... ADD COLUMN ...): {', '.join(needed)}")
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
    conn = connection(context)
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
