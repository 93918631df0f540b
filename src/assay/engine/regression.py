"""Populations of regression models: every model's predicted value on every row.

`fit_regression_population` is `fit_population` for a continuous target: a plan fitted
with a `RegressionLearner` (``fit_predict_values``: (k, N) float64 predictions) in chunks
of ``preferred_chunk`` models, each finished chunk kept by the same on-disk cache
(resumable, checksummed; the cache key says ``task = regression``), on any of the
engine's backends (batched, joblib, or a Dask cluster: the same chunks and seeds, so the
same values wherever they are fitted). The values stay in
memory: K x N float64 numbers are a sixteenth of a classifier's probabilities over eight
classes, and every attack, figure and Rashomon set reads them whole.

`regression_fitter` is the ``fit(plan, learner, data=None)`` entry of
`assay.engine.population_fitter` for regression, the one `AuditContext.fit` uses.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assay._validation import DataError, InvalidParameterError, check_output_folder, check_scalar
from assay.engine.backends import check_backend_name
from assay.engine.cache import _CACHE_FORMAT, _ChunkCache, _CorruptEntry, data_fingerprint_of
from assay.engine.cluster import check_scheduler, dask_client
from assay.engine.plan import PopulationPlan, check_population_size

__all__ = ["RegressionPopulation", "fit_regression_population", "regression_fitter"]


@dataclass(frozen=True)
class RegressionPopulation:
    """Per-model, per-row predictions of a fitted population of regression models.

    Attributes
    ----------
    values : float64 array of shape (n_models, n_rows)
        Every model's prediction on every row (members and non-members alike).
    member : bool array of shape (n_models, n_rows)
    y : float64 array of shape (n_rows,)
        The observed target.
    info : dict
        Learner config, plan seeds, data fingerprint, backend, timings, cache counts.
    """

    values: np.ndarray
    member: np.ndarray
    y: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_models(self) -> int:
        return self.values.shape[0]

    @property
    def n_rows(self) -> int:
        return self.values.shape[1]

    def read_models(self, models: Any) -> np.ndarray:
        """``values[models]``."""
        return self.values[models]

    def squared_error(self) -> np.ndarray:
        """(pred - y)^2 of every model on every row, shape (n_models, n_rows)."""
        return np.square(self.values - self.y[None, :])

    def mse(self, members: bool) -> np.ndarray:
        """Per-model mean squared error on its training rows (True) or held-out rows."""
        sq = self.squared_error()
        mask = self.member if members else ~self.member
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(mask, sq, 0.0).sum(axis=1) / mask.sum(axis=1)


def _check_values_learner(learner: Any) -> Any:
    from assay.learners import get_learner

    learner = get_learner(learner)
    if not callable(getattr(learner, "fit_predict_values", None)):
        raise InvalidParameterError(
            f"learner must predict a number for a continuous target ('ridge', "
            f"'mlp-regressor'). Got {learner.get_config().get('name')!r}, a classifier.")
    return learner


def fit_regression_population(
    X: Any,
    y: Any,
    learner: Any,
    plan: PopulationPlan,
    *,
    backend: str = "batched",
    cache_dir: Any = None,
    data_fingerprint: str | None = None,
    progress: bool = False,
    on_chunk: Callable[[int, int], None] | None = None,
    memory_budget: float | None = None,
    scheduler_address: str | None = None,
) -> RegressionPopulation:
    """Fit every model of `plan` on a continuous target; keep its predictions on every row.

    Parameters
    ----------
    X : array-like of shape (n_rows, n_features)
    y : array-like of shape (n_rows,)
        Finite numbers.
    learner : str or RegressionLearner
        ``"ridge"``, ``"mlp-regressor"`` or a learner with ``fit_predict_values``.
    plan : PopulationPlan
    backend : {"batched", "joblib", "dask"}, default="batched"
        Chunks one after another in this process, fanned out to local processes, or
        submitted to a dask.distributed cluster (the scheduler at `scheduler_address`, or
        a new local cluster).
    cache_dir : path, optional
        Folder of the on-disk cache (finished chunks reused by a later call).
    data_fingerprint : str, optional
        Identifies the data in the cache key; default a hash of X and y.
    progress : bool, default=False
        Show a rich progress bar.
    on_chunk : callable(done, total), optional
        Called after each finished chunk.
    memory_budget : float, optional
        Accepted for the engine's common signature (recorded); the values stay in memory.
    scheduler_address : str, optional
        Address of a running Dask scheduler (backend "dask" only).

    Returns
    -------
    RegressionPopulation
    """
    from assay.engine.fit import _cache_key, _chunks, progress_bar
    from assay.learners.base import check_features

    if not isinstance(plan, PopulationPlan):
        raise InvalidParameterError(f"plan must be a PopulationPlan. Got {type(plan).__name__}.")
    backend = check_backend_name(backend)
    check_scheduler(backend, scheduler_address)
    learner = _check_values_learner(learner)
    X = check_features(X)
    y = np.asarray(y, dtype=np.float64)
    if y.shape != (X.shape[0],) or not np.isfinite(y).all():
        raise DataError(f"y must be {X.shape[0]} finite numbers. Got shape {y.shape}.")
    if plan.n_rows != X.shape[0]:
        raise InvalidParameterError(
            f"plan must cover the {X.shape[0]} rows of X. Got a plan for {plan.n_rows} rows.")
    check_population_size(plan.n_models, X.shape[0], 2, None)  # float64: two float32
    if cache_dir is not None:
        check_output_folder(cache_dir, "cache_dir")
    started = time.perf_counter()
    fingerprint = data_fingerprint or data_fingerprint_of(X, y)
    config = learner.get_config()
    chunks = _chunks(plan.n_models, check_scalar(learner.preferred_chunk, "preferred_chunk",
                                                 kind=int, low=1))
    values = np.empty((plan.n_models, X.shape[0]), dtype=np.float64)
    stats: dict[str, Any] = {"n_loaded_from_cache": 0, "n_fitted": 0, "n_corrupt": 0,
                             "chunk_seconds": []}
    cache = None
    if cache_dir is not None:
        key_fields = {"data": fingerprint, "learner": config, "plan": plan.fingerprint(),
                      "task": "regression", "shape": list(X.shape), "format": _CACHE_FORMAT}
        cache = _ChunkCache(Path(cache_dir), _cache_key(key_fields), key_fields)
    todo = []
    for start, stop in chunks:
        cached = None
        if cache is not None:
            try:
                cached = cache.load(start, stop, (stop - start, X.shape[0]), np.float64)
            except _CorruptEntry as exc:
                import warnings

                warnings.warn(f"damaged cache entry refit: {exc}", RuntimeWarning,
                              stacklevel=2)
                stats["n_corrupt"] += stop - start
        if cached is None:
            todo.append((start, stop))
        else:
            values[start:stop] = cached
            stats["n_loaded_from_cache"] += stop - start
    done = [plan.n_models - sum(b - a for a, b in todo)]
    # One process per core on joblib and Dask: BLAS's own pools would oversubscribe it.
    n_threads = None if backend == "batched" else 1
    n_workers = [1]

    def finished(results: Any) -> None:
        for start, stop, out, seconds in results:
            values[start:stop] = out
            if cache is not None:
                cache.store(start, stop, out)
            stats["n_fitted"] += stop - start
            stats["chunk_seconds"].append(round(seconds, 4))
            done[0] += stop - start
            bar.advance(task, stop - start)
            if on_chunk is not None:
                on_chunk(done[0], plan.n_models)

    with progress_bar(progress) as bar:
        task = bar.add_task(f"fitting {config['name']}", total=plan.n_models,
                            completed=done[0])
        if backend == "dask" and todo:
            with dask_client(scheduler_address) as client:
                from distributed import as_completed

                n_workers[0] = max(1, len(client.scheduler_info().get("workers", {})))
                X_remote, y_remote = client.scatter([X, y], broadcast=True)
                futures = [client.submit(_fit_values, a, b, learner, X_remote, y_remote,
                                         plan.member[a:b], plan.seeds[a:b], n_threads,
                                         pure=False) for a, b in todo]
                # Unordered: every finished chunk is cached at once, whatever its position.
                finished(f.result() for f in as_completed(futures))
        elif backend == "joblib" and len(todo) > 1:
            from joblib import Parallel, delayed

            finished(Parallel(n_jobs=-1, return_as="generator_unordered")(
                delayed(_fit_values)(a, b, learner, X, y, plan.member[a:b], plan.seeds[a:b],
                                     n_threads) for a, b in todo))
        else:
            finished(_fit_values(a, b, learner, X, y, plan.member[a:b], plan.seeds[a:b],
                                 n_threads) for a, b in todo)
    info = {"learner": config, "backend": backend, "task": "regression",
            "n_workers": n_workers[0],
            "seeds": plan.seeds.tolist(), "plan_params": dict(plan.params),
            "plan_fingerprint": plan.fingerprint(), "data_fingerprint": fingerprint,
            "cache_dir": None if cache is None else str(cache.folder),
            "chunk_size": chunks[0][1] - chunks[0][0],
            "seconds": round(time.perf_counter() - started, 4), "store": "memory",
            "memory_budget": memory_budget, **stats}
    return RegressionPopulation(values=values, member=np.array(plan.member), y=y, info=info)


def _fit_values(start: int, stop: int, learner: Any, X: Any, y: np.ndarray,
                member: np.ndarray, seeds: np.ndarray, n_threads: int | None
                ) -> tuple[int, int, np.ndarray, float]:
    """Fit models ``start:stop`` (runs in the worker for joblib and Dask)."""
    from assay.learners.base import compute_threads

    t0 = time.perf_counter()
    with compute_threads(n_threads, torch=getattr(learner, "uses_torch", False)):
        out = learner.fit_predict_values(X, y, member, seeds)
    out = np.asarray(out, dtype=np.float64)
    if out.shape != (stop - start, X.shape[0]):
        raise RuntimeError(f"{type(learner).__name__}.fit_predict_values returned shape "
                           f"{out.shape}, expected {(stop - start, X.shape[0])}.")
    return start, stop, out, time.perf_counter() - t0


def regression_fitter(X: Any, y: Any, *, data_fingerprint: str | None = None,
                      **engine: Any) -> Callable[..., RegressionPopulation]:
    """``fit(plan, learner, data=None)`` for a continuous target (as
    `assay.engine.population_fitter` for classes); `engine` as `engine_options` gives."""
    def fit(plan: PopulationPlan, learner: Any, data: tuple[Any, Any] | None = None
            ) -> RegressionPopulation:
        if data is not None:
            return fit_regression_population(data[0], data[1], learner, plan, **engine)
        return fit_regression_population(X, y, learner, plan,
                                         data_fingerprint=data_fingerprint, **engine)

    return fit
