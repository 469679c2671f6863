"""The HTTP API's request/response contract, in process: status codes, bodies, problems, OpenAPI.

The app is the one ``kds serve`` runs, served over ASGI in the test process (:mod:`tests.inprocess`)
on a database with known incidents, shared by the module (no test here changes it). What needs a
real server (raw sockets, worker processes, logs) is in ``test_server_http.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import psycopg
import pytest

from kds.query.models import IncidentDetail, IncidentList
from kds.query.vocabulary import PARAMETERS
from kds.server.api.watch import WATCH_PARAMETERS
from tests import factories
from tests.factories import DETAIL, RFC3339_UTC, UUID4, expected_ids
from tests.inprocess import InProcessClient, serving_in_process

PROBLEM = "https://api.kubernaut.io/problems/"


@pytest.fixture(scope="module")
def client(api_dataset: tuple[str, list[dict[str, Any]]]) -> Iterator[InProcessClient]:
    url, _ = api_dataset
    with serving_in_process(url, pool_size=2) as served:
        yield served


@pytest.fixture
def rows(api_dataset: tuple[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return api_dataset[1]


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


# -- validation (docs/api.md) over HTTP --------------------------------------------------------------

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
def test_every_validation_slug_is_a_400_problem(client: InProcessClient, query: str, slug: str, name: str,
                                                shown: str) -> None:  # fmt: skip
    response = client.get(f"/api/v1/incidents?{query}")
    body = assert_problem(response, 400, slug, "/api/v1/incidents")
    assert shown in body["detail"]
    assert body["errors"][0]["name"] == name
    assert body["errors"][0]["detail"] == body["detail"]


def test_two_invalid_parameters_are_both_listed_first_decides(client: InProcessClient) -> None:
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
def test_filters_return_exactly_the_expected_rows(client: InProcessClient, rows: list[dict[str, Any]],
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


def test_default_page_order_numbers_and_timestamps(client: InProcessClient, rows: list[dict[str, Any]]) -> None:
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


def test_time_range_since_inclusive_until_exclusive(client: InProcessClient, rows: list[dict[str, Any]]) -> None:
    since = (factories.BASE_TIME + timedelta(minutes=100)).isoformat()
    until = (factories.BASE_TIME + timedelta(minutes=200)).isoformat()
    document = client.get("/api/v1/incidents", params={"since": since, "until": until}).json()
    expected = [r["id"] for r in sorted(rows, key=lambda r: (r["timestamp"], r["id"]), reverse=True)
                if 100 <= r["minutes"] < 200]  # fmt: skip
    assert ids(document) == expected


def test_no_match_is_an_empty_list_not_null(client: InProcessClient) -> None:
    response = client.get("/api/v1/incidents?namespace=nowhere")
    assert response.status_code == 200
    assert response.json() == {
        "data": [], "pagination": {"limit": 100, "offset": 0, "total": 0, "has_more": False, "next_cursor": None},
    }  # fmt: skip


def test_offset_and_cursor_paging_visit_every_row_once(client: InProcessClient, rows: list[dict[str, Any]]) -> None:
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


def test_cursor_with_other_filters_is_invalid_cursor(client: InProcessClient) -> None:
    cursor = client.get("/api/v1/incidents?namespace=payments&limit=2").json()["pagination"]["next_cursor"]
    response = client.get("/api/v1/incidents", params={"namespace": "default", "cursor": cursor})
    body = assert_problem(response, 400, "invalid-cursor", "/api/v1/incidents")
    assert body["detail"] == "cursor was issued for different filters; repeat the same filters"


def test_ndjson_streams_every_matching_row(client: InProcessClient, rows: list[dict[str, Any]]) -> None:
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


def test_get_incident_with_detail_fields(client: InProcessClient, rows: list[dict[str, Any]]) -> None:
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
def test_invalid_ids_are_400_invalid_id(client: InProcessClient, raw: str, path: str) -> None:
    response = client.get(f"/api/v1/incidents/{path}")
    body = assert_problem(response, 400, "invalid-id", f"/api/v1/incidents/{path}")
    assert body["detail"].endswith(f"got {raw!r}")
    assert body["errors"] == [{"name": "id", "detail": body["detail"]}]


def test_missing_incident_is_404_not_found(client: InProcessClient) -> None:
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


def test_injection_corpus_across_every_parameter(client: InProcessClient, api_dataset: tuple[str, Any]) -> None:
    url, _ = api_dataset
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


def test_unknown_path_wrong_method_and_oversized_body(client: InProcessClient) -> None:
    assert_problem(client.get("/api/v2/nothing"), 404, "not-found", "/api/v2/nothing")
    assert_problem(client.get("/api/v1/incidents/1/extra"), 404, "not-found", "/api/v1/incidents/1/extra")
    wrong = client.post("/api/v1/incidents", json={})
    body = assert_problem(wrong, 405, "method-not-allowed", "/api/v1/incidents")
    assert wrong.headers["allow"] == "GET" and "GET" in body["detail"]
    assert_problem(client.delete("/health/live"), 405, "method-not-allowed", "/health/live")
    big = client.request("GET", "/api/v1/incidents", content=b"x" * 70_000)
    assert_problem(big, 413, "payload-too-large", "/api/v1/incidents")


def test_request_ids_kept_or_fresh_and_nosniff_on_every_response(client: InProcessClient) -> None:
    for path, status in [("/api/v1/incidents?limit=1", 200), ("/api/v1/incidents?limit=0", 400),
                         ("/nowhere", 404), ("/health/live", 200), ("/health/ready", 200), ("/health", 200),
                         ("/metrics", 200), ("/api/v1/openapi.json", 200)]:  # fmt: skip
        kept = client.get(path, headers={"X-Request-ID": "trace-1.2_3-ABC"})
        assert (kept.status_code, kept.headers["x-request-id"]) == (status, "trace-1.2_3-ABC"), path
        fresh = client.get(path)
        assert UUID4.match(fresh.headers["x-request-id"]), path
        assert fresh.headers["x-content-type-options"] == "nosniff"
    for malformed in ["has space", "semi;colon", "x" * 129, "a/b"]:
        response = client.get("/api/v1/incidents?limit=0", headers={"X-Request-ID": malformed})
        replaced = response.headers["x-request-id"]
        assert UUID4.match(replaced) and response.json()["request_id"] == replaced, malformed
    longest = "y" * 128
    assert client.get("/health/live", headers={"X-Request-ID": longest}).headers["x-request-id"] == longest


def test_health_bodies(client: InProcessClient) -> None:
    for path, body in [("/health/live", {"status": "alive"}), ("/health/ready", {"status": "ready"}),
                       ("/health", {"status": "healthy", "database": "connected"})]:  # fmt: skip
        response = client.get(path)
        assert (response.status_code, response.headers["content-type"], response.json()) == (
            200, "application/json", body,
        )  # fmt: skip


# -- OpenAPI ------------------------------------------------------------------------------------------


def test_openapi_document_is_valid_and_generated_from_the_models(client: InProcessClient) -> None:
    from openapi_spec_validator import validate

    response = client.get("/api/v1/openapi.json")
    assert (response.status_code, response.headers["content-type"]) == (200, "application/json")
    document = response.json()
    validate(document)
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == {
        "/api/v1/incidents", "/api/v1/incidents/{id}", "/health", "/health/ready", "/health/live", "/metrics",
        "/api/v1/openapi.json", "/api/v1/audit/notifications", "/api/v1/incidents/summary",
    }  # fmt: skip
    schemas = document["components"]["schemas"]
    assert set(IncidentDetail.model_fields) == set(schemas["IncidentDetail"]["properties"])
    names = [p["name"] for p in document["paths"]["/api/v1/incidents"]["get"]["parameters"]]
    assert sorted(names) == sorted([*PARAMETERS, *WATCH_PARAMETERS])
