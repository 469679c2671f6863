"""``POST /api/v1/audit/notifications`` over HTTP (docs/api.md), served in process (:mod:`tests.inprocess`).

One app for the module (body limit lowered to 2048 bytes to test it at its boundary); every test
uses its own notification ids and counts rows in the database directly.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import psycopg
import pytest

from kds.audit.models import NotificationRecord
from tests.inprocess import InProcessClient, serving_in_process
from tests.pg import PgCluster

ROUTE = "/api/v1/audit/notifications"
PROBLEM = "https://api.kubernaut.io/problems/"
BODY_LIMIT = 2048
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
RECORD_FIELDS = [
    "id", "remediation_id", "notification_id", "recipient", "channel", "message_summary", "status", "sent_at",
    "delivery_status", "error_message", "escalation_level", "created_at", "updated_at",
]  # fmt: skip


@pytest.fixture(scope="module")
def database(pg_cluster: PgCluster) -> Iterator[str]:
    with pg_cluster.fresh_database() as url:
        yield url


@pytest.fixture(scope="module")
def client(database: str) -> Iterator[InProcessClient]:
    with serving_in_process(database, pool_size=4, max_body_bytes=BODY_LIMIT, pool_timeout=20) as served:
        yield served


@pytest.fixture(scope="module")
def db(database: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database, autocommit=True) as conn:
        yield conn


def notification(**changes: Any) -> dict[str, Any]:
    return {
        "remediation_id": "rem-42",
        "notification_id": f"notif-{uuid.uuid4()}",
        "recipient": "oncall@example.com",
        "channel": "slack",
        "message_summary": "Deployment web restarted in namespace payments",
        "status": "sent",
        "sent_at": "2025-06-01T10:15:30.25+02:00",
        **changes,
    }


def post(client: InProcessClient, document: Any, **kwargs: Any) -> httpx.Response:
    content = document if isinstance(document, bytes) else orjson.dumps(document)
    headers = {"Content-Type": "application/json", **kwargs.pop("headers", {})}
    return client.post(ROUTE, content=content, headers=headers, **kwargs)


def stored(db: psycopg.Connection, notification_id: str) -> list[dict[str, Any]]:
    cur = db.execute(
        "SELECT id, remediation_id, notification_id, recipient, channel, message_summary, status, sent_at,"
        " delivery_status, error_message, escalation_level FROM notification_audit WHERE notification_id = %s",
        (notification_id,),
    )
    names = [column.name for column in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    document = response.json()
    request_id = response.headers["x-request-id"]
    assert {k: document[k] for k in ("type", "status", "instance", "request_id")} == {
        "type": PROBLEM + slug,
        "status": status,
        "instance": ROUTE,
        "request_id": request_id,
    }
    return document


def assert_rejected(
    client: InProcessClient, db: psycopg.Connection, document: dict[str, Any], errors: list[tuple[str, str]]
) -> None:
    """400 validation-error listing exactly ``errors`` (name, detail), in order; nothing written."""
    problem = assert_problem(post(client, document), 400, "validation-error")
    assert problem["title"] == "Validation error"
    assert problem["errors"] == [{"name": name, "detail": detail} for name, detail in errors]
    assert problem["detail"] == errors[0][1]
    assert stored(db, str(document.get("notification_id"))) == []


def assert_created(client: InProcessClient, db: psycopg.Connection, document: dict[str, Any]) -> dict[str, Any]:
    response = post(client, document)
    assert response.status_code == 201, response.text
    record = response.json()
    [row] = stored(db, document["notification_id"])
    assert record["id"] == row["id"]
    return record


def test_created_record_is_committed_and_returned(client: InProcessClient, db: psycopg.Connection) -> None:
    document = notification(delivery_status="delivered", escalation_level=2)
    response = post(client, document, headers={"X-Request-ID": "audit-test-1"})
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"] == "audit-test-1"
    record = response.json()
    assert list(record) == RECORD_FIELDS
    NotificationRecord.model_validate(record)
    [row] = stored(db, document["notification_id"])
    assert RFC3339_UTC.match(record["created_at"]) and record["created_at"] == record["updated_at"]
    assert {k: v for k, v in record.items() if k not in ("created_at", "updated_at")} == {
        "id": row["id"],
        "remediation_id": "rem-42",
        "notification_id": document["notification_id"],
        "recipient": "oncall@example.com",
        "channel": "slack",
        "message_summary": "Deployment web restarted in namespace payments",
        "status": "sent",
        "sent_at": "2025-06-01T08:15:30.250000Z",
        "delivery_status": "delivered",
        "error_message": None,
        "escalation_level": 2,
    }
    assert row["sent_at"] == datetime(2025, 6, 1, 8, 15, 30, 250000, tzinfo=UTC)


def test_upper_case_enumerations_accepted_and_stored_lower_case(
    client: InProcessClient, db: psycopg.Connection
) -> None:
    record = assert_created(client, db, document := notification(channel="EMAIL", status="SENT"))
    assert (record["channel"], record["status"]) == ("email", "sent")
    [row] = stored(db, document["notification_id"])
    assert (row["channel"], row["status"]) == ("email", "sent")


def test_identical_retry_is_200_with_the_stored_record(client: InProcessClient, db: psycopg.Connection) -> None:
    document = notification()
    first = post(client, document)
    assert first.status_code == 201
    # the same notification, spelled differently (case of enumerations, offset of sent_at, explicit defaults)
    again = post(client, {**document, "channel": "Slack", "sent_at": "2025-06-01T08:15:30.250Z", "error_message": None})
    assert again.status_code == 200
    assert again.json() == first.json()
    assert len(stored(db, document["notification_id"])) == 1


def test_conflicting_retry_is_409(client: InProcessClient, db: psycopg.Connection) -> None:
    document = notification()
    first = post(client, document).json()
    problem = assert_problem(post(client, {**document, "status": "failed"}), 409, "conflict")
    assert problem["title"] == "Conflict"
    assert problem["detail"] == (
        f"notification_id {document['notification_id']!r} is already recorded with different content"
        " (status differ); resend the original content, or use a new notification_id"
    )
    [row] = stored(db, document["notification_id"])
    assert (row["id"], row["status"]) == (first["id"], "sent")


BYTES_255 = {"ascii": "a" * 255, "2-byte": "é" * 127 + "a", "4-byte": "🚨" * 63 + "abc"}
BYTES_256 = {"ascii": "a" * 256, "2-byte": "é" * 128, "4-byte": "🚨" * 64}


@pytest.mark.parametrize("field", ["remediation_id", "notification_id", "recipient"])
@pytest.mark.parametrize("kind", list(BYTES_255))
def test_255_bytes_are_stored(client: InProcessClient, db: psycopg.Connection, field: str, kind: str) -> None:
    value = BYTES_255[kind]  # unique as a notification_id too: each kind is posted once per module
    assert len(value.encode()) == 255
    document = notification(**{field: value})
    record = assert_created(client, db, document)
    assert record[field] == value
    assert stored(db, document["notification_id"])[0][field] == value


@pytest.mark.parametrize("field", ["remediation_id", "notification_id", "recipient"])
@pytest.mark.parametrize("kind", list(BYTES_256))
def test_256_bytes_are_rejected(client: InProcessClient, db: psycopg.Connection, field: str, kind: str) -> None:
    document = notification(**{field: BYTES_256[kind]})
    assert_rejected(client, db, document, [(field, f"{field} must be at most 255 bytes in UTF-8, got 256 bytes")])


@pytest.mark.parametrize("level", [0, 100])
def test_escalation_bounds_stored(client: InProcessClient, db: psycopg.Connection, level: int) -> None:
    document = notification(escalation_level=level)
    assert assert_created(client, db, document)["escalation_level"] == level
    assert stored(db, document["notification_id"])[0]["escalation_level"] == level


@pytest.mark.parametrize("level", [-1, 101])
def test_escalation_out_of_range_rejected(client: InProcessClient, db: psycopg.Connection, level: int) -> None:
    detail = f"escalation_level must be an integer between 0 and 100, got {level}"
    assert_rejected(client, db, notification(escalation_level=level), [("escalation_level", detail)])


def test_escalation_defaults_to_zero(client: InProcessClient, db: psycopg.Connection) -> None:
    assert assert_created(client, db, notification())["escalation_level"] == 0


def test_sent_at_four_minutes_ahead_accepted(client: InProcessClient, db: psycopg.Connection) -> None:
    ahead = (datetime.now(UTC) + timedelta(minutes=4)).replace(microsecond=0)
    record = assert_created(client, db, notification(sent_at=ahead.isoformat()))
    assert record["sent_at"] == ahead.strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def test_sent_at_six_minutes_ahead_rejected(client: InProcessClient, db: psycopg.Connection) -> None:
    ahead = (datetime.now(UTC) + timedelta(minutes=6)).replace(microsecond=0)
    problem = assert_problem(post(client, document := notification(sent_at=ahead.isoformat())), 400, "validation-error")
    [error] = problem["errors"]
    assert error["name"] == "sent_at"
    assert re.fullmatch(
        rf"sent_at must not be more than 5 minutes in the future, got {re.escape(ahead.isoformat())}"
        r" \(3[56]\d seconds ahead of the server clock\)",
        error["detail"],
    )
    assert stored(db, document["notification_id"]) == []


def test_sent_at_without_offset_rejected(client: InProcessClient, db: psycopg.Connection) -> None:
    detail = "sent_at must carry a time zone offset (e.g. 2026-01-31T12:00:00Z or +02:00), got '2026-11-27T10:15:30'"
    assert_rejected(client, db, notification(sent_at="2026-11-27T10:15:30"), [("sent_at", detail)])


def test_eight_bad_fields_give_eight_errors_and_no_row(client: InProcessClient, db: psycopg.Connection) -> None:
    document = {
        "remediation_id": "",
        "notification_id": "n" * 256,
        "recipient": 42,
        "channel": "carrier-pigeon",
        "status": "lost",
        "sent_at": "next tuesday",
        "escalation_level": 101,
    }
    assert_rejected(
        client,
        db,
        document,
        [
            ("remediation_id", "remediation_id must not be empty"),
            ("notification_id", "notification_id must be at most 255 bytes in UTF-8, got 256 bytes"),
            ("recipient", "recipient must be a string"),
            ("channel", "channel must be one of email, slack, pagerduty, sms (case-insensitive), got 'carrier-pigeon'"),
            ("message_summary", "message_summary is required"),
            ("status", "status must be one of sent, failed, acknowledged, escalated (case-insensitive), got 'lost'"),
            ("sent_at", "sent_at must be an RFC 3339 timestamp such as 2026-01-31T12:00:00Z, got 'next tuesday'"),
            ("escalation_level", "escalation_level must be an integer between 0 and 100, got 101"),
        ],
    )


def test_body_limit(client: InProcessClient, db: psycopg.Connection) -> None:
    document = notification()
    base = len(orjson.dumps(document))
    at_limit = {**document, "message_summary": document["message_summary"] + "x" * (BODY_LIMIT - base)}
    assert len(orjson.dumps(at_limit)) == BODY_LIMIT
    assert_created(client, db, at_limit)
    over = notification(message_summary=at_limit["message_summary"] + "y")
    over["notification_id"] = document["notification_id"][:-1] + "z"
    assert len(orjson.dumps(over)) == BODY_LIMIT + 1
    problem = assert_problem(post(client, over), 413, "payload-too-large")
    assert problem["title"] == "Payload too large"
    assert stored(db, over["notification_id"]) == []


@pytest.mark.parametrize(
    ("content_type", "detail"),
    [
        ("text/plain", "the body must be sent as application/json, got Content-Type 'text/plain'"),
        ("application/x-www-form-urlencoded",
         "the body must be sent as application/json, got Content-Type 'application/x-www-form-urlencoded'"),
        ("application/json-patch+json",
         "the body must be sent as application/json, got Content-Type 'application/json-patch+json'"),
        ("application/json; charset=latin-1", "the body must be UTF-8 encoded, got charset 'latin-1'"),
        (None, "the body must be sent as application/json, got Content-Type none"),
    ],
)  # fmt: skip
def test_wrong_content_type_is_415(
    client: InProcessClient, db: psycopg.Connection, content_type: str | None, detail: str
) -> None:
    document = notification()
    headers = {"Content-Type": content_type} if content_type else {}
    request = client.build_request("POST", ROUTE, content=orjson.dumps(document), headers=headers)
    if content_type is None:
        request.headers.pop("Content-Type", None)
    problem = assert_problem(client.send(request), 415, "unsupported-media-type")
    assert (problem["title"], problem["detail"]) == ("Unsupported media type", detail)
    assert stored(db, document["notification_id"]) == []


@pytest.mark.parametrize("content_type", ["application/json; charset=UTF-8", "Application/JSON"])
def test_json_content_type_variants_accepted(
    client: InProcessClient, db: psycopg.Connection, content_type: str
) -> None:
    document = notification()
    response = post(client, document, headers={"Content-Type": content_type})
    assert response.status_code == 201
    assert len(stored(db, document["notification_id"])) == 1


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"", "the body is empty; send a JSON object"),
        (b"[1, 2]", "the body must be a JSON object, got a JSON array"),
    ],
)
def test_unusable_json_body(client: InProcessClient, body: bytes, detail: str) -> None:
    problem = assert_problem(post(client, body), 400, "validation-error")
    assert problem["errors"] == [{"name": "body", "detail": detail}]


def test_json_that_does_not_parse_is_400(client: InProcessClient) -> None:
    problem = assert_problem(post(client, b'{"remediation_id": "r",'), 400, "validation-error")
    [error] = problem["errors"]
    assert error["name"] == "body"
    assert error["detail"].startswith("the body is not valid JSON (")


def test_other_methods_are_405(client: InProcessClient) -> None:
    assert_problem(client.get(ROUTE), 405, "method-not-allowed")


def metric(client: InProcessClient, name: str, **labels: str) -> float:
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f"{name}{{"):
            sample, _, value = line.rpartition(" ")
            given = sample[len(name) + 1 : -1].split(",")
            if ",".join(sorted(given)) == wanted:
                return float(value)
    return 0.0


def test_write_and_validation_metrics(client: InProcessClient) -> None:
    table = {"table": "notification_audit"}
    counters = {
        "created": ("datastorage_write_total", {**table, "status": "success"}),
        "duplicate": ("datastorage_write_total", {**table, "status": "duplicate"}),
        "conflict": ("datastorage_write_total", {**table, "status": "conflict"}),
        "timed": ("datastorage_write_duration_seconds_count", table),
        "too_long": ("datastorage_validation_failures_total", {"field": "recipient", "reason": "too_long"}),
        "missing": ("datastorage_validation_failures_total", {"field": "sent_at", "reason": "missing"}),
        "unknown": ("datastorage_validation_failures_total", {"field": "other", "reason": "unknown_field"}),
    }
    before = {key: metric(client, name, **labels) for key, (name, labels) in counters.items()}
    document = notification()
    assert [post(client, document).status_code, post(client, document).status_code] == [201, 200]
    assert post(client, {**document, "status": "failed"}).status_code == 409
    invalid = {k: v for k, v in notification(recipient="r" * 256, zzz=1).items() if k != "sent_at"}
    assert post(client, invalid).status_code == 400
    after = {key: metric(client, name, **labels) for key, (name, labels) in counters.items()}
    assert {key: after[key] - before[key] for key in counters} == {
        "created": 1, "duplicate": 1, "conflict": 1, "timed": 3, "too_long": 1, "missing": 1, "unknown": 1,
    }  # fmt: skip


def test_fifty_concurrent_identical_posts_make_one_row(client: InProcessClient, db: psycopg.Connection) -> None:
    document = notification()
    body = orjson.dumps(document)

    def send(_: int) -> httpx.Response:
        return post(client, body)

    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(send, range(50)))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * 49 + [201]
    assert len({response.content for response in responses}) == 1
    [row] = stored(db, document["notification_id"])
    assert {response.json()["id"] for response in responses} == {row["id"]}


def test_openapi_describes_the_endpoint(client: InProcessClient) -> None:
    document = client.get("/api/v1/openapi.json").json()
    operation = document["paths"][ROUTE]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/NotificationRequest"
    }
    assert sorted(operation["responses"]) == ["200", "201", "400", "401", "403", "409", "413", "415", "503", "504"]
    assert operation["security"] == [{}, {"bearerAuth": []}]
    assert "`audit:write`" in operation["description"]
    schemas = document["components"]["schemas"]
    request = schemas["NotificationRequest"]
    assert request["additionalProperties"] is False
    assert request["required"] == [
        "remediation_id", "notification_id", "recipient", "channel", "message_summary", "status", "sent_at",
    ]  # fmt: skip
    assert request["properties"]["channel"]["enum"] == ["email", "slack", "pagerduty", "sms"]
    assert request["properties"]["escalation_level"]["maximum"] == 100
    assert list(schemas["NotificationRecord"]["properties"]) == RECORD_FIELDS
