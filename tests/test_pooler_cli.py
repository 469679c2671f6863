"""kds CLI through PgBouncer 1.18 in transaction pooling mode (docs/scaling.md), on real components.

The topology (an embedded primary on TCP, PgBouncer from the OS packages) comes from
:mod:`tests.topology_fixtures`; every test gets its own seeded database, reached directly and through
the pooler. ``KDS_DATABASE_POOLER=pgbouncer`` is the switch under test.
"""

from __future__ import annotations

import time

import orjson
import psycopg
import pytest

from tests.pooled import POOLED, empty_database, kds, namespace_totals, newest_ids
from tests.topology import PgBouncer, Primary
from tests.topology_fixtures import SEEDED_INCIDENTS, TopologyDatabase


def test_cli_through_pgbouncer_prints_exactly_what_a_direct_connection_prints(topology_database: TopologyDatabase):
    db = topology_database
    namespace = sorted(namespace_totals(db.direct_url))[0]
    incident_id = newest_ids(db.direct_url, 1)[0]
    commands = [
        ["incidents", "list", "-o", "json"],
        ["incidents", "list", "-o", "json", "-n", namespace, "-l", "7", "--offset", "3"],
        ["incidents", "list", "-o", "csv", "-s", "high"],
        ["incidents", "list", "--all", "-o", "ndjson"],
        ["incidents", "get", str(incident_id), "-o", "json"],
        ["incidents", "get", str(incident_id), "-o", "yaml"],
        ["db", "status", "-o", "json"],
    ]
    for command in commands:
        direct = kds(command, db.direct_url)
        assert direct[0] == 0, (command, direct[2])
        assert kds(command, db.pooled_url, **POOLED) == direct, command
        assert kds(command, db.direct_url, **POOLED) == direct, command  # the switch on a direct connection
    every = [
        orjson.loads(line)
        for line in kds(["incidents", "list", "--all", "-o", "ndjson"], db.pooled_url, **POOLED)[1].splitlines()
    ]
    assert len(every) == SEEDED_INCIDENTS


def test_cli_through_pgbouncer_without_the_switch_names_the_pooler(topology_database: TopologyDatabase) -> None:
    code, out, err = kds(["incidents", "list"], topology_database.pooled_url)
    where = topology_database.pooled_url.removeprefix("postgresql://")
    assert (code, out) == (1, "")
    assert err == (
        f"service-unavailable: cannot connect to {where}: it is a connection pooler (PgBouncer) and refuses the "
        "startup parameter `options` that kds sends when KDS_DATABASE_POOLER is none\n"
    )


def test_cli_statement_timeout_holds_through_pgbouncer(topology_database: TopologyDatabase) -> None:
    db = topology_database
    with psycopg.connect(db.direct_url) as locker:
        locker.execute("LOCK TABLE resource_action_traces IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        result = kds(["incidents", "list"], db.pooled_url, KDS_STATEMENT_TIMEOUT="300ms", **POOLED)
        waited = time.monotonic() - started
        locker.rollback()
    assert result == (1, "", "query-timeout: the query took longer than the statement timeout\n")
    assert waited < 10  # cancelled by the statement timeout, not by the lock going away


def test_cli_session_through_pgbouncer_is_read_only_with_its_settings(topology_database: TopologyDatabase) -> None:
    from kds.cli.common import session
    from kds.settings import load_settings

    config = load_settings(database_url=topology_database.pooled_url, database_pooler="pgbouncer", statement_timeout=2)
    with session(config, read_only=True) as conn:
        settings = conn.execute(
            "SELECT current_setting('application_name'), current_setting('statement_timeout'),"
            " current_setting('transaction_read_only')"
        ).fetchone()
        assert settings == ("kds-cli", "2s", "on")
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("DELETE FROM resource_action_traces")
        conn.rollback()
        # the next transaction is read-only too (BEGIN READ ONLY), the first one's settings are gone
        assert conn.execute("SHOW transaction_read_only").fetchone() == ("on",)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("INSERT INTO notification_audit DEFAULT VALUES")
        conn.rollback()
    with psycopg.connect(topology_database.direct_url) as conn:
        assert conn.execute("SELECT count(*) FROM resource_action_traces").fetchone() == (SEEDED_INCIDENTS,)


def test_cli_db_commands_through_pgbouncer(topology_primary: Primary, pgbouncer: PgBouncer) -> None:
    url = pgbouncer.url(empty_database(topology_primary))
    code, _, err = kds(["db", "migrate"], url, **POOLED)
    assert code == 0, err
    assert kds(["db", "migrate"], url, **POOLED) == (0, "", "nothing to apply: the schema is up to date\n")
    status = orjson.loads(kds(["db", "status", "-o", "json"], url, **POOLED)[1])
    assert status["pending"] == [] and status["applied"]
    assert kds(["db", "seed", "--incidents", "120"], url, **POOLED)[0] == 0
    listed = orjson.loads(kds(["incidents", "list", "-o", "json", "-l", "1"], url, **POOLED)[1])
    assert listed["pagination"]["total"] == 120
    code, _, err = kds(["db", "partitions", "ensure", "--ahead", "4"], url, **POOLED)
    assert code == 0, err
    assert kds(["db", "partitions", "ensure", "--ahead", "4"], url, **POOLED)[0] == 0  # idempotent
    pooled = kds(["db", "partitions", "-o", "json"], url, **POOLED)
    assert pooled[0] == 0
    assert pooled == kds(
        ["db", "partitions", "-o", "json"], url.replace(f":{pgbouncer.port}/", f":{topology_primary.port}/")
    )


def test_cli_migrate_through_pgbouncer_honours_an_explicit_statement_timeout(
    topology_primary: Primary, pgbouncer: PgBouncer
) -> None:
    name = empty_database(topology_primary)
    with psycopg.connect(topology_primary.url(name)) as locker:
        locker.execute("CREATE TABLE resource_references (id bigserial PRIMARY KEY)")
        locker.commit()
        locker.execute("LOCK TABLE resource_references IN ACCESS EXCLUSIVE MODE")
        result = kds(["db", "migrate"], pgbouncer.url(name), KDS_STATEMENT_TIMEOUT="200ms", **POOLED)
        locker.rollback()
    assert result == (1, "", "query-timeout: the query took longer than the statement timeout\n")
