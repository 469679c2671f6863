"""The check protocol and the runner that gives every check its own timeout.

A check is a small object: an ``id``, a ``title``, whether it ``needs_database`` and a ``run``
function that returns a :class:`CheckResult` (status, message, fix). The runner executes the
checks in order, each in a daemon thread joined with the per-check timeout, so one hung check
cannot hang the command. Checks that need the database are skipped (not failed) when no
connection could be opened; the connection is opened once, by the ``database-connection`` step.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import psycopg

T = TypeVar("T")


class Status(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class CheckResult:
    status: Status
    message: str
    fix: str = ""


def passed(message: str) -> CheckResult:
    return CheckResult(Status.PASS, message)


def warned(message: str, fix: str) -> CheckResult:
    return CheckResult(Status.WARN, message, fix)


def failed(message: str, fix: str) -> CheckResult:
    return CheckResult(Status.FAIL, message, fix)


def skipped(message: str) -> CheckResult:
    return CheckResult(Status.SKIP, message)


@dataclass
class Context:
    """What the checks may look at. Filled by the front end, then by the connection step."""

    timeout: float = 5.0
    settings_overrides: dict[str, Any] = field(default_factory=dict)
    database_url: str | None = None
    database_error: str | None = None  # the database could not even be located (e.g. embedded extra missing)
    database_fix: str = ""
    server_url: str | None = None
    server_token: str | None = None
    max_lag: float = 30.0  # read-database: the replay lag above which it warns (--max-lag)
    connection: psycopg.Connection | None = None
    connection_result: CheckResult | None = None  # set once the connection was attempted
    connection_unusable: str | None = None  # why later checks must not use the connection

    def close(self) -> None:
        if self.connection is not None:
            conn, self.connection = self.connection, None
            with contextlib.suppress(Exception):  # closing a broken connection must never fail the command
                conn.close()


@dataclass(frozen=True, slots=True)
class Check:
    id: str
    title: str
    run: Callable[[Context], CheckResult]
    needs_database: bool = False
    uses_database_url: bool = False  # opens its own connections to the located database (no shared one)
    opens_connection: bool = False  # reports the connection attempt instead of running ``run``
    min_timeout: float = 0.0  # a floor under --timeout for local work that is slow but cannot hang

    def timeout(self, context: Context) -> float:
        return max(context.timeout, self.min_timeout)


@dataclass(frozen=True, slots=True)
class Outcome:
    id: str
    title: str
    status: Status
    message: str
    fix: str
    duration_ms: float


class _TimedOut(Exception):
    pass


def call_with_timeout(function: Callable[[], T], timeout: float, *, on_late: Callable[[T], None] | None = None) -> T:
    """Run ``function`` in a daemon thread; raise :class:`_TimedOut` after ``timeout`` seconds.

    A late result (the thread finished after we gave up) is handed to ``on_late`` so that it can
    release resources, e.g. close a connection nobody will use.
    """
    lock = threading.Lock()
    done = threading.Event()
    results: list[T] = []
    errors: list[BaseException] = []
    abandoned = False

    def work() -> None:
        try:
            value = function()
        except BaseException as exc:
            with lock:
                errors.append(exc)
        else:
            with lock:
                if abandoned:
                    if on_late is not None:
                        on_late(value)
                    return
                results.append(value)
        done.set()

    thread = threading.Thread(target=work, name="kds-check", daemon=True)
    thread.start()
    done.wait(timeout)
    with lock:  # decided under the lock: a result is either returned here or handed to on_late, never lost
        if not results and not errors:
            abandoned = True
            raise _TimedOut
    if errors:
        raise errors[0]
    return results[0]


def _describe_error(exc: BaseException) -> str:
    """A short, driver-text-free description of an unexpected exception inside a check."""
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a hard dependency
        psycopg = None  # type: ignore[assignment]
    if psycopg is not None and isinstance(exc, psycopg.Error):
        from kds.db.connection import translate_error

        state = f" (SQLSTATE {exc.sqlstate})" if exc.sqlstate else ""
        return f"{translate_error(exc).detail}{state}"
    return type(exc).__name__


Connector = Callable[[Context], "tuple[CheckResult, psycopg.Connection | None]"]


def _close_late(pair: tuple[CheckResult, psycopg.Connection | None]) -> None:
    if pair[1] is not None:
        pair[1].close()


def ensure_connection(context: Context, connect: Connector) -> None:
    """Attempt the database connection once, within the timeout; the outcome stays in ``context``."""
    if context.connection_result is not None:
        return
    try:
        result, conn = call_with_timeout(lambda: connect(context), context.timeout, on_late=_close_late)
    except _TimedOut:
        result, conn = (
            failed(
                f"no connection within the {context.timeout:g} s timeout",
                "check that the host and port are reachable from here (DNS, network policy, firewall) "
                "and that PostgreSQL is running; raise --timeout for a slow link",
            ),
            None,
        )
    except Exception as exc:
        result, conn = failed(f"could not connect: {_describe_error(exc)}", "check the database URL"), None
    context.connection_result, context.connection = result, conn


def _run_one(check: Check, context: Context) -> CheckResult:
    timeout = check.timeout(context)
    try:
        return call_with_timeout(lambda: check.run(context), timeout)
    except _TimedOut:
        if check.needs_database and context.connection is not None:
            context.connection_unusable = f"{check.id} timed out while using the connection"
            with contextlib.suppress(Exception):  # best effort: the statement timeout ends it anyway
                context.connection.cancel_safe(timeout=1)
        return failed(
            f"did not finish within the {timeout:g} s timeout",
            f"investigate why the {check.title.lower()} check is slow, or raise --timeout",
        )
    except Exception as exc:
        return failed(
            f"could not complete: {_describe_error(exc)}",
            "re-run with a role that can read the system catalogue, or report this to the kds maintainers",
        )


def run_checks(checks: Sequence[Check], context: Context, *, connect: Connector) -> list[Outcome]:
    """Run ``checks`` in order. The connection is opened by ``connect`` when a check first needs it;
    the check that ``opens_connection`` reports that attempt."""
    outcomes: list[Outcome] = []
    for check in checks:
        started = time.perf_counter()
        if check.needs_database or check.opens_connection:
            ensure_connection(context, connect)
        if check.opens_connection:
            assert context.connection_result is not None
            result = context.connection_result
        elif check.needs_database and context.connection is None:
            result = skipped("skipped: no database connection (see database-connection)")
        elif check.needs_database and context.connection_unusable:
            result = skipped(f"skipped: {context.connection_unusable}")
        else:
            result = _run_one(check, context)
        elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        outcomes.append(Outcome(check.id, check.title, result.status, result.message, result.fix, elapsed_ms))
    return outcomes
