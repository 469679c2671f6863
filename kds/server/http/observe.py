"""Request ids, the one log line per request and the HTTP metrics.

``on_request`` / ``on_response`` are the app-wide middleware; :func:`instrumented` wraps every route
handler to count in-flight requests (what the shutdown drain waits for) and to finish streamed
responses, whose log line and duration are only known when the last byte is sent.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Coroutine
from time import perf_counter
from typing import TYPE_CHECKING, Any

from kds.server.http import metrics, request_ids
from kds.server.http.logs import event
from kds.server.process import private_apis
from kds.server.process.state import request_state, worker_state

if TYPE_CHECKING:
    from sanic import Request
    from sanic.response import BaseHTTPResponse, HTTPResponse

UNMATCHED_ROUTE = "unmatched"
CLIENT_CLOSED = 499  # nginx's convention for "the client went away before the response"

Handler = Callable[..., Coroutine[Any, Any, "HTTPResponse | None"]]


def route_template(request: Request) -> str:
    """The route's template (``/api/v1/incidents/<id>``), or a fixed label: never a raw path."""
    route = getattr(request, "route", None)
    if route is None:
        return UNMATCHED_ROUTE
    return getattr(route.ctx, "template", UNMATCHED_ROUTE)


async def on_request(request: Request) -> None:
    request_state(request).started = perf_counter()
    request_ids.of(request)


async def on_response(request: Request, response: BaseHTTPResponse) -> None:
    headers = response.headers
    headers[request_ids.HEADER] = request_ids.of(request)
    headers["X-Content-Type-Options"] = "nosniff"
    state = worker_state(request.app)
    if state.draining:
        # Shutdown is draining: this connection ends with this response (Connection: close).
        private_apis.close_after_response(request)
    if not request_state(request).streaming:
        finish(request, response.status)


def finish(request: Request, status: int) -> None:
    """Record the request once: metrics by route template, and the request log line."""
    ctx = request_state(request)
    if ctx.finished:
        return
    ctx.finished = True
    seconds = perf_counter() - ctx.started if ctx.started is not None else 0.0
    route = route_template(request)
    method = request.method
    metrics.observe_request(method, route, status, seconds)
    event(
        logging.INFO,
        "request",
        request_id=request_ids.of(request),
        method=method,
        route=route,
        path=request.path,
        status=status,
        duration_ms=round(seconds * 1000, 3),
    )


def instrumented(handler: Handler) -> Handler:
    """Count the request in flight while its handler runs; finish streamed or abandoned requests."""

    @functools.wraps(handler)
    async def wrapper(request: Request, *args: Any, **kwargs: Any) -> Any:
        state = worker_state(request.app)
        state.in_flight += 1
        metrics.HTTP_IN_FLIGHT.inc()
        try:
            return await handler(request, *args, **kwargs)
        except asyncio.CancelledError:
            finish(request, request_state(request).stream_status or CLIENT_CLOSED)
            raise
        finally:
            state.in_flight -= 1
            metrics.HTTP_IN_FLIGHT.dec()
            ctx = request_state(request)
            if ctx.streaming:
                finish(request, ctx.stream_status or 200)

    return wrapper
