"""The kds app served in the test process over ASGI: request/response contract tests without a subprocess.

:func:`serving_in_process` builds the same app ``kds serve`` builds (:func:`kds.server.process.app.create_app`),
runs Sanic's ASGI lifespan (the database pool opens as in a worker) on an event loop in a thread of
its own, and gives a synchronous client with httpx's API over ``httpx.ASGITransport``. No socket is
involved: what needs the real protocol, worker processes or signals (raw request limits, timeouts,
shutdown, logs, multi-worker metrics) stays on a real ``kds serve`` (:mod:`tests.serving`).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import httpx

T = TypeVar("T")
CALL_TIMEOUT = 60.0
BASE_URL = "http://kds.test"


class Lifespan:
    """Drives an ASGI app's lifespan protocol: startup now, shutdown later."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.messages: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        self.replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def _receive(self) -> dict[str, str]:
        return await self.messages.get()

    async def _send(self, message: dict[str, Any]) -> None:
        await self.replies.put(message)

    async def _step(self, kind: str) -> None:
        await self.messages.put({"type": f"lifespan.{kind}"})
        reply = await self.replies.get()
        if reply["type"] != f"lifespan.{kind}.complete":
            raise RuntimeError(f"ASGI lifespan {kind} failed: {reply}")

    async def startup(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
        self.task = asyncio.get_running_loop().create_task(self.app(scope, self._receive, self._send))
        await self._step("startup")

    async def shutdown(self) -> None:
        await self._step("shutdown")
        if self.task is not None:
            await self.task


class InProcessClient:
    """httpx's request API (``get``, ``post``, ``request``, ...), answered by the app in this process."""

    def __init__(self, loop: asyncio.AbstractEventLoop, client: httpx.AsyncClient) -> None:
        self._loop = loop
        self._client = client
        self.base_url = BASE_URL

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(CALL_TIMEOUT)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self.run(self._client.request(method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)

    def build_request(self, method: str, url: str, **kwargs: Any) -> httpx.Request:
        return self._client.build_request(method, url, **kwargs)

    def send(self, request: httpx.Request) -> httpx.Response:
        return self.run(self._client.send(request))


@contextmanager
def serving_in_process(database_url: str, **settings: Any) -> Iterator[InProcessClient]:
    """The app of ``kds serve --database-url URL`` (plus ``settings``), with a client; stopped on exit."""
    from sanic import Sanic

    from kds.server.process.app import create_app
    from kds.settings import load_settings

    # Sanic's switch for several apps in one process: each start re-applies its TouchUp rewrites to
    # the original methods, and app names may repeat.
    Sanic.test_mode = True
    app = create_app(load_settings(database_url=database_url, shutdown_delay=0, **settings))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="kds-in-process", daemon=True)
    thread.start()
    lifespan = Lifespan(app)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL, timeout=CALL_TIMEOUT)
    http = InProcessClient(loop, client)
    try:
        http.run(lifespan.startup())
        yield http
    finally:
        try:
            http.run(client.aclose())
            http.run(lifespan.shutdown())
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()
            Sanic.unregister_app(app)
