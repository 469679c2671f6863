"""The floor: pgbench running the benchmark SQL itself (page + exact total), no HTTP in between."""

from __future__ import annotations

import re
import statistics
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kdsbench.pg import Server
from kdsbench.targets import NAMESPACES

SQL_DIR = Path(__file__).resolve().parents[1] / "sql" / "gen"


def kds_query_file() -> Path:
    """The statement kds serve itself sends for the benchmark request, from the query core."""
    from kds.query import parse_incident_query
    from kds.query.statements import page_document_statement

    query = parse_incident_query({"namespace": "x", "severity": "high", "limit": "50"}, default_limit=100)
    text = page_document_statement(query).query.as_string(None)
    for placeholder, value in (
        ("namespace", "%(ns)s"),
        ("severity", "%(sev)s"),
        ("fetch", "51"),
        ("limit", "50"),
        ("offset", "%(off)s"),
    ):
        text = text.replace(f"%({placeholder})s", value)
    path = Path(tempfile.gettempdir()) / "kds-bench-core-query.sql"
    path.write_text(text + "\n")
    return path


# name -> query file (sqlexp.py placeholders); see bench/SQL_FINDINGS.md for the shapes.
QUERIES = {
    "kds's SQL (kds.query.statements)": kds_query_file(),
    "first CTE shape (before the findings)": SQL_DIR / "lead_ns_sev_off0.sql",
    # PostgREST 12's own statement for the benchmark request (captured with log_statement=all).
    "PostgREST's SQL": SQL_DIR.parent / "postgrest_ns_sev.sql",
}


def pgbench_script(query_file: Path) -> str:
    """One transaction = the query for a namespace drawn at random from the 20 (a bound parameter :k)."""
    names = ",".join("'" + ns.replace("'", "''") + "'" for ns in NAMESPACES)
    text = query_file.read_text()
    text = text.replace("%(ns)s", f"(ARRAY[{names}])[:k]").replace("%(sev)s", "'high'").replace("%(off)s", "0")
    # pgbench reads ":MI" inside a string literal as a variable; spell the colons of to_char's format as chr(58).
    text = text.replace("HH24:MI:SS", "HH24' || chr(58) || 'MI' || chr(58) || 'SS")
    stray = re.findall(r"(?<!:):(?!k\b)[A-Za-z_]\w*", text.replace("::", "  "))
    assert not stray, f"{query_file}: pgbench would read {stray} as variables"
    return f"\\set k random(1, {len(NAMESPACES)})\n{' '.join(text.split())};\n"


@dataclass(frozen=True)
class FloorResult:
    clients: int
    tps: float
    p50_ms: float
    p99_ms: float
    failed: int


def run(
    server: Server, dbname: str, query_file: Path, clients: int, duration_s: int, mode: str = "prepared"
) -> FloorResult:
    """``mode`` is pgbench's ``-M``: ``prepared`` (plans kept) or ``extended`` (unnamed, planned each time)."""
    with tempfile.TemporaryDirectory(prefix="kds-pgbench-") as tmp:
        script = Path(tmp) / "query.sql"
        script.write_text(pgbench_script(query_file))
        argv = [
            str(server.tool("pgbench")), "-n", "-h", server.socket_dir, "-U", "postgres",
            "-M", mode, "-c", str(clients), "-j", str(min(clients, 2)), "-T", str(duration_s),
            "-l", "-f", str(script), dbname,
        ]  # fmt: skip
        out = subprocess.run(argv, capture_output=True, text=True, cwd=tmp, timeout=duration_s + 120, check=True)
        latencies = sorted(
            int(line.split()[2]) / 1000
            for log in Path(tmp).glob("pgbench_log.*")
            for line in log.read_text().splitlines()
            if line.strip()
        )
    tps = float(re.search(r"tps = ([0-9.]+)", out.stdout).group(1))  # type: ignore[union-attr]
    failed = re.search(r"number of failed transactions: (\d+)", out.stdout)
    return FloorResult(
        clients=clients,
        tps=tps,
        p50_ms=statistics.median(latencies) if latencies else float("nan"),
        p99_ms=latencies[int(len(latencies) * 0.99)] if latencies else float("nan"),
        failed=int(failed.group(1)) if failed else 0,
    )
