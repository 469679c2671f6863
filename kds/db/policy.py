"""How kds's session settings reach the database: at connection start, or per transaction behind a pooler.

Every kds connection carries an ``application_name``, a statement timeout and, for inspection commands,
read-only transactions. A direct connection gets the timeout and the read-only default once, as startup
``options``, and prepares its hot statements (planning the page statement over every partition costs
more than running it). A pooler in transaction mode (PgBouncer 1.18) refuses startup ``options``, hands
each transaction to any server connection and cannot keep named prepared statements, so with
``KDS_DATABASE_POOLER=pgbouncer`` (docs/scaling.md):

- no startup ``options``; each transaction starts with ``set_config(..., true)`` (``SET LOCAL``
  semantics: nothing outlives the transaction), queued with the statement that follows it;
- read-only work runs in ``BEGIN READ ONLY`` transactions (psycopg's ``read_only`` attribute) and sets
  ``transaction_read_only`` in the same per-transaction statement;
- psycopg never prepares (``prepare_threshold=None``, and the explicit ``prepare=True`` calls check
  :func:`may_prepare`); the hot statements are kept on the server connections instead
  (:mod:`kds.db.prepared`, docs/scaling.md#prepared-statements-behind-a-pooler).

``application_name`` is a startup parameter PgBouncer forwards to each server connection it assigns,
so it holds in both modes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

Pooler = Literal["none", "pgbouncer"]
SWITCH = "KDS_DATABASE_POOLER"


@dataclass(frozen=True, slots=True)
class ConnectionPolicy:
    """The session settings of one kind of kds connection (``kds-cli``, ``kds-serve``, ...)."""

    application_name: str
    statement_timeout: float
    connect_timeout: float = 5.0
    read_only: bool = False
    pooler: Pooler = "none"

    @property
    def pooled(self) -> bool:
        """Settings travel per transaction (a transaction-mode pooler is in front of the database)."""
        return self.pooler != "none"

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``psycopg.connect`` (and a pool's ``kwargs``)."""
        kwargs: dict[str, Any] = {
            "application_name": self.application_name,
            # documents leave the server as UTF-8 bytes, whatever the database's encoding (kds.query.execute)
            "client_encoding": "utf8",
            "connect_timeout": max(1, round(self.connect_timeout)),
        }
        if self.pooled:
            kwargs["prepare_threshold"] = None
            return kwargs
        options = [f"-c statement_timeout={self._timeout_ms}"]
        if self.read_only:
            options.append("-c default_transaction_read_only=on")
        kwargs["options"] = " ".join(options)
        return kwargs

    @property
    def _timeout_ms(self) -> int:
        return int(self.statement_timeout * 1000)

    def transaction_setup(self) -> sql.SQL | None:
        """The statement that starts every transaction behind a pooler; ``None`` on a direct connection."""
        if not self.pooled:
            return None
        from psycopg import sql

        settings: list[sql.Composable] = [
            sql.SQL("set_config('statement_timeout', {}, true)").format(str(self._timeout_ms))
        ]
        if self.read_only:
            settings.append(sql.SQL("set_config('transaction_read_only', 'on', true)"))
        # rendered once: the statement is sent with every transaction
        return sql.SQL(sql.SQL("SELECT {}").format(sql.SQL(", ").join(settings)).as_string(None))

    def configure(self, conn: psycopg.Connection | psycopg.AsyncConnection) -> None:
        """Per-connection attributes that cost no round trip: read-only transactions (``BEGIN READ ONLY``)."""
        if self.read_only:
            conn.read_only = True


def may_prepare(conn: psycopg.Connection | psycopg.AsyncConnection) -> bool:
    """Whether named prepared statements are allowed on ``conn`` (not behind a transaction-mode pooler)."""
    return conn.prepare_threshold is not None


def apply_transaction_settings(conn: psycopg.Connection, policy: ConnectionPolicy) -> None:
    """Start a transaction on a non-autocommit ``conn`` with the per-transaction settings (pooler only)."""
    setup = policy.transaction_setup()
    if setup is not None:
        conn.execute(setup)


@contextmanager
def transaction(conn: psycopg.Connection, setup: sql.SQL | None = None) -> Iterator[None]:
    """``conn.transaction()`` that starts with ``setup`` (the per-transaction settings behind a pooler)."""
    with conn.transaction():
        if setup is not None:
            conn.execute(setup)
        yield
