"""`kds serve` of this checkout, started like production would (workers, pool, no shutdown delay)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from kdsbench.data import REPO
from kdsbench.proc import Service


def start(
    db_url: str,
    port: int,
    workers: int,
    pool_size: int,
    work_dir: Path,
    *,
    pooler: str = "none",
    checkout: Path = REPO,
    read_url: str | None = None,
) -> Service:
    """``pooler`` is ``KDS_DATABASE_POOLER``; ``checkout`` the kds tree to run (another commit, for a before/after);
    ``read_url`` the read database (``--read-database-url``)."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "KDS_LOG_LEVEL": "warning", "KDS_DATABASE_POOLER": pooler}
    argv = [
        sys.executable, "-m", "kds", "serve",
        "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), "--pool-size", str(pool_size),
        "--shutdown-delay", "0", "--database-url", db_url,
    ]  # fmt: skip
    if read_url:
        argv += ["--read-database-url", read_url]
    return Service.start(
        "kds serve",
        argv,
        ready_url=f"http://127.0.0.1:{port}/health/ready",
        log_path=work_dir / f"kds-{port}.log",
        env=env,
    )
