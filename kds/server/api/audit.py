"""``POST /api/v1/audit/notifications`` (SPEC 5.3): HTTP in, the audit core, HTTP out.

Validation and storage belong to :mod:`kds.audit`; this module checks the media type, hands the raw
body to the core, answers 201 (a new record, committed) or 200 (the same record again: a safe
retry) and counts the write. Errors take the server's one error path: ``InvalidInput`` → 400
``validation-error`` listing every field, ``Conflict`` → 409, ``ServiceUnavailable`` → 503 with
``Retry-After``. The body limit (413) is enforced by Sanic before this handler runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from kds.audit import NotificationRecord, NotificationRequest, parse_notification
from kds.audit.store import TABLE, store_notification
from kds.errors import KdsError
from kds.server.api.responses import JSON, json_bytes
from kds.server.http import metrics

if TYPE_CHECKING:
    from sanic import Request
    from sanic.response import HTTPResponse

ROUTE = "/api/v1/audit/notifications"
# datastorage_write_total{status}: "success" (inserted), this (the same record was already stored), or the error's slug
WRITE_DUPLICATE = "duplicate"


class UnsupportedMediaType(KdsError):
    slug = "unsupported-media-type"


def require_json(content_type: str | None) -> None:
    """``application/json``, optionally with ``charset=utf-8`` (JSON is UTF-8, RFC 8259); anything else is 415."""
    media_type, _, parameters = (content_type or "").partition(";")
    if media_type.strip().lower() != JSON:
        shown = repr(content_type) if content_type else "none"
        raise UnsupportedMediaType(f"the body must be sent as {JSON}, got Content-Type {shown}")
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise UnsupportedMediaType(f"the body must be UTF-8 encoded, got charset {value.strip()!r}")


async def create_notification(request: Request) -> HTTPResponse:
    require_json(request.headers.get("content-type"))
    notification = parse_notification(request.body or b"")
    record, created = await _store(request, notification)
    return json_bytes(orjson.dumps(record), status=201 if created else 200)


async def _store(request: Request, notification: NotificationRequest) -> tuple[dict[str, Any], bool]:
    database = request.app.ctx.state.database
    with metrics.timed_write(TABLE) as timing:
        # Driver errors leave the connection block untranslated (the pool wrapper notices broken
        # connections by them); the server's error path maps them (503, 504, ...).
        async with database.connection() as conn:
            record, created = await store_notification(conn, notification)
        if not created:
            timing.status = WRITE_DUPLICATE
    return record, created


def openapi(document: dict[str, Any]) -> None:
    """Add this endpoint and its models to the server's OpenAPI document (generated from the core's models)."""
    from pydantic.json_schema import models_json_schema

    ref = "#/components/schemas/{model}"
    _, top = models_json_schema(
        [(NotificationRequest, "validation"), (NotificationRecord, "serialization")], ref_template=ref
    )
    document["components"]["schemas"].update(top.get("$defs", {}))

    def problem(description: str, **headers: Any) -> dict[str, Any]:
        response: dict[str, Any] = {
            "description": description,
            "content": {"application/problem+json": {"schema": {"$ref": ref.format(model="Problem")}}},
        }
        if headers:
            response["headers"] = headers
        return response

    record = {"application/json": {"schema": {"$ref": ref.format(model="NotificationRecord")}}}
    retry_after = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}}
    document["paths"][ROUTE] = {
        "post": {
            "operationId": "recordNotification",
            "summary": "Record a notification in the audit trail, exactly once per notification_id.",
            "description": (
                "201 only after the row is committed. Sending the same notification_id again with the same "
                "content (after normalisation) is a safe retry answered 200 with the stored record; different "
                "content is 409 `conflict`. On 503 or a timeout, retry the same body."
            ),
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": ref.format(model="NotificationRequest")}}},
            },
            "responses": {
                "201": {"description": "Recorded (committed).", "content": record},
                "200": {"description": "Already recorded with the same content (a safe retry).", "content": record},
                "400": problem("`validation-error`: the body is not valid JSON, or every invalid field in `errors`."),
                "409": problem("`conflict`: the notification_id already records a different notification."),
                "413": problem("`payload-too-large`: the body is larger than KDS_MAX_BODY_BYTES."),
                "415": problem("`unsupported-media-type`: the Content-Type is not application/json."),
                "503": problem("`service-unavailable`: nothing was recorded; retry the same body.", **retry_after),
                "504": problem("`query-timeout`: the write may or may not have been committed; retry the same body."),
            },
        }
    }
