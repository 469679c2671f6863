"""``/health``, ``/health/ready``, ``/health/live`` with the exact bodies of docs/api.md."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from kds.server.api.responses import json_bytes
from kds.server.process.state import worker_state

if TYPE_CHECKING:
    from sanic import Request
    from sanic.response import HTTPResponse

ALIVE = orjson.dumps({"status": "alive"})
READY = orjson.dumps({"status": "ready"})
SHUTTING_DOWN = orjson.dumps({"status": "shutting_down", "reason": "graceful_shutdown_in_progress"})
NOT_READY = orjson.dumps({"status": "not_ready", "reason": "database_unreachable"})
HEALTHY = orjson.dumps({"status": "healthy", "database": "connected"})
UNHEALTHY = orjson.dumps({"status": "unhealthy", "database": "unreachable"})


async def live(request: Request) -> HTTPResponse:
    """Always 200, also during shutdown; never touches the database."""
    return json_bytes(ALIVE)


async def ready(request: Request) -> HTTPResponse:
    """503 as soon as shutdown began; otherwise whether the database answers ``SELECT 1`` right now."""
    state = worker_state(request.app)
    reachable = not state.shutting_down and await state.database.ping()
    if state.shutting_down:  # read after the ping: shutdown may have begun while it waited
        return json_bytes(SHUTTING_DOWN, 503)
    return json_bytes(READY) if reachable else json_bytes(NOT_READY, 503)


async def health(request: Request) -> HTTPResponse:
    reachable = await worker_state(request.app).database.ping()
    return json_bytes(HEALTHY) if reachable else json_bytes(UNHEALTHY, 503)
