"""Kubernetes-aware graceful shutdown (docs/operations.md) on real ``kds serve`` processes, 1 and 2 workers.

Requests are made "in flight" deterministically: the test holds an ACCESS EXCLUSIVE lock on the
incident table, waits until the server's query is seen waiting for it in ``pg_stat_activity``,
and releases it when it wants the response to come.
"""

from __future__ import annotations

import http.client
import signal
import socket
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import pytest

from tests import factories
from tests.serving import Server, kds_backends, process_gone, spawn, start, wait_for

DELAY = 3.0
DRAIN = 10.0
SHUTTING_DOWN = {"status": "shutting_down", "reason": "graceful_shutdown_in_progress"}
LOCK = "LOCK TABLE resource_action_traces IN ACCESS EXCLUSIVE MODE"


@pytest.fixture
def incidents(database_url: str) -> tuple[str, dict[str, list[int]]]:
    """A few incidents per namespace; the URL and the expected ids (newest first) per namespace."""
    expected: dict[str, list[int]] = {"payments": [], "default": []}
    with psycopg.connect(database_url, autocommit=True) as conn:
        for i in range(6):
            namespace = "payments" if i % 2 else "default"
            expected[namespace].insert(0, factories.incident(conn, minutes=i, namespace=namespace))
    return database_url, expected


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(4) as pool:
        yield pool


def ids(response: httpx.Response) -> list[int]:
    return [incident["id"] for incident in response.json()["data"]]


def log_time(record: dict[str, Any]) -> float:
    """Seconds since the epoch of a JSON log line's ``time`` (millisecond resolution, UTC)."""
    import calendar

    stamp, millis = record["time"].rstrip("Z").split(".")
    return calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%S")) + int(millis) / 1000


def probe_readiness(port: int) -> tuple[int, str, dict[str, Any]]:
    """GET /health/ready on a fresh connection, with as little client overhead as possible."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/health/ready")
        response = connection.getresponse()
        return response.status, response.getheader("content-type", ""), orjson.loads(response.read())
    finally:
        connection.close()


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def messages(server: Server, prefix: str) -> list[dict[str, Any]]:
    return [r for r in server.log_records() if str(r.get("message", "")).startswith(prefix)]


@pytest.mark.parametrize("workers", [1, 2])
def test_graceful_shutdown_keeps_every_request(incidents: tuple[str, dict[str, list[int]]], tmp_path: Path,
                                               executor: ThreadPoolExecutor, workers: int) -> None:  # fmt: skip
    url, expected = incidents
    server = start(url, "--shutdown-delay", str(DELAY), "--drain-timeout", str(DRAIN), "--pool-size", "2",
                   log_path=tmp_path / "serve.log", workers=workers)  # fmt: skip
    try:
        worker_pids = server.worker_pids()
        assert len(worker_pids) == workers
        metrics_dir = Path(messages(server, "kds serve starting")[0]["metrics_dir"])
        assert metrics_dir.is_dir()
        assert server.get("/health/ready").json() == {"status": "ready"}
        keep_alive = httpx.Client(base_url=server.base_url, timeout=30)
        assert keep_alive.get("/health/live").headers["connection"] == "keep-alive"

        with psycopg.connect(url) as locker:
            locker.execute(LOCK)
            in_flight = executor.submit(httpx.get, server.url("/api/v1/incidents?namespace=payments"), timeout=30)
            wait_for(lambda: kds_backends(url, waiting_on_lock=True) == 1, timeout=10, message="a waiting query")

            sigterm_at = time.monotonic()
            server.signal(signal.SIGTERM)
            # 1. readiness flips at once, liveness stays
            first = wait_for(lambda: (r := probe_readiness(server.port))[0] == 503 and r, timeout=5, interval=0.002,
                             message="readiness 503")  # fmt: skip
            flipped_after = time.monotonic() - sigterm_at
            assert first == (503, "application/json", SHUTTING_DOWN)
            assert flipped_after < 0.3, f"readiness answered 503 only {flipped_after:.3f}s after SIGTERM"
            live = server.get("/health/live")
            assert (live.status_code, live.json()) == (200, {"status": "alive"})

            time.sleep(max(0.0, sigterm_at + 1.0 - time.monotonic()))  # deliberate: release the lock after 1 s
            locker.rollback()

        # 2. the request in flight at SIGTERM completes with its data; a new one during the delay succeeds
        response = in_flight.result(timeout=30)
        assert (response.status_code, ids(response)) == (200, expected["payments"])
        during = server.get("/api/v1/incidents?namespace=default")
        assert (during.status_code, ids(during)) == (200, expected["default"])
        assert server.get("/health/live").status_code == 200
        readiness = server.get("/health/ready")
        assert (readiness.status_code, readiness.json()) == (503, SHUTTING_DOWN)

        # 3. a keep-alive client whose request spans the end of the delay: Connection: close, full body
        with psycopg.connect(url) as locker:
            locker.execute(LOCK)
            spanning = executor.submit(keep_alive.get, "/api/v1/incidents?namespace=payments")
            wait_for(lambda: kds_backends(url, waiting_on_lock=True) == 1, timeout=10, message="a waiting query")
            assert time.monotonic() - sigterm_at < DELAY, "the spanning request was sent during the delay"
            wait_for(lambda: len(messages(server, "shutdown step 2/4")) == workers, timeout=DELAY + 5,
                     message="every worker to start draining")  # fmt: skip
            wait_for(lambda: refused(server.port), timeout=2, message="new connections to be refused while draining")
            locker.rollback()
        answer = spanning.result(timeout=30)
        assert (answer.status_code, answer.headers["connection"], ids(answer)) == (200, "close", expected["payments"])
        keep_alive.close()

        # 4. exit 0 within delay + drain + 2 s, not before the delay; no connection left behind
        code = server.wait(timeout=DELAY + DRAIN + 2)
        total = time.monotonic() - sigterm_at
        assert code == 0
        assert DELAY <= total <= DELAY + DRAIN + 2, total
        wait_for(lambda: kds_backends(url) == 0, timeout=5, message="the server's connections to close")
        assert not metrics_dir.exists()
        print(f"\nworkers={workers}: readiness 503 after {flipped_after * 1000:.0f} ms, exit 0 after {total:.2f} s")

        records = server.log_records()
        signal_at = log_time(messages(server, "shutdown: signal received")[0])
        for pid in worker_pids:
            steps = [r["message"] for r in records if r["pid"] == pid and r["message"].startswith("shutdown")]
            assert steps == ["shutdown step 1/4: readiness off", "shutdown step 2/4: propagation delay over, draining",
                             "shutdown step 3/4: drained", "shutdown step 4/4: database pool closed",
                             "shutdown complete"], steps  # fmt: skip
            step1 = next(r for r in records if r["pid"] == pid and r["message"].startswith("shutdown step 1/4"))
            assert log_time(step1) - signal_at <= 0.2, "each worker turns readiness off within 200 ms"
            step2 = next(r for r in records if r["pid"] == pid and r["message"].startswith("shutdown step 2/4"))
            assert step2["duration_s"] >= DELAY
        for step in ("shutdown step 2/4", "shutdown step 3/4", "shutdown step 4/4"):
            assert all(isinstance(r["duration_s"], float) for r in messages(server, step))
        assert all(r["total_s"] >= DELAY for r in messages(server, "shutdown complete"))
    finally:
        server.stop()


@pytest.mark.parametrize(("workers", "first", "second"), [(1, signal.SIGTERM, signal.SIGTERM),
                                                          (2, signal.SIGINT, signal.SIGTERM)])  # fmt: skip
def test_second_signal_exits_at_once(database_url: str, tmp_path: Path, workers: int, first: int,
                                     second: int) -> None:  # fmt: skip
    server = start(database_url, "--shutdown-delay", "30", "--pool-size", "1", log_path=tmp_path / "serve.log",
                   workers=workers)  # fmt: skip
    try:
        worker_pids = server.worker_pids()
        server.signal(first)
        wait_for(lambda: server.get("/health/ready").status_code == 503, timeout=5, message="readiness 503")
        assert server.get("/health/live").status_code == 200
        second_at = time.monotonic()
        server.signal(second)
        code = server.wait(timeout=5)
        elapsed = time.monotonic() - second_at
        assert code == 128 + second
        assert elapsed < 2.0, elapsed
        wait_for(lambda: all(process_gone(pid) for pid in worker_pids), timeout=5, message="the workers to exit")
        wait_for(lambda: kds_backends(database_url) == 0, timeout=5, message="the server's connections to close")
        assert messages(server, "shutdown: second signal, exiting now")
        print(f"\nworkers={workers}: second signal -> exit {code} after {elapsed * 1000:.0f} ms")
    finally:
        server.stop()


def test_drain_timeout_cuts_what_is_left_and_cancels_its_query(database_url: str, tmp_path: Path,
                                                               executor: ThreadPoolExecutor) -> None:  # fmt: skip
    server = start(database_url, "--shutdown-delay", "0", "--drain-timeout", "1", "--pool-size", "1",
                   log_path=tmp_path / "serve.log")  # fmt: skip
    try:
        with psycopg.connect(database_url) as locker:
            locker.execute(LOCK)
            stuck = executor.submit(httpx.get, server.url(f"/api/v1/incidents?cluster={uuid.uuid4()}"), timeout=30)
            wait_for(lambda: kds_backends(database_url, waiting_on_lock=True) == 1, timeout=10,
                     message="a waiting query")  # fmt: skip
            sigterm_at = time.monotonic()
            server.signal(signal.SIGTERM)
            code = server.wait(timeout=0 + 1 + 2)
            assert code == 0
            assert time.monotonic() - sigterm_at <= 3
            # still holding the lock: the server cancelled its query and closed every connection
            wait_for(lambda: kds_backends(database_url) == 0, timeout=5, message="the server's connections to close")
        with pytest.raises(httpx.HTTPError):
            stuck.result(timeout=10)
        cut = messages(server, "shutdown step 3/4: drain timeout, requests cut")
        assert cut and cut[0]["in_flight"] == 1 and cut[0]["level"] == "warning"
        assert messages(server, "shutdown step 4/4")[0]["cancelled_queries"] == 1
    finally:
        server.stop()


def test_a_signal_during_start_up_still_shuts_down_in_order(database_url: str, tmp_path: Path) -> None:
    server = spawn(database_url, "--shutdown-delay", "0.5", "--pool-size", "1", log_path=tmp_path / "serve.log",
                   workers=2)  # fmt: skip
    try:
        # the workers are being started and have not acknowledged yet
        wait_for(lambda: "Starting worker" in server.log_text(), timeout=60, interval=0.001, message="a worker start")
        server.signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
        assert len(messages(server, "shutdown complete")) == 2
        wait_for(lambda: kds_backends(database_url) == 0, timeout=5, message="the server's connections to close")
    finally:
        server.stop()
