"""`assay serve`: the web app (upload a table, run an audit, read the report)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from assay.cli import app

_LOCAL = ("127.0.0.1", "localhost", "::1", "[::1]")


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(
        help="Interface to listen on. Anything but localhost makes the app (which has no "
             "login) reachable from other machines.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workdir: Annotated[Path | None, typer.Option(
        help="Folder for uploads and reports, made private (0700; refused if another user "
             "owns it); default: a temporary folder removed on exit.")] = None,
    max_upload_mb: Annotated[float, typer.Option(help="Largest accepted CSV, in MB.")] = 20.0,
    allowed_host: Annotated[list[str] | None, typer.Option(
        help="Another host name the app answers to (repeatable), e.g. the machine's name "
             "when listening on 0.0.0.0. localhost and the bound host always are.")] = None,
    retention_minutes: Annotated[float, typer.Option(
        help="Minutes an upload and a finished audit's files are kept; all are deleted "
             "on exit.")] = 60.0,
    max_queued: Annotated[int, typer.Option(
        help="Audits that may wait behind the running one; more are refused (429).")] = 8,
    max_client_uploads: Annotated[int, typer.Option(
        help="Uploads one client (remote address; behind a proxy, the proxy's) may keep at "
             "once; more are refused (429) until the oldest expires.")] = 10,
    max_client_mb: Annotated[float | None, typer.Option(
        help="MB of uploads one client may keep at once (default: 5 x --max-upload-mb).")
    ] = None,
    max_total_uploads: Annotated[int, typer.Option(
        help="Uploads kept at once for all clients together.")] = 100,
    max_total_mb: Annotated[float | None, typer.Option(
        help="MB of uploads kept at once for all clients (default: 50 x --max-upload-mb).")
    ] = None,
) -> None:
    """Serve the web app: upload a CSV, pick target and protected columns, read the report."""
    import os

    from assay._validation import check_scalar

    check_scalar(port, "--port", kind=int, low=0, high=65535)
    check_scalar(max_upload_mb, "--max-upload-mb", low=0, low_open=True)
    check_scalar(retention_minutes, "--retention-minutes", low=0, low_open=True)
    check_scalar(max_queued, "--max-queued", kind=int, low=1)
    # The same bounds as create_app's, named by their flags.
    check_scalar(max_client_uploads, "--max-client-uploads", kind=int, low=1)
    check_scalar(max_total_uploads, "--max-total-uploads (at least --max-client-uploads)",
                 kind=int, low=max_client_uploads)
    client_mb = 5 * max_upload_mb if max_client_mb is None else check_scalar(
        max_client_mb, "--max-client-mb (at least --max-upload-mb)", low=max_upload_mb)
    if max_total_mb is not None:
        check_scalar(max_total_mb, "--max-total-mb (at least --max-client-mb)", low=client_mb)
    if workdir is not None and workdir.exists() and not workdir.is_dir():
        from assay._validation import InvalidParameterError

        raise InvalidParameterError(f"--workdir must be a folder. Got the file {workdir}.")

    import uvicorn

    from assay.web import create_app

    # Everything this process writes (uploads, results, reports) is its owner's alone.
    os.umask(0o077)
    mib = 1024 * 1024
    web = create_app(workdir, max_upload_bytes=int(max_upload_mb * mib), host=host,
                     allowed_hosts=allowed_host or (), retention_s=retention_minutes * 60,
                     max_queued=max_queued, max_client_uploads=max_client_uploads,
                     max_client_bytes=None if max_client_mb is None else int(max_client_mb * mib),
                     max_total_uploads=max_total_uploads,
                     max_total_bytes=None if max_total_mb is None else int(max_total_mb * mib))
    if host.lower() not in _LOCAL:
        names = ", ".join(sorted(web.guard_hosts))
        typer.echo(f"warning: --host {host} makes this app reachable from other machines; "
                   f"it has no login, so anyone who can reach port {port} can upload tables "
                   f"and read their reports. It answers to the host names: {names} "
                   f"(add one with --allowed-host).", err=True)
    typer.echo(f"assay web app on http://{host}:{port}/ (Ctrl+C to stop)")
    # The quota's client is the socket's peer: X-Forwarded-For, which any local user
    # could set, is not trusted (behind a proxy every user shares the proxy's quota).
    uvicorn.run(web, host=host, port=port, log_level="warning", proxy_headers=False)
