"""Raw request body (bytes) → :class:`NotificationRequest`, or :class:`InvalidInput` naming every invalid field.

Every problem has the slug ``validation-error`` (docs/audit.md), the field it concerns as its name
(``body`` when the document itself is unusable) and a *reason* (``missing``, ``too_long``,
``invalid_choice``, ...) that the server uses as the ``reason`` label of
``datastorage_validation_failures_total``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError

from kds.audit.models import FIELDS, MAX_ESCALATION, MIN_ESCALATION, NotificationRequest, shown
from kds.errors import InvalidInput, Problem

SLUG = "validation-error"
BODY = "body"


@dataclass(frozen=True, slots=True)
class FieldProblem(Problem):
    """A :class:`Problem` with a short machine reason, for metrics."""

    reason: str = "invalid"


# pydantic's own error types → (reason, detail template); custom errors carry their own message.
_STANDARD: dict[str, tuple[str, str]] = {
    "missing": ("missing", "{field} is required"),
    "extra_forbidden": ("unknown_field", "unknown field {shown}; accepted fields are " + ", ".join(FIELDS)),
    "string_type": ("wrong_type", "{field} must be a string"),
    "int_type": ("wrong_type", f"{{field}} must be an integer between {MIN_ESCALATION} and {MAX_ESCALATION}"),
    "greater_than_equal": ("out_of_range", f"{{field}} must be between {MIN_ESCALATION} and {MAX_ESCALATION}"),
    "less_than_equal": ("out_of_range", f"{{field}} must be between {MIN_ESCALATION} and {MAX_ESCALATION}"),
}


def _problem(error: Any) -> FieldProblem:
    location = error.get("loc") or ()
    field = str(location[0]) if location else BODY
    kind = error["type"]
    if kind in _STANDARD:
        reason, template = _STANDARD[kind]
        detail = template.format(field=field, shown=shown(field))
    else:
        # PydanticCustomError messages are written to follow the field name.
        reason, detail = kind, f"{field} {error['msg']}"
    return FieldProblem(SLUG, field, detail, reason)


def _order(problem: FieldProblem) -> tuple[int, str]:
    """Problems in the model's field order; unknown fields after the known ones."""
    return (FIELDS.index(problem.name), "") if problem.name in FIELDS else (len(FIELDS), problem.name)


def validate_notification(data: Any, *, now: datetime | None = None) -> NotificationRequest:
    """Validate an already decoded document; raise :class:`InvalidInput` listing every invalid field."""
    if not isinstance(data, dict):
        kind = type(data).__name__ if data is not None else "null"
        raise InvalidInput(
            [FieldProblem(SLUG, BODY, f"the body must be a JSON object, got a JSON {_json_kind(kind)}", "wrong_type")]
        )
    try:
        return NotificationRequest.model_validate(data, context={"now": now} if now else None)
    except ValidationError as exc:
        problems = sorted((_problem(error) for error in exc.errors()), key=_order)
        raise InvalidInput(list(problems)) from None


def parse_notification(body: bytes | str, *, now: datetime | None = None) -> NotificationRequest:
    """Decode a JSON body and validate it (see :func:`validate_notification`)."""
    if not body or not body.strip():
        raise InvalidInput([FieldProblem(SLUG, BODY, "the body is empty; send a JSON object", "empty")])
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(
            [FieldProblem(SLUG, BODY, f"the body is not valid JSON ({exc.msg} at position {exc.pos})", "invalid_json")]
        ) from None
    return validate_notification(data, now=now)


def _json_kind(python_kind: str) -> str:
    return {"list": "array", "str": "string", "int": "number", "float": "number", "bool": "boolean"}.get(
        python_kind, python_kind
    )
