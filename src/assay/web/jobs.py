"""The web app's state: uploads and audit jobs, the one-at-a-time executor, the quotas
uploads count against, retention, and the checks an audit request passes before it
queues."""

from __future__ import annotations

import csv
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.responses import (
    JSONResponse,
)

from assay._validation import AssayError, DataError, check_scalar
from assay.web.files import _entries, _mtime, _private_dir, _remove

#: Default uploads one client (remote address) may keep at once; its bytes default to
#: 5 uploads of the largest size, so a few full-size tables fit but not a stream of them.
MAX_CLIENT_UPLOADS = 10
CLIENT_BYTES_IN_UPLOADS = 5
#: Default uploads kept at once for all clients; bytes: 50 of the largest size (1000 MiB).
MAX_TOTAL_UPLOADS = 100
TOTAL_BYTES_IN_UPLOADS = 50


#: Most models a page's audit may train (the server runs one audit at a time).
MAX_MODELS = 256


_FINISHED = ("done", "error", "cancelled")


class _Cancelled(Exception):
    """Raised at a stage boundary of an audit whose cancel was requested."""


@dataclass
class Upload:
    """One kept upload: when it was made, by which client, how many bytes."""

    created: float
    client: str
    size: int


@dataclass(frozen=True)
class Quotas:
    """Uploads kept at once: per client and in all, by count and by bytes."""

    client_uploads: int
    client_bytes: int
    total_uploads: int
    total_bytes: int


@dataclass
class Job:
    """One audit started from the page."""

    job_id: str
    upload_id: str
    #: The synthetic release's and its holdout's uploads, when the audit has them.
    synthetic_upload_ids: tuple[str, ...] = ()
    #: What the audited model predicts: "classification" or "regression" (its target's).
    task: str = "classification"
    state: str = "queued"  # queued, running, done, error, cancelled
    stage: str = "waiting to start"
    fraction: float = 0.0
    error: str = ""
    summary: list[str] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    finished: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    future: Future | None = None


class _State:
    """Uploads and jobs of one app instance: work folder, executor, tables, clean-up."""

    def __init__(self, workdir: Path, owns_workdir: bool, max_upload_bytes: int,
                 defaults: dict[str, Any], retention_s: float, max_queued: int,
                 quotas: Quotas) -> None:
        self.workdir = workdir
        self.owns_workdir = owns_workdir
        self.uploads_dir = _private_dir(workdir / "uploads")
        self.jobs_dir = _private_dir(workdir / "jobs")
        self.max_upload_bytes = max_upload_bytes
        self.defaults = defaults
        self.retention_s = retention_s
        self.max_queued = max_queued
        self.quotas = quotas
        self._models_range: tuple[int, int] | None = None
        self.jobs: dict[str, Job] = {}
        self.uploads: dict[str, Upload] = {}
        self.lock = threading.Lock()
        self.closing = False
        # One audit at a time: each one already uses every core.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="assay-audit")

    def models_range(self) -> tuple[int, int]:
        """(smallest, largest) models an audit from the page may ask for.

        The smallest is found by the very checks an audit request runs (`_check_audit`) on
        a small probe table, so the page's minimum follows the attacks in `defaults` (6
        with LiRA, 4 without); the largest is this server's cap, `MAX_MODELS`.
        """
        with self.lock:
            if self._models_range is not None:
                return self._models_range
        from assay.data import Dataset, make_synthetic

        probe = Dataset.from_frame(make_synthetic(400, 0), "approved", ["sex"], name="probe")
        low = 4  # AuditConfig's own floor, if the defaults refuse every size on the probe
        for models in range(4, MAX_MODELS + 1, 2):
            try:
                _check_audit(self, probe, "approved", ["sex"], models, data="probe",
                             out=self.jobs_dir / "probe")
            except AssayError:
                continue
            low = models
            break
        with self.lock:
            self._models_range = (low, MAX_MODELS)
        return self._models_range

    def quota_refusal(self, client: str, size: int | None, now: float | None = None
                      ) -> JSONResponse | None:
        """The 429 for one more upload of `size` bytes from `client`, or None if it fits
        (`size` None: before the body is read, whether any upload could fit).

        Call with `lock` held. Says which limit was hit and when enough of the uploads
        kept now expire (an upload an audit still reads is kept longer).
        """
        now = time.time() if now is None else now
        quotas = self.quotas
        mine = [u for u in self.uploads.values() if u.client == client]
        everyone = list(self.uploads.values())
        for kept, n_limit, b_limit, whose, limit_name in (
                (mine, quotas.client_uploads, quotas.client_bytes,
                 f"your address ({client})", "client"),
                (everyone, quotas.total_uploads, quotas.total_bytes, "this server", "total")):
            kept = sorted(kept, key=lambda u: u.created)
            used = sum(u.size for u in kept)
            who = "one client" if limit_name == "client" else "all clients together"
            if len(kept) + 1 > n_limit:
                what = (f"{whose} already keeps {len(kept)} uploads, the most {who} may keep "
                        f"at once ({n_limit})")
                frees: Upload | None = kept[len(kept) - n_limit]  # its expiry makes room
                kind = "uploads"
            elif used + (size or 1) > b_limit:
                what = (f"{whose} already keeps {_mb(used)} of uploads, " + (
                    f"the most {who} may keep at once ({_mb(b_limit)})" if size is None else
                    f"and this {_mb(size)} file would pass the {_mb(b_limit)} {who} may "
                    f"keep at once"))
                freed, frees = 0, kept[-1] if kept else None
                for upload in kept:
                    freed += upload.size
                    if used - freed + (size or 1) <= b_limit:
                        frees = upload
                        break
                kind = "bytes"
            else:
                continue
            wait = 0.0 if frees is None else max(0.0, frees.created + self.retention_s - now)
            message = (f"upload refused: {what}. Uploads are kept {_duration(self.retention_s)}; "
                       f"room frees up in about {_duration(wait)}, as the oldest expire.")
            retry = max(1, int(wait + 0.999))
            return JSONResponse({"error": message, "limit": f"{limit_name}_{kind}",
                                 "retry_after_s": retry}, status_code=429,
                                headers={"Retry-After": str(retry)})
        return None

    def sweep(self, now: float | None = None) -> int:
        """Delete uploads and finished jobs older than the retention period; return how many.

        Folders left in the work folder by an earlier run (unknown ids) go by their age.
        An upload is kept while a queued or running audit reads it.
        """
        now = time.time() if now is None else now
        cutoff = now - self.retention_s
        doomed: list[Path] = []
        with self.lock:
            for job in list(self.jobs.values()):
                if job.finished is not None and job.finished <= cutoff:
                    del self.jobs[job.job_id]
                    doomed.append(self.jobs_dir / job.job_id)
            in_use = {u for j in self.jobs.values() if j.state not in _FINISHED
                      for u in (j.upload_id, *j.synthetic_upload_ids)}
            for upload_id, upload in list(self.uploads.items()):
                if upload.created <= cutoff and upload_id not in in_use:
                    del self.uploads[upload_id]
                    doomed.append(self.uploads_dir / upload_id)
            known = set(self.jobs) | set(self.uploads)
        for folder in (self.uploads_dir, self.jobs_dir):
            for entry in _entries(folder):
                if entry.name not in known and _mtime(entry) <= cutoff:
                    doomed.append(entry)
        for path in doomed:
            _remove(path)
        return len(doomed)

    def shutdown(self) -> None:
        """Stop every audit and delete every upload and job folder of this instance."""
        with self.lock:
            self.closing = True
            jobs = list(self.jobs.values())
            uploads = list(self.uploads)
            for job in jobs:
                job.cancel.set()
                if job.state == "queued":
                    job.state, job.stage, job.finished = "cancelled", "cancelled", time.time()
        self.executor.shutdown(wait=False, cancel_futures=True)
        for job in jobs:
            if job.state != "running":  # a running audit removes its own folder when it stops
                _remove(self.jobs_dir / job.job_id)
        for upload_id in uploads:
            _remove(self.uploads_dir / upload_id)
        if self.owns_workdir and not any(job.state == "running" for job in jobs):
            _remove(self.workdir)


def _quotas(max_upload_bytes: int, client_uploads: Any, client_bytes: Any,
            total_uploads: Any, total_bytes: Any) -> Quotas:
    # Each bound is at least the one it contains: a file the size limit lets through
    # must fit in an empty client quota, and a client's quota in the total.
    client_uploads = check_scalar(client_uploads, "max_client_uploads", kind=int, low=1)
    total_uploads = check_scalar(total_uploads, "max_total_uploads (at least "
                                 "max_client_uploads)", kind=int, low=client_uploads)
    if client_bytes is None:
        client_bytes = CLIENT_BYTES_IN_UPLOADS * max_upload_bytes
    client_bytes = check_scalar(client_bytes, "max_client_bytes (at least max_upload_bytes)",
                                kind=int, low=max_upload_bytes)
    if total_bytes is None:
        total_bytes = max(TOTAL_BYTES_IN_UPLOADS * max_upload_bytes, client_bytes)
    total_bytes = check_scalar(total_bytes, "max_total_bytes (at least max_client_bytes)",
                               kind=int, low=client_bytes)
    return Quotas(client_uploads, client_bytes, total_uploads, total_bytes)


def _mb(n_bytes: float) -> str:
    value = n_bytes / 1024 / 1024
    return (f"{value:.1f}" if value >= 1 else f"{value:.2g}").removesuffix(".0") + " MB"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(0, round(seconds))} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.3g} h"


@dataclass(frozen=True)
class TaskChoice:
    """The page's task (None: detected from the target) and decision threshold, checked
    as `AuditConfig` checks ``task`` and ``decision_threshold``."""

    task: str | None = None
    decision_threshold: float | None = None

    @classmethod
    def from_request(cls, task: Any, threshold: Any) -> TaskChoice:
        """From the JSON of an audit request ("auto" or missing: detected)."""
        from assay._validation import check_option
        from assay.audit.config import TASKS

        if task is not None:
            check_option(task, "task (--task)", ("auto", *TASKS))
        if threshold is not None:  # a JSON number; bools and strings refused by name
            check_scalar(threshold, "decision_threshold (--decision-threshold)")
        return cls(None if task in (None, "auto") else task,
                   None if threshold is None else float(threshold))

    def options(self) -> dict[str, Any]:
        """The `AuditConfig` options it sets (none for a detected task and no threshold)."""
        out: dict[str, Any] = {}
        if self.task is not None:
            out["task"] = self.task
        if self.decision_threshold is not None:
            out["decision_threshold"] = self.decision_threshold
        return out


def _check_audit(state: _State, dataset, target: str, protected: list[str], models: Any, *,
                 data: str, out: Path, synthetic: tuple[Path, Path] | None = None,
                 task: TaskChoice = TaskChoice(), generator: str | None = None):
    """The `AuditConfig` of an audit from the page, after every check ``assay audit`` runs
    before training (`assay.audit.prepare`); an `AssayError` with its one-line message.

    `synthetic`: the files of a synthetic release and its holdout, given to the
    ``synthetic`` section as ``--synthetic`` and ``--synthetic-holdout`` give them;
    `generator`: the release's generator when known, as ``--synthetic-generator`` (an
    unknown spec is the section's one-line refusal).
    `task`: the page's task and decision threshold, given as ``--task`` and
    ``--decision-threshold`` give them (a regression target's refusals are the CLI's).
    """
    from assay.audit import AuditConfig, prepare

    options = {**state.defaults, "data": data, "target": target, "protected": protected,
               "models": models, "out": str(out), **task.options()}
    if synthetic is not None:
        release, holdout = synthetic
        options["synthetic"] = {**(state.defaults.get("synthetic") or {}),
                                "release": str(release), "holdout": str(holdout)}
        if generator is not None:
            options["synthetic"]["generator"] = generator
    config = AuditConfig.from_mapping(options, "the web form")
    prepare(config, dataset=dataset, progress=False)
    return config


def _header(folder: Path) -> list[str]:
    with open(folder / "data.csv", encoding="utf-8-sig", newline="") as handle:
        return next(csv.reader(handle), [])


def _check_synthetic_columns(folder: Path, synthetic: tuple[Path, Path]) -> None:
    """Every column of the table in the release and in its holdout, the uploads named
    as the user knows them (the section's own check names them REAL, SYNTH, HOLDOUT)."""
    columns = _header(folder)
    table = (folder / "name.txt").read_text(encoding="utf-8")
    for role, other in zip(("synthetic release", "synthetic release's holdout"), synthetic):
        present = set(_header(other))
        missing = [c for c in columns if c not in present]
        if missing:
            name = (other / "name.txt").read_text(encoding="utf-8")
            raise DataError(f"the {role} {name!r} must have every column of the table "
                            f"{table!r}. Got it without {', '.join(missing)}.")


def _load_and_check(state: _State, folder: Path, target: str, protected: list[str],
                    models: Any, job_id: str, synthetic: tuple[Path, Path] | None = None,
                    task: TaskChoice = TaskChoice(), generator: str | None = None):
    """The audited `Dataset` and `AuditConfig` of a request, after every check; `synthetic`:
    the upload folders of a synthetic release and its holdout, `generator` the release's
    generator when known; `task`: the page's choice (by default detected from the target,
    as ``assay audit`` does)."""
    from assay.data import Dataset

    name = (folder / "name.txt").read_text(encoding="utf-8")
    dataset = Dataset.from_path(folder / "data.csv", target, protected, name=name,
                                task=task.task or "auto")
    if synthetic is not None:
        _check_synthetic_columns(folder, synthetic)
    config = _check_audit(state, dataset, target, protected, models,
                          data=str(folder / "data.csv"), out=state.jobs_dir / job_id,
                          synthetic=None if synthetic is None else
                          (synthetic[0] / "data.csv", synthetic[1] / "data.csv"), task=task,
                          generator=generator)
    return dataset, config
