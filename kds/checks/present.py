"""Presenters of check outcomes: a rich table or plain lines, JSON, JUnit XML (docs/validate-infra.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from kds.checks.runner import Outcome, Status

if TYPE_CHECKING:
    from rich.console import Console

SYMBOLS = {Status.PASS: "✔", Status.WARN: "⚠", Status.FAIL: "✖", Status.SKIP: "\u2013"}  # en dash
STYLES = {Status.PASS: "green", Status.WARN: "yellow", Status.FAIL: "bold red", Status.SKIP: "dim"}


def summary(outcomes: Sequence[Outcome]) -> dict[str, int]:
    counts = {status.value: 0 for status in Status}
    for outcome in outcomes:
        counts[outcome.status.value] += 1
    return counts


def exit_code(outcomes: Sequence[Outcome], *, strict: bool) -> int:
    """0 no failures, 1 at least one failure (or, with ``strict``, a warning)."""
    failing = {Status.FAIL, Status.WARN} if strict else {Status.FAIL}
    return 1 if any(outcome.status in failing for outcome in outcomes) else 0


def summary_line(outcomes: Sequence[Outcome], *, strict: bool = False) -> str:
    counts = summary(outcomes)
    verdict = "FAILED" if exit_code(outcomes, strict=strict) else "OK"
    strict_note = " (strict: warnings fail)" if strict and counts["warn"] else ""
    return (
        f"{verdict}: {len(outcomes)} checks, {counts['pass']} passed, {counts['warn']} warned, "
        f"{counts['fail']} failed, {counts['skip']} skipped{strict_note}"
    )


def to_document(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """The JSON document: ``{"checks": [...], "summary": {...}}`` (docs/validate-infra.md)."""
    return {
        "checks": [
            {
                "id": outcome.id,
                "status": outcome.status.value,
                "message": outcome.message,
                "fix": outcome.fix,
                "duration_ms": outcome.duration_ms,
            }
            for outcome in outcomes
        ],
        "summary": summary(outcomes),
    }


def to_json(outcomes: Sequence[Outcome]) -> str:
    import orjson

    return orjson.dumps(to_document(outcomes)).decode() + "\n"


def render_table(outcomes: Sequence[Outcome], console: Console, *, strict: bool = False) -> None:
    """A rich table: status symbol, id, message, and the fix under every failure or warning."""
    from rich.table import Table
    from rich.text import Text

    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("result")
    for outcome in outcomes:
        style = STYLES[outcome.status]
        detail = Text(outcome.message, style="dim" if outcome.status is Status.SKIP else "")
        if outcome.fix and outcome.status in (Status.FAIL, Status.WARN):
            detail.append("\nfix: ", style="bold")
            detail.append(outcome.fix)
        table.add_row(Text(SYMBOLS[outcome.status], style=style), Text(outcome.id, style=style), detail)
    console.print(table)
    verdict_style = "bold red" if exit_code(outcomes, strict=strict) else "bold green"
    console.print(Text(summary_line(outcomes, strict=strict), style=verdict_style))


def render_plain(outcomes: Sequence[Outcome], stream: TextIO, *, strict: bool = False) -> None:
    """Plain lines for logs and pipes: ``PASS  id  message`` and an indented ``fix:`` line."""
    width = max((len(outcome.id) for outcome in outcomes), default=0)
    for outcome in outcomes:
        stream.write(f"{outcome.status.value.upper():<4}  {outcome.id:<{width}}  {outcome.message}\n")
        if outcome.fix and outcome.status in (Status.FAIL, Status.WARN):
            stream.write(f"{'':<4}  {'':<{width}}  fix: {outcome.fix}\n")
    stream.write(summary_line(outcomes, strict=strict) + "\n")


def to_junit(outcomes: Sequence[Outcome], *, strict: bool = False) -> bytes:
    """JUnit XML: one testcase per check; fail → <failure>, skip → <skipped>; with ``strict``, warn → <failure>."""
    import xml.etree.ElementTree as ET

    failing = {Status.FAIL, Status.WARN} if strict else {Status.FAIL}
    counts = summary(outcomes)
    total_seconds = sum(outcome.duration_ms for outcome in outcomes) / 1000
    failures = sum(1 for outcome in outcomes if outcome.status in failing)
    attributes = {
        "name": "kds validate-infra",
        "tests": str(len(outcomes)),
        "failures": str(failures),
        "errors": "0",
        "skipped": str(counts["skip"]),
        "time": f"{total_seconds:.3f}",
    }
    root = ET.Element("testsuites", attributes)
    suite = ET.SubElement(root, "testsuite", attributes)
    for outcome in outcomes:
        case = ET.SubElement(
            suite,
            "testcase",
            {"classname": "kds.validate-infra", "name": outcome.id, "time": f"{outcome.duration_ms / 1000:.3f}"},
        )
        if outcome.status in failing:
            failure = ET.SubElement(case, "failure", {"message": outcome.message, "type": outcome.status.value})
            failure.text = f"{outcome.message}\nfix: {outcome.fix}" if outcome.fix else outcome.message
        elif outcome.status is Status.SKIP:
            ET.SubElement(case, "skipped", {"message": outcome.message})
        else:
            out = ET.SubElement(case, "system-out")
            out.text = f"{outcome.message}\nfix: {outcome.fix}" if outcome.fix else outcome.message
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)  # typeshed: Any for an encoding
    return document + b"\n"
