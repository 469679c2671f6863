"""``kds serve`` when the database misbehaves: outage, statement timeout, exhausted pool, no schema."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import pytest

from tests import factories
from tests.pg import StandaloneServer
from tests.serving import Server, free_port, kds_backends, running, wait_for

PROBLEM = "https://api.kubernaut.io/problems/"
DRIVER_TEXT = re.compile(
    r"psycopg|SQLSTATE|canceling statement|refused|No such file|closed the connection|terminating connection|"
    r"relation|\.s\.PGSQL|Traceback|does not exist",
    re.IGNORECASE,
)


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == PROBLEM + slug
    assert body["request_id"] == response.headers["x-request-id"]
    assert not DRIVER_TEXT.search(body["detail"]), body["detail"]
    return body


@pytest.fixture(scope="module")
def standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandaloneServer]:
    server = StandaloneServer(tmp_path_factory.mktemp("standalone") / "pgdata")
    try:
        yield server
    finally:
        server.destroy()


def test_the_reconnect_warning_names_its_cause(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql://kds@127.0.0.1:{port}/kds"
    warning = "cannot connect to the database; retrying on demand"
    with running(url, "--pool-size", "2", "--shutdown-delay", "0", log_path=tmp_path / "serve.log") as server:
        record = wait_for(
            lambda: next((r for r in server.log_records() if r["message"] == warning), None),
            timeout=20,
            message="the pool's reconnect warning",
        )
        assert server.get("/health/ready").status_code == 503
    assert {key: record[key] for key in ("level", "pool", "cause", "detail")} == {
        "level": "warning",
        "pool": "primary",
        "cause": "refused",
        "detail": f"cannot connect to kds@127.0.0.1:{port}/kds: connection refused",
    }
    assert [r["message"] for r in server.log_records()].count(warning) == 1  # once per warning interval


def test_database_outage_then_recovery_without_restart(standalone: StandaloneServer, tmp_path: Path) -> None:
    url = standalone.migrated_database()
    with psycopg.connect(url, autocommit=True) as conn:
        incident_id = factories.incident(conn)
    with running(url, "--pool-size", "2", "--shutdown-delay", "0", log_path=tmp_path / "serve.log",
                 env={"KDS_POOL_TIMEOUT": "500ms", "KDS_CONNECT_TIMEOUT": "1"}) as server:  # fmt: skip
        assert server.get("/health/ready").json() == {"status": "ready"}
        assert server.get(f"/api/v1/incidents/{incident_id}").status_code == 200
        standalone.stop()
        try:
            ready = wait_for(lambda: (r := server.get("/health/ready")).status_code == 503 and r, timeout=15,
                             message="readiness to notice the outage")  # fmt: skip
            assert ready.json() == {"status": "not_ready", "reason": "database_unreachable"}
            assert ready.headers["content-type"] == "application/json"
            health = server.get("/health")
            assert (health.status_code, health.json()) == (503, {"status": "unhealthy", "database": "unreachable"})
            for path in ("/api/v1/incidents", f"/api/v1/incidents/{incident_id}"):
                response = server.get(path, headers={"X-Request-ID": "outage-1"})
                body = assert_problem(response, 503, "service-unavailable")
                assert response.headers["retry-after"] == "1"
                assert (body["request_id"], body["instance"]) == ("outage-1", path)
            ndjson = server.get("/api/v1/incidents", headers={"Accept": "application/x-ndjson"})
            assert_problem(ndjson, 503, "service-unavailable")
            live = server.get("/health/live")
            assert (live.status_code, live.json()) == (200, {"status": "alive"})
        finally:
            standalone.start()
        wait_for(lambda: server.get("/health/ready").status_code == 200, timeout=20, interval=0.1,
                 message="readiness after the database came back")  # fmt: skip
        assert server.get(f"/api/v1/incidents/{incident_id}").json()["id"] == incident_id
        assert server.get("/api/v1/incidents").json()["pagination"]["total"] == 1
        assert server.get("/health").json() == {"status": "healthy", "database": "connected"}
        assert server.alive()


def _metric(server: Server, line_start: str) -> float:
    for line in server.get("/metrics").text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_statement_timeout_is_504_and_an_exhausted_pool_is_503(database_url: str, tmp_path: Path) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        incident_id = factories.incident(conn)
    env = {"KDS_STATEMENT_TIMEOUT": "1s", "KDS_POOL_TIMEOUT": "100ms"}
    with running(database_url, "--pool-size", "1", "--shutdown-delay", "0", log_path=tmp_path / "serve.log",
                 env=env) as server, psycopg.connect(database_url) as locker:  # fmt: skip
        locker.execute("LOCK TABLE resource_action_traces IN ACCESS EXCLUSIVE MODE")
        # statement timeout: the query waits for the lock, PostgreSQL cancels it after 1 s
        for path, headers in [("/api/v1/incidents", {}), (f"/api/v1/incidents/{incident_id}", {}),
                              ("/api/v1/incidents", {"Accept": "application/x-ndjson"})]:  # fmt: skip
            response = server.get(path, headers={"X-Request-ID": "slow-1", **headers})
            body = assert_problem(response, 504, "query-timeout")
            assert body["detail"] == "the query took longer than the statement timeout"
            assert "retry-after" not in response.headers
        # exhausted pool: the only connection waits for the lock, the next request gets 503 at once
        results: dict[str, httpx.Response] = {}
        holder = threading.Thread(target=lambda: results.update(first=server.get("/api/v1/incidents")))
        holder.start()
        wait_for(
            lambda: kds_backends(database_url, waiting_on_lock=True) == 1, timeout=10, message="the first query to wait"
        )
        second = server.get("/api/v1/incidents")
        assert_problem(second, 503, "service-unavailable")
        assert second.headers["retry-after"] == "1"
        holder.join(timeout=30)
        assert_problem(results["first"], 504, "query-timeout")
        locker.rollback()
        assert server.get(f"/api/v1/incidents/{incident_id}").status_code == 200
        key = 'datastorage_query_total{operation="list_incidents",status='
        assert _metric(server, key + '"query-timeout"}') == 2.0
        assert _metric(server, key + '"service-unavailable"}') == 1.0
        # the driver's text is in the log, with the request id, and nowhere in a response
        logged = [r for r in server.log_records() if r.get("request_id") == "slow-1" and r.get("sqlstate")]
        assert {r["sqlstate"] for r in logged} == {"57014"}
        assert all("statement timeout" in r["error"] for r in logged)


def test_serve_never_migrates_a_configured_database(empty_database_url: str, tmp_path: Path) -> None:
    with running(empty_database_url, "--shutdown-delay", "0", "--pool-size", "1",
                 log_path=tmp_path / "serve.log") as server:  # fmt: skip
        assert server.get("/health/ready").status_code == 200
        response = server.get("/api/v1/incidents", headers={"X-Request-ID": "no-schema-1"})
        body = assert_problem(response, 500, "internal-error")
        assert body["detail"] == "the database reported an unexpected error"
        logged = [r for r in server.log_records() if r.get("request_id") == "no-schema-1" and r.get("level") == "error"]
        assert logged and logged[0]["sqlstate"] == "42P01" and "traceback" in logged[0]
    with psycopg.connect(empty_database_url) as conn:
        assert conn.execute(
            "SELECT to_regclass('resource_action_traces'), to_regclass('kds_schema_migrations')"
        ).fetchone() == (None, None)


def test_ndjson_export_of_thousands_of_rows(database_url: str, tmp_path: Path) -> None:
    from kds.db import seed

    with psycopg.connect(database_url, autocommit=True) as conn:
        seed.seed(conn, 5000)
        expected = [row[0] for row in conn.execute(
            "SELECT id FROM resource_action_traces ORDER BY action_timestamp DESC, id DESC")]  # fmt: skip
    with running(database_url, "--shutdown-delay", "0", "--pool-size", "1", log_path=tmp_path / "serve.log") as server:
        with httpx.stream("GET", server.url("/api/v1/incidents?limit=5"), headers={"Accept": "application/x-ndjson"},
                          timeout=60) as response:  # fmt: skip
            assert response.headers["content-type"] == "application/x-ndjson"
            assert response.headers["transfer-encoding"] == "chunked"
            got = [orjson.loads(line)["id"] for line in response.iter_lines()]
        assert got == expected
        # a failure after the first byte cuts the stream: the client sees an incomplete body, never a clean end
        headers = {"Accept": "application/x-ndjson", "X-Request-ID": "cut-1"}
        with httpx.stream("GET", server.url("/api/v1/incidents"), headers=headers, timeout=60) as response:
            assert response.status_code == 200
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = 'kds-serve' AND datname = current_database()"
                )
            with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
                for _ in response.iter_bytes():
                    pass
        records = wait_for(lambda: [r for r in server.log_records() if r.get("request_id") == "cut-1"], timeout=10)
        assert {r["message"] for r in records} == {"request failed", "stream cut", "request"}
        assert [r["status"] for r in records if r["message"] == "request"] == [503]
        assert not [r for r in server.log_records() if r.get("level") == "error"]
        metrics = server.get("/metrics").text
        assert 'datastorage_query_total{operation="stream_incidents",status="success"} 1.0' in metrics
        assert 'datastorage_query_total{operation="stream_incidents",status="service-unavailable"} 1.0' in metrics
        assert server.get("/api/v1/incidents?limit=1").status_code == 200
