"""The `assay` command: one typer app; each area registers its commands from its own module.

Start-up stays fast (``assay --help`` well under half a second): the command modules
import numpy, pandas, torch, dp_accounting and the rest inside the command functions.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Callable

import typer
from rich.console import Console
from rich.text import Text
from typer._click.exceptions import NoArgsIsHelpError

from assay._validation import AssayError

app = typer.Typer(
    name="assay",
    help="Audit models trained on sensitive tabular data: privacy, fairness, arbitrariness.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

@app.callback()
def _root() -> None:
    """Audit models trained on sensitive tabular data: privacy, fairness, arbitrariness."""


_err = Console(stderr=True, highlight=False)

#: Hooks `main` runs after the commands are registered and before the app parses argv.
_BEFORE_RUN: list[Callable[[], None]] = []


def before_run(fn: Callable[[], None]) -> Callable[[], None]:
    """Register `fn` to run in every `main` call, after `_register` and before parsing.

    For commands whose flags depend on run-time registries (the ``audit`` command
    rebuilds its options from the registered audit sections). Hooks take no arguments,
    run in registration order on every call (so they must be idempotent), and should
    stay cheap: ``assay --help`` runs them too. An `AssayError` they raise is printed
    as one error line, like a command's.

    Returns
    -------
    fn
        Unchanged, so this works as a decorator.
    """
    if fn not in _BEFORE_RUN:  # registering the same function again adds nothing
        _BEFORE_RUN.append(fn)
    return fn


def split_names(values: list[str] | None) -> list[str]:
    """Repeated and/or comma-separated option values, in order (``--protected sex,race``)."""
    return [part.strip() for item in values or [] for part in str(item).split(",")
            if part.strip()]


def _register() -> None:
    # Each module of this package adds its own commands to `app`; imported here, not at
    # the top, so that `import assay` stays light.
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


def _error_line(message: str) -> None:
    # Text, not markup: messages hold intervals such as "[0, 1]".
    _err.print(Text.assemble(("error: ", "bold red"), message), soft_wrap=True)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors print one line (no traceback) and exit with status 2."""
    _register()
    try:
        for hook in _BEFORE_RUN:
            hook()
        result = app(args=argv, standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        _err.print("aborted")
        return 130
    except NoArgsIsHelpError:  # typer has already printed the help
        return 0
    except typer.TyperException as exc:  # typer's (vendored click) usage errors
        _error_line(exc.format_message())
        return 2
    except AssayError as exc:
        _error_line(str(exc))
        return 2
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
