"""Failures of the remote mode, as the CLI prints them (``<slug>: <detail>``, docs/remote.md).

A problem+json answer keeps the server's slug and detail: 400 becomes :class:`kds.errors.InvalidInput`
(exit 2), every other status a :class:`ServerProblem` (exit 1). A request that got no answer at all
(refused, unknown host, TLS, timeout, a cut stream) is a :class:`ServerUnreachable` (exit 1).
"""

from __future__ import annotations

from kds.errors import InvalidInput, KdsError

PROBLEM_TYPE_PREFIX = "https://api.kubernaut.io/problems/"


class ServerProblem(KdsError):
    """The server answered with an error status (401, 403, 404, 5xx)."""

    def __init__(self, slug: str, detail: str, status: int, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.slug = slug
        self.status = status
        self.retry_after = retry_after


class ServerUnreachable(KdsError):
    """No answer from the server: connection refused, unknown host, TLS failure, cut stream."""

    slug = "server-unreachable"


class ServerTimeout(ServerUnreachable):
    slug = "server-timeout"


def problem_error(status: int, body: bytes, url: str, retry_after: float | None = None) -> KdsError:
    """The error an error answer stands for: the problem's slug and detail, else the bare status."""
    import orjson

    slug, detail = "", ""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        document = None
    if isinstance(document, dict):
        kind, given = document.get("type"), document.get("detail")
        slug = kind.rsplit("/", 1)[-1] if isinstance(kind, str) else ""
        detail = given if isinstance(given, str) else ""
    if not slug:  # not a kds server (a proxy's error page, say)
        slug = "server-error"
        detail = f"{url} answered HTTP {status} without a problem document; is it a kds server?"
    if status == 400:
        return InvalidInput.single(slug, "", detail)
    return ServerProblem(slug, detail, status, retry_after)
