"""The OpenAPI 3.1 description of the API, generated from the same pydantic models the core uses.

Response schemas come from :mod:`kds.query.models` (what the SQL builds) plus the problem and health
documents below; query parameters come from the core's filter model and its paging rules.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from kds import __version__
from kds.query.models import Incident, IncidentDetail, IncidentFilter, IncidentList
from kds.query.vocabulary import API_DEFAULT_LIMIT, ENVIRONMENTS, MAX_INCIDENT_ID, MAX_LIMIT, SEVERITIES
from kds.server.http.problems import STATUS_AND_TITLE, TYPE_BASE

REF = "#/components/schemas/{model}"


class ProblemError(BaseModel):
    name: str = Field(description="The parameter or field concerned.")
    detail: str


class Problem(BaseModel):
    """RFC 9457 problem details (``application/problem+json``)."""

    type: str = Field(description=f"{TYPE_BASE}<slug>")
    title: str
    status: int
    detail: str = Field(description="Human-readable; names the value received for invalid input.")
    instance: str = Field(description="The request path.")
    request_id: str = Field(description="Also in the X-Request-ID response header and in the server log.")
    errors: list[ProblemError] | None = Field(None, description="Every validation problem, in the SPEC's order.")


class Liveness(BaseModel):
    status: Literal["alive"]


class Readiness(BaseModel):
    status: Literal["ready", "not_ready", "shutting_down"]
    reason: Literal["database_unreachable", "graceful_shutdown_in_progress"] | None = None


class Health(BaseModel):
    status: Literal["healthy", "unhealthy"]
    database: Literal["connected", "unreachable"]


_MODELS: tuple[type[BaseModel], ...] = (IncidentList, Incident, IncidentDetail, Problem, Liveness, Readiness, Health)


def _schemas() -> dict[str, Any]:
    from pydantic.json_schema import models_json_schema

    _, top = models_json_schema([(model, "serialization") for model in _MODELS], ref_template=REF)
    return top.get("$defs", {})


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def _json(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {"schema": _ref("Problem")}}}


def _query_parameters() -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = [
        {
            "name": "limit",
            "in": "query",
            "description": "Page size (`invalid-limit` otherwise).",
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": API_DEFAULT_LIMIT},
        },
        {
            "name": "offset",
            "in": "query",
            "description": "Rows to skip (`invalid-offset` otherwise).",
            "schema": {"type": "integer", "minimum": 0, "default": 0},
        },
        {
            "name": "cursor",
            "in": "query",
            "description": "`pagination.next_cursor` of the previous page, with the same filters and no offset.",
            "schema": {"type": "string"},
        },
    ]
    enums = {"severity": list(SEVERITIES), "environment": list(ENVIRONMENTS)}
    for name, field in IncidentFilter.model_fields.items():
        schema: dict[str, Any] = {"type": "string"}
        if name in enums:
            schema["examples"] = enums[name]
        elif name in ("since", "until"):
            schema["examples"] = ["2026-11-01T12:00:00Z", "6h", "7d"]
        else:
            schema["maxLength"] = 253
        parameters.append({"name": name, "in": "query", "description": field.description or name, "schema": schema})
    for parameter in parameters:
        # An empty value means "absent" (SPEC 3): ``limit=`` is the default limit, not an invalid one.
        parameter["allowEmptyValue"] = True
    return parameters


AUTH_ERRORS = {
    "401": _problem("Authentication is on and the bearer token is missing or unknown (`unauthorized`)."),
    "403": _problem("The token does not grant the operation's scope (`forbidden`)."),
}
# Authentication is optional (KDS_AUTH_TOKENS_FILE): either no credentials or a bearer token.
OPTIONAL_BEARER = [{}, {"bearerAuth": []}]


def _protected(operation: dict[str, Any], scope: str) -> dict[str, Any]:
    operation["security"] = OPTIONAL_BEARER
    operation["description"] = f"With authentication on, needs a bearer token with the scope `{scope}`."
    operation["responses"] = {**operation["responses"], **AUTH_ERRORS}
    return operation


def document() -> dict[str, Any]:
    document = _document()
    paths = document["paths"]
    for path, scope in (("/api/v1/incidents", "incidents:read"), ("/api/v1/incidents/{id}", "incidents:read"),
                        ("/metrics", "metrics:read")):  # fmt: skip
        _protected(paths[path]["get"], scope)
    for operations in paths.values():
        for operation in operations.values():
            if operation.get("parameters"):
                # transport limits (SPEC 5.6) reachable through parameters: a request target over 8 KiB
                operation["responses"].setdefault("414", _problem("The request target is longer than 8 KiB."))
    if "/api/v1/audit/notifications" in paths:
        _protected(paths["/api/v1/audit/notifications"]["post"], "audit:write")
    document["components"]["securitySchemes"] = {
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "description": "Tokens listed (as SHA-256 digests) in KDS_AUTH_TOKENS_FILE; off when it is unset.",
        }
    }
    return document


def _document() -> dict[str, Any]:
    errors = {
        "400": _problem("Invalid input: every problem is listed in `errors`."),
        "503": _problem("Database unreachable, pool exhausted or shutting down (with Retry-After)."),
        "504": _problem("The query exceeded the statement timeout."),
    }
    slugs = ", ".join(f"`{slug}` ({status})" for slug, (status, _) in STATUS_AND_TITLE.items())
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "kds incident API",
            "version": __version__,
            "description": (
                "Read access to remediation incidents. Every error is RFC 9457 `application/problem+json` "
                f"whose `type` is `{TYPE_BASE}<slug>`; slugs: {slugs}."
            ),
        },
        "paths": {
            "/api/v1/incidents": {
                "get": {
                    "operationId": "listIncidents",
                    "summary": "List incidents, newest first (offset or keyset paging, or an NDJSON export).",
                    "parameters": _query_parameters(),
                    "responses": {
                        "200": {
                            "description": "A page of incidents, or with `Accept: application/x-ndjson` every "
                            "matching incident, one JSON object per line (limit and offset ignored).",
                            "content": {
                                "application/json": {"schema": _ref("IncidentList")},
                                "application/x-ndjson": {"schema": _ref("Incident")},
                            },
                        },
                        **errors,
                    },
                }
            },
            "/api/v1/incidents/{id}": {
                "get": {
                    "operationId": "getIncident",
                    "summary": "One incident with its detail fields.",
                    "parameters": [
                        {
                            "name": "id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_INCIDENT_ID},
                        },
                    ],
                    "responses": {
                        "200": _json("IncidentDetail", "The incident."),
                        "404": _problem("No such incident (`not-found`)."),
                        **errors,
                    },
                }
            },
            "/health": {
                "get": {
                    "operationId": "health",
                    "summary": "Database connectivity.",
                    "responses": {
                        "200": _json("Health", "Healthy."),
                        "503": _json("Health", "The database is unreachable."),
                    },
                }
            },
            "/health/ready": {
                "get": {
                    "operationId": "readiness",
                    "summary": "Readiness probe.",
                    "responses": {
                        "200": _json("Readiness", "Ready for traffic."),
                        "503": _json("Readiness", "Shutting down, or the database is unreachable."),
                    },
                }
            },
            "/health/live": {
                "get": {
                    "operationId": "liveness",
                    "summary": "Liveness probe (never touches the database).",
                    "responses": {"200": _json("Liveness", "Alive.")},
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus metrics of every worker.",
                    "responses": {
                        "200": {
                            "description": "Prometheus text format.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/api/v1/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document.",
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1.",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {"schemas": _schemas()},
    }


def document_bytes() -> bytes:
    import orjson

    from kds.server.api import audit

    full = document()
    audit.openapi(full)
    return orjson.dumps(full)
