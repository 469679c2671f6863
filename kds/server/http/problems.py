"""The one error path of the server: every error response is RFC 9457 ``application/problem+json``.

:func:`classify` turns any exception (kds's own, Sanic's, the driver's, the pool's, anything
unexpected) into an :class:`HttpProblem`; :func:`render` writes it. Details never carry SQL, driver
text or tracebacks: those go to the log, with the request id, in :func:`report`.

Extending it (authentication, limits, ...): raise a :class:`kds.errors.KdsError` subclass whose slug
is listed in :data:`STATUS_AND_TITLE`, or a Sanic exception with the matching status code.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from sanic.response import HTTPResponse

from kds.errors import InvalidInput, KdsError
from kds.server.http import request_ids
from kds.server.http.logs import event, log

if TYPE_CHECKING:
    from sanic import Request

TYPE_BASE = "https://api.kubernaut.io/problems/"
CONTENT_TYPE = "application/problem+json"
RETRY_AFTER_SECONDS = "1"

STATUS_AND_TITLE: dict[str, tuple[int, str]] = {
    "validation-error": (400, "Validation error"),
    "invalid-parameter": (400, "Invalid parameter"),
    "invalid-limit": (400, "Invalid limit"),
    "invalid-offset": (400, "Invalid offset"),
    "invalid-severity": (400, "Invalid severity"),
    "invalid-environment": (400, "Invalid environment"),
    "invalid-time-range": (400, "Invalid time range"),
    "invalid-cursor": (400, "Invalid cursor"),
    "invalid-id": (400, "Invalid incident id"),
    "unauthorized": (401, "Unauthorized"),
    "forbidden": (403, "Forbidden"),
    "not-found": (404, "Not found"),
    "method-not-allowed": (405, "Method not allowed"),
    "request-timeout": (408, "Request timeout"),
    "conflict": (409, "Conflict"),
    "payload-too-large": (413, "Payload too large"),
    "uri-too-long": (414, "URI too long"),
    "unsupported-media-type": (415, "Unsupported media type"),
    "headers-too-large": (431, "Request header fields too large"),
    "internal-error": (500, "Internal error"),
    "service-unavailable": (503, "Service unavailable"),
    "query-timeout": (504, "Query timeout"),
}

# Sanic's own exceptions carry a status code; this is the slug each one becomes.
_SLUG_FOR_STATUS = {
    400: "validation-error",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    408: "request-timeout",
    409: "conflict",
    413: "payload-too-large",
    414: "uri-too-long",
    415: "unsupported-media-type",
    431: "headers-too-large",
    503: "service-unavailable",
    504: "query-timeout",
}
_GENERIC_DETAIL = {
    "validation-error": "the request could not be parsed",
    "not-found": "no such resource",
    "request-timeout": "the request was not received in time",
    "payload-too-large": "the request body is larger than the limit",
    "headers-too-large": "the request header section is larger than the limit",
    "service-unavailable": "the service is temporarily unavailable",
    "internal-error": "an unexpected error occurred; the log has the details under this request id",
}


def status_and_title(slug: str) -> tuple[int, str]:
    known = STATUS_AND_TITLE.get(slug)
    if known:
        return known
    if slug.startswith("invalid-"):
        return 400, slug.replace("-", " ").capitalize()
    return STATUS_AND_TITLE["internal-error"]


@dataclass(slots=True)
class HttpProblem:
    """What the client will see, plus what only the log may see (``log_level``, ``cause``)."""

    slug: str
    detail: str
    errors: list[dict[str, str]] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    log_level: int | None = None
    cause: BaseException | None = None

    @property
    def status(self) -> int:
        return status_and_title(self.slug)[0]


def classify(exception: BaseException) -> HttpProblem:
    """Any exception → the problem the client sees (never the exception's own text unless it is ours)."""
    if isinstance(exception, InvalidInput):
        errors = [{"name": problem.name, "detail": problem.detail} for problem in exception.problems]
        return HttpProblem(exception.slug, exception.detail, errors=errors)
    if isinstance(exception, KdsError):
        # An error may carry response headers (e.g. WWW-Authenticate) in a ``headers`` attribute.
        headers = dict(getattr(exception, "headers", None) or {})
        problem = HttpProblem(exception.slug, exception.detail, headers=headers, cause=exception.__cause__)
        if problem.status >= 500:
            problem.log_level = logging.WARNING if problem.status in (503, 504) else logging.ERROR
        return problem
    translated = _translate_database_error(exception)
    if translated is not None:
        return classify(translated)
    from sanic.exceptions import SanicException

    if isinstance(exception, SanicException):
        return _from_sanic(exception)
    if isinstance(exception, asyncio.CancelledError):
        # The client hung up mid-request (Sanic's RequestCancelled): no one receives this answer and
        # nothing failed on our side, so it is logged as information, without a traceback.
        return HttpProblem("internal-error", _GENERIC_DETAIL["internal-error"], log_level=logging.INFO)
    return HttpProblem("internal-error", _GENERIC_DETAIL["internal-error"], log_level=logging.ERROR, cause=exception)


def _translate_database_error(exception: BaseException) -> KdsError | None:
    import psycopg
    from psycopg_pool import PoolTimeout, TooManyRequests

    from kds.db.connection import pool_exhausted, translate_error

    if isinstance(exception, PoolTimeout | TooManyRequests):
        error: KdsError = pool_exhausted()
    elif isinstance(exception, psycopg.Error):
        error = translate_error(exception)
    else:
        return None
    error.__cause__ = exception
    return error


def _from_sanic(exception: Any) -> HttpProblem:
    status = int(getattr(exception, "status_code", 500) or 500)
    message = str(exception)
    slug = _SLUG_FOR_STATUS.get(status, "internal-error")
    if slug == "payload-too-large" and "header" in message.lower():
        slug = "headers-too-large"
    headers = {str(k): str(v) for k, v in (getattr(exception, "headers", None) or {}).items()}
    detail = _GENERIC_DETAIL.get(slug, message)
    if slug == "method-not-allowed":
        allowed = headers.get("Allow") or headers.get("allow")
        detail = f"the method is not allowed here (allowed: {allowed})" if allowed else "the method is not allowed here"
    problem = HttpProblem(slug, detail, headers=headers)
    if problem.status >= 500:
        problem.log_level = logging.ERROR
        problem.cause = exception
    return problem


def body(problem: HttpProblem, *, instance: str, request_id: str) -> bytes:
    status, title = status_and_title(problem.slug)
    document: dict[str, Any] = {
        "type": TYPE_BASE + problem.slug,
        "title": title,
        "status": status,
        "detail": problem.detail,
        "instance": instance,
        "request_id": request_id,
    }
    if problem.errors is not None:
        document["errors"] = problem.errors
    return orjson.dumps(document)


def render(request: Request, problem: HttpProblem, *, instance: str | None = None) -> HTTPResponse:
    """The problem document; ``instance`` defaults to the request's path."""
    request_id = request_ids.of(request)
    headers = dict(problem.headers)
    if problem.status == 503:
        headers["Retry-After"] = RETRY_AFTER_SECONDS
    headers[request_ids.HEADER] = request_id
    instance = instance or getattr(request, "path", None) or "/"
    return HTTPResponse(
        body(problem, instance=instance, request_id=request_id),
        status=problem.status,
        headers=headers,
        content_type=CONTENT_TYPE,
    )


def report(request: Request, problem: HttpProblem) -> None:
    """Log what the client must not see: driver text, exception types, tracebacks."""
    if problem.log_level is None:
        return
    cause = problem.cause
    fields: dict[str, Any] = {"request_id": request_ids.of(request), "slug": problem.slug}
    if cause is not None:
        fields["error_type"] = f"{type(cause).__module__}.{type(cause).__qualname__}"
        fields["error"] = str(cause)
        sqlstate = getattr(cause, "sqlstate", None)
        if sqlstate:
            fields["sqlstate"] = sqlstate
    if problem.slug == "internal-error" and cause is not None:
        log.error("unexpected error", exc_info=(type(cause), cause, cause.__traceback__), extra={"fields": fields})
        return
    event(problem.log_level, "request failed", **fields)
