"""`assay serve`: the web app (upload a table, run an audit, read the report)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from assay.cli import app


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workdir: Annotated[Path | None, typer.Option(
        help="Folder for uploads and reports (default: a temporary folder).")] = None,
    max_upload_mb: Annotated[float, typer.Option(help="Largest accepted CSV, in MB.")] = 20.0,
) -> None:
    """Serve the web app: upload a CSV, pick target and protected columns, read the report."""
    import uvicorn

    from assay._validation import check_scalar
    from assay.web import create_app

    check_scalar(port, "--port", kind=int, low=0, high=65535)
    check_scalar(max_upload_mb, "--max-upload-mb", low=0, low_open=True)
    web = create_app(workdir, max_upload_bytes=int(max_upload_mb * 1024 * 1024))
    typer.echo(f"assay web app on http://{host}:{port}/ (Ctrl+C to stop)")
    uvicorn.run(web, host=host, port=port, log_level="warning")
