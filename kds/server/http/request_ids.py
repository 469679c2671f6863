"""``X-Request-ID`` (docs/api.md): keep a well-formed incoming id, otherwise mint a fresh UUID4."""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING

from kds.server.process.state import request_state

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
    ctx = request_state(request)
    if ctx.request_id is None:
        headers = getattr(request, "headers", None)
        ctx.request_id = choose(headers.get(HEADER) if headers is not None else None)
    return ctx.request_id
