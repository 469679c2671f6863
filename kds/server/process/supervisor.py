"""The main process of ``kds serve``: signals, around Sanic's worker manager.

The first SIGTERM/SIGINT is forwarded to every worker (Sanic's manager sends them SIGINT; each runs
:mod:`kds.server.process.shutdown`). After the propagation delay the main process closes its copy of the
listening socket, so that once the workers stop accepting, new connections are refused instead of
waiting in a queue nobody reads. A second signal kills the workers and exits at once with
128 + the signal number.

The signal handler itself only writes the signal number to a pipe: the work is done by a helper
thread, because the main thread may be in the middle of talking to Sanic's manager process (a
multiprocessing proxy, not re-entrant) or of writing a log line when the signal arrives. Signals
that arrive before the manager exists are remembered and forwarded once it does, and the manager's
wait for the workers' start-up acknowledgements (which never ends once the workers were told to
stop) is replaced by one that gives up when shutdown began.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from time import monotonic
from typing import TYPE_CHECKING, Any

from kds.server.http.logs import event
from kds.server.process import private_apis
from kds.server.process.shutdown import (
    SIGNALS,
    prepare_forked_worker,
    remember_early_signal,
    request_shutdown,
    share_shutdown_flag,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from kds.server.process.state import App


class Supervisor:
    def __init__(self, app: App, shutdown_delay: float, on_exit: Callable[[], None]) -> None:
        self.app = app
        self.shutdown_delay = shutdown_delay
        self.on_exit = on_exit
        self.main_pid = os.getpid()
        self.first_at: float | None = None
        self._forward: Callable[[int, Any], None] | None = None
        self._pending: int | None = None
        self._lock = threading.Lock()
        self._read_fd, self._write_fd = os.pipe()
        share_shutdown_flag()

    # -- called by the runner / Sanic, in the main thread ------------------------------------------
    def watch(self) -> None:
        """Take SIGTERM/SIGINT from now on (before Sanic starts anything)."""
        threading.Thread(target=self._run, name="kds-signals", daemon=True).start()
        for signum in SIGNALS:
            signal.signal(signum, self._on_signal)

    def install(self) -> None:
        """``main_process_ready``: the worker manager exists (and replaced our handler with its own)."""
        import multiprocessing.util

        private_apis.stop_waiting_for_ack_on_shutdown(self.app)  # this manager instance only
        multiprocessing.util.register_after_fork(self, prepare_forked_worker)
        with self._lock:
            self._forward = private_apis.signal_forwarder(self.app)
            pending, self._pending = self._pending, None
        for signum in SIGNALS:
            signal.signal(signum, self._on_signal)
        if pending is not None:  # arrived before the manager existed
            request_shutdown()
            self._forward(pending, None)
            self._close_listeners_later()
        elif private_apis.manager_shutting_down(self.app) and self.first_at is None:
            # the signal arrived while Sanic's handler was in place
            request_shutdown()
            self.first_at = monotonic()
            event(logging.INFO, "shutdown: signal received by the main process during start-up")
            self._close_listeners_later()

    # -- the handler and its thread ----------------------------------------------------------------
    def _on_signal(self, signum: int, _: Any) -> None:
        if os.getpid() != self.main_pid:  # a freshly forked worker that did not replace this handler yet
            remember_early_signal(signum)
            return
        os.write(self._write_fd, bytes([signum]))

    def _run(self) -> None:
        while True:
            data = os.read(self._read_fd, 1)
            if data:
                self._handle(data[0])

    def _handle(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if self.first_at is not None:
            event(logging.WARNING, "shutdown: second signal, exiting now", signal=name,
                  after_s=round(monotonic() - self.first_at, 3))  # fmt: skip
            self._kill_children()
            self.on_exit()
            os._exit(128 + signum)
        self.first_at = monotonic()
        event(logging.INFO, "shutdown: signal received by the main process, forwarded to every worker", signal=name)
        request_shutdown()  # before any worker is signalled
        with self._lock:
            forward = self._forward
            if forward is None:
                self._pending = signum
                return
        forward(signum, None)
        self._close_listeners_later()

    def _close_listeners_later(self) -> None:
        timer = threading.Timer(self.shutdown_delay, self._close_listeners)
        timer.daemon = True
        timer.start()

    def _close_listeners(self) -> None:
        for sock in private_apis.listening_sockets(self.app):
            with contextlib.suppress(OSError):
                sock.close()

    def _kill_children(self) -> None:
        import multiprocessing

        pids: set[int] = set()
        with contextlib.suppress(Exception):
            pids.update(private_apis.worker_pids(self.app))
        pids.update(child.pid for child in multiprocessing.active_children() if child.pid)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
