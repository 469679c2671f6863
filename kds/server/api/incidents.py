"""``GET /api/v1/incidents`` and ``GET /api/v1/incidents/{id}``: HTTP in, the query core, bytes out.

Validation, SQL and serialisation all belong to :mod:`kds.query`; this module only maps the query
string to the core's parameters, picks JSON or NDJSON, and streams.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING
from urllib.parse import unquote

from kds.query import IncidentQuery, parse_incident_id, parse_incident_query
from kds.query.execute import afetch_incident, afetch_page, astream_incidents
from kds.query.vocabulary import API_DEFAULT_LIMIT
from kds.server.api import watch
from kds.server.api.responses import NDJSON, json_bytes
from kds.server.http import metrics, request_ids
from kds.server.http.logs import event
from kds.server.http.problems import classify, report
from kds.server.process import private_apis
from kds.server.process.state import request_state, worker_state

if TYPE_CHECKING:
    from sanic import Request
    from sanic.response import HTTPResponse

STREAM_CHUNK_BYTES = 64 * 1024


def query_parameters(request: Request) -> dict[str, str | list[str]]:
    """Every query parameter, blank ones included (an unknown ``foo=`` must still be rejected)."""
    arguments = request.get_args(keep_blank_values=True)
    return {name: values[0] if len(values) == 1 else list(values) for name, values in arguments.items()}


def wants_ndjson(request: Request) -> bool:
    return NDJSON in request.headers.get("accept", "").lower()


async def list_incidents(request: Request) -> HTTPResponse | None:
    state = worker_state(request.app)
    parameters = query_parameters(request)
    if watch.is_watch(parameters):
        await watch.watch_incidents(request, parameters)
        return None
    parameters.pop("watch", None)  # watch=false: an ordinary list
    query = parse_incident_query(parameters, default_limit=API_DEFAULT_LIMIT, cursor_key=state.cursor_key)
    if wants_ndjson(request):
        await stream_incidents(request, query)
        return None
    with metrics.timed_query("list_incidents"):
        async with state.reads.connection() as conn:  # prepared, also behind a pooler (kds.db.prepared)
            page = await afetch_page(conn, query, state.cursor_key, setup=state.reads.transaction_setup)
    return json_bytes(page.to_json())


async def get_incident(request: Request, id: str) -> HTTPResponse:
    incident_id = parse_incident_id(unquote(id))
    database = worker_state(request.app).reads
    with metrics.timed_query("get_incident"):
        async with database.connection() as conn:
            body = await afetch_incident(conn, incident_id, setup=database.transaction_setup)
    return json_bytes(body)


async def stream_incidents(request: Request, query: IncidentQuery) -> None:
    """Every matching row as NDJSON, in chunks; memory does not grow with the result.

    The first row is fetched before the response starts, so a failure to run the query at all is
    still a problem+json response. A failure after the first byte can only cut the stream: the
    connection is aborted before the terminating chunk, which clients see as an incomplete body.
    """
    database = worker_state(request.app).reads
    with metrics.timed_query("stream_incidents") as timing:
        async with database.transaction() as conn:
            rows = aiter(astream_incidents(conn, query))
            first = await anext(rows, None)
            request_state(request).streaming = True
            response = await request.respond(content_type=NDJSON)
            buffer = bytearray()
            if first is not None:
                buffer += first
                buffer += b"\n"
            try:
                async for row in rows:
                    buffer += row
                    buffer += b"\n"
                    if len(buffer) >= STREAM_CHUNK_BYTES:
                        await response.send(bytes(buffer))
                        buffer.clear()
                if buffer:
                    await response.send(bytes(buffer))
                await response.eof()
            except Exception as exc:
                problem = classify(exc)
                problem.log_level = problem.log_level or logging.WARNING
                problem.cause = problem.cause or exc
                report(request, problem)
                event(logging.WARNING, "stream cut", request_id=request_ids.of(request), slug=problem.slug)
                timing.status = problem.slug
                request_state(request).stream_status = problem.status
                private_apis.abort_connection(request)
                # Sanic treats a cancelled handler whose connection is gone as finished, silently.
                raise asyncio.CancelledError("stream cut") from exc
