"""``kds serve`` as a command: options, ``KDS_*`` variables, start-up failures, text logs."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kds.cli.app import app
from tests.serving import free_port, running

runner = CliRunner()


def test_help_lists_every_option_of_the_spec() -> None:
    result = runner.invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--host", "--port", "--workers", "--pool-size", "--shutdown-delay", "--drain-timeout",
                   "--database-url", "--log-format"):  # fmt: skip
        assert option in result.stdout
    assert "KDS_SHUTDOWN_DELAY" in result.stdout


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--workers", "0"], {}, "invalid-parameter: --workers=0: Input should be greater than or equal to 1"),
        (["--shutdown-delay", "soon"], {}, "invalid-parameter: --shutdown-delay=soon: invalid duration 'soon'"),
        ([], {"KDS_DRAIN_TIMEOUT": "-1"}, "invalid-parameter: KDS_DRAIN_TIMEOUT=-1: invalid duration '-1'"),
        ([], {"KDS_POOL_SIZE": "many"}, "invalid-parameter: KDS_POOL_SIZE=many: "),
        (["--database-url", "not a url"], {}, "invalid-parameter: the database URL is not a valid PostgreSQL URL"),
    ],
)
def test_invalid_configuration_exits_2_naming_it(args: list[str], env: dict[str, str], message: str) -> None:
    base = [] if "--database-url" in args else ["--database-url", "postgresql://kds@127.0.0.1:1/kds"]
    result = runner.invoke(app, ["serve", *base, *args], env=env)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(message), result.stderr


def test_address_in_use_exits_1_with_one_line(database_url: str, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "kds", "serve", "--host", "127.0.0.1", "--port", str(port),
             "--database-url", database_url],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == f"kds serve: cannot listen on 127.0.0.1:{port}: Address already in use"
    assert "Traceback" not in result.stderr


def test_environment_configures_the_server_and_text_logs(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {"KDS_HOST": "127.0.0.1", "KDS_PORT": str(port), "KDS_DATABASE_URL": database_url, "KDS_WORKERS": "1",
           "KDS_POOL_SIZE": "1", "KDS_SHUTDOWN_DELAY": "0", "KDS_LOG_FORMAT": "text"}  # fmt: skip
    with running("", log_path=tmp_path / "serve.log", env=env, port=port, options=False) as server:
        response = server.get("/api/v1/incidents?limit=1", headers={"X-Request-ID": "text-log-1"})
        assert response.status_code == 200
        server.stop()
        assert server.process.returncode == 0
        text = server.log_text()
    line = next(line for line in text.splitlines() if "request_id=text-log-1" in line)
    assert re.match(
        r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO    \[\d+\] request request_id=text-log-1 method=GET "
        r"route=/api/v1/incidents path=/api/v1/incidents status=200 duration_ms=\d+\.\d+$",
        line,
    ), line
    assert not any(line.startswith("{") for line in text.splitlines())
    assert "shutdown complete" in text
