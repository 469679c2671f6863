"""Typed state: what one worker process knows (``app.ctx``) and what one request carries (``request.ctx``).

The app is built with ``Sanic(ctx=WorkerState(...), request_class=KdsRequest)``; Sanic's
``Request.make_context`` gives every request a fresh :class:`RequestState` instead of an untyped
namespace.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from sanic import Request, Sanic
from sanic.config import Config

if TYPE_CHECKING:
    import asyncio

    from kds.auth import TokenStore
    from kds.server.process.database import Database
    from kds.server.process.shutdown import WorkerShutdown
    from kds.settings import Settings


@dataclass
class WorkerState:
    """``app.ctx`` of a worker (a plain dataclass: Sanic may add attributes of its own)."""

    settings: Settings
    # the primary: audit writes, and every read when no read database is configured
    database: Database
    # KDS_READ_DATABASE_URL: list, get, summary, export and watch read here (docs/scaling.md#read-replicas)
    read_database: Database | None = None
    openapi: bytes = b""
    cursor_key: bytes = b""
    # the bearer tokens when authentication is on (KDS_AUTH_TOKENS_FILE), re-read when the file changes
    tokens: TokenStore | None = None
    # origins answered with CORS headers (KDS_CORS_ORIGINS); empty: CORS off
    cors_origins: frozenset[str] = frozenset()
    shutdown: WorkerShutdown | None = None
    # set by the shutdown sequence (kds.server.process.shutdown)
    shutting_down: bool = False
    draining: bool = False
    # requests inside a handler right now (the drain waits for these)
    in_flight: int = 0
    # per-worker background tasks (pool gauge, tokens file watch), cancelled when the worker stops
    background: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def reads(self) -> Database:
        """Where reads go: the read database when one is configured, else the primary."""
        return self.read_database if self.read_database is not None else self.database

    @property
    def databases(self) -> tuple[Database, ...]:
        """Every pool of this worker: the primary first, then the read database if any."""
        return (self.database,) if self.read_database is None else (self.database, self.read_database)


App = Sanic[Config, WorkerState]
"""The type of kds's app: Sanic's own config, a :class:`WorkerState` as ``app.ctx``."""


@dataclass(slots=True)
class RequestState:
    """``request.ctx``: set by the middleware and handlers of :mod:`kds.server.http` and :mod:`kds.server.api`."""

    request_id: str | None = None  # chosen on first use (kds.server.http.request_ids)
    started: float | None = None  # perf_counter() when the request middleware began
    rejected: bool = False  # refused by the protocol layer (malformed, too large, too slow)
    principal: str | None = None  # the authenticated token's name (never the token)
    streaming: bool = False  # the handler streams its response; the request is finished by the handler
    stream_status: int | None = None  # the status a cut stream is recorded with
    finished: bool = False  # its log line and metrics are written


class KdsRequest(Request):
    """Sanic's request with a typed context."""

    ctx: RequestState  # type: ignore[assignment]

    @staticmethod
    def make_context() -> RequestState:  # type: ignore[override]
        return RequestState()


def worker_state(app: Sanic[Any, Any]) -> WorkerState:
    """``app.ctx`` of kds's app (``request.app`` is typed as a plain Sanic app)."""
    return cast("WorkerState", app.ctx)


def request_state(request: Request) -> RequestState:
    return cast("RequestState", request.ctx)
