"""Building blocks of the OpenAPI document: response models, schema references, parameters, responses.

Schemas come from the core's pydantic models (:mod:`kds.query.models`, :mod:`kds.audit`) plus the
problem and health documents below; the route table (:mod:`kds.server.api.routes`) puts them
together per operation. The API itself is described for users in docs/api.md.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from kds.audit import NotificationRecord, NotificationRequest
from kds.query.models import Incident, IncidentDetail, IncidentFilter, IncidentList
from kds.query.summary import Summary
from kds.query.vocabulary import (
    API_DEFAULT_LIMIT,
    ENVIRONMENTS,
    MAX_INCIDENT_ID,
    MAX_LIMIT,
    MAX_OFFSET,
    SEVERITIES,
    SUMMARY_DEFAULT_LIMIT,
    SUMMARY_DIMENSIONS,
)
from kds.server.http.limits import MAX_TARGET_BYTES
from kds.server.http.problems import TYPE_BASE

REF = "#/components/schemas/{model}"
Json = dict[str, Any]


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
    errors: list[ProblemError] | None = Field(None, description="Every validation problem, in the documented order.")


class Liveness(BaseModel):
    status: Literal["alive"]


class Readiness(BaseModel):
    status: Literal["ready", "not_ready", "shutting_down"]
    reason: Literal["database_unreachable", "graceful_shutdown_in_progress"] | None = None


class Health(BaseModel):
    status: Literal["healthy", "unhealthy"]
    database: Literal["connected", "unreachable"]


# (model, mode): request bodies are described as validated, responses as serialised
MODELS: tuple[tuple[type[BaseModel], Literal["validation", "serialization"]], ...] = (
    (IncidentList, "serialization"),
    (Incident, "serialization"),
    (IncidentDetail, "serialization"),
    (Summary, "serialization"),
    (Problem, "serialization"),
    (Liveness, "serialization"),
    (Readiness, "serialization"),
    (Health, "serialization"),
    (NotificationRequest, "validation"),
    (NotificationRecord, "serialization"),
)


def component_schemas() -> Json:
    from pydantic.json_schema import models_json_schema

    _, top = models_json_schema(list(MODELS), ref_template=REF)
    schemas: Json = top.get("$defs", {})
    return schemas


def ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def json_response(model: str, description: str) -> Json:
    return {"description": description, "content": {"application/json": {"schema": ref(model)}}}


def problem_response(description: str, **headers: Json) -> Json:
    response: Json = {"description": description, "content": {"application/problem+json": {"schema": ref("Problem")}}}
    if headers:
        response["headers"] = headers
    return response


RETRY_AFTER: Json = {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}
UNAUTHORIZED = problem_response("Authentication is on and the bearer token is missing or unknown (`unauthorized`).")
FORBIDDEN = problem_response("The token does not grant the operation's scope (`forbidden`).")
URI_TOO_LONG = problem_response(f"The request target is longer than {MAX_TARGET_BYTES // 1024} KiB (`uri-too-long`).")
INVALID_QUERY = problem_response("Invalid input: every problem is listed in `errors`.")
UNAVAILABLE = problem_response(
    "Database unreachable, pool exhausted or shutting down (`service-unavailable`, with Retry-After).",
    **{"Retry-After": RETRY_AFTER},
)
QUERY_TIMEOUT = problem_response("The query exceeded the statement timeout (`query-timeout`).")


def query_parameters() -> list[Json]:
    """``GET /api/v1/incidents``: paging plus the core's filter model."""
    parameters: list[Json] = [
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
            "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0},
        },
        {
            "name": "cursor",
            "in": "query",
            "description": "`pagination.next_cursor` of the previous page, with the same filters and no offset.",
            "schema": {"type": "string"},
        },
    ]
    return _empty_means_absent([*parameters, *_filter_parameters()])


def summary_parameters() -> list[Json]:
    """``GET /api/v1/incidents/summary``: ``by``, the core's filter model and ``limit`` (no paging)."""
    by: Json = {
        "name": "by",
        "in": "query",
        "required": True,
        "description": "What to group by: a filter's value (null included) or UTC hour/day buckets.",
        "schema": {"type": "string", "enum": list(SUMMARY_DIMENSIONS)},
    }
    limit: Json = {
        "name": "limit",
        "in": "query",
        "description": "How many of the largest groups `data` holds (`invalid-limit` otherwise); not for hour/day.",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": SUMMARY_DEFAULT_LIMIT},
    }
    return [by, *_empty_means_absent([*_filter_parameters(), limit])]


def _filter_parameters() -> list[Json]:
    enums = {"severity": list(SEVERITIES), "environment": list(ENVIRONMENTS)}
    parameters: list[Json] = []
    for name, field in IncidentFilter.model_fields.items():
        schema: Json = {"type": "string"}
        if name in enums:
            schema["examples"] = enums[name]
        elif name in ("since", "until"):
            schema["examples"] = ["2026-11-01T12:00:00Z", "6h", "7d"]
        else:
            schema["maxLength"] = 253
        parameters.append({"name": name, "in": "query", "description": field.description or name, "schema": schema})
    return parameters


def _empty_means_absent(parameters: list[Json]) -> list[Json]:
    for parameter in parameters:
        # An empty value means "absent" (docs/api.md): ``limit=`` is the default limit, not an invalid one.
        parameter["allowEmptyValue"] = True
    return parameters


def watch_parameters() -> list[Json]:
    """``watch``, ``resume`` and ``interval`` of the watch stream (docs/remote.md, "The watch stream")."""
    parameters: list[Json] = [
        {
            "name": "watch",
            "in": "query",
            "description": "`true`: the newest `limit` matches, then every newly committed match, as an NDJSON "
            "stream of watch events (`application/x-ndjson`) that ends only when the server drains.",
            "schema": {"type": "boolean", "default": False},
        },
        {
            "name": "resume",
            "in": "query",
            "description": "With `watch=true`: the `resume` token of a bookmark; the stream continues right after "
            "it, with the same filters (`invalid-cursor` otherwise).",
            "schema": {"type": "string"},
        },
        {
            "name": "interval",
            "in": "query",
            "description": "With `watch=true`: how often the server looks for new incidents (`2s` by default, "
            "at least `200ms`).",
            "schema": {"type": "string", "examples": ["2s", "500ms"]},
        },
    ]
    for parameter in parameters:
        parameter["allowEmptyValue"] = True
    return parameters


WATCH_EVENT: Json = {
    "description": "A watch event: an incident, or a bookmark to resume after.",
    "oneOf": [
        {
            "type": "object",
            "properties": {"type": {"const": "incident"}, "incident": ref("Incident")},
            "required": ["type", "incident"],
        },
        {
            "type": "object",
            "properties": {"type": {"const": "bookmark"}, "resume": {"type": "string"}},
            "required": ["type", "resume"],
        },
    ],
}


def incident_id_parameter() -> Json:
    return {
        "name": "id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_INCIDENT_ID},
    }
