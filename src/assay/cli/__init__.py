"""The `assay` command: one typer app; each area registers its commands from its own module."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import click
import typer
from rich.console import Console
from rich.text import Text

from assay._validation import AssayError

app = typer.Typer(
    name="assay",
    help="Audit models trained on sensitive tabular data: privacy, fairness, arbitrariness.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

_err = Console(stderr=True, highlight=False)


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
        result = app(args=argv, standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        _err.print("aborted")
        return 130
    except click.ClickException as exc:
        _error_line(exc.format_message())
        return 2
    except AssayError as exc:
        _error_line(str(exc))
        return 2
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
