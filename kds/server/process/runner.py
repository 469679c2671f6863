"""Start ``kds serve``: resolve the database once, prepare the metrics directory, run the workers.

Workers are always separate processes under Sanic's worker manager (also with one worker), so the
main process can forward SIGTERM and enforce the second-signal rule. Workers are forked from the
main process once the app is built (no re-import: a worker is up in milliseconds, which matters for
rolling restarts); each opens its own database pool after the fork.
"""

from __future__ import annotations

import logging
import shutil
import time
from typing import TYPE_CHECKING

from kds.server.process.metrics_dir import prepare_metrics_directory

if TYPE_CHECKING:
    from kds.server.process.state import App
    from kds.settings import Settings


def run(settings: Settings) -> None:
    """Serve until a signal stops every worker; returns normally after a graceful shutdown."""
    from kds.db.connection import check_url
    from kds.db.source import resolve

    source = resolve(settings)  # migrates only the embedded default, never a configured database
    check_url(source.url)
    if settings.read_database_url:
        check_url(settings.read_database_url)
    settings = settings.model_copy(update={"database_url": source.url})

    metrics_dir, created = prepare_metrics_directory()

    def cleanup() -> None:
        if created:
            shutil.rmtree(metrics_dir, ignore_errors=True)

    # first: checks the Sanic/prometheus-client versions and turns Sanic's start-up hint and colours off
    from kds.server.process import private_apis  # noqa: F401, I001
    from sanic import Sanic

    from kds.server.http.logs import configure_current_process, event
    from kds.server.process.app import create_app
    from kds.server.process.supervisor import Supervisor

    configure_current_process(settings.log_format, settings.log_level)
    from kds.server.http import auth
    from kds.server.process.timeouts import DeadlineHttpProtocol

    try:
        auth.announce(settings)  # once per server: a bad tokens file stops the start here
    except BaseException:
        cleanup()
        raise
    app = create_app(settings)
    app.prepare(
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        motd=False,
        access_log=False,
        protocol=DeadlineHttpProtocol,  # KDS_REQUEST_TIMEOUT bounds a whole request (kds.server.process.timeouts)
    )

    signals = Supervisor(app, settings.shutdown_delay, on_exit=cleanup)
    signals.watch()

    @app.main_process_ready
    async def _install_signals(app: App) -> None:
        signals.install()

    event(
        logging.INFO,
        "kds serve starting",
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        pool_size=settings.pool_size,
        embedded_database=source.embedded,
        read_database=bool(settings.read_database_url),
        metrics_dir=str(metrics_dir),
    )
    try:
        Sanic.start_method = "fork"
        Sanic.serve(primary=app)
    finally:
        cleanup()
    since_signal = round(time.monotonic() - signals.first_at, 3) if signals.first_at is not None else None
    event(logging.INFO, "kds serve stopped", total_s=since_signal)
