"""kds through PgBouncer 1.18 in transaction pooling mode (docs/scaling.md), on real components.

The topology (an embedded primary on TCP, PgBouncer from the OS packages) comes from
:mod:`tests.topology_fixtures`; every test gets its own seeded database, reached directly and through
the pooler. ``KDS_DATABASE_POOLER=pgbouncer`` is the switch under test.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import orjson
import psycopg
import pytest
from typer.testing import CliRunner

from kds.cli.app import app
from tests.serving import running, wait_for
from tests.topology import PgBouncer, Primary
from tests.topology_fixtures import SEEDED_INCIDENTS, TopologyDatabase

runner = CliRunner()
POOLED = {"KDS_DATABASE_POOLER": "pgbouncer"}
PROBLEM = "https://api.kubernaut.io/problems/"


def kds(args: list[str], url: str, **env: str) -> tuple[int, str, str]:
    result = runner.invoke(app, [*args, "--database-url", url], env=env)
    return result.exit_code, result.stdout, result.stderr


def namespace_totals(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT rr.namespace, count(*) FROM resource_action_traces rat"
            " JOIN action_histories ah ON ah.id = rat.action_history_id"
            " JOIN resource_references rr ON rr.id = ah.resource_id GROUP BY rr.namespace"
        ).fetchall()
    return {namespace: total for namespace, total in rows if namespace is not None}


def newest_ids(url: str, count: int) -> list[int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT id FROM resource_action_traces ORDER BY action_timestamp DESC, id DESC LIMIT %s", (count,)
        ).fetchall()
    return [row[0] for row in rows]


def assert_problem(response: httpx.Response, status: int, slug: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == PROBLEM + slug


# ------------------------------------------------------------------------------------------------ CLI


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


def empty_database(primary: Primary) -> str:
    name = f"kds_pooled_{time.monotonic_ns()}"
    with psycopg.connect(primary.url(), autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
    return name


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


# ------------------------------------------------------------------------------------------------ server


def serve_pooled(db: TopologyDatabase, tmp_path: Path, *args: str, **env: str):
    return running(
        db.pooled_url,
        "--shutdown-delay",
        "0",
        *args,
        log_path=tmp_path / "serve.log",
        env={**POOLED, **env},
    )


def test_serve_through_pgbouncer_many_clients_same_statements(topology_database: TopologyDatabase, tmp_path: Path):
    db = topology_database
    totals = namespace_totals(db.direct_url)
    ids = newest_ids(db.direct_url, 10)
    namespaces = sorted(totals)
    failures: list[str] = []
    counts: Counter[int] = Counter()
    lock = threading.Lock()

    def client(number: int, base_url: str) -> None:
        with httpx.Client(base_url=base_url, timeout=30) as http:
            for request in range(50):
                if request % 5 == 4:
                    incident_id = ids[(number + request) % len(ids)]
                    response = http.get(f"/api/v1/incidents/{incident_id}")
                    ok = response.status_code == 200 and response.json()["id"] == incident_id
                else:
                    namespace = namespaces[(number + request) % len(namespaces)]
                    response = http.get("/api/v1/incidents", params={"namespace": namespace, "limit": "5"})
                    ok = response.status_code == 200 and response.json()["pagination"]["total"] == totals[namespace]
                with lock:
                    counts[response.status_code] += 1
                    if not ok:
                        failures.append(f"{response.status_code} {response.text[:200]}")

    with serve_pooled(db, tmp_path, "--pool-size", "4") as server:
        threads = [threading.Thread(target=client, args=(n, server.base_url)) for n in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        with psycopg.connect(db.direct_url, application_name="observer") as conn:
            names = conn.execute(
                "SELECT DISTINCT application_name FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            ).fetchall()
    assert failures == []
    assert counts == Counter({200: 16 * 50})
    assert names == [("kds-serve",)]


def test_serve_audit_write_through_pgbouncer(topology_database: TopologyDatabase, tmp_path: Path) -> None:
    body = {
        "remediation_id": "rem-1",
        "notification_id": "pooled-1",
        "recipient": "sre@example.com",
        "channel": "Slack",
        "message_summary": "restarted web",
        "status": "sent",
        "sent_at": "2026-11-30T10:00:00Z",
    }
    with serve_pooled(topology_database, tmp_path) as server:
        created = httpx.post(server.url("/api/v1/audit/notifications"), json=body, timeout=30)
        again = httpx.post(server.url("/api/v1/audit/notifications"), json=body, timeout=30)
        other = httpx.post(server.url("/api/v1/audit/notifications"), json={**body, "recipient": "x"}, timeout=30)
    assert (created.status_code, again.status_code) == (201, 200)
    assert created.json() == again.json()
    assert created.json()["channel"] == "slack"
    assert_problem(other, 409, "conflict")
    with psycopg.connect(topology_database.direct_url) as conn:
        rows = conn.execute("SELECT notification_id, channel FROM notification_audit").fetchall()
    assert rows == [("pooled-1", "slack")]


def test_serve_statement_timeout_through_pgbouncer_is_504(topology_database: TopologyDatabase, tmp_path: Path):
    db = topology_database
    incident_id = newest_ids(db.direct_url, 1)[0]
    with serve_pooled(db, tmp_path, KDS_STATEMENT_TIMEOUT="500ms") as server, psycopg.connect(db.direct_url) as locker:
        assert server.get("/api/v1/incidents").status_code == 200
        locker.execute("LOCK TABLE resource_action_traces IN ACCESS EXCLUSIVE MODE")
        for path, headers in [("/api/v1/incidents", {}), (f"/api/v1/incidents/{incident_id}", {}),
                              ("/api/v1/incidents", {"Accept": "application/x-ndjson"})]:  # fmt: skip
            assert_problem(server.get(path, headers=headers), 504, "query-timeout")
        locker.rollback()
        # nothing of the timed-out transactions stays behind on the pooled server connections
        for _ in range(5):
            assert server.get(f"/api/v1/incidents/{incident_id}").status_code == 200
        with psycopg.connect(db.direct_url, application_name="observer") as conn:
            settings = conn.execute(
                "SELECT DISTINCT state FROM pg_stat_activity WHERE application_name = 'kds-serve'"
                " AND datname = current_database()"
            ).fetchall()
    assert settings == [("idle",)]


def test_serve_survives_a_pgbouncer_restart_under_load(
    topology_database: TopologyDatabase, pgbouncer: PgBouncer, tmp_path: Path
) -> None:
    statuses: list[tuple[float, int, str]] = []
    stop = threading.Event()

    def load(base_url: str) -> None:
        with httpx.Client(base_url=base_url, timeout=10) as http:
            end = time.monotonic() + 90  # bounded whatever happens
            while not stop.is_set() and time.monotonic() < end:
                response = http.get("/api/v1/incidents", params={"limit": "3"})
                slug = response.json().get("type", "") if response.status_code != 200 else ""
                statuses.append((time.monotonic(), response.status_code, slug))

    with serve_pooled(topology_database, tmp_path, "--pool-size", "2", KDS_POOL_TIMEOUT="500ms") as server:
        threads = [threading.Thread(target=load, args=(server.base_url,)) for _ in range(2)]
        for thread in threads:
            thread.start()
        try:
            wait_for(lambda: sum(1 for s in statuses if s[1] == 200) >= 20, timeout=30, message="load to run")
            pgbouncer.stop()
            stopped = len(statuses)
            wait_for(lambda: any(s[1] != 200 for s in statuses[stopped:]), timeout=30, message="the gap")
            pgbouncer.start()
            restarted = time.monotonic()
            wait_for(
                lambda: [s[1] for s in statuses[-10:] if s[0] > restarted] == [200] * 10,
                timeout=30,
                message="recovery after the restart",
            )
            recovered = next(s[0] for s in statuses if s[0] > restarted and s[1] == 200) - restarted
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
    problems = Counter((status, slug) for _, status, slug in statuses if status != 200)
    assert problems and set(problems) <= {(503, PROBLEM + "service-unavailable"), (504, PROBLEM + "query-timeout")}
    assert recovered < 15


# ------------------------------------------------------------------------------------------------ validate-infra


def validate(url: str, *checks: str, **env: str) -> tuple[int, dict[str, dict]]:
    only = [arg for check in checks for arg in ("--only", check)]
    result = runner.invoke(app, ["validate-infra", "--database-url", url, "-o", "json", *only], env=env)
    document = orjson.loads(result.stdout)
    return result.exit_code, {check["id"]: check for check in document["checks"]}


def test_validate_infra_through_pgbouncer(topology_database: TopologyDatabase) -> None:
    db = topology_database
    code, checks = validate(db.pooled_url, **POOLED)
    assert code == 0, checks
    pooler = checks["connection-pooler"]
    assert (pooler["status"], pooler["message"]) == (
        "pass",
        "through PgBouncer 1.18.0 in transaction pooling mode; KDS_DATABASE_POOLER=pgbouncer",
    )
    assert {check["status"] for name, check in checks.items() if name != "server"} == {"pass"}


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
