"""How ``kds`` commands end when something other than an expected failure happens (docs/cli.md):
a closed pipe, a bug, a usage error; and the help of every command."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import typer
from typer.testing import CliRunner

from kds.cli.app import app
from kds.cli.present import machine
from kds.cli.present.table import TableWriter
from kds.db import seed

runner = CliRunner()
BUG_HINT = " (a bug in kds; set KDS_DEBUG=1 to see the traceback)"


@pytest.fixture
def seeded(database_url: str) -> str:
    """2,000 incidents: the ndjson export (about 2 MB) is far larger than a pipe's buffer."""
    with psycopg.connect(database_url) as conn:
        seed.seed(conn, 2000)
        conn.commit()
    return database_url


def kds_into_head(*args: str) -> tuple[int, str, str]:
    """``kds ARGS | head -1`` with real processes: kds's exit code, head's output and kds's stderr."""
    env = {k: v for k, v in os.environ.items() if k != "KDS_DEBUG"}
    kds = subprocess.Popen(
        [sys.executable, "-m", "kds", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    assert kds.stdout is not None and kds.stderr is not None
    head = subprocess.Popen(["head", "-1"], stdin=kds.stdout, stdout=subprocess.PIPE, text=True)
    kds.stdout.close()  # head alone reads it now: kds gets EPIPE once head exits
    first, _ = head.communicate(timeout=60)
    stderr = kds.stderr.read().decode()
    return kds.wait(timeout=60), first, stderr


@pytest.mark.parametrize("extra", [["--all"], ["-l", "1000"]])
def test_a_closed_pipe_ends_quietly_with_exit_0(seeded: str, extra: list[str]) -> None:
    code, first, stderr = kds_into_head("incidents", "list", *extra, "-o", "ndjson", "--database-url", seeded)
    assert first.startswith('{"id":') and first.count("\n") == 1
    assert (code, stderr) == (0, "")


@pytest.fixture
def broken_table(monkeypatch: pytest.MonkeyPatch) -> None:
    def write(self: TableWriter, rows: Any) -> int:
        raise RuntimeError("presenter exploded")

    monkeypatch.setattr(TableWriter, "write", write)


def test_a_bug_is_an_internal_error_not_a_database_error(database_url: str, broken_table: None) -> None:
    result = runner.invoke(app, ["incidents", "list", "--database-url", database_url])
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"internal-error: RuntimeError: presenter exploded{BUG_HINT}\n"


def test_a_bug_while_streaming_is_an_internal_error(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def write_ndjson(documents: Iterator[str], **_: Any) -> int:
        next(iter(documents), None)  # the database part works
        raise ValueError("cannot encode")

    monkeypatch.setattr(machine, "write_ndjson", write_ndjson)
    result = runner.invoke(app, ["incidents", "list", "--all", "-o", "ndjson", "--database-url", database_url])
    assert (result.exit_code, result.stderr) == (1, f"internal-error: ValueError: cannot encode{BUG_HINT}\n")


def test_kds_debug_shows_the_traceback(database_url: str, broken_table: None) -> None:
    result = runner.invoke(app, ["incidents", "list", "--database-url", database_url], env={"KDS_DEBUG": "1"})
    assert result.exit_code == 1
    assert result.stderr.startswith("Traceback (most recent call last):\n")
    assert 'raise RuntimeError("presenter exploded")' in result.stderr
    assert result.stderr.endswith(
        "\nRuntimeError: presenter exploded\ninternal-error: RuntimeError: presenter exploded\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["incidents", "list", "--bogus"], "No such option: --bogus (see 'kds incidents list -h')"),
        (
            ["incidents", "list", "-o", "xml"],
            "Invalid value for '-o' / '--output': Value error, 'xml' is not one of 'table', 'wide', 'json', "
            "'yaml', 'csv', 'ndjson'. (see 'kds incidents list -h')",
        ),
        (["incidents", "get"], "Missing argument 'ID'. (see 'kds incidents get -h')"),
        (["frobnicate"], "No such command 'frobnicate'. (see 'kds -h')"),
        (
            ["db", "seed", "--incidents", "-1"],
            "Invalid value for '--incidents': Input should be greater than or equal to 0 (see 'kds db seed -h')",
        ),
    ],
)
def test_usage_errors_are_one_line_with_exit_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", f"invalid-parameter: {message}\n")


def test_hash_token_never_echoes_a_token_given_as_an_argument() -> None:
    result = runner.invoke(app, ["auth", "hash-token", "s3cret-t0ken", "--also-s3cret"])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.startswith("invalid-parameter: the token is read from stdin, not from an argument")
    assert "s3cret" not in result.stderr


def command_paths(command: Any = None, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    command = command or typer.main.get_command(app)
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from command_paths(sub, (*path, name))


COMMANDS = list(command_paths())


def test_every_command_is_listed() -> None:
    # new commands join this list (and with it the plain-help test below)
    assert {" ".join(path) for path in COMMANDS} >= {
        "",
        "auth",
        "auth hash-token",
        "db",
        "db migrate",
        "db partitions",
        "db partitions drop",
        "db partitions ensure",
        "db seed",
        "db status",
        "incidents",
        "incidents get",
        "incidents list",
        "serve",
        "validate-infra",
    }


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "kds")
def test_help_is_plain_and_h_is_help(path: tuple[str, ...]) -> None:
    long = runner.invoke(app, [*path, "--help"])
    short = runner.invoke(app, [*path, "-h"])
    assert (long.exit_code, short.exit_code) == (0, 0)
    assert short.stdout == long.stdout
    assert long.stdout.startswith(f"Usage: {' '.join(('kds', *path))} ")
    for markup in ("SPEC", "``", "<str>", "<bool>", "<int>", "\\[", "╭"):
        assert markup not in long.stdout, markup
