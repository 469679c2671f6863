"""Shell completion scripts for bash, zsh and fish, generated from the typer app.

``python -m kds.cli.completions`` rewrites the committed copies in ``completions/``; a test
fails when they are stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

FILES = {"bash": "kds.bash", "zsh": "_kds", "fish": "kds.fish"}


def script(shell: str) -> str:
    """The completion script typer generates for ``shell`` (``kds --show-completion`` in that shell)."""
    from typer._completion_shared import get_completion_script

    return get_completion_script(prog_name="kds", complete_var="_KDS_COMPLETE", shell=shell)


def write_all(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for shell, name in FILES.items():
        path = folder / name
        path.write_text(script(shell), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "completions"
    for path in write_all(target):
        print(path)
