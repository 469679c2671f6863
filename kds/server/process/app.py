"""The application factory: one Sanic app per worker process, built from the settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sanic import Sanic

from kds.server.api import routes
from kds.server.http import auth, middleware
from kds.server.http.error_handler import ProblemErrorHandler
from kds.server.http.logs import logging_config
from kds.server.process.database import READ, Database
from kds.server.process.shutdown import WorkerShutdown
from kds.server.process.state import App, KdsRequest, WorkerState, worker_state

if TYPE_CHECKING:
    from kds.settings import Settings

APP_NAME = "kds"
POOL_GAUGE_INTERVAL = 1.0
# the read database's replay lag is measured every this many seconds (one short query per worker)
LAG_INTERVAL = 5.0


def create_app(settings: Settings) -> App:
    """Build the app; ``settings.database_url`` is already resolved (see :func:`kds.server.process.runner.run`)."""
    if not settings.database_url:
        raise ValueError("create_app needs settings with a database_url (resolved by the runner)")
    from kds.server.api.openapi import document_bytes

    state = WorkerState(
        settings=settings,
        database=Database(settings.database_url, settings),
        read_database=Database(settings.read_database_url, settings, role=READ) if settings.read_database_url else None,
        openapi=document_bytes(),
        cursor_key=settings.cursor_key,
        tokens=auth.load_tokens(settings),
        cors_origins=frozenset(settings.cors_origin_list),
    )
    app = Sanic(
        APP_NAME,
        ctx=state,
        request_class=KdsRequest,
        log_config=logging_config(settings.log_format, settings.log_level),
        error_handler=ProblemErrorHandler(),
        env_prefix="KDS_SANIC_",
    )
    _configure(app, settings)
    state.shutdown = shutdown = WorkerShutdown(app)
    middleware.install(app, settings)
    routes.register(app)
    app.before_server_start(_open_database)
    app.after_server_start(_start_worker)
    app.before_server_stop(shutdown.before_server_stop)
    app.after_server_stop(shutdown.after_server_stop)
    return app


def _configure(app: App, settings: Settings) -> None:
    # one update: Sanic declares the timeouts as int, kds's settings allow fractions of a second
    app.config.update(
        REQUEST_TIMEOUT=settings.request_timeout,
        RESPONSE_TIMEOUT=settings.response_timeout,
        # Step 3 of the shutdown: how long Sanic waits for in-flight requests once it stopped accepting.
        GRACEFUL_SHUTDOWN_TIMEOUT=settings.drain_timeout,
        ACCESS_LOG=False,  # kds logs one line per request itself
        MOTD=False,
        NOISY_EXCEPTIONS=False,
        FALLBACK_ERROR_FORMAT="json",
        AUTO_RELOAD=False,
        INSPECTOR=False,
    )


async def _open_database(app: App) -> None:
    for database in worker_state(app).databases:
        await database.open()


async def _start_worker(app: App) -> None:
    import asyncio

    loop = asyncio.get_running_loop()
    # Sanic registered its own SIGTERM/SIGINT handlers just before this listener; replace them.
    shutdown = worker_state(app).shutdown
    assert shutdown is not None  # set by create_app
    if not app.asgi:  # served as ASGI (in-process tests), the ASGI server owns the signals
        shutdown.install(loop)
    state = worker_state(app)
    state.background.append(loop.create_task(_publish_pool_gauge(app)))
    if state.read_database is not None:
        state.background.append(loop.create_task(_publish_replica_lag(state.read_database)))


async def _publish_pool_gauge(app: App) -> None:
    import asyncio

    from kds.server.http import metrics

    databases = worker_state(app).databases
    while True:
        metrics.publish_pools(databases)
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
