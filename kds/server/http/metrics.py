"""Prometheus metrics (docs/operations.md), correct with any number of workers.

With several worker processes every worker writes its samples to files in
``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode) and ``/metrics`` aggregates them,
whichever worker answers. :mod:`kds.server.process.runner` prepares that directory before any worker
starts (the variable must be set before ``prometheus_client`` is imported); without it (in-process
tests) the ordinary registry is used. Labels are bounded: route templates, never raw paths; known
methods and parameter names, anything else becomes ``other``.
"""

from __future__ import annotations

from collections.abc import Iterable
from time import perf_counter
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram

from kds.audit.store import WRITE_COLUMNS
from kds.errors import KdsError, Problem
from kds.query.vocabulary import PARAMETERS, SUMMARY_PARAMETERS
from kds.server.http.problems import classify
from kds.server.process import private_apis
from kds.server.process.metrics_dir import multiprocess_enabled

if TYPE_CHECKING:
    from kds.server.process.database import Database

# prometheus-client picks its value class when first imported; if that happened before the runner
# set the variable, pick again (the metrics below are created with whatever is chosen here).
if multiprocess_enabled():
    private_apis.reselect_value_class()
CONTENT_TYPE = CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests by method, route template and status.", ["method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "HTTP request duration by method and route template.",
    ["method", "route"],
    buckets=_LATENCY_BUCKETS,
)
HTTP_IN_FLIGHT = Gauge("http_requests_in_flight", "HTTP requests being handled right now.", multiprocess_mode="livesum")
QUERY_DURATION = Histogram(
    "datastorage_query_duration_seconds",
    "Database query duration by operation.",
    ["operation"],
    buckets=_LATENCY_BUCKETS,
)
QUERY_TOTAL = Counter("datastorage_query_total", "Database queries by operation and outcome.", ["operation", "status"])
WRITE_TOTAL = Counter("datastorage_write_total", "Database writes by table and outcome.", ["table", "status"])
WRITE_DURATION = Histogram(
    "datastorage_write_duration_seconds", "Database write duration by table.", ["table"], buckets=_LATENCY_BUCKETS
)
VALIDATION_FAILURES = Counter(
    "datastorage_validation_failures_total", "Rejected inputs by field and reason (slug).", ["field", "reason"]
)
OPEN_WATCHES = Gauge(
    "datastorage_open_watches",
    "Open watch streams (GET /api/v1/incidents?watch=true), summed over live workers.",
    multiprocess_mode="livesum",
)
POOL_CONNECTIONS = Gauge(
    "datastorage_db_pool_connections",
    "Database pool connections by pool (primary, read) and state (summed over live workers).",
    ["pool", "state"],
    multiprocess_mode="livesum",
)
REPLICA_LAG = Gauge(
    "datastorage_replica_lag_seconds",
    "How far the read database's replay is behind its primary (0 without one, or when it is not a replica).",
    multiprocess_mode="livemax",
)

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Validation-failure labels stay bounded: the query parameters and audit fields kds knows.
KNOWN_FIELDS = frozenset({*PARAMETERS, *SUMMARY_PARAMETERS, *WRITE_COLUMNS, "id", "body"})
OTHER = "other"
OUTCOME_SUCCESS = "success"


def method_label(method: str) -> str:
    return method if method in KNOWN_METHODS else OTHER


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    method = method_label(method)
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_DURATION.labels(method, route).observe(seconds)


def record_validation_failures(problems: Iterable[Problem]) -> None:
    for problem in problems:
        field = problem.name if problem.name in KNOWN_FIELDS else OTHER
        # a problem may carry a finer reason than its slug (audit fields: missing, too_long, ...)
        VALIDATION_FAILURES.labels(field, getattr(problem, "reason", problem.slug)).inc()


def outcome(exception: BaseException) -> str:
    """A bounded outcome label for a failed database call (the slug it becomes)."""
    if isinstance(exception, KdsError):
        return exception.slug
    return classify(exception).slug


class _Timed:
    """Times a database call into a duration histogram and an outcome counter.

    The outcome is ``success``, the slug the exception becomes, ``cancelled`` when the client went
    away, or whatever the caller set in ``status`` (e.g. a stream cut after its first byte).
    """

    __slots__ = ("counter", "histogram", "label", "started", "status")

    def __init__(self, histogram: Histogram, counter: Counter, label: str) -> None:
        self.histogram = histogram
        self.counter = counter
        self.label = label
        self.status: str | None = None
        self.started = 0.0

    def __enter__(self) -> _Timed:
        self.started = perf_counter()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, _: object) -> None:
        if self.status is None:
            if exc is None:
                self.status = OUTCOME_SUCCESS
            else:
                self.status = outcome(exc) if isinstance(exc, Exception) else "cancelled"
        self.histogram.labels(self.label).observe(perf_counter() - self.started)
        self.counter.labels(self.label, self.status).inc()


def timed_query(operation: str) -> _Timed:
    """``datastorage_query_duration_seconds`` / ``datastorage_query_total`` for one read."""
    return _Timed(QUERY_DURATION, QUERY_TOTAL, operation)


def timed_write(table: str) -> _Timed:
    """``datastorage_write_duration_seconds`` / ``datastorage_write_total`` for one write."""
    return _Timed(WRITE_DURATION, WRITE_TOTAL, table)


def publish_pools(databases: Iterable[Database]) -> None:
    """``datastorage_db_pool_connections{pool,state}`` of this worker's pools."""
    for database in databases:
        size, available, waiting = database.stats()
        POOL_CONNECTIONS.labels(database.role, "size").set(size)
        POOL_CONNECTIONS.labels(database.role, "available").set(available)
        POOL_CONNECTIONS.labels(database.role, "waiting").set(waiting)


def exposition() -> bytes:
    """The Prometheus text format of every worker's samples (or of this process without multiprocess mode)."""
    from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

    if not multiprocess_enabled():
        return generate_latest(REGISTRY)
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # no annotations upstream
    return generate_latest(registry)


def mark_process_dead(pid: int) -> None:
    """Drop a stopped worker's live gauges (in-flight requests, pool connections) from the sums."""
    if multiprocess_enabled():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]  # no annotations upstream
