"""The multiplicity section on a regression model: Rashomon sets by held-out squared error.

The model under audit is the audit's target (model 0 of the regression population); its
held-out rows (those it did not train on) are held out from every candidate too. The
candidates train on random subsamples of its training rows through the audit's learner,
backend and cache (`AuditContext.fit`), spread over the ``grid`` points. The audited model
counts as one more candidate: every ε-Rashomon set holds the models (audited one included)
whose held-out MSE is within ε of the best (``tolerance``: relative or absolute).

Per person (held-out rows) and set: the **viable prediction range** (max − min of the
predictions over the set) and the **spread** (their standard deviation); with a
``decision_threshold`` (the audit's ``--decision-threshold``) the decision is
``prediction > threshold`` and **ambiguity** (share
of people whose decision some model of the set reverses against the reference) and
**discrepancy** (largest share one model reverses) follow (`regression_multiplicity`). The
reference is the audited model when it is in the set, else the best model.

**Churn** (the classification churn's "a model update drawn from the set", for a
number): over the retrained models of the set (every member but the audited model), the
mean share of held-out people whose prediction moves, against the audited model's, by more
than ``churn_tolerance``: by default `CHURN_TOLERANCE_SD` (0.1) standard deviations of the
observed target on the held-out rows, stated in the payload in the target's units. With a
``decision_threshold``, the **decision churn** is the mean share whose decision flips. Both
are averages of a per-person share (the share of retrained models that move that person),
so each group's figure is its people's mean.

**Churn against another version** (``compare``: the predictions file of another version of
the user's model, the classification's `predictive_churn` for a number): on every row of
the table, the share whose prediction moves by more than the same tolerance, and with a
threshold the share whose decision flips, each with a Wilson interval, overall and per
group (`regression_version_churn`).

Intervals: percentile intervals over resamples of the held-out people, the set fixed (a
resample of a set's models shrinks every range: a max − min over fewer distinct models; with
sampled models every range is already a lower bound).

Groups (the audit's `GroupPolicy`): each group's mean range (and ambiguity) with intervals;
a group is flagged when its per-person figure is significantly above the overall one (max-T
permutation test within the grouping) by at least ``min_gap``: relative to the overall mean
range (0.05: 5 % wider ranges), or, with a threshold, in ambiguity share.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assay._serial import Serial, meta
from assay._stats import Estimate
from assay._validation import DataError

__all__ = ["CHURN_TOLERANCE_SD", "RegressionEpsilonFigures", "RegressionGroupRow",
           "RegressionMultiplicityPayload", "RegressionVersionChurn", "churn_tolerance_of",
           "regression_churn", "regression_curve", "regression_version_churn",
           "run_regression_multiplicity"]

#: A prediction "moves" when it changes by more than this many standard deviations of the
#: observed target (held-out rows): small enough to matter to a person, large enough to
#: ignore the numerical noise of a refit.
CHURN_TOLERANCE_SD = 0.1


@dataclass
class RegressionGroupRow(Serial):
    """One group at one ε (figures None when unsupported or not measurable)."""

    grouping: str
    label: str
    n: int
    supported: bool
    mean_vpr: Estimate | None = None
    mean_spread: Estimate | None = None
    ambiguity: Estimate | None = None
    difference: float | None = None
    p_value: float | None = None
    flagged: bool = False
    churn: Estimate | None = None
    decision_churn: Estimate | None = None


@dataclass
class RegressionEpsilonFigures(Serial):
    """The figures of one ε-Rashomon set on the held-out rows.

    Attributes
    ----------
    epsilon : float
    n_models : int
        Models in the set (the audited one included when within ε).
    members : list of int
        Their indices: 0 is the audited model, k ≥ 1 candidate k − 1.
    reference : int
        The reference model's index (0: the audited model).
    target_in_set : bool
    reason : str or None
        Why the figures are null (a set of one model).
    mean_vpr, mean_spread, ambiguity, discrepancy : Estimate or None
    max_vpr : float or None
    groups : list of RegressionGroupRow
    churn : Estimate or None
        Mean share of held-out people whose prediction a retrained model of the set moves
        by more than the payload's ``churn_tolerance`` (None without a retrained model).
    decision_churn : Estimate or None
        Mean share whose decision a retrained model flips (with a decision threshold).
    n_retrained : int
        Models of the set other than the audited one (the churn's models).
    """

    epsilon: float
    n_models: int
    members: list[int]
    reference: int
    target_in_set: bool
    reason: str | None = None
    mean_vpr: Estimate | None = None
    mean_spread: Estimate | None = None
    ambiguity: Estimate | None = None
    discrepancy: Estimate | None = None
    max_vpr: float | None = None
    groups: list[RegressionGroupRow] = field(default_factory=list)
    churn: Estimate | None = None
    decision_churn: Estimate | None = None
    n_retrained: int = 0

    @property
    def measurable(self) -> bool:
        return self.reason is None


@dataclass
class RegressionChurnGroup(Serial):
    """One group's churn against another version (None when unsupported)."""

    grouping: str
    label: str
    n_rows: int
    supported: bool
    n_moved: int = 0
    churn: Estimate | None = None
    n_flipped: int | None = None
    decision_churn: Estimate | None = None


@dataclass
class RegressionVersionChurn(Serial):
    """How another version of a regression model changes its predictions (``compare``).

    Attributes
    ----------
    source : str
        Where the other version's predictions came from.
    n_rows : int
        Rows compared (every row of the table).
    tolerance : float
        A prediction moves when it changes by more than this (the target's units).
    n_moved : int
    churn : Estimate
        Share of moved predictions, Wilson interval.
    mean_abs_change : float
        Mean absolute change of the prediction.
    n_flipped : int or None
    decision_churn : Estimate or None
        Share of flipped decisions (with a decision threshold), Wilson interval.
    largest : list of dict
        The largest changes: row id, both predictions, change.
    groups : list of RegressionChurnGroup
    """

    source: str
    n_rows: int
    tolerance: float
    n_moved: int
    churn: Estimate
    mean_abs_change: float
    n_flipped: int | None = None
    decision_churn: Estimate | None = None
    largest: list[dict[str, Any]] = field(default_factory=list)
    groups: list[RegressionChurnGroup] = field(default_factory=list)


@dataclass
class RegressionMultiplicityPayload(Serial):
    """Everything the multiplicity section found on a regression model.

    Attributes
    ----------
    epsilons : list of RegressionEpsilonFigures
        Ascending ε.
    headline_epsilon : float
    tolerance : {"relative", "absolute"}
    best_loss, target_loss : float
        Held-out MSE of the best model and of the audited one.
    losses : list of float
        Held-out MSE of every model (index 0: the audited one).
    n_candidates, n_heldout : int
    decision_threshold : float or None
    flag_rule : FlagRule
    flag_on : {"mean_vpr", "ambiguity"}
        The per-person figure the groups are tested on (``min_gap`` relative to the
        overall mean range, or in ambiguity share with a threshold).
    target, candidates : dict
    vpr_histogram : dict
        ``edges`` and ``counts`` of the per-person range at the headline ε.
    records : list of dict
        The widest ranges at the headline ε: row id, groups, truth, audited prediction,
        lowest and highest prediction of the set, range (and whether a decision flips).
    min_measurable_epsilon : float or None
    churn_tolerance : float or None
        How far (in the target's units) a prediction must move to count in the churn.
    churn_tolerance_sd : float or None
        The same in standard deviations of the observed target on the held-out rows
        (None when the tolerance was given in the target's units).
    churn : RegressionVersionChurn or None
        Churn against another version of the model, when one was given (``compare``).
    task : "regression"
    """

    epsilons: list[RegressionEpsilonFigures]
    headline_epsilon: float
    tolerance: str = field(metadata=meta(schema={"enum": ["relative", "absolute"]}))
    best_loss: float
    target_loss: float
    losses: list[float]
    n_candidates: int
    n_heldout: int
    decision_threshold: float | None
    flag_rule: Any = field(metadata=meta(hint=lambda: _flag_rule_type()))
    flag_on: str = field(metadata=meta(schema={"enum": ["mean_vpr", "ambiguity"]}))
    target: dict[str, Any] = field(default_factory=dict)
    candidates: dict[str, Any] = field(default_factory=dict)
    vpr_histogram: dict[str, list[Any]] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)
    min_measurable_epsilon: float | None = None
    churn_tolerance: float | None = None
    churn_tolerance_sd: float | None = None
    churn: RegressionVersionChurn | None = None
    loss: str = field(default="mse", metadata=meta(schema={"enum": ["mse"]}))
    task: str = field(default="regression", metadata=meta(schema={"const": "regression"}))

    __json_required__ = ("target", "candidates", "vpr_histogram", "records", "loss", "task")

    @property
    def headline(self) -> RegressionEpsilonFigures:
        return next(f for f in self.epsilons if f.epsilon == self.headline_epsilon)


def _flag_rule_type() -> Any:
    from assay.groups import FlagRule

    return FlagRule


# --------------------------------------------------------------------------- figures


def _interval(draws: np.ndarray, value: float, confidence: float = 0.95) -> Estimate:
    """Percentile interval of `draws`, widened to hold `value`."""
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return Estimate(float(value), float(value), float(value))
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(draws, [tail, 100 - tail])
    return Estimate(float(value), float(min(low, value)), float(max(high, value)))


def _set_figures(preds: np.ndarray, ref: int, threshold: float | None,
                 rows: list[np.ndarray], weights: np.ndarray | None = None) -> np.ndarray:
    """(len(rows) + 1, 4): mean range, mean spread, ambiguity, discrepancy over all rows
    (first) and each block of rows, each row counted `weights` times (default once)."""
    vpr = preds.max(axis=0) - preds.min(axis=0)
    spread = preds.std(axis=0)
    w = np.ones(preds.shape[1]) if weights is None else weights
    out = np.full((len(rows) + 1, 4), np.nan)
    changed = None
    if threshold is not None:
        decided = preds > threshold
        changed = decided != decided[ref][None, :]
    for j, r in enumerate([np.arange(preds.shape[1]), *rows]):
        wr = w[r]
        total = wr.sum()
        if total <= 0:
            continue
        out[j, 0], out[j, 1] = wr @ vpr[r] / total, wr @ spread[r] / total
        if changed is not None:
            out[j, 2] = wr @ changed[:, r].any(axis=0) / total
            out[j, 3] = (changed[:, r] @ wr).max() / total
    return out


def churn_tolerance_of(y: Any) -> float:
    """The default churn tolerance: `CHURN_TOLERANCE_SD` standard deviations of `y`."""
    return CHURN_TOLERANCE_SD * float(np.std(np.asarray(y, dtype=np.float64)))


def regression_churn(audited: Any, retrained: Any, tolerance: float,
                     decision_threshold: float | None = None
                     ) -> tuple[np.ndarray, np.ndarray | None]:
    """Per person, the share of retrained models that move the audited model's prediction.

    Parameters
    ----------
    audited : array of shape (n,)
        The audited model's predictions.
    retrained : array of shape (m, n), m >= 1
        The retrained models' predictions on the same people.
    tolerance : float >= 0
        A prediction moves when ``|retrained - audited| > tolerance``.
    decision_threshold : float, optional
        Decision = prediction above it.

    Returns
    -------
    moved : ndarray of shape (n,)
        Share of the m models whose prediction moves by more than `tolerance`.
    flipped : ndarray of shape (n,) or None
        Share whose decision differs from the audited model's (with a threshold).
        Their means over people are the churn and the decision churn.
    """
    from assay._validation import check_scalar

    base = np.asarray(audited, dtype=np.float64)
    others = np.asarray(retrained, dtype=np.float64)
    if others.ndim != 2 or others.shape[0] < 1 or others.shape[1:] != base.shape:
        raise DataError(f"retrained must have shape (models >= 1, {base.shape[0]}). Got "
                        f"{others.shape}.")
    tolerance = check_scalar(tolerance, "churn_tolerance", low=0)
    moved = (np.abs(others - base[None, :]) > tolerance).mean(axis=0)
    flipped = None
    if decision_threshold is not None:
        flipped = ((others > decision_threshold) != (base > decision_threshold)[None, :]
                   ).mean(axis=0)
    return moved, flipped


def regression_version_churn(audited: Any, other: Any, tolerance: float, *,
                             decision_threshold: float | None = None, groups: Any = None,
                             row_ids: Any = None, min_support: int = 1,
                             n_largest: int = 20, confidence: float = 0.95,
                             source: str = "another version") -> RegressionVersionChurn:
    """Share and identity of the predictions another version moves, and decisions it flips.

    Parameters
    ----------
    audited, other : RegressionTarget or array of shape (n_rows,)
        The two versions' predictions on the same rows.
    tolerance : float >= 0
        A prediction moves when ``|other - audited| > tolerance``.
    decision_threshold : float, optional
        Decision = prediction above it; adds the decision churn.
    groups : GroupIndex over the rows, optional
    row_ids : array (n_rows,), optional
    min_support : int, default=1
        Groups with fewer rows get no figures.
    n_largest : int, default=20
        Largest changes listed.
    confidence : float, default=0.95
    source : str
        How the other version is named in the result.

    Returns
    -------
    RegressionVersionChurn
    """
    from assay._stats import wilson_interval
    from assay._validation import check_scalar

    a = np.asarray(getattr(audited, "values", audited), dtype=np.float64)
    b = np.asarray(getattr(other, "values", other), dtype=np.float64)
    if a.ndim != 1 or b.shape != a.shape:
        raise DataError(f"other must hold one prediction per row of the audited model "
                        f"{a.shape}. Got shape {b.shape}.")
    moved_share, flipped_share = regression_churn(a, b[None, :], tolerance, decision_threshold)
    moved, flipped = moved_share > 0, None if flipped_share is None else flipped_share > 0
    min_support = check_scalar(min_support, "min_support", kind=int, low=1)
    n = a.size

    def share(k: int, total: int) -> Estimate:
        low, high = wilson_interval(k, total, confidence)
        return Estimate(k / total, float(low), float(high))

    ids = np.arange(n) if row_ids is None else np.asarray(row_ids)
    change = b - a
    order = np.argsort(-np.abs(change), kind="stable")[:n_largest]
    out = RegressionVersionChurn(
        source=source, n_rows=n, tolerance=float(tolerance), n_moved=int(moved.sum()),
        churn=share(int(moved.sum()), n), mean_abs_change=float(np.abs(change).mean()),
        n_flipped=None if flipped is None else int(flipped.sum()),
        decision_churn=None if flipped is None else share(int(flipped.sum()), n),
        largest=[{"row_id": _plain(ids[i]), "prediction": float(a[i]),
                  "other_prediction": float(b[i]), "change": float(change[i])}
                 for i in order])
    if groups is not None:
        from assay.groups import as_group_index

        index = as_group_index(groups)
        if index.n_rows != n:
            raise DataError(f"groups must have one row per prediction ({n}). Got "
                            f"{index.n_rows}.")
        for grouping in index.groupings:
            supported = grouping.supported(min_support)
            for k, label in enumerate(grouping.labels):
                rows = grouping.codes == k
                size = int(rows.sum())
                if not supported[k]:
                    out.groups.append(RegressionChurnGroup(grouping.key, label, size, False))
                    continue
                k_moved = int(moved[rows].sum())
                k_flipped = None if flipped is None else int(flipped[rows].sum())
                out.groups.append(RegressionChurnGroup(
                    grouping.key, label, size, True, n_moved=k_moved,
                    churn=share(k_moved, size), n_flipped=k_flipped,
                    decision_churn=None if k_flipped is None else share(k_flipped, size)))
    return out


def _row_means(per_row: np.ndarray, rows: list[np.ndarray],
               weights: np.ndarray | None = None) -> np.ndarray:
    """(len(rows) + 1, k): weighted means of the k per-row figures ``per_row`` (k, n) over
    all rows (first) and each block of rows (NaN for a block of weight 0)."""
    w = np.ones(per_row.shape[1]) if weights is None else weights
    out = np.full((len(rows) + 1, per_row.shape[0]), np.nan)
    for j, r in enumerate([np.arange(per_row.shape[1]), *rows]):
        total = w[r].sum()
        if total > 0:
            out[j] = per_row[:, r] @ w[r] / total
    return out


def _with_churn(preds: np.ndarray, ref: int, threshold: float | None,
                rows: list[np.ndarray], shares: np.ndarray | None,
                weights: np.ndarray | None = None) -> np.ndarray:
    """`_set_figures` and two more columns, the churn and the decision churn (NaN without
    a retrained model): (len(rows) + 1, 6)."""
    base = _set_figures(preds, ref, threshold, rows, weights)
    churn = (np.full((len(rows) + 1, 2), np.nan) if shares is None
             else _row_means(shares, rows, weights))
    return np.hstack([base, churn])


def regression_curve(preds: Any, y: Any, epsilons: Any, groups: Any = None, *,
                     tolerance: str = "relative", decision_threshold: float | None = None,
                     n_bootstrap: int = 100, flag_rule: Any = None, min_support: int = 50,
                     n_permutations: int = 200, random_state: int = 0,
                     churn_tolerance: float | None = None
                     ) -> tuple[list[RegressionEpsilonFigures], dict[float, dict[str, Any]]]:
    """Figures of every ε-Rashomon set of `preds` on the held-out rows.

    Parameters
    ----------
    preds : array of shape (m, n)
        Held-out predictions; row 0 is the audited model (the reference when in the set).
    y : array of shape (n,)
    epsilons : sequence of float > 0
    groups : GroupIndex, DataFrame or None
        Protected columns of the n rows.
    tolerance, decision_threshold, n_bootstrap, flag_rule, min_support, n_permutations,
    random_state
        As the section's options and the audit's `GroupPolicy`.
    churn_tolerance : float >= 0, optional
        How far a prediction must move to count in the churn; default
        `churn_tolerance_of(y)`.

    Returns
    -------
    figures : list of RegressionEpsilonFigures
    per_row : dict of ε to dict
        ``vpr``, ``low``, ``high`` (and ``flipped`` with a threshold) per held-out row.
    """
    from assay.groups import FlagRule, as_group_index, permutation_test
    from assay.multiplicity.rashomon import rashomon_sets, smallest_measurable_epsilon
    from assay.multiplicity.regression import heldout_mse, regression_multiplicity

    p = np.asarray(preds, dtype=np.float64)
    mse = heldout_mse(p, y)
    if churn_tolerance is None:
        churn_tolerance = churn_tolerance_of(y)
    in_set, _ = rashomon_sets(mse, epsilons, tolerance=tolerance)
    min_eps = smallest_measurable_epsilon(mse, float(mse.min()), tolerance)
    rule = flag_rule if flag_rule is not None else FlagRule()
    index = None if groups is None else as_group_index(groups)
    blocks: list[tuple[str, str, int, bool, np.ndarray]] = []
    if index is not None:
        for grouping in index.groupings:
            supported = grouping.supported(min_support)
            for k, label in enumerate(grouping.labels):
                blocks.append((grouping.key, label, int(grouping.sizes[k]), bool(supported[k]),
                               np.flatnonzero(grouping.codes == k)))
    rng = np.random.default_rng(random_state)
    out, per_row = [], {}
    eps_sorted = sorted(float(e) for e in epsilons)
    for e, eps in enumerate(eps_sorted):
        members = np.flatnonzero(in_set[e])
        members = members[np.argsort(mse[members], kind="stable")]
        target_in = bool(in_set[e][0])
        ref = 0 if target_in else int(members[0])
        ref_pos = int(np.flatnonzero(members == ref)[0])
        figs = regression_multiplicity(p[members], None, reference=ref_pos,
                                       decision_threshold=decision_threshold,
                                       min_support=min_support, epsilon=eps,
                                       min_epsilon=min_eps)
        sub = p[members]
        per_row[eps] = {"vpr": figs.vpr, "low": sub.min(axis=0), "high": sub.max(axis=0),
                        "flipped": figs.flipped, "members": members}
        rows = [b[4] for b in blocks]
        groups_out: list[RegressionGroupRow] = []
        if not figs.measurable:
            for key, label, n, sup, _ in blocks:
                groups_out.append(RegressionGroupRow(key, label, n, sup))
            out.append(RegressionEpsilonFigures(
                epsilon=eps, n_models=len(members), members=[int(i) for i in members],
                reference=ref, target_in_set=target_in, reason=figs.reason,
                groups=groups_out))
            continue
        # Churn: every member but the audited model (row 0 of preds) against it.
        retrained = members[members != 0]
        shares = None
        if retrained.size:
            moved, flips = regression_churn(p[0], p[retrained], churn_tolerance,
                                            decision_threshold)
            shares = np.vstack([moved, flips if flips is not None
                                else np.full(moved.shape, np.nan)])
        point = _with_churn(sub, ref_pos, decision_threshold, rows, shares)
        draws = np.full((n_bootstrap, len(rows) + 1, 6), np.nan)
        n = sub.shape[1]
        for b in range(n_bootstrap):  # the people resampled, the set fixed
            weights = np.bincount(rng.integers(0, n, n), minlength=n).astype(np.float64)
            draws[b] = _with_churn(sub, ref_pos, decision_threshold, rows, shares, weights)

        def est(j: int, c: int, point: np.ndarray = point,
                draws: np.ndarray = draws) -> Estimate | None:
            if not np.isfinite(point[j, c]):
                return None
            return _interval(draws[:, j, c], float(point[j, c]))

        flag_stat = (figs.flipped.astype(np.float64) if figs.flipped is not None
                     else figs.vpr / max(float(figs.vpr.mean()), np.finfo(float).tiny))
        tests = {} if index is None else permutation_test(
            flag_stat, index, min_support=min_support, n_permutations=n_permutations,
            direction="greater", random_state=random_state)
        position: dict[tuple[str, str], tuple[float, float]] = {}
        for key, test in tests.items():
            for k, label in enumerate(test.labels):
                position[(key, label)] = (float(test.difference[k, 0]),
                                          float(test.p_value[k, 0]))
        for j, (key, label, n, sup, _) in enumerate(blocks, start=1):
            if not sup:
                groups_out.append(RegressionGroupRow(key, label, n, sup))
                continue
            diff, pv = position.get((key, label), (float("nan"), 1.0))
            flagged = bool(n_permutations > 0 and rule.flags(diff, pv))
            groups_out.append(RegressionGroupRow(
                key, label, n, sup, mean_vpr=est(j, 0), mean_spread=est(j, 1),
                ambiguity=est(j, 2), difference=diff if np.isfinite(diff) else None,
                p_value=pv, flagged=flagged, churn=est(j, 4), decision_churn=est(j, 5)))
        out.append(RegressionEpsilonFigures(
            epsilon=eps, n_models=len(members), members=[int(i) for i in members],
            reference=ref, target_in_set=target_in, mean_vpr=est(0, 0),
            mean_spread=est(0, 1), ambiguity=est(0, 2), discrepancy=est(0, 3),
            max_vpr=float(figs.vpr.max()), groups=groups_out, churn=est(0, 4),
            decision_churn=est(0, 5), n_retrained=int(retrained.size)))
    return out, per_row


# --------------------------------------------------------------------------- run


def run_regression_multiplicity(section: Any, context: Any, options: Any):
    """The multiplicity section's result for an audit of a regression model."""
    from assay.groups import GroupIndex
    from assay.learners import get_learner
    from assay.multiplicity.rashomon import grid_points, rashomon_plan
    from assay.report.result import SectionResult

    config, dataset, target = context.config, context.dataset, context.target
    heldout = ~np.asarray(target.member, dtype=bool)
    n_rows = dataset.n_rows
    n_models = options.models or config.models
    points = grid_points(options.grid)
    learners = [get_learner(context.learner, **point) for point in points]
    counts = [n_models // len(points) + (i < n_models % len(points))
              for i in range(len(points))]
    rng = np.random.default_rng(config.seed)
    values, infos, params = [], [], []
    for point, spec, count in zip(points, learners, counts):
        plan = rashomon_plan(n_rows, count, heldout=heldout, subsample=options.subsample,
                             random_state=int(rng.integers(2**31)),
                             params={"grid_point": point})
        population = context.fit(plan, spec)
        values.append(population.values)
        params.extend([dict(point)] * count)
        infos.append({k: population.info.get(k) for k in (
            "learner", "seconds", "n_fitted", "n_loaded_from_cache", "backend")})
    candidates = np.concatenate(values)
    y = np.asarray(dataset.y, dtype=np.float64)[heldout]
    preds = np.vstack([np.asarray(target.values, dtype=np.float64)[heldout][None, :],
                       candidates[:, heldout]])
    groups = None
    if dataset.groups.shape[1]:
        groups = GroupIndex.from_frame(dataset.groups.iloc[np.flatnonzero(heldout)]
                                       .reset_index(drop=True),
                                       max_intersection=config.groups.max_intersection)
    threshold = config.decision_threshold
    policy = context.group_policy.for_section(options.min_gap, "greater")
    epsilons = sorted(set(options.epsilons) | {options.headline_epsilon})
    churn_tolerance = churn_tolerance_of(y)
    figures, per_row = regression_curve(
        preds, y, epsilons, groups, tolerance=options.tolerance,
        decision_threshold=threshold, n_bootstrap=options.n_bootstrap,
        flag_rule=policy.flag_rule, min_support=policy.min_support,
        n_permutations=policy.n_permutations, random_state=config.seed,
        churn_tolerance=churn_tolerance)
    mse = ((preds - y[None, :]) ** 2).mean(axis=1)
    head = per_row[float(options.headline_epsilon)]
    head_fig = next(f for f in figures if f.epsilon == options.headline_epsilon)
    vpr = head["vpr"]
    if head_fig.measurable and vpr.size:
        top = max(float(vpr.max()), np.finfo(float).tiny)
        counts_, edges = np.histogram(vpr, bins=20, range=(0.0, top))
        order = np.argsort(-vpr, kind="stable")[:options.n_records]
    else:
        counts_, edges = np.zeros(20, dtype=int), np.linspace(0.0, 1.0, 21)
        order = np.zeros(0, dtype=int)
    rows = np.flatnonzero(heldout)[order]
    group_values = (dataset.groups.iloc[rows].astype(str).to_dict("records")
                    if dataset.groups.shape[1] else [{} for _ in rows])
    records = []
    for j, i in enumerate(order):
        record = {"row_id": _plain(dataset.row_ids[rows[j]]), "groups": group_values[j],
                  "y": float(y[i]), "prediction": float(preds[0, i]),
                  "low": float(head["low"][i]), "high": float(head["high"][i]),
                  "vpr": float(vpr[i])}
        if head["flipped"] is not None:
            record["flipped"] = bool(head["flipped"][i])
        records.append(record)
    payload = RegressionMultiplicityPayload(
        epsilons=figures, headline_epsilon=float(options.headline_epsilon),
        tolerance=options.tolerance, best_loss=float(mse.min()), target_loss=float(mse[0]),
        losses=[float(v) for v in mse], n_candidates=int(candidates.shape[0]),
        n_heldout=int(heldout.sum()), decision_threshold=threshold,
        flag_rule=policy.flag_rule, flag_on="ambiguity" if threshold is not None
        else "mean_vpr",
        target={"source": target.source, "loss": float(mse[0]),
                "in_set": bool(head_fig.target_in_set), "n_heldout": int(heldout.sum())},
        candidates={"learner": infos[0].get("learner"),
                    "grid": {k: list(v) for k, v in options.grid.items()},
                    "subsample": options.subsample, "n_models": int(candidates.shape[0]),
                    "seconds": round(sum(i["seconds"] or 0.0 for i in infos), 4),
                    "n_fitted": sum(i["n_fitted"] or 0 for i in infos),
                    "n_loaded_from_cache": sum(i["n_loaded_from_cache"] or 0 for i in infos)},
        vpr_histogram={"edges": [float(e) for e in edges], "counts": [int(c) for c in counts_]},
        records=records, min_measurable_epsilon=_min_eps(mse, options.tolerance),
        churn_tolerance=churn_tolerance, churn_tolerance_sd=CHURN_TOLERANCE_SD)
    if options.compare is not None:
        from assay.multiplicity.churn import compare_predictions

        other = compare_predictions(context, options)
        payload.churn = regression_version_churn(
            target, other, churn_tolerance, decision_threshold=threshold,
            groups=context.groups, row_ids=dataset.row_ids, min_support=policy.min_support,
            n_largest=options.n_records, source=other.source)
    return SectionResult(name=section.name, title=section.title,
                         summary=summary_lines(payload), metrics=gate_metrics(payload),
                         data=payload)


def _min_eps(mse: np.ndarray, tolerance: str) -> float | None:
    from assay.multiplicity.rashomon import smallest_measurable_epsilon

    return smallest_measurable_epsilon(mse, float(mse.min()), tolerance)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def describe(epsilon: float, tolerance: str) -> str:
    """ε in words: "within 1 % of the best held-out MSE"."""
    if tolerance == "relative":
        return f"within {100 * epsilon:g} % of the best held-out MSE"
    return f"within {epsilon:g} of the best held-out MSE"


def _num(value: float | None) -> str:
    from assay.report.result import format_amount

    return format_amount(value)  # 14,903 rather than 1.49e+04


def _est(e: Estimate | None) -> str:
    if e is None:
        return "n/a"
    return f"{_num(e.value)} [{_num(e.ci_low)}, {_num(e.ci_high)}]"


def _share(e: Estimate) -> str:
    from assay.report.result import format_rate

    return f"{format_rate(e.value)} [{format_rate(e.ci_low)}, {format_rate(e.ci_high)}]"


def _sd_words(payload: RegressionMultiplicityPayload) -> str:
    """" (0.1 standard deviations of the target)", when the tolerance came from them."""
    if payload.churn_tolerance_sd is None:
        return ""
    return f" ({payload.churn_tolerance_sd:g} standard deviations of the target)"


def flagged(figures: RegressionEpsilonFigures) -> list[RegressionGroupRow]:
    """Flagged groups, single attributes first, then by mean range."""
    found = [g for g in figures.groups if g.flagged]
    found.sort(key=lambda g: (len(g.grouping.split(" & ")),
                              -(g.mean_vpr.value if g.mean_vpr else 0.0)))
    return found


def summary_lines(payload: RegressionMultiplicityPayload) -> list[str]:
    """Plain-language findings, the headline first."""
    head = payload.headline
    within = describe(head.epsilon, payload.tolerance)
    if not head.measurable or head.mean_vpr is None:
        lines = [f"Multiplicity at ε = {head.epsilon:g}: {head.reason}."]
        measured = [f for f in payload.epsilons if f.measurable and f.mean_vpr is not None]
        if measured:
            first = measured[0]
            lines.append("Measured at ε = " + ", ".join(f"{f.epsilon:g}" for f in measured)
                         + f"; at ε = {first.epsilon:g} ({first.n_models} models) a held-out "
                         f"person's prediction ranges over {_est(first.mean_vpr)} on average "
                         f"(up to {_num(first.max_vpr or 0.0)}).")
        return lines
    lines = [f"Across the {head.n_models} models {within}, a held-out person's prediction "
             f"ranges over {_est(head.mean_vpr)} on average (viable prediction range; up to "
             f"{_num(head.max_vpr or 0.0)}), with a spread (standard deviation) of "
             f"{_est(head.mean_spread)}."]
    if head.ambiguity is not None and head.discrepancy is not None:
        lines.append(f"With the decision 'prediction > {payload.decision_threshold:g}', an "
                     f"equally good model reverses the reference decision for "
                     f"{_share(head.ambiguity)} of the {payload.n_heldout:,} held-out people; "
                     f"the worst single model for {_share(head.discrepancy)}.")
    if head.churn is not None and payload.churn_tolerance is not None:
        line = (f"A model retrained from the set (churn over {head.n_retrained}) moves a "
                f"held-out person's prediction by more than {_num(payload.churn_tolerance)}"
                f"{_sd_words(payload)} for {_share(head.churn)} of people on average")
        if head.decision_churn is not None:
            line += f", and flips the decision for {_share(head.decision_churn)}"
        lines.append(line + ".")
    if payload.churn is not None:
        c = payload.churn
        line = (f"Against {c.source}, {c.n_moved:,} of {c.n_rows:,} predictions move by "
                f"more than {_num(c.tolerance)} ({_share(c.churn)}; mean change "
                f"{_num(c.mean_abs_change)})")
        if c.decision_churn is not None:
            line += f" and {c.n_flipped:,} decisions flip ({_share(c.decision_churn)})"
        lines.append(line + ".")
    found = flagged(head)
    what = ("the overall share" if payload.flag_on == "ambiguity"
            else "the overall mean range (relative)")
    if found:
        top = found[0]
        more = f"; also flagged: {', '.join(g.label for g in found[1:4])}" \
            if len(found) > 1 else ""
        figure = (f"decisions reversed {_share(top.ambiguity)}"
                  if payload.flag_on == "ambiguity" and top.ambiguity is not None
                  else f"mean range {_est(top.mean_vpr)}")
        lines.append(f"Flagged: {top.label} ({figure}){more}. "
                     f"Flagged because {payload.flag_rule.describe(what)}.")
    elif any(g.supported for g in head.groups):
        lines.append(f"No group is flagged ({payload.flag_rule.describe(what)} is needed).")
    if not head.target_in_set:
        lines.append(f"The audited model is not itself {within}: its held-out MSE is "
                     f"{_num(payload.target_loss)} against {_num(payload.best_loss)} for the "
                     f"best candidate.")
    return lines


def gate_metrics(payload: RegressionMultiplicityPayload) -> dict[str, Any]:
    """Flat figures at the headline ε for ``assay gate``."""
    from assay.report.result import Metric

    head = payload.headline
    out: dict[str, Any] = {"n_models": Metric(value=float(head.n_models),
                                              label="models in the Rashomon set",
                                              higher_is_worse=False)}
    labels = {"mean_vpr": "mean viable prediction range",
              "mean_spread": "mean spread of predictions over the set",
              "ambiguity": "ambiguity (share of decisions some good model reverses)",
              "discrepancy": "discrepancy (largest share one good model reverses)",
              "churn": "churn (share of predictions a retrained model moves beyond the "
                       "tolerance)",
              "decision_churn": "decision churn (share of decisions a retrained model "
                                "flips)"}
    for key, label in labels.items():
        e = getattr(head, key)
        if e is not None:
            out[key] = Metric.of(e, label)
    out["flagged_groups"] = Metric(value=float(len(flagged(head))),
                                   label="groups flagged as more arbitrary")
    return out


def regression_multiplicity_page(section: Any, result: Any) -> Any:
    """Cards, the ε table, groups and the widest ranges."""
    from importlib import resources

    from assay.section import Card, Page

    payload: RegressionMultiplicityPayload = section.data
    head = payload.headline
    within = describe(head.epsilon, payload.tolerance)
    cards = []
    if head.mean_vpr is not None:
        cards.append(Card("mean viable prediction range", _num(head.mean_vpr.value),
                          f"[{_num(head.mean_vpr.ci_low)}, {_num(head.mean_vpr.ci_high)}]; "
                          f"{head.n_models} models {within}", "card-vpr"))
    else:
        cards.append(Card("mean viable prediction range", "not measurable",
                          f"{head.n_models} model at ε = {head.epsilon:g}", "card-vpr"))
    if head.ambiguity is not None:
        cards.append(Card("decisions an equally good model reverses",
                          f"{100 * head.ambiguity.value:.1f} %",
                          f"threshold {payload.decision_threshold:g}", "card-ambiguity"))
    if head.churn is not None and payload.churn_tolerance is not None:
        cards.append(Card("predictions a retrained model moves",
                          f"{100 * head.churn.value:.1f} %",
                          f"by more than {_num(payload.churn_tolerance)}; mean over "
                          f"{head.n_retrained} retrained models", "card-churn"))
    found = flagged(head)
    if head.groups:
        cards.append(Card("groups flagged as more arbitrary",
                          found[0].label if found else "none",
                          f"flagged when {payload.flag_rule.describe()}", "card-mgroup"))
    view = {"payload": payload, "headline": head, "within": within,
            "groups": [g for g in head.groups if g.supported],
            "small": [g.label for g in head.groups if not g.supported],
            "records": payload.records[:10], "num": _num, "sd_words": _sd_words(payload)}
    template = resources.files("assay.multiplicity").joinpath(
        "templates/multiplicity_regression.html.j2").read_text(encoding="utf-8")
    return Page(template=template, view=view, cards=cards)
