"""`kds db partitions [ensure | drop]` on a real PostgreSQL (docs/partitions.md)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import orjson
import psycopg
import pytest
from psycopg import sql
from typer.testing import CliRunner

from kds.cli.app import app
from kds.db.partitions import LockPolicy, ensure, parse_retention
from kds.db.partitions.catalog import Partition, iso_utc, month_start, uncovered
from kds.errors import InvalidInput
from tests.factories import incident
from tests.serving import wait_for

runner = CliRunner()
TABLE = "resource_action_traces"


def db_now(conn: psycopg.Connection) -> datetime:
    return conn.execute("SELECT now()").fetchone()[0].astimezone(UTC)


def month(conn: psycopg.Connection, offset: int) -> datetime:
    return month_start(db_now(conn), offset)


def kds_name(start: datetime) -> str:
    return f"{TABLE}_{start:%Y_%m}"


def drop_partition(conn: psycopg.Connection, name: str) -> None:
    conn.execute(sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(sql.Identifier(TABLE), sql.Identifier(name)))
    conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))


def add_partition(conn: psycopg.Connection, name: str, low: datetime, high: datetime) -> None:
    conn.execute(
        sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})").format(
            sql.Identifier(name), sql.Identifier(TABLE), sql.Literal(low), sql.Literal(high)
        )
    )


def listing(url: str) -> list[dict[str, object]]:
    result = runner.invoke(app, ["db", "partitions", "-o", "json", "--database-url", url])
    assert result.exit_code == 0, result.stderr
    document = orjson.loads(result.stdout)
    assert document["table"] == TABLE
    return document["partitions"]


def ranges(url: str) -> list[tuple[str, object, object]]:
    return [(p["name"], p["from"], p["to"]) for p in listing(url)]


def monthly(start: datetime, name: str | None = None) -> tuple[str, str | None, str | None]:
    return (name or kds_name(start), iso_utc(start), iso_utc(month_start(start, 1)))


def only(conn: psycopg.Connection, name: str) -> list[int]:
    query = sql.SQL("SELECT id FROM ONLY {} ORDER BY id").format(sql.Identifier(name))
    return [row[0] for row in conn.execute(query)]


def ensure_cli(url: str, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["db", "partitions", "ensure", *args, "--database-url", url])
    return result.exit_code, result.stdout, result.stderr


# ---------------------------------------------------------------------------------------------
# listing


def test_a_new_database_lists_seven_months_and_default(db: psycopg.Connection, database_url: str) -> None:
    expected = [monthly(month(db, k)) for k in range(-3, 4)] + [(f"{TABLE}_default", None, None)]
    assert ranges(database_url) == expected
    entry = listing(database_url)[-1]
    assert entry == {
        "schema": "public",
        "name": f"{TABLE}_default",
        "default": True,
        "from": None,
        "to": None,
        "rows_estimate": None,
    }
    table = runner.invoke(app, ["db", "partitions", "--database-url", database_url])
    assert table.exit_code == 0
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["NAME", "RANGE", "ROWS", "(ESTIMATE)"]
    assert lines[-1].split() == [f"{TABLE}_default", "DEFAULT", "unknown"]
    first = monthly(month(db, -3))
    assert lines[2].split() == [first[0], f"[{first[1]},", f"{first[2]})", "unknown"]


def test_listing_counts_rows_after_analyze(db: psycopg.Connection, database_url: str) -> None:
    for minute in range(3):
        incident(db, action_timestamp=month(db, 1) + timedelta(minutes=minute))
    db.execute("ANALYZE resource_action_traces")
    estimates = {p["name"]: p["rows_estimate"] for p in listing(database_url)}
    assert estimates[kds_name(month(db, 1))] == 3
    assert estimates[kds_name(month(db, 0))] == 0


def test_a_missing_table_is_not_found(empty_database_url: str) -> None:
    result = runner.invoke(app, ["db", "partitions", "--database-url", empty_database_url])
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"not-found: {TABLE} does not exist (run kds db migrate)\n"


@pytest.mark.parametrize(
    ("layout", "reason"),
    [
        ("", "is not a partitioned table"),
        (" PARTITION BY LIST (environment)", "is not range-partitioned on action_timestamp alone"),
        (" PARTITION BY RANGE (action_timestamp, id)", "is not range-partitioned on action_timestamp alone"),
    ],
)
def test_ensure_refuses_a_layout_it_does_not_maintain(empty_database_url: str, layout: str, reason: str) -> None:
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {TABLE} (id bigint, environment text, action_timestamp timestamptz){layout}")
    result = runner.invoke(app, ["db", "partitions", "ensure", "--database-url", empty_database_url])
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", f"not-found: {TABLE} {reason}\n")


# ---------------------------------------------------------------------------------------------
# ensure


def test_ensure_creates_every_missing_month_of_an_empty_future(db: psycopg.Connection, database_url: str) -> None:
    for k in range(0, 4):
        drop_partition(db, kds_name(month(db, k)))
    code, out, err = ensure_cli(database_url)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"created {kds_name(month(db, k))} for [{iso_utc(month(db, k))}, {iso_utc(month(db, k + 1))})"
        for k in range(0, 4)
    ]
    assert ranges(database_url) == [monthly(month(db, k)) for k in range(-3, 4)] + [(f"{TABLE}_default", None, None)]
    # the created partitions carry the parent's indexes and take rows
    indexes = db.execute("SELECT count(*) FROM pg_indexes WHERE tablename = %s", (kds_name(month(db, 2)),)).fetchone()[
        0
    ]
    assert indexes == db.execute("SELECT count(*) FROM pg_indexes WHERE tablename = %s", (TABLE,)).fetchone()[0]
    row = incident(db, action_timestamp=month(db, 2) + timedelta(days=3))
    assert only(db, kds_name(month(db, 2))) == [row]


def test_ensure_is_idempotent_and_honours_ahead(db: psycopg.Connection, database_url: str) -> None:
    assert ensure_cli(database_url) == (0, "", "nothing to do: every month up to 3 ahead has a partition\n")
    code, out, _ = ensure_cli(database_url, "--ahead", "5")
    assert code == 0
    assert [line.split()[1] for line in out.splitlines()] == [kds_name(month(db, 4)), kds_name(month(db, 5))]
    assert ensure_cli(database_url, "--ahead", "5")[:2] == (0, "")
    assert len(listing(database_url)) == 10


def test_rows_waiting_in_default_move_into_the_new_month(db: psycopg.Connection, database_url: str) -> None:
    target = month(db, 1)
    drop_partition(db, kds_name(target))
    moved = [
        incident(db, action_timestamp=target + timedelta(days=day), namespace="payments", resource_name=f"r{day}")
        for day in (0, 9, 27)
    ]
    moved.append(incident(db, action_timestamp=month(db, 2) - timedelta(microseconds=1), namespace="payments"))
    stays = incident(db, action_timestamp=month(db, 6), namespace="payments")
    assert only(db, f"{TABLE}_default") == sorted([*moved, stays])

    code, out, err = ensure_cli(database_url)
    assert (code, err) == (0, "")
    assert out == (
        f"created {kds_name(target)} for [{iso_utc(target)}, {iso_utc(month(db, 2))}) (moved 4 rows out of DEFAULT)\n"
    )
    assert only(db, kds_name(target)) == sorted(moved)
    assert only(db, f"{TABLE}_default") == [stays]
    every = [row[0] for row in db.execute("SELECT id FROM resource_action_traces ORDER BY id")]
    assert every == sorted([*moved, stays])  # exactly once each
    listed = runner.invoke(
        app, ["incidents", "list", "-n", "payments", "--all", "-o", "json", "--database-url", database_url]
    )
    assert listed.exit_code == 0, listed.stderr
    assert sorted(item["id"] for item in orjson.loads(listed.stdout)) == sorted([*moved, stays])


def test_rows_written_into_default_during_the_move_are_not_lost(db: psycopg.Connection, database_url: str) -> None:
    """A writer's open transaction changes DEFAULT rows of the month while ensure copies them."""
    target = month(db, 1)
    drop_partition(db, kds_name(target))
    kept, changed, removed = (incident(db, action_timestamp=target + timedelta(hours=h)) for h in (1, 2, 3))
    with psycopg.connect(database_url) as writer:
        added = incident(writer, action_timestamp=target + timedelta(hours=4))
        writer.execute("UPDATE resource_action_traces SET execution_status = 'failed' WHERE id = %s", (changed,))
        writer.execute("DELETE FROM resource_action_traces WHERE id = %s", (removed,))
        outcome: list[tuple[int, str, str]] = []
        runner_thread = threading.Thread(
            target=lambda: outcome.append(ensure_cli(database_url, "--lock-timeout", "20s", "--attempts", "1"))
        )
        runner_thread.start()
        wait_for(lambda: _waiting_locks(db), timeout=30, message="ensure to wait for the writer")
        writer.commit()  # the copy it already made is now stale in three ways
        runner_thread.join(timeout=60)
    assert outcome and outcome[0][0] == 0, outcome
    assert "(moved 3 rows out of DEFAULT)" in outcome[0][1]
    assert only(db, kds_name(target)) == sorted([kept, changed, added])
    assert only(db, f"{TABLE}_default") == []
    status = db.execute("SELECT execution_status FROM resource_action_traces WHERE id = %s", (changed,)).fetchone()
    assert status == ("failed",)


def test_concurrent_ensure_runs_create_each_month_once(db: psycopg.Connection, database_url: str) -> None:
    for k in range(0, 4):
        drop_partition(db, kds_name(month(db, k)))
    incident(db, action_timestamp=month(db, 1) + timedelta(hours=5))
    start = threading.Barrier(3)
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with psycopg.connect(database_url) as conn:
                start.wait(timeout=10)
                results.append([c.name for c in ensure(conn, policy=LockPolicy(lock_timeout=2.0))])
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(name for names in results for name in names) == [kds_name(month(db, k)) for k in range(0, 4)]
    assert ranges(database_url) == [monthly(month(db, k)) for k in range(-3, 4)] + [(f"{TABLE}_default", None, None)]
    assert db.execute("SELECT count(*) FROM resource_action_traces").fetchone()[0] == 1


def _waiting_locks(conn: psycopg.Connection) -> int:
    return conn.execute(
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE NOT l.granted AND a.application_name = 'kds-partitions' AND a.datname = current_database()"
    ).fetchone()[0]


def test_ensure_behind_a_long_reader_never_holds_readers_up_and_exits_1(
    db: psycopg.Connection, database_url: str
) -> None:
    target = month(db, 1)
    drop_partition(db, kds_name(target))
    row = incident(db, action_timestamp=target + timedelta(days=2))
    with psycopg.connect(database_url) as reader, psycopg.connect(database_url, autocommit=True) as third:
        reader.execute("SELECT count(*) FROM resource_action_traces").fetchone()  # transaction stays open
        env = {k: v for k, v in os.environ.items() if not k.startswith("KDS_")}
        command = [sys.executable, "-m", "kds", "db", "partitions", "ensure", "--database-url", database_url]
        command += ["--lock-timeout", "400ms", "--attempts", "3"]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            waits = 0
            while process.poll() is None:
                if not _waiting_locks(db):
                    time.sleep(0.02)  # polling interval
                    continue
                waits += 1
                started = time.monotonic()
                count = third.execute("SELECT count(*) FROM resource_action_traces").fetchone()[0]
                assert count == 1
                # queued behind the waiting DDL for at most its lock timeout, never for the reader's whole life
                assert time.monotonic() - started < 2.0
            out, err = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
        assert waits >= 1
        assert (process.returncode, out) == (1, "")
        assert err == (
            f"query-timeout: could not create the partition of {TABLE} for {target:%Y-%m}: the locks it needs were "
            "held by other transactions for longer than 0.4s in each of 3 attempts; find long transactions in "
            "pg_stat_activity (docs/runbooks.md#partition-maintenance-fails) and run it again\n"
        )
        assert only(db, f"{TABLE}_default") == [row]  # rolled back: nothing half done
        reader.rollback()
    code, out, _ = ensure_cli(database_url)
    assert code == 0 and "moved 1 rows" in out
    assert only(db, kds_name(target)) == [row]


# ---------------------------------------------------------------------------------------------
# drop


def test_drop_refuses_without_yes(db: psycopg.Connection, database_url: str) -> None:
    before = ranges(database_url)
    result = runner.invoke(app, ["db", "partitions", "drop", "--older-than", "1mo", "--database-url", database_url])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        "invalid-parameter: dropping partitions deletes their rows; pass --yes to drop the partitions older than "
        "1mo, or --dry-run to see which they are\n"
    )
    assert ranges(database_url) == before
    bad = runner.invoke(app, ["db", "partitions", "drop", "--older-than", "13", "--yes", "--database-url", "x"])
    assert bad.exit_code == 2
    assert bad.stderr.startswith("invalid-parameter: --older-than must be a positive number of months or days")


def test_drop_removes_only_whole_months_past_retention(db: psycopg.Connection, database_url: str) -> None:
    odd_name = "Legacy Traces/2025"  # names are discovered, never assumed
    add_partition(db, odd_name, month(db, -16), month(db, -14))
    add_partition(db, kds_name(month(db, -14)), month(db, -14), month(db, -13))
    add_partition(db, kds_name(month(db, -13)), month(db, -13), month(db, -12))
    add_partition(db, kds_name(month(db, -12)), month(db, -12), month(db, -3))
    old = incident(db, action_timestamp=month(db, -15))
    border = incident(db, action_timestamp=month(db, -13))
    ancient = incident(db, action_timestamp=month(db, -40))  # only DEFAULT takes it

    dry = runner.invoke(
        app, ["db", "partitions", "drop", "--older-than", "13mo", "--dry-run", "--database-url", database_url]
    )
    assert dry.exit_code == 0
    assert [line.split()[:2] for line in dry.stdout.splitlines()] == [
        ["would", "drop"],
        ["would", "drop"],
    ]
    result = runner.invoke(
        app, ["db", "partitions", "drop", "--older-than", "13mo", "--yes", "--database-url", database_url]
    )
    assert result.exit_code == 0, result.stderr
    assert [line.split(" [")[0] for line in result.stdout.splitlines()] == [
        f"dropped {odd_name}",
        f"dropped {kds_name(month(db, -14))}",
    ]
    names = [name for name, _, _ in ranges(database_url)]
    assert odd_name not in names and kds_name(month(db, -14)) not in names
    assert kds_name(month(db, -13)) in names and f"{TABLE}_default" in names
    remaining = [row[0] for row in db.execute("SELECT id FROM resource_action_traces ORDER BY id")]
    assert old not in remaining and remaining == sorted([border, ancient])
    assert db.execute("SELECT to_regclass(%s)", (f'"{odd_name}"',)).fetchone()[0] is None
    again = runner.invoke(
        app, ["db", "partitions", "drop", "--older-than", "13mo", "--yes", "--database-url", database_url]
    )
    assert (again.exit_code, again.stdout) == (0, "")


# ---------------------------------------------------------------------------------------------
# an existing deployment


def test_an_existing_deployments_partitions_with_other_names(db: psycopg.Connection, database_url: str) -> None:
    for k in range(0, 4):
        drop_partition(db, kds_name(month(db, k)))
    db.execute(f"ALTER TABLE {TABLE}_default RENAME TO rat_overflow")
    add_partition(db, 'rat y2026m12 "current"', month(db, 0), month(db, 1))
    add_partition(db, "legacy_quarter", month(db, 1), month(db, 3))
    half = month(db, 3) + timedelta(days=14)
    add_partition(db, "rat_first_half", month(db, 3), half)
    waiting = incident(db, action_timestamp=half + timedelta(days=1))

    code, out, err = ensure_cli(database_url)
    assert (code, err) == (0, "")
    gap = f"{TABLE}_{half:%Y_%m_%d_%H%M%S}"
    assert out == f"created {gap} for [{iso_utc(half)}, {iso_utc(month(db, 4))}) (moved 1 rows out of DEFAULT)\n"
    assert only(db, gap) == [waiting]
    assert ranges(database_url)[-5:] == [
        ('rat y2026m12 "current"', iso_utc(month(db, 0)), iso_utc(month(db, 1))),
        ("legacy_quarter", iso_utc(month(db, 1)), iso_utc(month(db, 3))),
        ("rat_first_half", iso_utc(month(db, 3)), iso_utc(half)),
        (gap, iso_utc(half), iso_utc(month(db, 4))),
        ("rat_overflow", None, None),
    ]
    assert ensure_cli(database_url)[:2] == (0, "")


# ---------------------------------------------------------------------------------------------
# pure units


def _range(name: str, low: datetime | None, high: datetime | None) -> Partition:
    return Partition("public", name, False, low, high, None)


def test_uncovered_finds_the_gaps_of_a_month() -> None:
    jan, feb = datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 2, 1, tzinfo=UTC)
    mid = datetime(2027, 1, 10, tzinfo=UTC)
    late = datetime(2027, 1, 20, tzinfo=UTC)
    assert uncovered([], jan, feb) == [(jan, feb)]
    assert uncovered([_range("a", None, mid)], jan, feb) == [(mid, feb)]
    assert uncovered([_range("a", mid, late)], jan, feb) == [(jan, mid), (late, feb)]
    assert uncovered([_range("a", datetime(2026, 12, 1, tzinfo=UTC), None)], jan, feb) == []
    default = Partition("public", "d", True, None, None, None)
    assert uncovered([default], jan, feb) == [(jan, feb)]


@pytest.mark.parametrize("text", ["", "0mo", "13", "1y", "-1mo", "2 weeks"])
def test_retention_grammar_rejects(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_retention(text)
    assert caught.value.slug == "invalid-parameter"


def test_retention_grammar_accepts_months_and_days() -> None:
    assert (parse_retention("13mo").months, parse_retention("400d").days) == (13, 400)
    assert str(parse_retention(" 13mo ")) == "13mo"


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        ("0", "--lock-timeout must be more than 0"),
        ("soon", "--lock-timeout: invalid duration 'soon'"),
    ],
)
def test_a_bad_lock_timeout_exits_2_before_connecting(value: str, detail: str) -> None:
    result = runner.invoke(
        app, ["db", "partitions", "ensure", "--lock-timeout", value, "--database-url", "postgresql://x@127.0.0.1:1/x"]
    )
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.startswith(f"invalid-parameter: {detail}")
