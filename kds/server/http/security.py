"""Everything between the socket and the handlers that keeps the server safe (SPEC 5.6).

Request middleware order: (request ids and timing, from :mod:`kds.server.http.observe`) → the URL limit
(:mod:`kds.server.http.limits`) → CORS preflight (:mod:`kds.server.http.cors`) → authentication
(:mod:`kds.server.http.auth`). Slow clients are bounded by :mod:`kds.server.process.timeouts`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kds.server.http import auth, cors, limits

if TYPE_CHECKING:
    from sanic import Sanic

    from kds.settings import Settings


def install(app: Sanic, settings: Settings) -> None:
    """In every worker: limits, CORS and authentication middleware."""
    limits.configure(app, settings)
    app.on_request(limits.check_request)
    cors.install(app, settings)
    auth.install(app, settings)


def announce(settings: Settings) -> None:
    """Once per server, in the main process before the workers start (raises on a bad tokens file)."""
    auth.announce(settings)
