"""Numbers that tests measure and CI should show (printed in pytest's terminal summary)."""

from __future__ import annotations

LINES: list[str] = []


def report(line: str) -> None:
    """Keep ``line`` for the "kds measurements" section at the end of the run (and print it for ``-s``)."""
    LINES.append(line)
    print(line)
