"""``kds auth hash-token``."""

import hashlib
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from kds.cli.app import app

runner = CliRunner()
SECRET = "s3cr3t-Token_value.42"
EXPECTED = "sha256:" + hashlib.sha256(SECRET.encode()).hexdigest() + "\n"


@pytest.mark.parametrize("given", [SECRET, SECRET + "\n", SECRET + "\r\n"])
def test_hash_token_strips_one_trailing_newline(given: str) -> None:
    result = runner.invoke(app, ["auth", "hash-token"], input=given.encode())
    assert (result.exit_code, result.stdout, result.stderr) == (0, EXPECTED, "")


@pytest.mark.parametrize("given", ["", "\n", "\r\n"])
def test_empty_token_exits_2(given: str) -> None:
    result = runner.invoke(app, ["auth", "hash-token"], input=given.encode())
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == "invalid-parameter: the token read from stdin is empty\n"


@pytest.mark.parametrize("given", [SECRET + "\n\n", SECRET + " ", " " + SECRET, "a b", "a\tb"])
def test_token_that_cannot_be_sent_exits_2(given: str) -> None:
    result = runner.invoke(app, ["auth", "hash-token"], input=given.encode())
    assert result.exit_code == 2
    assert result.stderr.startswith("invalid-parameter: the token contains whitespace or control characters")


def test_hash_token_real_stdin() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kds", "auth", "hash-token"],
        input=(SECRET + "\n").encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout.decode(), done.stderr) == (0, EXPECTED, b"")
