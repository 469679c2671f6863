"""``bench/run --profile``: py-spy samples of one kds serve worker under the 32-connection wrk load.

py-spy samples wall-clock stacks of threads that the kernel shows as running. On a loaded machine
a worker is often preempted right after a system call that wakes another process (writing the
response to wrk, sending the query to PostgreSQL), so those two leaf frames collect samples far
beyond their CPU cost (the worker's user CPU is ~90 % of its total, bench/RESULTS.md). The summary
leaves those samples out and shows, for the rest, the share of samples in which each function is on
the stack (inclusive).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

# Leaf frames that are system calls waking another process (see the module docstring).
WAKEUP_LEAVES = ("send (send", "_send_query_prepared")
INTERESTING = ("kds/", "psycopg", "sanic", "prometheus_client", "uvloop", "asyncio")


def ensure_installed() -> str:
    found = shutil.which("py-spy")
    if found:
        return found
    pip = [sys.executable, "-m", "pip", "install", "py-spy>=0.3"]
    subprocess.run(pip, check=True, capture_output=True, timeout=600)
    found = shutil.which("py-spy")
    if not found:
        raise RuntimeError("py-spy is not installed and pip could not install it")
    return found


def record(py_spy: str, pid: int, seconds: int, out: Path) -> None:
    argv = [py_spy, "record", "-p", str(pid), "-d", str(seconds), "-r", "250", "-f", "raw", "-o", str(out)]
    subprocess.run(
        [*argv, "--nonblocking"],
        check=True,
        capture_output=True,
        timeout=seconds + 60,
    )


def while_loaded(py_spy: str, pid: int, seconds: int, out: Path, load) -> None:
    """Record ``pid`` for ``seconds`` while ``load()`` (a wrk run a little longer) runs in a thread."""
    runner = threading.Thread(target=load)
    runner.start()
    try:
        record(py_spy, pid, seconds, out)
    finally:
        runner.join()


def summarise(raw: Path, top: int = 30) -> list[str]:
    inclusive: Counter[str] = Counter()
    kept = left_out = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        if any(leaf in frames[-1] for leaf in WAKEUP_LEAVES):
            left_out += int(count)
            continue
        kept += int(count)
        for name in {frame for frame in frames if any(part in frame for part in INTERESTING)}:
            inclusive[name.split(" (")[0] + " (" + name.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1] + ")"] += int(
                count
            )
    if not kept:
        return ["(no samples)"]
    lines = [
        f"{kept} samples kept, {left_out} left out (wake-up system calls: {', '.join(WAKEUP_LEAVES)})",
        "",
        "| share of kept samples (inclusive) | function |",
        "|---|---|",
    ]
    root = max(inclusive.values())  # the start-up chain every sample shares: not interesting
    shown = [(name, n) for name, n in inclusive.most_common() if n < root][:top]
    lines += [f"| {100 * n / kept:.1f} % | `{name}` |" for name, n in shown]
    return lines
