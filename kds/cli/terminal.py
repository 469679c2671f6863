"""What the CLI's standard streams are: a terminal (how wide, coloured?) or a pipe."""

from __future__ import annotations

import os
import shutil
import sys


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def stdout_width() -> int | None:
    """The terminal's width (``COLUMNS`` first), or None into a pipe or a file: no limit there."""
    if not stdout_is_terminal():
        return None
    return shutil.get_terminal_size((80, 24)).columns


def stdout_colour() -> bool:
    """Colours only on a terminal, and never with ``NO_COLOR`` set (https://no-color.org)."""
    return stdout_is_terminal() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
