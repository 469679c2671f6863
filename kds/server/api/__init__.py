"""Route handlers, grouped by resource; :func:`register` mounts them with their route templates."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kds.server.http.observe import instrumented

if TYPE_CHECKING:
    from sanic import Sanic


def register(app: Sanic) -> None:
    from kds.server.api import audit, health, incidents, meta

    for method, template, handler in (
        ("GET", "/api/v1/incidents", incidents.list_incidents),
        ("GET", "/api/v1/incidents/<id>", incidents.get_incident),
        ("POST", audit.ROUTE, audit.create_notification),
        ("GET", "/health", health.health),
        ("GET", "/health/ready", health.ready),
        ("GET", "/health/live", health.live),
        ("GET", "/metrics", meta.metrics),
        ("GET", "/api/v1/openapi.json", meta.openapi),
    ):
        app.add_route(
            instrumented(handler),
            template,
            methods=[method],
            name=handler.__name__,
            ctx_template=template,
        )
