"""bench/run-summary: ``kds incidents summary`` / ``GET /api/v1/incidents/summary`` on 1,000,000 incidents.

The bar (docs/benchmarks.md): a summary by namespace over the last 30 days, p50 under 100 ms. Measures, on
the bench PostgreSQL and a seeded database (both reused like bench/run does):

1. the core's own statement (:func:`kds.query.summary_sql.summary_statement`) on one connection, prepared as
   the server runs it: warm-up runs, then ``--runs`` timed executions per case (p50, p90, min);
2. the HTTP endpoint through a real ``kds serve`` (one client, keep-alive): the same cases;
3. ``EXPLAIN (ANALYZE, BUFFERS)`` of the namespace case;

and writes them as the section "Summaries" of bench/RESULTS.md (replacing an earlier one).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from kdsbench import data, kds_side, pg
from kdsbench.__main__ import free_port, log

BENCH = Path(__file__).resolve().parents[1]
START, END = "<!-- summary-bench:start -->", "<!-- summary-bench:end -->"
# (label, query string): the first is the bar
CASES: list[tuple[str, dict[str, str]]] = [
    ("by namespace, since 30d (the bar)", {"by": "namespace", "since": "30d"}),
    ("by namespace, every incident", {"by": "namespace"}),
    ("by namespace, severity=high, since 30d", {"by": "namespace", "severity": "high", "since": "30d"}),
    ("by severity, since 30d", {"by": "severity", "since": "30d"}),
    ("by status, namespace=payments", {"by": "status", "namespace": "payments"}),
    ("by hour (default: 24 h)", {"by": "hour"}),
    ("by day (default: 30 days)", {"by": "day"}),
]


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50": statistics.median(ordered),
        "p90": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
        "min": ordered[0],
    }


def time_statement(url: str, params: dict[str, str], runs: int, warmup: int) -> dict[str, float]:
    from kds.query.summary import parse_summary_query
    from kds.query.summary_sql import assemble_summary, summary_statement

    samples = []
    with psycopg.connect(url, autocommit=True) as conn:
        for i in range(warmup + runs):
            statement = summary_statement(parse_summary_query(params))
            started = time.perf_counter()
            rows = conn.execute(statement.query, statement.params, prepare=True).fetchall()
            assemble_summary(parse_summary_query(params), rows)
            if i >= warmup:
                samples.append((time.perf_counter() - started) * 1000)
    return _percentiles(samples)


def time_http(port: int, params: dict[str, str], runs: int, warmup: int) -> dict[str, float]:
    import httpx

    samples = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30.0) as client:
        for i in range(warmup + runs):
            started = time.perf_counter()
            response = client.get("/api/v1/incidents/summary", params=params)
            elapsed = (time.perf_counter() - started) * 1000
            response.raise_for_status()
            if i >= warmup:
                samples.append(elapsed)
    return _percentiles(samples)


def explain(url: str, params: dict[str, str]) -> str:
    from kds.query.summary import parse_summary_query
    from kds.query.summary_sql import summary_statement

    statement = summary_statement(parse_summary_query(params))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement.query, statement.params).fetchall()  # warm
        query = sql.SQL("EXPLAIN (ANALYZE, BUFFERS) {}").format(statement.query)
        return "\n".join(row[0] for row in conn.execute(query, statement.params).fetchall())


def render(incidents: int, version: str, results: list[tuple[str, dict[str, str], dict[str, Any]]], plan: str) -> str:
    load = os.getloadavg()[0]
    lines = [
        START,
        "## Summaries (`kds incidents summary`, `GET /api/v1/incidents/summary`)",
        "",
        f"`bench/run-summary`: {incidents:,} seeded incidents (spread over 45 days), PostgreSQL {version}, "
        f"{os.cpu_count()} cores shared with other work (load average {load:.2f} at the end), "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Milliseconds; the statement is the core's one "
        "statement on one prepared connection; HTTP is one keep-alive client against `kds serve` (2 workers).",
        "",
        "| case | statement p50 | p90 | min | HTTP p50 | p90 | min |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, _, timing in results:
        sql_t, http_t = timing["statement"], timing.get("http")
        http_cells = (
            f"{http_t['p50']:.1f} | {http_t['p90']:.1f} | {http_t['min']:.1f}" if http_t else "not measured | | "
        )
        lines.append(f"| {label} | {sql_t['p50']:.1f} | {sql_t['p90']:.1f} | {sql_t['min']:.1f} | {http_cells} |")
    lines += ["", "`EXPLAIN (ANALYZE, BUFFERS)` of the first case:", "", "```", plan, "```", END]
    return "\n".join(lines) + "\n"


def write_section(output: Path, section: str) -> None:
    text = output.read_text(encoding="utf-8") if output.exists() else ""
    if START in text and END in text:
        before, rest = text.split(START, 1)
        after = rest.split(END, 1)[1].lstrip("\n")
        text = before + section + ("\n" + after if after else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    output.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run-summary", description=__doc__)
    parser.add_argument("--incidents", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--no-http", action="store_true", help="time the statement only")
    parser.add_argument("--work-dir", type=Path, default=Path(os.environ.get("KDS_BENCH_DIR", "/tmp/kds-bench")))
    parser.add_argument("--keep-server", action="store_true", help="leave the bench PostgreSQL running")
    parser.add_argument("--output", type=Path, default=BENCH / "RESULTS.md")
    args = parser.parse_args(argv)

    log(f"starting the bench PostgreSQL in {args.work_dir / 'pgdata'}")
    server = pg.start(args.work_dir / "pgdata")
    service = None
    try:
        url = data.prepare(server, args.incidents, log, data.expected_indexes(server))
        results: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        for label, params in CASES:
            log(f"statement: {label}")
            results.append((label, params, {"statement": time_statement(url, params, args.runs, args.warmup)}))
        if not args.no_http:
            port = free_port()
            service = kds_side.start(url, port, workers=2, pool_size=2, work_dir=args.work_dir)
            for label, params, timing in results:
                log(f"HTTP: {label}")
                timing["http"] = time_http(port, params, args.runs, args.warmup)
        plan = explain(url, CASES[0][1])
        section = render(args.incidents, server.version(), results, plan)
        write_section(args.output, section)
        print(section)
        return 0
    finally:
        if service is not None:
            service.stop()
        if not args.keep_server:
            pg.stop(server)


if __name__ == "__main__":
    sys.exit(main())
