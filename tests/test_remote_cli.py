"""Remote mode (docs/remote.md): the CLI through a real ``kds serve`` writes what the direct mode writes.

One database and one server per module; every format and several filter sets are compared byte for
byte with the direct mode, and each error path is checked for its message and exit code.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kds.cli.app import app
from tests import remote
from tests.pg import PgCluster
from tests.serving import Server, free_port, running

runner = CliRunner()

FORMATS = ["json", "yaml", "csv", "ndjson", "table", "wide"]
FILTER_SETS = [
    [],
    ["-n", "payments", "-l", "5"],
    ["-s", "critical", "-s", "high", "--status", "failed,completed", "-l", "7", "--offset", "2"],
    ["-n", "支付服务", "--since", "2026-11-01T13:00:00Z", "--until", "2026-11-01T20:00:00Z"],
    ["--alert-name", "ระบบ🔥ล่ม", "-e", "production,staging", "--no-headers"],
    ["-n", "nowhere"],
]


@pytest.fixture(scope="module")
def dataset(pg_cluster: PgCluster) -> Iterator[str]:
    with pg_cluster.fresh_database() as url:
        remote.seed(url)
        yield url


@pytest.fixture(scope="module")
def server(dataset: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("remote") / "serve.log"
    with running(dataset, "--shutdown-delay", "0", log_path=log) as served:
        yield served


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, bytes, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200", "NO_COLOR": "1", **(env or {})})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout_bytes, result.stderr


def both(dataset: str, server: Server, *args: str) -> tuple[tuple[int, bytes, str], tuple[int, bytes, str]]:
    direct = invoke(*args, "--database-url", dataset)
    through = invoke(*args, "--server-url", server.base_url)
    return direct, through


@pytest.mark.parametrize("output", FORMATS)
def test_list_pages_are_byte_for_byte_the_direct_mode(dataset: str, server: Server, output: str) -> None:
    for filters in FILTER_SETS:
        direct, through = both(dataset, server, "incidents", "list", "-o", output, *filters)
        assert direct[0] == 0, direct[2]
        assert through == direct, (output, filters)
        assert direct[1] or "no incidents found" in direct[2]


@pytest.mark.parametrize("output", FORMATS)
def test_list_all_is_byte_for_byte_the_direct_mode(dataset: str, server: Server, output: str) -> None:
    for filters in (FILTER_SETS[0], FILTER_SETS[3], FILTER_SETS[5]):
        filters = [f for f in filters if f not in ("-l", "5", "--offset", "2")]
        direct, through = both(dataset, server, "incidents", "list", "--all", "-o", output, *filters)
        assert direct[0] == 0, direct[2]
        assert through == direct, (output, filters)


@pytest.mark.parametrize("output", FORMATS)
def test_get_is_byte_for_byte_the_direct_mode(dataset: str, server: Server, output: str) -> None:
    direct, through = both(dataset, server, "incidents", "get", "3", "-o", output)
    assert direct[0] == 0 and direct[1]
    assert through == direct


def test_keyset_cursor_from_a_remote_page_continues_remotely(dataset: str, server: Server) -> None:
    import orjson

    code, first, _ = invoke("incidents", "list", "-o", "json", "-l", "4", "--server-url", server.base_url)
    cursor = orjson.loads(first)["pagination"]["next_cursor"]
    assert code == 0 and cursor
    direct, through = both(dataset, server, "incidents", "list", "-o", "json", "-l", "4", "--cursor", cursor)
    assert through == direct
    assert [i["id"] for i in orjson.loads(through[1])["data"]] == [56, 55, 54, 53]


def test_not_found_is_the_direct_modes_message_and_exit_code(dataset: str, server: Server) -> None:
    direct, through = both(dataset, server, "incidents", "get", "999999")
    assert direct == (1, b"", "not-found: incident 999999 does not exist\n")
    assert through == direct


def test_invalid_input_is_rejected_before_anything_is_sent(server: Server) -> None:
    code, out, err = invoke("incidents", "list", "-l", "0", "--server-url", "http://127.0.0.1:9")
    assert (code, out, err) == (2, b"", "invalid-limit: limit must be between 1 and 1000, got 0\n")


def test_a_400_problem_from_the_server_exits_2_with_its_slug_and_detail(dataset: str, server: Server) -> None:
    """The cursor is signed with the server's key, so the server checks it: its 400 answer is exit 2."""
    direct, through = both(dataset, server, "incidents", "list", "--cursor", "forged.cursor")
    assert through == (2, b"", "invalid-cursor: cursor was not issued by kds or was altered: got 'forged.cursor'\n")
    assert through == direct


def test_database_and_server_together_are_invalid(dataset: str, server: Server) -> None:
    expected = (
        "invalid-parameter: give either a database (--database-url, KDS_DATABASE_URL) or a server "
        "(--server-url, KDS_SERVER_URL), not both\n"
    )
    by_options = invoke("incidents", "list", "--database-url", dataset, "--server-url", server.base_url)
    by_variables = invoke("incidents", "get", "1", env={"KDS_DATABASE_URL": dataset, "KDS_SERVER_URL": server.base_url})
    assert by_options == (2, b"", expected)
    assert by_variables == (2, b"", expected)


def test_server_url_must_be_http_or_https() -> None:
    code, out, err = invoke("incidents", "list", "--server-url", "ftp://example.com")
    assert (code, out) == (2, b"")
    assert err == (
        "invalid-parameter: --server-url=ftp://example.com: must be an http:// or https:// URL with a host, "
        "e.g. https://kds.example.com\n"
    )


def test_refused_connection_is_one_line_exit_1() -> None:
    port = free_port()
    code, out, err = invoke("incidents", "list", "--server-url", f"http://127.0.0.1:{port}")
    assert (code, out) == (1, b"")
    assert err == (
        f"server-unreachable: connection to 127.0.0.1:{port} refused; "
        f"is kds serve running at http://127.0.0.1:{port}?\n"
    )


def test_unknown_host_is_one_line_exit_1() -> None:
    code, out, err = invoke("incidents", "list", "--server-url", "http://kds.invalid:8080")
    assert (code, out) == (1, b"")
    assert err.startswith("server-unreachable: cannot resolve the host of http://kds.invalid:8080 (")
    assert err.count("\n") == 1


def test_a_server_that_does_not_answer_times_out_exit_1() -> None:
    with remote.silent_listener() as port:
        code, out, err = invoke(
            "incidents", "list", "--server-url", f"http://127.0.0.1:{port}", env={"KDS_SERVER_TIMEOUT": "300ms"}
        )
    assert (code, out) == (1, b"")
    assert err == f"server-timeout: no answer from http://127.0.0.1:{port} within 0.3s (KDS_SERVER_TIMEOUT)\n"


def test_https_with_a_self_signed_certificate_needs_the_ca_file(server: Server, tmp_path: Path, dataset: str) -> None:
    cert, key = remote.self_signed(tmp_path)
    with remote.TlsFront(server.port, cert, key) as front:
        url = f"https://127.0.0.1:{front.port}"
        refused = invoke("incidents", "list", "--server-url", url)
        verified = invoke("incidents", "list", "-o", "json", "--server-url", url, "--ca-file", str(cert))
        by_variable = invoke("incidents", "get", "2", env={"KDS_SERVER_URL": url, "KDS_SERVER_CA_FILE": str(cert)})
    assert refused[:2] == (1, b"")
    assert refused[2] == (
        f"server-unreachable: TLS verification of 127.0.0.1:{front.port} failed (self-signed certificate); "
        "give the server's CA with --ca-file or KDS_SERVER_CA_FILE\n"
    )
    assert verified == invoke("incidents", "list", "-o", "json", "--database-url", dataset)
    assert by_variable == invoke("incidents", "get", "2", "--database-url", dataset)


def test_a_missing_ca_file_is_invalid(tmp_path: Path) -> None:
    code, out, err = invoke(
        "incidents", "list", "--server-url", "https://127.0.0.1:9", "--ca-file", str(tmp_path / "nope.pem")
    )
    assert (code, out) == (2, b"")
    assert err == f"invalid-parameter: --ca-file={tmp_path / 'nope.pem'}: cannot load (No such file or directory)\n"


# -- authentication -----------------------------------------------------------------------------------
READER, METRICS_ONLY = "reader-token-0123456789", "metrics-token-0123456789"


def hashed(token: str) -> str:
    done = remote.kds("auth", "hash-token", input_bytes=token.encode())
    assert done.returncode == 0, done.stderr
    return done.stdout.decode().strip()


@pytest.fixture(scope="module")
def secured(dataset: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("secured")
    tokens = directory / "tokens"
    tokens.write_text(f"{hashed(READER)} incidents:read sre\n{hashed(METRICS_ONLY)} metrics:read prometheus\n")
    env = {"KDS_AUTH_TOKENS_FILE": str(tokens)}
    with running(dataset, "--shutdown-delay", "0", log_path=directory / "serve.log", env=env) as served:
        yield served


def test_with_authentication_a_token_from_the_variable_or_a_file(dataset: str, secured: Server, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(READER + "\n")
    for output in FORMATS:
        direct = invoke("incidents", "list", "-o", output, "-n", "payments", "--database-url", dataset)
        by_variable = invoke(
            "incidents", "list", "-o", output, "-n", "payments", "--server-url", secured.base_url,
            env={"KDS_SERVER_TOKEN": READER},
        )  # fmt: skip
        by_file = invoke(
            "incidents", "list", "-o", output, "-n", "payments", "--server-url", secured.base_url,
            "--token-file", str(token_file),
        )  # fmt: skip
        assert by_variable == direct
        assert by_file == direct
    direct_all = invoke("incidents", "list", "--all", "-o", "ndjson", "--database-url", dataset)
    remote_all = invoke(
        "incidents", "list", "--all", "-o", "ndjson", "--token-file", str(token_file),
        env={"KDS_SERVER_URL": secured.base_url},
    )  # fmt: skip
    assert remote_all == direct_all


def test_without_a_token_unauthorized_exit_1(secured: Server) -> None:
    code, out, err = invoke("incidents", "list", "--server-url", secured.base_url)
    assert (code, out) == (1, b"")
    assert err == "unauthorized: a bearer token is required\n"


def test_a_token_without_the_scope_forbidden_exit_1(secured: Server) -> None:
    code, out, err = invoke(
        "incidents", "get", "1", "--server-url", secured.base_url, env={"KDS_SERVER_TOKEN": METRICS_ONLY}
    )
    assert (code, out) == (1, b"")
    assert err == "forbidden: the token does not grant the scope incidents:read\n"


def test_an_unknown_token_unauthorized_exit_1(secured: Server) -> None:
    code, out, err = invoke("incidents", "list", "--server-url", secured.base_url, env={"KDS_SERVER_TOKEN": "nope"})
    assert (code, out, err) == (1, b"", "unauthorized: the bearer token is not valid\n")


def test_an_unreadable_token_file_is_invalid(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    code, out, err = invoke("incidents", "list", "--server-url", "http://127.0.0.1:9", "--token-file", str(missing))
    assert (code, out, err) == (
        2,
        b"",
        f"invalid-parameter: --token-file={missing}: cannot read (No such file or directory)\n",
    )


# -- 503 with Retry-After, and answers that are not problem documents ---------------------------------
UNAVAILABLE = (
    503,
    {"Retry-After": "0", "Content-Type": "application/problem+json"},
    b'{"type":"https://api.kubernaut.io/problems/service-unavailable","title":"Service unavailable","status":503,'
    b'"detail":"the database is unreachable; retry shortly","instance":"/api/v1/incidents","request_id":"r1"}',
)
EMPTY_PAGE = (
    200,
    {"Content-Type": "application/json"},
    b'{"data":[],"pagination":{"limit":50,"offset":0,"total":0,"has_more":false,"next_cursor":null}}',
)


def test_a_503_with_retry_after_is_retried() -> None:
    with remote.Stub([UNAVAILABLE, UNAVAILABLE, EMPTY_PAGE]) as stub:
        code, out, err = invoke("incidents", "list", "-o", "json", "--server-url", stub.url)
    assert (code, out, err) == (0, EMPTY_PAGE[2] + b"\n", "no incidents found\n")
    assert len(stub.requests) == 3


def test_a_503_that_lasts_is_retried_three_times_then_reported() -> None:
    with remote.Stub([UNAVAILABLE]) as stub:
        code, out, err = invoke("incidents", "list", "--server-url", stub.url)
    assert (code, out, err) == (1, b"", "service-unavailable: the database is unreachable; retry shortly\n")
    assert len(stub.requests) == 4


def test_an_answer_that_is_not_a_problem_document() -> None:
    with remote.Stub([(502, {"Content-Type": "text/html"}, b"<html>Bad Gateway</html>")]) as stub:
        code, out, err = invoke("incidents", "get", "5", "--server-url", stub.url)
    assert (code, out) == (1, b"")
    assert err == f"server-error: {stub.url} answered HTTP 502 without a problem document; is it a kds server?\n"
    assert stub.requests == ["/api/v1/incidents/5"]


def test_validate_infra_reads_the_same_token_variables(secured: Server, tmp_path: Path) -> None:
    """KDS_SERVER_URL / KDS_SERVER_TOKEN as in the remote CLI; a token file wins over a token value."""
    import orjson

    token_file = tmp_path / "token"
    token_file.write_text(METRICS_ONLY + "\n")
    env = remote.clean_env(KDS_SERVER_URL=secured.base_url, KDS_SERVER_TOKEN="wrong")
    by_file = remote.kds("validate-infra", "--only", "server", "-o", "json", "--token-file", str(token_file), env=env)
    by_variable = remote.kds(
        "validate-infra", "--only", "server", "-o", "json", env={**env, "KDS_SERVER_TOKEN": METRICS_ONLY}
    )
    wrong = remote.kds("validate-infra", "--only", "server", "-o", "json", env=env)
    statuses = [orjson.loads(done.stdout)["checks"][0]["status"] for done in (by_file, by_variable, wrong)]
    assert statuses == ["pass", "pass", "fail"]
    assert [by_file.returncode, by_variable.returncode, wrong.returncode] == [0, 0, 1]


def test_kds_help_and_the_direct_mode_never_import_httpx(dataset: str) -> None:
    for args in (["--help"], ["incidents", "list", "-o", "json", "--database-url", dataset]):
        done = remote.kds(*args, env={**remote.clean_env(), "PYTHONPROFILEIMPORTTIME": "1"})
        assert done.returncode == 0, done.stderr
        imported = {line.split("|")[-1].strip() for line in done.stderr.decode().splitlines() if "|" in line}
        assert {"kds.cli.app", "typer"} <= imported
        assert "httpx" not in imported


@pytest.mark.parametrize("columns", [80, 200])
def test_table_wide_and_json_on_a_terminal_are_byte_for_byte_the_direct_mode(
    dataset: str, server: Server, columns: int
) -> None:
    """On a pseudo-terminal of a fixed width: the fitted table, colours included, and indented JSON."""
    from tests.terminals import kds_in_pty

    for args in (["-o", "table"], ["-o", "wide"], ["-o", "json", "-l", "3"], ["-n", "支付服务", "-l", "20"]):
        direct = kds_in_pty(["incidents", "list", *args, "--database-url", dataset], columns=columns)
        through = kds_in_pty(["incidents", "list", *args, "--server-url", server.base_url], columns=columns)
        assert direct.returncode == 0, direct.piped
        assert (through.returncode, through.terminal) == (0, direct.terminal), (columns, args)
        assert direct.terminal.count("\n") > 3


SUMMARIES = [
    ["--by", "namespace"],
    ["--by", "severity", "-s", "critical,high,low", "-l", "2"],
    ["--by", "status", "-n", "payments"],
    ["--by", "hour", "--since", "2026-11-01T10:00:00Z", "--until", "2026-11-01T20:00:00Z"],
    ["--by", "day", "--since", "2026-10-28T00:00:00Z", "--until", "2026-11-03T00:00:00Z", "-e", "test"],
    ["--by", "cluster", "-n", "nowhere"],
]


@pytest.mark.parametrize("output", ["table", "json", "yaml", "csv"])
def test_summary_is_byte_for_byte_the_direct_mode(dataset: str, server: Server, output: str) -> None:
    for args in SUMMARIES:
        direct, through = both(dataset, server, "incidents", "summary", "-o", output, *args)
        assert direct[0] == 0, direct[2]
        assert through == direct, (output, args)
        assert direct[1]


def test_summary_errors_are_the_direct_modes(dataset: str, server: Server) -> None:
    for args in (
        ["--by", "weekday"],
        ["--by", "namespace", "-l", "0"],
        ["--by", "day", "--since", "2026-11-03", "--until", "2026-11-01"],
        [],
    ):
        direct, through = both(dataset, server, "incidents", "summary", *args)
        assert direct[0] == 2 and direct[2].startswith("invalid-")
        assert through == direct
