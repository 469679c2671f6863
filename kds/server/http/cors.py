"""CORS (docs/security.md): off unless ``KDS_CORS_ORIGINS`` lists origins (comma-separated, exact match).

Off, responses carry no ``Access-Control-*`` header and browsers keep other origins out. On, a
request whose ``Origin`` is listed gets that origin echoed (with ``Vary: Origin``), and a preflight
(``OPTIONS`` with ``Access-Control-Request-Method``) from a listed origin is answered 204 before
authentication (browsers send preflights without credentials). Other origins get nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sanic.response import HTTPResponse

from kds.server.process.state import worker_state

if TYPE_CHECKING:
    from sanic import Request
    from sanic.response import BaseHTTPResponse

ALLOW_METHODS = "GET, POST, OPTIONS"
ALLOW_HEADERS = "Authorization, Content-Type, Accept, X-Request-ID"
EXPOSE_HEADERS = "X-Request-ID, Retry-After, WWW-Authenticate"
MAX_AGE_SECONDS = "600"


def allowed_origin(request: Request) -> str | None:
    origin = request.headers.get("origin")
    return origin if origin is not None and origin in worker_state(request.app).cors_origins else None


async def preflight(request: Request) -> HTTPResponse | None:
    if request.method != "OPTIONS" or "access-control-request-method" not in request.headers:
        return None
    origin = allowed_origin(request)
    if origin is None:
        return None
    return HTTPResponse(
        status=204,
        headers={
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": ALLOW_METHODS,
            "Access-Control-Allow-Headers": ALLOW_HEADERS,
            "Access-Control-Max-Age": MAX_AGE_SECONDS,
            "Vary": "Origin",
        },
    )


async def allow_origin(request: Request, response: BaseHTTPResponse) -> None:
    """Echo a listed origin; ``Vary: Origin`` on every response, so caches keep origins apart."""
    headers = response.headers
    vary = headers.get("Vary")
    if vary is None:
        headers["Vary"] = "Origin"
    elif "origin" not in vary.lower():
        headers["Vary"] = f"{vary}, Origin"
    origin = allowed_origin(request)
    if origin is not None and "Access-Control-Allow-Origin" not in headers:
        headers["Access-Control-Allow-Origin"] = origin
        headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
