"""The middleware of a worker, in the order it runs: the one place that states it.

Request middleware (each may answer early, which skips the rest and the handler):

1. :func:`kds.server.http.observe.on_request` — start the clock, choose the request id;
2. :func:`kds.server.http.limits.check_request` — 414 for a long request target, 413 for a declared
   body over the limit, on any path;
3. :func:`kds.server.http.cors.preflight` — answer a CORS preflight from a listed origin (only with
   ``KDS_CORS_ORIGINS``), before authentication, as browsers send preflights without credentials;
4. :func:`kds.server.http.auth.authenticate` — bearer token and scope (only with ``KDS_AUTH_TOKENS_FILE``).

Response middleware, on every response (errors included):

1. :func:`kds.server.http.cors.allow_origin` — CORS headers for a listed origin (only with CORS on);
2. :func:`kds.server.http.observe.on_response` — request id and ``nosniff`` headers, ``Connection:
   close`` while draining, then the request's log line and metrics.

Slow clients are bounded below the middleware, in the protocol (:mod:`kds.server.process.timeouts`).
Limits, CORS and authentication are described for users in docs/security.md.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from kds.server.http import auth, cors, limits, observe

if TYPE_CHECKING:
    from sanic import HTTPResponse, Request
    from sanic.response import BaseHTTPResponse

    from kds.server.process.state import App
    from kds.settings import Settings

# an early answer from request middleware skips the rest and the handler
RequestMiddleware = Callable[["Request"], Coroutine[Any, Any, "HTTPResponse | None"]]
ResponseMiddleware = Callable[["Request", "BaseHTTPResponse"], Coroutine[Any, Any, None]]


def request_middleware(settings: Settings) -> list[RequestMiddleware]:
    """The request middleware, in the order it runs."""
    chain: list[RequestMiddleware] = [observe.on_request, limits.check_request]
    if settings.cors_origin_list:
        chain.append(cors.preflight)
    if settings.auth_tokens_file is not None:
        chain.append(auth.authenticate)
    return chain


def response_middleware(settings: Settings) -> list[ResponseMiddleware]:
    """The response middleware, in the order it runs."""
    chain: list[ResponseMiddleware] = []
    if settings.cors_origin_list:
        chain.append(cors.allow_origin)
    chain.append(observe.on_response)
    return chain


def install(app: App, settings: Settings) -> None:
    """Register both chains (Sanic runs response middleware in the reverse order of registration)."""
    limits.configure(app, settings)
    for on_request in request_middleware(settings):
        app.middleware(on_request, "request")
    for on_response in reversed(response_middleware(settings)):
        app.middleware(on_response, "response")
    if settings.auth_tokens_file is not None:
        app.after_server_start(auth.watch_tokens_file)
