"""``kds validate-infra`` against real databases built to fail each check."""

from __future__ import annotations

import socket
import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path
from typing import ClassVar

import orjson
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from typer.testing import CliRunner, Result

from kds.checks import catalogue, present
from kds.checks.connection import check_database_connection
from kds.checks.environment import check_requirements
from kds.checks.runner import Check, Context, Status, ensure_connection, passed, run_checks
from kds.cli.app import app
from kds.db import migrate
from kds.db.schema import INDEXES
from tests.legacy_schema import LEGACY_SCHEMA, insert_incident
from tests.migration_files import SHIPPED, edit, editable_migrations
from tests.pg import PgCluster

runner = CliRunner()
UNREACHABLE = "postgresql://kds@127.0.0.1:1/kds"
DB_CHECKS = [
    "database-version",
    "schema-version",
    "required-tables",
    "required-columns",
    "required-indexes",
    "partitions",
    "privileges",
]


def invoke(*args: str) -> Result:
    return runner.invoke(app, ["validate-infra", *args])


def validate(url: str, *args: str) -> tuple[Result, dict[str, dict]]:
    """Run the command with JSON output; return the result and the checks by id."""
    result = invoke("--database-url", url, "-o", "json", *args)
    document = orjson.loads(result.stdout)
    return result, {check["id"]: check for check in document["checks"]}


def statuses(checks: dict[str, dict]) -> dict[str, str]:
    return {check_id: check["status"] for check_id, check in checks.items()}


def all_pass_but(**changed: str) -> dict[str, str]:
    expected = {check_id: "pass" for check_id in catalogue.CHECK_IDS}
    expected["server"] = "skip"
    expected["read-database"] = "skip"  # no read database configured
    expected.update({key.replace("_", "-"): value for key, value in changed.items()})
    return expected


def month_suffix(moment: datetime) -> str:
    return moment.strftime("%Y_%m")


def next_month(moment: datetime, months: int = 1) -> datetime:
    year, month = divmod(moment.month - 1 + months, 12)
    return datetime(moment.year + year, month + 1, 1, tzinfo=UTC)


# ------------------------------------------------------------------------------------------------
# the whole command


def test_migrated_database_passes_every_check(database_url: str) -> None:
    result, checks = validate(database_url)
    assert result.exit_code == 0, result.stdout
    document = orjson.loads(result.stdout)
    assert list(document) == ["checks", "summary"]
    assert document["summary"] == {"pass": 11, "warn": 0, "fail": 0, "skip": 2}
    assert [check["id"] for check in document["checks"]] == list(catalogue.CHECK_IDS)
    for check in document["checks"]:
        assert set(check) == {"id", "status", "message", "fix", "duration_ms"}
        assert isinstance(check["duration_ms"], float)
    assert statuses(checks) == all_pass_but()
    assert checks["database-connection"]["message"].startswith("connected to ")
    assert "(PostgreSQL " in checks["database-connection"]["message"]
    assert checks["schema-version"]["message"] == f"all {len(SHIPPED)} migrations applied (latest {SHIPPED[-1]})"
    assert checks["required-tables"]["message"] == (
        "all 4 tables present: resource_references, action_histories, resource_action_traces, notification_audit"
    )
    assert checks["required-columns"]["message"] == "all 54 columns present with compatible types"
    assert checks["required-indexes"]["message"] == f"all {len(INDEXES)} indexes present and valid"
    now = datetime.now(UTC)
    assert checks["partitions"]["message"].startswith("dedicated partitions for now (")
    assert f"resource_action_traces_{month_suffix(now)}; next month (" in checks["partitions"]["message"]
    assert checks["partitions"]["message"].endswith(
        f"resource_action_traces_{month_suffix(next_month(now))}; DEFAULT partition resource_action_traces_default"
    )
    assert checks["server"] == {
        "id": "server",
        "status": "skip",
        "message": "skipped: no --server-url given",
        "fix": "",
        "duration_ms": checks["server"]["duration_ms"],
    }
    assert result.stderr == ""


def test_unreachable_database_fails_the_connection_and_skips_dependent_checks() -> None:
    result, checks = validate(UNREACHABLE, "--timeout", "3")
    assert result.exit_code == 1
    assert statuses(checks) == all_pass_but(
        database_connection="fail",
        server="skip",
        connection_pooler="skip",
        **{name.replace("-", "_"): "skip" for name in DB_CHECKS},
    )
    assert checks["database-connection"]["message"] == "cannot connect to kds@127.0.0.1:1/kds: connection refused"
    assert checks["connection-pooler"]["message"] == "skipped: no database connection (see database-connection)"
    assert "check that PostgreSQL is running" in checks["database-connection"]["fix"]
    for check_id in DB_CHECKS:
        assert checks[check_id]["message"] == "skipped: no database connection (see database-connection)"
    assert orjson.loads(result.stdout)["summary"] == {"pass": 2, "warn": 0, "fail": 1, "skip": 10}


def test_a_database_that_never_answers_is_cut_off_by_the_timeout() -> None:
    with socket.socket() as silent:  # accepts TCP connections (backlog) but never speaks
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        result, checks = validate(
            f"postgresql://kds@127.0.0.1:{port}/kds", "--timeout", "1", "--only", "database-connection"
        )
    assert result.exit_code == 1
    assert list(checks) == ["database-connection"]
    assert checks["database-connection"]["status"] == "fail"
    assert checks["database-connection"]["message"] in (
        "no connection within the 1 s timeout",
        f"cannot connect to kds@127.0.0.1:{port}/kds: no answer within the connect timeout",
    )


def test_check_database_connection_on_its_own(database_url: str) -> None:
    assert check_database_connection(database_url).status is Status.PASS
    refused = check_database_connection(UNREACHABLE, timeout=2)
    assert (refused.status, refused.message) == (
        Status.FAIL,
        "cannot connect to kds@127.0.0.1:1/kds: connection refused",
    )


# ------------------------------------------------------------------------------------------------
# schema failures


def test_dropped_table(database_url: str, db: psycopg.Connection) -> None:
    db.execute("DROP TABLE notification_audit")
    result, checks = validate(database_url)
    assert result.exit_code == 1
    assert statuses(checks) == all_pass_but(required_tables="fail")
    assert checks["required-tables"]["message"] == "missing table(s): notification_audit (schema public)"
    assert checks["required-tables"]["fix"].startswith("run `kds db migrate` against this database")
    note = "; not checked (table missing, see required-tables): notification_audit"
    assert checks["required-columns"]["message"] == "all 41 columns present with compatible types" + note
    assert checks["privileges"]["message"].endswith(note)


def test_dropped_column(database_url: str, db: psycopg.Connection) -> None:
    db.execute("ALTER TABLE notification_audit DROP COLUMN recipient")
    result, checks = validate(database_url)
    assert result.exit_code == 1
    assert statuses(checks) == all_pass_but(required_columns="fail")
    assert checks["required-columns"]["message"] == "missing column(s): notification_audit.recipient"
    assert checks["required-columns"]["fix"] == (
        "add the missing columns (ALTER TABLE ... ADD COLUMN ...): notification_audit.recipient character varying(255)"
    )


def test_shorter_varchar_fails_longer_varchar_and_extra_columns_pass(database_url: str, db: psycopg.Connection) -> None:
    db.execute("ALTER TABLE notification_audit ALTER COLUMN channel TYPE varchar(100)")
    db.execute("ALTER TABLE notification_audit ADD COLUMN tenant text NOT NULL DEFAULT 'sre'")
    db.execute("ALTER TABLE resource_references ADD COLUMN owner_team text NOT NULL")
    result, checks = validate(database_url, "--only", "required-columns")
    assert (result.exit_code, statuses(checks)) == (0, {"required-columns": "pass"})

    db.execute("ALTER TABLE resource_action_traces ALTER COLUMN alert_name TYPE varchar(100)")
    db.execute("ALTER TABLE notification_audit ALTER COLUMN escalation_level TYPE smallint")
    result, checks = validate(database_url, "--only", "required-columns")
    assert result.exit_code == 1
    assert checks["required-columns"]["message"] == (
        "incompatible type(s): resource_action_traces.alert_name is character varying(100), needs "
        "character varying(200); notification_audit.escalation_level is smallint, needs integer"
    )
    assert checks["required-columns"]["fix"].startswith("widen the columns to at least the required type")


def test_extra_not_null_column_without_default_in_the_audit_table(database_url: str, db: psycopg.Connection) -> None:
    db.execute("ALTER TABLE notification_audit ADD COLUMN tenant text NOT NULL")
    result, checks = validate(database_url, "--only", "required-columns")
    assert result.exit_code == 1
    assert checks["required-columns"]["message"] == (
        "NOT NULL column(s) without a default that kds does not write: notification_audit.tenant"
    )


def test_missing_index_warns_and_strict_fails(database_url: str, db: psycopg.Connection) -> None:
    db.execute("DROP INDEX kds_rat_severity_timestamp_idx")
    result, checks = validate(database_url)
    assert result.exit_code == 0
    assert statuses(checks) == all_pass_but(required_indexes="warn")
    assert checks["required-indexes"]["message"] == (
        "missing index(es): kds_rat_severity_timestamp_idx (severity filter) — queries work but are slow"
    )
    assert checks["required-indexes"]["fix"].startswith("run `kds db migrate`")
    strict, _ = validate(database_url, "--strict")
    assert strict.exit_code == 1


def test_pending_migration(database_url: str, db: psycopg.Connection) -> None:
    db.execute("DELETE FROM kds_schema_migrations WHERE version = '0002'")
    result, checks = validate(database_url)
    assert result.exit_code == 1
    assert statuses(checks) == all_pass_but(schema_version="fail")
    assert checks["schema-version"]["message"] == "1 pending migration(s): 0002_incident_indexes"
    assert checks["schema-version"]["fix"] == (
        "run `kds db migrate` against this database (for example from the Kubernetes migration Job)"
    )


CHANGED_FIX = (
    "restore the migration files as they were applied (deploy the kds release that applied them); "
    "put schema changes in a new migration"
)


def test_changed_migration_fails_with_a_fix(
    database_url: str, db: psycopg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = editable_migrations(tmp_path / "migrations", monkeypatch)
    edit(folder / "0002_incident_indexes.sql")
    result, checks = validate(database_url)
    assert result.exit_code == 1
    assert statuses(checks) == all_pass_but(schema_version="fail")
    assert checks["schema-version"]["message"] == (
        "migration file(s) changed after being applied: 0002_incident_indexes.sql"
    )
    assert checks["schema-version"]["fix"] == CHANGED_FIX
    # A changed file and a pending migration: both named, both fixes given.
    edit(folder / "0001_base_schema.sql")
    db.execute("DELETE FROM kds_schema_migrations WHERE version = '0002'")
    _, checks = validate(database_url, "--only", "schema-version")
    assert (checks["schema-version"]["message"], checks["schema-version"]["fix"]) == (
        "migration file(s) changed after being applied: 0001_base_schema.sql; "
        "1 pending migration(s): 0002_incident_indexes",
        f"{CHANGED_FIX}; run `kds db migrate` against this database (for example from the Kubernetes migration Job)",
    )


# ------------------------------------------------------------------------------------------------
# partitions


def test_no_default_and_no_partition_for_now_fails(database_url: str, db: psycopg.Connection) -> None:
    now = datetime.now(UTC)
    db.execute("DROP TABLE resource_action_traces_default")
    db.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(f"resource_action_traces_{month_suffix(now)}")))
    result, checks = validate(database_url)
    assert result.exit_code == 1
    assert statuses(checks) == all_pass_but(partitions="fail")
    message = checks["partitions"]["message"]
    assert message.startswith("no partition of resource_action_traces takes rows for now (")
    assert message.endswith(" UTC), and there is no DEFAULT partition: inserts fail")
    assert f"CREATE TABLE resource_action_traces_{month_suffix(now)} PARTITION OF" in checks["partitions"]["fix"]
    assert "PARTITION OF resource_action_traces DEFAULT" in checks["partitions"]["fix"]
    with pytest.raises(psycopg.errors.CheckViolation):  # the check tells the truth: the insert fails
        insert_incident(db, now)


@pytest.mark.parametrize(
    ("layout", "status", "message"),
    [
        ("", "pass", "resource_action_traces is not partitioned: every row has a place"),
        (
            " PARTITION BY LIST (environment)",
            "warn",
            "resource_action_traces is not range-partitioned on action_timestamp alone; cannot verify where rows go",
        ),
    ],
)
def test_a_table_partitioned_otherwise_is_reported(
    empty_database_url: str, layout: str, status: str, message: str
) -> None:
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE resource_action_traces (environment text, action_timestamp timestamptz){layout}")
    _, checks = validate(empty_database_url, "--only", "partitions")
    assert (checks["partitions"]["status"], checks["partitions"]["message"]) == (status, message)


def test_a_gap_inside_next_month_is_found(database_url: str, db: psycopg.Connection) -> None:
    start = next_month(datetime.now(UTC))
    middle = start.replace(day=15)
    name = f"resource_action_traces_{month_suffix(start)}"
    db.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
    for low, high, part in ((start, middle, "a"), (middle + timedelta(days=1), next_month(start), "b")):
        db.execute(
            sql.SQL("CREATE TABLE {} PARTITION OF resource_action_traces FOR VALUES FROM ({}) TO ({})").format(
                sql.Identifier(f"{name}_{part}"), sql.Literal(low), sql.Literal(high)
            )
        )
    _, checks = validate(database_url, "--only", "partitions")
    assert (checks["partitions"]["status"], checks["partitions"]["message"]) == (
        "warn",
        f"only the DEFAULT partition resource_action_traces_default takes rows for next month ({start:%Y-%m})",
    )


def test_only_the_default_partition_warns(database_url: str, db: psycopg.Connection) -> None:
    now = datetime.now(UTC)
    for month in (now, next_month(now)):
        db.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(f"resource_action_traces_{month_suffix(month)}")))
    result, checks = validate(database_url)
    assert result.exit_code == 0
    assert statuses(checks) == all_pass_but(partitions="warn")
    message = checks["partitions"]["message"]
    assert message.startswith("only the DEFAULT partition resource_action_traces_default takes rows for now (")
    assert message.endswith(f" UTC) and next month ({next_month(now):%Y-%m})")
    assert (
        f"CREATE TABLE resource_action_traces_{month_suffix(next_month(now))} PARTITION OF"
        in (checks["partitions"]["fix"])
    )
    assert checks["partitions"]["fix"].startswith("run `kds db partitions ensure`")
    trace_id = insert_incident(db, now)
    where = db.execute("SELECT tableoid::regclass::text FROM resource_action_traces WHERE id = %s", (trace_id,))
    assert where.fetchone()[0] == "resource_action_traces_default"
    assert validate(database_url, "--strict")[0].exit_code == 1


# ------------------------------------------------------------------------------------------------
# privileges


@pytest.fixture
def reader_url(database_url: str, db: psycopg.Connection, pg_cluster: PgCluster) -> Iterator[tuple[str, str]]:
    """A login role that may read every table but not insert into notification_audit."""
    role = f"kds_reader_{uuid.uuid4().hex[:8]}"
    with pg_cluster.admin() as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'reader'").format(sql.Identifier(role)))
    try:
        db.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(sql.Identifier(role)))
        yield make_conninfo(database_url, user=role, password="reader"), role
    finally:
        db.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        with pg_cluster.admin() as admin:
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_role_without_insert_on_the_audit_table(reader_url: tuple[str, str]) -> None:
    url, role = reader_url
    result, checks = validate(url)
    assert result.exit_code == 1
    assert statuses(checks) == all_pass_but(privileges="fail")
    assert checks["privileges"]["message"] == (
        f"role {role} lacks INSERT on notification_audit, USAGE on sequence public.notification_audit_id_seq "
        "(needed to insert into notification_audit)"
    )
    assert checks["privileges"]["fix"] == (
        f"GRANT INSERT ON notification_audit TO {role}; "
        f"GRANT USAGE ON SEQUENCE public.notification_audit_id_seq TO {role}"
    )


def test_role_that_may_not_prepare_behind_a_pooler(
    reader_url: tuple[str, str], db: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, role = reader_url
    db.execute("REVOKE EXECUTE ON FUNCTION kds_prepare(text, text) FROM PUBLIC")
    assert validate(url, "--only", "privileges")[1]["privileges"]["message"].startswith(f"role {role} lacks INSERT")
    monkeypatch.setenv("KDS_DATABASE_POOLER", "pgbouncer")
    result, checks = validate(url, "--only", "privileges")
    assert result.exit_code == 1
    assert checks["privileges"]["message"] == (
        f"role {role} lacks INSERT on notification_audit, USAGE on sequence public.notification_audit_id_seq "
        "(needed to insert into notification_audit), "
        "EXECUTE on function kds_prepare(text, text) (needed behind a pooler)"
    )
    assert checks["privileges"]["fix"].endswith(f"; GRANT EXECUTE ON FUNCTION kds_prepare(text, text) TO {role}")


# ------------------------------------------------------------------------------------------------
# configuration


def test_invalid_kds_value_fails_configuration(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KDS_DRAIN_TIMEOUT", "forever")
    result, checks = validate(database_url)
    assert result.exit_code == 1
    assert statuses(checks) == all_pass_but(configuration="fail")
    assert checks["configuration"]["message"] == (
        "a setting does not parse: KDS_DRAIN_TIMEOUT=forever: invalid duration 'forever' "
        "(use seconds such as 5 or 2.5, or 500ms, 5s, 1m)"
    )
    assert checks["configuration"]["fix"] == (
        "correct that value (durations: 5, 2.5, 500ms, 5s, 1m); every KDS_* variable is listed in docs/configuration.md"
    )


def test_invalid_database_url_setting_still_reaches_the_database(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KDS_DATABASE_URL", database_url)
    monkeypatch.setenv("KDS_PORT", "99999")
    result = invoke("-o", "json")
    checks = {check["id"]: check for check in orjson.loads(result.stdout)["checks"]}
    assert statuses(checks) == all_pass_but(configuration="fail")


def test_grace_period_too_small(monkeypatch: pytest.MonkeyPatch) -> None:
    result = invoke("--only", "configuration", "--grace-period", "30", "-o", "json")
    assert result.exit_code == 1
    check = orjson.loads(result.stdout)["checks"][0]
    assert check["status"] == "fail"
    assert check["message"] == (
        "shutdown delay 5 s + drain timeout 30 s + 5 s margin = 40 s exceeds the termination grace period of "
        "30 s: Kubernetes would kill pods mid-drain"
    )
    assert check["fix"].startswith("set terminationGracePeriodSeconds (and --grace-period / ")
    monkeypatch.setenv("KDS_TERMINATION_GRACE_PERIOD", "1m")
    monkeypatch.setenv("KDS_DRAIN_TIMEOUT", "50s")
    fits = invoke("--only", "configuration", "-o", "json")
    assert fits.exit_code == 0
    assert orjson.loads(fits.stdout)["checks"][0]["message"] == (
        "all KDS_* settings parse; shutdown delay 5 s + drain timeout 50 s + 5 s margin = 60 s fits the grace "
        "period of 60 s"
    )
    monkeypatch.setenv("KDS_SHUTDOWN_DELAY", "6")
    assert invoke("--only", "configuration").exit_code == 1


# ------------------------------------------------------------------------------------------------
# an existing deployment, never migrated by kds


def legacy_database(conn: psycopg.Connection) -> None:
    """LEGACY_SCHEMA (extra columns, monthly partitions, no DEFAULT), partitioned around today."""
    conn.execute(LEGACY_SCHEMA.split("CREATE TABLE resource_action_traces_y")[0])
    start = next_month(datetime.now(UTC), -1)
    for offset in range(3):
        low, high = next_month(start, offset), next_month(start, offset + 1)
        conn.execute(
            sql.SQL("CREATE TABLE {} PARTITION OF resource_action_traces FOR VALUES FROM ({}) TO ({})").format(
                sql.Identifier(f"resource_action_traces_y{low:%Y}m{low:%m}"), sql.Literal(low), sql.Literal(high)
            )
        )


def test_existing_deployment_is_judged_correctly(empty_database_url: str) -> None:
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        legacy_database(conn)
        result, checks = validate(empty_database_url)
        assert result.exit_code == 1
        assert statuses(checks) == all_pass_but(schema_version="fail", required_tables="fail", required_indexes="warn")
        assert checks["schema-version"]["message"] == f"{len(SHIPPED)} pending migration(s): {', '.join(SHIPPED)}"
        assert checks["required-tables"]["message"] == "missing table(s): notification_audit (schema public)"
        assert checks["required-columns"]["message"] == (
            "all 41 columns present with compatible types; not checked (table missing, see required-tables): "
            "notification_audit"
        )
        assert checks["required-indexes"]["message"].startswith(
            "missing index(es): kds_rat_timestamp_idx (newest-first listing and keyset paging), "
        )
        now = datetime.now(UTC)
        message = checks["partitions"]["message"]
        assert message.startswith("dedicated partitions for now (")
        assert f"resource_action_traces_y{now:%Y}m{now:%m}; next month" in message
        assert message.endswith("; no DEFAULT partition")

        assert migrate.migrate(conn) == SHIPPED
        result, checks = validate(empty_database_url)
        assert result.exit_code == 0
        assert statuses(checks) == all_pass_but()


# ------------------------------------------------------------------------------------------------
# options and output formats


def test_junit_report(database_url: str, db: psycopg.Connection, tmp_path: Path) -> None:
    db.execute("ALTER TABLE notification_audit DROP COLUMN recipient")
    db.execute("DROP INDEX kds_rr_namespace_id_idx")
    report = tmp_path / "report.xml"
    result = invoke("--database-url", database_url, "--junit", str(report))
    assert result.exit_code == 1
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert [case.get("name") for case in cases] == list(catalogue.CHECK_IDS)
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("13", "1", "2")
    failed = [case.get("name") for case in cases if case.find("failure") is not None]
    skipped = [case.get("name") for case in cases if case.find("skipped") is not None]
    assert (failed, skipped) == (["required-columns"], ["server", "read-database"])
    failure = suite.find("testcase[@name='required-columns']/failure")
    assert failure is not None
    assert failure.get("message") == "missing column(s): notification_audit.recipient"
    assert failure.text is not None and "\nfix: add the missing columns" in failure.text

    strict = invoke("--database-url", database_url, "--junit", str(report), "--strict")
    assert strict.exit_code == 1
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "2"
    warn = suite.find("testcase[@name='required-indexes']/failure")
    assert warn is not None and warn.get("type") == "warn"


def test_only_and_skip_select_checks(database_url: str) -> None:
    result, checks = validate(database_url, "--only", "partitions", "--only", "database-connection")
    assert (result.exit_code, list(checks)) == (0, ["database-connection", "partitions"])
    skipped = {"server", "python-dependencies", "database-connection", "read-database"}
    result, checks = validate(
        database_url, "--skip", "server,python-dependencies,read-database", "--skip", "database-connection"
    )
    assert result.exit_code == 0
    assert list(checks) == [c for c in catalogue.CHECK_IDS if c not in skipped]
    assert set(statuses(checks).values()) == {"pass"}


def test_only_checks_without_a_database_never_touch_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KDS_EMBEDDED_DIR", "/nonexistent/kds-should-not-start")
    result = invoke("--only", "configuration", "--only", "python-dependencies", "-o", "json")
    assert result.exit_code == 0
    assert orjson.loads(result.stdout)["summary"] == {"pass": 2, "warn": 0, "fail": 0, "skip": 0}
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--only", "nope"], "invalid-parameter: unknown check id: nope (known: database-connection, "),
        (["--skip", "partitions,typo"], "invalid-parameter: unknown check id: typo (known: "),
        (["--timeout", "0"], "invalid-parameter: --timeout=0: must be greater than 0"),
        (["--timeout", "soon"], "invalid-parameter: --timeout=soon: invalid duration 'soon'"),
        (["--grace-period", "long"], "invalid-parameter: --grace-period=long: invalid duration 'long'"),
        (["--only", "server", "--skip", "server"], "invalid-parameter: --only/--skip leave no check to run"),
    ],
)
def test_invalid_invocation_exits_2(args: list[str], message: str) -> None:
    result = invoke(*args, "--database-url", UNREACHABLE)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(message)


def test_unknown_output_format_exits_2() -> None:
    result = invoke("-o", "yaml", "--database-url", UNREACHABLE)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "yaml" in result.stderr


def test_unwritable_junit_path_exits_2(tmp_path: Path) -> None:
    result = invoke("--only", "configuration", "--junit", str(tmp_path / "missing" / "report.xml"))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"invalid-parameter: --junit={tmp_path / 'missing' / 'report.xml'}: cannot write")


def test_plain_text_output_when_not_a_terminal(database_url: str, db: psycopg.Connection) -> None:
    db.execute("ALTER TABLE notification_audit DROP COLUMN recipient")
    result = invoke("--database-url", database_url, "--only", "required-columns", "--only", "server")
    assert result.exit_code == 1
    assert result.stdout == (
        "FAIL  required-columns  missing column(s): notification_audit.recipient\n"
        "                        fix: add the missing columns (ALTER TABLE ... ADD COLUMN ...): "
        "notification_audit.recipient character varying(255)\n"
        "SKIP  server            skipped: no --server-url given\n"
        "FAILED: 2 checks, 0 passed, 0 warned, 1 failed, 1 skipped\n"
    )
    assert "\x1b[" not in result.stdout


def test_rich_table_on_a_terminal() -> None:
    from rich.console import Console

    outcomes = [
        present.Outcome("database-connection", "Database connection", Status.PASS, "connected", "", 1.0),
        present.Outcome("required-indexes", "Required indexes", Status.WARN, "missing index x", "run migrate", 2.0),
        present.Outcome("privileges", "Role privileges", Status.FAIL, "role r lacks INSERT", "GRANT INSERT", 3.0),
        present.Outcome("server", "Running server", Status.SKIP, "skipped: no --server-url given", "", 0.1),
    ]
    buffer = StringIO()
    console = Console(file=buffer, force_terminal=True, width=100, color_system=None)
    present.render_table(outcomes, console, strict=True)
    text = buffer.getvalue()
    for expected in (
        "✔",
        "⚠",
        "✖",
        present.SYMBOLS[Status.SKIP],
        "fix: run migrate",
        "fix: GRANT INSERT",
        "role r lacks INSERT",
    ):
        assert expected in text
    assert text.rstrip().endswith("FAILED: 4 checks, 1 passed, 1 warned, 1 failed, 1 skipped (strict: warnings fail)")


# ------------------------------------------------------------------------------------------------
# server check against a stub HTTP server


class _Stub(BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, tuple[int, bytes]]] = {}

    def do_GET(self) -> None:
        status, body = self.routes.get(self.path, (404, b"{}"))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stub_server() -> Iterator[tuple[str, dict[str, tuple[int, bytes]]]]:
    routes: ClassVar[dict[str, tuple[int, bytes]]] = {}
    handler = type("Handler", (_Stub,), {"routes": routes})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", routes
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def server_check(url: str) -> tuple[int, dict]:
    result = invoke("--only", "server", "--server-url", url, "-o", "json", "--timeout", "3")
    return result.exit_code, orjson.loads(result.stdout)["checks"][0]


def test_server_ready_with_metrics(stub_server: tuple[str, dict]) -> None:
    url, routes = stub_server
    routes["/health/ready"] = (200, b'{"status":"ready"}')
    routes["/metrics"] = (200, b'# TYPE http_requests_total counter\nhttp_requests_total{method="GET"} 3\n')
    code, check = server_check(url + "/")
    assert (code, check["status"], check["message"]) == (0, "pass", f"{url} is ready and exposes http_requests_total")


def test_server_not_ready(stub_server: tuple[str, dict]) -> None:
    url, routes = stub_server
    routes["/health/ready"] = (503, b'{"status":"shutting_down","reason":"graceful_shutdown_in_progress"}')
    code, check = server_check(url)
    assert (code, check["status"]) == (1, "fail")
    assert check["message"] == (
        f'{url}/health/ready answered 503 {{"status":"shutting_down","reason":"graceful_shutdown_in_progress"}}'
    )


def test_server_without_kds_metrics(stub_server: tuple[str, dict]) -> None:
    url, routes = stub_server
    routes["/health/ready"] = (200, b'{"status":"ready"}')
    routes["/metrics"] = (200, b"process_cpu_seconds_total 1\n")
    code, check = server_check(url)
    assert (code, check["status"], check["message"]) == (
        1,
        "fail",
        f"{url}/metrics does not expose http_requests_total",
    )


def test_server_unreachable() -> None:
    code, check = server_check("http://127.0.0.1:1")
    assert (code, check["status"]) == (1, "fail")
    assert check["message"].startswith("http://127.0.0.1:1/health/ready is unreachable: ")


# ------------------------------------------------------------------------------------------------
# runner and dependency checks as units


def test_a_hung_check_is_cut_off_and_later_database_checks_skip(database_url: str) -> None:
    never = threading.Event()
    context = Context(timeout=30, database_url=database_url)
    ensure_connection(context, catalogue.connect)  # connect with a generous limit on a busy machine
    assert context.connection is not None
    context.timeout = 0.3
    hung = Check("hung", "Hung", lambda _: (never.wait(), passed("unreachable"))[1], needs_database=True)
    after = Check("after", "After", lambda _: passed("ran"), needs_database=True)
    try:
        outcomes = run_checks([catalogue.CHECKS[0], hung, after], context, connect=catalogue.connect)
    finally:
        never.set()
        context.close()
    assert [(o.id, o.status, o.message) for o in outcomes] == [
        ("database-connection", Status.PASS, context.connection_result.message),
        ("hung", Status.FAIL, "did not finish within the 0.3 s timeout"),
        ("after", Status.SKIP, "skipped: hung timed out while using the connection"),
    ]


def test_dependency_check_reads_requirement_lines() -> None:
    from importlib.metadata import version

    result = check_requirements(
        ["typer>=0.1", "kds-probe-not-installed>=1", f"rich>{version('rich')}", 'sanic>=1; extra == "server"']
    )
    assert result.status is Status.FAIL
    assert result.message == (
        f"kds-probe-not-installed is not installed (needs >=1); rich {version('rich')} does not satisfy "
        f">{version('rich')}"
    )
    assert result.fix.startswith(f"pip install 'kds-probe-not-installed>=1' 'rich>{version('rich')}'")
    extras = check_requirements(["psycopg[binary]>=3.2"])
    assert (extras.status, extras.message) == (Status.PASS, "2 runtime dependencies import at supported versions")
