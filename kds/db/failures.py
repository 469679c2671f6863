"""Why a database connection failed: the one classifier behind the CLI, ``validate-infra`` and the server.

The causes and their messages are listed in docs/configuration.md#when-the-connection-fails.

How a cause is recognised, most reliable first:

1. The SQLSTATE the server sent (``28P01``, ``28000``, ``3D000``, ``53300``, ``57P03``). It is the
   same in every server language, so the server's (possibly localised) text is never read.
2. The exception class (psycopg's ``ConnectionTimeout``).
3. libpq's text for client-side failures (refused, unknown host, timeout, missing socket): libpq
   and the C library write these in English, as a Python process never switches ``LC_MESSAGES``.
4. A rejection by the server at connect time carries no SQLSTATE in psycopg 3.3: libpq keeps the
   ErrorResponse fields to itself during the start-up handshake (psycopg/psycopg#1188). For those,
   :func:`rejection_sqlstate` repeats the attempt once with libpq's protocol trace switched on and
   reads the SQLSTATE from the traced ErrorResponse. Without it the cause is the generic
   "the database is unreachable", never one guessed from text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class Cause(StrEnum):
    REFUSED = "refused"
    HOST_NOT_FOUND = "host-not-found"
    TIMED_OUT = "timed-out"
    NO_SOCKET = "no-socket"
    AUTHENTICATION_FAILED = "authentication-failed"
    ROLE_REJECTED = "role-rejected"
    DATABASE_MISSING = "database-missing"
    TOO_MANY_CONNECTIONS = "too-many-connections"
    NOT_ACCEPTING = "not-accepting"
    POOLER_REFUSED_OPTIONS = "pooler-refused-options"
    UNREACHABLE = "unreachable"


@dataclass(frozen=True, slots=True)
class ConnectionFailure:
    """A cause with the sentence that states it and what to do about it (no driver text)."""

    cause: Cause
    reason: str
    fix: str


CONNECT_FIX = (
    "check that PostgreSQL is running and reachable from here (host, port, DNS, network policy), "
    "and that --database-url / KDS_DATABASE_URL points at it"
)

_BY_SQLSTATE: dict[str, Cause] = {
    "28P01": Cause.AUTHENTICATION_FAILED,  # invalid_password
    "28000": Cause.ROLE_REJECTED,  # invalid_authorization_specification: no such role, NOLOGIN, no pg_hba entry
    "3D000": Cause.DATABASE_MISSING,  # invalid_catalog_name
    "53300": Cause.TOO_MANY_CONNECTIONS,  # too_many_connections (server, role or database limit)
    "57P03": Cause.NOT_ACCEPTING,  # cannot_connect_now
}

# English texts of libpq and the C library for failures on the client's side; first match wins.
_BY_TEXT: tuple[tuple[re.Pattern[str], Cause], ...] = tuple(
    (re.compile(pattern), cause)
    for pattern, cause in (
        (r"Connection refused", Cause.REFUSED),
        (r"failed to resolve host|could not translate host name|Name or service not known", Cause.HOST_NOT_FOUND),
        (r"timeout expired", Cause.TIMED_OUT),
        (r'on socket ".*" failed: No such file or directory', Cause.NO_SOCKET),
        # PgBouncer's own (never localised) refusal of kds's startup options (docs/scaling.md)
        (r"unsupported startup parameter: options", Cause.POOLER_REFUSED_OPTIONS),
    )
)


def sqlstate_of(exc: BaseException) -> str | None:
    """The SQLSTATE the server sent with this error, if the driver kept it."""
    state = getattr(exc, "sqlstate", None)
    if not state:
        diag = getattr(exc, "diag", None)
        state = getattr(diag, "sqlstate", None) if diag is not None else None
    return str(state) if state else None


def cause_of(exc: BaseException, *, ask_server: Callable[[], str | None] | None = None) -> Cause:
    """The cause of a failed connection attempt (or of a connection lost later).

    ``ask_server`` returns the SQLSTATE of the server's rejection (see :func:`rejection_sqlstate`);
    it is called only when neither the exception nor the client-side rules name the cause.
    """
    from psycopg.errors import ConnectionTimeout

    state = sqlstate_of(exc)
    if state is not None:  # the server's own word; its text may be in any language
        return _BY_SQLSTATE.get(state, Cause.UNREACHABLE)
    if isinstance(exc, ConnectionTimeout):
        return Cause.TIMED_OUT
    text = str(exc)
    for pattern, cause in _BY_TEXT:
        if pattern.search(text):
            return cause
    state = ask_server() if ask_server is not None else None
    return _BY_SQLSTATE.get(state, Cause.UNREACHABLE) if state else Cause.UNREACHABLE


_TRACED_SQLSTATE = re.compile(r'\tErrorResponse\t.*? C "(?P<state>[0-9A-Z]{5})"')


def rejection_sqlstate(conninfo: str, *, timeout: float) -> str | None:
    """Attempt the connection once more with libpq's protocol trace on; the SQLSTATE of the rejection.

    The trace goes to an in-memory pipe (it may contain authentication messages) and is read
    once the attempt has ended. None when the attempt succeeds, times out, reports no error or
    the platform has no tracing (psycopg traces on Linux only).
    """
    import os
    import select
    import time

    from psycopg import NotSupportedError, pq

    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    os.set_blocking(write_end, False)  # a full pipe drops trace lines instead of blocking libpq
    pgconn = pq.PGconn.connect_start(conninfo.encode())
    try:
        try:
            pgconn.trace(write_end)
        except NotSupportedError:
            return None
        deadline = time.monotonic() + timeout
        while pgconn.status != pq.ConnStatus.BAD:
            status = pgconn.connect_poll()
            remaining = deadline - time.monotonic()
            if status in (pq.PollingStatus.OK, pq.PollingStatus.FAILED) or remaining <= 0:
                break
            waiting = [pgconn.socket]
            select.select(*((waiting, [], []) if status == pq.PollingStatus.READING else ([], waiting, [])), remaining)
        pgconn.untrace()  # flushes the trace
        try:
            traced = os.read(read_end, 1 << 16).decode("utf-8", errors="replace")
        except BlockingIOError:
            traced = ""
    finally:
        pgconn.finish()
        os.close(read_end)
        os.close(write_end)
    match = _TRACED_SQLSTATE.search(traced)
    return match["state"] if match else None


def _attempted(exc: BaseException, field: str) -> str:
    """The role or database name libpq tried (from the failed connection, not from the message)."""
    value = getattr(getattr(exc, "pgconn", None), field, None)
    if isinstance(value, bytes) and value:
        return value.decode(errors="replace")
    return ""


def describe(cause: Cause, *, role: str = "", database: str = "") -> ConnectionFailure:
    """The reason and fix for ``cause``; ``role`` and ``database`` name what was tried when known."""
    named_role = f'role "{role}"' if role else "the role"
    named_database = f'database "{database}"' if database else "the database"
    texts: dict[Cause, tuple[str, str]] = {
        Cause.REFUSED: ("connection refused", CONNECT_FIX),
        Cause.HOST_NOT_FOUND: (
            "the host name does not resolve",
            "fix the host name in --database-url / KDS_DATABASE_URL, or the cluster DNS",
        ),
        Cause.TIMED_OUT: (
            "no answer within the connect timeout",
            CONNECT_FIX + "; for a slow link raise KDS_CONNECT_TIMEOUT (validate-infra: --timeout)",
        ),
        Cause.NO_SOCKET: ("no server listens on the unix socket", CONNECT_FIX),
        Cause.AUTHENTICATION_FAILED: (
            f"password authentication failed for {named_role}",
            "check the user name and password (the Kubernetes Secret) and pg_hba.conf",
        ),
        Cause.ROLE_REJECTED: (
            f"the server does not accept {named_role} (it does not exist, may not log in, "
            "or pg_hba.conf has no entry for it)",
            "create the role with LOGIN, fix the user name in the URL, or add a pg_hba.conf entry "
            "for this host, user and database",
        ),
        Cause.DATABASE_MISSING: (
            f"{named_database} does not exist",
            "create the database or fix the database name in the URL",
        ),
        Cause.TOO_MANY_CONNECTIONS: (
            "too many connections (max_connections, or the CONNECTION LIMIT of the role or database, is reached)",
            "raise max_connections or the CONNECTION LIMIT, or lower the pool sizes (KDS_POOL_SIZE)",
        ),
        Cause.NOT_ACCEPTING: (
            "the server is starting up, shutting down or in recovery",
            "retry once PostgreSQL has finished starting",
        ),
        Cause.POOLER_REFUSED_OPTIONS: (
            "it is a connection pooler (PgBouncer) and refuses the startup parameter `options` that kds sends "
            "when KDS_DATABASE_POOLER is none",
            "set KDS_DATABASE_POOLER=pgbouncer for every kds process that connects through it (docs/scaling.md)",
        ),
        Cause.UNREACHABLE: ("the database is unreachable", CONNECT_FIX),
    }
    reason, fix = texts[cause]
    return ConnectionFailure(cause, reason, fix)


def classify(exc: BaseException, *, conninfo: str | None = None, timeout: float = 5.0) -> ConnectionFailure:
    """Cause, reason and fix of a driver error raised while connecting (or by a connection lost later).

    With the ``conninfo`` of the failed attempt, a rejection without SQLSTATE is asked again
    (:func:`rejection_sqlstate`, within ``timeout``).
    """
    ask_server = None
    if conninfo is not None:
        target = conninfo

        def ask_server() -> str | None:
            return rejection_sqlstate(target, timeout=timeout)

    cause = cause_of(exc, ask_server=ask_server)
    return describe(cause, role=_attempted(exc, "user"), database=_attempted(exc, "db"))


_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")
SUPPORTED_SCHEMES = ("postgresql", "postgres")


def url_problem(url: str) -> str | None:
    """Why ``url`` is not a PostgreSQL URL or conninfo string (never echoing it: it may hold a password)."""
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    match = _SCHEME.match(url.strip())
    if match and match["scheme"].lower() not in SUPPORTED_SCHEMES:
        return (
            f"the database URL has the unsupported scheme '{match['scheme']}'; "
            "use postgresql://user@host:port/dbname or a key=value conninfo string"
        )
    try:
        conninfo_to_dict(url)
    except ProgrammingError:
        return "the database URL is not a valid PostgreSQL URL or conninfo string"
    return None
