import orjson
import psycopg
import pytest
from typer.testing import CliRunner

from kds.cli.app import app
from tests.migration_files import SHIPPED

runner = CliRunner()


def test_migrate_then_status(empty_database_url: str) -> None:
    result = runner.invoke(app, ["db", "migrate", "--database-url", empty_database_url])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "".join(f"applied {name}\n" for name in SHIPPED)
    again = runner.invoke(app, ["db", "migrate", "--database-url", empty_database_url])
    assert (again.exit_code, again.stdout) == (0, "")
    assert "up to date" in again.stderr
    status = runner.invoke(app, ["db", "status", "-o", "json", "--database-url", empty_database_url])
    assert status.exit_code == 0
    assert orjson.loads(status.stdout) == {
        "applied": SHIPPED,
        "pending": [],
    }


def test_status_reads_the_environment(empty_database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KDS_DATABASE_URL", empty_database_url)
    status = runner.invoke(app, ["db", "status", "-o", "json"])
    assert status.exit_code == 0
    assert orjson.loads(status.stdout) == {
        "applied": [],
        "pending": SHIPPED,
    }


def test_seed_command(database_url: str) -> None:
    result = runner.invoke(app, ["db", "seed", "--incidents", "250", "--database-url", database_url])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("seeded 250 incidents in ")
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM resource_action_traces").fetchone()[0] == 250


def test_bad_environment_value_exits_2_naming_the_variable(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KDS_STATEMENT_TIMEOUT", "forever")
    result = runner.invoke(app, ["db", "status", "--database-url", database_url])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("invalid-parameter: KDS_STATEMENT_TIMEOUT=forever: invalid duration")


def test_unreachable_database_exits_1_with_one_line() -> None:
    result = runner.invoke(app, ["db", "status", "--database-url", "postgresql://kds@127.0.0.1:1/kds"])
    assert result.exit_code == 1
    assert result.stderr == "service-unavailable: cannot connect to kds@127.0.0.1:1/kds: connection refused\n"
    assert result.stdout == ""


def test_version() -> None:
    from kds import __version__

    result = runner.invoke(app, ["--version"])
    assert (result.exit_code, result.stdout) == (0, f"kds {__version__}\n")


def test_maintenance_commands_have_no_timeout_unless_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    from kds.cli.common import maintenance_timeout
    from kds.settings import load_settings

    assert maintenance_timeout(load_settings()) == 0.0
    monkeypatch.setenv("KDS_STATEMENT_TIMEOUT", "10m")
    assert maintenance_timeout(load_settings()) == 600.0


def test_migrate_honours_an_explicit_statement_timeout(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KDS_STATEMENT_TIMEOUT", "100ms")
    with psycopg.connect(empty_database_url) as locker:
        locker.execute("CREATE TABLE resource_references (id bigserial PRIMARY KEY)")
        locker.commit()
        locker.execute("LOCK TABLE resource_references IN ACCESS EXCLUSIVE MODE")
        result = runner.invoke(app, ["db", "migrate", "--database-url", empty_database_url])
        locker.rollback()
    assert result.exit_code == 1
    assert result.stderr == "query-timeout: the query took longer than the statement timeout\n"
