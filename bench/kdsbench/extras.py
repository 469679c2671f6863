"""The other measurements of issue 9: NDJSON export time and memory, and the CLI's wall time.

- ``export_time``: wall time of ``GET /api/v1/incidents`` with ``Accept: application/x-ndjson`` for a
  filter that matches at least 10,000 incidents (``since`` = the timestamp of the 10,000th newest
  incident: "everything since then"), from sending the request to the last byte, client on 127.0.0.1
  reading 64 KiB at a time; every line counted against the database's own count.
- ``export_memory``: peak RSS of the kds serve worker that streams a whole-table export (no filter),
  sampled with psutil every 10 ms, next to its RSS before the request.
- ``cli_wall``: wall time of cold ``python -m kds ...`` processes (a fresh interpreter each time).
"""

from __future__ import annotations

import http.client
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

from kdsbench.data import REPO

NDJSON = "application/x-ndjson"
EXPORT_ROWS = 10_000


@dataclass(frozen=True)
class Timing:
    """Several runs of one measurement: wall seconds, and what each run produced."""

    label: str
    seconds: list[float]
    detail: str
    load: tuple[float, float] = (0.0, 0.0)  # 1-minute load average before and after

    @property
    def median_ms(self) -> float:
        return 1000 * statistics.median(self.seconds)

    def spread(self) -> str:
        ms = [1000 * s for s in self.seconds]
        return f"{statistics.median(ms):.0f} ms (min {min(ms):.0f}, max {max(ms):.0f}, {len(ms)} runs)"


@dataclass(frozen=True)
class Memory:
    rows: int
    seconds: float
    baseline_mb: float
    peak_mb: float
    samples: int
    load: tuple[float, float] = (0.0, 0.0)


@dataclass
class Extras:
    timings: list[Timing] = field(default_factory=list)
    memory: Memory | None = None


def _load() -> float:
    return os.getloadavg()[0]


def since_for_rows(db_url: str, rows: int) -> tuple[str, int]:
    """(RFC 3339 ``since`` that selects the newest ``rows`` incidents or a few more on a tie, exact count)."""
    import psycopg

    with psycopg.connect(db_url) as conn:
        stamp = conn.execute(
            "SELECT action_timestamp FROM resource_action_traces ORDER BY action_timestamp DESC, id DESC"
            " OFFSET %s LIMIT 1",
            (rows - 1,),
        ).fetchone()[0]  # type: ignore[index]
        count = conn.execute(
            "SELECT count(*) FROM resource_action_traces WHERE action_timestamp >= %s", (stamp,)
        ).fetchone()[0]  # type: ignore[index]
    return stamp.isoformat().replace("+00:00", "Z"), int(count)


def fetch_ndjson(port: int, path: str) -> tuple[float, int, int]:
    """(seconds from request to last byte, lines, bytes) of one NDJSON export."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    started = time.perf_counter()
    conn.request("GET", path, headers={"Accept": NDJSON})
    response = conn.getresponse()
    if response.status != 200:
        raise AssertionError(f"export answered {response.status}: {response.read(500)!r}")
    lines = size = 0
    while chunk := response.read(65536):
        lines += chunk.count(b"\n")
        size += len(chunk)
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed, lines, size


def export_time(port: int, db_url: str, runs: int, log) -> Timing:
    since, expected = since_for_rows(db_url, EXPORT_ROWS)
    path = "/api/v1/incidents?" + urllib.parse.urlencode({"since": since})
    fetch_ndjson(port, path)  # warm-up (prepares the statement, fills caches)
    load_before = _load()
    seconds = []
    for _ in range(runs):
        elapsed, lines, size = fetch_ndjson(port, path)
        if lines != expected:
            raise AssertionError(f"export of {path} returned {lines} lines, the database counts {expected}")
        seconds.append(elapsed)
    log(f"export of {expected:,} rows: median {1000 * statistics.median(seconds):.0f} ms")
    detail = f"`GET {path}` with `Accept: {NDJSON}`: {expected:,} rows, {size / 1e6:.1f} MB per export"
    return Timing(f"NDJSON export of {expected:,} rows over HTTP", seconds, detail, (load_before, _load()))


def warm_table(db_url: str, log) -> None:
    """Read the whole incident table once, so the export reads it from memory rather than the disk.

    A whole-table export walks the heap in time order, i.e. in random page order: on this shared VM a
    cold table made single FETCHes of 1,000 rows wait seconds on the disk (past the 5 s statement timeout).
    """
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(db_url) as conn:
        conn.execute("SELECT count(*), sum(length(model_reasoning)) FROM resource_action_traces").fetchone()
    log(f"warm-up read of the incident table: {time.perf_counter() - started:.1f} s")


def export_memory(port: int, server_pid: int, db_url: str, log) -> Memory:
    """Peak RSS of the worker serving a whole-table export (the worker that holds the export's connection)."""
    import psutil

    warm_table(db_url, log)

    workers = [p for p in psutil.Process(server_pid).children(recursive=True) if "kds" in " ".join(p.cmdline())]
    baseline = {p.pid: p.memory_info().rss for p in workers}
    peak = dict(baseline)
    done = threading.Event()
    samples = 0

    def sample() -> None:
        nonlocal samples
        while not done.is_set():
            for process in workers:
                try:
                    rss = process.memory_info().rss
                except psutil.Error:
                    continue
                peak[process.pid] = max(peak[process.pid], rss)
            samples += 1
            done.wait(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    load_before = _load()
    sampler.start()
    try:
        elapsed, lines, _ = fetch_ndjson(port, "/api/v1/incidents")
    finally:
        done.set()
        sampler.join()
    grown = max(workers, key=lambda p: peak[p.pid] - baseline[p.pid])  # the worker that streamed
    result = Memory(
        rows=lines,
        seconds=elapsed,
        baseline_mb=baseline[grown.pid] / 2**20,
        peak_mb=peak[grown.pid] / 2**20,
        samples=samples,
        load=(load_before, _load()),
    )
    log(
        f"whole-table export: {lines:,} rows in {elapsed:.1f} s; worker RSS {result.baseline_mb:.0f} MB before, "
        f"peak {result.peak_mb:.0f} MB ({samples} samples)"
    )
    return result


def cli_wall(label: str, args: list[str], runs: int, log) -> Timing:
    """Median wall time of cold ``python -m kds <args>`` processes (stdout and stderr discarded)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("KDS_DATABASE_URL", None)
    seconds = []
    load_before = _load()
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "kds", *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
            timeout=60,
        )
        seconds.append(time.perf_counter() - started)
    shown = " ".join(a if "://" not in a else "<bench database URL>" for a in args)
    log(f"`kds {shown}`: median {1000 * statistics.median(seconds):.0f} ms")
    return Timing(label, seconds, f"`python -m kds {shown}` (stdout and stderr to /dev/null)", (load_before, _load()))
