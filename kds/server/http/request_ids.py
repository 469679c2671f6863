"""``X-Request-ID`` (SPEC 5.4): keep a well-formed incoming id, otherwise mint a fresh UUID4."""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sanic import Request

HEADER = "X-Request-ID"
_WELL_FORMED = re.compile(r"[A-Za-z0-9._-]{1,128}")


def choose(incoming: str | None) -> str:
    """The incoming id when it is 1..128 characters of ``[A-Za-z0-9._-]``, else a fresh UUID4."""
    if incoming and _WELL_FORMED.fullmatch(incoming):
        return incoming
    return str(uuid.uuid4())


def of(request: Request) -> str:
    """The request's id, chosen on first use (also for requests that failed before any middleware)."""
    ctx = request.ctx
    request_id = getattr(ctx, "request_id", None)
    if request_id is None:
        headers = getattr(request, "headers", None)
        request_id = choose(headers.get(HEADER) if headers is not None else None)
        ctx.request_id = request_id
    return request_id
