"""A server subprocess we started: readiness by polling with a deadline, stop by its own pid."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path


class ServiceFailed(RuntimeError):
    pass


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @classmethod
    def start(
        cls,
        name: str,
        argv: list[str],
        *,
        ready_url: str,
        log_path: Path,
        env: dict[str, str] | None = None,
        deadline_s: float = 60.0,
    ) -> Service:
        log = log_path.open("wb")
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        service = cls(name, process, log_path)
        deadline = time.monotonic() + deadline_s
        while True:
            if process.poll() is not None:
                raise ServiceFailed(f"{name} exited with {process.returncode}: {service.log_tail()}")
            try:
                with urllib.request.urlopen(ready_url, timeout=2) as response:
                    if response.status == 200:
                        return service
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                service.stop()
                raise ServiceFailed(f"{name} not ready within {deadline_s:.0f} s: {service.log_tail()}")
            time.sleep(0.2)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 15) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").strip().splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 45.0) -> None:
        """SIGTERM to the service's own process group (it was started in a new session), then SIGKILL."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
