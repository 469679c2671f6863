"""bench/RESULTS.md: the machine, the check, the interleaved wrk rounds, the ratios and the floor."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from kdsbench.floor import FloorResult
from kdsbench.wrk import WrkResult


@dataclass
class Sample:
    server: str
    connections: int
    round: int
    wrk: WrkResult
    server_cpu_s: float
    db_cpu_s: float


@dataclass
class SizeResult:
    incidents: int
    totals: dict[str, int]
    servers: list[str]
    samples: list[Sample] = field(default_factory=list)
    floor: dict[str, list[FloorResult]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _spread(values: list[float], fmt: str = "{:.1f}") -> str:
    if not values:
        return "n/a"
    return f"{fmt.format(_med(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def _server_rows(result: SizeResult, connections: int) -> list[str]:
    rows = []
    for server in result.servers:
        picked = [s for s in result.samples if s.server == server and s.connections == connections]
        if not picked:
            continue
        requests = sum(s.wrk.requests for s in picked) or 1
        rows.append(
            f"| {server} | {_spread([s.wrk.rps for s in picked], '{:.0f}')} "
            f"| {_spread([s.wrk.p50_ms for s in picked], '{:.2f}')} "
            f"| {_spread([s.wrk.p99_ms for s in picked], '{:.2f}')} "
            f"| {sum(s.wrk.errors for s in picked)} "
            f"| {1000 * sum(s.server_cpu_s for s in picked) / requests:.2f} "
            f"| {1000 * sum(s.db_cpu_s for s in picked) / requests:.2f} |"
        )
    return rows


def _ratios(result: SizeResult, connections: int) -> list[str]:
    if not {"kds", "PostgREST"} <= set(result.servers):
        return []
    by_round: dict[int, dict[str, Sample]] = {}
    for s in result.samples:
        if s.connections == connections:
            by_round.setdefault(s.round, {})[s.server] = s
    pairs = [r for r in by_round.values() if {"kds", "PostgREST"} <= set(r)]
    throughput = [p["kds"].wrk.rps / p["PostgREST"].wrk.rps for p in pairs if p["PostgREST"].wrk.rps]
    p99 = [p["kds"].wrk.p99_ms / p["PostgREST"].wrk.p99_ms for p in pairs if p["PostgREST"].wrk.p99_ms]
    return [
        f"- kds/PostgREST throughput at {connections} connection(s): {_spread(throughput, '{:.2f}')}x",
        f"- kds/PostgREST p99 latency at {connections} connection(s): {_spread(p99, '{:.2f}')}x",
    ]


def render(machine: dict[str, str], config: dict[str, str], sizes: list[SizeResult]) -> str:
    out = ["# kds benchmark results", "", "Written by `bench/run`; numbers are medians over interleaved rounds", ""]
    out += ["## Machine and software", ""] + [f"- {k}: {v}" for k, v in machine.items()] + [""]
    out += ["## Configuration", ""] + [f"- {k}: {v}" for k, v in config.items()] + [""]
    for result in sizes:
        out += [f"## {result.incidents:,} incidents", ""]
        totals = sorted(result.totals.values())
        out += [
            f"Checked before timing ({', '.join(result.servers)}): each server's ids, their order and the exact "
            f"total equal the database's own answer for all {len(totals)} namespaces "
            f"(totals {totals[0]:,}-{totals[-1]:,}).",
            "",
        ]
        out += result.notes
        for connections in sorted({s.connections for s in result.samples}, reverse=True):
            out += [
                f"### wrk, {connections} connection(s)",
                "",
                "| server | req/s median (min-max) | p50 ms | p99 ms | errors | server CPU s / 1k req "
                "| PostgreSQL CPU s / 1k req |",
                "|---|---|---|---|---|---|---|",
                *_server_rows(result, connections),
                "",
                *_ratios(result, connections),
                "",
            ]
        if result.floor:
            out += [
                "### Floor: pgbench running the SQL itself (prepared, namespace rotated)",
                "",
                "| SQL | clients | tps | p50 ms | p99 ms | failed |",
                "|---|---|---|---|---|---|",
            ]
            for name, runs in result.floor.items():
                for run in runs:
                    out.append(
                        f"| {name} | {run.clients} | {run.tps:.0f} | {run.p50_ms:.2f} | {run.p99_ms:.2f} "
                        f"| {run.failed} |"
                    )
            out.append("")
    return "\n".join(out) + "\n"
