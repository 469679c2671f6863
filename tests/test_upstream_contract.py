"""The replaced service's own integration tests, replayed against a real ``kds serve``.

kds replaces the platform's Go data-storage service (public repository ``jordigilh/kubernaut``),
whose clients keep running. Each test below repeats the requests of one upstream test, from the
versions before ``alert_*`` was renamed ``signal_*``:

- ``test/integration/datastorage/01_read_api_integration_test.go`` (list, filters, get, 404, pagination, health)
- ``test/integration/datastorage/02_pagination_stress_test.go`` (limit/offset boundaries)
- ``test/integration/datastorage/03_security_test.go`` (SQL injection, special characters, no schema leaks)
- ``test/integration/datastorage/http_api_test.go`` (POST /api/v1/audit/notifications: write, RFC 7807
  validation, duplicates), whose bodies are ``json.Marshal`` of ``models.NotificationAudit``
  (``pkg/datastorage/models/notification_audit.go``): every field, zero values included.

The assertions are kds's documented answers (docs/api.md, docs/audit.md). Where kds deliberately
answers differently, a comment starting ``DIFFERENCE`` says so; docs/clients.md lists every one of
them in its table "Differences from the service kds replaces".
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import psycopg
import pytest
from typer.testing import CliRunner

from kds.cli.app import app
from tests import factories
from tests.pg import PgCluster
from tests.serving import running
from tests.upstream import GO_ZERO, go_record

PROBLEM = "https://api.kubernaut.io/problems/"
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
UNICODE_ALERTS = ["تنبيه-الذاكرة", "内存告警", "หน่วยความจำสูง", "🔥memory🔥", "mixed-Ωμέγα-漢字-🚨"]


# --- one server on one database, seeded the way the upstream tests seed theirs ---------------------


@pytest.fixture(scope="module")
def seeded(pg_cluster: PgCluster) -> Iterator[tuple[str, dict[str, Any]]]:
    with pg_cluster.fresh_database() as url:
        ids: dict[str, Any] = {}
        with psycopg.connect(url, autocommit=True) as conn:

            def add(alert: str, severity: str, action: str, minutes: float = 0) -> int:
                return factories.incident(
                    conn, alert_name=alert, alert_severity=severity, action_type=action, minutes=minutes
                )

            # 01_read_api: BR-DS-001 list with filters
            for alert, severity, action in [
                ("test-integration-prod-cpu-high", "critical", "scale"),
                ("test-integration-prod-memory-high", "high", "restart"),
                ("test-integration-staging-cpu-high", "critical", "scale"),
                ("test-integration-dev-disk-space", "low", "check"),
            ]:
                ids[alert] = add(alert, severity, action)
            # BR-DS-002 get by id; BR-DS-007 pagination (25 rows, then 150 more for the default limit)
            ids["getbyid"] = add("test-integration-getbyid", "critical", "scale")
            ids["pagination"] = [add("test-integration-pagination", "high", "scale", i) for i in range(175)]
            # 03_security
            ids["security"] = add("test-security-normal", "high", "scale")
            ids["unicode"] = [add(alert, "warning", "restart_pod") for alert in UNICODE_ALERTS]
            ids["special"] = add("%", "info", "check")  # the wildcard itself, stored as a name
        yield url, ids


@pytest.fixture(scope="module")
def client(seeded: tuple[str, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A client of one real ``kds serve`` (one worker) on the seeded database."""
    log = tmp_path_factory.mktemp("upstream") / "serve.log"
    with (
        running(seeded[0], "--pool-size", "2", "--shutdown-delay", "0", log_path=log) as server,
        httpx.Client(base_url=server.base_url, timeout=30) as http,
    ):
        yield http


@pytest.fixture(scope="module")
def ids(seeded: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return seeded[1]


def problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    document = response.json()
    assert (document["type"], document["status"]) == (PROBLEM + slug, status)
    assert document["instance"] == response.request.url.raw_path.split(b"?")[0].decode()  # a URI reference
    assert document["request_id"] == response.headers["x-request-id"]
    return document


def listed(client: httpx.Client, query: str) -> dict[str, Any]:
    response = client.get("/api/v1/incidents?" + query)
    assert response.status_code == 200, response.text
    assert isinstance(response.json()["data"], list)
    return response.json()


# --- 01_read_api_integration_test.go: BR-DS-001 List Incidents with Filters ----------------------


def test_filter_by_alert_name(client: httpx.Client, ids: dict[str, Any]) -> None:
    data = listed(client, "alert_name=test-integration-prod-cpu-high")["data"]
    assert [(i["id"], i["alert_name"]) for i in data] == [
        (ids["test-integration-prod-cpu-high"], "test-integration-prod-cpu-high")
    ]


def test_filter_by_severity(client: httpx.Client, ids: dict[str, Any]) -> None:
    data = listed(client, "alert_name=test-integration-prod-cpu-high&severity=critical")["data"]
    # DIFFERENCE: the field is "severity" (upstream: "alert_severity"); the filter was already "severity".
    assert [(i["id"], i["severity"]) for i in data] == [(ids["test-integration-prod-cpu-high"], "critical")]
    assert "alert_severity" not in data[0]


def test_filter_by_action_type(client: httpx.Client, ids: dict[str, Any]) -> None:
    data = listed(client, "alert_name=test-integration-prod-cpu-high&action_type=scale")["data"]
    assert [(i["id"], i["action_type"]) for i in data] == [(ids["test-integration-prod-cpu-high"], "scale")]


def test_nonexistent_alert_name_is_an_empty_array_not_null(client: httpx.Client) -> None:
    assert listed(client, "alert_name=nonexistent-alert") == {
        "data": [],
        "pagination": {"limit": 100, "offset": 0, "total": 0, "has_more": False, "next_cursor": None},
    }


def test_list_fields(client: httpx.Client, ids: dict[str, Any]) -> None:
    incident = listed(client, "alert_name=test-integration-staging-cpu-high")["data"][0]
    # DIFFERENCE: "severity" and "cluster" (upstream: "alert_severity", "cluster_name"); namespace and
    # resource come from the resource the trace belongs to.
    assert list(incident) == [
        "id", "action_id", "correlation_id", "alert_name", "severity", "namespace", "cluster", "environment",
        "action_type", "execution_status", "action_timestamp", "resource", "model_used", "model_confidence",
        "effectiveness_score", "execution_duration_ms",
    ]  # fmt: skip
    assert (incident["id"], incident["cluster"], incident["model_confidence"]) == (
        ids["test-integration-staging-cpu-high"],
        "prod-us-east-1",
        0.9,
    )
    assert RFC3339_UTC.match(incident["action_timestamp"])


def test_unknown_query_parameter_is_refused(client: httpx.Client) -> None:
    # DIFFERENCE: upstream ignored parameters it did not know (a typo widened the query to everything);
    # kds answers 400 invalid-parameter naming it.
    document = problem(client.get("/api/v1/incidents?alert_name=x&namespce=prod"), 400, "invalid-parameter")
    assert "namespce" in document["detail"]
    assert [error["name"] for error in document["errors"]] == ["namespce"]


# --- 01_read_api_integration_test.go: BR-DS-002 Get Incident by ID --------------------------------


def test_get_incident_by_id(client: httpx.Client, ids: dict[str, Any]) -> None:
    response = client.get(f"/api/v1/incidents/{ids['getbyid']}")
    assert response.status_code == 200
    incident = response.json()
    # DIFFERENCE: "severity", not "alert_severity".
    assert (incident["id"], incident["alert_name"], incident["severity"], incident["action_type"]) == (
        ids["getbyid"],
        "test-integration-getbyid",
        "critical",
        "scale",
    )


def test_nonexistent_id_is_an_rfc7807_404(client: httpx.Client) -> None:
    document = problem(client.get("/api/v1/incidents/999999"), 404, "not-found")
    # DIFFERENCE: the title is "Not found" (upstream: "Incident Not Found"); clients match on type.
    assert document["title"] == "Not found"


# --- 01_read_api_integration_test.go: BR-DS-007 Pagination ---------------------------------------


def test_limit_offset_and_exact_total(client: httpx.Client, ids: dict[str, Any]) -> None:
    first = listed(client, "alert_name=test-integration-pagination&limit=10&offset=0")
    second = listed(client, "alert_name=test-integration-pagination&limit=10&offset=10")
    newest_first = ids["pagination"][::-1]
    assert [i["id"] for i in first["data"]] == newest_first[:10]
    assert [i["id"] for i in second["data"]] == newest_first[10:20]
    # the "critical test" upstream: total is the database count, not the page length
    assert first["pagination"]["total"] == 175
    assert (first["pagination"]["limit"], first["pagination"]["has_more"]) == (10, True)


def test_default_limit_is_100(client: httpx.Client) -> None:
    document = listed(client, "alert_name=test-integration-pagination")
    assert (len(document["data"]), document["pagination"]["limit"], document["pagination"]["total"]) == (100, 100, 175)


def test_health_endpoints(client: httpx.Client) -> None:
    assert (client.get("/health").status_code, client.get("/health").json()) == (
        200,
        {"status": "healthy", "database": "connected"},
    )
    # DIFFERENCE: readiness always has a JSON body; upstream's (DD-007) answered 200 or 503 with no body
    # unless shutting down ({"status":"shutting_down","reason":"graceful_shutdown_in_progress"}, as kds).
    assert (client.get("/health/ready").status_code, client.get("/health/ready").json()) == (200, {"status": "ready"})
    assert (client.get("/health/live").status_code, client.get("/health/live").json()) == (200, {"status": "alive"})


# --- 02_pagination_stress_test.go: BR-STORAGE-023 boundaries --------------------------------------


def test_maximum_limit_with_a_filter(client: httpx.Client, ids: dict[str, Any]) -> None:
    assert [i["id"] for i in listed(client, "limit=1000&alert_name=test-security-normal")["data"]] == [ids["security"]]


def test_offset_beyond_the_results_is_an_empty_page(client: httpx.Client) -> None:
    document = listed(client, "limit=100&offset=100000")
    assert (document["data"], document["pagination"]["total"]) == ([], 187)


@pytest.mark.parametrize(
    ("query", "slug", "name"),
    [
        ("limit=1001", "invalid-limit", "limit"),
        ("limit=0", "invalid-limit", "limit"),
        ("offset=-1", "invalid-offset", "offset"),
        ("offset=99999999999999999999", "invalid-offset", "offset"),  # past 2^63-1: never a 500
    ],
)
def test_out_of_range_paging_is_an_rfc7807_400(client: httpx.Client, query: str, slug: str, name: str) -> None:
    document = problem(client.get("/api/v1/incidents?" + query), 400, slug)
    assert document["title"] and document["detail"]
    assert [error["name"] for error in document["errors"]] == [name]


def test_cli_offset_past_bigint_is_invalid_offset(seeded: tuple[str, dict[str, Any]]) -> None:
    result = CliRunner().invoke(
        app, ["incidents", "list", "--database-url", seeded[0], "--offset", "99999999999999999999", "-o", "json"]
    )
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("invalid-offset: ")
    assert "99999999999999999999" in result.stderr


# --- 03_security_test.go: BR-STORAGE-025 SQL injection prevention ---------------------------------

INJECTIONS = [
    "' OR '1'='1' UNION SELECT * FROM resource_action_traces--",
    "' OR '1'='1",
    "'; DROP TABLE resource_action_traces--",
    "'; DELETE FROM resource_action_traces WHERE '1'='1",
    "' OR SLEEP(5)--",
    "0x27204f52202731273d2731",
    "'; TRUNCATE TABLE resource_action_traces--",
    "'; ALTER TABLE resource_action_traces DROP COLUMN alert_name--",
    "' AND 1=CAST((SELECT table_name FROM information_schema.tables LIMIT 1) AS INT)--",
    "' UNION SELECT table_schema, table_name FROM information_schema.tables--",
]


@pytest.mark.parametrize("payload", INJECTIONS)
def test_injection_in_alert_name_is_a_literal_that_matches_nothing(client: httpx.Client, payload: str) -> None:
    document = listed(client, "alert_name=" + quote(payload, safe=""))
    assert (document["data"], document["pagination"]["total"]) == ([], 0)


def test_injection_in_severity_is_an_invalid_severity(client: httpx.Client) -> None:
    # upstream accepted 200 or 400; kds validates severity against its vocabulary
    response = client.get("/api/v1/incidents", params={"severity": INJECTIONS[0]})
    detail = problem(response, 400, "invalid-severity")["detail"]
    assert detail.startswith("severity must be one of info, warning, critical, high, medium, low")
    for leak in ("syntax error", "relation", "column"):  # the value received is named, nothing else
        assert leak not in detail.lower()


@pytest.mark.parametrize("value", ["'", '"', "`;", "--", "/*", "*/", "\\", "%", "_", "$", "@"])
def test_special_characters_are_matched_exactly(client: httpx.Client, ids: dict[str, Any], value: str) -> None:
    expected = [ids["special"]] if value == "%" else []  # "%" and "_" are no wildcards
    assert [i["id"] for i in listed(client, "alert_name=" + quote(value, safe=""))["data"]] == expected


@pytest.mark.parametrize(
    "raw",
    [
        "1' OR '1'='1",
        "1; DROP TABLE resource_action_traces",
        "1 UNION SELECT * FROM resource_action_traces",
        "1 OR 1=1",
    ],
)
def test_injection_in_the_id_is_invalid_id(client: httpx.Client, raw: str) -> None:
    # upstream accepted 400 or 404; kds documents 400 invalid-id for anything that is not an id
    problem(client.get("/api/v1/incidents/" + quote(raw, safe="")), 400, "invalid-id")


def test_tables_are_intact_after_the_injection_attempts(
    client: httpx.Client, seeded: tuple[str, dict[str, Any]]
) -> None:
    for payload in INJECTIONS:
        client.get("/api/v1/incidents", params={"alert_name": payload})
    with psycopg.connect(seeded[0]) as conn:
        assert conn.execute(
            "SELECT count(*) FROM resource_action_traces WHERE alert_name = 'test-security-normal'"
        ).fetchone() == (1,)
        assert conn.execute(
            "SELECT count(*) FROM information_schema.columns"
            " WHERE table_name = 'resource_action_traces' AND column_name = 'alert_name'"
        ).fetchone() == (1,)


@pytest.mark.parametrize("alert", UNICODE_ALERTS)
def test_unicode_names_are_stored_and_matched_exactly(client: httpx.Client, ids: dict[str, Any], alert: str) -> None:
    data = listed(client, "alert_name=" + quote(alert, safe=""))["data"]
    assert [(i["id"], i["alert_name"]) for i in data] == [(ids["unicode"][UNICODE_ALERTS.index(alert)], alert)]


# --- http_api_test.go: POST /api/v1/audit/notifications -----------------------------------------


def valid_audit(notification_id: str) -> dict[str, Any]:
    """The upstream BeforeEach record (delivery_status set, error_message omitted by omitempty)."""
    return go_record(
        remediation_id="test-remediation-1",
        notification_id=notification_id,
        recipient="test@example.com",
        channel="email",
        message_summary="Test notification message",
        status="sent",
        sent_at="2024-01-01T12:00:00Z",
        delivery_status="200 OK",
    )


def post(client: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    return client.post(
        "/api/v1/audit/notifications", content=orjson.dumps(body), headers={"Content-Type": "application/json"}
    )


def stored(seeded: tuple[str, dict[str, Any]], where: str, value: str) -> int:
    with psycopg.connect(seeded[0]) as conn:
        query = f"SELECT count(*) FROM notification_audit WHERE {where} = %s"
        return conn.execute(query, (value,)).fetchone()[0]


def test_upstream_shaped_record_is_created(client: httpx.Client, seeded: tuple[str, dict[str, Any]]) -> None:
    body = valid_audit("test-notification-created")
    assert (body["id"], body["created_at"], body["updated_at"]) == (0, GO_ZERO, GO_ZERO)
    response = post(client, body)
    assert response.status_code == 201, response.text  # before kds ignored them: 400 unknown field 'created_at'
    assert response.headers["content-type"] == "application/json"
    created = response.json()
    assert created["id"] > 0
    assert {key: created[key] for key in ("remediation_id", "notification_id", "recipient", "channel")} == {
        "remediation_id": "test-remediation-1",
        "notification_id": "test-notification-created",
        "recipient": "test@example.com",
        "channel": "email",
    }
    assert (created["message_summary"], created["status"], created["delivery_status"]) == (
        "Test notification message",
        "sent",
        "200 OK",
    )
    assert created["sent_at"] == "2024-01-01T12:00:00.000000Z"
    for name in ("created_at", "updated_at"):  # set by the database, not the client's zero time
        assert RFC3339_UTC.match(created[name]) and datetime.fromisoformat(created[name]).year >= 2026
    assert stored(seeded, "notification_id", "test-notification-created") == 1


def test_missing_required_fields_are_an_rfc7807_400(client: httpx.Client, seeded: tuple[str, dict[str, Any]]) -> None:
    body = go_record(recipient="invalid-test@example.com", channel="email")
    document = problem(post(client, body), 400, "validation-error")
    # DIFFERENCE: title "Validation error" (upstream: "Validation Error"); every invalid field is listed.
    assert document["title"] == "Validation error"
    assert [error["name"] for error in document["errors"]] == [
        "remediation_id",
        "notification_id",
        "message_summary",
        "status",
        "sent_at",  # Go's zero time: an unset field (before kds checked it, it was stored as year 1)
    ]
    assert stored(seeded, "recipient", "invalid-test@example.com") == 0


def test_duplicate_notification_id(client: httpx.Client, seeded: tuple[str, dict[str, Any]]) -> None:
    body = valid_audit("test-notification-duplicate")
    first = post(client, body)
    assert first.status_code == 201
    # DIFFERENCE: the same record again is a safe retry, 200 with the stored record (upstream: 409).
    again = post(client, body)
    assert (again.status_code, again.json()) == (200, first.json())
    # the same id with different content is still a 409 conflict problem
    changed = problem(post(client, {**body, "status": "failed"}), 409, "conflict")
    assert "status" in changed["detail"]
    assert stored(seeded, "notification_id", "test-notification-duplicate") == 1


@pytest.mark.parametrize("sent_at", [GO_ZERO, "0001-01-01T00:00:00+01:00", "1969-12-31T23:59:59Z"])
def test_sent_at_before_1970_is_refused_and_nothing_is_written(
    client: httpx.Client, seeded: tuple[str, dict[str, Any]], sent_at: str
) -> None:
    """Before: Go's zero time was stored as year 1 and answered '1-01-01T...'; +01:00 was a 500 after the commit."""
    notification_id = f"test-notification-early-{sent_at}"
    for _ in range(2):  # a client retrying gets the same answer, never a 500
        document = problem(post(client, {**valid_audit(notification_id), "sent_at": sent_at}), 400, "validation-error")
        assert [error["name"] for error in document["errors"]] == ["sent_at"]
        assert document["errors"][0]["detail"].startswith("sent_at must not be earlier than 1970-01-01T00:00:00Z")
    assert stored(seeded, "notification_id", notification_id) == 0


def test_eight_invalid_fields_give_eight_errors_in_field_order(
    client: httpx.Client, seeded: tuple[str, dict[str, Any]]
) -> None:
    body = go_record(
        remediation_id="r" * 256,
        notification_id="test-notification-eight",
        recipient="",
        channel="teams",  # DIFFERENCE: upstream also allowed "teams"; kds's channels are email, slack, pagerduty, sms
        message_summary="",
        status="delivered",
        escalation_level=101,
        delivery_status="ok",
        error_message="x\u0000y",
    )
    document = problem(post(client, body), 400, "validation-error")
    assert [error["name"] for error in document["errors"]] == [
        "remediation_id",
        "recipient",
        "channel",
        "message_summary",
        "status",
        "sent_at",
        "error_message",
        "escalation_level",
    ]
    assert stored(seeded, "notification_id", "test-notification-eight") == 0


def test_other_unknown_fields_are_still_refused(client: httpx.Client) -> None:
    document = problem(post(client, {**valid_audit("test-notification-extra"), "team": "sre"}), 400, "validation-error")
    assert [(error["name"], error["detail"].startswith("unknown field 'team'")) for error in document["errors"]] == [
        ("team", True)
    ]


def test_openapi_marks_the_record_fields_read_only(client: httpx.Client) -> None:
    schemas = client.get("/api/v1/openapi.json").json()["components"]["schemas"]
    for model in ("NotificationRequest", "NotificationRecord"):
        read_only = [name for name, schema in schemas[model]["properties"].items() if schema.get("readOnly")]
        assert read_only == ["id", "created_at", "updated_at"], model
