"""The one list of checks of ``kds validate-infra`` (docs/validate-infra.md), in the order they run."""

from __future__ import annotations

from kds.checks import connection, environment, partitions, pooler, privileges, read_database, schema
from kds.checks.runner import Check, CheckResult, Context


def _reported_by_runner(context: Context) -> CheckResult:  # pragma: no cover - never called
    raise AssertionError("the runner reports the connection attempt itself")


CHECKS: tuple[Check, ...] = (
    Check("database-connection", "Database connection", _reported_by_runner, opens_connection=True),
    Check("database-version", "PostgreSQL version", connection.check_database_version, needs_database=True),
    Check("schema-version", "Schema migrations", schema.check_schema_version, needs_database=True),
    Check("required-tables", "Required tables", schema.check_required_tables, needs_database=True),
    Check("required-columns", "Required columns", schema.check_required_columns, needs_database=True),
    Check("required-indexes", "Required indexes", schema.check_required_indexes, needs_database=True),
    Check("partitions", "Incident partitions", partitions.check_partitions, needs_database=True),
    Check("privileges", "Role privileges", privileges.check_privileges, needs_database=True),
    # Importing every dependency of a cold container can take seconds on a busy CI runner; it cannot hang.
    Check(
        "python-dependencies",
        "Python dependencies",
        environment.check_python_dependencies,
        min_timeout=environment.IMPORT_TIMEOUT_SECONDS,
    ),
    Check("configuration", "Configuration", environment.check_configuration),
    Check("server", "Running server", environment.check_server),
    # Opens its own connection to the read database (KDS_READ_DATABASE_URL), never the primary's.
    Check("read-database", "Read database", read_database.check_read_database),
    # Opens its own probe connections: it also explains a pooler that refused the shared one.
    Check("connection-pooler", "Connection pooler", pooler.check_connection_pooler, uses_database_url=True),
)

CHECK_IDS: tuple[str, ...] = tuple(check.id for check in CHECKS)

connect = connection.open_database
"""The connector the runner uses to open the database connection that the checks share."""


def select(only: list[str], skip: list[str]) -> tuple[Check, ...]:
    """The checks to run, in catalogue order. Unknown ids raise ``ValueError`` naming them."""
    unknown = [check_id for check_id in (*only, *skip) if check_id not in CHECK_IDS]
    if unknown:
        raise ValueError(", ".join(dict.fromkeys(unknown)))
    return tuple(check for check in CHECKS if (not only or check.id in only) and check.id not in skip)
