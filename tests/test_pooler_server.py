"""kds serve through PgBouncer 1.18 in transaction pooling mode (docs/scaling.md), on real components.

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
import psycopg
from psycopg import sql

from tests.pooled import PROBLEM, assert_problem, namespace_totals, newest_ids, serve_pooled
from tests.serving import wait_for
from tests.topology import PgBouncer
from tests.topology_fixtures import SEEDED_INCIDENTS, TopologyDatabase


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


def test_pooled_statements_are_prepared_once_per_server_connection(
    topology_database: TopologyDatabase, pgbouncer: PgBouncer, tmp_path: Path
) -> None:
    """200 pages through PgBouncer: kds_prepare ran at most once per server connection (kds.db.prepared)."""
    db = topology_database
    with psycopg.connect(db.direct_url, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} SET track_functions = 'pl'").format(sql.Identifier(db.name)))
    totals = namespace_totals(db.direct_url)
    namespaces = sorted(totals)
    with serve_pooled(db, tmp_path, "--pool-size", "4") as server, httpx.Client(base_url=server.base_url) as http:
        for number in range(200):
            namespace = namespaces[number % len(namespaces)]
            response = http.get("/api/v1/incidents", params={"namespace": namespace, "limit": "5"}, timeout=30)
            assert response.status_code == 200, response.text
            assert response.json()["pagination"]["total"] == totals[namespace]
        with psycopg.connect(db.direct_url, autocommit=True) as conn:
            servers = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND application_name = 'kds-serve' AND backend_type = 'client backend'"
            ).fetchone()[0]
    # closing PgBouncer's server connections makes their backends report their function statistics
    with psycopg.connect(pgbouncer.url("pgbouncer"), autocommit=True) as admin:
        admin.execute(sql.SQL("KILL {}").format(sql.Identifier(db.name)))
    with psycopg.connect(db.direct_url, autocommit=True) as conn:
        calls = wait_for(
            lambda: conn.execute(
                "SELECT sum(calls) FROM pg_stat_user_functions WHERE funcname = 'kds_prepare'"
            ).fetchone()[0],
            timeout=30,
        )
    assert 1 <= servers <= 10
    assert 1 <= calls <= servers


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
        export = server.get("/api/v1/incidents", headers={"Accept": "application/x-ndjson"})
        assert export.status_code == 200
        assert len(export.text.splitlines()) == SEEDED_INCIDENTS  # a server-side cursor inside one transaction
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
