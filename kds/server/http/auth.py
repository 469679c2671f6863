"""Bearer-token authentication of the API (docs/security.md): the HTTP side of :mod:`kds.auth`.

Off unless ``KDS_AUTH_TOKENS_FILE`` is set. Then every request needs a known token, except the open
routes of the route table (:mod:`kds.server.api.routes`); a matched route also needs the scope the
table gives it. Requests that match no route still need a valid token before they learn 404 or 405,
so the API's shape is not disclosed to anonymous clients; under an area (``/api/v1/incidents``,
``/api/v1/audit``, ``/metrics``) they also need the area's scope. A route registered without a scope
is refused to every token (fail closed). See docs/security.md.

Tokens are never logged: the middleware reads the ``Authorization`` header and keeps only the
principal's name on ``request.ctx.principal``.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import TYPE_CHECKING

from sanic.exceptions import Forbidden, Unauthorized

from kds.auth import TokenStore
from kds.server.api import routes
from kds.server.http import limits
from kds.server.http.logs import event
from kds.server.http.observe import UNMATCHED_ROUTE, route_template
from kds.server.process.state import request_state, worker_state

if TYPE_CHECKING:
    from sanic import Request

    from kds.server.process.state import App
    from kds.settings import Settings

SCHEME = "Bearer"
UNSCOPED = object()  # a route registered without a scope: refused to every token (fail closed)
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def load_tokens(settings: Settings) -> TokenStore | None:
    """The tokens when authentication is on (a missing or malformed file raises TokenFileError)."""
    if settings.auth_tokens_file is None:
        return None
    return TokenStore(settings.auth_tokens_file, report=event)


async def watch_tokens_file(app: App) -> None:
    """Check the file every second even without traffic, so a rotation (or a bad update) shows at once."""
    import asyncio

    state = worker_state(app)
    store = state.tokens
    if store is None:
        return

    async def watch() -> None:
        while True:
            await asyncio.sleep(store.check_interval)
            store.check()

    state.background.append(asyncio.get_running_loop().create_task(watch()))


def route_scope(request: Request) -> str | object | None:
    """The matched route's scope (route metadata from the route table); :data:`UNSCOPED` if it has none."""
    return getattr(request.route.ctx, "scope", UNSCOPED) if request.route is not None else UNSCOPED


def is_open(request: Request) -> bool:
    if route_template(request) != UNMATCHED_ROUTE:
        return route_scope(request) is routes.OPEN
    return routes.is_open_path(request.path)


async def authenticate(request: Request) -> None:
    if limits.rejected(request) or is_open(request):
        return
    store = worker_state(request.app).tokens
    if store is None:
        return  # authentication is off (the middleware is only installed when it is on)
    authorization = request.headers.get("authorization")
    principal = store.authenticate(authorization)
    if principal is None:
        detail = "a bearer token is required" if not authorization else "the bearer token is not valid"
        raise Unauthorized(detail, scheme=SCHEME, quiet=True)
    request_state(request).principal = principal.name
    template = route_template(request)
    if template == UNMATCHED_ROUTE:
        area = routes.area_scope(request.path)
        if area is None:
            return  # a valid token is enough to learn 404 or 405
        scope = area
    else:
        found = route_scope(request)
        if not isinstance(found, str):
            raise Forbidden("no token grants access to this route", quiet=True)
        scope = found
    if not principal.allows(scope):
        raise Forbidden(f"the token does not grant the scope {scope}", quiet=True)


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
