"""`assay version`."""

import typer

from assay import __version__
from assay.cli import app


@app.command("version")
def version() -> None:
    """Print the installed version."""
    typer.echo(__version__)
