"""The root ``kds`` command. Sub-commands import their heavy dependencies lazily."""

from __future__ import annotations

import typer

from kds import __version__
from kds.cli import auth, db, incidents, serve, validate
from kds.cli.group import KdsGroup

app = typer.Typer(
    name="kds",
    cls=KdsGroup,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Incident database toolkit: inspect incidents, validate infrastructure, serve the REST API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)
app.add_typer(incidents.app, name="incidents")
app.add_typer(db.app, name="db")
app.command("validate-infra")(validate.validate_infra)
app.command("serve")(serve.serve)
app.add_typer(auth.app, name="auth")


def _version(value: bool) -> None:
    if value:
        print(f"kds {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """kds: the data-storage toolkit of the Kubernetes remediation platform."""


def main() -> None:
    app()
