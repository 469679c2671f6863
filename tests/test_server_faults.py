"""Faults under load on a real ``kds serve`` (quality bars in bench/): an exhausted pool, a database outage.

Load comes from loopback clients only, bounded in count and time.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import psycopg
import pytest

from tests.measurements import report
from tests.pg import StandaloneServer
from tests.serving import running, wait_for

PROBLEM = "https://api.kubernaut.io/problems/"
POOL_TIMEOUT = 0.5
STATEMENT_TIMEOUT = 2.0
RECOVERY_BOUND = 2.0


def is_problem(response: httpx.Response, status: int, slug: str) -> bool:
    if response.status_code != status or response.headers.get("content-type") != "application/problem+json":
        return False
    document = orjson.loads(response.content)
    return document["type"] == PROBLEM + slug and document["status"] == status


def test_exhausted_pool_answers_503_within_the_pool_timeout(database_url: str, tmp_path: Path) -> None:
    """One pooled connection, held by a query waiting for a lock: everyone else gets a fast 503."""
    env = {"KDS_POOL_TIMEOUT": f"{POOL_TIMEOUT}s", "KDS_STATEMENT_TIMEOUT": "30s"}
    args = ("--pool-size", "1", "--shutdown-delay", "0")
    with (
        running(database_url, *args, log_path=tmp_path / "serve.log", env=env) as server,
        psycopg.connect(database_url) as locker,
    ):
        assert server.get("/api/v1/incidents").status_code == 200
        locker.execute("LOCK TABLE resource_action_traces IN ACCESS EXCLUSIVE MODE")
        held: dict[str, httpx.Response] = {}
        holder = threading.Thread(target=lambda: held.update(response=server.get("/api/v1/incidents")))
        holder.start()
        wait_for(lambda: waiting_on_lock(database_url) == 1, timeout=10, message="the pooled connection to wait")

        async def burst(count: int) -> list[tuple[httpx.Response, float]]:
            limits = httpx.Limits(max_connections=count + 10)
            async with httpx.AsyncClient(base_url=server.base_url, timeout=30, limits=limits) as client:

                async def one(i: int) -> tuple[httpx.Response, float]:
                    started = time.monotonic()
                    response = await client.get("/api/v1/incidents", headers={"X-Request-ID": f"burst-{count}-{i}"})
                    return response, time.monotonic() - started

                return await asyncio.gather(*(one(i) for i in range(count)))

        # 8 waiters fit the bounded queue and wait the pool timeout; 120 overflow it (max_waiting 100)
        for count in (8, 120):
            results = asyncio.run(burst(count))
            assert all(is_problem(response, 503, "service-unavailable") for response, _ in results)
            assert all(response.headers["retry-after"] == "1" for response, _ in results)
            # the server's own time per request (its log line), free of the client's connection set-up
            durations = [record["duration_ms"] / 1000 for record in server.log_records()
                         if str(record.get("request_id", "")).startswith(f"burst-{count}-")
                         and record.get("message") == "request"]  # fmt: skip
            assert len(durations) == count
            report(f"{count} requests on an exhausted pool: all 503 + Retry-After; server time max "
                  f"{max(durations):.3f}s, client time max {max(t for _, t in results):.3f}s "
                  f"(pool timeout {POOL_TIMEOUT}s)")  # fmt: skip
            assert max(durations) < POOL_TIMEOUT + 1.0  # waited the pool timeout, not longer (CPU margin)
        assert server.get("/health/live").status_code == 200
        locker.rollback()
        holder.join(timeout=30)
        assert held["response"].status_code == 200
        assert server.get("/api/v1/incidents").status_code == 200
        assert server.alive()


def waiting_on_lock(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'kds-serve'"
            " AND datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()[0]


@dataclass(frozen=True, slots=True)
class Outcome:
    sent: float
    done: float
    status: int  # 0: no HTTP response at all
    kind: str  # "ok", "503/504", "other"


@pytest.fixture
def standalone(tmp_path: Path) -> Iterator[StandaloneServer]:
    server = StandaloneServer(tmp_path / "pgdata")
    try:
        yield server
    finally:
        server.destroy()


def classify(response: httpx.Response) -> str:
    if response.status_code == 200:
        return "ok"
    if is_problem(response, 503, "service-unavailable") and response.headers.get("retry-after"):
        return "503/504"
    if is_problem(response, 504, "query-timeout"):
        return "503/504"
    return "other"


def test_database_outage_under_read_load(standalone: StandaloneServer, tmp_path: Path) -> None:
    from kds.db import seed

    url = standalone.migrated_database()
    with psycopg.connect(url, autocommit=True) as conn:
        seed.seed(conn, 300)
        some_id = conn.execute("SELECT min(id) FROM resource_action_traces").fetchone()[0]
    env = {"KDS_POOL_TIMEOUT": "1s", "KDS_STATEMENT_TIMEOUT": f"{STATEMENT_TIMEOUT}s", "KDS_CONNECT_TIMEOUT": "1"}
    args = ("--pool-size", "4", "--shutdown-delay", "0", "--log-format", "json")
    outcomes: list[Outcome] = []
    stop = threading.Event()
    paths = ("/api/v1/incidents?limit=20", f"/api/v1/incidents/{some_id}", "/api/v1/incidents?severity=high")

    with running(url, *args, log_path=tmp_path / "serve.log", env=env) as server:

        def client(number: int) -> None:
            with httpx.Client(base_url=server.base_url, timeout=STATEMENT_TIMEOUT + 8) as http:
                i = number
                while not stop.is_set():
                    sent = time.monotonic()
                    try:
                        response = http.get(paths[i % len(paths)])
                        status, kind = response.status_code, classify(response)
                    except httpx.HTTPError:
                        status, kind = 0, "other"
                    outcomes.append(Outcome(sent, time.monotonic(), status, kind))
                    i += 1
                    time.sleep(0.005)

        clients = [threading.Thread(target=client, args=(n,)) for n in range(4)]
        for thread in clients:
            thread.start()
        try:
            time.sleep(1.5)  # load before the outage (the test's own pacing, not synchronisation)
            standalone.stop()
            stopped = time.monotonic()
            wait_for(lambda: any(o.kind != "ok" and o.sent > stopped for o in outcomes), timeout=10,
                     message="requests to fail during the outage")  # fmt: skip
            time.sleep(3.0)  # the outage lasts a few seconds under load
            standalone.start()
            back = time.monotonic()
            wait_for(lambda: any(o.kind == "ok" and o.sent > back for o in outcomes), timeout=10,
                     message="a request to succeed after the database returned")  # fmt: skip
            time.sleep(RECOVERY_BOUND + 1.0)  # keep the load on after recovery
        finally:
            stop.set()
            for thread in clients:
                thread.join(timeout=30)
        assert server.alive()
        log = server.log_text()

    kinds = Counter(o.kind for o in outcomes)
    last_failure = max((o.done for o in outcomes if o.kind != "ok"), default=back)
    recovered = min(o.done for o in outcomes if o.kind == "ok" and o.sent >= last_failure)
    recovery = max(0.0, recovered - back)
    slowest = max(o.done - o.sent for o in outcomes)
    statuses = Counter(o.status for o in outcomes if o.kind != "ok")
    report(
        f"outage under load: sent {len(outcomes)}, succeeded {kinds['ok']}, failed with 503/504 {kinds['503/504']} "
        f"({dict(statuses)}), failed otherwise {kinds['other']}; outage {back - stopped:.2f}s; "
        f"recovery {recovery:.3f}s after the database returned; slowest request {slowest:.3f}s"
    )
    assert kinds["other"] == 0
    assert kinds["503/504"] > 0 and kinds["ok"] > 0
    assert recovery <= RECOVERY_BOUND
    assert slowest < STATEMENT_TIMEOUT + 3.0  # no request hung beyond the statement timeout (+ pool and connect)
    assert "Traceback" not in log


def test_response_timeout_is_a_503_problem_and_frees_the_connection(database_url: str, tmp_path: Path) -> None:
    """KDS_RESPONSE_TIMEOUT cuts a request the database keeps waiting; its query does not linger."""
    env = {"KDS_RESPONSE_TIMEOUT": "1", "KDS_STATEMENT_TIMEOUT": "30s"}
    args = ("--pool-size", "1", "--shutdown-delay", "0")
    with (
        running(database_url, *args, log_path=tmp_path / "serve.log", env=env) as server,
        psycopg.connect(database_url) as locker,
    ):
        locker.execute("LOCK TABLE resource_action_traces IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        response = server.get("/api/v1/incidents")
        seconds = time.monotonic() - started
        assert is_problem(response, 503, "service-unavailable")
        assert response.headers["retry-after"] == "1"
        assert 1.0 <= seconds < 3.0
        wait_for(lambda: waiting_on_lock(database_url) == 0, timeout=5, message="the cut query to be cancelled")
        locker.rollback()
        assert server.get("/api/v1/incidents").status_code == 200  # the only pooled connection is usable
