"""``kds serve`` over real sockets with two worker processes: raw requests, the request log, metrics.

The request/response contract itself is tested in process (``test_server_api.py``); here is what
needs the real server: bytes no HTTP client library sends, one log line per request in the
server's output, and metrics aggregated across workers.
"""

from __future__ import annotations

import http.client
import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import orjson
import pytest

from tests.factories import RFC3339_UTC, UUID4
from tests.serving import Server, running, wait_for


@pytest.fixture(scope="module")
def server(api_dataset: tuple[str, list[dict[str, Any]]], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    url, _ = api_dataset
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with running(url, "--pool-size", "2", "--shutdown-delay", "0", log_path=log, workers=2) as served:
        yield served


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30.0) as http:
        yield http


def test_malformed_request_ids_over_a_raw_socket_and_no_server_banner(client: httpx.Client, server: Server) -> None:
    for path in ("/api/v1/incidents?limit=1", "/nowhere", "/health/live", "/metrics"):
        assert "server" not in client.get(path).headers, path
    for malformed in [b"has space", b"semi;colon", "\u00fc".encode(), b"x" * 129, b"a/b", b""]:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        connection.putrequest("GET", "/api/v1/incidents?limit=0")
        connection.putheader("X-Request-ID", malformed)
        connection.endheaders()
        response = connection.getresponse()
        replaced = response.getheader("x-request-id")
        assert UUID4.match(replaced) and orjson.loads(response.read())["request_id"] == replaced, malformed
        connection.close()


def test_one_json_log_line_per_request(client: httpx.Client, server: Server) -> None:
    request_id = f"log-test-{uuid.uuid4().hex}"
    client.get("/api/v1/incidents/12345678?x=1", headers={"X-Request-ID": request_id})

    def line() -> list[dict[str, Any]]:
        return [r for r in server.log_records() if r.get("request_id") == request_id]

    records = wait_for(line, timeout=10, message="the request's log line")
    assert len(records) == 1
    record = records[0]
    assert {"time", "level", "request_id", "method", "route", "status", "duration_ms"} <= set(record)
    assert (record["level"], record["method"], record["route"], record["status"]) == (
        "info", "GET", "/api/v1/incidents/<id>", 404,
    )  # fmt: skip
    assert RFC3339_UTC.match(record["time"])
    assert isinstance(record["duration_ms"], float)


# -- metrics (aggregated over both workers) --------------------------------------------------------------


def _samples(text: str, name: str) -> dict[str, float]:
    pattern = re.compile(rf"^{name}\{{(.*)\}} (\S+)$", re.MULTILINE)
    return {labels: float(value) for labels, value in pattern.findall(text)}


def test_metrics_by_route_template_aggregated_across_workers(server: Server, api_dataset: tuple[str, Any]) -> None:
    _, rows = api_dataset
    marker = f"metrics-{uuid.uuid4().hex[:8]}"

    def get(i: int) -> int:
        url = server.url(f"/api/v1/incidents/{rows[i % 40]['id']}")
        return httpx.get(url, headers={"X-Request-ID": f"{marker}-{i}"}, timeout=30).status_code

    def logged() -> list[dict[str, Any]]:
        return [r for r in server.log_records() if str(r.get("request_id", "")).startswith(marker)]

    key = 'method="GET",route="/api/v1/incidents/<id>",status="200"'
    before = _samples(httpx.get(server.url("/metrics")).text, "http_requests_total").get(key, 0.0)
    sent = 0
    with ThreadPoolExecutor(8) as pool:
        # fresh connections, concurrently: the kernel hands them to both workers
        for _ in range(20):
            assert set(pool.map(get, range(sent, sent + 16))) == {200}
            sent += 16
            records = wait_for(lambda n=sent: len(logged()) == n and logged(), timeout=10, message="the log lines")
            if len({r["pid"] for r in records}) == 2:
                break
    assert len({r["pid"] for r in logged()}) == 2, "both workers served requests"

    def pool_settled() -> str | None:
        text = httpx.get(server.url("/metrics")).text
        available = _samples(text, "datastorage_db_pool_connections").get('pool="primary",state="available"')
        return text if available == 4.0 else None

    text = wait_for(pool_settled, timeout=10, message="both workers to publish their idle pools")
    assert _samples(text, "http_requests_total")[key] - before == sent
    routes = set(re.findall(r'route="([^"]*)"', text))
    assert all(not re.search(r"/\d", route) for route in routes), routes
    assert {"/api/v1/incidents/<id>", "/api/v1/incidents", "/metrics", "unmatched"} <= routes
    assert _samples(text, "datastorage_query_total")['operation="get_incident",status="success"'] >= sent
    assert _samples(text, "datastorage_db_pool_connections") == {
        'pool="primary",state="size"': 4.0, 'pool="primary",state="available"': 4.0,
        'pool="primary",state="waiting"': 0.0,
    }  # fmt: skip
    assert re.search(r"^datastorage_replica_lag_seconds 0\.0$", text, re.MULTILINE)  # no read database
    assert _samples(text, "datastorage_validation_failures_total")['field="limit",reason="invalid-limit"'] >= 1
    assert 'http_request_duration_seconds_bucket{le="0.005",method="GET",route="/api/v1/incidents/<id>"}' in text
    assert 'datastorage_query_duration_seconds_count{operation="get_incident"}' in text
    assert re.search(r"^http_requests_in_flight 1\.0$", text, re.MULTILINE)  # this scrape itself
