"""The watch on real PostgreSQL: every incident committed after the start, exactly once.

The core iterator is driven poll by poll (exact control over commits between polls); the CLI
runs as a real subprocess for signals and a lost connection.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from typing import Any

import orjson
import psycopg
import pytest
from typer.testing import CliRunner

from kds.cli.app import app
from kds.cli.watching import LOST_NOTICE
from kds.query import parse_incident_query
from kds.query.cursor import CursorError
from kds.query.watch import Watch, parse_interval, run_steps
from tests import factories
from tests.serving import wait_for

runner = CliRunner()
OLD = factories.BASE_TIME - timedelta(days=400)  # another partition than the recent rows (DEFAULT)


def query(**params: str) -> Any:
    return parse_incident_query({"limit": "3", **params}, default_limit=50)


def ids(documents: list[str]) -> list[int]:
    return [orjson.loads(document)["id"] for document in documents]


def new_incident(conn: psycopg.Connection, **fields: Any) -> int:
    return factories.incident(conn, **fields)


@pytest.fixture
def seeded(db: psycopg.Connection) -> list[int]:
    return [new_incident(db, minutes=i) for i in range(5)]


def test_first_page_is_the_newest_limit_oldest_first(db: psycopg.Connection, seeded: list[int]) -> None:
    watch = Watch(query())
    assert ids(run_steps(db, watch.start())) == seeded[-3:]
    assert run_steps(db, watch.poll()) == []


def test_late_commit_with_an_older_timestamp_is_printed_exactly_once(
    db: psycopg.Connection, seeded: list[int], database_url: str
) -> None:
    watch = Watch(query())
    run_steps(db, watch.start())
    with psycopg.connect(database_url) as t1, psycopg.connect(database_url, autocommit=True) as t2:
        late = new_incident(t1, action_timestamp=OLD)  # T1 begins, inserts, stays open
        early = new_incident(t2, minutes=100)  # T2 inserts and commits (a larger id)
        assert late < early
        assert ids(run_steps(db, watch.poll())) == [early]
        t1.commit()
        assert ids(run_steps(db, watch.poll())) == [late]
    assert run_steps(db, watch.poll()) == []


def test_a_transaction_open_before_the_watch_began(
    db: psycopg.Connection, seeded: list[int], database_url: str
) -> None:
    with psycopg.connect(database_url) as before:
        pending = new_incident(before, minutes=50)
        watch = Watch(query())
        assert ids(run_steps(db, watch.start())) == seeded[-3:]
        after = new_incident(db, minutes=60)
        assert ids(run_steps(db, watch.poll())) == [after]
        before.commit()
        assert ids(run_steps(db, watch.poll())) == [pending]
    assert run_steps(db, watch.poll()) == []


def test_updates_and_other_filters_are_not_printed(db: psycopg.Connection, seeded: list[int]) -> None:
    watch = Watch(query(severity="critical"))
    assert run_steps(db, watch.start()) == []
    wanted = new_incident(db, alert_severity="critical", execution_status="pending")
    new_incident(db, alert_severity="low")
    assert ids(run_steps(db, watch.poll())) == [wanted]
    db.execute("UPDATE resource_action_traces SET execution_status = 'completed' WHERE id = %s", (wanted,))
    db.execute("UPDATE resource_action_traces SET execution_status = 'failed' WHERE id = %s", (seeded[0],))
    assert run_steps(db, watch.poll()) == []


def test_many_concurrent_writers(db: psycopg.Connection, database_url: str) -> None:
    """Writers that commit, roll back and hold transactions open across polls: each commit once."""
    watch = Watch(query())
    run_steps(db, watch.start())
    committed: list[int] = []
    lock = threading.Lock()

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        with psycopg.connect(database_url) as conn:
            for _ in range(40):
                made = [
                    new_incident(conn, resource_name=f"writer-{seed}", minutes=rng.randint(-5000, 5000))
                    for _ in range(rng.randint(1, 3))
                ]
                if rng.random() < 0.2:
                    conn.rollback()
                    continue
                threading.Event().wait(rng.random() / 50)  # hold the transaction open across polls
                conn.commit()
                with lock:
                    committed.extend(made)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    printed: list[int] = []
    while any(thread.is_alive() for thread in threads):
        printed += ids(run_steps(db, watch.poll()))
    for thread in threads:
        thread.join()
    printed += ids(run_steps(db, watch.poll()))
    assert len(printed) == len(set(printed))
    assert sorted(printed) == sorted(committed)


def test_a_cached_sequence_still_gives_every_row_once(db: psycopg.Connection, database_url: str) -> None:
    db.execute("ALTER SEQUENCE resource_action_traces_id_seq CACHE 20")
    watch = Watch(query())
    run_steps(db, watch.start())
    with psycopg.connect(database_url) as first, psycopg.connect(database_url, autocommit=True) as second:
        low = new_incident(first, resource_name="first")  # this session holds ids low..low+19
        high = new_incident(second, resource_name="second")
        assert ids(run_steps(db, watch.poll())) == [high]
        first.commit()
        later = new_incident(first, resource_name="first")  # a cached, lower id committed after a higher one
        first.commit()
        assert later < high
        assert ids(run_steps(db, watch.poll())) == [low, later]


def test_resume_from_a_token_without_gap_or_repeat(
    db: psycopg.Connection, seeded: list[int], database_url: str
) -> None:
    watch = Watch(query())
    run_steps(db, watch.start())
    with psycopg.connect(database_url) as open_transaction:
        late = new_incident(open_transaction, action_timestamp=OLD)
        seen = new_incident(db)
        assert ids(run_steps(db, watch.poll())) == [seen]
        token = watch.token(b"secret")
        missed = new_incident(db)
        open_transaction.commit()
    resumed = Watch.from_token(query(), token, b"secret")
    assert ids(run_steps(db, resumed.poll())) == [late, missed]
    with pytest.raises(CursorError):
        Watch.from_token(query(), token, b"other-key")
    with pytest.raises(CursorError):
        Watch.from_token(query(namespace="payments"), token, b"secret")
    with pytest.raises(CursorError):
        Watch.from_token(query(), token[:-2] + "xx", b"secret")


def test_interval_rules() -> None:
    assert parse_interval("2s") == 2.0
    assert parse_interval("200ms") == pytest.approx(0.2)
    assert parse_interval("1m") == 60.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "json"], "invalid-parameter: --watch writes table, wide, ndjson, csv; got -o json\n"),
        (["-o", "yaml"], "invalid-parameter: --watch writes table, wide, ndjson, csv; got -o yaml\n"),
        (["--interval", "100ms"], "invalid-parameter: interval must be at least 200ms, got '100ms'\n"),
        (["--interval", "soon"], "invalid-parameter: interval: invalid duration 'soon' "
         "(use seconds such as 5 or 2.5, or 500ms, 5s, 1m)\n"),
        (["--all"], "invalid-parameter: --watch starts at the newest page; --all does not apply\n"),
        (["-l", "0"], "invalid-limit: limit must be between 1 and 1000, got 0\n"),
    ],
)  # fmt: skip
def test_invalid_watch_options_exit_2(database_url: str, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["incidents", "list", "--database-url", database_url, "-w", *args])
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", message)


def test_cli_watch_of_an_unreachable_database_fails_at_once() -> None:
    result = runner.invoke(app, ["incidents", "list", "--database-url", "postgresql://kds@127.0.0.1:1/kds", "-w"])
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == "service-unavailable: cannot connect to kds@127.0.0.1:1/kds: connection refused\n"


IGNORING_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "os.execv(sys.executable, [sys.executable, '-m', 'kds', *sys.argv[1:]])"
)


class WatchProcess:
    """``kds incidents list --watch`` as a real process; its output lines are collected as they come."""

    def __init__(self, database_url: str, *args: str, sigint_ignored: bool = False) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KDS_")}
        command = [sys.executable, "-m", "kds", "incidents", "list", "--database-url", database_url]
        if sigint_ignored:  # what a background job of a non-interactive shell inherits (exec keeps SIG_IGN)
            command[1:3] = ["-c", IGNORING_SIGINT]
        self.process = subprocess.Popen(
            [*command, "-l", "3", "-w", "--interval", "200ms", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            start_new_session=True,
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.stdout), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, self.stderr), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: Any, into: list[str]) -> None:
        for line in stream:
            into.append(line)

    def ids(self) -> list[int]:
        return [orjson.loads(line)["id"] for line in list(self.stdout)]

    def wait_for_ids(self, wanted: set[int]) -> None:
        wait_for(lambda: wanted <= set(self.ids()), timeout=30, message=f"ids {wanted} in the watch")

    def stop(self, signum: int = signal.SIGTERM) -> int:
        os.kill(self.process.pid, signum)
        code = self.process.wait(timeout=30)
        for reader in self._readers:
            reader.join(timeout=10)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def watching(database_url: str, seeded: list[int]) -> Any:
    started: list[WatchProcess] = []

    def start(*args: str, sigint_ignored: bool = False) -> WatchProcess:
        process = WatchProcess(database_url, *args, sigint_ignored=sigint_ignored)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_cli_watch_late_commit_and_quiet_stop(
    watching: Any, seeded: list[int], database_url: str, db: psycopg.Connection, signum: int
) -> None:
    watch = watching("-o", "ndjson")
    watch.wait_for_ids(set(seeded[-3:]))
    with psycopg.connect(database_url) as t1:
        late = new_incident(t1, action_timestamp=OLD)
        early = new_incident(db, minutes=100)
        watch.wait_for_ids({early})
        t1.commit()
    watch.wait_for_ids({late})
    assert watch.stop(signum) == 0
    assert watch.ids() == [*seeded[-3:], early, late]
    assert watch.stderr == []


def test_cli_watch_stops_on_sigint_even_when_started_with_it_ignored(
    watching: Any, seeded: list[int], db: psycopg.Connection
) -> None:
    watch = watching("-o", "ndjson", sigint_ignored=True)
    watch.wait_for_ids(set(seeded[-3:]))
    added = new_incident(db, minutes=100)
    watch.wait_for_ids({added})
    assert watch.stop(signal.SIGINT) == 0
    assert watch.ids() == [*seeded[-3:], added]
    assert watch.stderr == []


def test_cli_watch_table_appends_rows_under_one_header(
    watching: Any, seeded: list[int], db: psycopg.Connection
) -> None:
    watch = watching("-o", "table")
    wait_for(lambda: len(watch.stdout) == 4, timeout=30, message="the first page")
    added = new_incident(db, minutes=500, alert_name="DiskPressure")
    wait_for(lambda: len(watch.stdout) == 5, timeout=30, message="the new row")
    assert watch.stop() == 0
    assert watch.stdout[0].split()[:4] == ["ID", "AGE", "SEVERITY", "NAMESPACE"]
    assert [int(line.split()[0]) for line in watch.stdout[1:]] == [*seeded[-3:], added]
    assert watch.stdout[0].index("ALERT") == watch.stdout[4].index("DiskPressure")
    assert watch.stderr == []


def test_cli_watch_survives_a_lost_connection(
    watching: Any, seeded: list[int], db: psycopg.Connection, database_url: str
) -> None:
    watch = watching("-o", "ndjson")
    watch.wait_for_ids(set(seeded[-3:]))
    before = new_incident(db, minutes=200)
    watch.wait_for_ids({before})

    def terminated() -> bool:
        rows = db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = 'kds-cli'"
        ).fetchall()
        return bool(rows) and all(row[0] for row in rows)

    wait_for(terminated, timeout=30, message="the watch's backend")
    during = new_incident(db, minutes=300)  # committed while the watch is disconnected
    wait_for(lambda: watch.stderr, timeout=30, message="the lost-connection notice")
    with psycopg.connect(database_url) as late_writer:
        late = new_incident(late_writer, action_timestamp=OLD)
        after = new_incident(db, minutes=400)
        watch.wait_for_ids({during, after})
        late_writer.commit()
    watch.wait_for_ids({late})
    assert watch.stop() == 0
    assert watch.ids() == [*seeded[-3:], before, during, after, late]
    assert watch.stderr == [LOST_NOTICE + "\n"]
