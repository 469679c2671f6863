"""Bearer-token authentication of the API (SPEC 5.6): the HTTP side of :mod:`kds.auth`.

Off unless ``KDS_AUTH_TOKENS_FILE`` is set. Then every request needs a known token, except the open
paths (``/health*``, ``/api/v1/openapi.json``); a matched route also needs its scope. Requests that
match no route still need a valid token before they learn 404 or 405, so the API's shape is not
disclosed to anonymous clients; under an area (``/api/v1/incidents``, ``/api/v1/audit``,
``/metrics``) they also need the area's scope. A route missing from :data:`SCOPE_BY_ROUTE` is refused to every
token (fail closed): a new endpoint must be given its scope here.

Tokens are never logged: the middleware reads the ``Authorization`` header and keeps only the
principal's name on ``request.ctx.principal``.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import TYPE_CHECKING

from sanic.exceptions import Forbidden, Unauthorized

from kds.auth import AUDIT_WRITE, INCIDENTS_READ, METRICS_READ, TokenStore
from kds.server.http import limits
from kds.server.http.logs import event
from kds.server.http.observe import UNMATCHED_ROUTE, route_template

if TYPE_CHECKING:
    from sanic import Request, Sanic

    from kds.settings import Settings

SCOPE_BY_ROUTE: dict[str, str] = {
    "/api/v1/incidents": INCIDENTS_READ,
    "/api/v1/incidents/<id>": INCIDENTS_READ,
    "/api/v1/audit/notifications": AUDIT_WRITE,
    "/metrics": METRICS_READ,
}
# Paths that match no route still fall in an area: a token without the area's scope learns nothing more.
SCOPE_BY_AREA: tuple[tuple[str, str], ...] = (
    ("/api/v1/incidents", INCIDENTS_READ),
    ("/api/v1/audit", AUDIT_WRITE),
    ("/metrics", METRICS_READ),
)
OPEN_ROUTES = frozenset({"/health", "/health/ready", "/health/live", "/api/v1/openapi.json"})
SCHEME = "Bearer"
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def install(app: Sanic, settings: Settings) -> None:
    """Load the tokens (a missing or malformed file raises TokenFileError) and add the middleware."""
    if settings.auth_tokens_file is None:
        return
    app.ctx.tokens = TokenStore(settings.auth_tokens_file, report=event)
    app.on_request(authenticate)
    app.after_server_start(_watch_tokens_file)


async def _watch_tokens_file(app: Sanic) -> None:
    """Check the file every second even without traffic, so a rotation (or a bad update) shows at once."""
    import asyncio

    store: TokenStore = app.ctx.tokens

    async def watch() -> None:
        while True:
            await asyncio.sleep(store.check_interval)
            store.check()

    app.ctx.state.background.append(asyncio.get_running_loop().create_task(watch()))


def is_open(request: Request) -> bool:
    template = route_template(request)
    if template != UNMATCHED_ROUTE:
        return template in OPEN_ROUTES
    path = request.path
    return path == "/health" or path.startswith("/health/") or path == "/api/v1/openapi.json"


async def authenticate(request: Request) -> None:
    if limits.rejected(request) or is_open(request):
        return
    store: TokenStore = request.app.ctx.tokens
    authorization = request.headers.get("authorization")
    principal = store.authenticate(authorization)
    if principal is None:
        detail = "a bearer token is required" if not authorization else "the bearer token is not valid"
        raise Unauthorized(detail, scheme=SCHEME, quiet=True)
    request.ctx.principal = principal.name
    template = route_template(request)
    if template == UNMATCHED_ROUTE:
        scope = area_scope(request.path)
        if scope is None:
            return  # a valid token is enough to learn 404 or 405
    else:
        scope = SCOPE_BY_ROUTE.get(template)
        if scope is None:
            raise Forbidden("no token grants access to this route", quiet=True)
    if not principal.allows(scope):
        raise Forbidden(f"the token does not grant the scope {scope}", quiet=True)


def area_scope(path: str) -> str | None:
    for prefix, scope in SCOPE_BY_AREA:
        if path == prefix or path.startswith(prefix + "/"):
            return scope
    return None


def is_loopback(host: str) -> bool:
    """Is the bind address reachable only from this machine?"""
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def announce(settings: Settings) -> None:
    """Once per server (main process): check the tokens file, and say whether authentication is on."""
    path = settings.auth_tokens_file
    if path is not None:
        tokens = TokenStore(path, report=event).table
        event(logging.INFO, "authentication on", tokens_file=str(path), tokens=len(tokens))
    elif not is_loopback(settings.host):
        event(
            logging.WARNING,
            "authentication is off and the server listens on a non-loopback address: anyone who can reach "
            "it can read incidents and write audit records; set KDS_AUTH_TOKENS_FILE to require tokens",
            host=settings.host,
        )
