import os
import subprocess
import sys
from pathlib import Path

import pytest

from kds.cli.completions import FILES, script

FOLDER = Path(__file__).resolve().parent.parent / "completions"


@pytest.mark.parametrize(("shell", "name"), sorted(FILES.items()))
def test_committed_completion_scripts_are_fresh(shell: str, name: str) -> None:
    committed = (FOLDER / name).read_text(encoding="utf-8")
    assert committed == script(shell), f"completions/{name} is stale: run python -m kds.cli.completions"


def test_bash_completion_completes_commands_and_options() -> None:
    def complete(words: str, cword: int) -> list[str]:
        env = {**os.environ, "COMP_WORDS": words, "COMP_CWORD": str(cword), "_KDS_COMPLETE": "complete_bash"}
        result = subprocess.run(
            [sys.executable, "-c", "from kds.cli.app import app; app(prog_name='kds')"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return result.stdout.split()

    assert "incidents" in complete("kds inc", 1)
    assert complete("kds incidents l", 2) == ["list"]
    assert "--namespace" in complete("kds incidents list --name", 3)
    assert set(complete("kds incidents list -o ", 4)) == {"table", "wide", "json", "yaml", "csv", "ndjson"}
