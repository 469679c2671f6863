"""Cold start of the remote CLI: ``kds incidents list --server-url …`` in a new process (docs/remote.md).

Starts the bench PostgreSQL (``kdsbench.pg``), a database with 1,000 seeded incidents and a
``kds serve`` on 127.0.0.1, then times new ``kds`` processes with hyperfine (``apt-get install
hyperfine``): the remote list, the same list from the database, and ``kds --version`` as the floor of
starting Python and kds. ``--python`` (repeatable) times the commands with other interpreters too,
e.g. a venv holding only the runtime dependencies (what the image installs): a development
environment may hold extra packages that httpx's import picks up (trio: ~100 ms). Writes the table
into bench/RESULTS.md between the remote-cold markers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from kdsbench import pg

DATABASE = "kds_remote_cold"
MARK_BEGIN, MARK_END = "<!-- remote-cold:begin -->", "<!-- remote-cold:end -->"
TARGET_MS = 400


def _kds(*args: str) -> list[str]:
    return [sys.executable, "-m", "kds", *args]


def _prepare(server: pg.Server) -> str:
    with server.connect() as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone()
        if not exists:
            conn.execute(f"CREATE DATABASE {DATABASE}")
    url = server.url(DATABASE)
    subprocess.run(_kds("db", "migrate", "--database-url", url), check=True, capture_output=True)
    with pg.psycopg.connect(url) as conn:
        count = conn.execute("SELECT count(*) FROM resource_action_traces").fetchone()[0]  # type: ignore[index]
    if count == 0:
        subprocess.run(
            _kds("db", "seed", "--incidents", "1000", "--database-url", url), check=True, capture_output=True
        )
    return url


def _serve(url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KDS_LOG_LEVEL": "WARNING"}
    command = _kds("serve", "--host", "127.0.0.1", "--port", str(port), "--database-url", url, "--shutdown-delay", "0")
    process = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.terminate()
    raise RuntimeError(f"kds serve did not become ready; see {log}")


def _hyperfine(commands: dict[str, str], runs: int, export: Path) -> dict[str, dict[str, float]]:
    arguments = ["hyperfine", "--warmup", "3", "--runs", str(runs), "--export-json", str(export), "-N"]
    for name, command in commands.items():
        arguments += ["--command-name", name, command]
    subprocess.run(arguments, check=True, stdout=subprocess.DEVNULL)
    results = json.loads(export.read_text())["results"]
    return {
        r["command"]: {
            **{k: 1000 * r[k] for k in ("mean", "stddev", "median", "min", "max")},
            "cpu": 1000 * (r["user"] + r["system"]),
        }
        for r in results
    }


def _section(results: dict[str, dict[str, float]], runs: int) -> str:
    load = os.getloadavg()[0]
    lines = [
        MARK_BEGIN,
        "## Remote CLI cold start",
        "",
        f"`bench/run-remote-cold`: hyperfine, {runs} runs after 3 warm-ups, each a new `kds` process (no shell),",
        f"1,000 incidents, `kds serve` on 127.0.0.1 (1 worker), one page of 50 rows piped; load average {load:.1f}.",
        f"Target: remote under {TARGET_MS} ms wall time (docs/remote.md). On a loaded machine the wall time",
        "waits for a CPU; the CPU time (what the process itself spends) depends much less on the load.",
        "",
        "| command | median ms | mean ± sd ms | min-max ms | CPU ms (user+sys, mean) |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | **{r['median']:.0f}** | {r['mean']:.0f} ± {r['stddev']:.0f} | {r['min']:.0f}-{r['max']:.0f} "
            f"| {r['cpu']:.0f} |"
        )
    lines.append(MARK_END)
    return "\n".join(lines) + "\n"


def _record(section: str, results_file: Path) -> None:
    text = results_file.read_text() if results_file.exists() else "# kds benchmark results\n"
    if MARK_BEGIN in text:
        before, rest = text.split(MARK_BEGIN, 1)
        text = before + section + rest.split(MARK_END, 1)[1].lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    results_file.write_text(text)


def _measure(args: argparse.Namespace, *, pg_server: pg.Server) -> dict[str, dict[str, float]]:
    """Start kds serve on the seeded database and time the commands."""
    url = _prepare(pg_server)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    serve = _serve(url, port, args.work_dir / "remote-cold-serve.log")
    try:
        interpreters = [("this environment", sys.executable)] + [tuple(p.split("=", 1)) for p in args.python]
        commands: dict[str, str] = {}
        for label, python in interpreters:
            base = f"{python} -m kds"
            commands[f"remote: `kds incidents list --server-url …` ({label})"] = (
                f"{base} incidents list --server-url http://127.0.0.1:{port}"
            )
            commands[f"direct: `kds incidents list --database-url …` ({label})"] = (
                f"{base} incidents list --database-url {url}"
            )
            commands[f"floor: `kds --version` ({label})"] = f"{base} --version"
        with tempfile.TemporaryDirectory() as scratch:
            results = _hyperfine(commands, args.runs, Path(scratch) / "hyperfine.json")
    finally:
        serve.terminate()
        serve.wait(timeout=30)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench/run-remote-cold", description=__doc__)
    parser.add_argument("--work-dir", type=Path, default=Path(os.environ.get("KDS_BENCH_DIR", "/tmp/kds-bench")))
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--keep-server", action="store_true", help="leave the bench PostgreSQL running")
    parser.add_argument(
        "--python",
        action="append",
        default=[],
        metavar="LABEL=PATH",
        help="also time with this interpreter (with kds importable), e.g. 'runtime venv=/tmp/venv/bin/python'",
    )
    parser.add_argument("--results", type=Path, default=Path(__file__).resolve().parents[1] / "RESULTS.md")
    args = parser.parse_args(argv)
    if shutil.which("hyperfine") is None:
        raise SystemExit("hyperfine is not installed (apt-get install -y hyperfine)")
    server = pg.start(args.work_dir / "pgdata")
    try:
        results = _measure(args, pg_server=server)
    finally:
        if not args.keep_server:
            pg.stop(server)
    section = _section(results, args.runs)
    _record(section, args.results)
    print(section)


if __name__ == "__main__":
    main()
