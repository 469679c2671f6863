"""Drive a :class:`kds.query.watch.Watch` on synchronous connections, through database outages.

A lost connection is retried with exponential backoff; the watch keeps its position, so after
the reconnect it continues with no gap and no repeat (docs/terminal.md, "Watch").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from kds.errors import ServiceUnavailable
from kds.query.watch import Watch, run_steps

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

FIRST_RETRY = 0.2
LONGEST_RETRY = 5.0


def _lost(exc: BaseException) -> bool:
    import psycopg

    return isinstance(exc, ServiceUnavailable | psycopg.OperationalError | psycopg.InterfaceError)


def follow(
    watch: Watch,
    connect: Callable[[], psycopg.Connection],
    *,
    interval: float,
    on_lost: Callable[[], None] = lambda: None,
    sleep: Callable[[float], None] = time.sleep,
    setup: sql.SQL | None = None,
) -> Iterator[list[Any]]:
    """Yield the first page (unless ``watch`` was resumed), then each poll's new documents.

    ``connect`` opens an autocommit connection; ``setup`` starts each poll's transaction.
    ``on_lost`` is called once per outage; a database that cannot be reached before the first
    page is an error, not an outage.
    Runs until the caller stops iterating (or a signal interrupts ``sleep``).
    """
    conn: psycopg.Connection | None = None
    retry = 0.0
    try:
        while True:
            try:
                if conn is None or conn.closed:
                    conn = connect()
                documents = run_steps(conn, watch.poll() if watch.started else watch.start(), setup)
            except Exception as exc:
                if not _lost(exc) or not watch.started:  # unreachable from the start: fail now, like kubectl
                    raise
                if conn is not None:
                    conn.close()
                    conn = None
                if not retry:
                    on_lost()
                retry = min(retry * 2, LONGEST_RETRY) if retry else FIRST_RETRY
                sleep(retry)
                continue
            retry = 0.0
            yield documents
            sleep(interval)
    finally:
        if conn is not None:
            conn.close()
