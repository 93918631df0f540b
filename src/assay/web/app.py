"""A small web app around `run_audit`: upload a CSV, pick columns, watch, read the report.

Routes
------
``GET /``                       the page (inline CSS and JS, nothing external)
``POST /api/upload``            multipart ``file``: checked (size, type, parse, columns),
                                stored under the work folder; returns its columns
``POST /api/audit``             JSON ``{upload_id, target, protected, models}``: checks the
                                table as a `Dataset`, starts the audit in a background
                                thread, returns ``{job_id}``
``GET /api/jobs/{job_id}``      status: state, stage, fraction, error, report URL
``GET /jobs/{job_id}/report``   the self-contained HTML report
``GET /jobs/{job_id}/result.json``

Every error the user can cause comes back as JSON ``{"error": "..."}`` with status 400
(413 for a file over the size limit) and is shown in the page.
"""

from __future__ import annotations

import csv
import io
import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from assay._validation import AssayError

__all__ = ["create_app", "MAX_UPLOAD_BYTES"]

#: Default upload limit (bytes).
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
#: Rows an uploaded table must have for an audit to mean anything.
MIN_ROWS = 50
_ID = re.compile(r"^[0-9a-f]{32}$")
_CSV_TYPES = {"text/csv", "application/csv", "application/vnd.ms-excel", "text/plain",
              "application/octet-stream", ""}


@dataclass
class Job:
    """One audit started from the page."""

    job_id: str
    upload_id: str
    state: str = "queued"  # queued, running, done, error
    stage: str = "waiting to start"
    fraction: float = 0.0
    error: str = ""
    summary: list[str] = field(default_factory=list)


class _State:
    """Uploads and jobs of one app instance (work folder, executor, job table)."""

    def __init__(self, workdir: Path, max_upload_bytes: int, defaults: dict[str, Any]) -> None:
        self.workdir = workdir
        self.max_upload_bytes = max_upload_bytes
        self.defaults = defaults
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()
        # One audit at a time: each one already uses every core.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="assay-audit")


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _upload_dir(state: _State, upload_id: Any) -> Path | None:
    if not isinstance(upload_id, str) or not _ID.match(upload_id):
        return None
    folder = state.workdir / "uploads" / upload_id
    return folder if (folder / "data.csv").is_file() else None


async def _page(request: Request) -> HTMLResponse:
    text = resources.files("assay.web").joinpath("index.html").read_text(encoding="utf-8")
    return HTMLResponse(text)


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


async def _upload(request: Request) -> JSONResponse:
    state: _State = request.app.state.assay
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > state.max_upload_bytes + 64 * 1024:
        return _error(f"the file is larger than the {state.max_upload_bytes // 1024 // 1024} MB "
                      f"limit.", 413)
    try:
        form = await request.form(max_files=1, max_fields=5)
    except Exception as exc:  # malformed multipart body
        return _error(f"the upload could not be read: {exc}")
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        return _error("choose a CSV file to upload.")
    filename = upload.filename or "upload"
    if not filename.lower().endswith(".csv") or upload.content_type not in _CSV_TYPES:
        return _error(f"{filename} is not a CSV file (.csv); got type "
                      f"{upload.content_type or 'unknown'}.")
    payload = await upload.read(state.max_upload_bytes + 1)
    if len(payload) > state.max_upload_bytes:
        return _error(f"{filename} is larger than the "
                      f"{state.max_upload_bytes / 1024 / 1024:g} MB limit.", 413)
    try:
        frame = _parse_csv(payload, filename)
    except ValueError as exc:
        return _error(str(exc))
    upload_id = uuid.uuid4().hex
    folder = state.workdir / "uploads" / upload_id
    folder.mkdir(parents=True)
    (folder / "data.csv").write_bytes(payload)
    (folder / "name.txt").write_text(Path(filename).stem, encoding="utf-8")
    columns = [{"name": str(c), "n_unique": int(frame[c].nunique()),
                "dtype": str(frame[c].dtype)} for c in frame.columns]
    return JSONResponse({"upload_id": upload_id, "filename": filename,
                         "n_rows": int(len(frame)), "columns": columns})


def _audit_request(body: Any, state: _State) -> tuple[Path, str, list[str], int]:
    """Check the JSON of an audit request; raise ValueError with the message to show."""
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
    models = body.get("models", state.defaults.get("models", 16))
    if not isinstance(models, int) or isinstance(models, bool) or not 4 <= models <= 256 \
            or models % 2:
        raise ValueError(f"models must be an even number between 4 and 256. Got {models!r}.")
    return folder, target, protected, models


async def _start_audit(request: Request) -> JSONResponse:
    from assay.data import Dataset

    state: _State = request.app.state.assay
    try:
        body = await request.json()
    except ValueError:
        return _error("the request must be JSON.")
    try:
        folder, target, protected, models = _audit_request(body, state)
        name = (folder / "name.txt").read_text(encoding="utf-8")
        # Checked here, not in the thread: column and label problems show up at once.
        dataset = Dataset.from_path(folder / "data.csv", target, protected, name=name)
    except (ValueError, AssayError) as exc:
        return _error(str(exc))
    job = Job(job_id=uuid.uuid4().hex, upload_id=folder.name)
    with state.lock:
        state.jobs[job.job_id] = job
    state.executor.submit(_run_job, state, job, dataset, target, protected, models)
    return JSONResponse({"job_id": job.job_id, "status_url": f"/api/jobs/{job.job_id}"})


def _run_job(state: _State, job: Job, dataset, target: str, protected: list[str],
             models: int) -> None:
    """Run one audit in the worker thread, recording its stage for the status endpoint."""
    from assay.audit import AuditConfig, run_audit

    def on_stage(stage: str, fraction: float) -> None:
        job.stage, job.fraction = stage, fraction

    job.state = "running"
    try:
        options = {**state.defaults, "data": str(state.workdir / "uploads" / job.upload_id /
                                                 "data.csv"),
                   "target": target, "protected": protected, "models": models,
                   "out": str(state.workdir / "jobs" / job.job_id)}
        config = AuditConfig.from_mapping(options, "the web form")
        result = run_audit(config, dataset=dataset, progress=False, on_stage=on_stage)
        job.summary = [line for s in result.sections.values() for line in s.summary]
        job.state = "done"
    except AssayError as exc:
        job.state, job.error = "error", str(exc)
    except Exception as exc:  # noqa: BLE001 - a bug must still end the job visibly
        job.state, job.error = "error", f"internal error: {type(exc).__name__}: {exc}"


def _job(request: Request) -> Job | None:
    state: _State = request.app.state.assay
    job_id = request.path_params["job_id"]
    return state.jobs.get(job_id) if _ID.match(job_id) else None


async def _status(request: Request) -> JSONResponse:
    job = _job(request)
    if job is None:
        return _error("no such audit.", 404)
    payload = {"job_id": job.job_id, "state": job.state, "stage": job.stage,
               "fraction": round(job.fraction, 3), "error": job.error, "summary": job.summary}
    if job.state == "done":
        payload["report_url"] = f"/jobs/{job.job_id}/report"
        payload["result_url"] = f"/jobs/{job.job_id}/result.json"
    return JSONResponse(payload)


def _job_file(request: Request, name: str, media_type: str) -> Response:
    job = _job(request)
    state: _State = request.app.state.assay
    if job is None or job.state != "done":
        return _error("no finished audit with that id.", 404)
    return FileResponse(state.workdir / "jobs" / job.job_id / name, media_type=media_type)


async def _report(request: Request) -> Response:
    return _job_file(request, "report.html", "text/html; charset=utf-8")


async def _result(request: Request) -> Response:
    return _job_file(request, "result.json", "application/json")


def create_app(workdir: str | Path | None = None, *, max_upload_bytes: int = MAX_UPLOAD_BYTES,
               defaults: dict[str, Any] | None = None) -> Starlette:
    """Build the app.

    Parameters
    ----------
    workdir : path, optional
        Folder for uploads and audit outputs (default: a new temporary folder).
    max_upload_bytes : int, default=20 MiB
        Largest accepted CSV.
    defaults : dict, optional
        `AuditConfig` options applied to every audit (e.g. ``{"models": 8}``).
    """
    import tempfile

    folder = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="assay-web-"))
    folder.mkdir(parents=True, exist_ok=True)
    app = Starlette(routes=[
        Route("/", _page),
        Route("/api/upload", _upload, methods=["POST"]),
        Route("/api/audit", _start_audit, methods=["POST"]),
        Route("/api/jobs/{job_id}", _status),
        Route("/jobs/{job_id}/report", _report),
        Route("/jobs/{job_id}/result.json", _result),
    ])
    app.state.assay = _State(folder, int(max_upload_bytes), dict(defaults or {}))
    return app
