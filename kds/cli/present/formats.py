"""The output formats of ``kds incidents`` (kubectl's names)."""

from __future__ import annotations

from enum import StrEnum


class OutputFormat(StrEnum):
    table = "table"
    wide = "wide"
    json = "json"
    yaml = "yaml"
    csv = "csv"
    ndjson = "ndjson"


# What ``--watch`` can write: formats that grow by appending lines.
WATCH_FORMATS = (OutputFormat.table, OutputFormat.wide, OutputFormat.ndjson, OutputFormat.csv)
