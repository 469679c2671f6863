"""Why the pool's background reconnection failed, for its warning (docs/configuration.md#when-the-connection-fails).

psycopg_pool calls its ``reconnect_failed`` callback with the pool only, not with the error. The pool
is given :attr:`ConnectFailures.connection_class`, psycopg's connection whose ``connect`` remembers
the last failed attempt (error and connection parameters); the warning then states its cause with
:func:`kds.db.connection.connection_failed`, the classifier of the CLI and ``validate-infra``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import psycopg

from kds.db.connection import connection_failed

if TYPE_CHECKING:
    from typing import Self

    from kds.errors import ConnectionFailed

# keyword arguments of psycopg's connect that are not connection parameters
_NOT_CONNINFO = frozenset({"autocommit", "prepare_threshold", "context", "row_factory", "cursor_factory"})


class ConnectFailures:
    """The last failed connection attempt of one pool."""

    def __init__(self) -> None:
        self.error: psycopg.Error | None = None
        self.conninfo = ""
        self.params: dict[str, Any] = {}
        self.connection_class = self._remembering_connection_class()

    def _remembering_connection_class(self) -> type[psycopg.AsyncConnection[Any]]:
        failures = self

        class RememberingConnection(psycopg.AsyncConnection[Any]):
            """``psycopg.AsyncConnection`` remembering why its last ``connect`` failed."""

            @classmethod
            async def connect(cls, conninfo: str = "", **kwargs: Any) -> Self:
                try:
                    return await super().connect(conninfo, **kwargs)
                except psycopg.Error as exc:
                    failures.error, failures.conninfo = exc, conninfo
                    failures.params = {key: value for key, value in kwargs.items() if key not in _NOT_CONNINFO}
                    raise

        return RememberingConnection

    async def last(self) -> ConnectionFailed | None:
        """``cannot connect to user@host:port/dbname: <cause>`` for the last failure (None: none seen).

        Classified in a thread: a rejection without SQLSTATE is asked again (a blocking attempt).
        """
        if self.error is None:
            return None
        return await asyncio.to_thread(connection_failed, self.conninfo, self.error, self.params)
