import psycopg
import pytest

from kds.db import seed
from kds.db.schema import INDEXES

SPREAD_SQL = """
SELECT count(*), count(DISTINCT rr.namespace), count(DISTINCT rat.cluster_name),
       array_agg(DISTINCT rat.alert_severity ORDER BY rat.alert_severity),
       array_agg(DISTINCT rat.environment ORDER BY rat.environment),
       count(DISTINCT rat.action_type),
       extract(day FROM max(rat.action_timestamp) - min(rat.action_timestamp))
  FROM resource_action_traces rat
  JOIN action_histories ah ON ah.id = rat.action_history_id
  JOIN resource_references rr ON rr.id = ah.resource_id
"""


def test_seed_writes_exactly_n_incidents_across_the_promised_spread(db: psycopg.Connection) -> None:
    assert seed.seed(db, 3000) == 3000
    total, namespaces, clusters, severities, environments, actions, days = db.execute(SPREAD_SQL).fetchone()
    assert total == 3000
    assert db.execute("SELECT count(*) FROM resource_action_traces").fetchone()[0] == 3000
    assert namespaces == len(seed.NAMESPACES) >= 20
    assert clusters == len(seed.CLUSTERS) >= 5
    assert severities == sorted(["info", "warning", "critical", "high", "medium", "low"])
    assert environments == ["development", "production", "staging", "test"]
    assert actions == len(seed.ACTION_TYPES) >= 8
    assert days >= 30
    unicode = db.execute(
        "SELECT count(*) FROM resource_references WHERE namespace IN ('支付服务', 'طلبات-العملاء', 'rocket-🚀')"
    ).fetchone()[0]
    assert unicode > 0
    chinese = "SELECT count(*) FROM resource_action_traces WHERE alert_name = '内存使用率过高'"
    assert db.execute(chinese).fetchone()[0] > 0
    totals = db.execute("SELECT sum(total_actions) FROM action_histories").fetchone()[0]
    assert totals == 3000


def test_seed_is_deterministic(pg_cluster, db: psycopg.Connection) -> None:
    columns = "action_id, action_timestamp, alert_name, alert_severity, cluster_name, environment, action_type"
    seed.seed(db, 500, seed_value=7)
    first = db.execute(f"SELECT {columns} FROM resource_action_traces ORDER BY action_id").fetchall()
    with pg_cluster.fresh_database() as other_url, psycopg.connect(other_url, autocommit=True) as other:
        seed.seed(other, 500, seed_value=7)
        second = other.execute(f"SELECT {columns} FROM resource_action_traces ORDER BY action_id").fetchall()
    assert first == second
    with pg_cluster.fresh_database() as other_url, psycopg.connect(other_url, autocommit=True) as other:
        seed.seed(other, 500, seed_value=8)
        third = other.execute(f"SELECT {columns} FROM resource_action_traces ORDER BY action_id").fetchall()
    assert third != first


def test_seeding_twice_appends(db: psycopg.Connection) -> None:
    seed.seed(db, 200)
    seed.seed(db, 300)
    assert db.execute("SELECT count(*), count(DISTINCT action_id) FROM resource_action_traces").fetchone() == (
        500,
        500,
    )


def test_bulk_path_rebuilds_every_index(db: psycopg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(seed, "BULK_THRESHOLD", 100)
    before = dict(db.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename LIKE 'resource_action%'"))
    progress: list[int] = []
    monkeypatch.setattr(seed, "CHUNK_ROWS", 400)
    assert seed.seed(db, 1000, progress=progress.append) == 1000
    after = dict(db.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename LIKE 'resource_action%'"))
    assert after == before
    assert {i.name for i in INDEXES if i.table == "resource_action_traces"} <= set(after)
    assert progress == [400, 800, 1000]
