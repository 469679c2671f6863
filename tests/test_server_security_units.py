"""Unit checks of the server's security wiring (no server process)."""

from __future__ import annotations

import pytest

from kds.server.http import auth


def registered_templates() -> set[str]:
    from sanic import Sanic

    from kds.server.process.app import create_app
    from kds.settings import load_settings

    app = create_app(load_settings(database_url="postgresql://kds@localhost/kds"))
    try:
        return {route.ctx.template for route in app.router.routes}
    finally:
        Sanic._app_registry.pop(app.name, None)


def test_every_route_is_open_or_has_a_scope() -> None:
    """A new endpoint must be placed in auth.SCOPE_BY_ROUTE (or OPEN_ROUTES): otherwise it is refused to all."""
    templates = registered_templates()
    assert templates == set(auth.SCOPE_BY_ROUTE) | auth.OPEN_ROUTES


@pytest.mark.parametrize(
    ("path", "scope"),
    [
        ("/api/v1/incidents", "incidents:read"),
        ("/api/v1/incidents/7/anything", "incidents:read"),
        ("/api/v1/incidentsX", None),
        ("/api/v1/audit", "audit:write"),
        ("/api/v1/audit/other", "audit:write"),
        ("/metrics", "metrics:read"),
        ("/metrics/x", "metrics:read"),
        ("/metricsx", None),
        ("/", None),
        ("/api/v2/incidents", None),
    ],
)
def test_area_scope_of_unmatched_paths(path: str, scope: str | None) -> None:
    assert auth.area_scope(path) == scope


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("kds.example.com", False),
        ("", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert auth.is_loopback(host) is loopback
