from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from kds.db import migrate
from kds.db.schema import INDEXES, TABLES
from tests.legacy_schema import LEGACY_SCHEMA, insert_incident
from tests.migration_files import SHIPPED, edit, editable_migrations

COLUMNS_SQL = """
SELECT table_name, column_name, data_type, character_maximum_length, numeric_precision,
       numeric_scale, is_nullable
  FROM information_schema.columns
 WHERE table_schema = current_schema() AND table_name = ANY(%s)
 ORDER BY table_name, ordinal_position
"""


def catalogue(conn: psycopg.Connection) -> dict[str, list[tuple]]:
    found: dict[str, list[tuple]] = {}
    for table, column, dtype, length, precision, scale, nullable in conn.execute(COLUMNS_SQL, (list(TABLES),)):
        numeric = (precision, scale) if dtype == "numeric" else None
        found.setdefault(table, []).append((column, dtype, length, numeric, nullable == "YES"))
    return found


def expected_catalogue() -> dict[str, list[tuple]]:
    return {
        table: [(c.name, c.data_type, c.length, c.precision, c.nullable) for c in columns]
        for table, columns in TABLES.items()
    }


def test_migrate_creates_exactly_the_spec_schema(empty_database_url: str) -> None:
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        assert migrate.migrate(conn) == SHIPPED
        assert catalogue(conn) == expected_catalogue()
        kind = conn.execute("SELECT c.relkind FROM pg_class c WHERE c.relname = 'resource_action_traces'").fetchone()[0]
        assert kind == "p"
        default = conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'resource_action_traces'::regclass"
            " AND pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT'"
        ).fetchall()
        assert default == [("resource_action_traces_default",)]
        monthly = conn.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'resource_action_traces'::regclass"
        ).fetchone()[0]
        assert monthly == 8  # seven monthly partitions and the default
        names = {row[0] for row in conn.execute("SELECT indexname FROM pg_indexes")}
        assert {index.name for index in INDEXES} <= names
        pk = conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = 'resource_action_traces'::regclass AND contype = 'p'"
        ).fetchone()[0]
        assert pk == "PRIMARY KEY (id, action_timestamp)"


def test_migrate_twice_is_a_no_op(empty_database_url: str) -> None:
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        migrate.migrate(conn)
        recorded = conn.execute("SELECT version, applied_at FROM kds_schema_migrations ORDER BY 1").fetchall()
        assert migrate.migrate(conn) == []
        assert conn.execute("SELECT version, applied_at FROM kds_schema_migrations ORDER BY 1").fetchall() == recorded
        assert migrate.status(conn) == migrate.MigrationStatus(
            applied=SHIPPED,
            pending=[],
        )


def test_status_of_an_unmigrated_database(empty_database_url: str) -> None:
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        assert migrate.status(conn) == migrate.MigrationStatus(
            applied=[],
            pending=SHIPPED,
        )


def test_insert_five_years_ahead_lands_in_the_default_partition(db: psycopg.Connection) -> None:
    future = datetime(datetime.now(UTC).year + 5, 6, 1, tzinfo=UTC)
    trace_id = insert_incident(db, future)
    where = db.execute(
        "SELECT tableoid::regclass::text FROM resource_action_traces WHERE id = %s", (trace_id,)
    ).fetchone()[0]
    assert where == "resource_action_traces_default"
    now_id = insert_incident(db, datetime.now(UTC))
    where_now = db.execute(
        "SELECT tableoid::regclass::text FROM resource_action_traces WHERE id = %s", (now_id,)
    ).fetchone()[0]
    assert where_now == "resource_action_traces_" + datetime.now(UTC).strftime("%Y_%m")


def test_migrate_an_existing_deployment_without_loss(empty_database_url: str) -> None:
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute(LEGACY_SCHEMA)
        trace_id = insert_incident(conn, datetime(2026, 11, 15, tzinfo=UTC))
        assert migrate.migrate(conn) == SHIPPED
        row = conn.execute(
            "SELECT rat.alert_name, rat.rollback_action_id, rr.owner_team, ah.max_actions"
            " FROM resource_action_traces rat JOIN action_histories ah ON ah.id = rat.action_history_id"
            " JOIN resource_references rr ON rr.id = ah.resource_id WHERE rat.id = %s",
            (trace_id,),
        ).fetchone()
        assert row == ("HighMemory", None, "sre", 10)
        partitions = sorted(
            r[0]
            for r in conn.execute(
                "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'resource_action_traces'::regclass"
            )
        )
        assert partitions == ["resource_action_traces_y2026m11", "resource_action_traces_y2026m12"]
        assert conn.execute("SELECT to_regclass('notification_audit') IS NOT NULL").fetchone()[0] is True
        names = {row[0] for row in conn.execute("SELECT indexname FROM pg_indexes")}
        assert {index.name for index in INDEXES} <= names
        assert migrate.migrate(conn) == []


def test_every_declared_index_is_created_by_a_migration() -> None:
    text = "\n".join(m.sql for m in migrate.available_migrations())
    for index in INDEXES:
        assert f"CREATE INDEX IF NOT EXISTS {index.name}\n    ON {index.table} " in text


def test_concurrent_migrations_apply_once(empty_database_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def run() -> list[str]:
        with psycopg.connect(empty_database_url) as conn:
            return migrate.migrate(conn)

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: run(), range(3)))
    # Each migration is applied by exactly one of the runners (which one may differ per migration).
    assert sorted(m for applied in results for m in applied) == SHIPPED


CHANGED_DETAIL = (
    "{names} {verb} changed after being applied to this database; restore the file as it was applied "
    "and put schema changes in a new migration"
)


def test_migrate_refuses_an_applied_migration_whose_file_changed(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from kds.cli.app import app

    folder = editable_migrations(tmp_path / "migrations", monkeypatch)
    edit(folder / "0001_base_schema.sql")
    (folder / "0099_extra.sql").write_text("CREATE TABLE kds_not_applied (id int);\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["db", "migrate", "--database-url", database_url])
    detail = CHANGED_DETAIL.format(names="0001_base_schema.sql", verb="was")
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", f"migration-changed: {detail}\n")
    with psycopg.connect(database_url) as conn:  # nothing applied, not even the new migration
        assert conn.execute("SELECT to_regclass('kds_not_applied')").fetchone() == (None,)
        assert migrate.applied_versions(conn) == [name[:4] for name in SHIPPED]
        assert [m.filename for m in migrate.changed_migrations(conn)] == ["0001_base_schema.sql"]


def test_every_changed_migration_is_named(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = editable_migrations(tmp_path / "migrations", monkeypatch)
    edit(folder / "0001_base_schema.sql")
    edit(folder / "0002_incident_indexes.sql")
    with psycopg.connect(database_url) as conn, pytest.raises(migrate.MigrationChanged) as caught:
        migrate.migrate(conn)
    assert caught.value.detail == CHANGED_DETAIL.format(
        names="0001_base_schema.sql, 0002_incident_indexes.sql", verb="were"
    )


def test_unchanged_copy_of_the_files_migrates_as_before(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = editable_migrations(tmp_path / "migrations", monkeypatch)
    (folder / "0099_extra.sql").write_text("CREATE TABLE kds_extra (id int);\n", encoding="utf-8")
    with psycopg.connect(database_url) as conn:
        assert migrate.changed_migrations(conn) == []
        assert migrate.migrate(conn) == ["0099_extra"]
        assert migrate.recorded_checksums(conn)["0099"] == migrate.available_migrations()[-1].checksum
