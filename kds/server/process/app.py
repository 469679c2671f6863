"""The application factory: one Sanic app per worker process, built from the settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sanic import Sanic

from kds.server import api
from kds.server.http import observe, security
from kds.server.http.logs import logging_config
from kds.server.http.problems import ProblemErrorHandler
from kds.server.process.database import READ, Database
from kds.server.process.shutdown import WorkerShutdown
from kds.server.process.state import WorkerState

if TYPE_CHECKING:
    from kds.settings import Settings

APP_NAME = "kds"
POOL_GAUGE_INTERVAL = 1.0
# the read database's replay lag is measured every this many seconds (one short query per worker)
LAG_INTERVAL = 5.0


def create_app(settings: Settings) -> Sanic:
    """Build the app; ``settings.database_url`` is already resolved (see :func:`kds.server.process.runner.run`)."""
    if not settings.database_url:
        raise ValueError("create_app needs settings with a database_url (resolved by the runner)")
    app = Sanic(
        APP_NAME,
        log_config=logging_config(settings.log_format, settings.log_level),
        error_handler=ProblemErrorHandler(),
        env_prefix="KDS_SANIC_",
    )
    _configure(app, settings)
    from kds.server.api.openapi import document_bytes

    read_database = Database(settings.read_database_url, settings, role=READ) if settings.read_database_url else None
    app.ctx.state = WorkerState(
        settings=settings, database=Database(settings.database_url, settings), read_database=read_database
    )
    app.ctx.state.openapi = document_bytes()
    app.ctx.state.cursor_key = settings.cursor_key
    app.ctx.shutdown = WorkerShutdown(app)

    app.on_request(observe.on_request)
    app.on_response(observe.on_response)
    security.install(app, settings)
    api.register(app)
    app.before_server_start(_open_database)
    app.after_server_start(_start_worker)
    app.before_server_stop(app.ctx.shutdown.before_server_stop)
    app.after_server_stop(app.ctx.shutdown.after_server_stop)
    return app


def _configure(app: Sanic, settings: Settings) -> None:
    config = app.config
    config.REQUEST_MAX_SIZE = settings.max_body_bytes
    config.REQUEST_TIMEOUT = settings.request_timeout
    config.RESPONSE_TIMEOUT = settings.response_timeout
    # Step 3 of the shutdown: how long Sanic waits for in-flight requests once it stopped accepting.
    config.GRACEFUL_SHUTDOWN_TIMEOUT = settings.drain_timeout
    config.ACCESS_LOG = False  # kds logs one line per request itself
    config.MOTD = False
    config.NOISY_EXCEPTIONS = False
    config.FALLBACK_ERROR_FORMAT = "json"
    config.AUTO_RELOAD = False
    config.INSPECTOR = False


async def _open_database(app: Sanic) -> None:
    for database in app.ctx.state.databases:
        await database.open()


async def _start_worker(app: Sanic) -> None:
    import asyncio

    loop = asyncio.get_running_loop()
    # Sanic registered its own SIGTERM/SIGINT handlers just before this listener; replace them.
    app.ctx.shutdown.install(loop)
    state = app.ctx.state
    state.background.append(loop.create_task(_publish_pool_gauge(app)))
    if state.read_database is not None:
        state.background.append(loop.create_task(_publish_replica_lag(state.read_database)))


async def _publish_pool_gauge(app: Sanic) -> None:
    import asyncio

    from kds.server.http import metrics

    while True:
        metrics.publish_pools(app.ctx.state.databases)
        await asyncio.sleep(POOL_GAUGE_INTERVAL)


async def _publish_replica_lag(read_database: Database) -> None:
    """``datastorage_replica_lag_seconds``: the last measured lag (kept while the read database is down)."""
    import asyncio

    from kds.server.http import metrics

    while True:
        lag = await read_database.replica_lag()
        if lag is not None:
            metrics.REPLICA_LAG.set(lag)
        await asyncio.sleep(LAG_INTERVAL)
