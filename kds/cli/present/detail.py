"""``kds incidents get`` on a terminal: aligned ``field: value`` lines."""

from __future__ import annotations

from typing import TextIO

from kds.cli.present.columns import Incident, resource_text
from kds.cli.present.machine import cell


def render_detail(incident: Incident, *, out: TextIO) -> None:
    """One incident as aligned ``field  value`` lines; JSON objects indented below their field."""
    width = max(len(key) for key in incident)
    for key, value in incident.items():
        if isinstance(value, dict):
            if key == "resource":
                out.write(f"{key:<{width}}  {resource_text(incident)}\n")
                continue
            out.write(f"{key}:\n")
            for inner_key, inner in value.items():
                out.write(f"  {inner_key}: {cell(inner)}\n")
        else:
            out.write(f"{key:<{width}}  {cell(value)}\n")
