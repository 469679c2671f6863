"""Prometheus metrics of SPEC 5.4, correct with any number of workers.

With several worker processes every worker writes its samples to files in
``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode) and ``/metrics`` aggregates them,
whichever worker answers. :mod:`kds.server.runner` prepares that directory before any worker
starts (the variable must be set before ``prometheus_client`` is imported); without it (in-process
tests) the ordinary registry is used. Labels are bounded: route templates, never raw paths; known
methods and parameter names, anything else becomes ``other``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from time import perf_counter

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram

from kds.errors import KdsError, Problem

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
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
POOL_CONNECTIONS = Gauge(
    "datastorage_db_pool_connections",
    "Database pool connections (summed over live workers).",
    ["state"],
    multiprocess_mode="livesum",
)

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
KNOWN_FIELDS = frozenset(
    {
        "limit",
        "offset",
        "severity",
        "environment",
        "since",
        "until",
        "cursor",
        "namespace",
        "cluster",
        "action_type",
        "alert_name",
        "id",
        "body",
        # audit writes (SPEC 5.3)
        "remediation_id",
        "notification_id",
        "recipient",
        "channel",
        "message_summary",
        "status",
        "sent_at",
        "delivery_status",
        "error_message",
        "escalation_level",
    }
)
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
        VALIDATION_FAILURES.labels(field, problem.slug).inc()


def outcome(exception: BaseException) -> str:
    """A bounded outcome label for a failed database call (the slug it becomes)."""
    if isinstance(exception, KdsError):
        return exception.slug
    from kds.server.problems import classify

    return classify(exception).slug


@contextmanager
def timed_query(operation: str) -> Iterator[None]:
    """Time a database call into ``datastorage_query_duration_seconds`` / ``datastorage_query_total``."""
    started = perf_counter()
    status = OUTCOME_SUCCESS
    try:
        yield
    except BaseException as exc:
        status = outcome(exc) if isinstance(exc, Exception) else "cancelled"
        raise
    finally:
        QUERY_DURATION.labels(operation).observe(perf_counter() - started)
        QUERY_TOTAL.labels(operation, status).inc()


@contextmanager
def timed_write(table: str) -> Iterator[None]:
    """Time a database write into ``datastorage_write_duration_seconds`` / ``datastorage_write_total``."""
    started = perf_counter()
    status = OUTCOME_SUCCESS
    try:
        yield
    except BaseException as exc:
        status = outcome(exc) if isinstance(exc, Exception) else "cancelled"
        raise
    finally:
        WRITE_DURATION.labels(table).observe(perf_counter() - started)
        WRITE_TOTAL.labels(table, status).inc()


def set_pool_connections(size: int, available: int, waiting: int) -> None:
    POOL_CONNECTIONS.labels("size").set(size)
    POOL_CONNECTIONS.labels("available").set(available)
    POOL_CONNECTIONS.labels("waiting").set(waiting)


def multiprocess_enabled() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


def exposition() -> bytes:
    """The Prometheus text format of every worker's samples (or of this process without multiprocess mode)."""
    from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

    if not multiprocess_enabled():
        return generate_latest(REGISTRY)
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry)


def mark_process_dead(pid: int) -> None:
    """Drop a stopped worker's live gauges (in-flight requests, pool connections) from the sums."""
    if multiprocess_enabled():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
