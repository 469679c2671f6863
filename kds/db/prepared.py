"""Run a hot statement prepared, on a direct connection and behind a transaction-mode pooler alike.

Planning the page statement over every partition costs more than running it (bench/SQL_FINDINGS.md, 4),
so kds runs its hot statements prepared:

- on a direct connection psycopg prepares them (one named statement per connection and text);
- behind a transaction-mode pooler (``KDS_DATABASE_POOLER=pgbouncer``) a client-side named statement
  would be gone with the next transaction (another server connection), so kds keeps its statements on
  the *server* connections, which the pooler reuses. One simple-query message is one transaction on one
  server connection; kds sends ``<settings>; EXECUTE name(values)``. A server connection that does not
  have the statement yet (new, or cleared) answers "prepared statement does not exist" (26000), and kds
  sends ``<settings>; SELECT kds_prepare(name, body); EXECUTE name(values)``: ``kds_prepare``
  (migration 0005) prepares ``body`` there unless it exists. One round trip per request, as before,
  plus one per server connection and statement; the planning is gone (docs/scaling.md, "Prepared
  statements behind a pooler", has the measurements).

``PREPARE`` needs ``$n`` parameters where kds's statements have psycopg's ``%(name)s``
(:func:`positional` converts them), and ``EXECUTE`` takes no bound parameters (PostgreSQL answers
"there is no parameter $1"): its arguments are ``sql.Literal`` values, quoted by psycopg as its
``ClientCursor`` does, which PostgreSQL then coerces to the types it inferred for the statement. The
name is a hash of the body, so every kds process and version agrees on what a name means. A simple
query answers in text format: text, numbers and timestamps load as the same Python values.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg import sql

from kds.db.policy import may_prepare

if TYPE_CHECKING:
    import psycopg

_PLACEHOLDER = re.compile(r"%\((?P<name>[A-Za-z_][A-Za-z0-9_]*)\)s|%%|%")
PREFIX = "kds_"


@dataclass(frozen=True, slots=True)
class Positional:
    """A statement with ``$n`` parameters and the names of its parameters, in ``$n`` order."""

    text: str
    names: tuple[str, ...]


def positional(text: str) -> Positional:
    """``%(name)s`` placeholders as ``$1, $2, ...`` (a repeated name keeps its number); ``%%`` as ``%``."""
    numbers: dict[str, int] = {}

    def replace(match: re.Match[str]) -> str:
        name = match.group("name")
        if name is None:
            if match.group(0) == "%%":
                return "%"
            raise ValueError(f"only %(name)s placeholders can be prepared: {text[match.start() :][:40]!r}")
        number = numbers.setdefault(name, len(numbers) + 1)
        return f"${number}"

    converted = _PLACEHOLDER.sub(replace, text)
    return Positional(converted, tuple(numbers))


def statement_name(body: str) -> str:
    """The server-side name of ``body``: the same text gets the same name in every process."""
    return PREFIX + hashlib.blake2b(body.encode(), digest_size=12).hexdigest()


@dataclass(slots=True)
class PooledStatement:
    """One statement text as kds runs it behind a pooler."""

    name: str
    body: str
    names: tuple[str, ...]
    # setup text -> the rendered "<setup>; EXECUTE name(" and "<setup>; SELECT kds_prepare(...); EXECUTE name("
    prefixes: dict[tuple[str, bool], str]

    @classmethod
    def of(cls, text: str) -> PooledStatement:
        converted = positional(text)
        return cls(statement_name(converted.text), converted.text, converted.names, {})

    def message(self, setup: sql.SQL, params: dict[str, Any], conn: psycopg.AsyncConnection, *, prepare: bool) -> str:
        """``<setup>; [SELECT kds_prepare(name, body);] EXECUTE name(<literals>)``: one transaction."""
        key = (setup.as_string(None), prepare)
        prefix = self.prefixes.get(key)
        if prefix is None:
            parts: list[sql.Composable] = [setup, sql.SQL("; ")]
            if prepare:
                parts.append(
                    sql.SQL("SELECT kds_prepare({}, {}); ").format(sql.Literal(self.name), sql.Literal(self.body))
                )
            parts.append(sql.SQL("EXECUTE {}(").format(sql.Identifier(self.name)))
            prefix = self.prefixes[key] = sql.Composed(parts).as_string(conn)
        values = ", ".join(sql.Literal(params[name]).as_string(conn) for name in self.names)
        return f"{prefix}{values})"


_POOLED: dict[str, PooledStatement] = {}


def pooled_statement(query: sql.SQL) -> PooledStatement:
    """The :class:`PooledStatement` of ``query`` (built once per process and text)."""
    text = query.as_string(None)
    found = _POOLED.get(text)
    if found is None:
        found = _POOLED[text] = PooledStatement.of(text)
    return found


async def aexecute(
    cur: psycopg.AsyncCursor[Any],
    query: sql.SQL,
    params: dict[str, Any],
    *,
    setup: sql.SQL | None = None,
    binary: bool = False,
) -> psycopg.AsyncCursor[Any]:
    """Run ``query`` prepared on ``cur``'s connection (see the module doc); the result is in ``cur``.

    ``setup`` is what every transaction starts with behind a pooler (``ConnectionPolicy.transaction_setup``,
    ``None`` on a direct connection); ``binary`` asks for binary results where the protocol allows it
    (not behind a pooler).
    """
    if setup is None:
        return await cur.execute(query, params, binary=binary, prepare=may_prepare(cur.connection))
    from psycopg.errors import InvalidSqlStatementName

    statement = pooled_statement(query)
    # kds's own text, the values quoted by psycopg; no parameters, so psycopg sends one simple query
    try:
        await cur.execute(sql.SQL(statement.message(setup, params, cur.connection, prepare=False)))
    except InvalidSqlStatementName:
        await cur.execute(sql.SQL(statement.message(setup, params, cur.connection, prepare=True)))
        cur.nextset()  # the settings' result -> kds_prepare's
    cur.nextset()  # -> EXECUTE's result
    return cur
