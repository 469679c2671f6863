"""Run ``kds`` as a subprocess on a real pseudo-terminal (stdout, stderr or both), at a given width."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import threading
import time
from dataclasses import dataclass

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass
class Ran:
    returncode: int
    terminal: str  # what the pseudo-terminal received, with "\r\n" as "\n"
    piped: str  # what went to the other stream (a pipe), when only one stream is the terminal

    def plain(self) -> str:
        return ANSI.sub("", self.terminal)


def _set_size(fd: int, columns: int, rows: int = 50) -> None:
    """What ``stty cols N rows M`` does."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


def kds_in_pty(
    args: list[str],
    *,
    columns: int = 80,
    on: str = "stdout",
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> Ran:
    """Run ``python -m kds ARGS`` with ``on`` ("stdout", "stderr" or "both") a pseudo-terminal."""
    master, slave = pty.openpty()
    _set_size(slave, columns)
    environment = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    environment.update({"TERM": "xterm-256color", **(env or {})})
    other = subprocess.PIPE
    process = subprocess.Popen(
        [sys.executable, "-m", "kds", *args],
        stdin=subprocess.DEVNULL,
        stdout=slave if on in ("stdout", "both") else other,
        stderr=slave if on in ("stderr", "both") else other,
        env=environment,
        start_new_session=True,
    )
    os.close(slave)
    pipe = process.stderr if on == "stdout" else process.stdout
    piped: list[bytes] = []
    reader = threading.Thread(target=lambda: piped.append(pipe.read() if pipe is not None else b""), daemon=True)
    reader.start()  # the other stream is read meanwhile: a full pipe would block the process
    received = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer of the terminal has closed it
                break
            if not chunk:
                break
            received += chunk
        elif process.poll() is not None and not select.select([master], [], [], 0.05)[0]:
            break
    else:
        process.kill()
        raise AssertionError(f"kds {' '.join(args)} did not finish within {timeout}s")
    os.close(master)
    process.wait(timeout=timeout)
    reader.join(timeout=timeout)
    return Ran(process.returncode, received.decode().replace("\r\n", "\n"), b"".join(piped).decode())
