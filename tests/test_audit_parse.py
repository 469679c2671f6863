"""Pure units: every field rule of docs/audit.md#request-body at its boundaries (no database)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from kds.audit import parse_notification
from kds.audit.models import NotificationRequest
from kds.errors import InvalidInput
from tests.upstream import GO_ZERO, go_record

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
VALID: dict[str, Any] = {
    "remediation_id": "rem-1",
    "notification_id": "notif-1",
    "recipient": "oncall@example.com",
    "channel": "email",
    "message_summary": "Pod web-1 restarted",
    "status": "sent",
    "sent_at": "2026-11-27T11:59:00Z",
}


def parse(**changes: Any) -> NotificationRequest:
    return parse_notification(orjson.dumps({**VALID, **changes}), now=NOW)


def problems_of(document: Any) -> list[tuple[str, str, str, str]]:
    body = document if isinstance(document, bytes) else orjson.dumps(document)
    with pytest.raises(InvalidInput) as caught:
        parse_notification(body, now=NOW)
    assert caught.value.slug == "validation-error"
    return [(p.slug, p.name, p.detail, p.reason) for p in caught.value.problems]


def problems(**changes: Any) -> list[tuple[str, str, str, str]]:
    return problems_of({**VALID, **changes})


def test_valid_minimal_request_is_normalised() -> None:
    request = parse(channel="EMAIL", status="SENT")
    assert request.model_dump() == {
        "remediation_id": "rem-1",
        "notification_id": "notif-1",
        "recipient": "oncall@example.com",
        "channel": "email",
        "message_summary": "Pod web-1 restarted",
        "status": "sent",
        "sent_at": datetime(2026, 11, 27, 11, 59, tzinfo=UTC),
        "delivery_status": None,
        "error_message": None,
        "escalation_level": 0,
    }


@pytest.mark.parametrize(("given", "stored"), [("Slack", "slack"), ("PAGERDUTY", "pagerduty"), ("sMs", "sms")])
def test_channel_is_case_insensitive(given: str, stored: str) -> None:
    assert parse(channel=given).channel == stored


@pytest.mark.parametrize("given", ["FAILED", "Acknowledged", "escalated"])
def test_status_is_case_insensitive(given: str) -> None:
    assert parse(status=given).status == given.lower()


# 255 vs 256 bytes, with one-, two- and four-byte characters.
AT_LIMIT = ["a" * 255, "é" * 127 + "a", "😀" * 63 + "abc", "中" * 85]
OVER_LIMIT = [("a" * 256, 256), ("é" * 128, 256), ("😀" * 64, 256), ("中" * 85 + "a", 256), ("é" * 255, 510)]


@pytest.mark.parametrize("field", ["remediation_id", "notification_id", "recipient"])
@pytest.mark.parametrize("value", AT_LIMIT, ids=["ascii", "2-byte", "4-byte", "3-byte"])
def test_255_bytes_accepted(field: str, value: str) -> None:
    assert len(value.encode()) == 255
    assert getattr(parse(**{field: value}), field) == value


@pytest.mark.parametrize("field", ["remediation_id", "notification_id", "recipient"])
@pytest.mark.parametrize(("value", "size"), OVER_LIMIT, ids=["ascii", "2-byte", "4-byte", "3-byte", "255-chars"])
def test_256_bytes_rejected(field: str, value: str, size: int) -> None:
    assert problems(**{field: value}) == [
        ("validation-error", field, f"{field} must be at most 255 bytes in UTF-8, got {size} bytes", "too_long")
    ]


@pytest.mark.parametrize("level", [0, 1, 99, 100])
def test_escalation_bounds_accepted(level: int) -> None:
    assert parse(escalation_level=level).escalation_level == level


@pytest.mark.parametrize("level", [-1, 101, -(2**63), 2**64 - 1])
def test_escalation_out_of_range(level: int) -> None:
    assert problems(escalation_level=level) == [
        (
            "validation-error",
            "escalation_level",
            f"escalation_level must be an integer between 0 and 100, got {level}",
            "out_of_range",
        )
    ]


@pytest.mark.parametrize("level", ["5", 1.5, 5.0, True])
def test_escalation_must_be_a_json_integer(level: Any) -> None:
    assert problems(escalation_level=level) == [
        ("validation-error", "escalation_level", "escalation_level must be an integer between 0 and 100", "wrong_type")
    ]


def test_sent_at_four_minutes_ahead_accepted() -> None:
    ahead = NOW + timedelta(minutes=4)
    assert parse(sent_at="2026-11-27T12:04:00Z").sent_at == ahead
    assert parse(sent_at="2026-11-27T12:05:00Z").sent_at == NOW + timedelta(minutes=5)


def test_sent_at_six_minutes_ahead_rejected() -> None:
    assert problems(sent_at="2026-11-27T14:06:00+02:00") == [
        (
            "validation-error",
            "sent_at",
            "sent_at must not be more than 5 minutes in the future, got 2026-11-27T14:06:00+02:00"
            " (360 seconds ahead of the server clock)",
            "future",
        )
    ]


def test_sent_at_against_the_real_clock() -> None:
    ahead = datetime.now(UTC) + timedelta(minutes=4)
    assert parse_notification(orjson.dumps({**VALID, "sent_at": ahead.isoformat()})).sent_at == ahead
    too_far = (datetime.now(UTC) + timedelta(minutes=6)).isoformat()
    with pytest.raises(InvalidInput) as caught:
        parse_notification(orjson.dumps({**VALID, "sent_at": too_far}))
    assert [p.name for p in caught.value.problems] == ["sent_at"]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2026-11-27T11:00:00Z", datetime(2026, 11, 27, 11, 0, tzinfo=UTC)),
        ("2026-11-27t11:00:00z", datetime(2026, 11, 27, 11, 0, tzinfo=UTC)),
        ("2026-11-27 13:00:00+02:00", datetime(2026, 11, 27, 11, 0, tzinfo=UTC)),
        ("2026-11-27T06:30:00.123456-04:30", datetime(2026, 11, 27, 11, 0, 0, 123456, tzinfo=UTC)),
        ("2026-11-27T11:00:00.123456789Z", datetime(2026, 11, 27, 11, 0, 0, 123456, tzinfo=UTC)),
        ("1999-12-31T23:59:59-00:00", datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ],
)
def test_sent_at_rfc3339_forms(given: str, expected: datetime) -> None:
    assert parse(sent_at=given).sent_at == expected


@pytest.mark.parametrize("given", ["2026-11-27T11:00:00", "2026-11-27 11:00", "2026-11-27T11:00:00.5"])
def test_sent_at_without_offset_rejected(given: str) -> None:
    assert problems(sent_at=given) == [
        (
            "validation-error",
            "sent_at",
            f"sent_at must carry a time zone offset (e.g. 2026-01-31T12:00:00Z or +02:00), got {given!r}",
            "missing_offset",
        )
    ]


@pytest.mark.parametrize(
    "given",
    ["yesterday", "1764244800", "2026-11-27", "2026-11-27T11:00Z", "20261127T110000Z", "2026-11-27T11:00:00+0200"],
)
def test_sent_at_not_rfc3339_rejected(given: str) -> None:
    assert problems(sent_at=given) == [
        (
            "validation-error",
            "sent_at",
            f"sent_at must be an RFC 3339 timestamp such as 2026-01-31T12:00:00Z, got {given!r}",
            "invalid_timestamp",
        )
    ]


@pytest.mark.parametrize("given", ["2026-02-30T11:00:00Z", "2026-11-27T24:00:00Z", "2026-11-27T11:00:60Z"])
def test_sent_at_impossible_dates_rejected(given: str) -> None:
    assert problems(sent_at=given) == [
        ("validation-error", "sent_at", f"sent_at is not a valid date and time, got {given!r}", "invalid_timestamp")
    ]


def test_sent_at_must_be_a_string() -> None:
    assert problems(sent_at=1764244800) == [
        (
            "validation-error",
            "sent_at",
            "sent_at must be an RFC 3339 timestamp string with an offset",
            "invalid_timestamp",
        )
    ]


def test_optional_fields() -> None:
    request = parse(delivery_status="delivered", error_message="", escalation_level=3)
    assert (request.delivery_status, request.error_message, request.escalation_level) == ("delivered", "", 3)


def test_null_means_absent() -> None:
    request = parse(delivery_status=None, error_message=None, escalation_level=None)
    assert (request.delivery_status, request.error_message, request.escalation_level) == (None, None, 0)
    assert problems(recipient=None) == [("validation-error", "recipient", "recipient is required", "missing")]


def test_unicode_is_kept_exactly() -> None:
    text = "تنبيه 警报 การแจ้งเตือน 🚨 mixed"
    assert parse(message_summary=text, recipient="مستخدم@例子.测试").message_summary == text


@pytest.mark.parametrize("field", ["remediation_id", "notification_id", "recipient", "message_summary"])
def test_required_text_must_not_be_empty(field: str) -> None:
    assert problems(**{field: "  "}) == [("validation-error", field, f"{field} must not be empty", "empty")]


def test_nul_characters_rejected() -> None:
    assert problems(message_summary="a\x00b", delivery_status="\x00") == [
        ("validation-error", "message_summary", "message_summary must not contain NUL characters", "invalid_text"),
        ("validation-error", "delivery_status", "delivery_status must not contain NUL characters", "invalid_text"),
    ]


def test_wrong_types_rejected() -> None:
    assert problems(remediation_id=17, channel=["email"], delivery_status={"a": 1}) == [
        ("validation-error", "remediation_id", "remediation_id must be a string", "wrong_type"),
        ("validation-error", "channel", "channel must be a string", "wrong_type"),
        ("validation-error", "delivery_status", "delivery_status must be a string", "wrong_type"),
    ]


def test_unknown_fields_rejected() -> None:
    accepted = (
        "remediation_id, notification_id, recipient, channel, message_summary, status, sent_at, delivery_status,"
        " error_message, escalation_level"
    )
    assert problems(zz="1", severity="high") == [
        ("validation-error", "severity", f"unknown field 'severity'; accepted fields are {accepted}", "unknown_field"),
        ("validation-error", "zz", f"unknown field 'zz'; accepted fields are {accepted}", "unknown_field"),
    ]


def test_eight_bad_fields_give_eight_problems_in_field_order() -> None:
    document = {
        "remediation_id": "r" * 256,
        "recipient": "é" * 128,
        "channel": "fax",
        "message_summary": "",
        "status": "delivered",
        "sent_at": "2026-11-27T12:00:00",
        "escalation_level": 101,
    }
    assert problems_of(document) == [
        ("validation-error", "remediation_id", "remediation_id must be at most 255 bytes in UTF-8, got 256 bytes",
         "too_long"),
        ("validation-error", "notification_id", "notification_id is required", "missing"),
        ("validation-error", "recipient", "recipient must be at most 255 bytes in UTF-8, got 256 bytes", "too_long"),
        ("validation-error", "channel",
         "channel must be one of email, slack, pagerduty, sms (case-insensitive), got 'fax'", "invalid_choice"),
        ("validation-error", "message_summary", "message_summary must not be empty", "empty"),
        ("validation-error", "status",
         "status must be one of sent, failed, acknowledged, escalated (case-insensitive), got 'delivered'",
         "invalid_choice"),
        ("validation-error", "sent_at",
         "sent_at must carry a time zone offset (e.g. 2026-01-31T12:00:00Z or +02:00), got '2026-11-27T12:00:00'",
         "missing_offset"),
        ("validation-error", "escalation_level", "escalation_level must be an integer between 0 and 100, got 101",
         "out_of_range"),
    ]  # fmt: skip


def test_every_required_field_reported_missing() -> None:
    assert [(name, reason) for _, name, _, reason in problems_of({})] == [
        (name, "missing")
        for name in (
            "remediation_id",
            "notification_id",
            "recipient",
            "channel",
            "message_summary",
            "status",
            "sent_at",
        )
    ]


@pytest.mark.parametrize(
    ("body", "detail", "reason"),
    [
        (b"", "the body is empty; send a JSON object", "empty"),
        (b"  \n", "the body is empty; send a JSON object", "empty"),
        (b"[]", "the body must be a JSON object, got a JSON array", "wrong_type"),
        (b"null", "the body must be a JSON object, got a JSON null", "wrong_type"),
        (b"12", "the body must be a JSON object, got a JSON number", "wrong_type"),
    ],
)
def test_unusable_bodies(body: bytes, detail: str, reason: str) -> None:
    assert problems_of(body) == [("validation-error", "body", detail, reason)]


@pytest.mark.parametrize(
    ("body", "position"),
    [(b"{", 1), (b'{"a": NaN}', 6), (b'{"a": "\\ud800"}', 7), (b"\xff", 0), (b'{"a": 1} x', 9)],
)
def test_unparseable_json(body: bytes, position: int) -> None:
    [(slug, name, detail, reason)] = problems_of(body)
    assert (slug, name, reason) == ("validation-error", "body", "invalid_json")
    # the parser's own words vary between orjson versions; the position does not
    assert re.fullmatch(rf"the body is not valid JSON \(.+ at position {position}\)", detail)


# --- bodies from clients of the replaced service (docs/clients.md) --------------------------------


@pytest.mark.parametrize(
    "read_only",
    [
        {"id": 0, "created_at": GO_ZERO, "updated_at": GO_ZERO},
        {"id": 981, "created_at": "2026-11-27T11:59:00.123Z", "updated_at": "not a time"},
        {"id": "x", "created_at": 12, "updated_at": {"nested": [1]}},
        {"id": None, "created_at": None},
    ],
)
def test_read_only_record_fields_are_accepted_and_ignored(read_only: dict[str, Any]) -> None:
    assert parse(**read_only) == parse()


def test_other_unknown_fields_are_still_rejected_beside_read_only_ones() -> None:
    assert [(name, reason) for _, name, _, reason in problems(id=0, created_at=GO_ZERO, team="sre")] == [
        ("team", "unknown_field")
    ]


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        (GO_ZERO, "'0001-01-01T00:00:00+00:00'"),
        ("0001-01-01T00:00:00+01:00", "'0001-01-01T00:00:00+01:00'"),  # year 0 in UTC
        ("0999-12-31T23:59:59Z", "'0999-12-31T23:59:59+00:00'"),
        ("1969-12-31T23:59:59.999999Z", "'1969-12-31T23:59:59.999999+00:00'"),
        ("1970-01-01T00:59:59+01:00", "'1970-01-01T00:59:59+01:00'"),
    ],
)
def test_sent_at_before_1970_is_a_sent_at_problem(given: str, shown: str) -> None:
    assert problems(sent_at=given) == [
        (
            "validation-error",
            "sent_at",
            f"sent_at must not be earlier than 1970-01-01T00:00:00Z, got {shown}"
            " (0001-01-01T00:00:00Z is an unset Go time.Time: set the time the notification was sent)",
            "before_epoch",
        )
    ]


@pytest.mark.parametrize("given", ["1970-01-01T00:00:00Z", "1970-01-01T01:00:00+01:00", "1969-12-31T23:00:00-01:00"])
def test_sent_at_at_the_epoch_is_accepted(given: str) -> None:
    assert parse(sent_at=given).sent_at == datetime(1970, 1, 1, tzinfo=UTC)


def test_upstream_record_with_eight_invalid_fields_lists_eight_in_field_order() -> None:
    """What the replaced service's clients send for an empty record: every field, zero values."""
    document = go_record(escalation_level=-1)
    assert [(name, reason) for _, name, _, reason in problems_of(document)] == [
        ("remediation_id", "empty"),
        ("notification_id", "empty"),
        ("recipient", "empty"),
        ("channel", "invalid_choice"),
        ("message_summary", "empty"),
        ("status", "invalid_choice"),
        ("sent_at", "before_epoch"),
        ("escalation_level", "out_of_range"),
    ]


def test_openapi_schemas_mark_the_record_fields_read_only() -> None:
    from kds.audit.models import NotificationRecord

    request = NotificationRequest.model_json_schema()
    record = NotificationRecord.model_json_schema(mode="serialization")
    assert [name for name, schema in request["properties"].items() if schema.get("readOnly")] == [
        "id",
        "created_at",
        "updated_at",
    ]
    assert "id" not in request["required"]
    assert [name for name, schema in record["properties"].items() if schema.get("readOnly")] == [
        "id",
        "created_at",
        "updated_at",
    ]
