"""Presenters of incidents for the terminal and for scripts: table, wide, json, yaml, csv, ndjson.

Machine formats write nothing but data to stdout. Every function takes already-validated rows.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from enum import StrEnum
from typing import Any, TextIO

import orjson


class OutputFormat(StrEnum):
    table = "table"
    wide = "wide"
    json = "json"
    yaml = "yaml"
    csv = "csv"
    ndjson = "ndjson"


# (header, how to read it from an incident) for table/wide/csv.
Column = tuple[str, Callable[[dict[str, Any]], Any]]


def _get(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda incident: incident.get(key)


def _resource(incident: dict[str, Any]) -> str:
    resource = incident.get("resource") or {}
    return f"{resource.get('kind', '')}/{resource.get('name', '')}"


TABLE_COLUMNS: list[Column] = [
    ("ID", _get("id")),
    ("TIME", lambda i: (i.get("action_timestamp") or "")[:19].replace("T", " ")),
    ("SEVERITY", _get("severity")),
    ("NAMESPACE", _get("namespace")),
    ("ALERT", _get("alert_name")),
    ("ACTION", _get("action_type")),
    ("STATUS", _get("execution_status")),
]
WIDE_COLUMNS: list[Column] = [
    *TABLE_COLUMNS,
    ("CLUSTER", _get("cluster")),
    ("ENVIRONMENT", _get("environment")),
    ("RESOURCE", _resource),
    ("MODEL", _get("model_used")),
    ("CONFIDENCE", _get("model_confidence")),
    ("EFFECTIVENESS", _get("effectiveness_score")),
    ("DURATION_MS", _get("execution_duration_ms")),
]
CSV_FIELDS = [
    "id", "action_id", "correlation_id", "action_timestamp", "severity", "namespace", "cluster",
    "environment", "alert_name", "action_type", "execution_status", "resource_kind", "resource_name",
    "model_used", "model_confidence", "effectiveness_score", "execution_duration_ms",
]  # fmt: skip


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def render_table(rows: Iterable[dict[str, Any]], *, wide: bool, headers: bool, out: TextIO) -> int:
    """A kubectl-like table fitted to the terminal; returns the number of rows written."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console(file=out, soft_wrap=False, highlight=False)
    if not console.is_terminal:
        console.width = 1000  # never wrap when piped; the columns keep their natural width
    table = Table(box=box.SIMPLE_HEAD if headers else None, show_header=headers, pad_edge=False, show_edge=False)
    columns = WIDE_COLUMNS if wide else TABLE_COLUMNS
    for header, _ in columns:
        table.add_column(header, overflow="ellipsis", no_wrap=True, header_style="bold" if headers else "")
    count = 0
    for row in rows:
        table.add_row(*(_cell(read(row)) for _, read in columns))
        count += 1
    if count:
        console.print(table)
    return count


def _csv_row(incident: dict[str, Any]) -> list[Any]:
    resource = incident.get("resource") or {}
    flat = {**incident, "resource_kind": resource.get("kind"), "resource_name": resource.get("name")}
    return [_cell(flat.get(field)) for field in CSV_FIELDS]


def write_csv(rows: Iterable[dict[str, Any]], *, headers: bool, out: TextIO) -> int:
    writer = csv.writer(out, lineterminator="\n")
    if headers:
        writer.writerow(CSV_FIELDS)
    count = 0
    for row in rows:
        writer.writerow(_csv_row(row))
        count += 1
    return count


def write_ndjson(documents: Iterable[str], *, out: TextIO) -> int:
    count = 0
    for document in documents:
        out.write(orjson.dumps(orjson.loads(document)).decode() + "\n")
        count += 1
    return count


def write_json_array(documents: Iterable[str], *, out: TextIO) -> int:
    """A JSON array written as rows arrive (``--all``): memory stays flat."""
    count = 0
    out.write("[")
    for document in documents:
        out.write(("," if count else "") + orjson.dumps(orjson.loads(document)).decode())
        count += 1
    out.write("]\n")
    return count


def write_yaml_list(rows: Iterable[dict[str, Any]], *, out: TextIO) -> int:
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


def json_document(document: Any) -> str:
    return orjson.dumps(document).decode()


def parsed(documents: Iterable[str]) -> Iterator[dict[str, Any]]:
    for document in documents:
        yield orjson.loads(document)


def render_detail(incident: dict[str, Any], *, out: TextIO) -> None:
    """One incident as aligned ``field: value`` lines; JSON objects indented below their field."""
    width = max(len(key) for key in incident)
    for key, value in incident.items():
        if isinstance(value, dict):
            if key == "resource":
                out.write(f"{key:<{width}}  {_resource(incident)}\n")
                continue
            out.write(f"{key}:\n")
            for inner_key, inner in value.items():
                out.write(f"  {inner_key}: {_cell(inner)}\n")
        else:
            out.write(f"{key:<{width}}  {_cell(value)}\n")
