"""``GET /api/v1/incidents/summary``: HTTP in, the query core's summary, JSON out (docs/summary.md).

Validation (the same rules and slugs as the CLI) and the one SQL statement belong to :mod:`kds.query`;
this module maps the query string to the core's parameters and answers the document as bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kds.query.summary import Summary, parse_summary_query
from kds.query.summary_sql import afetch_summary, summary_json
from kds.query.vocabulary import MAX_BUCKETS, MAX_LIMIT, SUMMARY_DEFAULT_LIMIT, SUMMARY_DIMENSIONS
from kds.server.api.incidents import query_parameters
from kds.server.api.responses import json_bytes
from kds.server.http import metrics

if TYPE_CHECKING:
    from sanic import Request
    from sanic.response import HTTPResponse

ROUTE = "/api/v1/incidents/summary"
OPERATION = "summarize_incidents"


async def summarize_incidents(request: Request) -> HTTPResponse:
    query = parse_summary_query(query_parameters(request))
    with metrics.timed_query(OPERATION):
        async with request.app.ctx.state.database.connection() as conn:
            summary = await afetch_summary(conn, query)
    return json_bytes(summary_json(summary))


def openapi(document: dict[str, Any]) -> None:
    """Add this endpoint and its model to the server's OpenAPI document (parameters from the core's vocabulary)."""
    from pydantic.json_schema import models_json_schema

    from kds.server.api.openapi import REF, _problem, _protected, _query_parameters

    _, top = models_json_schema([(Summary, "serialization")], ref_template=REF)
    document["components"]["schemas"].update(top.get("$defs", {}))
    by = {
        "name": "by",
        "in": "query",
        "required": True,
        "description": "What to group by: a filter's value (null included) or UTC hour/day buckets.",
        "schema": {"type": "string", "enum": list(SUMMARY_DIMENSIONS)},
    }
    limit = {
        "name": "limit",
        "in": "query",
        "description": "How many of the largest groups `data` holds (`invalid-limit` otherwise); not for hour/day.",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": SUMMARY_DEFAULT_LIMIT},
        "allowEmptyValue": True,
    }
    filters = [p for p in _query_parameters() if p["name"] not in ("limit", "offset", "cursor")]
    operation = {
        "operationId": "summarizeIncidents",
        "summary": "Count incidents per value of a filter (largest groups first) or per UTC hour/day bucket.",
        "parameters": [by, *filters, limit],
        "responses": {
            "200": {
                "description": "The summary. hour/day: every bucket from the bucket of `since` (default 24 h or "
                "30 days ago) to the bucket of `until` (default now), oldest first, empty ones with count 0.",
                "content": {"application/json": {"schema": {"$ref": REF.format(model="Summary")}}},
            },
            "400": _problem(
                "Invalid input, every problem in `errors`: `invalid-parameter` (missing or unknown `by`, "
                f"`offset` or `cursor` given, ...), `invalid-limit`, `invalid-severity`, `invalid-environment`, "
                f"`invalid-time-range` (also more than {MAX_BUCKETS} buckets)."
            ),
            "414": _problem("The request target is longer than 8 KiB."),
            "503": _problem("Database unreachable, pool exhausted or shutting down (with Retry-After)."),
            "504": _problem("The query exceeded the statement timeout."),
        },
    }
    document["paths"][ROUTE] = {"get": _protected(operation, "incidents:read")}
