"""The audit-trail write models (docs/audit.md): the request a client sends and the record it gets back.

Every field rule lives here, as pydantic validators, so the HTTP endpoint, the OpenAPI document and
the tests share one definition. Normalisation happens during validation: enumerations are lower
case, ``sent_at`` is an aware datetime, ``null`` means "absent" and ``escalation_level`` defaults
to 0. Two requests that normalise to equal models describe the same notification.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

CHANNELS = ("email", "slack", "pagerduty", "sms")
STATUSES = ("sent", "failed", "acknowledged", "escalated")
MAX_TEXT_BYTES = 255
MAX_FUTURE = timedelta(minutes=5)
MIN_ESCALATION, MAX_ESCALATION = 0, 100
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Fields of the stored record that clients may send back (existing clients marshal the whole record):
# accepted with any value and ignored (docs/clients.md, "Read-only fields").
READ_ONLY_FIELDS: tuple[str, ...] = ("id", "created_at", "updated_at")

# RFC 3339 date-time (section 5.6): a time zone offset is mandatory, "Z" or "+hh:mm"/"-hh:mm".
_RFC3339 = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<time>\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?)(?P<offset>[Zz]|[+-]\d{2}:\d{2})$",
    re.ASCII,
)
_LOCAL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$", re.ASCII)


def shown(value: str, width: int = 40) -> str:
    """A received value as a detail shows it: quoted, escaped, shortened when long."""
    return repr(value if len(value) <= width else value[:width] + "…")


def _utf8_length(value: str) -> int:
    try:
        return len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise PydanticCustomError("invalid_text", "must be valid Unicode text (no lone surrogates)") from None


def _text(value: str) -> str:
    if "\x00" in value:
        raise PydanticCustomError("invalid_text", "must not contain NUL characters")
    _utf8_length(value)
    return value


def _required_text(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("empty", "must not be empty")
    return _text(value)


def _bounded_text(value: str) -> str:
    _required_text(value)
    size = _utf8_length(value)
    if size > MAX_TEXT_BYTES:
        raise PydanticCustomError(
            "too_long",
            "must be at most {limit} bytes in UTF-8, got {size} bytes",
            {"limit": MAX_TEXT_BYTES, "size": size},
        )
    return value


def _lower_case(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _choice(choices: tuple[str, ...]) -> Any:
    def check(value: Any) -> Any:
        if not isinstance(value, str):
            raise PydanticCustomError("string_type", "must be a string")
        if value.lower() not in choices:
            raise PydanticCustomError(
                "invalid_choice",
                "must be one of {choices} (case-insensitive), got {value}",
                {"choices": ", ".join(choices), "value": shown(value)},
            )
        return value.lower()

    return check


def parse_rfc3339(value: Any) -> datetime:
    """An RFC 3339 timestamp with an offset, as an aware datetime (fractions beyond microseconds truncated)."""
    if not isinstance(value, str):
        raise PydanticCustomError("invalid_timestamp", "must be an RFC 3339 timestamp string with an offset")
    match = _RFC3339.match(value)
    if match is None:
        if _LOCAL_TIME.match(value.strip()):
            raise PydanticCustomError(
                "missing_offset",
                "must carry a time zone offset (e.g. 2026-01-31T12:00:00Z or +02:00), got {value}",
                {"value": shown(value)},
            )
        raise PydanticCustomError(
            "invalid_timestamp",
            "must be an RFC 3339 timestamp such as 2026-01-31T12:00:00Z, got {value}",
            {"value": shown(value)},
        )
    offset = match["offset"].upper()
    try:
        return datetime.fromisoformat(f"{match['date']}T{match['time']}{'+00:00' if offset == 'Z' else offset}")
    except ValueError:
        raise PydanticCustomError(
            "invalid_timestamp", "is not a valid date and time, got {value}", {"value": shown(value)}
        ) from None


def _not_in_future(value: datetime, info: ValidationInfo) -> datetime:
    now = (info.context or {}).get("now") or datetime.now(UTC)
    if value - now > MAX_FUTURE:
        raise PydanticCustomError(
            "future",
            "must not be more than 5 minutes in the future, got {value} ({ahead} seconds ahead of the server clock)",
            {"value": value.isoformat(), "ahead": int((value - now).total_seconds())},
        )
    return value


def _not_before_epoch(value: datetime) -> datetime:
    """Go's zero time (``0001-01-01T00:00:00Z``) is what an unset ``sent_at`` looks like: not a real send time."""
    if value < EPOCH:
        raise PydanticCustomError(
            "before_epoch",
            "must not be earlier than 1970-01-01T00:00:00Z, got {value}"
            " (0001-01-01T00:00:00Z is an unset Go time.Time: set the time the notification was sent)",
            {"value": shown(value.isoformat())},
        )
    return value


def _escalation(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and not MIN_ESCALATION <= value <= MAX_ESCALATION:
        raise PydanticCustomError(
            "out_of_range",
            "must be an integer between {low} and {high}, got {value}",
            {"low": MIN_ESCALATION, "high": MAX_ESCALATION, "value": value},
        )
    return value


BoundedText = Annotated[str, AfterValidator(_bounded_text), Field(description="At most 255 bytes in UTF-8.")]
RequiredText = Annotated[str, AfterValidator(_required_text)]
OptionalText = Annotated[str | None, AfterValidator(lambda value: None if value is None else _text(value))]
Channel = Annotated[Literal["email", "slack", "pagerduty", "sms"], BeforeValidator(_choice(CHANNELS))]
Status = Annotated[Literal["sent", "failed", "acknowledged", "escalated"], BeforeValidator(_choice(STATUSES))]
SentAt = Annotated[
    datetime, BeforeValidator(parse_rfc3339), AfterValidator(_not_in_future), AfterValidator(_not_before_epoch)
]
Escalation = Annotated[int, BeforeValidator(_escalation)]


def _read_only_in_request(schema: dict[str, Any]) -> None:
    """OpenAPI: the record's read-only fields may appear in a request body (and are ignored)."""
    ignored = "Read-only: accepted with any value and ignored."
    schema["properties"] = {
        "id": {"readOnly": True, "description": ignored},
        **schema["properties"],
        "created_at": {"readOnly": True, "description": ignored},
        "updated_at": {"readOnly": True, "description": ignored},
    }


class NotificationRequest(BaseModel):
    """``POST /api/v1/audit/notifications``: one notification sent about a remediation."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, json_schema_extra=_read_only_in_request)

    remediation_id: BoundedText = Field(description="The remediation this notification is about (≤ 255 bytes).")
    notification_id: BoundedText = Field(
        description="Client-chosen unique id (≤ 255 bytes); resending the same notification with it is a safe retry."
    )
    recipient: BoundedText = Field(description="Who was notified (≤ 255 bytes).")
    channel: Channel = Field(description="email, slack, pagerduty or sms (case-insensitive, stored in lower case).")
    message_summary: RequiredText = Field(description="What the notification said.")
    status: Status = Field(
        description="sent, failed, acknowledged or escalated (case-insensitive, stored in lower case)."
    )
    sent_at: SentAt = Field(
        description="RFC 3339 timestamp with an offset, not before 1970-01-01T00:00:00Z,"
        " at most 5 minutes ahead of the server clock.",
        json_schema_extra={"type": "string", "format": "date-time"},
    )
    delivery_status: OptionalText = Field(None, description="Delivery status reported by the channel.")
    error_message: OptionalText = Field(None, description="Why delivery failed, if it did.")
    escalation_level: Escalation = Field(0, ge=MIN_ESCALATION, le=MAX_ESCALATION, description="0..100, default 0.")

    @model_validator(mode="before")
    @classmethod
    def _null_means_absent(cls, data: Any) -> Any:
        """``"field": null`` is the same as leaving the field out (required fields then report "required").

        The record's read-only fields are dropped whatever their value (``"id": 0`` and Go's zero
        ``created_at`` from clients that send the whole record).
        """
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None and key not in READ_ONLY_FIELDS}
        return data


# The request's fields are the columns kds writes, in table order.
FIELDS: tuple[str, ...] = tuple(NotificationRequest.model_fields)


class NotificationRecord(BaseModel):
    """A stored audit record, as the API returns it (timestamps RFC 3339 in UTC)."""

    id: int = Field(json_schema_extra={"readOnly": True})
    remediation_id: str
    notification_id: str
    recipient: str
    channel: str
    message_summary: str
    status: str
    sent_at: str = Field(description="RFC 3339, UTC.")
    delivery_status: str | None
    error_message: str | None
    escalation_level: int | None
    created_at: str | None = Field(
        description="When the record was committed (RFC 3339, UTC).", json_schema_extra={"readOnly": True}
    )
    updated_at: str | None = Field(description="RFC 3339, UTC.", json_schema_extra={"readOnly": True})


# The columns a stored record is read from, in the order of the record the API returns.
RECORD_FIELDS: tuple[str, ...] = tuple(NotificationRecord.model_fields)
