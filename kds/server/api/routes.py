"""The route table: the one list that routing, authorization and the OpenAPI document are built from.

Each :class:`Route` names its method, path template, handler, scope (``OPEN``: no token needed) and
its OpenAPI operation with every status the handler itself answers. What follows from the rest of
the row is added by :mod:`kds.server.api.openapi` (bearer security and 401/403 for a scoped route,
414 for a route with parameters, 413 for a route with a body), so a new row cannot be published
wrongly. :func:`register` mounts the routes with their template and scope as route metadata
(``route.ctx.template`` / ``route.ctx.scope``), which the logs, metrics and the authentication
middleware read. Paths that match no route are authorized by their area (:func:`area_scope`), also
derived from this table. Endpoints and scopes are described for users in docs/api.md and
docs/security.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kds.auth import AUDIT_WRITE, INCIDENTS_READ, METRICS_READ
from kds.query.vocabulary import MAX_BUCKETS
from kds.server.api import audit, health, incidents, meta, summary
from kds.server.api.schemas import (
    INVALID_QUERY,
    QUERY_TIMEOUT,
    RETRY_AFTER,
    UNAVAILABLE,
    WATCH_EVENT,
    incident_id_parameter,
    json_response,
    problem_response,
    query_parameters,
    ref,
    summary_parameters,
    watch_parameters,
)
from kds.server.http.observe import Handler, instrumented

if TYPE_CHECKING:
    from kds.server.process.state import App

OPEN: None = None  # the scope of a route that needs no token


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str  # Sanic's template: ``/api/v1/incidents/<id>``
    handler: Handler
    scope: str | None  # a scope of kds.auth, or OPEN
    operation: dict[str, Any]  # operationId, summary, parameters, requestBody, the handler's responses

    @property
    def openapi_path(self) -> str:
        return self.path.replace("<", "{").replace(">", "}")

    @property
    def name(self) -> str:
        return self.handler.__name__


def _text(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}


_RECORD = {"application/json": {"schema": ref("NotificationRecord")}}

ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/v1/incidents", incidents.list_incidents, INCIDENTS_READ, {
        "operationId": "listIncidents",
        "summary": "List incidents, newest first (offset or keyset paging, an NDJSON export, or a watch).",
        "parameters": [*query_parameters(), *watch_parameters()],
        "responses": {
            "200": {
                "description": "A page of incidents, or with `Accept: application/x-ndjson` every "
                "matching incident, one JSON object per line (limit and offset ignored). With `watch=true`: "
                "an NDJSON stream of watch events (incidents, and bookmarks after the first page, after "
                "each batch, after ~10 s of silence and at the end).",
                "content": {
                    "application/json": {"schema": ref("IncidentList")},
                    "application/x-ndjson": {"schema": {"oneOf": [ref("Incident"), WATCH_EVENT]}},
                },
            },
            "400": INVALID_QUERY,
            "503": problem_response(
                "Database unreachable, pool exhausted, shutting down, or (with `watch=true`) KDS_MAX_WATCHES "
                "streams already open on this worker (`service-unavailable`, with Retry-After).",
                **{"Retry-After": RETRY_AFTER},
            ),
            "504": QUERY_TIMEOUT,
        },
    }),
    # before the id route: "summary" is never taken for an incident id
    Route("GET", summary.ROUTE, summary.summarize_incidents, INCIDENTS_READ, {
        "operationId": "summarizeIncidents",
        "summary": "Count incidents per value of a filter (largest groups first) or per UTC hour/day bucket.",
        "parameters": summary_parameters(),
        "responses": {
            "200": json_response(
                "Summary",
                "The summary. hour/day: every bucket from the bucket of `since` (default 24 h or 30 days ago) to "
                "the bucket of `until` (default now), oldest first, empty ones with count 0.",
            ),
            "400": problem_response(
                "Invalid input, every problem in `errors`: `invalid-parameter` (missing or unknown `by`, `offset` "
                "or `cursor` given, ...), `invalid-limit`, `invalid-severity`, `invalid-environment`, "
                f"`invalid-time-range` (also more than {MAX_BUCKETS} buckets)."
            ),
            "503": UNAVAILABLE,
            "504": QUERY_TIMEOUT,
        },
    }),
    Route("GET", "/api/v1/incidents/<id>", incidents.get_incident, INCIDENTS_READ, {
        "operationId": "getIncident",
        "summary": "One incident with its detail fields.",
        "parameters": [incident_id_parameter()],
        "responses": {
            "200": json_response("IncidentDetail", "The incident."),
            "400": problem_response("The id is not an integer in range (`invalid-id`)."),
            "404": problem_response("No such incident (`not-found`)."),
            "503": UNAVAILABLE,
            "504": QUERY_TIMEOUT,
        },
    }),
    Route("POST", "/api/v1/audit/notifications", audit.create_notification, AUDIT_WRITE, {
        "operationId": "recordNotification",
        "summary": "Record a notification in the audit trail, exactly once per notification_id.",
        "description": (
            "201 only after the row is committed. Sending the same notification_id again with the same "
            "content (after normalisation) is a safe retry answered 200 with the stored record; different "
            "content is 409 `conflict`. On 503 or a timeout, retry the same body."
        ),
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ref("NotificationRequest")}},
        },
        "responses": {
            "201": {"description": "Recorded (committed).", "content": _RECORD},
            "200": {"description": "Already recorded with the same content (a safe retry).", "content": _RECORD},
            "400": problem_response(
                "`validation-error`: the body is not valid JSON, or every invalid field in `errors`."
            ),
            "409": problem_response("`conflict`: the notification_id already records a different notification."),
            "415": problem_response("`unsupported-media-type`: the Content-Type is not application/json."),
            "503": problem_response("`service-unavailable`: nothing was recorded; retry the same body.",
                                    **{"Retry-After": RETRY_AFTER}),
            "504": problem_response(
                "`query-timeout`: the write may or may not have been committed; retry the same body."
            ),
        },
    }),
    Route("GET", "/health", health.health, OPEN, {
        "operationId": "health",
        "summary": "Database connectivity.",
        "responses": {
            "200": json_response("Health", "Healthy."),
            "503": json_response("Health", "The database is unreachable."),
        },
    }),
    Route("GET", "/health/ready", health.ready, OPEN, {
        "operationId": "readiness",
        "summary": "Readiness probe.",
        "responses": {
            "200": json_response("Readiness", "Ready for traffic."),
            "503": json_response("Readiness", "Shutting down, or the database is unreachable."),
        },
    }),
    Route("GET", "/health/live", health.live, OPEN, {
        "operationId": "liveness",
        "summary": "Liveness probe (never touches the database).",
        "responses": {"200": json_response("Liveness", "Alive.")},
    }),
    Route("GET", "/metrics", meta.metrics, METRICS_READ, {
        "operationId": "metrics",
        "summary": "Prometheus metrics of every worker.",
        "responses": {"200": _text("Prometheus text format.")},
    }),
    Route("GET", "/api/v1/openapi.json", meta.openapi, OPEN, {
        "operationId": "openapi",
        "summary": "This document.",
        "responses": {
            "200": {"description": "OpenAPI 3.1.", "content": {"application/json": {"schema": {"type": "object"}}}}
        },
    }),
)  # fmt: skip


def register(app: App) -> None:
    """Mount every route, its template and scope as route metadata (read by logs, metrics and auth)."""
    for route in ROUTES:
        app.add_route(
            instrumented(route.handler),
            route.path,
            methods=[route.method],
            name=route.name,
            ctx_template=route.path,
            ctx_scope=route.scope,
        )


# -- authorization of paths that match no route -------------------------------------------------------
def area_of(path: str) -> str:
    """The resource a path belongs to: ``/api/v1/<resource>``, or its first segment (``/metrics``)."""
    segments = path.strip("/").split("/")
    depth = 3 if segments[:2] == ["api", "v1"] else 1
    return "/" + "/".join(segments[:depth])


def _areas() -> dict[str, str | None]:
    """Each area's scope; an open area only where an open route lies below it (``/health/...``)."""
    areas: dict[str, str | None] = {}
    for route in ROUTES:
        area = area_of(route.path)
        if route.scope is OPEN and area == route.path:
            continue  # an open route opens itself, not the paths below it
        if areas.setdefault(area, route.scope) != route.scope:
            raise ValueError(f"routes under {area} need different scopes; split the area")
    return areas


AREAS = _areas()


def area_scope(path: str) -> str | None:
    """The scope an unmatched path needs beyond a valid token (None: a valid token is enough)."""
    return AREAS.get(area_of(path))


def is_open_path(path: str) -> bool:
    """Is an unmatched path an open route's path (another method) or under an open area (``/health/...``)?"""
    area = area_of(path)
    if area in AREAS:
        return AREAS[area] is OPEN
    return any(route.scope is OPEN and route.path == path for route in ROUTES)
