"""Kubernetes-aware graceful shutdown (docs/operations.md).

Worker process (:class:`WorkerShutdown`), on SIGTERM or SIGINT:

1. at once: readiness answers 503 ``shutting_down`` (liveness stays 200);
2. for ``shutdown_delay`` seconds: keep serving new and in-flight requests as usual, so traffic routed
   before the endpoint removal propagated still succeeds;
3. drain: every response now says ``Connection: close``; then Sanic's own stop closes the listener
   and the idle keep-alive connections and waits up to ``drain_timeout``
   (``GRACEFUL_SHUTDOWN_TIMEOUT``) for in-flight requests;
4. close the pool (cancelling what a drain timeout left running) and exit 0.

Further signals in a worker are ignored: the main process owns the "second signal" rule.

The main process's side (forwarding, the second-signal rule) is :mod:`kds.server.process.supervisor`.

Every step is logged with its duration.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from time import monotonic
from typing import TYPE_CHECKING, Any

from kds.server.http.logs import event
from kds.server.process.state import worker_state

if TYPE_CHECKING:
    from kds.server.process.state import App

SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _seconds(since: float | None) -> float:
    return round(monotonic() - since, 3) if since is not None else 0.0


class WorkerShutdown:
    def __init__(self, app: App) -> None:
        self.app = app
        self.state = worker_state(app)
        self.settings = self.state.settings
        self.signal_at: float | None = None
        self.drain_at: float | None = None
        self._delay_task: asyncio.Task[None] | None = None

    # -- step 1 -------------------------------------------------------------------------------
    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Replace Sanic's handlers (which stop the loop at once) with the delayed sequence."""
        for signum in SIGNALS:
            loop.add_signal_handler(signum, self.begin, signum)
        if _early_signal is not None:  # received while the worker was starting
            self.begin(_early_signal)
        elif shutdown_requested():  # the main process began shutdown while this worker was starting
            self.begin(signal.SIGINT)

    def begin(self, signum: int) -> None:
        if self.signal_at is not None:
            event(logging.INFO, "shutdown: signal ignored, already shutting down", signal=signal.Signals(signum).name)
            return
        self.signal_at = monotonic()
        self.state.shutting_down = True
        event(
            logging.INFO,
            "shutdown step 1/4: readiness off",
            signal=signal.Signals(signum).name,
            shutdown_delay_s=self.settings.shutdown_delay,
            drain_timeout_s=self.settings.drain_timeout,
        )
        self._delay_task = asyncio.get_running_loop().create_task(self._delay_then_stop())

    # -- step 2 -------------------------------------------------------------------------------
    async def _delay_then_stop(self) -> None:
        await asyncio.sleep(self.settings.shutdown_delay)
        event(
            logging.INFO,
            "shutdown step 2/4: propagation delay over, draining",
            duration_s=_seconds(self.signal_at),
            in_flight=self.state.in_flight,
        )
        self.state.draining = True
        loop = asyncio.get_running_loop()
        for signum in SIGNALS:
            # From here on signals are ignored at the OS level (Sanic's own handler removal is then a no-op).
            loop.remove_signal_handler(signum)
            signal.signal(signum, signal.SIG_IGN)
        self.drain_at = monotonic()
        self.app.stop(terminate=False)

    # -- step 3 (Sanic closes the listener and idle connections, then waits for in-flight ones) --
    async def before_server_stop(self, app: App) -> None:
        """Also covers a stop that did not come through :meth:`begin` (then there is no delay)."""
        self.state.shutting_down = True
        self.state.draining = True
        if self.drain_at is None:
            self.drain_at = monotonic()
        for task in self.state.background:
            task.cancel()

    # -- step 4 -------------------------------------------------------------------------------
    async def after_server_stop(self, app: App) -> None:
        from kds.server.http import metrics

        remaining = self.state.in_flight
        event(
            logging.INFO if remaining == 0 else logging.WARNING,
            "shutdown step 3/4: drained" if remaining == 0 else "shutdown step 3/4: drain timeout, requests cut",
            duration_s=_seconds(self.drain_at),
            in_flight=remaining,
        )
        closing_at = monotonic()
        cancelled = 0
        for database in self.state.databases:
            cancelled += await database.close()
        event(
            logging.INFO,
            "shutdown step 4/4: database pool closed",
            duration_s=_seconds(closing_at),
            cancelled_queries=cancelled,
        )
        metrics.mark_process_dead(os.getpid())
        event(logging.INFO, "shutdown complete", total_s=_seconds(self.signal_at or self.drain_at))


# -- shutdown that began while a worker was starting ------------------------------------------------
# A signal that reaches a starting worker can be lost (Sanic ignores SIGINT/SIGTERM for a moment
# before it installs its loop handlers), so the main process also raises a flag in shared memory
# before it signals the workers; a worker checks it once its own handlers are in place.
_early_signal: int | None = None
_requested: Any = None  # multiprocessing.RawValue shared with the forked workers


def share_shutdown_flag() -> None:
    """Create the shared flag (main process, before the workers are forked)."""
    import multiprocessing

    global _requested
    _requested = multiprocessing.RawValue("b", 0)


def request_shutdown() -> None:
    if _requested is not None:
        _requested.value = 1


def shutdown_requested() -> bool:
    return _requested is not None and bool(_requested.value)


def remember_early_signal(signum: int, _: Any = None) -> None:
    global _early_signal
    if _early_signal is None:
        _early_signal = signum


def prepare_forked_worker(_: object) -> None:
    """In each forked child: remember SIGTERM/SIGINT until the worker installs its real handlers."""
    for signum in SIGNALS:
        signal.signal(signum, remember_early_signal)
