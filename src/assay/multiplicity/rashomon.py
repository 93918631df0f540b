"""The ε-Rashomon set of a population of models, and every multiplicity figure over ε.

**Candidates.** `fit_candidates` trains K candidate models through the population engine
(`assay.engine.population_fitter`: any learner it supports, its backends and its
cache). They differ by seed, by the rows they train on (each a random subsample, without
replacement, of the training pool: the engine's membership masks are 0/1) and, with a
hyper-parameter grid, by their hyper-parameters (one population per grid point). Rows
of a common **held-out** set are never trained on by any candidate: a random share of
the table, or the rows the model under audit did not train on.

**The set.** Losses are measured on the held-out rows (log-loss or 0-1 error). The
ε-Rashomon set holds every model whose loss is at most ``best · (1 + ε)`` (relative
tolerance, the default) or ``best + ε`` (absolute), ``best`` being the lowest loss of
the candidates and the model under audit. Sets are nested as ε grows.

**Figures** (`multiplicity_curve`): per ε, on the held-out rows, relative to the model
under audit (or, without one, the best candidate): ambiguity, discrepancy, mean
Rashomon capacity, mean viable prediction range, mean score deviation,
self-consistency, churn (mean disagreement of a model of the set with the audited model)
and its bound, each with a 95 % interval over the sampling of the set (bootstrap over
the models), and the same per protected group and intersection on the group layer,
groups flagged by `assay.groups.FlagRule` on their ambiguity.

Ambiguity, discrepancy, capacity and viable prediction range can only grow with ε (a
larger set flips more decisions and spans more scores); self-consistency, the score
deviation and the churn are averages over the set and need not.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assay._serial import Serial, meta
from assay._stats import Estimate
from assay._validation import (
    MAX_RESAMPLES,
    DataError,
    InvalidParameterError,
    check_option,
    check_scalar,
)
from assay.engine import Population, PopulationPlan
from assay.groups import FlagRule, GroupIndex, permutation_test
from assay.multiplicity.metrics import (
    _binary_capacity,
    _class_counts,
    _sc_from_counts,
    blahut_arimoto,
)

__all__ = [
    "Candidates",
    "EpsilonFigures",
    "GroupFigures",
    "MultiplicityCurve",
    "NOT_MEASURABLE",
    "check_epsilons",
    "fit_candidates",
    "grid_points",
    "held_out_losses",
    "multiplicity_curve",
    "random_heldout",
    "rashomon_plan",
    "rashomon_sets",
    "smallest_measurable_epsilon",
]

LOSSES = ("log_loss", "error")
TOLERANCES = ("relative", "absolute")
_EPS_PROB = 1e-7
# Elements of one masked (bootstrap x models x rows) reduction chunk.
_CHUNK_ELEMENTS = 1 << 24


# --------------------------------------------------------------------------- checks


def check_epsilons(epsilons: Any, name: str = "epsilons") -> tuple[float, ...]:
    """Sorted distinct ε values, each a number > 0 (raises a one-line error otherwise)."""
    if isinstance(epsilons, int | float) and not isinstance(epsilons, bool):
        epsilons = (epsilons,)
    try:
        values = list(epsilons)
    except TypeError:
        raise InvalidParameterError(f"{name} must be numbers > 0. Got {epsilons!r}.") from None
    if not values:
        raise InvalidParameterError(f"{name} must hold at least one number > 0. Got [].")
    out = [check_scalar(e, name, low=0, low_open=True) for e in values]
    return tuple(sorted(set(out)))


def grid_points(grid: Mapping[str, Sequence[Any]] | None) -> list[dict[str, Any]]:
    """Every combination of a hyper-parameter grid ``{"C": [0.1, 1], ...}`` (in order)."""
    if not grid:
        return [{}]
    if not isinstance(grid, Mapping):
        raise InvalidParameterError(f"grid must map hyper-parameter names to lists of values. "
                                    f"Got {grid!r}.")
    keys = list(grid)
    values = []
    for key in keys:
        v = grid[key]
        v = list(v) if isinstance(v, list | tuple) else [v]
        if not v:
            raise InvalidParameterError(f"grid[{key!r}] must hold at least one value. Got [].")
        values.append(v)
    return [dict(zip(keys, combo)) for combo in itertools.product(*values)]


# --------------------------------------------------------------------------- plans


def rashomon_plan(n_rows: int, n_models: int, *, heldout: Any = None, holdout: float = 0.3,
                  subsample: float = 0.8, random_state: int | None = 0,
                  params: dict[str, Any] | None = None) -> PopulationPlan:
    """K candidates that never train on a common held-out set.

    Parameters
    ----------
    n_rows : int
    n_models : int
        K, at least 1.
    heldout : bool array of shape (n_rows,), optional
        Rows no model trains on (e.g. the non-members of the model under audit).
        Default: a random `holdout` share of the rows.
    holdout : float in (0, 1), default=0.3
        Share of rows held out when `heldout` is not given.
    subsample : float in (0, 1], default=0.8
        Share of the remaining rows (the training pool) each model trains on, drawn
        at random without replacement; 1 trains every model on the whole pool (then
        only seeds and hyper-parameters vary).
    random_state : int or None
    params : dict, optional
        Hyper-parameters recorded with the plan (part of the cache key).
    """
    n_rows = check_scalar(n_rows, "n_rows", kind=int, low=2)
    n_models = check_scalar(n_models, "n_models", kind=int, low=1)
    subsample = check_scalar(subsample, "subsample", low=0, high=1, low_open=True)
    rng = np.random.default_rng(random_state)
    if heldout is None:
        heldout = random_heldout(n_rows, holdout, rng)
    heldout = np.asarray(heldout)
    if heldout.shape != (n_rows,) or heldout.dtype != np.bool_:
        raise InvalidParameterError(f"heldout must be a boolean array of length {n_rows}. "
                                    f"Got {heldout.dtype} of shape {heldout.shape}.")
    pool = np.flatnonzero(~heldout)
    if len(pool) < 2 or heldout.sum() < 1:
        raise DataError(f"heldout must leave at least 2 training rows and hold at least 1 row. "
                        f"Got {len(pool)} training and {int(heldout.sum())} held-out rows.")
    size = max(1, round(subsample * len(pool)))
    # One uniform key per (model, pool row); each model takes its `size` smallest.
    keys = rng.random((n_models, len(pool)))
    chosen = np.argpartition(keys, size - 1, axis=1)[:, :size] if size < len(pool) \
        else np.broadcast_to(np.arange(len(pool)), (n_models, len(pool)))
    member = np.zeros((n_models, n_rows), dtype=bool)
    member[np.arange(n_models)[:, None], pool[chosen]] = True
    seeds = rng.integers(0, 2**31 - 1, size=n_models, dtype=np.int64)
    return PopulationPlan(member=member, seeds=seeds, params={
        "rashomon": True, "subsample": subsample, "n_heldout": int(heldout.sum()),
        **dict(params or {})})


def random_heldout(n_rows: int, holdout: float, random_state: Any = 0) -> np.ndarray:
    """A random `holdout` share of `n_rows` rows (at least one, never all): bool (n_rows,)."""
    holdout = check_scalar(holdout, "holdout", low=0, high=1, low_open=True, high_open=True)
    rng = np.random.default_rng(random_state)
    n_out = min(max(1, round(holdout * n_rows)), n_rows - 1)
    heldout = np.zeros(n_rows, dtype=bool)
    heldout[rng.permutation(n_rows)[:n_out]] = True
    return heldout


@dataclass(frozen=True, eq=False)
class Candidates:
    """The candidate models of a Rashomon set and the rows none of them trained on.

    Attributes
    ----------
    probs : float32 array (n_models, n_rows, n_classes)
    member : bool array (n_models, n_rows)
    y : int64 array (n_rows,)
    heldout : bool array (n_rows,)
        Rows no candidate trained on: losses and figures are measured there.
    params : list of dict
        Hyper-parameters of each candidate (its grid point).
    info : dict
        Learner config, grid, subsample, timings, cache counts.
    """

    probs: np.ndarray
    member: np.ndarray
    y: np.ndarray
    heldout: np.ndarray
    params: list[dict[str, Any]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.probs.ndim != 3 or self.member.shape != self.probs.shape[:2]:
            raise InvalidParameterError(
                f"probs must be (models, rows, classes) with member (models, rows). Got "
                f"{self.probs.shape} and {self.member.shape}.")
        if (self.member & self.heldout[None, :]).any():
            raise InvalidParameterError("heldout must be rows no candidate trained on. Got "
                                        "held-out rows some candidate trained on.")

    @property
    def n_models(self) -> int:
        return int(self.probs.shape[0])

    @property
    def rows(self) -> np.ndarray:
        """Positions of the held-out rows."""
        return np.flatnonzero(self.heldout)

    @classmethod
    def from_population(cls, population: Population, heldout: Any = None,
                        params: list[dict[str, Any]] | None = None) -> Candidates:
        """Candidates from a fitted population; held out: rows no model trained on."""
        if heldout is None:
            heldout = ~population.member.any(axis=0)
        heldout = np.asarray(heldout, dtype=bool)
        if not heldout.any():
            raise DataError("population must leave some rows untrained by every model (the "
                            "held-out rows of the Rashomon set). Got none; fit a "
                            "rashomon_plan.")
        return cls(probs=population.probs, member=population.member, y=population.y,
                   heldout=heldout, params=params or [{}] * population.n_models,
                   info=dict(population.info))


def fit_candidates(X: Any, y: Any, learner: Any, *, n_models: int = 32,
                   grid: Mapping[str, Sequence[Any]] | None = None, heldout: Any = None,
                   holdout: float = 0.3, subsample: float = 0.8, random_state: int = 0,
                   n_classes: int | None = None,
                   fit: Callable[[PopulationPlan, Any], Population] | None = None,
                   **fit_kwargs: Any) -> Candidates:
    """Train the candidates of a Rashomon set through the population engine.

    Parameters
    ----------
    X, y : arrays
        Features and class indices (as `assay.engine.fit_population` takes them).
    learner : str, estimator or Learner
        Anything `assay.learners.get_learner` accepts; with a `grid`, each grid point is
        ``get_learner(learner, **point)``.
    n_models : int, default=32
        Candidates in all, spread evenly over the grid points (at least one each).
    grid : mapping of str to list, optional
        Hyper-parameter values to combine, e.g. ``{"C": [0.1, 1.0, 10.0]}``.
    heldout, holdout, subsample, random_state
        See `rashomon_plan`; every grid point shares the held-out rows.
    n_classes : int, optional
    fit : callable(plan, learner) -> Population, optional
        How a plan is fitted (`AuditContext.fit` in an audit); default the engine's entry
        (`assay.engine.population_fitter`) with `fit_kwargs` (backend, cache_dir,
        progress, ...).

    Returns
    -------
    Candidates
    """
    from assay.engine import check_population_size, population_fitter
    from assay.learners import get_learner

    n_models = check_scalar(n_models, "n_models", kind=int, low=1)
    points = grid_points(grid)
    if n_models < len(points):
        raise InvalidParameterError(f"n_models must be at least the {len(points)} grid points "
                                    f"(one model each). Got {n_models}.")
    learners = [get_learner(learner, **point) for point in points]  # all checked first
    y_arr = np.asarray(y)
    n_rows = len(y_arr)
    # Candidates keep every model's probabilities in memory.
    check_population_size(n_models, n_rows, n_classes or len(np.unique(y_arr)),
                          spill=False)
    rng = np.random.default_rng(random_state)
    if heldout is None:
        heldout = random_heldout(n_rows, holdout, rng)
    elif np.asarray(heldout).shape != (n_rows,):
        raise InvalidParameterError(f"heldout must be a boolean array of length {n_rows}. "
                                    f"Got shape {np.asarray(heldout).shape}.")
    counts = [n_models // len(points) + (i < n_models % len(points))
              for i in range(len(points))]
    if fit is None:
        fit = population_fitter(X, y_arr, n_classes=n_classes, **fit_kwargs)
    probs, member, params, infos = [], [], [], []
    for point, spec, count in zip(points, learners, counts):
        plan = rashomon_plan(n_rows, count, heldout=heldout, subsample=subsample,
                             random_state=int(rng.integers(2**31)),
                             params={"grid_point": point})
        population = fit(plan, spec)
        probs.append(population.probs)
        member.append(population.member)
        params.extend([dict(point)] * count)
        infos.append({k: population.info.get(k) for k in (
            "learner", "seconds", "n_fitted", "n_loaded_from_cache", "backend")})
    return Candidates(
        probs=np.concatenate(probs), member=np.concatenate(member),
        y=population.y, heldout=np.asarray(heldout, dtype=bool), params=params,
        info={"grid": {k: list(v) if isinstance(v, list | tuple) else [v]
                       for k, v in (grid or {}).items()},
              "subsample": subsample, "n_heldout": int(np.sum(heldout)),
              "populations": infos,
              "seconds": round(sum(i["seconds"] or 0.0 for i in infos), 4),
              "n_fitted": sum(i["n_fitted"] or 0 for i in infos),
              "n_loaded_from_cache": sum(i["n_loaded_from_cache"] or 0 for i in infos)})


# --------------------------------------------------------------------------- losses and sets


def held_out_losses(probs: np.ndarray, y: np.ndarray, loss: str = "log_loss") -> np.ndarray:
    """Mean loss of every model on the rows given: probs (m, n, c), y (n,) -> (m,)."""
    check_option(loss, "loss", LOSSES)
    p = np.asarray(probs)
    if loss == "error":
        return (p.argmax(axis=2) != y[None, :]).mean(axis=1)
    true = np.take_along_axis(p, y[None, :, None], axis=2)[..., 0].astype(np.float64)
    return -np.log(np.clip(true, _EPS_PROB, 1.0)).mean(axis=1)


def rashomon_sets(losses: Any, epsilons: Any, *, reference: float | None = None,
                  tolerance: str = "relative") -> tuple[np.ndarray, np.ndarray]:
    """Which models are in the ε-Rashomon set, for every ε.

    Parameters
    ----------
    losses : array of shape (m,)
        Held-out loss of every model.
    epsilons : sequence of float > 0
    reference : float, optional
        The best loss (default ``min(losses)``).
    tolerance : {"relative", "absolute"}
        ``loss <= reference * (1 + ε)`` or ``loss <= reference + ε``.

    Returns
    -------
    in_set : bool array (n_epsilons, m)
    thresholds : float array (n_epsilons,)
    """
    eps = np.asarray(check_epsilons(epsilons))
    check_option(tolerance, "tolerance", TOLERANCES)
    losses = np.asarray(losses, dtype=np.float64)
    best = float(losses.min()) if reference is None else float(reference)
    thresholds = best * (1 + eps) if tolerance == "relative" else best + eps
    # A hair of slack: the best model is always in, whatever the rounding.
    return losses[None, :] <= thresholds[:, None] + 1e-12, thresholds


# --------------------------------------------------------------------------- figures


@dataclass
class GroupFigures(Serial):
    """Figures of one protected group (or intersection) at one ε, on held-out rows."""

    label: str
    n_rows: int
    supported: bool
    ambiguity: Estimate | None = None
    n_reversed: int = 0
    mean_capacity: Estimate | None = None
    mean_vpr: Estimate | None = None
    difference: float | None = field(default=None, metadata=meta(null_nan=True))
    p_value: float | None = field(default=None, metadata=meta(null_nan=True))
    flagged: bool = False

    __json_required__ = ("ambiguity", "n_reversed", "flagged")


_FIGURES = ("ambiguity", "discrepancy", "mean_capacity", "mean_vpr", "mean_score_std",
            "self_consistency", "churn", "pairwise_churn")


@dataclass
class EpsilonFigures(Serial):
    """Every figure of the ε-Rashomon set at one ε (estimates None without figures).

    Attributes
    ----------
    epsilon, threshold : float
        ε and the loss a model may not exceed.
    n_models : int
        Models in the set (the audited model included when it is within ε).
    target_in_set : bool
        Whether the audited model itself is within ε of the best.
    ambiguity, discrepancy, mean_capacity, mean_vpr, mean_score_std, self_consistency,
    churn, pairwise_churn : Estimate or None
        See the module docstring; 95 % bootstrap intervals over the set's models.
    churn_bound : float or None
        err(audited) + max error of the set: no model of the set can disagree with the
        audited model on more rows (triangle inequality of disagreement).
    n_reversed : int
        Held-out rows whose decision some model of the set reverses.
    note : str
        Why figures are missing or thin (fewer than 2 models).
    reason : str or None
        Why the figures are null ("not measurable at this epsilon: ..."), when the set
        has fewer than two models; None when they are measured.
    groups : dict
        Grouping key -> group label -> GroupFigures.
    """

    epsilon: float
    threshold: float
    n_models: int
    target_in_set: bool
    ambiguity: Estimate | None = None
    discrepancy: Estimate | None = None
    mean_capacity: Estimate | None = None
    mean_vpr: Estimate | None = None
    mean_score_std: Estimate | None = None
    self_consistency: Estimate | None = None
    churn: Estimate | None = None
    pairwise_churn: Estimate | None = None
    churn_bound: float | None = field(default=None, metadata=meta(null_nan=True))
    n_reversed: int = 0
    note: str = ""
    reason: str | None = None
    groups: dict[str, dict[str, GroupFigures]] = field(default_factory=dict)

    __json_required__ = ("ambiguity", "discrepancy", "mean_capacity", "churn", "groups")

    @property
    def measurable(self) -> bool:
        """Whether the set has the two models every figure needs."""
        return self.reason is None


@dataclass
class MultiplicityCurve:
    """Every figure over ε, per-row figures at the headline ε, and how they were made.

    Attributes
    ----------
    epsilons : list of EpsilonFigures
        One per ε, ascending.
    headline_epsilon : float
    loss, tolerance : str
    best_loss, target_loss : float
    n_candidates, n_heldout : int
    losses : list of float
        Held-out loss of every candidate (ascending order of the candidates).
    flag_rule : FlagRule
    row_ids : array
        Held-out row ids (per-row arrays below are in this order).
    capacity, vpr, reversal_share : float arrays
        Per held-out row at the headline ε (share of the set's other models reversing
        the decision).
    decision : int array
        The audited model's decided class on each held-out row.
    min_measurable_epsilon : float or None
        The smallest ε whose set holds at least two models (the audited model
        included): below it no figure is measurable; None when no ε ever gives two.
    """

    epsilons: list[EpsilonFigures]
    headline_epsilon: float
    loss: str
    tolerance: str
    best_loss: float
    target_loss: float
    n_candidates: int
    n_heldout: int
    losses: list[float]
    flag_rule: FlagRule
    row_ids: np.ndarray
    capacity: np.ndarray
    vpr: np.ndarray
    reversal_share: np.ndarray
    decision: np.ndarray
    score_low: np.ndarray
    score_high: np.ndarray
    min_measurable_epsilon: float | None = None

    @property
    def headline(self) -> EpsilonFigures:
        return next(f for f in self.epsilons if f.epsilon == self.headline_epsilon)


NOT_MEASURABLE = "not measurable at this epsilon"


def smallest_measurable_epsilon(losses: Any, best: float, tolerance: str) -> float | None:
    """The smallest ε whose set holds at least two of the models with these `losses`.

    A set of one model has nothing to compare, so below this ε no multiplicity figure
    exists. None when no ε gives two models (one model, or a relative ε over a best loss
    of 0 that the others exceed).
    """
    ordered = np.sort(np.asarray(losses, dtype=np.float64))
    if ordered.size < 2:
        return None
    second = float(ordered[1])
    if tolerance == "absolute":
        return max(0.0, second - best)
    if best <= 0:
        return 0.0 if second <= 0 else None
    return max(0.0, second / best - 1.0)


def not_measurable_reason(n_models: int, epsilon: float, loss: str,
                          min_epsilon: float | None) -> str:
    """Why a set's figures are null, and from which ε they are not."""
    where = ("no ε gives a set of two models" if min_epsilon is None else
             f"the set holds at least two models from ε = {_eps_text(min_epsilon)}")
    return (f"{NOT_MEASURABLE}: the set holds {n_models} model{'s' if n_models != 1 else ''} "
            f"within ε = {epsilon:g} of the best held-out {loss} and a figure needs at least "
            f"two; {where}")


def _eps_text(value: float) -> str:
    """ε rounded up (3 significant digits), so the set at the printed ε has two models."""
    if value <= 0:
        return "0 (any ε > 0)"
    digits = 2 - math.floor(math.log10(value))
    scale = 10.0 ** digits
    return f"{math.ceil(value * scale - 1e-9) / scale:g}"


def _num(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _bootstrap_weights(s: int, n_bootstrap: int, rng: np.random.Generator) -> np.ndarray:
    """Row 0: every model once (the estimate); then `n_bootstrap` multinomial resamples."""
    if n_bootstrap == 0:
        return np.ones((1, s), dtype=np.float32)
    draws = rng.multinomial(s, np.full(s, 1.0 / s), size=n_bootstrap).astype(np.float32)
    return np.vstack([np.ones((1, s), dtype=np.float32), draws])


def _set_rows(p: np.ndarray, dec: np.ndarray, flips: np.ndarray, target: np.ndarray,
              target_in: bool, W: np.ndarray, capacity_iter: int) -> dict[str, np.ndarray]:
    """Per-row figures of weighted sets of models, one per row of W.

    p (s, n, c) float32 probabilities of the sampled models, dec (s, n) their decisions,
    flips (s, n) where they reverse the audited model, target (n, c) its probabilities,
    W (B, s) model weights (0: not drawn). The audited model joins every set with
    weight 1 when `target_in`. Returns (B, n) arrays: flip, vpr, score_std, sc, capacity.
    """
    s, n, c = p.shape
    B = W.shape[0]
    drawn = W > 0
    binary = c == 2
    x = p[:, :, 1:] if binary else p  # the class whose spread is read
    tx = target[:, 1:] if binary else target
    k = x.shape[2]
    flip = (drawn.astype(np.float32) @ flips.astype(np.float32)) > 0
    high = np.empty((B, n, k), dtype=np.float32)
    low = np.empty((B, n, k), dtype=np.float32)
    chunk = max(1, _CHUNK_ELEMENTS // max(1, s * n * k))
    for a in range(0, B, chunk):  # bounded memory; not a loop per resample
        where = drawn[a:a + chunk, :, None, None]
        view = np.broadcast_to(x[None], (where.shape[0], s, n, k))
        high[a:a + chunk] = np.max(view, axis=1, where=where, initial=-np.inf)
        low[a:a + chunk] = np.min(view, axis=1, where=where, initial=np.inf)
    if target_in:
        np.maximum(high, tx[None].astype(np.float32), out=high)
        np.minimum(low, tx[None].astype(np.float32), out=low)
    spread = high - low
    widest = spread.argmax(axis=2)[..., None]
    total = W.sum(axis=1) + float(target_in)
    flat = x.reshape(s, -1).astype(np.float32)
    mean = (W @ flat).reshape(B, n, k) + float(target_in) * tx[None]
    square = (W @ flat**2).reshape(B, n, k) + float(target_in) * tx[None] ** 2
    mean /= total[:, None, None]
    var = np.maximum(square / total[:, None, None] - mean**2, 0.0)
    std = np.sqrt(np.take_along_axis(var, widest, axis=2)[..., 0])
    counts = _class_counts(dec, c, W)
    if target_in:
        counts[:, np.arange(n), target.argmax(axis=1)] += 1.0
    sc = _sc_from_counts(counts, total)
    if binary:
        capacity = np.exp(_binary_capacity(low[..., 0].astype(np.float64),
                                           high[..., 0].astype(np.float64)))
    else:
        channels = p.transpose(1, 0, 2).astype(np.float64)
        if target_in:
            channels = np.concatenate([channels, target[:, None, :]], axis=1)
        capacity = np.empty((B, n))
        for b in range(B):  # Blahut–Arimoto is vectorised over rows; resamples in turn
            weights = np.append(drawn[b], True) if target_in else drawn[b]
            # Replicates only shape the interval: a looser stop than the estimate's.
            capacity[b] = np.exp(blahut_arimoto(
                channels, weights=np.broadcast_to(weights.astype(float), channels.shape[:2]),
                tol=1e-8 if b == 0 else 1e-6, max_iter=capacity_iter if b == 0 else
                max(1, capacity_iter // 10)))
    return {"flip": flip, "vpr": np.take_along_axis(spread, widest, axis=2)[..., 0],
            "score_std": std, "sc": sc, "capacity": capacity,
            "low": low[..., 0] if binary else None, "high": high[..., 0] if binary else None}


def _estimate(values: np.ndarray, confidence: float, low: float | None = 0.0,
              high: float | None = 1.0) -> Estimate:
    """Row 0 is the estimate, the rest bootstrap replicates: spread centred on it.

    A resample holds about 63 % of the distinct models, which biases union-type figures
    (ambiguity, capacity) low; the percentile spread of the replicates around their
    mean is kept, centred on the estimate.
    """
    point = float(values[0])
    if values.shape[0] < 3 or not np.isfinite(point):
        return Estimate(point, point, point)
    reps = values[1:][np.isfinite(values[1:])]
    if reps.size < 2:
        return Estimate(point, point, point)
    centre = float(reps.mean())
    lo, hi = np.quantile(reps, [(1 - confidence) / 2, (1 + confidence) / 2])
    a, b = point - (centre - lo), point + (hi - centre)
    if low is not None:
        a, b = max(a, low), max(b, low)
    if high is not None:
        a, b = min(a, high), min(b, high)
    return Estimate(point, float(min(a, point)), float(max(b, point)))


def multiplicity_curve(
    candidates: Candidates,
    epsilons: Sequence[float] = (0.005, 0.01, 0.02, 0.05),
    *,
    target: Any = None,
    loss: str = "log_loss",
    tolerance: str = "relative",
    headline_epsilon: float | None = None,
    groups: GroupIndex | None = None,
    row_ids: Any = None,
    n_bootstrap: int = 100,
    confidence: float = 0.95,
    flag_rule: FlagRule | None = None,
    min_support: int = 50,
    n_permutations: int = 200,
    capacity_iter: int = 2000,
    random_state: int = 0,
) -> MultiplicityCurve:
    """Every multiplicity figure of the ε-Rashomon sets of `candidates`, over ε.

    Parameters
    ----------
    candidates : Candidates
    epsilons : sequence of float > 0
    target : TargetPredictions or array (n_rows, n_classes), optional
        The model under audit (its probabilities on every row). Its held-out rows must
        be the candidates'. Default: the best candidate.
    loss : {"log_loss", "error"}
    tolerance : {"relative", "absolute"}
    headline_epsilon : float, optional
        The ε of the per-row figures and the headline (default: 0.01 if listed, else
        the median ε); added to `epsilons` when missing.
    groups : GroupIndex over all rows, optional
    row_ids : array (n_rows,), optional
    n_bootstrap : int, default=100
        Resamples of the set's models for the intervals (0: none).
    confidence : float, default=0.95
    flag_rule : FlagRule, optional
        Default ``FlagRule(min_difference=0.05)`` on group ambiguity.
    min_support, n_permutations : int
        Group layer settings (`assay.groups.permutation_test`).
    capacity_iter : int
        Blahut–Arimoto iterations at most (more than two classes).
    random_state : int

    Returns
    -------
    MultiplicityCurve
    """
    if not isinstance(candidates, Candidates):
        raise InvalidParameterError(
            f"candidates must be Candidates. Got {type(candidates).__name__}.")
    eps = list(check_epsilons(epsilons))
    check_option(loss, "loss", LOSSES)
    check_option(tolerance, "tolerance", TOLERANCES)
    if headline_epsilon is None:
        headline_epsilon = 0.01 if 0.01 in eps else eps[len(eps) // 2]
    headline_epsilon = check_scalar(headline_epsilon, "headline_epsilon", low=0, low_open=True)
    if headline_epsilon not in eps:
        eps = sorted([*eps, headline_epsilon])
    n_bootstrap = check_scalar(n_bootstrap, "n_bootstrap", kind=int, low=0, high=MAX_RESAMPLES)
    confidence = check_scalar(confidence, "confidence", low=0, high=1, low_open=True,
                              high_open=True)
    rule = flag_rule or FlagRule(min_difference=0.05)
    rows = candidates.rows
    y = candidates.y[rows]
    probs = candidates.probs[:, rows]
    n_rows_all = candidates.y.shape[0]
    losses = held_out_losses(probs, y, loss)
    external = target is not None
    if external:
        t_probs = np.asarray(getattr(target, "probs", target), dtype=np.float64)
        if t_probs.shape != (n_rows_all, probs.shape[2]):
            raise DataError(f"target must give {probs.shape[2]} class probabilities for each "
                            f"of the {n_rows_all} rows. Got shape {t_probs.shape}.")
        member = getattr(target, "member", None)
        if member is not None and np.asarray(member)[rows].any():
            raise DataError("target must not have trained on the held-out rows of the "
                            "candidates. Got a model trained on some of them.")
        t_probs = t_probs[rows]
        target_loss = float(held_out_losses(t_probs[None], y, loss)[0])
        best = min(target_loss, float(losses.min()))
        pool = np.arange(candidates.n_models)
    else:
        best_index = int(np.argmin(losses))
        t_probs = probs[best_index].astype(np.float64)
        target_loss = best = float(losses[best_index])
        pool = np.delete(np.arange(candidates.n_models), best_index)
    in_set, thresholds = rashomon_sets(losses[pool], eps, reference=best, tolerance=tolerance)
    min_eps = smallest_measurable_epsilon(
        np.append(losses, target_loss) if external else losses, best, tolerance)
    target_in = target_loss <= thresholds + 1e-12
    p_pool = probs[pool]
    t_dec = t_probs.argmax(axis=1)
    dec_pool = p_pool.argmax(axis=2)
    flips_pool = dec_pool != t_dec[None, :]
    errors = held_out_losses(p_pool, y, "error")
    t_error = float(np.mean(t_dec != y))
    ids = np.arange(n_rows_all) if row_ids is None else np.asarray(row_ids)
    rng = np.random.default_rng(random_state)
    n = len(rows)
    c = probs.shape[2]

    figures: list[EpsilonFigures] = []
    per_row: dict[float, dict[str, np.ndarray]] = {}
    for e, members, threshold, t_in in zip(eps, in_set, thresholds, target_in):
        chosen = np.flatnonzero(members)
        s = len(chosen)
        fig = EpsilonFigures(epsilon=float(e), threshold=float(threshold),
                             n_models=int(s + t_in), target_in_set=bool(t_in))
        if s + t_in < 2:
            fig.note = (f"only {s + int(t_in)} model within ε = {e:g} of the best held-out "
                        f"{loss}: no set to compare")
        if not t_in:
            fig.note = ((fig.note + "; ") if fig.note else "") + (
                "the audited model itself is not within ε of the best model")
        if s + t_in < 2:
            # One model reverses nothing by itself: no figure from a set of one.
            fig.reason = not_measurable_reason(int(s + t_in), float(e), loss, min_eps)
            figures.append(fig)
            continue
        W = _bootstrap_weights(s, n_bootstrap, rng)
        sub = p_pool[chosen]
        values = _set_rows(sub, dec_pool[chosen], flips_pool[chosen], t_probs, bool(t_in), W,
                           capacity_iter)
        rates = flips_pool[chosen].mean(axis=1)
        drawn = W > 0
        scalars = {
            "ambiguity": values["flip"].mean(axis=1),
            "discrepancy": np.where(drawn, rates[None, :], -np.inf).max(axis=1),
            "mean_capacity": values["capacity"].mean(axis=1),
            "mean_vpr": values["vpr"].mean(axis=1),
            "mean_score_std": values["score_std"].mean(axis=1),
            "self_consistency": np.nanmean(values["sc"], axis=1) if s + t_in >= 2
            else np.full(W.shape[0], np.nan),
            "churn": (W @ rates) / W.sum(axis=1),
        }
        scalars["pairwise_churn"] = 1.0 - scalars["self_consistency"]
        bounds = {"mean_capacity": (1.0, float(min(s + t_in, c)))}
        for name, v in scalars.items():
            lo, hi = bounds.get(name, (0.0, 1.0))
            if name in ("self_consistency", "pairwise_churn") and s + t_in < 2:
                continue
            setattr(fig, name, _estimate(v, confidence, lo, hi))
        fig.churn_bound = float(min(1.0, t_error + errors[chosen].max()))
        fig.n_reversed = int(values["flip"][0].sum())
        per_row[float(e)] = values
        figures.append(fig)

    if groups is not None:
        _group_figures(figures, per_row, groups, rows, rule, min_support, n_permutations,
                       confidence, random_state, n_rows_all)
    head = per_row.get(float(headline_epsilon))
    fig_head = next(f for f in figures if f.epsilon == headline_epsilon)
    if head is not None:
        chosen = np.flatnonzero(in_set[eps.index(headline_epsilon)])
        share = flips_pool[chosen].mean(axis=0)
        capacity, vpr = head["capacity"][0], head["vpr"][0]
        low = head["low"][0] if head["low"] is not None else np.full(n, np.nan)
        high = head["high"][0] if head["high"] is not None else np.full(n, np.nan)
    else:
        share = np.zeros(n)
        capacity, vpr = np.ones(n), np.zeros(n)
        low = high = t_probs[:, -1]
    del fig_head
    return MultiplicityCurve(
        epsilons=figures, headline_epsilon=float(headline_epsilon), loss=loss,
        tolerance=tolerance, best_loss=best, target_loss=target_loss,
        n_candidates=candidates.n_models, n_heldout=n, losses=sorted(map(float, losses)),
        flag_rule=rule, row_ids=ids[rows], capacity=np.asarray(capacity, dtype=float),
        vpr=np.asarray(vpr, dtype=float), reversal_share=np.asarray(share, dtype=float),
        decision=t_dec, score_low=np.asarray(low, dtype=float),
        score_high=np.asarray(high, dtype=float), min_measurable_epsilon=min_eps)


def _group_figures(figures, per_row, groups: GroupIndex, rows, rule: FlagRule,
                   min_support: int, n_permutations: int, confidence: float,
                   random_state: int, n_rows_all: int) -> None:
    """Per-group figures of every ε (one matrix product per grouping), flags by one test."""
    computed = [f for f in figures if f.epsilon in per_row]
    if not computed:
        return
    # One permutation test of the per-row reversal indicator, every ε as a column.
    values = np.full((n_rows_all, len(computed)), np.nan)
    for j, f in enumerate(computed):
        values[rows, j] = per_row[f.epsilon]["flip"][0]
    tests = permutation_test(values, groups, min_support=min_support,
                             n_permutations=n_permutations, direction=rule.direction,
                             random_state=random_state)
    for grouping in groups.groupings:
        codes = grouping.codes[rows]
        sizes = np.bincount(codes, minlength=grouping.n_groups)
        onehot = np.zeros((len(rows), grouping.n_groups), dtype=np.float32)
        onehot[np.arange(len(rows)), codes] = 1.0
        test = tests[grouping.key]
        for j, f in enumerate(computed):
            v = per_row[f.epsilon]
            with np.errstate(invalid="ignore", divide="ignore"):
                means = {name: (v[name].astype(np.float32) @ onehot) / sizes
                         for name in ("flip", "capacity", "vpr")}
            flagged = rule.flags(test.difference[:, j], test.p_value[:, j])
            reversed_ = np.bincount(codes, weights=v["flip"][0], minlength=grouping.n_groups)
            entries = {}
            for g, label in enumerate(grouping.labels):  # records, the figures are above
                supported = bool(sizes[g] >= min_support)
                entry = GroupFigures(label=label, n_rows=int(sizes[g]), supported=supported,
                                     n_reversed=int(reversed_[g]) if supported else 0)
                if supported:
                    entry.ambiguity = _estimate(means["flip"][:, g], confidence)
                    entry.mean_capacity = _estimate(means["capacity"][:, g], confidence, 1.0,
                                                    None)
                    entry.mean_vpr = _estimate(means["vpr"][:, g], confidence)
                    entry.difference = _num(test.difference[g, j])
                    entry.p_value = _num(test.p_value[g, j])
                    entry.flagged = bool(flagged[g])
                entries[label] = entry
            f.groups[grouping.key] = entries
