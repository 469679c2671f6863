"""The tokens file format of docs/security.md and token comparison."""

import hashlib

import pytest

from kds.auth import AUDIT_WRITE, INCIDENTS_READ, METRICS_READ, Principal, TokenFileError, hash_token, parse_tokens
from kds.auth.store import bearer_token
from kds.auth.tokens import load_token_file

READER = b"reader-token-0123456789"
WRITER = b"writer-token-9876543210"


def digest(token: bytes) -> str:
    return hashlib.sha256(token).hexdigest()


def test_hash_token_is_the_sha256_form() -> None:
    assert hash_token(b"secret-token") == "sha256:930bbdc51b6aed5c2a5678fd6e28dee7a05e8a4b643cfc0b4427c3efb86c0d94"


def test_parses_scopes_names_comments_and_blank_lines() -> None:
    text = (
        "# kds tokens\n"
        "\n"
        f"sha256:{digest(READER)} incidents:read dashboards\n"
        f"   sha256:{digest(WRITER).upper()}  audit:write,incidents:read,metrics:read   notifier service  \n"
        "  # indented comment\n"
    )
    table = parse_tokens(text)
    assert len(table) == 2
    assert table.authenticate(READER) == Principal("dashboards", frozenset({INCIDENTS_READ}))
    assert table.authenticate(WRITER) == Principal(
        "notifier service", frozenset({AUDIT_WRITE, INCIDENTS_READ, METRICS_READ})
    )
    assert table.authenticate(b"someone-else") is None
    assert table.authenticate(b"") is None


def test_name_defaults_to_a_digest_prefix() -> None:
    table = parse_tokens(f"sha256:{digest(READER).upper()} metrics:read\r\n")
    assert table.authenticate(READER) == Principal(f"sha256:{digest(READER)[:12]}", frozenset({METRICS_READ}))


def test_repeated_scope_is_one_scope() -> None:
    table = parse_tokens(f"sha256:{digest(READER)} incidents:read,incidents:read r\n")
    assert table.authenticate(READER) == Principal("r", frozenset({INCIDENTS_READ}))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            f"# c\nsha256:{digest(READER)} incidents:write x\n",
            "tokens file line 2: unknown scope 'incidents:write' "
            "(scopes are incidents:read, audit:write, metrics:read)",
        ),
        (
            f"sha256:{digest(READER)} incidents:read,\n",
            "tokens file line 1: unknown scope an empty scope (scopes are incidents:read, audit:write, metrics:read)",
        ),
        (
            f"sha256:{digest(READER)}\n",
            "tokens file line 1: expected 'sha256:<hex digest> <scope>[,<scope>...] [name]'",
        ),
        (
            "\n\nplaintext-token-oops incidents:read\n",
            "tokens file line 3: the first field must be 'sha256:' followed by 64 hex digits "
            "(print it with `kds auth hash-token`)",
        ),
        (
            f"sha256:{digest(READER)[:-1]} incidents:read\n",
            "tokens file line 1: the first field must be 'sha256:' followed by 64 hex digits "
            "(print it with `kds auth hash-token`)",
        ),
        (
            f"sha256:{digest(READER)[:-1]}g incidents:read\n",
            "tokens file line 1: the first field must be 'sha256:' followed by 64 hex digits "
            "(print it with `kds auth hash-token`)",
        ),
        (
            f"md5:{digest(READER)} incidents:read\n",
            "tokens file line 1: the first field must be 'sha256:' followed by 64 hex digits "
            "(print it with `kds auth hash-token`)",
        ),
        (
            f"sha256:{digest(READER)} incidents:read a\nsha256:{digest(READER).upper()} audit:write b\n",
            "tokens file line 2: the same token digest is already on line 1",
        ),
        ("# only comments\n\n", "tokens file holds no token (every line is blank or a comment)"),
        ("", "tokens file holds no token (every line is blank or a comment)"),
    ],
)
def test_malformed_files_name_the_line(text: str, message: str) -> None:
    with pytest.raises(TokenFileError) as caught:
        parse_tokens(text)
    assert caught.value.detail == message
    assert caught.value.slug == "invalid-tokens-file"


def test_errors_never_echo_the_first_field() -> None:
    with pytest.raises(TokenFileError) as caught:
        parse_tokens("my-plaintext-secret incidents:read\n")
    assert "my-plaintext-secret" not in str(caught.value)


def test_load_reports_missing_and_non_utf8_files(tmp_path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(TokenFileError) as caught:
        load_token_file(missing)
    assert caught.value.detail == f"tokens file {missing} does not exist"
    with pytest.raises(TokenFileError) as caught:
        load_token_file(tmp_path)
    assert caught.value.detail == f"tokens file {tmp_path} is a directory, not a file"
    bad = tmp_path / "tokens"
    bad.write_bytes(f"sha256:{digest(READER)} incidents:read\n".encode() + b"sha256:\xff\xfe x\n")
    with pytest.raises(TokenFileError) as caught:
        load_token_file(bad)
    assert caught.value.detail == f"tokens file {bad} line 2: not UTF-8 text"


def test_load_names_the_path_in_line_errors(tmp_path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"sha256:{digest(READER)} root\n")
    with pytest.raises(TokenFileError) as caught:
        load_token_file(path)
    assert caught.value.detail == (
        f"tokens file {path} line 1: unknown scope 'root' (scopes are incidents:read, audit:write, metrics:read)"
    )


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc.DEF-123", b"abc.DEF-123"),
        ("bearer abc", b"abc"),
        ("BEARER   abc  ", b"abc"),
        ("Bearer t\udcff", b"t\xff"),  # Sanic decodes header bytes with surrogateescape
        (None, None),
        ("", None),
        ("Bearer", None),
        ("Bearer   ", None),
        ("Basic dXNlcjpwYXNz", None),
        ("Token abc", None),
    ],
)
def test_bearer_token(header: str | None, token: bytes | None) -> None:
    assert bearer_token(header) == token
