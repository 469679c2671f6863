"""wrk runs rotating the namespace over the 20 benchmark namespaces (a Lua script), parsed into numbers."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kdsbench.targets import NAMESPACES, Target

LUA = r"""
local paths = {%(paths)s}
local headers = {%(headers)s}
local threads = {}
local counter = 0

function setup(thread)
  thread:set("offset", #threads * 7)
  table.insert(threads, thread)
end

function init(args)
  counter = tonumber(offset) or 0
end

function request()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1], headers)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %%d, "duration_us": %%d, "connect": %%d, "read": %%d, "write": %%d, "status": %%d, ' ..
    '"timeout": %%d, "p50_us": %%d, "p90_us": %%d, "p99_us": %%d, "max_us": %%d, "mean_us": %%.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lua string literal for this ASCII text


def ensure_installed() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, capture_output=True, timeout=600)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is not installed and apt-get could not install it")
    return found


def version(binary: str) -> str:
    result = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
    return (result.stdout or result.stderr).strip().splitlines()[0]


def script(target: Target, work_dir: Path) -> Path:
    path = work_dir / f"wrk-{target.name.lower()}.lua"
    path.write_text(
        LUA
        % {
            "paths": ", ".join(_lua_string(target.path(ns)) for ns in NAMESPACES),
            "headers": ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in target.headers.items()),
        }
    )
    return path


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    mean_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def run(binary: str, target: Target, lua: Path, connections: int, duration_s: int) -> WrkResult:
    threads = min(connections, 2)
    argv = [
        binary, f"-t{threads}", f"-c{connections}", f"-d{duration_s}s", "--timeout", "10s",
        "-s", str(lua), target.base_url,
    ]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + 60, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("WRKJSON "))
    data = json.loads(line.removeprefix("WRKJSON "))
    errors = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
    return WrkResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        errors=errors,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        mean_ms=data["mean_us"] / 1000,
    )
