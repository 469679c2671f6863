"""bench/RESULTS.md: the machine, the check, the interleaved wrk rounds, the ratios and the floor."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

from kdsbench.extras import Extras, Timing
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
    load: float = 0.0  # 1-minute load average when the run started


@dataclass
class SizeResult:
    incidents: int
    totals: dict[str, int]
    servers: list[str]
    samples: list[Sample] = field(default_factory=list)
    floor: dict[str, list[FloorResult]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    extras: Extras = field(default_factory=Extras)
    profile: list[str] = field(default_factory=list)
    postgres: str = ""  # which server: "PostgreSQL 18.4 (embedded: ...)" or an OS package's

    def picked(self, server: str, connections: int) -> list[Sample]:
        return [s for s in self.samples if s.server == server and s.connections == connections]


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
            f"| {1000 * sum(s.db_cpu_s for s in picked) / requests:.2f} "
            f"| {min(s.load for s in picked):.1f}-{max(s.load for s in picked):.1f} |"
        )
    return rows


def _pairs(result: SizeResult, connections: int) -> list[dict[str, Sample]]:
    """The rounds in which both kds and PostgREST ran (back to back) at ``connections``."""
    by_round: dict[int, dict[str, Sample]] = {}
    for s in result.samples:
        if s.connections == connections:
            by_round.setdefault(s.round, {})[s.server] = s
    return [r for r in by_round.values() if {"kds", "PostgREST"} <= set(r)]


def ratio_values(result: SizeResult, connections: int) -> tuple[list[float], list[float]]:
    """Per round: kds/PostgREST throughput and kds/PostgREST p99 (the two ran back to back)."""
    pairs = _pairs(result, connections)
    throughput = [p["kds"].wrk.rps / p["PostgREST"].wrk.rps for p in pairs if p["PostgREST"].wrk.rps]
    p99 = [p["kds"].wrk.p99_ms / p["PostgREST"].wrk.p99_ms for p in pairs if p["PostgREST"].wrk.p99_ms]
    return throughput, p99


def p50_ratio_values(result: SizeResult, connections: int) -> list[float]:
    """Per round: kds/PostgREST p50 latency."""
    return [
        p["kds"].wrk.p50_ms / p["PostgREST"].wrk.p50_ms
        for p in _pairs(result, connections)
        if p["PostgREST"].wrk.p50_ms
    ]


def _ratios(result: SizeResult, connections: int) -> list[str]:
    if not {"kds", "PostgREST"} <= set(result.servers):
        return []
    throughput, p99 = ratio_values(result, connections)
    return [
        f"- kds/PostgREST throughput at {connections} connection(s): {_spread(throughput, '{:.2f}')}x",
        f"- kds/PostgREST p99 latency at {connections} connection(s): {_spread(p99, '{:.2f}')}x",
    ]


def _extras(result: SizeResult) -> list[str]:
    out: list[str] = []
    for timing in result.extras.timings:
        out += [
            f"### {timing.label}",
            "",
            f"- {timing.spread()}; {timing.detail}; load average {timing.load[0]:.1f} -> {timing.load[1]:.1f}",
            "",
        ]
    memory = result.extras.memory
    if memory is not None:
        out += [
            "### Whole-table NDJSON export: memory of the streaming worker",
            "",
            f"- `GET /api/v1/incidents` with `Accept: application/x-ndjson`, no filter, after one warm-up read of the "
            f"table: {memory.rows:,} rows in "
            f"{memory.seconds:.1f} s ({memory.rows / memory.seconds:,.0f} rows/s); "
            f"worker RSS {memory.baseline_mb:.0f} MB before, **peak {memory.peak_mb:.0f} MB** "
            f"(psutil, every 10 ms, {memory.samples} samples); "
            f"load average {memory.load[0]:.1f} -> {memory.load[1]:.1f}",
            "",
        ]
    return out


def _cell_ratio(values: list[float]) -> str:
    return _spread(values, "{:.2f}") + "x" if values else "n/a"


def summary(sizes: list[SizeResult], cli: list[Timing]) -> list[str]:
    """The quality bars in docs/benchmarks.md next to the measured medians.

    kds/PostgREST ratios are per interleaved round.
    """
    rows: list[tuple[str, str, str]] = []
    several = len({result.postgres for result in sizes}) > 1
    for result in sizes:
        n = f"{result.incidents:,}" + (f", {result.postgres.split(' (')[0]}" if several else "")
        if {"kds", "PostgREST"} <= set(result.servers):
            throughput, p99 = ratio_values(result, 32)
            rows.append((f"throughput kds/PostgREST, 32 connections, {n}", ">= 2.5x", _cell_ratio(throughput)))
            rows.append((f"p99 kds/PostgREST, 32 connections, {n}", "<= 0.5x", _cell_ratio(p99)))
        floor = next((runs for name, runs in result.floor.items() if name.startswith("kds")), [])
        floor_p50 = next((run.p50_ms for run in floor if run.clients == 1), None)
        single = result.picked("kds", 1)
        if single:
            p50 = [s.wrk.p50_ms for s in single]
            bars = [] if floor_p50 is None else [f"<= floor + 0.5 ms = {floor_p50 + 0.5:.2f} ms"]
            if result.incidents >= 1_000_000:
                bars.append("< 10 ms (list p50 on 1M)")
            rows.append((f"kds p50, 1 connection, {n}", "; ".join(bars) or "(context)", _spread(p50, "{:.2f}") + " ms"))
        if {"kds", "PostgREST"} <= set(result.servers) and result.picked("kds", 1):
            ratio = _cell_ratio(p50_ratio_values(result, 1))
            rows.append((f"p50 kds/PostgREST, 1 connection, {n}", "<= 0.5x", ratio))
        if floor_p50 is not None:
            label = f"floor: the database alone, kds's SQL, 1 client, {n}"
            bar = "< 1 ms" if result.incidents < 1_000_000 else "(context)"
            rows.append((label, bar, f"p50 {floor_p50:.2f} ms"))
        for timing in result.extras.timings:
            rows.append((f"{timing.label}, {n}", "< 150 ms (10,000 rows)", timing.spread()))
        if result.extras.memory is not None:
            m = result.extras.memory
            label = f"worker peak RSS, whole-table NDJSON export ({m.rows:,} rows)"
            rows.append((label, "< 150 MB", f"{m.peak_mb:.0f} MB"))
    for timing in cli:
        bar = "< 400 ms" if "list" in timing.label else "(context)"
        rows.append((timing.label, bar, timing.spread()))
    if not rows:
        return []
    return (
        ["## Summary: the quality bars in docs/benchmarks.md", "", "| measurement | bar | measured |", "|---|---|---|"]
        + [f"| {a} | {b} | {c} |" for a, b, c in rows]
        + [""]
    )


def render(machine: dict[str, str], config: dict[str, str], sizes: list[SizeResult], cli: list[Timing]) -> str:
    out = ["# kds benchmark results", "", "Written by `bench/run`; numbers are medians over interleaved rounds", ""]
    out += summary(sizes, cli)
    out += ["## Machine and software", ""] + [f"- {k}: {v}" for k, v in machine.items()] + [""]
    out += ["## Configuration", ""] + [f"- {k}: {v}" for k, v in config.items()] + [""]
    for result in sizes:
        out += [f"## {result.incidents:,} incidents, {result.postgres}", ""]
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
                "| PostgreSQL CPU s / 1k req | load average |",
                "|---|---|---|---|---|---|---|---|",
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
        out += _extras(result)
        if result.profile:
            out += ["### Profile of a kds serve worker under load (py-spy)", "", *result.profile, ""]
    if cli:
        out += ["## CLI wall time (cold processes)", ""]
        out += [f"- {t.label}: {t.spread()}; {t.detail}; load average {t.load[0]:.1f} -> {t.load[1]:.1f}" for t in cli]
        out.append("")
    return "\n".join(out) + "\n"


def replace_section(output: Path, mark: str, section: str) -> None:
    """Write ``section`` (starting with the heading ``mark``) into ``output``, replacing the previous one."""
    text = output.read_text() if output.exists() else ""
    if mark in text:
        before, _, rest = text.partition(mark)
        after = rest.partition("\n## ")
        text = before + section + (("\n## " + after[2]) if after[1] else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    output.write_text(text)
