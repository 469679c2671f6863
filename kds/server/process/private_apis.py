"""Every use of a private Sanic, prometheus-client or psycopg-pool API, in one place, for the tested releases only.

kds relies on behaviour none of these libraries promises publicly (graceful shutdown around Sanic's
worker manager, the 414/431 split and request deadlines inside Sanic's HTTP/1.1 handler,
prometheus-client's multiprocess value class, the order in which psycopg-pool hands out idle
connections). Importing this module checks the installed versions against
:data:`TESTED` and raises :class:`UntestedDependency` otherwise, so that a new release cannot
silently break shutdown, limits or metrics; after testing a new release, add it to :data:`TESTED`.
Every function here names the upstream function it mirrors or the private attribute it reads.

It also keeps Sanic's start-up hint and colour codes out of kds's logs (``SANIC_NO_COLOR`` and
``SANIC_IGNORE_PRODUCTION_WARNING`` are set before Sanic is imported; see docs/operations.md).
"""

# Sanic's worker manager and HTTP/1.1 internals and prometheus-client's multiprocess helpers carry no
# annotations: each call of one has a ``type: ignore[no-untyped-call]`` here (and in
# kds/server/http/metrics.py), so that mypy reports it once they gain annotations.
from __future__ import annotations

import os

os.environ.setdefault("SANIC_NO_COLOR", "1")  # read once, when sanic.logging.color is imported
os.environ.setdefault("SANIC_IGNORE_PRODUCTION_WARNING", "1")  # the "use --debug or --dev" hint

from collections.abc import Awaitable, Callable
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

    from sanic import Request

    from kds.server.process.state import App

# distribution -> the (major, minor) release series kds was tested with
TESTED: dict[str, tuple[tuple[int, int], ...]] = {
    "sanic": ((25, 12),),
    "prometheus-client": ((0, 26),),
    "psycopg-pool": ((3, 3),),
}


class UntestedDependency(RuntimeError):
    """An installed Sanic, prometheus-client or psycopg-pool release that kds was not tested with."""


def series(installed: str) -> tuple[int, int]:
    major, minor, *_ = (int("".join(c for c in part if c.isdigit()) or 0) for part in installed.split("."))
    return major, minor


def check_versions(installed: Callable[[str], str] = version) -> None:
    for distribution, tested in TESTED.items():
        found = installed(distribution)
        if series(found) not in tested:
            shown = ", ".join(f"{major}.{minor}.x" for major, minor in tested)
            raise UntestedDependency(
                f"kds is tested with {distribution} {shown}, but {found} is installed; it uses private "
                f"{distribution} APIs (kds/server/process/private_apis.py): install a tested release"
            )


check_versions()

from prometheus_client import values as _prometheus_values  # noqa: E402
from psycopg import AsyncConnection  # noqa: E402
from psycopg_pool import AsyncConnectionPool  # noqa: E402
from sanic.http import Stage  # noqa: E402
from sanic.http.http1 import Http  # noqa: E402
from sanic.server.protocols.http_protocol import HttpProtocol  # noqa: E402


# -- psycopg-pool -------------------------------------------------------------------------------------
class LifoConnectionPool(AsyncConnectionPool[AsyncConnection[Any]]):
    """An ``AsyncConnectionPool`` that hands out the connection returned last (psycopg-pool: the oldest).

    Overrides the private ``AsyncConnectionPool._get_ready_connection`` (called under the pool's lock),
    taking from the right of the idle deque instead of the left. With a few requests at a time the same
    one or two server processes then answer, warm, instead of every connection in turn: one client's
    page p50 1.33 -> 1.10 ms, 32 connections unchanged (docs/benchmarks.md). Idle connections left at
    the bottom of the stack still age out by ``max_lifetime`` and are checked after a broken one
    (kds.server.process.database).
    """

    async def _get_ready_connection(self, timeout: float | None) -> AsyncConnection[Any] | None:
        if self._pool and (timeout is None or timeout > 0.0):
            conn = self._pool.pop()
            self._nconns_min = min(self._nconns_min, len(self._pool))
            return conn
        return await super()._get_ready_connection(timeout)


# -- prometheus-client --------------------------------------------------------------------------------
def reselect_value_class() -> None:
    """Redo ``prometheus_client.values.ValueClass = get_value_class()`` (done once, at its import).

    prometheus-client chooses between in-process and multiprocess values when first imported; when
    that happened before ``PROMETHEUS_MULTIPROC_DIR`` was set, metrics created afterwards need the
    choice made again.
    """
    _prometheus_values.ValueClass = _prometheus_values.get_value_class()  # type: ignore[no-untyped-call]


# -- the HTTP/1.1 handler ------------------------------------------------------------------------------
def set_header_limit(size: int) -> None:
    """``sanic.http.http1.Http.set_header_max_size``: process-wide, after Sanic's config applied its own min."""
    Http.set_header_max_size(size)


def received_head(request: Request, limit: int) -> bytes | None:
    """The first ``limit`` bytes of the connection's receive buffer (``Http.recv_buffer``), or None."""
    stream = getattr(request, "stream", None)
    buffer = getattr(stream, "recv_buffer", None)
    return None if buffer is None else bytes(buffer[:limit])


def close_after_response(request: Request) -> None:
    """Answer with ``Connection: close`` (sets ``Http.keep_alive``, which Sanic reads when it responds)."""
    if request.stream is not None:
        request.stream.keep_alive = False  # type: ignore[attr-defined]


class _HookedHttp(Http):
    """``sanic.http.http1.Http`` telling its protocol when a request begins (``Http.init_for_request``)."""

    def init_for_request(self) -> None:
        super().init_for_request()  # type: ignore[no-untyped-call]
        self.protocol.request_begins()  # type: ignore[attr-defined]


class GuardedHttpProtocol(HttpProtocol):
    """``sanic.server.protocols.http_protocol.HttpProtocol`` with two hooks for subclasses.

    :meth:`request_begins` runs when Sanic starts reading a request on the connection;
    :meth:`guard_receive` wraps ``HttpProtocol.receive_more`` (the wait for more bytes), told whether
    the connection is idle between requests (``Http.stage`` is ``Stage.IDLE``).
    """

    HTTP_CLASS = _HookedHttp
    __slots__ = ()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Mirrors ``HttpProtocol.connection_made``, after :meth:`connection_begins`."""
        self.connection_begins()
        super().connection_made(transport)  # type: ignore[no-untyped-call]

    def connection_begins(self) -> None:
        """Called when a client connects, before Sanic sets the connection up."""

    def request_begins(self) -> None:
        """Called by the HTTP handler for every request on this connection."""

    async def guard_receive(self, receive: Callable[[], Awaitable[None]], idle: bool) -> None:
        await receive()

    @property
    def request_timeout_seconds(self) -> float:
        """``HttpProtocol.request_timeout`` (``REQUEST_TIMEOUT`` of the app's config)."""
        return float(self.request_timeout)

    async def receive_more(self) -> None:
        """Mirrors ``BaseProtocol.receive_more``, through :meth:`guard_receive`."""
        http = self._http
        idle = http is None or http.stage is Stage.IDLE
        await self.guard_receive(super().receive_more, idle)


def abort_connection(request: Request) -> None:
    """Drop the connection at once, without a terminating chunk (``Request.transport`` is Sanic's wrapper
    of the asyncio transport; ``abort`` is the asyncio transport's)."""
    request.transport.abort()  # type: ignore[attr-defined]


# -- the worker manager (main process) -----------------------------------------------------------------
def manager_shutting_down(app: App) -> bool:
    """``WorkerManager._shutting_down``: the manager received a shutdown signal."""
    return bool(app.manager._shutting_down)


def stop_waiting_for_ack_on_shutdown(app: App) -> None:
    """Replace ``WorkerManager.wait_for_ack`` on this manager instance by a copy that gives up on shutdown.

    Sanic's version waits for every worker's start-up acknowledgement, which never comes once the
    workers were told to stop during start-up; this one stops waiting once the manager's shutdown
    began, and signals the workers started meanwhile.
    """
    from sanic.log import error_logger

    manager = app.manager

    def wait_for_ack() -> None:
        misses = 0
        while not manager._all_workers_ack():  # type: ignore[no-untyped-call]
            if manager._shutting_down:
                manager.shutdown()  # type: ignore[no-untyped-call]  # also signals the workers started meanwhile
                return  # the shutdown message stays queued for manager.monitor()
            if manager.monitor_subscriber.poll(0.1):
                message = manager.monitor_subscriber.recv()
                if message != "__TERMINATE_EARLY__":
                    manager.monitor_publisher.send(message)
                    continue
                misses = manager.THRESHOLD
            misses += 1
            if misses > manager.THRESHOLD:
                error_logger.error("Not all workers acknowledged a successful start-up. Shutting down.")
                manager.kill()  # type: ignore[no-untyped-call]

    manager.wait_for_ack = wait_for_ack  # type: ignore[method-assign]


def signal_forwarder(app: App) -> Callable[[int, Any], None]:
    """``WorkerManager.shutdown_signal``: the manager's own signal handler (tells every worker to stop)."""
    forward: Callable[[int, Any], None] = app.manager.shutdown_signal
    return forward


def worker_pids(app: App) -> set[int]:
    """Pids of the manager's worker processes (``WorkerManager.processes``)."""
    return {process.pid for process in app.manager.processes if process.pid}


def listening_sockets(app: App) -> list[Any]:
    """The main process's listening sockets (``ApplicationState.server_info[].settings["sock"]``)."""
    return [info.settings["sock"] for info in app.state.server_info if info.settings.get("sock") is not None]
