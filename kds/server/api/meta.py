"""``/metrics`` (Prometheus text, all workers) and ``/api/v1/openapi.json``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sanic.response import HTTPResponse

from kds.server.api.responses import json_bytes
from kds.server.http import metrics as server_metrics
from kds.server.process.state import worker_state

if TYPE_CHECKING:
    from sanic import Request


async def metrics(request: Request) -> HTTPResponse:
    state = worker_state(request.app)
    server_metrics.publish_pools(state.databases)
    return HTTPResponse(server_metrics.exposition(), content_type=server_metrics.CONTENT_TYPE)


async def openapi(request: Request) -> HTTPResponse:
    return json_bytes(worker_state(request.app).openapi)
