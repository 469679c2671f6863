"""Response helpers: bodies are already bytes (orjson or the query core's own serialisation)."""

from __future__ import annotations

from sanic.response import HTTPResponse

JSON = "application/json"
NDJSON = "application/x-ndjson"


def json_bytes(body: bytes, status: int = 200) -> HTTPResponse:
    return HTTPResponse(body, status=status, content_type=JSON)
