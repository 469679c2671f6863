"""``GET /api/v1/incidents?watch=true``: the watch as an NDJSON stream (docs/api.md, "Watch").

Reuses the core's :class:`kds.query.watch.Watch` unchanged: the newest ``limit`` matching incidents,
then every newly committed match, each exactly once. Lines are ``{"type":"incident","incident":{...}}``
and ``{"type":"bookmark","resume":"<token>"}``; a bookmark follows the first page, every batch of new
incidents, every :data:`BOOKMARK_INTERVAL` of silence and ends the stream, and ``&resume=<token>``
continues after it with no gap and no repeat. A pooled connection is borrowed per poll only.

The stream ends cleanly (final bookmark, then the terminating chunk) when shutdown starts
draining or the database fails mid-stream, so a watch never holds the drain; the client
reconnects with ``resume``. Each worker serves at most ``KDS_MAX_WATCHES`` watches at once
(beyond: 503 ``service-unavailable`` with ``Retry-After``), counted in ``datastorage_open_watches``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from time import monotonic
from typing import TYPE_CHECKING, Any

import orjson

from kds.errors import InvalidInput, ServiceUnavailable
from kds.query import parse_incident_query
from kds.query.vocabulary import API_DEFAULT_LIMIT
from kds.server.api.responses import NDJSON
from kds.server.http import metrics, request_ids
from kds.server.http.logs import event
from kds.server.process.private_apis import close_after_response
from kds.server.process.state import request_state, worker_state

if TYPE_CHECKING:
    from sanic import Request

    from kds.query.watch import Watch
    from kds.server.process.state import WorkerState

WATCH_PARAMETERS = ("watch", "resume", "interval")
BOOKMARK_INTERVAL = 10.0  # seconds of silence before a bookmark (shorter if KDS_RESPONSE_TIMEOUT is)
DEFAULT_INTERVAL = "2s"  # how often the database is polled, as in the CLI's direct watch
DRAIN_CHECK = 0.1  # how quickly a sleeping watch notices that shutdown started draining

_open_watches = 0  # this worker's open watch streams


def is_watch(parameters: dict[str, Any]) -> bool:
    """``watch=true`` (``1``, ``yes``); ``false`` or absent is a list; anything else is invalid."""
    value = parameters.get("watch")
    if value is None or isinstance(value, list):
        return isinstance(value, list)  # given twice: let the watch parser reject it
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("", "false", "0", "no"):
        return False
    raise InvalidInput.single("invalid-parameter", "watch", f"watch must be true or false, got {value!r}")


def _single(parameters: dict[str, Any], name: str) -> str | None:
    value = parameters.pop(name, None)
    if isinstance(value, list):
        raise InvalidInput.single("invalid-parameter", name, f"{name} was given {len(value)} times; give it once")
    return value or None


async def watch_incidents(request: Request, parameters: dict[str, Any]) -> None:
    """Validate, start (or resume) the watch, then stream until the client leaves or the drain begins."""
    from kds.query.cursor import CursorError
    from kds.query.watch import Watch, parse_interval

    state = worker_state(request.app)
    parameters = dict(parameters)
    _single(parameters, "watch")
    resume = _single(parameters, "resume")
    interval = parse_interval(_single(parameters, "interval") or DEFAULT_INTERVAL)
    query = parse_incident_query(parameters, default_limit=API_DEFAULT_LIMIT, cursor_key=state.cursor_key)
    if query.cursor is not None or query.offset:
        raise InvalidInput.single("invalid-parameter", "watch", "a watch starts at the newest page; drop offset/cursor")
    try:
        watch = Watch.from_token(query, resume, state.cursor_key) if resume else Watch(query)
    except CursorError as error:
        raise InvalidInput.single("invalid-cursor", "resume", f"resume: {error}") from None
    global _open_watches
    if _open_watches >= state.settings.max_watches:
        raise ServiceUnavailable(f"this server has its maximum of {state.settings.max_watches} open watches")
    _open_watches += 1
    metrics.OPEN_WATCHES.inc()
    try:
        await _stream(request, watch, interval)
    finally:
        _open_watches -= 1
        metrics.OPEN_WATCHES.dec()


async def _poll(request: Request, watch: Watch) -> list[Any]:
    from kds.query.watch import arun_steps

    database = worker_state(request.app).database  # the primary: the watch reads its transaction ids
    with metrics.timed_query("watch_incidents"):
        async with database.connection() as conn:
            steps = watch.poll() if watch.started else watch.start()
            return await arun_steps(conn, steps, database.transaction_setup)


def _lines(documents: Iterable[Any]) -> bytes:
    out = bytearray()
    for document in documents:
        raw = document if isinstance(document, bytes | bytearray) else str(document).encode()
        out += b'{"type":"incident","incident":' + raw + b"}\n"
    return bytes(out)


def _bookmark(watch: Watch, key: bytes) -> bytes:
    return orjson.dumps({"type": "bookmark", "resume": watch.token(key)}) + b"\n"


async def _stream(request: Request, watch: Watch, interval: float) -> None:
    state = worker_state(request.app)
    key = state.cursor_key
    first = await _poll(request, watch)  # before the response starts: a failure is still a problem answer
    request_state(request).streaming = True
    response = await request.respond(content_type=NDJSON, headers={"Cache-Control": "no-store"})
    await response.send(_lines(first) + _bookmark(watch, key))
    quiet_limit = min(BOOKMARK_INTERVAL, state.settings.response_timeout / 2)
    last_sent = monotonic()
    ended = "draining"
    while await _sleep_unless_draining(state, interval):
        try:
            documents = await _poll(request, watch)
        except Exception as error:  # the database went away: end cleanly, the client resumes
            rid = request_ids.of(request)
            event(logging.WARNING, "watch ended: poll failed", request_id=rid, error=type(error).__name__)
            ended = "poll-failed"
            break
        if documents or monotonic() - last_sent >= quiet_limit:
            await response.send(_lines(documents) + _bookmark(watch, key))
            last_sent = monotonic()
    if ended == "draining":
        event(logging.INFO, "watch ended: shutdown draining", request_id=request_ids.of(request))
        close_after_response(request)  # the headers went out before the drain: close after this answer
    await response.send(_bookmark(watch, key))
    await response.eof()


async def _sleep_unless_draining(state: WorkerState, seconds: float) -> bool:
    """Sleep ``seconds``; False at once when shutdown starts draining."""
    deadline = monotonic() + seconds
    while not state.draining:
        remaining = deadline - monotonic()
        if remaining <= 0:
            return True
        await asyncio.sleep(min(remaining, DRAIN_CHECK))
    return False
