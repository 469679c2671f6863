"""Connection failures keep their cause in the CLI, ``validate-infra`` and the shared error mapping.

Every cause is produced by a real server (or a real socket): the session cluster for role,
database and connection-limit rejections, a throwaway TCP server with SCRAM for a wrong
password, a closed port, an unresolvable host and a socket that never answers.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from typer.testing import CliRunner

from kds.checks.connection import check_database_connection
from kds.checks.runner import Status
from kds.cli.app import app
from kds.db.connection import describe_target, translate_error
from kds.db.failures import CONNECT_FIX, Cause, classify, describe, rejection_sqlstate
from kds.errors import ConnectionFailed
from kds.server.process.reconnect import ConnectFailures
from tests.pg import PgCluster
from tests.pg_tcp import TcpServer, compile_locale, tcp_server

runner = CliRunner()

ROLE_FIX = (
    "create the role with LOGIN, fix the user name in the URL, or add a pg_hba.conf entry "
    "for this host, user and database"
)
PASSWORD_FIX = "check the user name and password (the Kubernetes Secret) and pg_hba.conf"
DATABASE_FIX = "create the database or fix the database name in the URL"
LIMIT_FIX = "raise max_connections or the CONNECTION LIMIT, or lower the pool sizes (KDS_POOL_SIZE)"
TOO_MANY = "too many connections (max_connections, or the CONNECTION LIMIT of the role or database, is reached)"
SCHEME = (
    "the database URL has the unsupported scheme 'mysql'; "
    "use postgresql://user@host:port/dbname or a key=value conninfo string"
)


def rejected(role: str) -> str:
    return (
        f'the server does not accept role "{role}" (it does not exist, may not log in, or pg_hba.conf has no entry '
        "for it)"
    )


def cli(url: str, **env: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["db", "status", "--database-url", url], env=env or None)
    return result.exit_code, result.stdout, result.stderr


def connection_check(url: str) -> tuple[int, dict[str, str]]:
    result = runner.invoke(
        app, ["validate-infra", "--database-url", url, "-o", "json", "--only", "database-connection", "--timeout", "5"]
    )
    (check,) = orjson.loads(result.stdout)["checks"]
    return result.exit_code, {key: check[key] for key in ("status", "message", "fix")}


def assert_everywhere(url: str, reason: str, fix: str) -> None:
    """The CLI line (exit 1) and the validate-infra check name the same cause."""
    target = describe_target(url)
    assert cli(url) == (1, "", f"service-unavailable: cannot connect to {target}: {reason}\n")
    assert connection_check(url) == (
        1,
        {"status": "fail", "message": f"cannot connect to {target}: {reason}", "fix": fix},
    )


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections (backlog) but never speaks."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        yield silent.getsockname()[1]


@pytest.fixture(scope="module")
def password_server() -> Iterator[TcpServer]:
    with tcp_server() as server:
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute("CREATE ROLE app LOGIN PASSWORD 'right'")
        yield server


@pytest.fixture
def limited_role(pg_cluster: PgCluster) -> Iterator[str]:
    name = f"kds_limited_{uuid.uuid4().hex[:8]}"
    with pg_cluster.admin() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN CONNECTION LIMIT 0").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        with pg_cluster.admin() as conn:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


# ------------------------------------------------------------------------------------------------
# one test per cause, each against whatever really produces it


def test_refused() -> None:
    url = "postgresql://kds@127.0.0.1:1/kds"
    assert cli(url) == (1, "", "service-unavailable: cannot connect to kds@127.0.0.1:1/kds: connection refused\n")
    assert_everywhere(url, "connection refused", CONNECT_FIX)


def test_host_not_found() -> None:
    url = "postgresql://kds@nonexistent.invalid/kds"
    assert cli(url) == (
        1,
        "",
        "service-unavailable: cannot connect to kds@nonexistent.invalid/kds: the host name does not resolve\n",
    )
    assert_everywhere(
        url,
        "the host name does not resolve",
        "fix the host name in --database-url / KDS_DATABASE_URL, or the cluster DNS",
    )


def test_timed_out(silent_port: int) -> None:
    url = f"postgresql://kds@127.0.0.1:{silent_port}/kds"
    reason = "no answer within the connect timeout"
    assert cli(url, KDS_CONNECT_TIMEOUT="1") == (
        1,
        "",
        f"service-unavailable: cannot connect to kds@127.0.0.1:{silent_port}/kds: {reason}\n",
    )
    result = check_database_connection(url, timeout=2)
    assert (result.status, result.message, result.fix) == (
        Status.FAIL,
        f"cannot connect to kds@127.0.0.1:{silent_port}/kds: {reason}",
        CONNECT_FIX + "; for a slow link raise KDS_CONNECT_TIMEOUT (validate-infra: --timeout)",
    )


def test_wrong_password(password_server: TcpServer) -> None:
    url = password_server.url(user="app", password="wrong")
    port = password_server.port
    assert cli(url) == (
        1,
        "",
        f"service-unavailable: cannot connect to app@127.0.0.1:{port}/postgres: "
        'password authentication failed for role "app"\n',
    )
    assert "wrong" not in cli(url)[2]
    assert_everywhere(url, 'password authentication failed for role "app"', PASSWORD_FIX)
    with psycopg.connect(password_server.url(user="app", password="right")) as conn:  # the role itself works
        assert conn.execute("SELECT current_user").fetchone() == ("app",)


def test_role_does_not_exist(database_url: str) -> None:
    url = make_conninfo(database_url, user="kds_no_such_role")
    assert_everywhere(url, rejected("kds_no_such_role"), ROLE_FIX)


def test_the_server_pool_remembers_why_it_cannot_connect(database_url: str) -> None:
    """The pool's connection class keeps the failed attempt; its warning classifies it like the CLI."""
    url = make_conninfo(database_url, user="kds_no_such_role")
    failures = ConnectFailures()

    async def attempt() -> ConnectionFailed | None:
        assert await failures.last() is None  # nothing failed yet
        with pytest.raises(psycopg.OperationalError):
            await failures.connection_class.connect(url, autocommit=True, connect_timeout=5)
        return await failures.last()

    failed = asyncio.run(attempt())
    assert failed is not None
    assert (failed.cause, failed.detail) == (
        "role-rejected",
        f"cannot connect to {describe_target(url)}: {rejected('kds_no_such_role')}",
    )


def test_role_that_may_not_log_in(database_url: str, pg_cluster: PgCluster) -> None:
    name = f"kds_nologin_{uuid.uuid4().hex[:8]}"
    with pg_cluster.admin() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(name)))
    try:
        assert_everywhere(make_conninfo(database_url, user=name), rejected(name), ROLE_FIX)
    finally:
        with pg_cluster.admin() as conn:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def test_database_does_not_exist(database_url: str) -> None:
    url = make_conninfo(database_url, dbname="kds_no_such_database")
    assert_everywhere(url, 'database "kds_no_such_database" does not exist', DATABASE_FIX)


def test_too_many_connections(database_url: str, limited_role: str) -> None:
    url = make_conninfo(database_url, user=limited_role)
    assert_everywhere(url, TOO_MANY, LIMIT_FIX)


def test_unsupported_scheme_is_invalid_input() -> None:
    url = "mysql://kds:secret@127.0.0.1/kds"
    assert cli(url) == (2, "", f"invalid-parameter: {SCHEME}\n")
    exit_code, check = connection_check(url)
    assert (exit_code, check) == (
        1,
        {"status": "fail", "message": f"cannot connect: {SCHEME}", "fix": "fix --database-url / KDS_DATABASE_URL"},
    )


def test_serve_refuses_an_unsupported_scheme_like_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kds", "serve", "--database-url", "mysql://x"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (result.returncode, result.stdout, result.stderr) == (2, "", f"invalid-parameter: {SCHEME}\n")
    assert cli("mysql://x") == (2, "", f"invalid-parameter: {SCHEME}\n")


def test_malformed_url_is_invalid_input() -> None:
    assert cli("not a url") == (
        2,
        "",
        "invalid-parameter: the database URL is not a valid PostgreSQL URL or conninfo string\n",
    )


# ------------------------------------------------------------------------------------------------
# a localised server, and the rule that a server-sent SQLSTATE decides over any text


@pytest.fixture(scope="module")
def german_server() -> Iterator[TcpServer]:
    locales = Path(tempfile.mkdtemp(prefix="kds-locales-"))
    try:
        locales.chmod(0o755)
        name = compile_locale(locales)
        if name is None:
            pytest.skip("this machine cannot compile a de_DE locale (no localedef or locale sources)")
        with tcp_server(lc_messages=name, locpath=locales) as server:
            with psycopg.connect(server.url(), autocommit=True) as conn:
                conn.execute("CREATE ROLE app LOGIN PASSWORD 'right'")
                assert conn.execute("SHOW lc_messages").fetchone() == (name,)
            yield server
    finally:
        shutil.rmtree(locales, ignore_errors=True)


def test_a_localised_server_keeps_every_cause(german_server: TcpServer) -> None:
    """The server answers in German and psycopg gives no SQLSTATE (psycopg/psycopg#1188): the cause
    comes from the SQLSTATE of the traced rejection, never from the text."""
    port = german_server.port
    cases = {
        german_server.url(user="app", password="wrong"): 'password authentication failed for role "app"',
        german_server.url(user="app", password="right", dbname="kds_no_such_database"): (
            'database "kds_no_such_database" does not exist'
        ),
    }
    for url, reason in cases.items():
        with pytest.raises(psycopg.OperationalError) as caught:
            psycopg.connect(url)
        assert "FATAL" in str(caught.value) and caught.value.sqlstate is None
        assert "authentication failed" not in str(caught.value) and "does not exist" not in str(caught.value)
        target = describe_target(url)
        assert target.endswith(f"@127.0.0.1:{port}/" + ("postgres" if "wrong" in url else "kds_no_such_database"))
        assert cli(url) == (1, "", f"service-unavailable: cannot connect to {target}: {reason}\n")
        assert connection_check(url)[1]["message"] == f"cannot connect to {target}: {reason}"


def test_without_a_conninfo_an_untraced_rejection_is_generic(german_server: TcpServer) -> None:
    with pytest.raises(psycopg.OperationalError) as caught:
        psycopg.connect(german_server.url(user="app", password="wrong"))
    assert classify(caught.value).cause is Cause.UNREACHABLE
    assert classify(caught.value, conninfo=german_server.url(user="app", password="wrong")).cause is (
        Cause.AUTHENTICATION_FAILED
    )
    assert rejection_sqlstate(german_server.url(user="app", password="right"), timeout=5) is None  # it connects


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (
            psycopg.errors.InvalidPassword("FATAL:  Passwort-Authentifizierung für Benutzer »app« fehlgeschlagen"),
            Cause.AUTHENTICATION_FAILED,
        ),
        (psycopg.errors.InvalidAuthorizationSpecification("FATAL:  Rolle »x« existiert nicht"), Cause.ROLE_REJECTED),
        (psycopg.errors.InvalidCatalogName("FATAL:  la base de données « x » n'existe pas"), Cause.DATABASE_MISSING),
        (psycopg.errors.TooManyConnections('FATAL:  role "x" does not exist'), Cause.TOO_MANY_CONNECTIONS),
        (psycopg.errors.CannotConnectNow("FATAL:  Connection refused"), Cause.NOT_ACCEPTING),
        (psycopg.errors.AdminShutdown("FATAL:  password authentication failed"), Cause.UNREACHABLE),
    ],
)
def test_a_server_sqlstate_decides_over_the_text(error: psycopg.Error, cause: Cause) -> None:
    assert classify(error).cause is cause


def test_translate_error_keeps_the_cause_for_every_front_end() -> None:
    """The server and the CLI map driver errors through translate_error."""
    error = translate_error(psycopg.errors.InvalidPassword("FATAL:  Passwort-Authentifizierung fehlgeschlagen"))
    assert isinstance(error, ConnectionFailed)
    assert (error.slug, error.detail, error.cause) == (
        "service-unavailable",
        "password authentication failed for the role",
        "authentication-failed",
    )
    lost = translate_error(psycopg.OperationalError("server closed the connection unexpectedly"))
    assert (lost.slug, lost.detail) == ("service-unavailable", "the database is unreachable")


def test_every_cause_has_a_reason_and_a_fix() -> None:
    for cause in Cause:
        failure = describe(cause, role="r", database="d")
        assert failure.reason and failure.fix and failure.cause is cause
