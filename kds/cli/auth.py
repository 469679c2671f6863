"""``kds auth``: helpers for the optional bearer-token authentication of ``kds serve``."""

from __future__ import annotations

import sys

import typer

from kds.cli.common import EXIT_INVALID, fail

app = typer.Typer(help="Bearer-token authentication of kds serve (see docs/api.md).", no_args_is_help=True)

INVALID = "invalid-parameter"


def strip_one_newline(data: bytes) -> bytes:
    """Drop one trailing line ending (``\\n`` or ``\\r\\n``) and nothing else."""
    if data.endswith(b"\r\n"):
        return data[:-2]
    if data.endswith(b"\n"):
        return data[:-1]
    return data


def _read_token() -> bytes:
    if sys.stdin is None:
        return b""
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass("Token (not echoed): ").encode("utf-8", "surrogateescape")
    return strip_one_newline(sys.stdin.buffer.read())


@app.command("hash-token", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def hash_token(ctx: typer.Context) -> None:
    """Read a token on stdin and print its sha256 form for the tokens file.

    One trailing newline is not part of the token. Example:
    printf '%s' "$TOKEN" | kds auth hash-token
    """
    from kds.auth.tokens import hash_token as digest_of

    if ctx.args:  # never echoed: it is probably a secret
        raise fail(
            f"{INVALID}: the token is read from stdin, not from an argument (an argument shows in ps and "
            "in the shell history): printf '%s' \"$TOKEN\" | kds auth hash-token",
            EXIT_INVALID,
        )
    token = _read_token()
    if not token:
        raise fail(f"{INVALID}: the token read from stdin is empty", EXIT_INVALID)
    if any(byte <= 0x20 or byte == 0x7F for byte in token):
        raise fail(
            f"{INVALID}: the token contains whitespace or control characters, "
            "so no client could send it in an Authorization header",
            EXIT_INVALID,
        )
    print(digest_of(token))
