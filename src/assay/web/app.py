"""A small web app around `run_audit`: upload a CSV, pick columns, watch, read the report.

Routes
------
``GET /``                         the page (inline CSS and JS, nothing external); its
                                  form's limits are rendered in from `/api/limits`
``GET /api/limits``               what the server accepts: models (min, max, default),
                                  upload size, quotas, retention
``POST /api/upload``              multipart ``file``: checked (size, type, parse, columns),
                                  stored under the work folder; returns its columns
``POST /api/audit``               JSON ``{upload_id, target, protected, models}``: checks the
                                  table as a `Dataset`, queues the audit, returns ``{job_id,
                                  task}``; the task is detected from the target (a continuous
                                  one is audited as a regression model, as by ``assay
                                  audit``) unless ``task`` says ``classification`` or
                                  ``regression`` (``--task``), and ``decision_threshold``
                                  (``--decision-threshold``) is a regression target's;
                                  with ``synthetic_upload_id`` and
                                  ``synthetic_holdout_upload_id`` (two more uploads: a
                                  synthetic release of the table and rows its generator
                                  never saw) the audit runs its ``synthetic`` section, as
                                  ``assay audit --synthetic S --synthetic-holdout H`` does;
                                  ``synthetic_generator`` (a spec such as ``marginals``,
                                  as ``--synthetic-generator``) names the release's
                                  generator when known and adds the shadow-generator
                                  attack
``GET /api/jobs/{job_id}``        status: state, stage, fraction, error, report URL, files
``DELETE /api/jobs/{job_id}``     cancel a queued or running audit; delete a finished one
``POST /api/jobs/{job_id}/cancel``  cancel a queued or running audit
``GET /jobs/{job_id}/report``     the self-contained HTML report
``GET /jobs/{job_id}/result.json``
``GET /jobs/{job_id}/files/{path}``  a file the audit wrote (model card, exported model, ...)

Every error the user can cause comes back as JSON ``{"error": "..."}`` with a 4xx status
(400 bad input, 403 cross-site, 404 unknown, 409 finished, 413 too large, 415 not JSON,
429 queue full or upload quota reached) and is shown in the page. An audit request is
checked up front by the checks ``assay audit`` runs before any work (`assay.audit.prepare`):
a population too small for an attack is a 400 at once, not a failed job later.

Safety (see `assay.web.guard` for the request checks): uploads and job folders are
private (folders 0700, files 0600), deleted ``retention_s`` after they were made or the
audit ended, and when the app shuts down; at most ``max_queued`` audits wait; a
cancelled running audit stops at its next stage.

Upload quotas bound what is kept at once, per client and in all: a count and a number of
bytes each (429, saying which limit was hit and when the oldest upload expires). A
*client* is the remote address the app sees (``request.client``): behind a reverse proxy
every user shares the proxy's address, and so its quota (``assay serve`` does not trust
``X-Forwarded-For``, which any local user could set).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import hashlib
import io
import json
import re
import tempfile
import time
import uuid
from collections.abc import Sequence
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from assay._validation import AssayError, InvalidParameterError, check_scalar
from assay.web.files import (
    _ID,
    SAFE_SUFFIXES,
    _make_private,
    _open_job_file,
    _private_workdir,
    _read_fd,
    _Refused,
    _remove,
    _servable_files,
    _write_private,
)
from assay.web.guard import (
    JSON_BODY_LIMIT,
    MULTIPART_SLACK,
    BodyTooLarge,
    Guard,
    allowed_host_names,
)
from assay.web.jobs import (
    _FINISHED,
    MAX_CLIENT_UPLOADS,
    MAX_MODELS,
    MAX_TOTAL_UPLOADS,
    Job,
    TaskChoice,
    Upload,
    _Cancelled,
    _load_and_check,
    _mb,
    _quotas,
    _State,
)

__all__ = ["create_app", "MAX_UPLOAD_BYTES", "RETENTION_SECONDS", "MAX_QUEUED", "SAFE_SUFFIXES",
           "MAX_CLIENT_UPLOADS", "MAX_TOTAL_UPLOADS", "MAX_MODELS"]

#: Default upload limit (bytes).
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
#: Default time uploads and finished audits are kept (seconds).
RETENTION_SECONDS = 3600.0
#: Default number of audits that may wait behind the running one.
MAX_QUEUED = 8
#: Rows an uploaded table must have for an audit to mean anything.
MIN_ROWS = 50
_CSV_TYPES = {"text/csv", "application/csv", "application/vnd.ms-excel", "text/plain",
              "application/octet-stream", ""}
_REPORT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
               "frame-ancestors 'self'; base-uri 'none'; form-action 'none'; sandbox")


# --------------------------------------------------------------------------- files


# --------------------------------------------------------------------------- helpers


def _error(message: str, status: int = 400, headers: dict[str, str] | None = None
           ) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _client(request: Request) -> str:
    """The quota's client: the remote address as this app sees it (a proxy's, behind one)."""
    return request.client.host if request.client is not None else "unknown"


def _upload_dir(state: _State, upload_id: Any) -> Path | None:
    if not isinstance(upload_id, str) or not _ID.match(upload_id):
        return None
    folder = state.uploads_dir / upload_id
    return folder if (folder / "data.csv").is_file() else None


def _page_csp(text: str) -> str:
    """CSP of the page: its one inline script and style by hash, fetches to itself only."""
    def hashes(tag: str) -> str:
        blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", text, flags=re.S)
        return " ".join("'sha256-" + base64.b64encode(hashlib.sha256(b.encode()).digest())
                        .decode() + "'" for b in blocks)

    return (f"default-src 'none'; script-src {hashes('script')}; style-src {hashes('style')}; "
            "connect-src 'self'; img-src 'self' data:; frame-src 'self'; form-action 'self'; "
            "base-uri 'none'; frame-ancestors 'none'")


def _limits(state: _State) -> dict[str, Any]:
    low, high = state.models_range()
    default = state.defaults.get("models", 16)
    default = default if isinstance(default, int) and low <= default <= high else low
    quotas = state.quotas
    return {"models": {"min": low, "max": high, "step": 2, "default": default},
            "max_upload_bytes": state.max_upload_bytes,
            "quotas": {"client_uploads": quotas.client_uploads,
                       "client_bytes": quotas.client_bytes,
                       "total_uploads": quotas.total_uploads,
                       "total_bytes": quotas.total_bytes},
            "retention_s": state.retention_s}


async def _page(request: Request) -> HTMLResponse:
    state: _State = request.app.state.assay
    text = resources.files("assay.web").joinpath("index.html").read_text(encoding="utf-8")
    limits = await asyncio.to_thread(_limits, state)
    quotas = state.quotas
    # Outside the script and style blocks: their CSP hashes do not change.
    for key, value in {"MODELS_MIN": limits["models"]["min"],
                       "MODELS_MAX": limits["models"]["max"],
                       "MODELS_DEFAULT": limits["models"]["default"],
                       "UPLOAD_LIMITS": f"at most {_mb(state.max_upload_bytes)} a file, "
                                        f"{quotas.client_uploads} files and "
                                        f"{_mb(quotas.client_bytes)} kept per client"}.items():
        text = text.replace(f"__{key}__", str(value))
    return HTMLResponse(text, headers={"Content-Security-Policy": _page_csp(text)})


async def _limits_route(request: Request) -> JSONResponse:
    return JSONResponse(await asyncio.to_thread(_limits, request.app.state.assay))


async def _json_body(request: Request) -> Any:
    """The JSON body; ValueError with the message to show for anything else."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise _Refused(415, f"the request must be JSON (Content-Type: application/json). "
                            f"Got {kind or 'none'}.")
    body = await request.body()
    try:
        return json.loads(body)
    except RecursionError:  # nesting deeper than the parser's stack
        raise _Refused(400, "the request is JSON nested too deeply.") from None
    except ValueError as exc:  # not JSON, not UTF-8, an integer of 4300+ digits
        raise _Refused(400, f"the request must be valid JSON: {str(exc)[:80]}") from None


# --------------------------------------------------------------------------- upload


def _parse_csv(payload: bytes, filename: str):
    """Parse the upload with pandas; a one-line message for anything unusable."""
    import pandas as pd

    if not payload.strip():
        raise ValueError(f"{filename} is empty.")
    try:
        text = payload.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(f"{filename} is not UTF-8 text; save it as a UTF-8 CSV.") from None
    try:
        frame = pd.read_csv(io.StringIO(text))
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
        raise ValueError(f"{filename} could not be parsed as CSV: {first}") from None
    if frame.shape[1] < 2:
        raise ValueError(f"{filename} has {frame.shape[1]} column(s); an audit needs a target "
                         f"and at least one other column (is the separator a comma?).")
    if len(frame) < MIN_ROWS:
        raise ValueError(f"{filename} has {len(frame)} rows; an audit needs at least {MIN_ROWS}.")
    # pandas renames a repeated header ("a", "a.1"); read the header as written instead.
    header = next(csv.reader(io.StringIO(text)), [])
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise ValueError(f"{filename} has duplicate column names: {', '.join(duplicated)}.")
    return frame


def _too_large(state: _State, filename: str = "the file") -> JSONResponse:
    return _error(f"{filename} is larger than the "
                  f"{state.max_upload_bytes / 1024 / 1024:g} MB limit.", 413)


async def _upload(request: Request) -> JSONResponse:
    state: _State = request.app.state.assay
    client = _client(request)
    with state.lock:  # a client at its count (or bytes) is refused before its body is read
        refusal = state.quota_refusal(client, None)
    if refusal is not None:
        return refusal
    try:
        # The guard counts the body as it arrives: reading stops at the limit.
        form = await request.form(max_files=1, max_fields=5)
    except BodyTooLarge:
        return _too_large(state)
    except Exception as exc:  # malformed multipart body
        return _error(f"the upload could not be read: {exc}")
    try:
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            return _error("choose a CSV file to upload.")
        filename = upload.filename or "upload"
        if not filename.lower().endswith(".csv") or upload.content_type not in _CSV_TYPES:
            return _error(f"{filename} is not a CSV file (.csv); got type "
                          f"{upload.content_type or 'unknown'}.")
        payload = await upload.read(state.max_upload_bytes + 1)
    finally:
        await form.close()  # the spooled part, if it went to a temporary file
    if len(payload) > state.max_upload_bytes:
        return _too_large(state, filename)
    try:
        frame = _parse_csv(payload, filename)
    except ValueError as exc:
        return _error(str(exc))
    upload_id = uuid.uuid4().hex
    with state.lock:  # checked and reserved at once: parallel uploads cannot both fit
        refusal = state.quota_refusal(client, len(payload))
        if refusal is not None:
            return refusal
        state.uploads[upload_id] = Upload(time.time(), client, len(payload))
    folder = state.uploads_dir / upload_id
    try:
        folder.mkdir(mode=0o700)
        _write_private(folder / "data.csv", payload)
        _write_private(folder / "name.txt", Path(filename).stem.encode("utf-8"))
    except BaseException:
        with state.lock:
            state.uploads.pop(upload_id, None)
        _remove(folder)
        raise
    from assay.data.task import looks_continuous

    # "continuous": chosen as the target, the column is audited as a regression model.
    columns = [{"name": str(c), "n_unique": int(frame[c].nunique()),
                "dtype": str(frame[c].dtype),
                "continuous": looks_continuous(frame[c]) is not None} for c in frame.columns]
    return JSONResponse({"upload_id": upload_id, "filename": filename,
                         "n_rows": int(len(frame)), "columns": columns})


# --------------------------------------------------------------------------- audits


def _synthetic_request(body: dict, state: _State, folder: Path) -> tuple[Path, Path] | None:
    """The upload folders of a synthetic release and its holdout, or None without them."""
    release_id = body.get("synthetic_upload_id")
    holdout_id = body.get("synthetic_holdout_upload_id")
    if release_id is None and holdout_id is None:
        return None
    if release_id is None:
        raise ValueError("upload the synthetic release too: a holdout alone audits nothing.")
    if holdout_id is None:
        raise ValueError("upload the synthetic release's holdout too (rows of the same "
                         "population its generator never saw): every risk is measured "
                         "against them.")
    release, holdout = _upload_dir(state, release_id), _upload_dir(state, holdout_id)
    if release is None:
        raise ValueError("upload the synthetic release again (the upload was not found).")
    if holdout is None:
        raise ValueError("upload the synthetic release's holdout again (the upload was not "
                         "found).")
    if len({folder, release, holdout}) < 3:
        raise ValueError("the table, the synthetic release and its holdout must be three "
                         "different uploads.")
    return release, holdout


def _synthetic_generator(body: dict) -> str | None:
    """The synthetic release's generator when the request names one (a spec the section
    checks as ``--synthetic-generator``), or None; only with a synthetic release."""
    generator = body.get("synthetic_generator")
    if generator is None:
        return None
    if not isinstance(generator, str) or not generator.strip():
        raise ValueError("synthetic_generator must be a generator's name, such as "
                         "marginals, or left out when the generator is unknown.")
    if body.get("synthetic_upload_id") is None:
        raise ValueError("upload the synthetic release too: a generator alone audits "
                         "nothing.")
    return generator.strip()


def _audit_request(body: Any, state: _State
                   ) -> tuple[Path, str, list[str], Any, tuple[Path, Path] | None, str | None,
                              TaskChoice]:
    """Check the JSON of an audit request; raise ValueError (or the `AssayError` of a bad
    task or threshold) with the message to show.

    Only its shape: the number of models is checked with every other option by
    `_check_audit`, as ``assay audit`` checks it, and the synthetic release's columns by
    `_load_and_check`.
    """
    if not isinstance(body, dict):
        raise ValueError("the request must be a JSON object.")
    folder = _upload_dir(state, body.get("upload_id"))
    if folder is None:
        raise ValueError("upload a CSV file first (the upload was not found).")
    target = body.get("target")
    protected = body.get("protected") or []
    if not isinstance(target, str) or not target:
        raise ValueError("choose the target column.")
    if not isinstance(protected, list) or not all(isinstance(p, str) for p in protected):
        raise ValueError("protected must be a list of column names.")
    if not protected:
        raise ValueError("choose at least one protected column.")
    if target in protected:
        raise ValueError(f"the target column {target!r} cannot also be protected.")
    if len(set(protected)) != len(protected):
        raise ValueError("protected must name each column once.")
    models = body.get("models")
    if models is None:
        models = state.defaults.get("models", 16)
    if isinstance(models, int | float) and not isinstance(models, bool) and models > MAX_MODELS:
        raise ValueError(f"models must be at most {MAX_MODELS} on this server. Got {models!r}.")
    task = TaskChoice.from_request(body.get("task"), body.get("decision_threshold"))
    generator = _synthetic_generator(body)
    return (folder, target, protected, models, _synthetic_request(body, state, folder),
            generator, task)


async def _start_audit(request: Request) -> JSONResponse:
    state: _State = request.app.state.assay
    job = Job(job_id=uuid.uuid4().hex, upload_id="")
    try:
        body = await _json_body(request)
        folder, target, protected, models, synthetic, generator, task = _audit_request(
            body, state)
        # Checked here, not in the thread: column, label and option problems (a population
        # too small for an attack, a release without the table's columns, an option a
        # regression target refuses) show up at once, as with `assay audit`.
        dataset, config = await asyncio.to_thread(_load_and_check, state, folder, target,
                                                  protected, models, job.job_id, synthetic,
                                                  task, generator)
    except BodyTooLarge:
        return _error("the request is too large for an audit request.", 413)
    except _Refused as exc:
        return _error(str(exc), exc.status)
    except (ValueError, AssayError) as exc:
        return _error(str(exc))
    job.upload_id = folder.name
    job.task = str(dataset.task)
    job.synthetic_upload_ids = () if synthetic is None else tuple(f.name for f in synthetic)
    with state.lock:
        if state.closing:
            return _error("the server is shutting down.", 503)
        waiting = sum(j.state == "queued" for j in state.jobs.values())
        if waiting >= state.max_queued:
            return _error(f"{waiting} audits are already waiting; try again when one has "
                          f"finished.", 429, headers={"Retry-After": "30"})
        state.jobs[job.job_id] = job
        job.future = state.executor.submit(_run_job, state, job, dataset, config)
    return JSONResponse({"job_id": job.job_id, "status_url": f"/api/jobs/{job.job_id}",
                         "task": job.task})


def _run_job(state: _State, job: Job, dataset, config) -> None:
    """Run one audit in the worker thread, recording its stage for the status endpoint."""
    from assay.audit import run_audit

    def on_stage(stage: str, fraction: float) -> None:
        # The only hook run_audit offers: a cancel takes effect at the next stage.
        if job.cancel.is_set():
            raise _Cancelled
        job.stage, job.fraction = stage, fraction

    with state.lock:
        if job.state != "queued":  # cancelled while it waited
            return
        job.state = "running"
    out = state.jobs_dir / job.job_id
    try:
        out.mkdir(mode=0o700)
        result = run_audit(config, dataset=dataset, progress=False, on_stage=on_stage)
        job.summary = [line for s in result.sections.values() for line in s.summary]
        job.state = "done"
    except _Cancelled:
        # Its folder goes before the state says so: a cancelled job has left nothing behind.
        _remove(out)
        job.state, job.stage = "cancelled", "cancelled"
    except AssayError as exc:
        job.state, job.error = "error", str(exc)
    except Exception as exc:  # noqa: BLE001 - a bug must still end the job visibly
        job.state, job.error = "error", f"internal error: {type(exc).__name__}: {exc}"
    finally:
        job.finished = time.time()
        if job.state == "cancelled" or state.closing:
            _remove(out)
            if state.closing and state.owns_workdir:
                _remove(state.workdir)
        else:
            _make_private(out)


def _job(request: Request) -> Job | None:
    state: _State = request.app.state.assay
    job_id = request.path_params["job_id"]
    return state.jobs.get(job_id) if _ID.match(job_id) else None


def _payload(state: _State, job: Job) -> dict[str, Any]:
    payload = {"job_id": job.job_id, "task": job.task, "state": job.state, "stage": job.stage,
               "fraction": round(job.fraction, 3), "error": job.error, "summary": job.summary,
               "cancel_requested": job.cancel.is_set() and job.state not in _FINISHED}
    if job.state == "done":
        payload["report_url"] = f"/jobs/{job.job_id}/report"
        payload["result_url"] = f"/jobs/{job.job_id}/result.json"
    if job.state in ("done", "error"):
        payload["files"] = [{"path": rel, "bytes": size,
                             "url": f"/jobs/{job.job_id}/files/{quote(rel)}"}
                            for rel, size in _servable_files(state.jobs_dir / job.job_id)]
    return payload


async def _status(request: Request) -> JSONResponse:
    job = _job(request)
    if job is None:
        return _error("no such audit.", 404)
    return JSONResponse(_payload(request.app.state.assay, job))


async def _cancel(request: Request) -> JSONResponse:
    """Cancel a queued audit (at once) or a running one (at its next stage).

    ``DELETE`` on a finished audit deletes it and its files; ``POST .../cancel`` on a
    finished audit is a 409.
    """
    state: _State = request.app.state.assay
    job = _job(request)
    if job is None:
        return _error("no such audit.", 404)
    with state.lock:
        if job.state == "queued":
            job.cancel.set()
            if job.future is not None:
                job.future.cancel()
            job.state, job.stage, job.finished = "cancelled", "cancelled", time.time()
        elif job.state == "running":
            job.cancel.set()
            job.stage = f"{job.stage} (cancelling at the next stage)"
        elif request.method == "DELETE":
            del state.jobs[job.job_id]
            _remove(state.jobs_dir / job.job_id)
            return JSONResponse({"job_id": job.job_id, "deleted": True})
        else:
            return _error(f"the audit has already finished ({job.state}).", 409)
        payload = _payload(state, job)
    return JSONResponse(payload, status_code=202 if job.state == "running" else 200)


def _job_file(request: Request, name: str, media_type: str,
              headers: dict[str, str] | None = None) -> Response:
    job = _job(request)
    state: _State = request.app.state.assay
    if job is None or job.state != "done":
        return _error("no finished audit with that id.", 404)
    path = state.jobs_dir / job.job_id / name
    if not path.is_file():
        return _error(f"the audit's {name} is gone (deleted after the retention period).",
                      404)
    return FileResponse(path, media_type=media_type, headers=headers)


async def _report(request: Request) -> Response:
    # Framed by the page (same origin only), sandboxed: no script runs in it.
    return _job_file(request, "report.html", "text/html; charset=utf-8",
                     {"Content-Security-Policy": _REPORT_CSP, "X-Frame-Options": "SAMEORIGIN"})


async def _result(request: Request) -> Response:
    return _job_file(request, "result.json", "application/json")


# --------------------------------------------------------------------------- job files


async def _job_download(request: Request) -> Response:
    state: _State = request.app.state.assay
    job = _job(request)
    if job is None or job.state not in ("done", "error"):
        return _error("no finished audit with that id.", 404)
    try:
        fd, info, media_type = _open_job_file(state.jobs_dir / job.job_id,
                                              request.path_params["path"])
    except _Refused as exc:
        return _error(str(exc), exc.status)
    name = PurePosixPath(request.path_params["path"]).name
    ascii_name = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"
    return StreamingResponse(_read_fd(fd), media_type=media_type,
                             headers={"Content-Disposition": disposition,
                                      "Content-Length": str(info.st_size)})


# --------------------------------------------------------------------------- app


class _AssayApp(Starlette):
    """Starlette with the guard outermost, so even its own 500 page gets the headers."""

    guard_hosts: frozenset[str] = frozenset()

    def build_middleware_stack(self):
        state: _State = self.state.assay
        upload_limit = state.max_upload_bytes + MULTIPART_SLACK

        def body_limit(path: str) -> int:
            return upload_limit if path == "/api/upload" else JSON_BODY_LIMIT

        return Guard(super().build_middleware_stack(), self.guard_hosts, body_limit)


async def _body_too_large(request: Request, exc: Exception) -> JSONResponse:
    return _error(str(exc), 413)


def create_app(workdir: str | Path | None = None, *, max_upload_bytes: int = MAX_UPLOAD_BYTES,
               defaults: dict[str, Any] | None = None, host: str = "127.0.0.1",
               allowed_hosts: Sequence[str] = (), retention_s: float = RETENTION_SECONDS,
               max_queued: int = MAX_QUEUED, max_client_uploads: int = MAX_CLIENT_UPLOADS,
               max_client_bytes: int | None = None, max_total_uploads: int = MAX_TOTAL_UPLOADS,
               max_total_bytes: int | None = None) -> _AssayApp:
    """Build the app.

    Parameters
    ----------
    workdir : path, optional
        Folder for uploads and audit outputs (default: a new private temporary folder,
        removed on shutdown). The app keeps its files in ``uploads/`` and ``jobs/``
        inside it (0700) and deletes only its own entries there. An existing folder is
        made private (0700) if this user owns it and refused otherwise: in a folder
        others may write to, they could swap ``uploads/`` for their own.
    max_upload_bytes : int, default=20 MiB
        Largest accepted CSV; the body is counted as it arrives and reading stops there.
    defaults : dict, optional
        `AuditConfig` options applied to every audit (e.g. ``{"models": 8}``).
    host : str, default="127.0.0.1"
        The interface the server is bound to: a request's ``Host`` must name it,
        ``localhost``, ``127.0.0.1``, ``::1`` or one of `allowed_hosts`.
    allowed_hosts : sequence of str
        More host names to answer to (e.g. the machine's name behind ``--host 0.0.0.0``).
    retention_s : float, default=3600
        Seconds an upload, and a finished audit with its files, are kept.
    max_queued : int, default=8
        Audits that may wait behind the running one; one more is refused with 429.
    max_client_uploads : int, default=10
        Uploads one client may keep at once (until each expires after `retention_s`); one
        more is refused with 429. A client is the remote address the app sees: behind a
        reverse proxy, the proxy's, shared by all its users.
    max_client_bytes : int, optional
        Bytes of uploads one client may keep at once (default: 5 × `max_upload_bytes`,
        100 MiB); at least `max_upload_bytes`.
    max_total_uploads : int, default=100
        Uploads kept at once for all clients together.
    max_total_bytes : int, optional
        Bytes of uploads kept at once for all clients (default: 50 × `max_upload_bytes`,
        1000 MiB); at least `max_client_bytes`.
    """
    max_upload_bytes = check_scalar(max_upload_bytes, "max_upload_bytes", kind=int, low=1)
    retention_s = check_scalar(retention_s, "retention_s", low=0, low_open=True)
    max_queued = check_scalar(max_queued, "max_queued", kind=int, low=1)
    quotas = _quotas(max_upload_bytes, max_client_uploads, max_client_bytes, max_total_uploads,
                     max_total_bytes)
    if not isinstance(host, str):
        raise InvalidParameterError(f"host must be a string. Got {host!r}.")
    if workdir is None:
        folder, owns = Path(tempfile.mkdtemp(prefix="assay-web-")), True
    else:
        folder, owns = _private_workdir(Path(workdir)), False
    state = _State(folder, owns, max_upload_bytes, dict(defaults or {}), float(retention_s),
                   max_queued, quotas)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        async def sweeper() -> None:
            while True:
                await asyncio.sleep(min(60.0, max(0.2, state.retention_s / 4)))
                await asyncio.to_thread(state.sweep)

        state.sweep()  # leftovers of an earlier run past their retention
        task = asyncio.create_task(sweeper())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            state.shutdown()

    app = _AssayApp(routes=[
        Route("/", _page),
        Route("/api/limits", _limits_route),
        Route("/api/upload", _upload, methods=["POST"]),
        Route("/api/audit", _start_audit, methods=["POST"]),
        Route("/api/jobs/{job_id}", _status),
        Route("/api/jobs/{job_id}", _cancel, methods=["DELETE"]),
        Route("/api/jobs/{job_id}/cancel", _cancel, methods=["POST"]),
        Route("/jobs/{job_id}/report", _report),
        Route("/jobs/{job_id}/result.json", _result),
        Route("/jobs/{job_id}/files/{path:path}", _job_download),
    ], exception_handlers={BodyTooLarge: _body_too_large}, lifespan=lifespan)
    app.guard_hosts = allowed_host_names(host, allowed_hosts)
    app.state.assay = state
    return app
