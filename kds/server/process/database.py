"""The database side of one worker: an async connection pool, a readiness ping, pool statistics.

A worker has one :class:`Database` for the primary and, with ``KDS_READ_DATABASE_URL``, a second one for
reads (``role="read"``, read-only sessions; docs/scaling.md#read-replicas).

The pool is opened per worker (never shared across processes), without waiting for the database:
a server whose database is down still starts, answers liveness, and reports ``not_ready`` until the
database comes back. Connections are autocommit (a read is one round trip; a handler that needs a
transaction opens one explicitly). When a query fails because the connection broke, the idle
connections are checked in the background so that a database restart costs one failed request,
not one per pooled connection.

Behind a transaction-mode pooler (``KDS_DATABASE_POOLER=pgbouncer``, docs/scaling.md) the statement
timeout travels with each transaction: :meth:`Database.statement` queues it in the same pipeline as the
caller's statement, :meth:`Database.transaction` runs it first in an explicit transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from time import monotonic
from typing import TYPE_CHECKING, Literal

from kds.db.policy import ConnectionPolicy
from kds.server.http.logs import event
from kds.server.process.reconnect import ConnectFailures

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql
    from psycopg_pool import AsyncConnectionPool

    from kds.settings import Settings

APPLICATION_NAME = "kds-serve"
# Give up a failing reconnection attempt quickly; the pool grows again on demand, so recovery after
# an outage is driven by traffic and probes instead of a long exponential backoff.
RECONNECT_TIMEOUT = 2.0
PING_TIMEOUT = 1.0
# Readiness stays up while every connection is busy, if a query succeeded this recently.
BUSY_GRACE = 5.0
# During an outage every failed attempt would log; one warning per this many seconds is enough.
WARNING_INTERVAL = 30.0

PoolRole = Literal["primary", "read"]
PRIMARY: PoolRole = "primary"
READ: PoolRole = "read"


class Database:
    """One pool of a worker: ``primary`` (writes, and reads without a read database) or ``read``."""

    def __init__(self, url: str, settings: Settings, *, role: PoolRole = PRIMARY) -> None:
        self.url = url
        self.settings = settings
        self.role = role
        self.name = f"{APPLICATION_NAME}-{role}"
        self.policy = ConnectionPolicy(
            application_name=APPLICATION_NAME,
            statement_timeout=settings.statement_timeout,
            connect_timeout=settings.connect_timeout,
            # the read pool only reads: a misrouted write fails instead of landing on the wrong server
            read_only=role == READ,
            pooler=settings.database_pooler,
        )
        # what starts each transaction behind a pooler; None on a direct connection (the session has it)
        self.transaction_setup: sql.SQL | None = self.policy.transaction_setup()
        self.pool: AsyncConnectionPool | None = None
        self.active: set[psycopg.AsyncConnection] = set()
        self._check_task: asyncio.Task[None] | None = None
        self.last_success = 0.0
        self.last_broken = 0.0
        self._last_warning = -WARNING_INTERVAL
        self._connect_failures = ConnectFailures()

    async def open(self) -> None:
        from kds.server.process.private_apis import LifoConnectionPool

        settings = self.settings
        self.pool = LifoConnectionPool(
            self.url,
            kwargs={**self.policy.kwargs(), "autocommit": True},
            min_size=settings.pool_size,
            max_size=settings.pool_size,
            timeout=settings.pool_timeout,
            max_waiting=max(100, 20 * settings.pool_size),
            connection_class=self._connect_failures.connection_class,  # remembers why reconnecting fails
            reconnect_timeout=RECONNECT_TIMEOUT,
            reconnect_failed=self._reconnect_failed,
            name=self.name,
            open=False,
        )
        # The pool's own warnings repeat the driver's text on every attempt; kds logs its own.
        logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
        await self.pool.open(wait=False)

    async def _reconnect_failed(self, pool: AsyncConnectionPool) -> None:
        now = monotonic()
        if now - self._last_warning >= WARNING_INTERVAL:
            self._last_warning = now
            failed = await self._connect_failures.last()
            cause = {} if failed is None else {"cause": failed.cause, "detail": failed.detail}
            event(logging.WARNING, "cannot connect to the database; retrying on demand", pool=self.role, **cause)

    @asynccontextmanager
    async def connection(self, *, timeout: float | None = None) -> AsyncIterator[psycopg.AsyncConnection]:
        """A pooled connection; driver and pool exceptions propagate (the error path translates them)."""
        import psycopg

        assert self.pool is not None, "the pool is opened before the server starts"
        async with self.pool.connection(timeout=timeout) as conn:
            self.active.add(conn)
            try:
                yield conn
            except psycopg.Error:
                if conn.broken:
                    self.last_broken = monotonic()
                    self.check_soon()
                raise
            except Exception:  # e.g. not-found: the database answered
                self.last_success = monotonic()
                raise
            else:
                self.last_success = monotonic()
            finally:
                self.active.discard(conn)

    def statement(self, *, timeout: float | None = None) -> AbstractAsyncContextManager[psycopg.AsyncConnection]:
        """A pooled connection for one statement, with the statement timeout in force.

        Behind a pooler the settings are queued in a pipeline ahead of the caller's statement: one
        implicit transaction, sent in one write (no server-side cursors inside: use :meth:`transaction`).
        """
        if self.transaction_setup is None:  # direct: no extra layer on the hot path
            return self.connection(timeout=timeout)
        return self._with_settings(timeout, pipeline=True)

    def transaction(self, *, timeout: float | None = None) -> AbstractAsyncContextManager[psycopg.AsyncConnection]:
        """A pooled connection for work that opens its own transaction (server-side cursors).

        Behind a pooler the caller runs inside a transaction that begins with the settings (its own
        transaction block becomes a savepoint); on a direct connection this is :meth:`connection`.
        """
        if self.transaction_setup is None:
            return self.connection(timeout=timeout)
        return self._with_settings(timeout, pipeline=False)

    @asynccontextmanager
    async def _with_settings(self, timeout: float | None, *, pipeline: bool) -> AsyncIterator[psycopg.AsyncConnection]:
        assert self.transaction_setup is not None
        async with self.connection(timeout=timeout) as conn, conn.pipeline() if pipeline else conn.transaction():
            await conn.execute(self.transaction_setup)
            yield conn

    def check_soon(self) -> None:
        """Test the idle connections in the background (once at a time) after a connection broke."""
        if self.pool is None or (self._check_task is not None and not self._check_task.done()):
            return
        self._check_task = asyncio.get_running_loop().create_task(self._check())

    async def _check(self) -> None:
        assert self.pool is not None
        with suppress(Exception):
            await self.pool.check()

    async def ping(self) -> bool:
        """``SELECT 1`` through the pool within a short timeout: is the database usable right now?

        When every connection is busy (the pool timed out) the database is still reachable if a
        query succeeded a moment ago: a load spike must not take the pod out of its Service.
        """
        from psycopg_pool import PoolTimeout

        timeout = min(self.settings.pool_timeout, PING_TIMEOUT)
        try:
            async with asyncio.timeout(timeout * 2), self.connection(timeout=timeout) as conn:
                await conn.execute("SELECT 1")
        except PoolTimeout:
            return self.last_success > self.last_broken and monotonic() - self.last_success < BUSY_GRACE
        except Exception:
            return False
        return True

    async def replica_lag(self) -> float | None:
        """How far this database's replay is behind its primary, in seconds; ``None`` when it does not answer.

        0 for a database that is not a replica (:mod:`kds.db.replica`, docs/scaling.md#read-replicas).
        """
        from kds.db.replica import areplica_lag

        timeout = min(self.settings.pool_timeout, PING_TIMEOUT)
        try:
            async with asyncio.timeout(timeout * 2), self.statement(timeout=timeout) as conn:
                return await areplica_lag(conn)
        except Exception:
            return None

    def stats(self) -> tuple[int, int, int]:
        """(size, available, waiting) of the pool."""
        if self.pool is None:
            return 0, 0, 0
        stats = self.pool.get_stats()
        return stats.get("pool_size", 0), stats.get("pool_available", 0), stats.get("requests_waiting", 0)

    async def close(self, *, grace: float = 1.0) -> int:
        """Cancel what still runs (after a drain timeout), close every connection; return how many were cancelled."""
        if self._check_task is not None:
            self._check_task.cancel()
        cancelled = len(self.active)
        for conn in list(self.active):
            with suppress(Exception):
                await conn.cancel_safe(timeout=grace)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self.active and loop.time() < deadline:
            await asyncio.sleep(0.02)
        for conn in list(self.active):
            with suppress(Exception):
                await conn.close()
        if self.pool is not None:
            await self.pool.close(timeout=grace)
        return cancelled
