"""kds validate-infra through PgBouncer 1.18 in transaction pooling mode (docs/scaling.md), on real components.

The topology (an embedded primary on TCP, PgBouncer from the OS packages) comes from
:mod:`tests.topology_fixtures`; every test gets its own seeded database, reached directly and through
the pooler. ``KDS_DATABASE_POOLER=pgbouncer`` is the switch under test.
"""

from __future__ import annotations

import psycopg

from tests.pooled import POOLED, validate
from tests.topology import PgBouncer, Primary
from tests.topology_fixtures import TopologyDatabase


def test_validate_infra_through_pgbouncer(topology_database: TopologyDatabase) -> None:
    db = topology_database
    code, checks = validate(db.pooled_url, **POOLED)
    assert code == 0, checks
    pooler = checks["connection-pooler"]
    assert (pooler["status"], pooler["message"]) == (
        "pass",
        "through PgBouncer 1.18.0 in transaction pooling mode; KDS_DATABASE_POOLER=pgbouncer",
    )
    unset = {"server", "read-database"}  # skipped: no --server-url, no read database
    assert {check["status"] for name, check in checks.items() if name not in unset} == {"pass"}
    assert checks["read-database"]["status"] == "skip"


def test_validate_infra_through_pgbouncer_without_the_switch(topology_database: TopologyDatabase) -> None:
    code, checks = validate(topology_database.pooled_url, "database-connection", "schema-version", "connection-pooler")
    assert code == 1
    connection = checks["database-connection"]
    assert connection["status"] == "fail"
    assert connection["message"].endswith(
        "it is a connection pooler (PgBouncer) and refuses the startup parameter `options` that kds sends when "
        "KDS_DATABASE_POOLER is none"
    )
    assert connection["fix"].startswith("set KDS_DATABASE_POOLER=pgbouncer")
    assert checks["schema-version"]["status"] == "skip"
    pooler = checks["connection-pooler"]
    assert pooler["status"] == "warn"
    assert pooler["message"].startswith("the connection goes through PgBouncer 1.18.0 in transaction pooling mode")
    assert pooler["fix"].startswith("set KDS_DATABASE_POOLER=pgbouncer")


def test_validate_infra_direct_connection_has_no_pooler(topology_database: TopologyDatabase) -> None:
    code, checks = validate(topology_database.direct_url, "database-connection", "connection-pooler")
    assert code == 0
    assert (checks["connection-pooler"]["status"], checks["connection-pooler"]["message"]) == (
        "pass",
        "direct connection, no pooler",
    )
    code, checks = validate(topology_database.direct_url, "connection-pooler", **POOLED)
    assert code == 0
    assert checks["connection-pooler"]["message"].startswith("direct connection, no pooler; KDS_DATABASE_POOLER=")


def test_validate_infra_tells_pgbouncer_apart_without_admin_rights(
    topology_database: TopologyDatabase, topology_primary: Primary, pgbouncer: PgBouncer
) -> None:
    with psycopg.connect(topology_primary.url(topology_database.name), autocommit=True) as conn:
        conn.execute("DO $$ BEGIN CREATE ROLE kds_reader LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
        conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO kds_reader")
    users = pgbouncer.work_dir / "userlist.txt"
    if '"kds_reader"' not in users.read_text():
        users.write_text(users.read_text() + '"kds_reader" ""\n')
    with psycopg.connect(pgbouncer.url("pgbouncer"), autocommit=True, prepare_threshold=None) as admin:
        admin.execute("RELOAD")
    url = topology_database.pooled_url.replace("postgres@", "kds_reader@", 1)
    code, checks = validate(url, "database-connection", "connection-pooler", **POOLED)
    assert code == 0, checks
    assert checks["connection-pooler"]["message"] == (
        "through PgBouncer (pool mode not visible to this role); KDS_DATABASE_POOLER=pgbouncer"
    )
    code, checks = validate(url, "connection-pooler")
    assert (code, checks["connection-pooler"]["status"]) == (0, "warn")
