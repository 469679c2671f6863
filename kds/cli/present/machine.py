"""Machine formats: csv, ndjson, json, yaml. Nothing but data goes to the output.

JSON documents are written compact into a pipe and indented on a terminal (docs/terminal.md).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

import orjson

from kds.cli.present.columns import Incident

CSV_FIELDS = [
    "id", "action_id", "correlation_id", "action_timestamp", "severity", "namespace", "cluster",
    "environment", "alert_name", "action_type", "execution_status", "resource_kind", "resource_name",
    "model_used", "model_confidence", "effectiveness_score", "execution_duration_ms",
]  # fmt: skip


def cell(value: Any) -> str:
    return "" if value is None else str(value)


def _csv_row(incident: Incident) -> list[str]:
    resource = incident.get("resource") or {}
    flat = {**incident, "resource_kind": resource.get("kind"), "resource_name": resource.get("name")}
    return [cell(flat.get(field)) for field in CSV_FIELDS]


class CsvWriter:
    """CSV rows under one header line (written with the first rows, or by :meth:`header`)."""

    def __init__(self, out: TextIO, *, headers: bool) -> None:
        self._writer = csv.writer(out, lineterminator="\n")
        self._header_due = headers

    def header(self) -> None:
        if self._header_due:
            self._writer.writerow(CSV_FIELDS)
            self._header_due = False

    def write(self, rows: Iterable[Incident]) -> int:
        self.header()
        count = 0
        for row in rows:
            self._writer.writerow(_csv_row(row))
            count += 1
        return count


def write_csv(rows: Iterable[Incident], *, headers: bool, out: TextIO) -> int:
    return CsvWriter(out, headers=headers).write(rows)


def write_ndjson(documents: Iterable[str | bytes], *, out: TextIO) -> int:
    count = 0
    for document in documents:
        out.write(orjson.dumps(orjson.loads(document)).decode() + "\n")
        count += 1
    return count


def json_text(document: Any, *, indent: bool) -> str:
    """One JSON document: indented (two spaces) for a terminal, compact for a pipe."""
    return orjson.dumps(document, option=orjson.OPT_INDENT_2 if indent else 0).decode()


def write_json_array(documents: Iterable[str], *, out: TextIO, indent: bool = False) -> int:
    """A JSON array written as rows arrive (``--all``): memory stays flat."""
    count = 0
    out.write("[")
    for document in documents:
        text = json_text(orjson.loads(document), indent=indent)
        if indent:
            text = "\n" + "\n".join("  " + line for line in text.splitlines())
        out.write(("," if count else "") + text)
        count += 1
    out.write("\n]\n" if indent and count else "]\n")
    return count


def write_yaml_list(rows: Iterable[Incident], *, out: TextIO) -> int:
    """A YAML sequence written one item at a time."""
    import yaml

    count = 0
    for row in rows:
        out.write(yaml.safe_dump([row], allow_unicode=True, sort_keys=False))
        count += 1
    if not count:
        out.write("[]\n")
    return count


def yaml_document(document: Any) -> str:
    import yaml

    return yaml.safe_dump(document, allow_unicode=True, sort_keys=False)


def parsed(documents: Iterable[str | bytes]) -> Iterator[Incident]:
    for document in documents:
        yield orjson.loads(document)
