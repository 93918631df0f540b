"""The mitigation front of a regression model: candidates that bring the groups'
prediction distributions together, chosen on half of the held-out rows and confirmed on the
other half, or, where that half lacks group support (``confirm_by``), chosen on every
held-out row and confirmed by cross-fitting (`crossfit_values`).

Candidates (each fitted on the rows the model under audit trained on, so that the held-out
rows serve only to choose and to confirm):

- **Wasserstein-barycenter post-processing** (Chzhen, Denis, Hebiri, Oneto and Pontil,
  "Fair regression with Wasserstein barycenters", NeurIPS 2020): in group s,
  ``fair(x) = sum_s' p_s' Q_s'(F_s(f(x) + U))`` with each group's CDF F and quantile
  function Q of the model's predictions, p the groups' shares and U a tiny uniform jitter
  that breaks ties; the groups' prediction distributions all become their barycenter, the
  MSE-cheapest way to equal them. Partial versions ``(1 - alpha) f + alpha fair`` trace
  the front (alpha in `ALPHAS`). The groups are the finest intersection of the protected
  attributes (equal there, equal on every attribute); an intersection with fewer than
  `MIN_CELL_ROWS` fitting rows is pooled with the other small ones. The CDFs need only
  predictions, not truths.
- **Bounded group loss** (fairlearn's ``ExponentiatedGradient`` with
  ``BoundedGroupLoss(SquareLoss(lo, hi), upper_bound=zeta)``, Agarwal, Dudik and Wu 2019):
  a ridge regression whose every intersection's squared loss stays below zeta, for zeta
  between the unconstrained ridge's overall and worst group loss (`ZETA_STEPS`), fitted on
  at most `BGL_MAX_ROWS` of the rows (it is slow). It bounds the worst group's error, not
  the distance between the groups' predictions, so it is scored on the same axes and
  rarely wins; asked for by name only.

The gap is the distance (KS, or Wasserstein-1 in the target's units) between one group's
predictions and everyone else's, largest over the groups with at least ``min_rows`` rows
of each attribute and intersection; the cost is the relative increase of the error (MSE or
MAE) over the unmitigated model's. On the choosing half the preferred candidate is the one
with the smallest gap among those below the unmitigated gap within ``max_cost``; on the
confirming half the paired bootstrap of both models' gaps and errors (one row resample
moves both) gives the intervals, and `assay.fairness.verdict.judge` says whether it is a
fix, in the regression front's words (`REGRESSION_WORDING`).

Small tables (German credit: 500 held-out rows, 250 on each half, no attribute with two
groups of 100) get a verdict by cross-fitting, as the classification front's
(`assay.fairness.crossfit`): ``confirm_by="auto"`` (the default) cross-fits where the
confirming half would leave a grouping without two supported groups. Each fold's rows get
the predictions of the candidate chosen by the same rules on the other folds; the
envelope of the repeats' paired intervals must lie below the margin, and so must the
chosen candidate's own paired difference on all held-out rows.

A barycenter candidate is deployable (`BarycenterFairRegressor`: the base model's
prediction and the groups read from X by name, the fitted quantile tables and alpha);
its predictions equal the candidate's on every row.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from assay._serial import Serial, meta
from assay._stats import Estimate
from assay.fairness.candidates import _jsonable, _short
from assay.fairness.fair_regressor import (
    POOLED,
    BarycenterFairRegressor,
    barycenter_tables,
    barycenter_values,
    intersection_cells,
)
from assay.fairness.verdict import PairedComparison, Verdict, Wording

__all__ = ["ALPHAS", "BarycenterPostprocessor", "DISTANCES", "ERRORS", "METHODS",
           "REGRESSION_WORDING", "RegressionCandidate", "RegressionFront",
           "build_regression_front", "compare_paired_values", "crossfit_values",
           "intersection_cells", "score_values"]

#: Mitigation methods of the regression front.
METHODS = ("barycenter", "bounded_group_loss")
#: The distance between a group's predictions and the rest's.
DISTANCES = ("ks", "wasserstein")
#: The error a fix may cost.
ERRORS = ("mse", "mae")
#: Shares of the barycenter in the partial candidates (1: the full post-processing).
ALPHAS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
#: Bounds of bounded group loss: the unconstrained ridge's overall loss plus this share of
#: the way to its worst group's loss (small: fairlearn refits the ridge some 50 times each).
ZETA_STEPS = (0.0, 1 / 3, 2 / 3)
#: Fitting rows bounded group loss is fitted on at most (a random subset): fairlearn's
#: BoundedGroupLoss weighs rows in a row-wise pandas loop, about 100 s per bound on 11,000
#: rows (Law School) on one core; linear in the rows.
BGL_MAX_ROWS = 2000
#: Constraint violation fairlearn may leave, as a share of the bound.
BGL_TOLERANCE = 0.05
#: Fitting rows an intersection needs for its own CDF; smaller ones are pooled.
MIN_CELL_ROWS = 20
#: Paired resamples of the confirmation (each recomputes every group's distances).
CONFIRM_RESAMPLES = 1000
#: Bootstrap weights are drawn in blocks of about this many floats.
_BLOCK_ELEMENTS = 4_000_000

_DISTANCE_WORDS = {"ks": "KS", "wasserstein": "Wasserstein-1"}


def _relative(x: float, signed: bool = False) -> str:
    if x is None or not math.isfinite(x):
        return "not measurable"
    return f"{100 * x:+.1f} %" if signed else f"{100 * x:.1f} %"


def _relative_estimate(e: Estimate | None, signed: bool = False) -> str:
    if e is None or not math.isfinite(e.value):
        return "not measurable"
    if not (math.isfinite(e.ci_low) and math.isfinite(e.ci_high)):
        return _relative(e.value, signed)
    return f"{_relative(e.value, signed)} [{_relative(e.ci_low)}, {_relative(e.ci_high)}]"


def _distance(x: float, signed: bool = False) -> str:
    if x is None or not math.isfinite(x):
        return "not measurable"
    return f"{x:+.3g}" if signed else f"{x:.3g}"


def _distance_estimate(e: Estimate | None, signed: bool = False) -> str:
    if e is None or not math.isfinite(e.value):
        return "not measurable"
    if not (math.isfinite(e.ci_low) and math.isfinite(e.ci_high)):
        return _distance(e.value, signed)
    return f"{_distance(e.value, signed)} [{_distance(e.ci_low)}, {_distance(e.ci_high)}]"


def _base_gap(candidate: RegressionCandidate, _: str) -> float:
    value = candidate.gap.value
    return float(value) if value is not None and math.isfinite(value) else float("nan")


def regression_wording(error: str = "mse") -> Wording:
    """A regression front's verdict words: a distance between groups' predictions, at a
    relative increase of the error."""
    name = error.upper()
    return Wording(
        cost_name=f"relative {name}", gap=_distance, gap_estimate=_distance_estimate,
        cost=_relative, cost_estimate=_relative_estimate, limit=_relative,
        gap_names=_DISTANCE_WORDS, base_gap=_base_gap,
        unmeasured=lambda c, k, m: list(c.unmeasurable))


#: The default regression wording (MSE).
REGRESSION_WORDING = regression_wording("mse")


# --------------------------------------------------------------------------- barycenter


class BarycenterPostprocessor:
    """Wasserstein-barycenter fair regression (Chzhen et al. 2020) of given predictions
    (the arithmetic: `assay.fairness.fair_regressor`, shared with the exported model).

    Parameters
    ----------
    min_cell_rows : int, default=MIN_CELL_ROWS
        Fitting rows a group needs for its own CDF; smaller groups are pooled.
    jitter : float, default=1e-6
        Half-width of the uniform tie-breaking noise on the fitting predictions, relative
        to their spread.
    random_state : int, default=0

    Attributes (after `fit`)
    ------------------------
    groups_ : dict of str to ndarray
        Each group's sorted, jittered fitting predictions.
    shares_ : dict of str to float
    """

    def __init__(self, min_cell_rows: int = MIN_CELL_ROWS, jitter: float = 1e-6,
                 random_state: int = 0) -> None:
        self.min_cell_rows = min_cell_rows
        self.jitter = jitter
        self.random_state = random_state

    def _pool(self, cells: np.ndarray) -> np.ndarray:
        """Labels of groups too small to fit their own CDF read as the pooled group."""
        labels, counts = np.unique(cells, return_counts=True)
        small = set(labels[counts < self.min_cell_rows])
        return np.where(np.isin(cells, list(small)), POOLED, cells) if small else cells

    def fit(self, pred: Any, cells: Any) -> BarycenterPostprocessor:
        """Each group's CDF and quantile function from predictions `pred` of rows in
        groups `cells` (labels)."""
        self.groups_, self.shares_, self.scale_ = barycenter_tables(
            pred, cells, min_cell_rows=self.min_cell_rows, jitter=self.jitter,
            random_state=self.random_state)
        return self

    def transform(self, pred: Any, cells: Any, alpha: float = 1.0) -> np.ndarray:
        """``(1 - alpha) pred + alpha fair(pred)``; a group unseen in fitting (or too
        small there) reads the pooled group's CDF, or everyone's without one. A row's
        value depends on its own prediction and group only."""
        return barycenter_values(pred, cells, self.groups_, self.shares_, alpha)

    def deployable(self, alpha: float, *, estimator: Any = None,
                   groups: Sequence[str] = (), attributes: Sequence[str] | None = None,
                   features: Sequence[str] | None = None,
                   prediction_column: str = "prediction") -> BarycenterFairRegressor:
        """The fitted tables as a scikit-learn estimator that reads its groups from X
        (`BarycenterFairRegressor`); its predictions equal `transform`'s."""
        model = BarycenterFairRegressor(
            estimator=estimator, groups=tuple(groups),
            attributes=None if attributes is None else tuple(attributes),
            features=None if features is None else tuple(features), alpha=float(alpha),
            prediction_column=prediction_column)
        model.quantiles_ = {str(k): np.asarray(v) for k, v in self.groups_.items()}
        model.shares_ = {str(k): float(v) for k, v in self.shares_.items()}
        return model


# --------------------------------------------------------------------------- figures


class _Layout:
    """Which groups of which groupings enter the gap on a set of rows."""

    def __init__(self, groups: pd.DataFrame, min_rows: int, max_intersection: int | None):
        from assay.groups import GroupIndex

        self.index = GroupIndex.from_frame(groups.reset_index(drop=True),
                                           max_intersection=max_intersection)
        self.n = self.index.n_rows
        self.entering = [(g, np.flatnonzero(g.sizes >= min_rows)) for g in self.index.groupings]
        self.unmeasurable = [f"{g.key} has {k.size} group(s) with at least {min_rows} rows "
                             f"(2 needed)" for g, k in self.entering if k.size < 2]


def _draws(pred: np.ndarray, y: np.ndarray, layout: _Layout, weights: np.ndarray,
           distance: str, error: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(error (B,), worst gap (B,), gap per grouping (B, H)) for weights (B, n)."""
    from assay.fairness.regression import _distances

    total = weights.sum(axis=1)
    loss = (pred - y) ** 2 if error == "mse" else np.abs(pred - y)
    err = weights @ loss / total
    order = np.argsort(pred, kind="stable")
    sorted_p = pred[order]
    ends = np.append(np.flatnonzero(np.diff(sorted_p) > 0), pred.size - 1)
    steps = np.diff(sorted_p[ends])
    sorted_w = weights[:, order]
    everyone = np.cumsum(sorted_w, axis=1)[:, ends]
    pick = 0 if distance == "ks" else 1
    per = np.full((weights.shape[0], len(layout.entering)), np.nan)
    for h, (grouping, entering) in enumerate(layout.entering):
        if entering.size < 2:
            continue
        codes = grouping.codes[order]
        values = [_distances(sorted_w, everyone, ends, steps, codes == k)[pick]
                  for k in entering]
        per[:, h] = np.max(np.stack(values, axis=1), axis=1)
    worst = per.max(axis=1) if not layout.unmeasurable else np.full(per.shape[0], np.nan)
    return err, worst, per


def _blocks(n: int, n_bootstrap: int, random_state: int | None):
    """Row-resample weights (b, n), a block at a time."""
    rng = np.random.default_rng(random_state)
    block = max(1, _BLOCK_ELEMENTS // max(n, 1))
    for start in range(0, n_bootstrap, block):
        b = min(block, n_bootstrap - start)
        # Counts: float32 holds them exactly and halves the cumulative sums' work.
        yield rng.multinomial(n, np.full(n, 1.0 / n), size=b).astype(np.float32)


def _estimate(point: float, boot: np.ndarray, confidence: float = 0.95) -> Estimate:
    boot = boot[np.isfinite(boot)]
    if not math.isfinite(point) or boot.size == 0:
        return Estimate(float(point), float("nan"), float("nan"))
    lo, hi = np.quantile(boot, [(1 - confidence) / 2, (1 + confidence) / 2])
    return Estimate(float(point), float(lo), float(hi))


@dataclass
class RegressionCandidate(Serial):
    """One model of the regression front, scored on the choosing rows.

    Attributes
    ----------
    index : int
    method : {"baseline", "barycenter", "bounded_group_loss"}
    params : dict
    error : Estimate
        MSE or MAE (the front's ``error``).
    cost : Estimate
        Relative increase of the error over the unmitigated model's (paired interval).
    gap : Estimate
        Largest distance between a group's predictions and the rest's over every
        attribute and intersection (NaN when a grouping is not measurable).
    gaps_by_grouping : dict of str to float
    unmeasurable : list of str
        Why a grouping's gap cannot be measured on these rows.
    rejected : str or None
        Why the candidate cannot be chosen.
    on_front : bool
        Not dominated on (error, gap) by another usable candidate.
    """

    index: int
    method: str = field(metadata=meta(schema={"enum": ["baseline", *METHODS]}))
    params: dict[str, Any] = field(metadata=meta(encode=lambda v: _jsonable(v)))
    error: Estimate
    cost: Estimate
    gap: Estimate
    gaps_by_grouping: dict[str, float | None] = field(default_factory=dict)
    unmeasurable: list[str] = field(default_factory=list)
    rejected: str | None = None
    on_front: bool = False
    # In memory only: the candidate's predictions on every held-out row.
    values: np.ndarray | None = field(default=None, metadata=meta(skip=True))
    error_draws: np.ndarray | None = field(default=None, metadata=meta(skip=True))
    # In memory only: the deployable model (a barycenter candidate reading the base
    # model's prediction from X; `BarycenterFairRegressor`).
    model: Any = field(default=None, metadata=meta(skip=True))

    __json_layout__ = ("index", "method", "name", "params", "error", "cost", "gap",
                       "gaps_by_grouping", "unmeasurable", "rejected", "on_front")
    __json_required__ = ("gaps_by_grouping", "unmeasurable", "rejected", "on_front")

    @property
    def name(self) -> str:
        """Short label, e.g. ``"barycenter (alpha=0.5)"``."""
        shown = ", ".join(f"{k}={_short(v)}" for k, v in self.params.items())
        return f"{self.method} ({shown})" if shown else self.method


def score_values(index: int, method: str, params: dict[str, Any], y: np.ndarray,
                 pred: np.ndarray, layout: _Layout, *, distance: str, error: str,
                 n_bootstrap: int, random_state: int | None,
                 base: RegressionCandidate | None = None) -> RegressionCandidate:
    """A candidate's error and gap on the rows of `layout`, with bootstrap intervals, and
    its cost against `base` (the unmitigated model scored with the same `random_state`:
    the same row resamples, so the cost's interval is paired)."""
    err, worst, per = _draws(pred, y, layout, np.ones((1, pred.size)), distance, error)
    boot = [_draws(pred, y, layout, w, distance, error)[:2]
            for w in _blocks(pred.size, n_bootstrap, random_state)]
    boot_err = np.concatenate([b[0] for b in boot]) if boot else np.empty(0)
    boot_gap = np.concatenate([b[1] for b in boot]) if boot else np.empty(0)
    draws = np.concatenate([err, boot_err])
    cost = Estimate(0.0, 0.0, 0.0)
    if base is not None and base.error_draws is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            relative = draws / base.error_draws - 1.0
        cost = _estimate(float(relative[0]), relative[1:])
    cand = RegressionCandidate(
        index=index, method=method, params=params,
        error=_estimate(float(err[0]), boot_err), cost=cost,
        gap=_estimate(float(worst[0]), boot_gap),
        gaps_by_grouping={g.key: (float(per[0, h]) if math.isfinite(per[0, h]) else None)
                          for h, (g, _) in enumerate(layout.entering)},
        unmeasurable=list(layout.unmeasurable), error_draws=draws)
    if not np.all(np.isfinite(pred)):
        cand.rejected = "non-finite predictions"
    elif np.ptp(pred) == 0:
        cand.rejected = f"constant: predicts {pred[0]:.4g} for every row"
    return cand


def compare_paired_values(y: Any, pred: Any, base_pred: Any, groups: pd.DataFrame, *,
                          distance: str = "ks", error: str = "mse", min_rows: int = 100,
                          max_intersection: int | None = None,
                          n_bootstrap: int = CONFIRM_RESAMPLES, confidence: float = 0.95,
                          random_state: int | None = 0) -> PairedComparison:
    """A candidate's predictions against the unmitigated model's on the same rows: both
    gaps and errors from the same row resamples (paired); the cost is the relative
    increase of the error, ``error(pred) / error(base_pred) - 1``."""
    y = np.asarray(y, dtype=np.float64)
    a = np.asarray(pred, dtype=np.float64)
    b = np.asarray(base_pred, dtype=np.float64)
    layout = _Layout(groups, min_rows, max_intersection)
    ones = np.ones((1, y.size))
    parts = []
    for w in [ones, *_blocks(y.size, n_bootstrap, random_state)]:
        ea, ga, pa = _draws(a, y, layout, w, distance, error)
        eb, gb, pb = _draws(b, y, layout, w, distance, error)
        with np.errstate(invalid="ignore", divide="ignore"):
            parts.append(np.stack([ga, gb, ga - gb, ea / eb - 1.0], axis=1))
        if w is ones:
            by = {g.key: (float(pa[0, h]), float(pb[0, h]))
                  for h, (g, _) in enumerate(layout.entering)}
    table = np.concatenate(parts)
    est = [_estimate(float(table[0, j]), table[1:, j], confidence) for j in range(4)]
    return PairedComparison(n_rows=int(y.size), gap=est[0], baseline_gap=est[1],
                            difference=est[2], cost=est[3], by_grouping=by,
                            unmeasurable=list(layout.unmeasurable))


# --------------------------------------------------------------------------- the front


@dataclass
class RegressionFront(Serial):
    """The regression model's mitigation front and its verdict.

    Attributes
    ----------
    distance : {"ks", "wasserstein"}
    error : {"mse", "mae"}
    methods : list of str
    rows : dict of str to int
        ``fit`` (the rows the model under audit trained on: the candidates are fitted
        there), ``choose`` and ``confirm`` (halves of its held-out rows; cross-fitted,
        both are every held-out row).
    min_rows : int
        Rows a group needs to enter a gap.
    candidates : list of RegressionCandidate
        Index 0 is the unmitigated model; figures on the choosing rows.
    preferred : int
        The candidate the preference picked (0: none usable).
    eligible : bool
        Its gap on the choosing rows is below the unmitigated model's within ``max_cost``.
    verdict : Verdict
        Confirmed on the other half (``comparison``), or why not.
    notes : list of str
        Methods that could not run, and why.
    confirmed_by : {"split", "crossfit"}
        How the choice was confirmed (``confirm_by`` "auto" resolved).
    crossfit : dict
        The cross-fitting's record (folds, repeats, each fold's pick, the fix's own paired
        difference, ``agreement``); empty after a split.
    """

    distance: str = field(metadata=meta(schema={"enum": list(DISTANCES)}))
    error: str = field(metadata=meta(schema={"enum": list(ERRORS)}))
    methods: list[str]
    rows: dict[str, int]
    min_rows: int
    candidates: list[RegressionCandidate]
    preferred: int
    eligible: bool
    verdict: Verdict
    notes: list[str] = field(default_factory=list)
    confirmed_by: str = field(default="split",
                              metadata=meta(schema={"enum": ["split", "crossfit"]}))
    crossfit: dict[str, Any] = field(default_factory=dict,
                                     metadata=meta(encode=lambda v: _jsonable(v)))

    __json_required__ = ("notes", "confirmed_by", "crossfit")

    @property
    def fixed(self) -> bool:
        return bool(self.verdict.fixed)

    @property
    def preferred_candidate(self) -> RegressionCandidate:
        return self.candidates[self.preferred]


def _split(held: np.ndarray, cells: np.ndarray, random_state: int
           ) -> tuple[np.ndarray, np.ndarray]:
    """(choose, confirm): halves of `held`, stratified by intersection where each has two
    rows."""
    from sklearn.model_selection import train_test_split

    strata = pd.Series(cells[held])
    strata = strata.where(strata.map(strata.value_counts()) >= 2, "(rare)")
    stratify = strata.to_numpy() if strata.value_counts().min() >= 2 else None
    choose, confirm = train_test_split(held, test_size=0.5, random_state=random_state,
                                       stratify=stratify)
    return np.sort(choose), np.sort(confirm)


def _non_dominated(cands: Sequence[RegressionCandidate]) -> None:
    usable = [c for c in cands if c.rejected is None and math.isfinite(c.gap.value)]
    for c in usable:
        c.on_front = not any(
            o is not c and o.error.value <= c.error.value and o.gap.value <= c.gap.value
            and (o.error.value < c.error.value or o.gap.value < c.gap.value) for o in usable)


def _prefer(cands: Sequence[RegressionCandidate], max_cost: float) -> tuple[int, bool]:
    """(preferred, eligible): the smallest gap (then error) among candidates whose gap is
    below the unmitigated model's and whose cost is within `max_cost` up to the upper end
    of its paired interval; else the best candidate only.

    The upper end, not the point: at the point the choice lands on the candidate whose
    cost just fits, and on rows that took no part it then exceeds `max_cost` about half
    of the time (COMPAS priors_count: +2.0 % on the choosing rows, +2.8 % on the
    confirming ones)."""
    base = cands[0]
    usable = [c for c in cands[1:] if c.rejected is None]
    if not usable:
        return 0, False

    def cost(c: RegressionCandidate) -> float:
        high = c.cost.ci_high
        return high if math.isfinite(high) else c.cost.value

    def gap(c: RegressionCandidate) -> float:  # not measurable sorts last
        return c.gap.value if math.isfinite(c.gap.value) else math.inf

    within = [c for c in usable if cost(c) <= max_cost]
    eligible = [c for c in within if gap(c) < gap(base)]
    if eligible:
        return min(eligible, key=lambda c: (gap(c), c.error.value)).index, True
    pool = within or usable
    return min(pool, key=lambda c: (gap(c), cost(c))).index, False


def _bounded_group_loss(X: np.ndarray, y: np.ndarray, cells: np.ndarray, train: np.ndarray,
                        held: np.ndarray, random_state: int) -> list[tuple[dict, np.ndarray]]:
    """Fairlearn's bounded group loss over `ZETA_STEPS`: [(params, held-out predictions)];
    zeta is a squared error in units of the target's range on the fitting rows."""
    from fairlearn.reductions import SquareLoss
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(random_state)
    if train.size > BGL_MAX_ROWS:
        train = np.sort(rng.choice(train, BGL_MAX_ROWS, replace=False))
    sensitive = BarycenterPostprocessor()._pool(cells[train])
    # The target scaled to [0, 1] on the fitting rows: fairlearn's exponentiated weights
    # overflow on a loss in the target's squared units (credit amounts: 1e8).
    lo, hi = float(y[train].min()), float(y[train].max())
    width = hi - lo if hi > lo else 1.0
    target = (y[train] - lo) / width
    features = np.asarray(X, dtype=np.float64)
    base = Ridge(alpha=1.0).fit(features[train], target).predict(features[train])
    loss = SquareLoss(0.0, 1.0).eval(target, base)
    overall = float(loss.mean())
    worst = max(float(loss[sensitive == c].mean()) for c in np.unique(sensitive))
    out = []
    with warnings.catch_warnings():
        # fairlearn's own pandas deprecations, not the user's to act on.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        for step in ZETA_STEPS:
            out.append(_bounded_at(features, target, sensitive, train, held, lo, width,
                                   overall + step * (worst - overall), step, rng))
    return out


def _bounded_at(features: np.ndarray, target: np.ndarray, sensitive: np.ndarray,
                train: np.ndarray, held: np.ndarray, lo: float, width: float, zeta: float,
                step: float, rng: np.random.Generator) -> tuple[dict, np.ndarray]:
    """One bounded-group-loss model at bound `zeta`: (params, held-out predictions)."""
    from fairlearn.reductions import BoundedGroupLoss, ExponentiatedGradient, SquareLoss
    from sklearn.linear_model import Ridge

    # fairlearn's default tolerance (0.01) exceeds the losses themselves here (about
    # 0.02 on COMPAS priors_count): every bound then gave the same model.
    model = ExponentiatedGradient(Ridge(alpha=1.0),
                                  BoundedGroupLoss(SquareLoss(0.0, 1.0), upper_bound=zeta),
                                  eps=BGL_TOLERANCE * zeta, max_iter=50)
    model.fit(features[train], target, sensitive_features=sensitive)
    # fairlearn's randomized prediction (one predictor drawn per row by its weight), drawn
    # here at once rather than row by row.
    preds = np.column_stack([p.predict(features[held]) for p in model.predictors_])
    weights = np.asarray(model.weights_, dtype=np.float64)
    pick = rng.choice(preds.shape[1], size=held.size, p=weights / weights.sum())
    return ({"zeta": zeta, "relative_bound": step},
            lo + width * preds[np.arange(held.size), pick])


def _fold_of(cells: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Fold of each row, stratified by intersection (those too rare to spread over the
    folds together)."""
    from sklearn.model_selection import KFold, StratifiedKFold

    strata = pd.Series(cells)
    strata = strata.where(strata.map(strata.value_counts()) >= folds, "(rare)")
    fold = np.empty(cells.size, dtype=np.int64)
    if strata.value_counts().min() >= folds:
        parts = StratifiedKFold(folds, shuffle=True, random_state=seed).split(cells, strata)
    else:
        parts = KFold(folds, shuffle=True, random_state=seed).split(cells)
    for k, (_, part) in enumerate(parts):
        fold[part] = k
    return fold


def _choice_on(values: Sequence[np.ndarray], methods: Sequence[tuple[str, dict]],
               y: np.ndarray, groups: pd.DataFrame, rows: np.ndarray, *, min_rows: int,
               max_intersection: int | None, distance: str, error: str, max_cost: float,
               n_bootstrap: int, random_state: int) -> int:
    """The front's choice made on `rows` alone, by its own rules (scores with paired
    intervals, rejection, eligibility, preference): a candidate, or 0 (the unmitigated
    model) when none is eligible."""
    layout = _Layout(groups.iloc[rows], min_rows, max_intersection)
    scored: list[RegressionCandidate] = []
    for i, ((method, params), v) in enumerate(zip(methods, values)):
        scored.append(score_values(i, method, params, y[rows], v[rows], layout,
                                   distance=distance, error=error, n_bootstrap=n_bootstrap,
                                   random_state=random_state,
                                   base=scored[0] if scored else None))
    pick, eligible = _prefer(scored, max_cost)
    return pick if eligible else 0


def crossfit_values(values: Sequence[np.ndarray], methods: Sequence[tuple[str, dict]],
                    y: np.ndarray, groups: pd.DataFrame, *, preferred: int, folds: int,
                    repeats: int, min_rows: int, max_intersection: int | None,
                    distance: str, error: str, max_cost: float, n_bootstrap: int,
                    random_state: int) -> tuple[PairedComparison, dict[str, Any]]:
    """Cross-fitted confirmation of the regression front (as the classification front's,
    `assay.fairness.crossfit`): in each repeat the held-out rows are cut into `folds`
    folds; each fold's rows get the predictions of the candidate the front's rules choose
    on the other folds (the unmitigated model's where none is eligible), so every row is
    predicted by a choice it took no part in. Each repeat's stitched predictions are
    compared with the unmitigated model's on all rows (paired bootstrap); the result is
    the repeats' mean with the envelope of their intervals. ``values[i]`` holds candidate
    i's predictions on every row of `y`; the record says what each fold picked, the
    share of rows whose stitched prediction is the preferred candidate's own
    (``agreement``) and that candidate's own paired difference on all rows."""
    from assay.fairness.crossfit import _envelope

    groups = groups.reset_index(drop=True)
    cells = intersection_cells(groups)
    common: dict[str, Any] = dict(distance=distance, error=error, min_rows=min_rows,
                                  max_intersection=max_intersection)
    picks, comparisons, same = [], [], []
    for r in range(repeats):
        fold = _fold_of(cells, folds, random_state + r)
        stitched = values[0].copy()
        row_picks = []
        for k in range(folds):
            pick = _choice_on(values, methods, y, groups, np.flatnonzero(fold != k),
                              max_cost=max_cost, n_bootstrap=n_bootstrap,
                              random_state=random_state, **common)
            # Only this fold's rows, which took no part in that choice, get its values.
            stitched[fold == k] = values[pick][fold == k]
            row_picks.append(int(pick))
        picks.append(row_picks)
        comparisons.append(compare_paired_values(y, stitched, values[0], groups,
                                                 random_state=random_state + r, **common))
        same.append(float(np.mean(stitched == values[preferred])))
    own = compare_paired_values(y, values[preferred], values[0], groups,
                                random_state=random_state, **common)
    record = {"folds": folds, "repeats": repeats, "picks": picks,
              "own_difference": own.difference.to_dict(),
              "chose_it": float(np.mean([p == preferred for row in picks for p in row])),
              "agreement": float(np.mean(same)),
              "differences": [c.difference.to_dict() for c in comparisons]}
    return _envelope(comparisons), record


def build_regression_front(
    y: Any, pred: Any, groups: pd.DataFrame, *, train: Any, held: Any,
    X: np.ndarray | None = None, methods: Sequence[str] = ("barycenter",),
    distance: str = "ks", error: str = "mse", min_rows: int = 100, max_cost: float = 0.02,
    min_reduction: float = 0.0, n_bootstrap: int = 200, max_intersection: int | None = None,
    confirm_by: str = "auto", folds: int = 5, repeats: int = 3,
    random_state: int = 0, say: Callable[[str], None] | None = None,
) -> RegressionFront:
    """The front around the model whose predictions on every row are `pred`.

    Candidates are fitted on `train` (row positions), scored on half of `held` and the
    preferred one confirmed on the other half (module docstring); with ``confirm_by``
    "crossfit" they are scored and chosen on every held-out row and the choice confirmed
    by `crossfit_values` (`folds` x `repeats`); "auto" cross-fits where the confirming
    half would leave a grouping without two groups of `min_rows` rows. `X` (dense
    features) is needed for ``bounded_group_loss`` only.
    """
    from assay._validation import check_option, check_scalar
    from assay.fairness.crossfit import CONFIRM_BY

    check_option(confirm_by, "confirm_by", CONFIRM_BY)
    check_scalar(folds, "folds", kind=int, low=2, high=20)
    check_scalar(repeats, "repeats", kind=int, low=1, high=50)
    say = say or (lambda _: None)
    y = np.asarray(y, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    train, held = np.sort(np.asarray(train)), np.sort(np.asarray(held))
    groups = groups.reset_index(drop=True)
    cells = intersection_cells(groups)
    choose, confirm = _split(held, cells, random_state)
    if confirm_by == "auto":
        # Support depends on the groups only: the confirming half's is known now.
        short = _Layout(groups.iloc[confirm], min_rows, max_intersection).unmeasurable
        confirm_by = "crossfit" if short else "split"
    if confirm_by == "crossfit":
        # Every held-out row chooses and confirms, never both in one fold.
        choose = confirm = held
    candidates: list[tuple[str, dict[str, Any], np.ndarray]] = [("baseline", {}, pred[held])]
    models: list[Any] = [None]
    notes: list[str] = []
    if "barycenter" in methods:
        say("regression front: Wasserstein-barycenter post-processing")
        post = BarycenterPostprocessor(random_state=random_state).fit(pred[train],
                                                                      cells[train])
        for alpha in ALPHAS:
            candidates.append(("barycenter", {"alpha": alpha},
                               post.transform(pred[held], cells[held], alpha)))
            models.append(post.deployable(alpha, groups=[str(c) for c in groups.columns]))
    if "bounded_group_loss" in methods:
        if X is None:
            notes.append("bounded_group_loss: no features to fit on")
        else:
            say("regression front: bounded group loss (fairlearn reductions)")
            for params, values in _bounded_group_loss(X, y, cells, train, held,
                                                      random_state):
                candidates.append(("bounded_group_loss", params, values))
                models.append(None)  # a randomized predictor: not exported
    # Positions of the choosing and confirming rows within `held`.
    at_choose = np.searchsorted(held, choose)
    at_confirm = np.searchsorted(held, confirm)
    layout = _Layout(groups.iloc[choose], min_rows, max_intersection)
    scored: list[RegressionCandidate] = []
    for i, (method, params, values) in enumerate(candidates):
        cand = score_values(i, method, params, y[choose], values[at_choose], layout,
                            distance=distance, error=error, n_bootstrap=n_bootstrap,
                            random_state=random_state, base=scored[0] if scored else None)
        cand.values, cand.model = values, models[i]
        scored.append(cand)
    _non_dominated(scored)
    preferred, eligible = _prefer(scored, max_cost)
    comparison: PairedComparison | None = None
    crossfit: dict[str, Any] = {}
    if eligible and confirm_by == "crossfit":
        say(f"regression front: cross-fitting the choice ({folds} folds x {repeats} "
            f"repeats)")
        comparison, crossfit = crossfit_values(
            [c[2] for c in candidates], [(c[0], c[1]) for c in candidates], y[held],
            groups.iloc[held], preferred=preferred, folds=folds, repeats=repeats,
            min_rows=min_rows, max_intersection=max_intersection, distance=distance,
            error=error, max_cost=max_cost, n_bootstrap=n_bootstrap,
            random_state=random_state)
    elif eligible:
        say("regression front: confirming the choice")
        comparison = compare_paired_values(
            y[confirm], candidates[preferred][2][at_confirm], pred[confirm],
            groups.iloc[confirm], distance=distance, error=error, min_rows=min_rows,
            max_intersection=max_intersection, random_state=random_state)
    from assay.fairness.verdict import judge

    verdict = judge(scored, preferred, eligible, comparison, constraint=distance,
                    n_choosing=int(choose.size), min_reduction=min_reduction,
                    max_cost=max_cost, wording=regression_wording(error),
                    crossfit=crossfit or None)
    return RegressionFront(
        distance=distance, error=error, methods=list(methods),
        rows={"fit": int(train.size), "choose": int(choose.size),
              "confirm": int(confirm.size)},
        min_rows=min_rows, candidates=scored, preferred=preferred, eligible=eligible,
        verdict=verdict, notes=notes, confirmed_by=confirm_by, crossfit=crossfit)


def front_plot(front: RegressionFront) -> str:
    """The error against the gap, one marker per candidate, the preferred one ringed."""
    from assay.report.plots import COLORS, GREY, THEORY, figure, svg_text

    colors = {"baseline": THEORY, "barycenter": COLORS[0], "bounded_group_loss": COLORS[2]}
    fig, ax = figure(5.8, 4.2)
    pts = [c for c in front.candidates
           if math.isfinite(c.gap.value) and math.isfinite(c.error.value)]
    word = _DISTANCE_WORDS[front.distance]
    if not pts:
        ax.text(0.5, 0.5, f"no candidate's {word} gap is measurable on these rows\n"
                "(groups lack support; see the verdict)", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_axis_off()
        return svg_text(fig)
    on = sorted((c for c in pts if c.on_front), key=lambda c: c.gap.value)
    if on:
        ax.plot([c.gap.value for c in on], [c.error.value for c in on], color=GREY, lw=1,
                ls="--", zorder=1, label="front (non-dominated)")
    for method in dict.fromkeys(c.method for c in pts):
        group = [c for c in pts if c.method == method]
        color = colors.get(method, GREY)
        x = np.array([c.gap.value for c in group])
        err = np.array([[max(c.gap.value - c.gap.ci_low, 0) if math.isfinite(c.gap.ci_low)
                         else 0 for c in group],
                        [max(c.gap.ci_high - c.gap.value, 0) if math.isfinite(c.gap.ci_high)
                         else 0 for c in group]])
        yv = np.array([c.error.value for c in group])
        ax.errorbar(x, yv, xerr=err, fmt="none", ecolor=color, alpha=0.35, lw=0.8)
        ax.scatter(x, yv, s=34, c=[color if c.rejected is None else "white" for c in group],
                   edgecolors=color, marker="s" if method == "baseline" else "o", zorder=3,
                   label=method.replace("_", " "))
    chosen = front.candidates[front.preferred]
    if front.preferred and chosen in pts:
        ax.scatter([chosen.gap.value], [chosen.error.value], s=170, facecolors="none",
                   edgecolors=COLORS[1], linewidths=1.8, zorder=2)
        ax.annotate("fix" if front.fixed else "preferred",
                    (chosen.gap.value, chosen.error.value), xytext=(8, -12),
                    textcoords="offset points", fontsize=8.5, color=COLORS[1])
    ax.set_xlabel(f"{word} gap: largest over attributes and intersections (lower is fairer)")
    ax.set_ylabel(f"{front.error.upper()} (lower is better)")
    ax.set_title(f"Error / fairness front ({front.rows['choose']} choosing rows)", loc="left")
    ax.legend(loc="upper right", fontsize=7.5)
    return svg_text(fig)
