"""``GET /api/v1/incidents/summary``: HTTP in, the query core's summary, JSON out (docs/summary.md).

Validation (the same rules and slugs as the CLI) and the one SQL statement belong to :mod:`kds.query`;
this module maps the query string to the core's parameters and answers the document as bytes. Its row
in the route table (:mod:`kds.server.api.routes`) comes before ``/api/v1/incidents/<id>``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kds.query.summary import parse_summary_query
from kds.query.summary_sql import afetch_summary, summary_json
from kds.server.api.incidents import query_parameters
from kds.server.api.responses import json_bytes
from kds.server.http import metrics
from kds.server.process.state import worker_state

if TYPE_CHECKING:
    from sanic import Request
    from sanic.response import HTTPResponse

ROUTE = "/api/v1/incidents/summary"
OPERATION = "summarize_incidents"


async def summarize_incidents(request: Request) -> HTTPResponse:
    query = parse_summary_query(query_parameters(request))
    with metrics.timed_query(OPERATION):
        async with worker_state(request.app).reads.statement() as conn:
            summary = await afetch_summary(conn, query)
    return json_bytes(summary_json(summary))
