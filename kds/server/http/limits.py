"""Request limits (docs/security.md), each answered as problem+json with its own slug.

How Sanic enforces them (``sanic/http/http1.py``) and what kds adds:

- Header section: Sanic buffers the head until ``\\r\\n\\r\\n``; past ``Http.HEADER_MAX_SIZE`` it raises
  ``PayloadTooLarge("Request header exceeds the size limit")`` before any request exists. That size
  is ``min(REQUEST_MAX_HEADER_SIZE, REQUEST_BUFFER_SIZE - 4096, REQUEST_MAX_SIZE, 16384)``: the body
  limit takes part, so :func:`configure` sets the class limit to 16 KiB again after the config, and
  the header limit stays independent of ``KDS_MAX_BODY_BYTES``.
- Request target: Sanic has no URL limit of its own (only the head limit above). A target over 8 KiB
  is refused by :func:`check_request` (request middleware, before authentication); a request line so
  long that the head overflows is told apart from big headers by :func:`oversized_head` (the
  request line is still in the receive buffer) and answered 414, not 431.
- Body: ``REQUEST_MAX_SIZE`` (``KDS_MAX_BODY_BYTES``); a ``Content-Length`` over it is refused before
  the body is read, a chunked body as soon as it passes it: 413 ``payload-too-large``.
  :func:`check_request` refuses a declared oversize body on unmatched paths too.
- Time: ``REQUEST_TIMEOUT`` / ``RESPONSE_TIMEOUT`` come from ``KDS_REQUEST_TIMEOUT`` /
  ``KDS_RESPONSE_TIMEOUT`` (set by the app factory); Sanic answers 408 and closes the connection of
  a client that stops sending part-way through its request.

Protocol-level rejections (a malformed or oversized request, a timeout) are answered before
authentication; routing results (404, 405) after it. :func:`note_rejection` marks the former.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sanic.exceptions import MethodNotAllowed, NotFound, PayloadTooLarge, SanicException

from kds.server.http import problems
from kds.server.process import private_apis
from kds.server.process.state import request_state

if TYPE_CHECKING:
    from sanic import Request
    from sanic.response import HTTPResponse

    from kds.server.process.state import App
    from kds.settings import Settings

MAX_TARGET_BYTES = 8 * 1024
MAX_HEADER_BYTES = 16 * 1024


class UriTooLong(SanicException):
    status_code = 414
    quiet = True


def configure(app: App, settings: Settings) -> None:
    """Header limit 16 KiB whatever the body limit; the 414/431 split; early rejections."""
    app.config.REQUEST_MAX_HEADER_SIZE = MAX_HEADER_BYTES
    app.config.REQUEST_MAX_SIZE = settings.max_body_bytes
    private_apis.set_header_limit(MAX_HEADER_BYTES)
    app.exception(PayloadTooLarge)(oversized)
    app.signal("http.lifecycle.exception")(note_rejection)


async def note_rejection(request: Request, exception: BaseException) -> None:
    """Mark requests refused before routing, so that middleware does not ask them for a token."""
    if request is not None and not isinstance(exception, NotFound | MethodNotAllowed):
        request_state(request).rejected = True


def rejected(request: Request) -> bool:
    """Was this request refused by the protocol layer (malformed, too large, too slow)?"""
    return request_state(request).rejected


async def check_request(request: Request) -> None:
    """414 for a request target over 8 KiB; 413 for a declared body over the limit on any path.

    Sanic checks the body only for a matched route (it reads no body before routing); refusing a
    ``Content-Length`` over the limit here makes 413 independent of the path, and spares draining it.
    """
    if rejected(request):
        return
    if len(request.raw_url) > MAX_TARGET_BYTES:
        private_apis.close_after_response(request)
        raise UriTooLong(f"the request target is longer than {MAX_TARGET_BYTES} bytes")
    declared = request.headers.get("content-length")
    limit = request.app.config.REQUEST_MAX_SIZE
    if declared is not None and declared.isdigit() and int(declared) > limit:
        private_apis.close_after_response(request)
        raise PayloadTooLarge(f"the request body is larger than {limit} bytes")


def _request_line(request: Request) -> tuple[bytes, bool] | None:
    """The request line still in the receive buffer, and whether it ended there (None: no buffer)."""
    head = private_apis.received_head(request, MAX_HEADER_BYTES + 2)
    if head is None:
        return None
    end = head.find(b"\r\n")
    if end == -1:
        return head, False
    return head[:end], True


def _target(request_line: bytes) -> bytes:
    parts = request_line.split(b" ")
    return parts[1] if len(parts) > 1 else request_line


def oversized_head(request: Request) -> bool | None:
    """For a head over the limit: True when the request line itself is too long (None: not a head error)."""
    found = _request_line(request)
    if found is None:
        return None
    request_line, complete = found
    return not complete or len(_target(request_line)) > MAX_TARGET_BYTES


def request_path(request: Request) -> str:
    """The problem's ``instance`` for a head over the limit: the path of the request line.

    Sanic makes no request of a head it refuses (its placeholder's path is ``*``), but the request
    line arrived first and is still in the buffer. A path longer than the buffered 16 KiB is cut there.
    """
    found = _request_line(request)
    if found is None:
        return getattr(request, "path", None) or "/"
    path = _target(found[0]).split(b"?", 1)[0].split(b"#", 1)[0]
    return path.decode("utf-8", "replace") or "/"


def oversized(request: Request, exception: PayloadTooLarge) -> HTTPResponse:
    """413 for a body over the limit; 414 or 431 for a head over 16 KiB (Sanic says 413 for both)."""
    if "header" in str(exception).lower():
        if oversized_head(request):
            problem = problems.HttpProblem(
                "uri-too-long", f"the request target is longer than {MAX_TARGET_BYTES} bytes"
            )
        else:
            problem = problems.HttpProblem(
                "headers-too-large", f"the request header section is larger than {MAX_HEADER_BYTES} bytes"
            )
        return problems.render(request, problem, instance=request_path(request))
    problem = problems.HttpProblem(
        "payload-too-large", f"the request body is larger than {request.app.config.REQUEST_MAX_SIZE} bytes"
    )
    return problems.render(request, problem)
