"""`fit_population`: a plan fitted with a learner on one of the engine's backends
(batched, joblib or Dask), in chunks kept by the cache, within a memory budget."""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from assay._validation import (
    DataError,
    InvalidParameterError,
    check_option,
    check_output_folder,
    check_scalar,
)
from assay.engine.backends import check_backend_name
from assay.engine.cache import (
    _CACHE_FORMAT,
    _ChunkCache,
    _CorruptEntry,
    _DiskStore,
    data_fingerprint_of,
)
from assay.engine.cluster import check_scheduler, dask_client
from assay.engine.plan import (
    PopulationPlan,
    _gib,
    check_population_size,
)
from assay.engine.population import Population
from assay.learners.base import Learner, check_features, compute_threads


def _fit_chunk(
    learner: Learner,
    X: np.ndarray,
    y: np.ndarray,
    member: np.ndarray,
    seeds: np.ndarray,
    n_classes: int,
    n_threads: int | None,
) -> tuple[np.ndarray, float]:
    """Fit one chunk of models (runs in the worker for joblib and Dask)."""
    start = time.perf_counter()
    # One process per core: BLAS's and torch's own pools would oversubscribe the machine.
    with compute_threads(n_threads, torch=getattr(learner, "uses_torch", False)):
        probs = learner.fit_predict(X, y, member, seeds, n_classes)
    probs = np.asarray(probs, dtype=np.float32)
    expected = (len(seeds), X.shape[0], n_classes)
    if probs.shape != expected:
        raise RuntimeError(
            f"{type(learner).__name__}.fit_predict returned shape {probs.shape},"
            f" expected {expected}."
        )
    return probs, time.perf_counter() - start


def _chunks(n_models: int, size: int) -> list[tuple[int, int]]:
    return [(start, min(start + size, n_models)) for start in range(0, n_models, size)]


def _check_inputs(X: Any, y: Any, plan: PopulationPlan, n_classes: int | None):
    X = check_features(X)  # float32, dense or CSR (never densified)
    y = np.asarray(y)
    if y.shape != (X.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise DataError(
            f"y must be {X.shape[0]} integer class indices. Got {y.dtype} of shape {y.shape}."
        )
    y = y.astype(np.int64)
    if plan.n_rows != X.shape[0]:
        raise InvalidParameterError(
            f"plan must cover the {X.shape[0]} rows of X. Got a plan for {plan.n_rows} rows."
        )
    if n_classes is None:
        n_classes = int(y.max()) + 1
    n_classes = check_scalar(n_classes, "n_classes", kind=int, low=2)
    if y.min() < 0 or y.max() >= n_classes:
        raise DataError(
            f"y must hold class indices in [0, {n_classes - 1}]. Got"
            f" [{int(y.min())}, {int(y.max())}]."
        )
    return X, y, n_classes


def progress_bar(enabled: bool):
    """The rich progress bar of long work: description, bar, done of total, elapsed, left."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
        transient=False,
    )


def fit_population(
    X: Any,
    y: Any,
    learner: Any,
    plan: PopulationPlan,
    *,
    n_classes: int | None = None,
    backend: str = "batched",
    n_jobs: int | None = None,
    scheduler_address: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    data_fingerprint: str | None = None,
    progress: bool = True,
    on_chunk: Callable[[int, int], None] | None = None,
    memory_budget: float | None = None,
    store: str = "auto",
) -> Population:
    """Fit every model of `plan` and keep its class probabilities on every row.

    Parameters
    ----------
    X : array-like of shape (n_rows, n_features)
        Numeric features (converted to float32).
    y : array-like of shape (n_rows,)
        Integer class indices.
    learner : str, scikit-learn estimator or Learner
        Anything `assay.learners.get_learner` accepts.
    plan : PopulationPlan
        Membership matrix and seeds, e.g. `PopulationPlan.balanced`.
    n_classes : int, optional
        Number of classes; default ``y.max() + 1``.
    backend : {"batched", "joblib", "dask"}, default="batched"
        "batched" fits chunks of `learner.preferred_chunk` models one after another in
        this process; "joblib" fans chunks out to local processes; "dask" submits them
        to a `dask.distributed` cluster (a new `LocalCluster` unless
        `scheduler_address` is given).
    n_jobs : int, optional
        Processes (joblib) or local Dask workers (default: all cores); for "batched",
        torch threads overriding the learner's own `n_threads`.
    scheduler_address : str, optional
        Address of a running Dask scheduler (backend "dask" only).
    cache_dir : path, optional
        Folder of the on-disk cache. Finished chunks are written atomically and
        reused by a later call with the same data, learner and plan, so an
        interrupted run resumes; damaged entries are detected and refit.
    data_fingerprint : str, optional
        Identifies the data in the cache key; default: a hash of X and y.
    progress : bool, default=True
        Show a rich progress bar.
    on_chunk : callable(done, total), optional
        Called in this process after each finished chunk with the number of models
        done so far. An exception it raises stops the run (finished chunks stay in the
        cache): how a caller cancels between chunks.
    memory_budget : float > 0, optional
        GiB the probabilities (K * N * C float32) may take in memory; None: no limit.
        A population over it is written to disk as it is fitted (``store="auto"``).
    store : {"auto", "memory", "disk"}, default="auto"
        Where `probs` lives. "disk": one ``probs.npy`` in the cache folder, each chunk
        written into its slice as it finishes, returned as a read-only `numpy.memmap`
        (requires `cache_dir`); that file and its manifest of finished chunks are the
        resumable store (no ``.npz`` copy of its chunks). "auto": disk when the
        population is over `memory_budget`, memory otherwise.

    Returns
    -------
    Population
        `info` holds the learner config, backend, seeds, timings, cache counts
        (``n_loaded_from_cache``, ``n_fitted``, ``n_corrupt``) and where `probs` lives
        (``store``, ``store_reason``, ``probs_path``, ``probs_gib``).
    """
    from assay.learners import get_learner

    if not isinstance(plan, PopulationPlan):
        raise InvalidParameterError(f"plan must be a PopulationPlan. Got {type(plan).__name__}.")
    backend = check_backend_name(backend)
    if n_jobs is not None:
        n_jobs = check_scalar(n_jobs, "n_jobs", kind=int, low=1)
    check_scheduler(backend, scheduler_address)
    if memory_budget is not None:
        memory_budget = check_scalar(memory_budget, "memory_budget", low=0, low_open=True)
    check_option(store, "store", _STORES)
    if cache_dir is not None:  # a file or a read-only folder fails here, not after a fit
        check_output_folder(cache_dir, "cache_dir")
    learner = get_learner(learner)
    X, y, n_classes = _check_inputs(X, y, plan, n_classes)
    if store == "auto":
        check_population_size(plan.n_models, X.shape[0], n_classes, memory_budget)
    else:  # "memory": all of it against this machine; "disk": the membership only
        check_population_size(plan.n_models, X.shape[0],
                              n_classes if store == "memory" else None)
    on_disk, reason = _where(plan.n_models, X.shape[0], n_classes, memory_budget, store)
    if on_disk and cache_dir is None:
        raise InvalidParameterError(
            f"cache_dir must be a folder to write the population to ({reason}). Got None.")
    started = time.perf_counter()
    fingerprint = data_fingerprint or data_fingerprint_of(X, y)
    config = learner.get_config()
    chunks = _chunks(plan.n_models, check_scalar(learner.preferred_chunk, "preferred_chunk",
                                                 kind=int, low=1))
    shape = (plan.n_models, X.shape[0], n_classes)
    stats: dict[str, Any] = {"n_loaded_from_cache": 0, "n_fitted": 0, "n_corrupt": 0,
                             "chunk_seconds": []}

    cache = disk = None
    if cache_dir is not None:
        key_fields = {
            "data": fingerprint,
            "learner": config,
            "plan": plan.fingerprint(),
            "n_classes": n_classes,
            "shape": list(X.shape),
            "format": _CACHE_FORMAT,
        }
        key = _cache_key(key_fields)
        cache = _ChunkCache(Path(cache_dir), key, key_fields)
        # On disk: the store is written. In memory: a store left by an earlier run on
        # disk is read too.
        disk = (_DiskStore(cache.folder, cache.digest, cache.fields, shape) if on_disk
                else _DiskStore.existing(cache.folder, cache.digest, cache.fields, shape))
    probs: np.ndarray = disk.opened() if on_disk and disk is not None else np.empty(
        shape, dtype=np.float32)
    todo = _load_cached(cache, disk if on_disk else None, disk, chunks, probs, stats)

    done = [plan.n_models - sum(b - a for a, b in todo)]

    def finish(start: int, stop: int, chunk_probs: np.ndarray, seconds: float) -> None:
        stats["n_fitted"] += stop - start
        stats["chunk_seconds"].append(round(seconds, 4))
        if on_disk and disk is not None:
            disk.store(start, stop, chunk_probs)
        else:
            probs[start:stop] = chunk_probs
            if cache is not None:
                cache.store(start, stop, chunk_probs)
        done[0] += stop - start
        if on_chunk is not None:
            on_chunk(done[0], plan.n_models)

    with progress_bar(progress) as bar:
        task = bar.add_task(f"fitting {config['name']}", total=plan.n_models,
                            completed=plan.n_models - sum(b - a for a, b in todo))
        run = {"batched": _run_batched, "joblib": _run_joblib, "dask": _run_dask}[backend]
        def done_chunk(a: int, b: int, p: np.ndarray, s: float) -> None:
            finish(a, b, p, s)
            bar.advance(task, b - a)

        workers = run(learner, X, y, plan, n_classes, todo, n_jobs, scheduler_address,
                      done_chunk)

    info = {
        "learner": config,
        "backend": backend,
        "n_workers": workers,
        "n_classes": n_classes,
        "seeds": plan.seeds.tolist(),
        "plan_params": dict(plan.params),
        "plan_fingerprint": plan.fingerprint(),
        "data_fingerprint": fingerprint,
        "cache_dir": None if cache is None else str(cache.folder),
        "chunk_size": chunks[0][1] - chunks[0][0],
        "seconds": round(time.perf_counter() - started, 4),
        "store": "disk" if on_disk else "memory",
        "store_reason": reason,
        "probs_path": str(disk.path) if on_disk and disk is not None else None,
        "probs_gib": _gib(shape),
        "memory_budget": memory_budget,
        **stats,
    }
    if on_disk and disk is not None:
        probs = disk.read_only()
    return Population(probs=probs, member=np.array(plan.member), y=y, info=info)


def _where(n_models: int, n_rows: int, n_classes: int, budget: float | None,
           store: str) -> tuple[bool, str]:
    """Whether the population goes to disk, and why (recorded in `info`)."""
    size = (f"{n_models} x {n_rows} x {n_classes} float32 probabilities take "
            f"{_gib((n_models, n_rows, n_classes)):.3g} GiB")
    if store != "auto":
        return store == "disk", f"store={store!r}; {size}"
    if budget is None:
        return False, f"{size}; no memory_budget"
    over = _gib((n_models, n_rows, n_classes)) > budget
    return over, f"{size}, {'over' if over else 'within'} memory_budget {budget:g} GiB"


def engine_options(backend: str = "batched", cache_dir: Any = None, progress: bool = False,
                   memory_budget: float | None = None,
                   scheduler_address: str | None = None) -> dict[str, Any]:
    """The engine settings every fit of an audit passes to `fit_population`, checked.

    One place for them, so a section that fits its own models (on other rows or
    features) still runs on the audit's cluster and writes to disk over its budget.

    Returns
    -------
    dict
        Keyword arguments of `fit_population`: ``backend``, ``cache_dir``, ``progress``,
        ``memory_budget``, ``scheduler_address``.

    Examples
    --------
    >>> from assay.engine import engine_options
    >>> engine_options("dask", scheduler_address="tcp://10.0.0.5:8786")["scheduler_address"]
    'tcp://10.0.0.5:8786'
    >>> engine_options("batched", scheduler_address="tcp://10.0.0.5:8786")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    assay._validation.InvalidParameterError: scheduler_address must be None unless backend ...
    """
    backend = check_backend_name(backend)
    check_scheduler(backend, scheduler_address)
    if memory_budget is not None:
        memory_budget = check_scalar(memory_budget, "memory_budget", low=0, low_open=True)
    return {"backend": backend, "cache_dir": cache_dir, "progress": progress,
            "memory_budget": memory_budget, "scheduler_address": scheduler_address}


#: How a library function fits a population: ``fit(plan, learner, data=None)`` with
#: ``data`` an ``(X, y)`` pair to fit on other features than the caller's own.
FitFn = Callable[..., Population]


def population_fitter(X: Any, y: Any, *, n_classes: int | None = None,
                      data_fingerprint: str | None = None, **engine: Any) -> FitFn:
    """The engine's entry for code that fits: a ``fit(plan, learner, data=None)`` callable.

    Library functions that train (`distribution_inference`, `fit_candidates`,
    `attribute_inference`, ...) take such a callable, so that inside an audit they fit
    through `AuditContext.fit` (the audit's backend, cluster, cache, memory budget and
    progress) and standalone through this one.

    Parameters
    ----------
    X, y : array-like
        Features and class indices the plans are fitted on.
    n_classes : int, optional
        Number of classes; default ``y.max() + 1``.
    data_fingerprint : str, optional
        Identifies ``X, y`` in the cache key; default: a hash of them.
    **engine
        `engine_options` (backend, cache_dir, progress, memory_budget, scheduler_address).

    Returns
    -------
    callable
        ``fit(plan, learner, data=None) -> Population``; ``data=(X2, y2)`` fits other
        features (e.g. altered copies of the rows), keyed in the cache by their own hash.

    Examples
    --------
    >>> import numpy as np
    >>> from assay.engine import PopulationPlan, population_fitter
    >>> X = np.random.default_rng(0).normal(size=(40, 3)).astype("float32")
    >>> y = (X[:, 0] > 0).astype("int64")
    >>> fit = population_fitter(X, y, progress=False)
    >>> fit(PopulationPlan.balanced(40, 4, random_state=0), "logreg").probs.shape
    (4, 40, 2)
    """
    def fit(plan: PopulationPlan, learner: Any, data: tuple[Any, Any] | None = None
            ) -> Population:
        # Looked up on the package when called: `assay.engine.fit_population` is the one
        # name every fit goes through (and the one a test or a profiler replaces).
        import assay.engine

        if data is not None:
            return assay.engine.fit_population(data[0], data[1], learner, plan,
                                               n_classes=n_classes, **engine)
        return assay.engine.fit_population(X, y, learner, plan, n_classes=n_classes,
                                           data_fingerprint=data_fingerprint, **engine)

    return fit


def _cache_key(fields: dict[str, Any]) -> str:
    """Folder name of a cache entry: 20 hex digits of the fields' SHA-256.

    The manifest keeps the full digest and the fields, so a truncated-key collision is
    caught on load rather than served.
    """
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:20]


def _load_cached(cache, written, other, chunks, probs, stats) -> list[tuple[int, int]]:
    """Fill `probs` from the caches; return the chunks still to fit (absent or damaged).

    `written` is the disk store `probs` belongs to (None in memory): a chunk listed
    there is already in place, one found in another cache is copied into it. `other`
    is a disk store read as one more cache.
    """
    todo = []
    for start, stop in chunks:
        if written is not None and _try(written.load, start, stop, stats) is not None:
            stats["n_loaded_from_cache"] += stop - start
            continue
        cached = None
        if cache is not None:
            cached = _try(cache.load, start, stop, stats, (stop - start, *probs.shape[1:]))
        if cached is None and other is not None and other is not written:
            cached = _try(other.load, start, stop, stats)
        if cached is None:
            todo.append((start, stop))
            continue
        if written is not None:
            written.store(start, stop, cached)
        else:
            probs[start:stop] = cached
        stats["n_loaded_from_cache"] += stop - start
    return todo


def _try(load, start, stop, stats, *args):
    """A cache's chunk, or None when absent or damaged (warned and counted)."""
    try:
        return load(start, stop, *args)
    except _CorruptEntry as exc:
        warnings.warn(f"damaged cache entry refit: {exc}", RuntimeWarning, stacklevel=4)
        stats["n_corrupt"] += stop - start
        return None


def _run_batched(learner, X, y, plan, n_classes, todo, n_jobs, address, done) -> int:
    for start, stop in todo:
        chunk_probs, seconds = _fit_chunk(
            learner, X, y, plan.member[start:stop], plan.seeds[start:stop], n_classes, n_jobs
        )
        done(start, stop, chunk_probs, seconds)
    return 1


def _run_joblib(learner, X, y, plan, n_classes, todo, n_jobs, address, done) -> int:
    from joblib import Parallel, delayed

    n_jobs = n_jobs or os.cpu_count() or 1
    threads = max(1, (os.cpu_count() or 1) // n_jobs)
    tasks = (
        delayed(_fit_one)(start, stop, learner, X, y, plan.member[start:stop],
                          plan.seeds[start:stop], n_classes, threads)
        for start, stop in todo
    )
    # Unordered: every finished chunk is cached at once, whatever its position.
    for start, stop, chunk_probs, seconds in Parallel(
        n_jobs=n_jobs, return_as="generator_unordered"
    )(tasks):
        done(start, stop, chunk_probs, seconds)
    return n_jobs


def _fit_one(start, stop, *args):
    return (start, stop, *_fit_chunk(*args))


def _run_dask(learner, X, y, plan, n_classes, todo, n_jobs, address, done) -> int:
    from distributed import as_completed

    with dask_client(address, n_workers=n_jobs) as client:
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        X_remote, y_remote = client.scatter([X, y], broadcast=True)
        futures = [
            client.submit(_fit_one, start, stop, learner, X_remote, y_remote,
                          plan.member[start:stop], plan.seeds[start:stop], n_classes, 1,
                          pure=False)
            for start, stop in todo
        ]
        for future in as_completed(futures):
            done(*future.result())
    return n_workers


_STORES = ("auto", "memory", "disk")
