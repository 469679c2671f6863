"""The root command group: every way a ``kds`` command can end that is not its own doing (docs/cli.md).

- a usage error (unknown option, bad value, missing argument): ``invalid-parameter: <detail>``, exit 2;
- the reader of stdout went away (``kds incidents list --all -o ndjson | head -1``): quietly, exit 0;
- an unexpected exception (a bug): ``internal-error: <what happened>`` and how to see the traceback
  (``KDS_DEBUG=1``), exit 1.

Expected failures (``slug: detail``) are reported by each command (``kds.cli.common.reports_errors``).
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from typer.core import TyperGroup

if TYPE_CHECKING:
    from typer._click.core import Context  # typer ships its own click; only the type is needed

EXIT_FAILURE = 1
DEBUG_VARIABLE = "KDS_DEBUG"


def debugging() -> bool:
    return os.environ.get(DEBUG_VARIABLE, "") not in ("", "0")


def usage_message(error: typer.TyperException) -> str:
    """One line: ``invalid-parameter: <detail> (see '<command> -h')``."""
    detail = " ".join(error.format_message().split())
    ctx = getattr(error, "ctx", None)  # usage errors know the command they concern
    where = f" (see '{ctx.command_path} -h')" if ctx is not None else ""
    return f"invalid-parameter: {detail}{where}"


def bug_message(error: BaseException) -> str:
    what = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    if debugging():
        return f"internal-error: {what}"
    return f"internal-error: {what} (a bug in kds; set {DEBUG_VARIABLE}=1 to see the traceback)"


def silence_stdout() -> None:
    """Point stdout at /dev/null, so that the flush at interpreter exit cannot fail again (as the Python
    documentation recommends for SIGPIPE/BrokenPipeError)."""
    try:
        fileno = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):
        return  # not a real file (a test runner's buffer)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fileno)
    os.close(devnull)


def stdout_flushed() -> bool:
    """Flush stdout; False (and stdout silenced) when its reader has gone away."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()
        return False
    return True


class KdsGroup(TyperGroup):
    """Typer's group, with kds's one-line usage errors, quiet closed pipes and reported bugs."""

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.TyperException, typer.Abort):
            raise
        except BrokenPipeError:
            silence_stdout()
            raise typer.Exit(0) from None
        except Exception as error:
            if debugging():
                traceback.print_exc(file=sys.stderr)
            print(bug_message(error), file=sys.stderr)
            raise typer.Exit(EXIT_FAILURE) from None

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.TyperException as error:  # click's usage errors (typer ships its own click)
            if type(error).__name__ == "NoArgsIsHelpError":
                print(error.format_message(), file=sys.stderr)  # the command's help, as click prints it
            else:
                print(usage_message(error), file=sys.stderr)
            code = error.exit_code
        except typer.Abort:
            print("aborted", file=sys.stderr)
            code = EXIT_FAILURE
        if not standalone_mode:
            return code
        exit_with(code if isinstance(code, int) else 0)


def exit_with(code: int) -> NoReturn:
    if not stdout_flushed():
        code = 0
    sys.exit(code)
