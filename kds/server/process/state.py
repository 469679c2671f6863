"""What one worker process knows at run time (kept on ``app.ctx.state``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio

    from sanic import Sanic

    from kds.server.process.database import Database
    from kds.settings import Settings


@dataclass(slots=True)
class WorkerState:
    settings: Settings
    database: Database
    openapi: bytes = b""
    cursor_key: bytes = b""
    # set by the shutdown sequence (kds.server.process.shutdown)
    shutting_down: bool = False
    draining: bool = False
    # requests inside a handler right now (the drain waits for these)
    in_flight: int = 0
    # per-worker background tasks (pool gauge), cancelled when the worker stops
    background: list[asyncio.Task[None]] = field(default_factory=list)


def of(app: Sanic) -> WorkerState:
    return app.ctx.state
