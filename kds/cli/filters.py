"""The incident filter options, declared once for ``kds incidents list`` and ``kds incidents summary``.

Every filter is declared as a list so that a repeated option reaches the query core as it was given:
the core joins repeated list filters (``-s critical -s high`` = ``critical,high``) and rejects any
other filter given twice (``invalid-parameter``); the CLI validates nothing itself.
"""

from __future__ import annotations

from typing import Any

import typer

from kds.query.times import AGE_EXAMPLES

NamespaceOption = typer.Option(None, "-n", "--namespace", metavar="NS", help="Exact namespace.", show_default=False)
SeverityOption = typer.Option(
    None,
    "-s",
    "--severity",
    metavar="SEVERITY",
    help="info, warning, critical, high, medium, low; several: -s critical -s high or critical,high.",
    show_default=False,
)
ClusterOption = typer.Option(None, "--cluster", metavar="CLUSTER", help="Exact cluster name.", show_default=False)
EnvironmentOption = typer.Option(
    None,
    "-e",
    "--environment",
    metavar="ENV",
    help="production, staging, development, test; several: repeat or comma-separate.",
    show_default=False,
)
ActionTypeOption = typer.Option(None, "--action-type", metavar="TYPE", help="Exact action type.", show_default=False)
AlertNameOption = typer.Option(None, "--alert-name", metavar="ALERT", help="Exact alert name.", show_default=False)
StatusOption = typer.Option(
    None,
    "--status",
    metavar="STATUS",
    help="Execution status (completed, failed, pending, ...); several: repeat or comma-separate.",
    show_default=False,
)
SinceOption = typer.Option(
    None,
    "--since",
    metavar="TIME",
    help=f"RFC 3339 time or an age ({AGE_EXAMPLES}: that long ago).",
    show_default=False,
)
UntilOption = typer.Option(
    None, "--until", metavar="TIME", help="RFC 3339 time or an age (exclusive).", show_default=False
)


def filter_params(**options: list[str] | None) -> dict[str, Any]:
    """The options that were given, by the core's parameter names (a list per option, as typer collected it)."""
    return {name: values for name, values in options.items() if values}
