"""The directory where every worker writes its Prometheus samples (prometheus-client's multiprocess mode).

The one owner of ``PROMETHEUS_MULTIPROC_DIR``: the runner prepares the directory before any worker
starts, :mod:`kds.server.http.metrics` aggregates from it. This module does not import
``prometheus_client`` (the variable must be set before that import; see docs/operations.md).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_enabled() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


def prepare_metrics_directory() -> tuple[Path, bool]:
    """The multiprocess directory, emptied; a fresh temporary one when the variable is unset.

    Must run before ``prometheus_client`` is imported in this process, and before the workers
    start (they inherit the variable). Returns the directory and whether kds created it.
    """
    configured = os.environ.get(MULTIPROC_ENV)
    if configured:
        directory = Path(configured)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink(missing_ok=True)
        return directory, False
    directory = Path(tempfile.mkdtemp(prefix="kds-metrics-"))
    os.environ[MULTIPROC_ENV] = str(directory)
    return directory, True
