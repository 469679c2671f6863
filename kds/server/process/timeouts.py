"""``KDS_REQUEST_TIMEOUT`` as a deadline for a whole request, not an idle timer.

Sanic's ``REQUEST_TIMEOUT`` restarts on every chunk received (``data_received`` resets the timer),
so a client that dribbles one byte a second keeps a connection forever, and a fresh connection that
sends nothing waits for the keep-alive timeout. :class:`DeadlineHttpProtocol` gives every request
one deadline, ``KDS_REQUEST_TIMEOUT`` after its first byte (after the connection opened, for the
first request) to deliver its head and body:

- nothing at all on a fresh connection: the connection is closed at the deadline;
- a partial head or body: 408 ``request-timeout`` (problem+json), then the connection is closed;
- between requests on a keep-alive connection the deadline does not run (Sanic's keep-alive
  timeout does), and once the request is in, ``KDS_RESPONSE_TIMEOUT`` applies as before.

Waiting is asynchronous, so a slow client holds one connection, never a worker: the others are
served meanwhile.
"""

from __future__ import annotations

import asyncio
from asyncio import CancelledError
from collections.abc import Awaitable, Callable
from time import monotonic

from sanic.exceptions import BadRequest

from kds.server.process.private_apis import GuardedHttpProtocol


class RequestTimedOut(BadRequest):
    """408: the client did not finish sending its request in time.

    A :class:`BadRequest` subclass on purpose: Sanic then drops the connection instead of trying to
    read the rest of the body (``Http.http1`` catches BadRequest while consuming a leftover body).
    """

    status_code = 408
    quiet = True


class DeadlineHttpProtocol(GuardedHttpProtocol):
    __slots__ = ("_deadline", "_requests_begun")

    def connection_begins(self) -> None:
        self._deadline: float | None = monotonic() + self.request_timeout_seconds
        self._requests_begun = 0

    def request_begins(self) -> None:
        """The first request's deadline counts from the connection; later ones from their first byte."""
        self._requests_begun += 1
        if self._requests_begun > 1:
            self._deadline = None

    async def guard_receive(self, receive: Callable[[], Awaitable[None]], idle: bool) -> None:
        if self._deadline is None:
            if idle:
                await receive()  # keep-alive wait: Sanic's keep-alive timeout applies
                self._deadline = monotonic() + self.request_timeout_seconds
                return
            self._deadline = monotonic() + self.request_timeout_seconds  # pipelined: its bytes were already here
        remaining = self._deadline - monotonic()
        try:
            if remaining <= 0:
                raise TimeoutError
            async with asyncio.timeout(remaining):
                await receive()
        except TimeoutError:
            if idle:
                # Not one byte of a request: close quietly, like an expired keep-alive.
                self.close()
                raise CancelledError from None
            raise RequestTimedOut("the request was not received in time") from None
