"""Unit checks of the server's security wiring (no server process)."""

from __future__ import annotations

import pytest

from kds.server.api import routes
from kds.server.http import auth


def registered_routes() -> set[tuple[str, str, str | None]]:
    from sanic import Sanic

    from kds.server.process.app import create_app
    from kds.settings import load_settings

    app = create_app(load_settings(database_url="postgresql://kds@localhost/kds"))
    try:
        return {
            (method, route.ctx.template, route.ctx.scope) for route in app.router.routes for method in route.methods
        }
    finally:
        Sanic.unregister_app(app)


def test_routing_and_authorization_come_from_the_route_table() -> None:
    """Every mounted route is a row of the table, with the row's scope as route metadata."""
    assert registered_routes() == {
        ("GET", "/api/v1/incidents", "incidents:read"),
        ("GET", "/api/v1/incidents/summary", "incidents:read"),
        ("GET", "/api/v1/incidents/<id>", "incidents:read"),
        ("POST", "/api/v1/audit/notifications", "audit:write"),
        ("GET", "/metrics", "metrics:read"),
        ("GET", "/health", None),
        ("GET", "/health/ready", None),
        ("GET", "/health/live", None),
        ("GET", "/api/v1/openapi.json", None),
    }
    assert registered_routes() == {(route.method, route.path, route.scope) for route in routes.ROUTES}


def test_openapi_security_and_auth_statuses_follow_the_scope() -> None:
    from kds.server.api.openapi import document

    paths = document()["paths"]
    for route in routes.ROUTES:
        operation = paths[route.openapi_path][route.method.lower()]
        scoped = route.scope is not None
        assert ("security" in operation, "401" in operation["responses"], "403" in operation["responses"]) == (
            scoped,
            scoped,
            scoped,
        ), route.path
        if scoped:
            assert operation["security"] == [{}, {"bearerAuth": []}]
            assert f"`{route.scope}`" in operation["description"]


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
    assert routes.area_scope(path) == scope


@pytest.mark.parametrize(
    ("path", "is_open"),
    [
        ("/health", True),
        ("/health/live", True),
        ("/health/anything/else", True),
        ("/api/v1/openapi.json", True),
        ("/api/v1/openapi.json/x", False),
        ("/healthz", False),
        ("/api/v1/incidents", False),
        ("/", False),
    ],
)
def test_open_paths_outside_the_routes(path: str, is_open: bool) -> None:
    assert routes.is_open_path(path) is is_open


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
