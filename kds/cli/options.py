"""Options backed by a ``KDS_*`` setting: the option wins, else the settings model reads the variable."""

from __future__ import annotations

from typing import Any

import typer


def setting_option(flag: str, metavar: str, help: str, *, default: str, env: str | None = None) -> Any:
    """``--flag``, None unless given (:func:`kds.settings.load_settings` then reads the variable).

    The help ends with ``[env: KDS_FLAG; default: ...]``; ``env`` names a variable not spelt like the flag.
    """
    variable = env or "KDS_" + flag.removeprefix("--").replace("-", "_").upper()
    return typer.Option(
        None, flag, metavar=metavar, help=f"{help} [env: {variable}; default: {default}].", show_default=False
    )
