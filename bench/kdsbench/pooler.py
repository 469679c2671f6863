"""bench/run --pooler: the benchmark query on kds serve direct vs through PgBouncer (transaction mode).

Every target is a ``kds serve`` with the same workers and pool size on the same database; they are
checked against the database first, then measured in interleaved wrk rounds (order alternating). The
ratio PgBouncer/direct is taken per round (the two ran back to back). Optional targets: the direct
connection with ``KDS_DATABASE_POOLER=pgbouncer`` (what the switch costs without a pooler), and the direct
connection of another checkout (``--baseline-checkout``, a before/after of the same code path).
The section it writes replaces the previous one in ``--output`` (see bench/README.md).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from kdsbench import data, floor, kds_side, pg, pgbouncer, report, targets, wrk

MARK = "## Through PgBouncer"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(args: argparse.Namespace, name: str, url: str, pooler: str, checkout: Path | None):
    port = _free_port()
    service = kds_side.start(
        url,
        port,
        args.kds_workers,
        args.pool // args.kds_workers,
        args.work_dir,
        pooler=pooler,
        checkout=checkout or data.REPO,
    )
    return service, targets.Kds(name, f"http://127.0.0.1:{port}", {"Accept": "application/json"})


def run(args: argparse.Namespace, log) -> int:
    tools = {"wrk": wrk.ensure_installed(), "pgbouncer": pgbouncer.ensure_installed()}
    server = pg.start(args.work_dir / "pgdata")
    sections: list[str] = []
    try:
        for incidents, url, dbname in data.each_size(server, args.sizes, log):
            bouncer = pgbouncer.PgBouncer(tools["pgbouncer"], server, _free_port(), args.work_dir / "pgbouncer")
            services = []
            try:
                plan = [("direct", url, "none", None), ("PgBouncer", bouncer.url(dbname), "pgbouncer", None)]
                if args.switch_on_direct:
                    plan.append(("direct, switch on", url, "pgbouncer", None))
                if args.baseline_checkout:
                    plan.append(("direct, baseline", url, "none", args.baseline_checkout))
                chosen = []
                for name, target_url, pooler, checkout in plan:
                    service, target = _start(args, name, target_url, pooler, checkout)
                    services.append(service)
                    chosen.append(target)
                targets.verify(url, chosen)
                log(f"{dbname}: {', '.join(t.name for t in chosen)} answer like the database")
                pids = {t.name: service.pid for t, service in zip(chosen, services, strict=True)}
                pids["PostgreSQL"] = server.postmaster_pid()
                samples = _measure(args, tools["wrk"], chosen, pids, dbname, log)
                version = bouncer.version()
            finally:
                for service in services:
                    service.stop()
                bouncer.stop()
            plans = _floor(args, server, dbname, log) if args.floor_duration > 0 else []
            sections.append(_render(incidents, version, chosen, samples, args) + "\n" + "\n".join(plans))
    finally:
        if not args.keep_server:
            pg.stop(server)
    _write(args.output, sections, args)
    log(f"wrote the PgBouncer section of {args.output}")
    return 0


def _floor(args: argparse.Namespace, server: pg.Server, dbname: str, log) -> list[str]:
    """The database alone: kds's SQL with its plan kept (prepared) vs planned every time (what a pooler forces)."""
    lines = ["", "The database alone (pgbench, kds's SQL, namespace rotated):", ""]
    lines += ["| pgbench -M | clients | tps | p50 ms | p99 ms |", "|---|---|---|---|---|"]
    tps: dict[tuple[str, int], float] = {}
    for conns in (int(c) for c in args.connections.split(",")):
        for mode in ("prepared", "extended"):
            run = floor.run(server, dbname, floor.kds_query_file(), conns, args.floor_duration, mode)
            tps[(mode, conns)] = run.tps
            log(f"{dbname} floor -M {mode} c={conns}: {run.tps:.1f} tps p50 {run.p50_ms:.2f} ms")
            lines.append(f"| {mode} | {conns} | {run.tps:.0f} | {run.p50_ms:.2f} | {run.p99_ms:.2f} |")
        ratio = tps[("extended", conns)] / tps[("prepared", conns)]
        lines.append(f"| extended / prepared | {conns} | **{ratio:.2f}x** | | |")
    return [*lines, ""]


@dataclass(frozen=True)
class Sample:
    wrk: wrk.WrkResult
    kds_cpu_ms: float  # CPU of the kds serve process tree per request (load-insensitive, unlike req/s)
    db_cpu_ms: float  # CPU of PostgreSQL (every backend) per request


def _measure(args, wrk_bin: str, chosen: list, pids: dict[str, int], dbname: str, log) -> dict[tuple[str, int], list]:
    scripts = {t.name: wrk.script(t, args.work_dir) for t in chosen}
    connections = [int(c) for c in args.connections.split(",")]
    for t in chosen:  # warm-up, not recorded
        wrk.run(wrk_bin, t, scripts[t.name], max(connections), 3)
    samples: dict[tuple[str, int], list] = {}
    for rnd in range(args.rounds):
        order = chosen if rnd % 2 == 0 else list(reversed(chosen))
        for conns in connections:
            for t in order:
                load = os.getloadavg()[0]
                before = pg.process_tree_cpu(pids[t.name]), pg.process_tree_cpu(pids["PostgreSQL"])
                result = wrk.run(wrk_bin, t, scripts[t.name], conns, args.duration)
                after = pg.process_tree_cpu(pids[t.name]), pg.process_tree_cpu(pids["PostgreSQL"])
                per = 1000 / max(result.requests, 1)
                sample = Sample(result, (after[0] - before[0]) * per, (after[1] - before[1]) * per)
                samples.setdefault((t.name, conns), []).append(sample)
                log(
                    f"{dbname} round {rnd + 1}/{args.rounds} {t.name:18} c={conns:<2} {result.rps:8.1f} req/s "
                    f"p50 {result.p50_ms:7.2f} ms p99 {result.p99_ms:7.2f} ms errors {result.errors} load {load:.1f}"
                )
    return samples


def _spread(values: list[float], fmt: str) -> str:
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def _render(incidents: int, version: str, chosen: list, samples: dict, args) -> str:
    lines = [f"### {incidents:,} incidents", ""]
    for conns in (int(c) for c in args.connections.split(",")):
        lines += [
            f"{conns} connection(s):",
            "",
            "| kds serve | req/s median (min-max) | p50 ms | p99 ms | errors | kds CPU ms/req | PostgreSQL CPU ms/req "
            "|",
            "|---|---|---|---|---|---|---|",
        ]
        for t in chosen:
            picked = samples[(t.name, conns)]
            runs = [sample.wrk for sample in picked]
            kds_cpu = _spread([x.kds_cpu_ms for x in picked], "{:.2f}")
            cpu = f"| {kds_cpu} | {_spread([x.db_cpu_ms for x in picked], '{:.2f}')} "
            lines.append(
                f"| {t.name} | {_spread([r.rps for r in runs], '{:.0f}')} "
                f"| {_spread([r.p50_ms for r in runs], '{:.2f}')} | {_spread([r.p99_ms for r in runs], '{:.2f}')} "
                f"| {sum(r.errors for r in runs)} {cpu}|"
            )
        direct = samples[("direct", conns)]
        lines.append("")
        for t in chosen[1:]:
            pairs = zip(samples[(t.name, conns)], direct, strict=True)
            ratios = [r.wrk.rps / d.wrk.rps for r, d in pairs if d.wrk.rps]
            lines.append(f"- {t.name} / direct throughput, per round: **{_spread(ratios, '{:.2f}')}x**")
        lines.append("")
    lines.append(f"({version}; loads are in the bench log)")
    return "\n".join(lines)


def _write(output: Path, sections: list[str], args) -> None:
    header = [
        MARK,
        "",
        f"`bench/run --pooler`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: kds serve --workers "
        f"{args.kds_workers} --pool-size {args.pool // args.kds_workers} for every target; PgBouncer (OS package) in "
        "transaction mode with its defaults apart from the pool mode and the database entry, on 127.0.0.1 in front "
        f"of the bench PostgreSQL's unix socket; {args.rounds} interleaved rounds x {args.duration} s. "
        "Bar (the quality bars in docs/benchmarks.md, docs/scaling.md): PgBouncer >= 0.8x direct.",
        "",
    ]
    report.replace_section(output, MARK, "\n".join(header + sections) + "\n")
