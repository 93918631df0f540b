"""Fairness metrics on the group layer: rates, gaps and their uncertainty.

Everything is computed from confusion counts per group (`assay.groups.GroupFrame`), for
every protected attribute and every intersection of a `GroupIndex` at once:

- **Rates per group** (selection rate, TPR, FPR, FNR, PPV, accuracy) with Wilson
  intervals; groups below ``min_support`` rows are kept and marked, never dropped, and a
  rate whose denominator is empty (a group with no positives has no TPR) is NaN and
  named in ``notes``.
- **Calibration within groups** (with scores): mean score against the observed positive
  rate, and the binned expected calibration error, per group.
- **Gaps** (`GAPS`): demographic parity (selection rate), equal opportunity (TPR),
  equalized odds (the larger of the TPR and FPR gaps) and predictive parity (PPV), each
  as a difference (largest minus smallest supported group) and a ratio (smallest over
  largest), per grouping, with percentile **bootstrap** intervals. The bootstrap of rows
  is drawn as one multinomial over the finest cells (intersection × confusion cell):
  a resample of rows changes these statistics only through those counts, so B resamples
  cost B × cells, not B × rows.
- **Pairs**: the gap's two groups (best and worst) compared with a fixed-pair interval,
  for plain-language lines ("Black women are selected 9.1 points [6.3, 11.8] less often
  than white men among qualified applicants").
- **Flags** by the group layer's one rule (`assay.groups.FlagRule`): a group's selection
  rate or TPR significantly (max-T permutation test) *and* at least ``min_difference``
  below the overall rate. Class 1 is the favourable outcome (approved, hired), so fewer
  selections, and fewer among the qualified, are the harms flagged.
- **Spread over a population** (`gap_spread`): each gap's signed value on every model of
  a population of equally good models; a gap whose sign flips is not a finding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from assay._serial import Serial, meta
from assay._stats import Estimate, wilson_interval
from assay._validation import (
    MAX_RESAMPLES,
    DataError,
    InvalidParameterError,
    check_option,
    check_scalar,
)
from assay.groups import (
    FlagRule,
    GroupFrame,
    GroupIndex,
    as_group_index,
    permutation_test,
)

__all__ = [
    "GAPS",
    "GAP_NAMES",
    "RATES",
    "FairnessReport",
    "Gap",
    "GroupRates",
    "binary_predictions",
    "fairness_metrics",
    "format_estimate",
    "gap_spread",
]

#: Rates reported per group (`assay.groups` confusion-count ratios).
RATES = ("selection_rate", "tpr", "fpr", "fnr", "ppv", "accuracy")
#: Gap name -> the rates it compares (equalized odds: the larger of its two gaps).
GAPS: dict[str, tuple[str, ...]] = {
    "dp": ("selection_rate",),
    "eo": ("tpr",),
    "eodds": ("tpr", "fpr"),
    "pp": ("ppv",),
}
GAP_NAMES = {"dp": "demographic parity", "eo": "equal opportunity",
             "eodds": "equalized odds", "pp": "predictive parity"}
#: Direction in which a group's rate is harmful to it (for flags).
_HARM = {"selection_rate": "less", "tpr": "less", "fpr": "greater"}
_TN, _FP, _FN, _TP = 0, 1, 2, 3
_NUM = {"selection_rate": (_FP, _TP), "tpr": (_TP,), "fpr": (_FP,), "fnr": (_FN,),
        "ppv": (_TP,), "accuracy": (_TN, _TP)}
_DEN = {"selection_rate": (_TN, _FP, _FN, _TP), "tpr": (_FN, _TP), "fpr": (_TN, _FP),
        "fnr": (_FN, _TP), "ppv": (_FP, _TP), "accuracy": (_TN, _FP, _FN, _TP)}


def format_estimate(e: Estimate) -> str:
    """``0.834 [0.825, 0.843]``; the value alone without an interval, "n/a" without one."""
    if e.value != e.value:
        return "n/a"
    if e.ci_low != e.ci_low:
        return f"{e.value:.3f}"
    return f"{e.value:.3f} [{e.ci_low:.3f}, {e.ci_high:.3f}]"


def binary_predictions(values, name: str) -> np.ndarray:
    """0/1 labels as int8; a one-line `DataError` for anything else (a non-binary target)."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise DataError(f"{name} must be a 1-D array of 0/1 labels. Got shape {arr.shape}.")
    if arr.dtype == bool:
        return arr.astype(np.int8)
    try:
        numeric = arr.astype(np.float64)
    except (TypeError, ValueError):
        numeric = None
    if numeric is None or not np.isin(numeric, (0.0, 1.0)).all():
        seen = list(pd.unique(arr.ravel()))[:5]
        raise DataError(f"{name} must be binary (0/1, 1 = the favourable outcome); fairness "
                        f"gaps need a binary target. Got values such as {seen}.")
    return (numeric == 1.0).astype(np.int8)


# --------------------------------------------------------------------------- results


@dataclass
class GroupRates(Serial):
    """One group's figures.

    Attributes
    ----------
    grouping, label : str
        Grouping key (``"race & sex"``) and group label (``"race=Black & sex=Female"``).
    n : int
        Rows of the group.
    supported : bool
        At least ``min_support`` rows (figures are shown either way; gaps and flags use
        supported groups only).
    rates : dict of str to Estimate
        Each rate with its Wilson interval (NaN when its denominator is empty).
    counts : dict of str to int
        ``tn, fp, fn, tp``.
    calibration : dict or None
        ``mean_score``, ``base_rate`` (with interval) and ``ece`` (binned), with scores.
    flags : list of str
        Rates on which the group is flagged.
    p_values : dict of str to float
        Max-T permutation p-value of each flagged-rate test.
    """

    grouping: str
    label: str
    n: int
    supported: bool
    rates: dict[str, Estimate]
    counts: dict[str, int]
    calibration: dict[str, Any] | None = None
    flags: list[str] = field(default_factory=list)
    p_values: dict[str, float] = field(default_factory=dict)

    __json_required__ = ("flags",)


@dataclass
class Gap(Serial):
    """One gap on one grouping.

    Attributes
    ----------
    name : str
        ``"dp"``, ``"eo"``, ``"eodds"`` or ``"pp"``.
    grouping : str
    difference : Estimate
        Largest minus smallest supported group rate (for "eodds" the larger of the TPR
        and FPR gaps), bootstrap interval.
    ratio : Estimate
        Smallest over largest (for "eodds" the smaller ratio), bootstrap interval.
    rate : str
        The rate that gives the difference (for "eodds": "tpr" or "fpr").
    best, worst : str or None
        Labels of the groups with the highest and lowest rate.
    pair : Estimate or None
        ``rate(best) - rate(worst)`` for those two fixed groups, bootstrap interval.
    n_groups : int
        Supported groups with a defined rate (a gap needs two).
    """

    name: str
    grouping: str
    difference: Estimate = field(metadata=meta(schema={"description": (
        "Largest minus smallest supported group rate, as a fraction; the one estimate of "
        "this gap the report shows (card, plain words, tables).")}))
    ratio: Estimate
    rate: str
    best: str | None = None
    worst: str | None = None
    pair: Estimate | None = field(default=None, metadata=meta(schema={"description": (
        "rate(best) - rate(worst) for those two fixed groups (same value as difference) with "
        "a fixed-pair interval; kept for the record, not shown in the report, which cites "
        "difference.")}))
    n_groups: int = 0


@dataclass
class FairnessReport(Serial):
    """Every fairness figure of one model on one set of rows.

    Attributes
    ----------
    overall : dict of str to Estimate
        Rates over all rows, plus ``balanced_accuracy`` (bootstrap interval).
    groups : list of GroupRates
        Every group of every grouping, in index order.
    gaps : dict of str to dict of str to Gap
        Gap name -> grouping key -> `Gap`.
    min_support : int
    flag_rule : FlagRule or None
        The rule groups were flagged by (None: no test run).
    notes : list of str
        Groups with an empty rate (no positives, no predicted positives, ...).
    n_rows : int
    """

    overall: dict[str, Estimate]
    groups: list[GroupRates]
    gaps: dict[str, dict[str, Gap]]
    min_support: int
    flag_rule: FlagRule | None = None
    notes: list[str] = field(default_factory=list)
    n_rows: int = 0
    min_count: int = 1

    def worst(self, name: str, groupings: Sequence[str] | None = None) -> Gap | None:
        """The largest `name` gap over the groupings (all by default); None if none has one."""
        found = [g for key, g in self.gaps.get(name, {}).items()
                 if (groupings is None or key in groupings)
                 and np.isfinite(g.difference.value)]
        return max(found, key=lambda g: g.difference.value) if found else None

    def gap_value(self, name: str, groupings: Sequence[str] | None = None) -> float:
        """The largest `name` gap (NaN when no grouping has two supported groups)."""
        worst = self.worst(name, groupings)
        return float("nan") if worst is None else float(worst.difference.value)

    def flagged(self) -> list[GroupRates]:
        """Flagged groups, single attributes first."""
        return sorted((g for g in self.groups if g.flags),
                      key=lambda g: (g.grouping.count("&"), g.label))


# --------------------------------------------------------------------------- counting


def _finest(index: GroupIndex) -> tuple[np.ndarray, list[np.ndarray]]:
    """Row codes of the finest cells (intersection of every attribute) and, per grouping,
    the group of each cell."""
    singles = [g for g in index.groupings if len(g.attributes) == 1]
    flat = np.ravel_multi_index(tuple(g.codes for g in singles),
                                tuple(g.n_groups for g in singles))
    present, first, codes = np.unique(flat, return_index=True, return_inverse=True)
    return codes.reshape(-1), [g.codes[first] for g in index.groupings]


def _rate(counts: np.ndarray, name: str) -> np.ndarray:
    """Rate `name` from counts (..., 4); NaN where its denominator is 0."""
    num = counts[..., list(_NUM[name])].sum(axis=-1)
    den = counts[..., list(_DEN[name])].sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.maximum(den, 1), np.nan)


def _spread(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """max - min, min / max, argmax, argmin over the last axis, ignoring NaN.

    Fewer than two defined values give NaN (and index -1)."""
    defined = ~np.isnan(values)
    enough = defined.sum(axis=-1) >= 2
    hi = np.where(defined, values, -np.inf)
    lo = np.where(defined, values, np.inf)
    top, bottom = hi.max(axis=-1), lo.min(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = np.where(enough, top - bottom, np.nan)
        ratio = np.where(enough & (top > 0), bottom / np.where(top > 0, top, 1), np.nan)
        ratio = np.where(enough & (top == 0), 1.0, ratio)
    best = np.where(enough, hi.argmax(axis=-1), -1)
    worst = np.where(enough, lo.argmin(axis=-1), -1)
    return diff, ratio, best, worst


def _percentile(boot: np.ndarray, value: float, confidence: float) -> Estimate:
    boot = boot[np.isfinite(boot)]
    if not np.isfinite(value) or boot.size == 0:
        return Estimate(float(value), float("nan"), float("nan"))
    lo, hi = np.quantile(boot, [(1 - confidence) / 2, (1 + confidence) / 2])
    return Estimate(float(value), float(lo), float(hi))


def _gap_from_rates(name: str, rates: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """diff, ratio, best, worst and which-rate (index into GAPS[name]) of a gap.

    `rates[r]` has shape (..., G) with unsupported groups already NaN."""
    parts = [_spread(rates[r]) for r in GAPS[name]]
    diffs = np.stack([p[0] for p in parts])
    which = np.argmax(np.where(np.isnan(diffs), -np.inf, diffs), axis=0)
    pick = lambda k: np.take_along_axis(np.stack([p[k] for p in parts]), which[None], 0)[0]  # noqa: E731
    ratios = np.stack([p[1] for p in parts])
    ratio = np.where(np.isnan(ratios).all(axis=0), np.nan,
                     np.nanmin(np.where(np.isnan(ratios), np.inf, ratios), axis=0))
    return pick(0), ratio, pick(2), pick(3), which


# --------------------------------------------------------------------------- main entry


def fairness_metrics(
    y_true,
    y_pred,
    groups,
    *,
    scores=None,
    min_support: int = 50,
    min_count: int = 20,
    confidence: float = 0.95,
    n_bootstrap: int = 400,
    flag_rule: FlagRule | None = None,
    n_permutations: int = 0,
    gaps: Sequence[str] = tuple(GAPS),
    n_bins: int = 10,
    random_state: int | None = 0,
) -> FairnessReport:
    """Rates, calibration, gaps with intervals and flags, per group and intersection.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_rows,)
        Binary labels and decisions (1 = the favourable outcome).
    groups : DataFrame, Series or GroupIndex
        Protected columns, or their index.
    scores : array-like of shape (n_rows,), optional
        Predicted probability of class 1 (for calibration within groups).
    min_support : int, default=50
        Groups with fewer rows are reported but enter no gap and are never flagged.
    min_count : int, default=20
        A group's rate enters a gap only with at least this many rows in its denominator
        (positives for TPR): a TPR over 5 positives is noise, not a finding.
    confidence : float, default=0.95
        Level of every interval.
    n_bootstrap : int, default=400
        Bootstrap resamples of the gap intervals (0: no interval).
    flag_rule : FlagRule, optional
        Flag groups whose selection rate or TPR is below the overall rate by this rule;
        needs ``n_permutations > 0`` (the rule's direction is read as "less").
    n_permutations : int, default=0
        Permutations of the max-T group test behind the flags.
    gaps : sequence of str, default=all of `GAPS`
    n_bins : int, default=10
        Score bins of the calibration error.
    random_state : int or None, default=0

    Returns
    -------
    FairnessReport

    Raises
    ------
    DataError
        Non-binary labels or decisions, lengths that do not match, scores outside [0, 1].
    InvalidParameterError
        A bad option.
    """
    index = as_group_index(groups)
    min_support = check_scalar(min_support, "min_support", kind=int, low=1)
    min_count = check_scalar(min_count, "min_count", kind=int, low=1)
    confidence = check_scalar(confidence, "confidence", low=0, high=1, low_open=True,
                              high_open=True)
    n_bootstrap = check_scalar(n_bootstrap, "n_bootstrap", kind=int, low=0, high=MAX_RESAMPLES)
    n_permutations = check_scalar(n_permutations, "n_permutations", kind=int, low=0,
                                  high=MAX_RESAMPLES)
    n_bins = check_scalar(n_bins, "n_bins", kind=int, low=1)
    gaps = tuple(gaps)
    for name in gaps:
        check_option(name, "gap", GAPS)
    n = index.n_rows
    truth = binary_predictions(y_true, "y_true")
    pred = binary_predictions(y_pred, "y_pred")
    if truth.shape[0] != n or pred.shape[0] != n:
        raise DataError(f"y_true and y_pred must have one entry per row of groups ({n}). "
                        f"Got {truth.shape[0]} and {pred.shape[0]}.")
    score = None
    if scores is not None:
        score = np.asarray(scores, dtype=np.float64)
        if score.shape != (n,) or not np.all((score >= 0) & (score <= 1)):
            raise DataError(f"scores must be {n} probabilities in [0, 1]. Got shape "
                            f"{score.shape} with range [{np.nanmin(score):g}, "
                            f"{np.nanmax(score):g}].")

    frame = GroupFrame(truth, pred, index, metrics=RATES, min_support=min_support,
                       confidence=confidence)
    cell = 2 * truth.astype(np.int64) + pred
    overall_counts = np.bincount(cell, minlength=4)
    overall = {m: Estimate(*(float(frame.overall.loc[m, c]) for c in
                             ("value", "ci_low", "ci_high"))) for m in RATES}

    # One multinomial bootstrap over the finest cells serves every grouping and gap.
    finest, cell_groups = _finest(index)
    n_cells = len(cell_groups[0])
    observed = np.bincount(finest * 4 + cell, minlength=4 * n_cells).astype(np.float64)
    rng = np.random.default_rng(random_state)
    boot = (rng.multinomial(n, observed / n, size=n_bootstrap).reshape(-1, n_cells, 4)
            if n_bootstrap else np.zeros((0, n_cells, 4)))
    boot_all = boot.sum(axis=1)
    bal = lambda c: (_rate(c, "tpr") + 1 - _rate(c, "fpr")) / 2  # noqa: E731
    overall["balanced_accuracy"] = _percentile(bal(boot_all), float(bal(overall_counts)),
                                               confidence)

    rows: list[GroupRates] = []
    gap_out: dict[str, dict[str, Gap]] = {name: {} for name in gaps}
    notes: list[str] = []
    calibration = _calibration(score, truth, index, n_bins, confidence) if score is not None \
        else {}
    for h, g in enumerate(index.groupings):
        counts = frame.counts[g.key]
        value, low, high, den = frame._rates(counts)
        ok = g.supported(min_support)
        for i, label in enumerate(g.labels):
            rates = {m: Estimate(float(value[i, j]), float(low[i, j]) if den[i, j] else
                                 float("nan"), float(high[i, j]) if den[i, j] else float("nan"))
                     for j, m in enumerate(RATES)}
            rows.append(GroupRates(g.key, label, int(g.sizes[i]), bool(ok[i]), rates,
                                   dict(zip(("tn", "fp", "fn", "tp"), map(int, counts[i]))),
                                   calibration.get((g.key, i))))
        empty = [(g.labels[i], m) for i in np.flatnonzero(ok) for j, m in enumerate(RATES)
                 if den[i, j] == 0 and m in ("tpr", "fpr", "ppv")]
        for label, m in empty:
            why = {"tpr": "no positives", "fpr": "no negatives", "ppv": "no predicted "
                   "positives"}[m]
            notes.append(f"{label}: {why}, so its {m.upper()} is undefined and it is left "
                         f"out of the gaps on {m.upper()}.")
        # Gaps: observed and bootstrap, supported groups only.
        gather = np.zeros((n_cells, g.n_groups))
        gather[np.arange(n_cells), cell_groups[h]] = 1
        boot_counts = np.einsum("bfc,fg->bgc", boot, gather)
        for name in gaps:
            use = {r: ok & (counts[:, list(_DEN[r])].sum(axis=1) >= min_count)
                   for r in GAPS[name]}
            obs_rates = {r: np.where(use[r], _rate(counts, r), np.nan) for r in GAPS[name]}
            b_rates = {r: np.where(use[r], _rate(boot_counts, r), np.nan) for r in GAPS[name]}
            d, ratio, best, worst, which = _gap_from_rates(name, obs_rates)
            bd, bratio, _, _, _ = _gap_from_rates(name, b_rates)
            rate_name = GAPS[name][int(which)]
            pair = None
            if best >= 0:
                pb = b_rates[rate_name][:, best] - b_rates[rate_name][:, worst]
                pair = _percentile(pb, float(obs_rates[rate_name][best]
                                             - obs_rates[rate_name][worst]), confidence)
            n_def = int(np.sum(~np.isnan(obs_rates[rate_name])))
            gap_out[name][g.key] = Gap(
                name=name, grouping=g.key,
                difference=_percentile(bd, float(d), confidence),
                ratio=_percentile(bratio, float(ratio), confidence), rate=rate_name,
                best=g.labels[best] if best >= 0 else None,
                worst=g.labels[worst] if worst >= 0 else None, pair=pair, n_groups=n_def)

    report = FairnessReport(overall=overall, groups=rows, gaps=gap_out,
                            min_support=min_support, notes=notes, n_rows=n,
                            min_count=min_count)
    if flag_rule is not None and n_permutations:
        _flag(report, index, truth, pred, flag_rule, min_support, n_permutations,
              random_state)
    return report


def _flag(report: FairnessReport, index: GroupIndex, truth, pred, rule: FlagRule,
          min_support: int, n_permutations: int, random_state) -> None:
    """Flag groups by `rule`: max-T permutation test of the group means of each rate's
    per-row indicator, among the rows where the rate is defined."""
    pred_f = pred.astype(np.float64)
    values = np.stack([pred_f,                                # selection rate: all rows
                       np.where(truth == 1, pred_f, np.nan)], 1)  # TPR: positives
    by_row = {(r.grouping, r.label): r for r in report.groups}
    report.flag_rule = rule
    for j, rate in enumerate(("selection_rate", "tpr")):
        column = values[:, j]
        if np.isnan(column).all():
            continue
        tests = permutation_test(column, index, min_support=min_support,
                                 n_permutations=n_permutations, direction=_HARM[rate],
                                 random_state=random_state)
        directed = FlagRule(rule.alpha, rule.min_difference, _HARM[rate])
        for key, test in tests.items():
            flags = directed.flags(test.difference[:, 0], test.p_value[:, 0])
            for i, label in enumerate(test.labels):
                row = by_row[(key, label)]
                if test.supported is not None and test.supported[i]:
                    row.p_values[rate] = float(test.p_value[i, 0])
                if flags[i]:
                    row.flags.append(rate)


def _calibration(score, truth, index: GroupIndex, n_bins: int, confidence: float
                 ) -> dict[tuple[str, int], dict[str, Any]]:
    """Per group: mean score, observed positive rate (Wilson) and binned ECE."""
    bins = np.minimum((score * n_bins).astype(np.int64), n_bins - 1)
    out = {}
    for g in index.groupings:
        size = np.bincount(g.codes, minlength=g.n_groups).astype(np.float64)
        pos = np.bincount(g.codes, weights=truth, minlength=g.n_groups)
        mean = np.bincount(g.codes, weights=score, minlength=g.n_groups) / np.maximum(size, 1)
        key = g.codes * n_bins + bins
        s_sum = np.bincount(key, weights=score, minlength=g.n_groups * n_bins).reshape(
            -1, n_bins)
        y_sum = np.bincount(key, weights=truth, minlength=g.n_groups * n_bins).reshape(
            -1, n_bins)
        ece = np.abs(s_sum - y_sum).sum(axis=1) / np.maximum(size, 1)
        low, high = wilson_interval(pos, size, confidence)
        for i in range(g.n_groups):
            out[(g.key, i)] = {
                "mean_score": float(mean[i]),
                "base_rate": Estimate(float(pos[i] / max(size[i], 1)), float(low[i]),
                                      float(high[i])).to_dict(),
                "ece": float(ece[i])}
    return out


# --------------------------------------------------------------------------- populations


@dataclass
class GapSpread(Serial):
    """A gap's signed value over a population of equally good models.

    Attributes
    ----------
    name, grouping, rate : str
    best, worst : str
        The two groups compared (those of the audited model's gap).
    values : list of float
        ``rate(best) - rate(worst)`` on each model's held-out rows.
    sign_flips : bool
        Some models put the two groups the other way round: not a finding.
    """

    name: str
    grouping: str
    rate: str
    best: str
    worst: str
    values: list[float]

    __json_layout__ = ("name", "grouping", "rate", "best", "worst", "values",
                       ("min", lambda s: _finite(s.values, np.min)),
                       ("max", lambda s: _finite(s.values, np.max)),
                       ("sd", lambda s: _finite(s.values, lambda v: v.std(ddof=1), 2)),
                       "sign_flips")

    @property
    def sign_flips(self) -> bool:
        v = np.asarray(self.values, dtype=float)
        v = v[np.isfinite(v)]
        return bool(v.size and (v.min() < 0 < v.max()))


def _finite(values: Sequence[float], stat: Any, least: int = 1) -> float | None:
    """`stat` of the finite values (None with fewer than `least` of them)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(stat(v)) if v.size >= least else None


def _spread_counts(truth: np.ndarray, decisions: np.ndarray, held: np.ndarray,
                   groupings: Sequence[Any]) -> list[np.ndarray]:
    """(K, n_groups, 4) confusion counts of every model per grouping, on its held-out rows.

    Blocks of models of about 4M (model, row) cells: the temporaries stay a few tens of
    MB whatever K * N (a population read from disk included).
    """
    k, n = decisions.shape
    counts = [np.zeros((k, g.n_groups, 4), dtype=np.int64) for g in groupings]
    step = max(1, (1 << 22) // max(n, 1))
    for a in range(0, k, step):
        ks = slice(a, min(a + step, k))
        cell = 2 * truth[None, :] + np.asarray(decisions[ks]).astype(np.int64)  # (block, N)
        held_block = held[ks]
        block = cell.shape[0]
        for g, out in zip(groupings, counts):
            flat = (np.arange(block)[:, None] * g.n_groups + g.codes[None, :]) * 4 + cell
            out[ks] = np.bincount(flat[held_block], minlength=block * g.n_groups * 4
                                  ).reshape(block, g.n_groups, 4)
    return counts


def gap_spread(report: FairnessReport, y_true, decisions, held_out, groups,
               gaps: Sequence[str] | None = None) -> list[GapSpread]:
    """Each gap of `report` (its best and worst groups) on every model of a population.

    Parameters
    ----------
    report : FairnessReport
        The audited model's figures (which pairs to follow).
    y_true : array-like of shape (n_rows,)
    decisions : array-like of shape (n_models, n_rows)
        0/1 decisions of every model on every row.
    held_out : bool array of shape (n_models, n_rows)
        The rows each model did not train on (where it is scored).
    groups : DataFrame or GroupIndex

    Returns
    -------
    list of GapSpread
        One per gap and grouping with two supported groups.
    """
    index = as_group_index(groups)
    truth = binary_predictions(y_true, "y_true").astype(np.int64)
    # An array (a memmap too) is read a block of models at a time, never copied whole.
    dec = decisions if isinstance(decisions, np.ndarray) else np.asarray(decisions)
    held = np.asarray(held_out, dtype=bool)
    if dec.shape != held.shape or dec.ndim != 2 or dec.shape[1] != index.n_rows:
        raise InvalidParameterError(
            f"decisions and held_out must both have shape (n_models, {index.n_rows}). Got "
            f"{dec.shape} and {held.shape}.")
    counts_of = _spread_counts(truth, dec, held, index.groupings)
    out = []
    names = list(report.gaps) if gaps is None else list(gaps)
    for g, counts in zip(index.groupings, counts_of):
        where = {label: i for i, label in enumerate(g.labels)}
        for name in names:
            gap = report.gaps.get(name, {}).get(g.key)
            if gap is None or gap.best is None or gap.worst is None:
                continue
            rates = _rate(counts, gap.rate)
            values = rates[:, where[gap.best]] - rates[:, where[gap.worst]]
            out.append(GapSpread(name, g.key, gap.rate, gap.best, gap.worst,
                                 [float(v) for v in values]))
    return out
