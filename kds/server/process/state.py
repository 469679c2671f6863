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
    # the primary: audit writes, and every read when no read database is configured
    database: Database
    # KDS_READ_DATABASE_URL: list, get, summary, export and watch read here (docs/scaling.md#read-replicas)
    read_database: Database | None = None
    openapi: bytes = b""
    cursor_key: bytes = b""
    # set by the shutdown sequence (kds.server.process.shutdown)
    shutting_down: bool = False
    draining: bool = False
    # requests inside a handler right now (the drain waits for these)
    in_flight: int = 0
    # per-worker background tasks (pool gauge), cancelled when the worker stops
    background: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def reads(self) -> Database:
        """Where reads go: the read database when one is configured, else the primary."""
        return self.read_database if self.read_database is not None else self.database

    @property
    def databases(self) -> tuple[Database, ...]:
        """Every pool of this worker: the primary first, then the read database if any."""
        return (self.database,) if self.read_database is None else (self.database, self.read_database)


def of(app: Sanic) -> WorkerState:
    return app.ctx.state
