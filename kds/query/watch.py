"""Watch: the current page, then every newly committed matching incident, each exactly once.

The design (snapshot cursor with an id floor and a seen set) is explained in docs/terminal.md,
"How the watch finds new incidents". This module is sans-I/O: :meth:`Watch.start` and
:meth:`Watch.poll` are generators that yield statements and receive their rows, and
:func:`run_steps` / :func:`arun_steps` run them on a sync or async psycopg connection inside one
REPEATABLE READ read-only transaction (one snapshot per poll; no session state, pooler-safe).
A watch can be frozen into a signed token and resumed from it.
"""

from __future__ import annotations

import bisect
import zlib
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from kds.query import cursor as cursors
from kds.query.models import IncidentQuery
from kds.query.statements import Statement, page_statement
from kds.query.watch_sql import new_rows_statement, ordered_ids_statement, position_statement

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

Steps = Generator[Statement, list[tuple[Any, ...]], list[Any]]
_TOKEN_VERSION = 1
_BEGIN = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A ``pg_snapshot``: transactions below ``xmin`` are finished, from ``xmax`` on not yet visible."""

    xmin: int
    xmax: int
    xip: frozenset[int]

    @classmethod
    def parse(cls, text: str) -> Snapshot:
        xmin, xmax, xip = text.split(":")
        return cls(int(xmin), int(xmax), frozenset(int(x) for x in xip.split(",") if x))

    def text(self) -> str:
        return f"{self.xmin}:{self.xmax}:{','.join(str(x) for x in sorted(self.xip))}"

    def visible(self, xid: int) -> bool:
        return xid < self.xmax and xid not in self.xip


@dataclass(slots=True)
class _State:
    snapshot: Snapshot
    first_next_xid: int  # transactions numbered below it may have been writing before the watch began
    marks: list[tuple[int, int]]  # per poll, oldest first: (next xid after its snapshot, max visible id)
    seen: set[int] = field(default_factory=set)  # visible ids above the floor any later poll can use
    ordered_ids: bool = True  # ids come from an uncached sequence: a later id means a later allocation


class Watch:
    """The watch of one validated query. ``start`` once (or resume from a token), then ``poll``."""

    def __init__(self, query: IncidentQuery, state: _State | None = None) -> None:
        self.query = query.model_copy(update={"offset": 0, "cursor": None})
        self._state = state

    @property
    def started(self) -> bool:
        return self._state is not None

    def start(self) -> Steps:
        """The newest ``limit`` matching incidents, oldest first, and the position after them."""
        ordered = bool((yield ordered_ids_statement())[0][0])
        snapshot, next_xid, max_id = _position((yield position_statement())[0])
        page = yield page_statement(self.query)
        documents = [row[3] for row in page if row[1] is not None][: self.query.limit]
        documents.reverse()
        self._state = _State(snapshot, next_xid, [(next_xid, max_id)], set(), ordered)
        return documents

    def poll(self) -> Steps:
        """Every matching incident committed since the previous poll, oldest first."""
        state = self._require_state()
        now, next_xid, max_id = _position((yield position_statement())[0])
        previous = state.snapshot
        early, bounded = _newly_committed(previous, now, state.first_next_xid if state.ordered_ids else 0)
        rows: list[tuple[Any, ...]] = []
        if early or bounded is not None:
            floor = self._floor(state, bounded) if bounded is not None else max_id
            statement = new_rows_statement(self.query, previous=previous.text(), ref=now.xmax, floor=floor, early=early)
            rows = yield statement
        fresh = [row for row in rows if row[0] not in state.seen]
        state.seen.update(row[0] for row in rows)
        state.marks.append((next_xid, max_id))
        state.snapshot = now
        self._forget(state)
        fresh.sort(key=lambda row: (row[1], row[0]))
        return [row[2] for row in fresh if row[2] is not None]

    def token(self, key: bytes = cursors.DEFAULT_KEY) -> str:
        """The watch's position as a signed token: :meth:`from_token` continues after it."""
        state = self._require_state()
        payload = [
            _TOKEN_VERSION,
            self.query.fingerprint,
            state.snapshot.text(),
            state.first_next_xid,
            state.marks,
            sorted(state.seen),
            state.ordered_ids,
        ]
        return cursors.seal(zlib.compress(orjson.dumps(payload)), key)

    @classmethod
    def from_token(cls, query: IncidentQuery, token: str, key: bytes = cursors.DEFAULT_KEY) -> Watch:
        """A started watch at the token's position; :class:`kds.query.cursor.CursorError` otherwise."""
        try:
            version, digest, snapshot, first, marks, seen, ordered = orjson.loads(
                zlib.decompress(cursors.unseal(token, key))
            )
            if version != _TOKEN_VERSION:
                raise cursors.CursorError("watch token comes from an incompatible kds version")
            state = _State(
                Snapshot.parse(snapshot), int(first), [(int(n), int(m)) for n, m in marks], set(seen), bool(ordered)
            )
        except (ValueError, TypeError, zlib.error) as exc:
            raise cursors.CursorError("watch token was not issued by kds or was altered") from exc
        if digest != query.fingerprint:
            raise cursors.CursorError("watch token belongs to other filters")
        return cls(query, state)

    def _require_state(self) -> _State:
        if self._state is None:
            raise RuntimeError("start the watch (or resume it from a token) before polling")
        return self._state

    @staticmethod
    def _floor(state: _State, xid: int) -> int:
        """The largest id below every id a transaction numbered ``xid`` or later can write.

        Such a transaction got its number after the snapshot of the latest poll whose next xid is
        ``<= xid``; its ids are allocated later than every id visible in that snapshot. One poll of
        margin covers the first row of a transaction, whose id is drawn just before its number.
        """
        if not state.ordered_ids:
            return 0
        nexts = [next_xid for next_xid, _ in state.marks]
        index = bisect.bisect_right(nexts, xid) - 1
        return state.marks[max(index - 1, 0)][1]

    def _forget(self, state: _State) -> None:
        """Drop marks and seen ids that no transaction still to commit can need."""
        pending = [x for x in state.snapshot.xip if x >= state.first_next_xid]
        lowest = min([*pending, max(state.snapshot.xmax, state.first_next_xid)])
        floor = self._floor(state, lowest)
        if state.ordered_ids:
            state.seen = {i for i in state.seen if i > floor}
        nexts = [next_xid for next_xid, _ in state.marks]
        keep_from = max(bisect.bisect_right(nexts, lowest) - 2, 0)
        del state.marks[:keep_from]


def _position(row: tuple[Any, ...]) -> tuple[Snapshot, int, int]:
    text, age, max_id = row
    snapshot = Snapshot.parse(text)
    return snapshot, snapshot.xmax + int(age), int(max_id or 0)


def _newly_committed(previous: Snapshot, now: Snapshot, first_next_xid: int) -> tuple[list[int], int | None]:
    """Transactions visible ``now`` but not in ``previous`` (committed or aborted in between).

    Returns those numbered below ``first_next_xid`` (they may have written before the watch
    began) and the lowest of the others (None when there is none).
    """
    finished = sorted(x for x in previous.xip if now.visible(x))
    early = [x for x in finished if x < first_next_xid]
    early += [x for x in range(previous.xmax, min(now.xmax, first_next_xid)) if x not in now.xip]
    candidates = [x for x in finished if x >= first_next_xid]
    start = max(previous.xmax, first_next_xid)
    first_new = next((x for x in range(start, now.xmax) if x not in now.xip), None)
    if first_new is not None:
        candidates.append(first_new)
    return early, min(candidates, default=None)


def run_steps(conn: psycopg.Connection, steps: Steps, setup: sql.SQL | None = None) -> list[Any]:
    """Run ``steps`` in one REPEATABLE READ read-only transaction; return their result.

    ``setup`` (behind a pooler: the per-transaction settings, docs/scaling.md) runs first in it.
    """
    with conn.transaction():
        conn.execute(_BEGIN)
        if setup is not None:
            conn.execute(setup)
        try:
            statement = next(steps)
            while True:
                rows = conn.execute(statement.query, statement.params).fetchall()
                statement = steps.send(rows)
        except StopIteration as done:
            result: list[Any] = done.value
            return result


async def arun_steps(conn: psycopg.AsyncConnection, steps: Steps, setup: sql.SQL | None = None) -> list[Any]:
    """:func:`run_steps` on an async connection (the server's watch stream)."""
    async with conn.transaction():
        await conn.execute(_BEGIN)
        if setup is not None:
            await conn.execute(setup)
        try:
            statement = next(steps)
            while True:
                cur = await conn.execute(statement.query, statement.params)
                statement = steps.send(await cur.fetchall())
        except StopIteration as done:
            result: list[Any] = done.value
            return result


MIN_INTERVAL = 0.2


def parse_interval(value: str | float) -> float:
    """The watch's polling interval in seconds (``2``, ``500ms``, ``2s``, ``1m``); at least 200 ms."""
    from kds.durations import parse_duration
    from kds.errors import InvalidInput

    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise InvalidInput.single("invalid-parameter", "interval", f"interval: {exc}") from None
    if seconds < MIN_INTERVAL:
        raise InvalidInput.single("invalid-parameter", "interval", f"interval must be at least 200ms, got {value!r}")
    return seconds
