"""Kubernetes-aware graceful shutdown (SPEC 5.5).

Worker process (:class:`WorkerShutdown`), on SIGTERM or SIGINT:

1. at once: readiness answers 503 ``shutting_down`` (liveness stays 200);
2. for ``shutdown_delay`` seconds: keep serving new and in-flight requests as usual, so traffic routed
   before the endpoint removal propagated still succeeds;
3. drain: every response now says ``Connection: close``; then Sanic's own stop closes the listener
   and the idle keep-alive connections and waits up to ``drain_timeout``
   (``GRACEFUL_SHUTDOWN_TIMEOUT``) for in-flight requests;
4. close the pool (cancelling what a drain timeout left running) and exit 0.

Further signals in a worker are ignored: the main process owns the "second signal" rule.

Main process (:class:`MainSignals`): the first signal is forwarded to the workers by Sanic's worker
manager (as SIGINT); after the delay the main process closes its copy of the listening socket, so
that once the workers stop accepting, new connections are refused rather than left queued. A second
signal kills the workers and exits at once with 128 + the signal number.

Every step is logged with its duration.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from time import monotonic
from typing import TYPE_CHECKING, Any

from kds.server.logs import event

if TYPE_CHECKING:
    from collections.abc import Callable

    from sanic import Sanic

SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _seconds(since: float | None) -> float:
    return round(monotonic() - since, 3) if since is not None else 0.0


class WorkerShutdown:
    def __init__(self, app: Sanic) -> None:
        self.app = app
        self.state = app.ctx.state
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
    async def before_server_stop(self, app: Sanic) -> None:
        """Also covers a stop that did not come through :meth:`begin` (then there is no delay)."""
        self.state.shutting_down = True
        self.state.draining = True
        if self.drain_at is None:
            self.drain_at = monotonic()
        for task in self.state.background:
            task.cancel()

    # -- step 4 -------------------------------------------------------------------------------
    async def after_server_stop(self, app: Sanic) -> None:
        from kds.server import metrics

        remaining = self.state.in_flight
        event(
            logging.INFO if remaining == 0 else logging.WARNING,
            "shutdown step 3/4: drained" if remaining == 0 else "shutdown step 3/4: drain timeout, requests cut",
            duration_s=_seconds(self.drain_at),
            in_flight=remaining,
        )
        closing_at = monotonic()
        cancelled = await self.state.database.close()
        event(
            logging.INFO,
            "shutdown step 4/4: database pool closed",
            duration_s=_seconds(closing_at),
            cancelled_queries=cancelled,
        )
        metrics.mark_process_dead(os.getpid())
        event(logging.INFO, "shutdown complete", total_s=_seconds(self.signal_at or self.drain_at))


class MainSignals:
    """The main process's SIGTERM/SIGINT handling around Sanic's worker manager.

    :meth:`watch` runs before Sanic starts anything, :meth:`install` once the worker manager exists
    (``main_process_ready``). A signal that arrives before the workers are up still ends in an
    orderly shutdown: Sanic's manager would otherwise wait for the workers' start-up
    acknowledgements forever (it re-queues the shutdown message while it waits), so that wait is
    replaced by one that stops when shutdown began, and forked workers remember a signal received
    before their own handlers exist.
    """

    def __init__(self, app: Sanic, shutdown_delay: float, on_exit: Callable[[], None]) -> None:
        self.app = app
        self.shutdown_delay = shutdown_delay
        self.on_exit = on_exit
        self.first_at: float | None = None
        self.pending: int | None = None
        self._forward: Callable[[int, Any], None] | None = None
        self.main_pid = os.getpid()

    def watch(self) -> None:
        """Handle signals from now on (before the worker manager exists they are only recorded)."""
        for signum in SIGNALS:
            signal.signal(signum, self.handle)

    def install(self) -> None:
        import multiprocessing.util

        manager = self.app.manager
        self._forward = manager.shutdown_signal
        for signum in SIGNALS:
            signal.signal(signum, self.handle)
        manager.wait_for_ack = self._wait_for_ack  # this manager only
        multiprocessing.util.register_after_fork(self, _prepare_forked_worker)
        if self.pending is not None:  # arrived before the manager existed
            self._forward(self.pending, None)
            self._close_listeners_later()
        elif manager._shutting_down and self.first_at is None:  # arrived while Sanic's own handler was in place
            self.first_at = monotonic()
            event(logging.INFO, "shutdown: signal received by the main process during start-up")
            self._close_listeners_later()

    def handle(self, signum: int, frame: Any) -> None:
        if os.getpid() != self.main_pid:  # a freshly forked worker that did not replace this handler yet
            _remember_early_signal(signum, frame)
            return
        name = signal.Signals(signum).name
        if self.first_at is None:
            self.first_at = monotonic()
            event(logging.INFO, "shutdown: signal received by the main process, forwarded to every worker", signal=name)
            if self._forward is None:
                self.pending = signum
                return
            self._forward(signum, frame)
            self._close_listeners_later()
            return
        event(logging.WARNING, "shutdown: second signal, exiting now", signal=name, after_s=_seconds(self.first_at))
        self._kill_children()
        self.on_exit()
        os._exit(128 + signum)

    def _wait_for_ack(self) -> None:
        """Sanic's ``WorkerManager.wait_for_ack``, but it stops waiting once shutdown began."""
        from sanic.log import error_logger

        manager = self.app.manager
        misses = 0
        while not manager._all_workers_ack():
            if manager._shutting_down:
                manager.shutdown()  # also signals workers started after the signal arrived
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
                manager.kill()

    def _close_listeners_later(self) -> None:
        import threading

        timer = threading.Timer(self.shutdown_delay, self._close_listeners)
        timer.daemon = True
        timer.start()

    def _close_listeners(self) -> None:
        for server_info in self.app.state.server_info:
            sock = server_info.settings.get("sock")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()

    def _kill_children(self) -> None:
        import multiprocessing

        pids = set()
        with contextlib.suppress(Exception):
            pids.update(process.pid for process in self.app.manager.processes if process.pid)
        pids.update(child.pid for child in multiprocessing.active_children() if child.pid)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


# -- a signal that reaches a worker before its event loop handles signals --------------------------
_early_signal: int | None = None


def _remember_early_signal(signum: int, _: Any) -> None:
    global _early_signal
    if _early_signal is None:
        _early_signal = signum


def _prepare_forked_worker(_: MainSignals) -> None:
    """In each forked child: remember SIGTERM/SIGINT until the worker installs its real handlers."""
    for signum in SIGNALS:
        signal.signal(signum, _remember_early_signal)
