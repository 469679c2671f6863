"""Progress bars go to stderr only when stderr is a terminal; otherwise nothing is added there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import psycopg

from tests import factories
from tests.terminals import kds_in_pty


def _kds_piped(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KDS_")}
    return subprocess.run(
        [sys.executable, "-m", "kds", *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_seed_shows_a_bar_on_a_terminal_and_nothing_into_a_pipe(database_url: str) -> None:
    ran = kds_in_pty(["db", "seed", "--incidents", "2000", "--database-url", database_url], on="stderr", columns=120)
    assert ran.returncode == 0
    text = ran.plain()
    assert "seeding" in text and "2,000/2,000 rows" in text
    assert "\x1b[?25l" in ran.terminal  # rich hid the cursor while it drew the bar
    piped = _kds_piped("db", "seed", "--incidents", "2000", "--database-url", database_url)
    assert piped.returncode == 0
    assert piped.stderr.startswith("seeded 2000 incidents in ")
    assert piped.stderr.count("\n") == 1


# what `kds db migrate` prints on stdout for a new database: one line per migration file, in order
APPLIED_ALL = "".join(
    f"applied {path.stem}\n" for path in sorted((Path(__file__).parents[1] / "kds/db/migrations").glob("*.sql"))
)


def test_migrate_shows_index_builds_on_a_terminal(empty_database_url: str) -> None:
    ran = kds_in_pty(["db", "migrate", "--database-url", empty_database_url], on="stderr", columns=120)
    assert ran.returncode == 0
    assert "0002_incident_indexes: building indexes" in ran.plain()
    assert "9/9 indexes" in ran.plain()
    assert ran.piped == APPLIED_ALL


def test_migrate_into_a_pipe_writes_no_progress(empty_database_url: str) -> None:
    piped = _kds_piped("db", "migrate", "--database-url", empty_database_url)
    assert (piped.returncode, piped.stderr) == (0, "")
    assert piped.stdout == APPLIED_ALL


def test_export_into_a_pipe_shows_rows_and_rate_on_a_terminal_stderr(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        made = [factories.incident(conn, minutes=i) for i in range(1200)]
    args = ["incidents", "list", "--all", "-o", "ndjson", "--database-url", database_url]
    ran = kds_in_pty(args, on="stderr", columns=120)
    assert ran.returncode == 0
    assert "exporting" in ran.plain() and "1,200 rows" in ran.plain()
    assert sorted(orjson.loads(line)["id"] for line in ran.piped.splitlines()) == made
    piped = _kds_piped(*args)
    assert (piped.returncode, piped.stderr) == (0, "")
    assert len(piped.stdout.splitlines()) == 1200


def test_export_to_a_terminal_has_no_bar(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        factories.incident(conn)
    ran = kds_in_pty(["incidents", "list", "--all", "-o", "ndjson", "--database-url", database_url], on="both")
    assert ran.returncode == 0
    assert "exporting" not in ran.plain()
