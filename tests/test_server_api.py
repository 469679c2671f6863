"""``kds serve`` over HTTP: one real server (2 workers) on a database with known incidents.

The server is shared by the module (no test here changes it); the rows are the CLI tests' rows.
"""

from __future__ import annotations

import http.client
import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import psycopg
import pytest

from kds.query.models import IncidentDetail, IncidentList
from kds.query.vocabulary import PARAMETERS
from tests import factories
from tests.pg import PgCluster
from tests.serving import Server, running, wait_for
from tests.test_cli_incidents import expected_ids, row_spec

PROBLEM = "https://api.kubernaut.io/problems/"
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
DETAIL = {
    "alert_labels": {"pod": "web-1", "team": "支付"},
    "alert_annotations": {"summary": "memory above 90%"},
    "action_parameters": {"replicas": 3, "dry_run": False},
    "alert_fingerprint": "fp-123",
    "model_reasoning": "memory grows linearly; restart",
    "execution_error": "none",
}


@pytest.fixture(scope="module")
def dataset(pg_cluster: PgCluster) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """The CLI tests' 40 incidents plus one with every detail field; the URL and the rows."""
    with pg_cluster.fresh_database() as url:
        rows = []
        with psycopg.connect(url, autocommit=True) as conn:
            for i in range(40):
                spec = row_spec(i)
                spec["id"] = factories.incident(conn, resource_name=f"app-{i % 7}", **spec)
                spec["timestamp"] = factories.BASE_TIME + timedelta(minutes=spec["minutes"])
                rows.append(spec)
            detail = {"minutes": -60, "namespace": "details", "alert_severity": "info", "cluster_name": "dc",
                      "environment": "test", "action_type": "restart_pod", "alert_name": "Detailed"}  # fmt: skip
            fired = factories.BASE_TIME - timedelta(minutes=61)
            started, ended = factories.BASE_TIME - timedelta(minutes=60), factories.BASE_TIME - timedelta(minutes=59)
            detail["id"] = factories.incident(
                conn, resource_name="detailed", kind="Pod", alert_firing_time=fired, execution_start_time=started,
                execution_end_time=ended, execution_duration_ms=60000, effectiveness_score=0.75,
                correlation_id="corr-1", **DETAIL, **detail,
            )  # fmt: skip
            detail["timestamp"] = factories.BASE_TIME + timedelta(minutes=-60)
            rows.append(detail)
        yield url, rows


@pytest.fixture(scope="module")
def server(dataset: tuple[str, list[dict[str, Any]]], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    url, _ = dataset
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with running(url, "--pool-size", "2", "--shutdown-delay", "0", log_path=log, workers=2) as served:
        yield served


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30.0) as http:
        yield http


@pytest.fixture
def rows(dataset: tuple[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return dataset[1]


def ids(document: dict[str, Any]) -> list[int]:
    return [incident["id"] for incident in document["data"]]


def assert_problem(response: httpx.Response, status: int, slug: str, instance: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == PROBLEM + slug
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["instance"] == instance
    assert body["request_id"] == response.headers["x-request-id"]
    return body


# -- validation (SPEC 3 over HTTP) ------------------------------------------------------------------

VALIDATION = [
    ("limit=0", "invalid-limit", "limit", "got 0"),
    ("limit=1001", "invalid-limit", "limit", "got 1001"),
    ("limit=ten", "invalid-limit", "limit", "'ten'"),
    ("offset=-1", "invalid-offset", "offset", "got -1"),
    ("offset=x", "invalid-offset", "offset", "'x'"),
    ("severity=urgent", "invalid-severity", "severity", "'urgent'"),
    ("environment=prod", "invalid-environment", "environment", "'prod'"),
    ("since=yesterday", "invalid-time-range", "since", "'yesterday'"),
    ("until=2026-13-45", "invalid-time-range", "until", "'2026-13-45'"),
    ("since=2026-11-02T00:00:00Z&until=2026-11-01T00:00:00Z", "invalid-time-range", "since", "2026-11-02"),
    ("cursor=not-a-cursor", "invalid-cursor", "cursor", "not-a-cursor"),
    ("namespace=" + "n" * 254, "invalid-parameter", "namespace", "254"),
    ("cluster=a%00b", "invalid-parameter", "cluster", "a\\x00b"),
    ("alert_name=x%01y", "invalid-parameter", "alert_name", "x\\x01y"),
    ("namespace=a&namespace=b", "invalid-parameter", "namespace", "2 times"),
    ("namepsace=default", "invalid-parameter", "namepsace", "'namepsace'"),
    ("foo=", "invalid-parameter", "foo", "'foo'"),
]


@pytest.mark.parametrize(("query", "slug", "name", "shown"), VALIDATION)
def test_every_validation_slug_is_a_400_problem(client: httpx.Client, query: str, slug: str, name: str,
                                                shown: str) -> None:  # fmt: skip
    response = client.get(f"/api/v1/incidents?{query}")
    body = assert_problem(response, 400, slug, "/api/v1/incidents")
    assert shown in body["detail"]
    assert body["errors"][0]["name"] == name
    assert body["errors"][0]["detail"] == body["detail"]


def test_two_invalid_parameters_are_both_listed_first_decides(client: httpx.Client) -> None:
    response = client.get("/api/v1/incidents?severity=urgent&limit=0&bogus=1")
    body = assert_problem(response, 400, "invalid-limit", "/api/v1/incidents")
    assert body["title"] == "Invalid limit"
    assert body["errors"] == [
        {"name": "limit", "detail": "limit must be between 1 and 1000, got 0"},
        {
            "name": "severity",
            "detail": "severity must be one of info, warning, critical, high, medium, low, got 'urgent'",
        },
        {"name": "bogus", "detail": "unknown query parameter 'bogus'"},
    ]


# -- results -------------------------------------------------------------------------------------

FILTERS = [
    ({"namespace": "payments"}, {"namespace": "payments"}),
    ({"namespace": "支付服务"}, {"namespace": "支付服务"}),
    ({"namespace": "طلبات-العملاء"}, {"namespace": "طلبات-العملاء"}),
    ({"severity": "HIGH"}, {"alert_severity": "high"}),
    ({"cluster": "dev-c"}, {"cluster_name": "dev-c"}),
    ({"environment": "Staging"}, {"environment": "staging"}),
    ({"action_type": "scale_deployment"}, {"action_type": "scale_deployment"}),
    ({"alert_name": "ระบบ🔥ล่ม"}, {"alert_name": "ระบบ🔥ล่ม"}),
    ({"namespace": "default", "severity": "critical"}, {"namespace": "default", "alert_severity": "critical"}),
    ({"namespace": "payments", "cluster": "prod-b", "action_type": "scale_deployment", "environment": ""},
     {"namespace": "payments", "cluster_name": "prod-b", "action_type": "scale_deployment"}),
]  # fmt: skip


@pytest.mark.parametrize(("params", "where"), FILTERS)
def test_filters_return_exactly_the_expected_rows(client: httpx.Client, rows: list[dict[str, Any]],
                                                  params: dict[str, str], where: dict[str, Any]) -> None:  # fmt: skip
    response = client.get("/api/v1/incidents", params={**params, "limit": "1000"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    expected = expected_ids(rows, **where)
    assert expected
    assert ids(document) == expected
    assert document["pagination"] == {
        "limit": 1000, "offset": 0, "total": len(expected), "has_more": False, "next_cursor": None,
    }  # fmt: skip


def test_default_page_order_numbers_and_timestamps(client: httpx.Client, rows: list[dict[str, Any]]) -> None:
    document = client.get("/api/v1/incidents").json()
    IncidentList.model_validate(document)
    assert ids(document) == expected_ids(rows)
    assert document["pagination"] == {"limit": 100, "offset": 0, "total": 41, "has_more": False, "next_cursor": None}
    order = ids(document)
    assert order.index(rows[11]["id"]) == order.index(rows[10]["id"]) - 1  # same timestamp: higher id first
    for incident in document["data"]:
        assert RFC3339_UTC.match(incident["action_timestamp"]), incident["action_timestamp"]
        assert type(incident["model_confidence"]) is float
        assert incident["effectiveness_score"] is None or type(incident["effectiveness_score"]) is float
    first = document["data"][0]
    assert first["resource"] == {"kind": "Deployment", "name": f"app-{39 % 7}"}
    assert first["model_confidence"] == 0.9


def test_time_range_since_inclusive_until_exclusive(client: httpx.Client, rows: list[dict[str, Any]]) -> None:
    since = (factories.BASE_TIME + timedelta(minutes=100)).isoformat()
    until = (factories.BASE_TIME + timedelta(minutes=200)).isoformat()
    document = client.get("/api/v1/incidents", params={"since": since, "until": until}).json()
    expected = [r["id"] for r in sorted(rows, key=lambda r: (r["timestamp"], r["id"]), reverse=True)
                if 100 <= r["minutes"] < 200]  # fmt: skip
    assert ids(document) == expected


def test_no_match_is_an_empty_list_not_null(client: httpx.Client) -> None:
    response = client.get("/api/v1/incidents?namespace=nowhere")
    assert response.status_code == 200
    assert response.json() == {
        "data": [], "pagination": {"limit": 100, "offset": 0, "total": 0, "has_more": False, "next_cursor": None},
    }  # fmt: skip


def test_offset_and_cursor_paging_visit_every_row_once(client: httpx.Client, rows: list[dict[str, Any]]) -> None:
    everything = expected_ids(rows)
    by_offset: list[int] = []
    for offset in range(0, 41, 7):
        document = client.get("/api/v1/incidents", params={"limit": 7, "offset": offset}).json()
        assert document["pagination"]["total"] == 41
        by_offset += ids(document)
    assert by_offset == everything

    by_cursor: list[int] = []
    params: dict[str, Any] = {"limit": 7}
    while True:
        document = client.get("/api/v1/incidents", params=params).json()
        by_cursor += ids(document)
        assert document["pagination"]["total"] == 41
        cursor = document["pagination"]["next_cursor"]
        if cursor is None:
            assert document["pagination"]["has_more"] is False
            break
        assert document["pagination"]["has_more"] is True
        params = {"limit": 7, "cursor": cursor}
    assert by_cursor == everything


def test_cursor_with_other_filters_is_invalid_cursor(client: httpx.Client) -> None:
    cursor = client.get("/api/v1/incidents?namespace=payments&limit=2").json()["pagination"]["next_cursor"]
    response = client.get("/api/v1/incidents", params={"namespace": "default", "cursor": cursor})
    body = assert_problem(response, 400, "invalid-cursor", "/api/v1/incidents")
    assert body["detail"] == "cursor was issued for different filters; repeat the same filters"


def test_ndjson_streams_every_matching_row(client: httpx.Client, rows: list[dict[str, Any]]) -> None:
    headers = {"Accept": "application/x-ndjson"}
    response = client.get("/api/v1/incidents?limit=3&offset=5", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    lines = response.text.splitlines()
    assert [orjson.loads(line)["id"] for line in lines] == expected_ids(rows)
    assert response.text.endswith("\n")
    filtered = client.get("/api/v1/incidents?namespace=payments", headers=headers)
    assert [orjson.loads(line)["id"] for line in filtered.text.splitlines()] == expected_ids(rows, namespace="payments")
    empty = client.get("/api/v1/incidents?namespace=nowhere", headers=headers)
    assert (empty.status_code, empty.text) == (200, "")
    invalid = client.get("/api/v1/incidents?severity=urgent", headers=headers)
    assert_problem(invalid, 400, "invalid-severity", "/api/v1/incidents")


# -- one incident ----------------------------------------------------------------------------------


def test_get_incident_with_detail_fields(client: httpx.Client, rows: list[dict[str, Any]]) -> None:
    incident_id = rows[-1]["id"]
    response = client.get(f"/api/v1/incidents/{incident_id}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    IncidentDetail.model_validate(body)
    assert body["id"] == incident_id
    for key, value in DETAIL.items():
        assert body[key] == value, key
    assert (body["alert_firing_time"], body["execution_start_time"], body["execution_end_time"]) == (
        "2026-11-01T10:59:00.000000Z", "2026-11-01T11:00:00.000000Z", "2026-11-01T11:01:00.000000Z",
    )  # fmt: skip
    assert body["action_timestamp"] == "2026-11-01T11:00:00.000000Z"
    assert (body["namespace"], body["resource"], body["execution_duration_ms"]) == (
        "details", {"kind": "Pod", "name": "detailed"}, 60000,
    )  # fmt: skip
    assert type(body["effectiveness_score"]) is float and body["effectiveness_score"] == 0.75


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        ("abc", "abc"),
        ("1' OR '1'='1", "1'%20OR%20'1'%3D'1"),
        ("99999999999999999999", "99999999999999999999"),
        ("9223372036854775808", "9223372036854775808"),
        ("0", "0"),
        ("-1", "-1"),
        ("1.5", "1.5"),
        ("12a", "12a"),
        ("%00", "%2500"),
    ],
)
def test_invalid_ids_are_400_invalid_id(client: httpx.Client, raw: str, path: str) -> None:
    response = client.get(f"/api/v1/incidents/{path}")
    body = assert_problem(response, 400, "invalid-id", f"/api/v1/incidents/{path}")
    assert body["detail"].endswith(f"got {raw!r}")
    assert body["errors"] == [{"name": "id", "detail": body["detail"]}]


def test_missing_incident_is_404_not_found(client: httpx.Client) -> None:
    response = client.get("/api/v1/incidents/9223372036854775807")
    body = assert_problem(response, 404, "not-found", "/api/v1/incidents/9223372036854775807")
    assert body["detail"] == "incident 9223372036854775807 does not exist"
    assert "errors" not in body


# -- injection corpus ----------------------------------------------------------------------------------

INJECTIONS = [
    "'; DROP TABLE resource_action_traces--",
    "' OR '1'='1",
    "' OR 1=1--",
    "1; DELETE FROM resource_action_traces",
    "' UNION SELECT * FROM pg_user--",
    "' UNION SELECT NULL,NULL,NULL--",
    "test'; --",
    '"; DROP TABLE x; --',
    "1' AND SLEEP(5)--",
    "'; SELECT pg_sleep(5)--",
    "admin'--",
    "' OR 'x'='x' /*",
    "%' OR '%'='",
    "$$; DROP TABLE resource_references; $$",
    "E'\\x27' OR 1=1",
    "'||(SELECT current_user)||'",
    "1) OR (1=1",
    "' AND 1=CAST((SELECT version()) AS int)--",
    "\\'; TRUNCATE notification_audit; --",
    "'; COPY resource_action_traces TO '/tmp/x'; --",
    "\u02bc OR \u02bc1\u02bc=\u02bc1",  # modifier-letter apostrophes
    "'\u2028OR 1=1",
]
# Driver or SQL text that no payload contains: table aliases, column names, error vocabulary.
SQL_LEAKS = re.compile(
    r"syntax error|psycopg|SQLSTATE|LINE \d|Traceback|action_histories|alert_severity|cluster_name|"
    r"action_timestamp|\brat\.|\brr\.|\bah\.|unterminated|operator does not exist",
    re.IGNORECASE,
)


def _fingerprint(url: str) -> tuple[Any, ...]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT (SELECT count(*) FROM resource_action_traces), (SELECT count(*) FROM resource_references),"
            " (SELECT count(*) FROM notification_audit),"
            " (SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM resource_action_traces t)"
        ).fetchone()


def test_injection_corpus_across_every_parameter(client: httpx.Client, dataset: tuple[str, Any]) -> None:
    url, _ = dataset
    before = _fingerprint(url)
    assert len(INJECTIONS) >= 20
    checked = 0
    for payload in INJECTIONS:
        responses = [client.get(f"/api/v1/incidents/{quote(payload, safe='')}")]
        for name in PARAMETERS:
            responses.append(client.get("/api/v1/incidents", params={name: payload}))
            responses.append(
                client.get("/api/v1/incidents", params={name: payload}, headers={"Accept": "application/x-ndjson"})
            )
        for response in responses:
            checked += 1
            assert response.status_code < 500, (payload, response.text)
            assert response.status_code in (200, 400, 404), (payload, response.status_code)
            assert not SQL_LEAKS.search(response.text), (payload, response.text)
            if response.status_code == 200 and response.headers["content-type"] == "application/json":
                document = response.json()
                assert document["data"] == [] and document["pagination"]["total"] == 0, payload
            elif response.status_code == 200:
                assert response.text == "", payload
            else:
                assert response.headers["content-type"] == "application/problem+json"
    assert checked == len(INJECTIONS) * (1 + 2 * len(PARAMETERS))
    assert _fingerprint(url) == before


# -- errors on any path ------------------------------------------------------------------------------


def test_unknown_path_wrong_method_and_oversized_body(client: httpx.Client) -> None:
    assert_problem(client.get("/api/v2/nothing"), 404, "not-found", "/api/v2/nothing")
    assert_problem(client.get("/api/v1/incidents/1/extra"), 404, "not-found", "/api/v1/incidents/1/extra")
    wrong = client.post("/api/v1/incidents", json={})
    body = assert_problem(wrong, 405, "method-not-allowed", "/api/v1/incidents")
    assert wrong.headers["allow"] == "GET" and "GET" in body["detail"]
    assert_problem(client.delete("/health/live"), 405, "method-not-allowed", "/health/live")
    big = client.request("GET", "/api/v1/incidents", content=b"x" * 70_000)
    assert_problem(big, 413, "payload-too-large", "/api/v1/incidents")


def test_request_ids_kept_replaced_and_on_every_response(client: httpx.Client, server: Server) -> None:
    for path, status in [("/api/v1/incidents?limit=1", 200), ("/api/v1/incidents?limit=0", 400),
                         ("/nowhere", 404), ("/health/live", 200), ("/health/ready", 200), ("/health", 200),
                         ("/metrics", 200), ("/api/v1/openapi.json", 200)]:  # fmt: skip
        kept = client.get(path, headers={"X-Request-ID": "trace-1.2_3-ABC"})
        assert (kept.status_code, kept.headers["x-request-id"]) == (status, "trace-1.2_3-ABC"), path
        fresh = client.get(path)
        assert UUID4.match(fresh.headers["x-request-id"]), path
        assert fresh.headers["x-content-type-options"] == "nosniff"
        assert "server" not in fresh.headers
    for malformed in [b"has space", b"semi;colon", "\u00fc".encode(), b"x" * 129, b"a/b", b""]:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        connection.putrequest("GET", "/api/v1/incidents?limit=0")
        connection.putheader("X-Request-ID", malformed)
        connection.endheaders()
        response = connection.getresponse()
        replaced = response.getheader("x-request-id")
        assert UUID4.match(replaced) and orjson.loads(response.read())["request_id"] == replaced, malformed
        connection.close()
    longest = "y" * 128
    assert client.get("/health/live", headers={"X-Request-ID": longest}).headers["x-request-id"] == longest


def test_health_bodies(client: httpx.Client) -> None:
    for path, body in [("/health/live", {"status": "alive"}), ("/health/ready", {"status": "ready"}),
                       ("/health", {"status": "healthy", "database": "connected"})]:  # fmt: skip
        response = client.get(path)
        assert (response.status_code, response.headers["content-type"], response.json()) == (
            200, "application/json", body,
        )  # fmt: skip


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


# -- OpenAPI ------------------------------------------------------------------------------------------


def test_openapi_document_is_valid_and_generated_from_the_models(client: httpx.Client) -> None:
    from openapi_spec_validator import validate

    response = client.get("/api/v1/openapi.json")
    assert (response.status_code, response.headers["content-type"]) == (200, "application/json")
    document = response.json()
    validate(document)
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == {
        "/api/v1/incidents", "/api/v1/incidents/{id}", "/health", "/health/ready", "/health/live", "/metrics",
        "/api/v1/openapi.json", "/api/v1/audit/notifications",
    }  # fmt: skip
    schemas = document["components"]["schemas"]
    assert set(IncidentDetail.model_fields) == set(schemas["IncidentDetail"]["properties"])
    names = [p["name"] for p in document["paths"]["/api/v1/incidents"]["get"]["parameters"]]
    assert sorted(names) == sorted(PARAMETERS)


# -- metrics (aggregated over both workers) --------------------------------------------------------------


def _samples(text: str, name: str) -> dict[str, float]:
    pattern = re.compile(rf"^{name}\{{(.*)\}} (\S+)$", re.MULTILINE)
    return {labels: float(value) for labels, value in pattern.findall(text)}


def test_metrics_by_route_template_aggregated_across_workers(server: Server, dataset: tuple[str, Any]) -> None:
    _, rows = dataset
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
