"""bench/run --replica: the benchmark query with reads on a streaming replica (``KDS_READ_DATABASE_URL``).

The replica is ``pg_basebackup -R`` of the bench PostgreSQL, on the same machine (unix socket, its own
directory and port), made after the data set is prepared. Two ``kds serve`` with the same workers and
pool size: one reading the primary, one with ``--read-database-url`` on the replica; both are checked
against the primary's answers first, then measured in interleaved wrk rounds. On one machine the replica
competes with the primary for the same cores, so this is about correctness, not speed: the report
also counts the primary's scans of the incident tables during a replica-only run (after the server's
connections closed, so PostgreSQL has flushed their statistics), which must not move.
The section it writes replaces the previous one in ``--output`` (see bench/README.md).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import time
from pathlib import Path

import psycopg

from kdsbench import data, kds_side, pg, report, targets, wrk
from kdsbench.pooler import _free_port, _measure, _render

MARK = "## With a read replica"
INCIDENT_SCANS = """
SELECT coalesce(sum(coalesce(seq_scan, 0) + coalesce(idx_scan, 0)), 0)::bigint
  FROM pg_stat_user_tables
 WHERE relname IN ('action_histories', 'resource_references') OR relname LIKE 'resource_action_traces%'
"""


class Standby:
    """A hot standby of the bench server in ``data_dir`` (removed again by :meth:`destroy`)."""

    def __init__(self, primary: pg.Server, data_dir: Path) -> None:
        self.primary = primary
        self.data_dir = data_dir
        self.port = 5433
        if data_dir.exists():
            shutil.rmtree(data_dir)
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        if primary.system_user and os.geteuid() == 0:
            shutil.chown(data_dir.parent, primary.system_user)
        self._run(
            "pg_basebackup", "-h", primary.socket_dir, "-U", "postgres", "-D", str(data_dir),
            "-R", "-X", "stream", "-c", "fast",
        )  # fmt: skip
        self._run(
            "pg_ctl", "-w", "-t", "120", "-D", str(data_dir), "-l", str(data_dir / "log"),
            "-o", f"-p {self.port} -k {data_dir} -h ''", "start",
        )  # fmt: skip

    def _run(self, tool: str, *args: str) -> None:
        argv = [str(self.primary.tool(tool)), *args]
        if os.geteuid() == 0 and self.primary.system_user:
            argv = ["runuser", "-u", self.primary.system_user, "--", *argv]
        subprocess.run(argv, check=True, capture_output=True, timeout=600)

    def url(self, dbname: str) -> str:
        return f"postgresql://postgres@/{dbname}?host={self.data_dir}&port={self.port}"

    def wait_for_replay(self, deadline: float = 120.0) -> None:
        with self.primary.connect() as conn:
            target = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]  # type: ignore[index]
        end = time.monotonic() + deadline
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            while not conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)).fetchone()[0]:  # type: ignore[index]
                if time.monotonic() > end:
                    raise TimeoutError(f"the replica did not replay up to {target} within {deadline}s")
                time.sleep(0.05)

    def destroy(self) -> None:
        try:
            self._run("pg_ctl", "-w", "-D", str(self.data_dir), "stop", "-m", "fast")
        finally:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def _scalar(url: str, query: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        return int(conn.execute(query).fetchone()[0])  # type: ignore[index]


def _kds_backends(url: str) -> int:
    return _scalar(url, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'kds-serve'")


def _replica_only(args: argparse.Namespace, wrk_bin: str, url: str, replica_url: str, log) -> str:
    """Primary and replica scan counters around a wrk run against a server that reads the replica only."""
    before = _scalar(url, INCIDENT_SCANS), _scalar(replica_url, INCIDENT_SCANS)
    service, target = _start(args, "read replica", url, replica_url)
    try:
        result = wrk.run(wrk_bin, target, wrk.script(target, args.work_dir), 32, args.duration)
    finally:
        service.stop()
    end = time.monotonic() + 30
    while (_kds_backends(url) or _kds_backends(replica_url)) and time.monotonic() < end:
        time.sleep(0.1)
    after = _scalar(url, INCIDENT_SCANS), _scalar(replica_url, INCIDENT_SCANS)
    primary_scans, replica_scans = after[0] - before[0], after[1] - before[1]
    log(f"replica-only run: {result.requests} requests; scans primary +{primary_scans}, replica +{replica_scans}")
    return (
        f"- Reads never touch the primary: a {args.duration} s run of 32 connections against the replica-reading "
        f"server ({result.requests:,} requests, {result.errors} errors), counted after its connections closed: "
        f"primary scans of the incident tables **+{primary_scans}**, replica **+{replica_scans:,}**."
    )


def _start(args: argparse.Namespace, name: str, url: str, read_url: str | None = None):
    port = _free_port()
    service = kds_side.start(
        url, port, args.kds_workers, args.pool // args.kds_workers, args.work_dir, read_url=read_url
    )
    return service, targets.Kds(name, f"http://127.0.0.1:{port}", {"Accept": "application/json"})


def run(args: argparse.Namespace, log) -> int:
    wrk_bin = wrk.ensure_installed()
    server = pg.start(args.work_dir / "pgdata")
    sections: list[str] = []
    try:
        for incidents, url, dbname in data.each_size(server, args.sizes, log):
            standby = Standby(server, args.work_dir / "replica" / "data")
            services = []
            try:
                standby.wait_for_replay()
                replica_url = standby.url(dbname)
                direct, direct_target = _start(args, "direct", url)
                services.append(direct)
                replicated, replica_target = _start(args, "read replica", url, replica_url)
                services.append(replicated)
                chosen = [direct_target, replica_target]
                targets.verify(url, chosen)
                log(f"{dbname}: both servers answer like the primary")
                pids = {"direct": direct.pid, "read replica": replicated.pid, "PostgreSQL": server.postmaster_pid()}
                samples = _measure(args, wrk_bin, chosen, pids, dbname, log)
                for service in services:
                    service.stop()
                services.clear()
                proof = _replica_only(args, wrk_bin, url, replica_url, log)
            finally:
                for service in services:
                    service.stop()
                standby.destroy()
            table = _render(incidents, f"PostgreSQL {server.version()}", chosen, samples, args)
            sections.append(table + "\n\n" + proof + "\n")
    finally:
        if not args.keep_server:
            pg.stop(server)
    _write(args.output, sections, args)
    log(f"wrote the read-replica section of {args.output}")
    return 0


def _write(output: Path, sections: list[str], args: argparse.Namespace) -> None:
    header = [
        MARK,
        "",
        f"`bench/run --replica`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: kds serve --workers "
        f"{args.kds_workers} --pool-size {args.pool // args.kds_workers} reading the primary (direct) vs reading a "
        "`pg_basebackup -R` hot standby of it on the same machine (`KDS_READ_DATABASE_URL`; a second pool of the "
        f"same size); {args.rounds} interleaved rounds x {args.duration} s. The PostgreSQL CPU column is the "
        "primary's. The replica shares the cores with the primary, so the point is correctness (docs/scaling.md).",
        "",
    ]
    report.replace_section(output, MARK, "\n".join(header + sections) + "\n")
