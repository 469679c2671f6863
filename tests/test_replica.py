"""A read database (``KDS_READ_DATABASE_URL``) that is a real streaming replica (docs/scaling.md#read-replicas).

The primary (embedded PostgreSQL on TCP) and a hot standby made with ``pg_basebackup -R`` come from
:mod:`tests.topology_fixtures`; every test gets its own seeded database on the primary, replayed to the
replica. Reads go to the replica, writes to the primary: proved on the servers' own statistics and by
pausing the replica's replay (``pg_wal_replay_pause()``) so that what the primary has and the replica has
differ.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import psycopg
import pytest
from typer.testing import CliRunner

from kds.cli.app import app
from tests import factories
from tests.serving import Server, kds_backends, running, wait_for
from tests.topology import PgBouncer, Primary, Replica
from tests.topology_fixtures import SEEDED_INCIDENTS, TopologyDatabase

runner = CliRunner()
PROBLEM = "https://api.kubernaut.io/problems/"
# table scans of the incident tables (every partition included) as this server's statistics count them
INCIDENT_SCANS_SQL = """
SELECT coalesce(sum(coalesce(seq_scan, 0) + coalesce(idx_scan, 0)), 0)::bigint
  FROM pg_stat_user_tables
 WHERE relname IN ('action_histories', 'resource_references') OR relname LIKE 'resource_action_traces%'
"""
AUDIT_INSERTS_SQL = "SELECT coalesce(n_tup_ins, 0) FROM pg_stat_user_tables WHERE relname = 'notification_audit'"


@dataclass(frozen=True)
class Topology:
    name: str
    primary_url: str
    replica_url: str
    replica: Replica


@pytest.fixture
def topology(topology_database: TopologyDatabase, topology_primary: Primary, topology_replica: Replica) -> Topology:
    """The test's seeded database on the primary, replayed to the replica."""
    topology_replica.wait_for_replay()
    name = topology_database.name
    return Topology(name, topology_primary.url(name), topology_replica.url(name), topology_replica)


def scalar(url: str, query: str, params: tuple[object, ...] = ()) -> object:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(query, params or None).fetchone()
    assert row is not None
    return row[0]


def other_clients_gone(url: str) -> bool:
    """No client backend but ours on this database (their statistics are flushed when they exit)."""
    return (
        scalar(
            url,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
        )
        == 0
    )


def notification(notification_id: str) -> dict[str, object]:
    return {
        "remediation_id": "rem-1",
        "notification_id": notification_id,
        "recipient": "oncall@example.com",
        "channel": "slack",
        "message_summary": "pod restarted",
        "status": "sent",
        "sent_at": datetime.now(UTC).isoformat(),
    }


def insert_incident(url: str) -> int:
    with psycopg.connect(url) as conn:
        return factories.incident(conn, minutes=60 * 24 * 365, namespace="replica-test")


@contextmanager
def replay_paused(replica: Replica) -> Iterator[None]:
    """The replica receives WAL but does not apply it until the block ends."""
    with psycopg.connect(replica.url(), autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_pause()")
        wait_for(
            lambda: conn.execute("SELECT pg_get_wal_replay_pause_state() = 'paused'").fetchone()[0],  # type: ignore[index]
            timeout=10,
            message="replay to pause",
        )
        try:
            yield
        finally:
            conn.execute("SELECT pg_wal_replay_resume()")


def serve(topology: Topology, tmp_path: Path, *args: str) -> AbstractContextManager[Server]:
    return running(
        topology.primary_url,
        "--read-database-url",
        topology.replica_url,
        "--pool-size",
        "2",
        *args,
        log_path=tmp_path / "serve.log",
    )


def assert_problem(response: httpx.Response, status: int, slug: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == PROBLEM + slug


def metric_samples(text: str, name: str) -> dict[str, float]:
    samples = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            labels, _, value = line[len(name) :].rpartition(" ")
            samples[labels] = float(value)
    return samples


# ------------------------------------------------------------------------------------------ the server


def test_reads_never_reach_the_primary_and_writes_never_reach_the_replica(topology: Topology, tmp_path: Path):
    """Counted on each server's own statistics, flushed by the server's backends as they exit."""
    wait_for(lambda: other_clients_gone(topology.primary_url), timeout=30, message="the seeding session to end")
    primary_scans = scalar(topology.primary_url, INCIDENT_SCANS_SQL)
    replica_scans = scalar(topology.replica_url, INCIDENT_SCANS_SQL)
    audit_inserts = scalar(topology.primary_url, AUDIT_INSERTS_SQL)
    with serve(topology, tmp_path) as server, httpx.Client(base_url=server.base_url, timeout=30) as client:
        page = client.get("/api/v1/incidents", params={"limit": 100})
        assert page.status_code == 200, page.text
        assert page.json()["pagination"]["total"] == SEEDED_INCIDENTS
        ids = [row["id"] for row in page.json()["data"]]
        for incident_id in ids[:20]:
            assert client.get(f"/api/v1/incidents/{incident_id}").status_code == 200
        export = client.get("/api/v1/incidents", headers={"Accept": "application/x-ndjson"})
        assert len(export.text.splitlines()) == SEEDED_INCIDENTS
        for index in range(5):
            created = client.post("/api/v1/audit/notifications", json=notification(f"replica-{index}"))
            assert created.status_code == 201, created.text
        assert client.get("/health/ready").json() == {"status": "ready"}
    wait_for(
        lambda: kds_backends(topology.primary_url) == 0 and kds_backends(topology.replica_url) == 0,
        timeout=20,
        message="the server's connections to close",
    )
    assert scalar(topology.primary_url, INCIDENT_SCANS_SQL) == primary_scans  # not one read on the primary
    assert scalar(topology.replica_url, INCIDENT_SCANS_SQL) > replica_scans  # ... they all went here
    assert scalar(topology.primary_url, AUDIT_INSERTS_SQL) == audit_inserts + 5  # the writes went to the primary
    stored = "SELECT count(*) FROM notification_audit WHERE notification_id LIKE 'replica-%'"
    assert scalar(topology.primary_url, stored) == 5
    topology.replica.wait_for_replay()
    assert scalar(topology.replica_url, stored) == 5  # ... and streamed to the replica


def test_an_audit_write_lands_on_the_primary_and_reads_follow_the_replica(topology: Topology, tmp_path: Path):
    with serve(topology, tmp_path) as server, httpx.Client(base_url=server.base_url, timeout=30) as client:
        with replay_paused(topology.replica):
            created = client.post("/api/v1/audit/notifications", json=notification("paused-write"))
            assert created.status_code == 201, created.text  # the replica being behind never holds up writes
            new_id = insert_incident(topology.primary_url)
            assert client.get(f"/api/v1/incidents/{new_id}").status_code == 404  # read from the paused replica
            page = client.get("/api/v1/incidents", params={"namespace": "replica-test"})
            assert page.json()["data"] == [] and page.json()["pagination"]["total"] == 0
            stored = "SELECT count(*) FROM notification_audit WHERE notification_id = 'paused-write'"
            assert (scalar(topology.primary_url, stored), scalar(topology.replica_url, stored)) == (1, 0)
        topology.replica.wait_for_replay()
        found = client.get(f"/api/v1/incidents/{new_id}")
        assert found.status_code == 200 and found.json()["namespace"] == "replica-test"
        page = client.get("/api/v1/incidents", params={"namespace": "replica-test"}).json()
        assert [row["id"] for row in page["data"]] == [new_id] and page["pagination"]["total"] == 1
        assert scalar(topology.replica_url, stored) == 1


def test_health_and_metrics_show_both_databases_and_the_replica_lag(topology: Topology, tmp_path: Path):
    with serve(topology, tmp_path) as server:
        health = server.get("/health")
        assert (health.status_code, health.json()) == (
            200,
            {"status": "healthy", "database": "connected", "read_database": "connected"},
        )

        def pools() -> dict[str, float] | None:
            samples = metric_samples(server.get("/metrics").text, "datastorage_db_pool_connections")
            return samples if samples.get('{pool="read",state="available"}') == 2.0 else None

        assert wait_for(pools, timeout=10, message="both pools idle and full") == {
            '{pool="primary",state="size"}': 2.0,
            '{pool="primary",state="available"}': 2.0,
            '{pool="primary",state="waiting"}': 0.0,
            '{pool="read",state="size"}': 2.0,
            '{pool="read",state="available"}': 2.0,
            '{pool="read",state="waiting"}': 0.0,
        }

        def lag() -> float:
            return metric_samples(server.get("/metrics").text, "datastorage_replica_lag_seconds")[""]

        wait_for(lambda: lag() == 0.0, timeout=30, message="caught up (an idle primary is no lag)")
        with replay_paused(topology.replica):
            insert_incident(topology.primary_url)  # WAL the replica receives but does not apply
            behind = wait_for(lambda: lag() > 0 and lag(), timeout=20, message="the lag gauge to rise")
            assert behind > 0
        topology.replica.wait_for_replay()
        wait_for(lambda: lag() == 0.0, timeout=20, message="the lag gauge to return to 0")


def test_replica_stopped_and_restarted_under_load(topology: Topology, tmp_path: Path):
    """Only 503 problems while the read database is down, writes go on, recovery once it is back."""
    statuses: Counter[int] = Counter()
    unexpected: list[str] = []
    stop = threading.Event()

    def load(base_url: str) -> None:
        with httpx.Client(base_url=base_url, timeout=30) as client:
            while not stop.is_set():
                response = client.get("/api/v1/incidents", params={"limit": 5})
                statuses[response.status_code] += 1
                if response.status_code == 200:
                    continue
                body = response.json() if response.headers.get("content-type", "").endswith("json") else {}
                if (
                    response.status_code != 503
                    or response.headers["content-type"] != "application/problem+json"
                    or body.get("type") != PROBLEM + "service-unavailable"
                    or "retry-after" not in response.headers
                ):
                    unexpected.append(f"{response.status_code} {response.text}")

    with serve(topology, tmp_path, "--shutdown-delay", "0") as server:
        worker = threading.Thread(target=load, args=(server.base_url,), daemon=True)
        worker.start()
        try:
            wait_for(lambda: statuses[200] >= 20, timeout=30, message="load to run")
            topology.replica.stop()
            ready = wait_for(
                lambda: (r := server.get("/health/ready")).status_code == 503 and r, timeout=15, message="not ready"
            )
            assert ready.json() == {"status": "not_ready", "reason": "database_unreachable"}
            health = server.get("/health")
            assert (health.status_code, health.json()) == (
                503,
                {"status": "unhealthy", "database": "connected", "read_database": "unreachable"},
            )
            created = server_post(server, notification("while-replica-down"))
            assert created.status_code == 201, created.text  # writes do not need the replica
            wait_for(lambda: statuses[503] >= 3, timeout=30, message="reads to fail while the replica is down")
            topology.replica.start()
            restarted = time.monotonic()
            wait_for(lambda: server.get("/health/ready").status_code == 200, timeout=10, message="ready again")
            recovered_in = time.monotonic() - restarted
            served = statuses[200]
            wait_for(lambda: statuses[200] >= served + 10, timeout=15, message="reads to succeed again")
        finally:
            stop.set()
            worker.join(timeout=60)
    assert unexpected == []
    assert set(statuses) == {200, 503}
    assert recovered_in < 10
    print(f"replica restart: ready again {recovered_in:.2f} s after it accepted connections; statuses {statuses}")


def server_post(server: Server, document: dict[str, object]) -> httpx.Response:
    return httpx.post(server.url("/api/v1/audit/notifications"), json=document, timeout=30)


# --------------------------------------------------------------------------------------------- the CLI


def cli(args: list[str], **env: str) -> tuple[int, str, str]:
    result = runner.invoke(app, args, env=env)
    return result.exit_code, result.stdout, result.stderr


def test_cli_reads_from_the_read_database(topology: Topology):
    with replay_paused(topology.replica):
        new_id = insert_incident(topology.primary_url)
        get = ["incidents", "get", str(new_id), "-o", "json", "--database-url", topology.primary_url]
        code, _, err = cli(get, KDS_READ_DATABASE_URL=topology.replica_url)
        assert (code, err) == (1, f"not-found: incident {new_id} does not exist\n")
        code, _, err = cli([*get, "--read-database-url", topology.replica_url])
        assert (code, err) == (1, f"not-found: incident {new_id} does not exist\n")
        listed = ["incidents", "list", "-n", "replica-test", "-o", "json", "--database-url", topology.primary_url]
        code, out, _ = cli(listed, KDS_READ_DATABASE_URL=topology.replica_url)
        assert code == 0 and orjson.loads(out)["pagination"]["total"] == 0
        code, out, _ = cli(get)  # without a read database: the primary, which has it
        assert code == 0 and orjson.loads(out)["id"] == new_id
        # kds db always works on the primary, even with a read database configured
        code, out, _ = cli(
            ["db", "status", "-o", "json", "--database-url", topology.primary_url],
            KDS_READ_DATABASE_URL=topology.replica_url,
        )
        assert code == 0 and orjson.loads(out)["pending"] == []
    topology.replica.wait_for_replay()
    code, out, _ = cli(get, KDS_READ_DATABASE_URL=topology.replica_url)
    assert code == 0 and orjson.loads(out)["id"] == new_id
    code, out, _ = cli(listed, KDS_READ_DATABASE_URL=topology.replica_url)
    assert code == 0 and orjson.loads(out)["pagination"]["total"] == 1


def test_cli_read_database_unreachable_keeps_its_cause(topology: Topology):
    code, out, err = cli(
        [
            "incidents",
            "list",
            "--database-url",
            topology.primary_url,
            "--read-database-url",
            "postgresql://kds@127.0.0.1:1/kds",
        ]
    )
    assert (code, out) == (1, "")
    assert err.startswith("service-unavailable: cannot connect to kds@127.0.0.1:1/kds: connection refused")


# ------------------------------------------------------------------------------------ validate-infra


def validate(topology: Topology, *args: str) -> dict[str, object]:
    result = runner.invoke(
        app,
        ["validate-infra", "--database-url", topology.primary_url, "--only", "read-database", "-o", "json", *args],
    )
    document = orjson.loads(result.stdout)
    (check,) = document["checks"]
    return {"exit": result.exit_code, "status": check["status"], "message": check["message"], "fix": check["fix"]}


def test_validate_infra_read_database(topology: Topology):
    ok = validate(topology, "--read-database-url", topology.replica_url)
    assert (ok["exit"], ok["status"]) == (0, "pass")
    assert str(ok["message"]).startswith(f"connected to postgres@127.0.0.1:{topology.replica.port}/{topology.name}")
    # the replica may be replaying the primary's autovacuum of the new tables right now: a fraction of a second
    assert re.search(
        r"; a streaming replica, replay lag \d+\.\d s; required tables and columns present$", str(ok["message"])
    )

    skipped = validate(topology)
    assert skipped == {
        "exit": 0,
        "status": "skip",
        "message": "skipped: no read database is configured (--read-database-url / KDS_READ_DATABASE_URL)",
        "fix": "",
    }
    from_env = runner.invoke(
        app,
        ["validate-infra", "--only", "read-database", "-o", "json"],
        env={"KDS_READ_DATABASE_URL": topology.replica_url},
    )
    assert orjson.loads(from_env.stdout)["checks"][0]["status"] == "pass"

    primary = validate(topology, "--read-database-url", topology.primary_url)
    assert primary["status"] == "pass" and str(primary["message"]).endswith(
        "; not a replica (lag 0 s); required tables and columns present"
    )

    no_schema = validate(topology, "--read-database-url", topology.replica.url("postgres"))
    assert (no_schema["exit"], no_schema["status"]) == (1, "fail")
    assert str(no_schema["message"]).startswith("read database: missing table(s): resource_references, ")

    down = validate(topology, "--read-database-url", "postgresql://kds@127.0.0.1:1/kds", "--timeout", "3")
    assert (down["exit"], down["status"]) == (1, "fail")
    assert down["message"] == "read database: cannot connect to kds@127.0.0.1:1/kds: connection refused"


def test_validate_infra_read_database_warns_about_lag(topology: Topology):
    with replay_paused(topology.replica):
        insert_incident(topology.primary_url)
        wait_for(
            lambda: scalar(topology.replica_url, "SELECT pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn()"),
            timeout=10,
            message="the replica to receive WAL it does not apply",
        )
        within = validate(topology, "--read-database-url", topology.replica_url)
        assert (within["exit"], within["status"]) == (0, "pass")  # seconds behind, under the 30 s default
        lagging = validate(topology, "--read-database-url", topology.replica_url, "--max-lag", "0")
        assert (lagging["exit"], lagging["status"]) == (0, "warn")
        assert str(lagging["message"]).endswith("; the lag is above --max-lag 0 s")
        assert str(lagging["fix"]).startswith("find why the replica falls behind")
        command = ["validate-infra", "--only", "read-database", "--read-database-url", topology.replica_url]
        strict = runner.invoke(app, [*command, "--max-lag", "0", "--strict"])
        assert strict.exit_code == 1


def test_replica_lag_measure_is_zero_when_caught_up_and_on_a_primary(topology: Topology):
    """An idle primary makes the last replay timestamp old; a replica that has everything is still 0 behind."""
    from kds.db.replica import replica_lag

    topology.replica.wait_for_replay()
    with psycopg.connect(topology.replica_url, autocommit=True) as conn:
        # polled: the replica may still be replaying the primary's autovacuum of the freshly seeded tables
        wait_for(lambda: replica_lag(conn) == (0.0, True), timeout=30, message="the replica to be caught up")
        age = conn.execute("SELECT extract(epoch FROM now() - pg_last_xact_replay_timestamp())").fetchone()[0]  # type: ignore[index]
        assert age > 0  # what a timestamp-only measure would have reported
    with psycopg.connect(topology.primary_url, autocommit=True) as conn:
        assert replica_lag(conn) == (0.0, False)


def test_statements_are_prepared_on_a_hot_standby_behind_a_pooler(topology: Topology):
    """kds_prepare and EXECUTE in a read-only transaction on the replica (what the read pool sends via a pooler)."""
    import asyncio

    from kds.db.policy import ConnectionPolicy
    from kds.query import parse_incident_query
    from kds.query.execute import afetch_page

    setup = ConnectionPolicy("kds-serve", 5, read_only=True, pooler="pgbouncer").transaction_setup()
    query = parse_incident_query({"limit": "3"}, default_limit=50)
    # the replica's replay position can pass the seed a moment before a new snapshot sees it (after another
    # test paused and resumed replay): wait until the standby shows the seeded rows
    count = "SELECT count(*) = %s FROM resource_action_traces"
    wait_for(
        lambda: scalar(topology.replica_url, count, (SEEDED_INCIDENTS,)), timeout=30, message="the seed on the replica"
    )

    async def pages() -> tuple[int, int, list[tuple[str]]]:
        conn = await psycopg.AsyncConnection.connect(topology.replica_url, autocommit=True, prepare_threshold=None)
        try:
            first = await afetch_page(conn, query, setup=setup)
            second = await afetch_page(conn, query, setup=setup)
            cur = await conn.execute("SELECT name FROM pg_prepared_statements WHERE name LIKE 'kds%'")
            return first.total, second.total, await cur.fetchall()
        finally:
            await conn.close()

    first, second, names = asyncio.run(pages())
    assert first == second == SEEDED_INCIDENTS
    assert len(names) == 1 and names[0][0].startswith("kds_")


def test_settings_read_database_url(monkeypatch: pytest.MonkeyPatch):
    from kds.settings import load_settings

    assert load_settings().read_database_url is None
    monkeypatch.setenv("KDS_READ_DATABASE_URL", "postgresql://replica/kds")
    assert load_settings().read_database_url == "postgresql://replica/kds"
    assert load_settings(read_database_url="postgresql://other/kds").read_database_url == "postgresql://other/kds"


def test_read_database_behind_pgbouncer(topology: Topology, pgbouncer: PgBouncer, tmp_path: Path):
    """A transaction-mode pooler as the read database (KDS_DATABASE_POOLER covers both pools)."""
    pooled = pgbouncer.url(topology.name)  # in front of the primary here: what matters is the pooler's protocol
    env = {"KDS_DATABASE_POOLER": "pgbouncer"}
    args = ("--read-database-url", pooled, "--pool-size", "2")
    with running(topology.primary_url, *args, log_path=tmp_path / "serve.log", env=env) as server:
        for _ in range(3):  # the same statements again and again: no prepared-statement clash
            page = server.get("/api/v1/incidents", params={"limit": 7})
            assert page.status_code == 200 and page.json()["pagination"]["total"] == SEEDED_INCIDENTS
            first = page.json()["data"][0]["id"]
            assert server.get(f"/api/v1/incidents/{first}").json()["id"] == first
        export = server.get("/api/v1/incidents", headers={"Accept": "application/x-ndjson"})
        assert len(export.text.splitlines()) == SEEDED_INCIDENTS
        assert server.get("/health").json() == {
            "status": "healthy",
            "database": "connected",
            "read_database": "connected",
        }
        text = server.get("/metrics").text
        assert metric_samples(text, "datastorage_replica_lag_seconds") == {"": 0.0}  # not a replica
