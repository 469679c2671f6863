from datetime import UTC, datetime

import psycopg

from kds.db import migrate
from kds.db.schema import INDEXES, TABLES

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


def insert_incident(conn: psycopg.Connection, when: datetime) -> int:
    rr = conn.execute(
        "INSERT INTO resource_references (resource_uid, api_version, kind, name, namespace)"
        " VALUES (gen_random_uuid()::text, 'apps/v1', 'Deployment', 'web-' || gen_random_uuid(), 'default')"
        " RETURNING id"
    ).fetchone()[0]
    ah = conn.execute("INSERT INTO action_histories (resource_id) VALUES (%s) RETURNING id", (rr,)).fetchone()[0]
    return conn.execute(
        "INSERT INTO resource_action_traces (action_history_id, action_id, action_timestamp, alert_name,"
        " alert_severity, model_used, model_confidence, action_type)"
        " VALUES (%s, 'a1', %s, 'HighMemory', 'high', 'gpt', 0.9, 'restart_pod') RETURNING id",
        (ah, when),
    ).fetchone()[0]


def test_migrate_creates_exactly_the_spec_schema(empty_database_url: str) -> None:
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        assert migrate.migrate(conn) == ["0001_base_schema", "0002_incident_indexes", "0003_status_index"]
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
            applied=["0001_base_schema", "0002_incident_indexes", "0003_status_index"], pending=[]
        )


def test_status_of_an_unmigrated_database(empty_database_url: str) -> None:
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        assert migrate.status(conn) == migrate.MigrationStatus(
            applied=[], pending=["0001_base_schema", "0002_incident_indexes", "0003_status_index"]
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


LEGACY_SCHEMA = """
CREATE TABLE resource_references (
    id bigserial PRIMARY KEY, resource_uid varchar(36) UNIQUE NOT NULL, api_version varchar(100) NOT NULL,
    kind varchar(100) NOT NULL, name varchar(253) NOT NULL, namespace varchar(63),
    created_at timestamptz DEFAULT now(), deleted_at timestamptz, last_seen timestamptz DEFAULT now(),
    owner_team text DEFAULT 'sre', UNIQUE (namespace, kind, name));
CREATE TABLE action_histories (
    id bigserial PRIMARY KEY, resource_id bigint NOT NULL UNIQUE REFERENCES resource_references(id) ON DELETE CASCADE,
    total_actions int DEFAULT 0, last_action_at timestamptz, created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now(), max_actions int DEFAULT 10, cooldown_minutes int DEFAULT 5);
CREATE TABLE resource_action_traces (
    id bigserial, action_history_id bigint NOT NULL REFERENCES action_histories(id),
    action_id varchar(64) NOT NULL, correlation_id varchar(64), action_timestamp timestamptz NOT NULL,
    execution_start_time timestamptz, execution_end_time timestamptz, execution_duration_ms int,
    alert_name varchar(200) NOT NULL, alert_severity varchar(20) NOT NULL, alert_labels jsonb,
    alert_annotations jsonb, alert_firing_time timestamptz, alert_fingerprint varchar(64),
    cluster_name varchar(100), environment varchar(20), model_used varchar(100) NOT NULL,
    model_confidence numeric(4,3) NOT NULL, model_reasoning text, action_type varchar(50) NOT NULL,
    action_parameters jsonb, execution_status varchar(20) DEFAULT 'pending', execution_error text,
    effectiveness_score numeric(4,3), created_at timestamptz DEFAULT now(), updated_at timestamptz DEFAULT now(),
    rollback_action_id varchar(64), PRIMARY KEY (id, action_timestamp)
) PARTITION BY RANGE (action_timestamp);
CREATE TABLE resource_action_traces_y2026m11 PARTITION OF resource_action_traces
    FOR VALUES FROM ('2026-11-01 00:00:00+00') TO ('2026-12-01 00:00:00+00');
CREATE TABLE resource_action_traces_y2026m12 PARTITION OF resource_action_traces
    FOR VALUES FROM ('2026-12-01 00:00:00+00') TO ('2027-01-01 00:00:00+00');
"""


def test_migrate_an_existing_deployment_without_loss(empty_database_url: str) -> None:
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute(LEGACY_SCHEMA)
        trace_id = insert_incident(conn, datetime(2026, 11, 15, tzinfo=UTC))
        assert migrate.migrate(conn) == ["0001_base_schema", "0002_incident_indexes", "0003_status_index"]
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
    assert sorted(m for applied in results for m in applied) == [
        "0001_base_schema",
        "0002_incident_indexes",
        "0003_status_index",
    ]
