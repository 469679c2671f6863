"""``POST /api/v1/audit/notifications`` (docs/api.md): HTTP in, the audit core, HTTP out.

Validation and storage belong to :mod:`kds.audit`; this module checks the media type, hands the raw
body to the core, answers 201 (a new record, committed) or 200 (the same record again: a safe
retry) and counts the write. Errors take the server's one error path: ``InvalidInput`` → 400
``validation-error`` listing every field, ``Conflict`` → 409, ``ServiceUnavailable`` → 503 with
``Retry-After``. The body limit (413) is enforced by Sanic before this handler runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from kds.audit import NotificationRequest, parse_notification
from kds.audit.store import TABLE, store_notification
from kds.errors import KdsError
from kds.server.api.responses import JSON, json_bytes
from kds.server.http import metrics
from kds.server.process.state import worker_state

if TYPE_CHECKING:
    from sanic import Request
    from sanic.response import HTTPResponse

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
    database = worker_state(request.app).database
    with metrics.timed_write(TABLE) as timing:
        # Driver errors leave the connection block untranslated (the pool wrapper notices broken
        # connections by them); the server's error path maps them (503, 504, ...).
        async with database.connection() as conn:
            record, created = await store_notification(conn, notification, setup=database.transaction_setup)
        if not created:
            timing.status = WRITE_DUPLICATE
    return record, created
