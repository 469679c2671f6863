"""``/health``, ``/health/ready``, ``/health/live`` with the exact bodies of docs/api.md."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import orjson

from kds.server.api.responses import json_bytes
from kds.server.process.state import worker_state

if TYPE_CHECKING:
    from sanic import Request
    from sanic.response import HTTPResponse

    from kds.server.process.database import Database

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
    """503 as soon as shutdown began; otherwise whether every database answers ``SELECT 1`` right now.

    With a read database both the primary and the read database must answer (docs/scaling.md#read-replicas).
    """
    state = worker_state(request.app)
    reachable = not state.shutting_down and all(await _ping_all(state.databases))
    if state.shutting_down:  # read after the ping: shutdown may have begun while it waited
        return json_bytes(SHUTTING_DOWN, 503)
    return json_bytes(READY) if reachable else json_bytes(NOT_READY, 503)


async def health(request: Request) -> HTTPResponse:
    """``database`` and, with a read database, ``read_database``: ``connected`` or ``unreachable``."""
    state = worker_state(request.app)
    if state.read_database is None:
        reachable = await state.database.ping()
        return json_bytes(HEALTHY) if reachable else json_bytes(UNHEALTHY, 503)
    primary, read = await _ping_all(state.databases)
    body = {
        "status": "healthy" if primary and read else "unhealthy",
        "database": _connection_word(primary),
        "read_database": _connection_word(read),
    }
    return json_bytes(orjson.dumps(body), 200 if primary and read else 503)


async def _ping_all(databases: tuple[Database, ...]) -> list[bool]:
    """Ping every pool at once (a readiness probe waits for the slowest, not the sum)."""
    return list(await asyncio.gather(*(database.ping() for database in databases)))


def _connection_word(reachable: bool) -> str:
    return "connected" if reachable else "unreachable"
