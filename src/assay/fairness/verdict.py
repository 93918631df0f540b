"""The verdict on a preferred candidate: confirmed on rows that took no part in choosing.

`compare_paired` measures a candidate's decisions against the unmitigated model's on the
same rows (one paired bootstrap moves both gaps together); `judge` turns that into a
`Verdict`: a fix only when the interval of the gap difference lies below the stated
margin at the stated balanced-accuracy cost, otherwise "no fix found" and why.

The interval is the *percentile* paired bootstrap. The largest gap over
groups is a maximum, biased upwards on resamples; the percentile interval carries that
bias into the candidate's side, which errs towards "no fix". The basic and bias-corrected
intervals remove it but, on simulated decisions with equal true largest gaps, confirmed a
reduction 6-11 % of the time at a nominal 2.5 %; the percentile interval 0-3 %
(tests/fairness/test_fairness_verdict.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from assay._serial import Serial
from assay._stats import Estimate
from assay.fairness.metrics import _DEN, GAPS, _finest, _gap_from_rates, _rate
from assay.report.result import format_figure, format_points

if TYPE_CHECKING:
    from assay.fairness.candidates import Candidate

__all__ = [
    "CONFIRM_BOOTSTRAP",
    "DEFAULT_MAX_COST",
    "DEFAULT_MIN_REDUCTION",
    "VERDICT_MIN_COUNT",
    "PairedComparison",
    "Verdict",
    "Wording",
    "compare_paired",
    "judge",
    "worst_over_groupings",
]

#: Gap reduction the confirmation must show by default: the paired interval of
#: (candidate's gap - unmitigated model's gap) must lie below -DEFAULT_MIN_REDUCTION.
DEFAULT_MIN_REDUCTION = 0.0
#: Balanced accuracy a fix may cost by default (unmitigated minus candidate, on the
#: confirmation rows).
DEFAULT_MAX_COST = 0.02
#: Rows of a rate's denominator (positives for TPR) a group needs to enter the gaps the
#: front chooses and confirms on: its rate is then known to about +/-10 points (95 %
#: Wilson half-width at most 0.098), so the largest gap over groups is not set by the
#: noise of the smallest group. With 20, a candidate with equal true rates everywhere
#: showed a largest gap of 10-20 points from noise alone, and no reduction could be
#: confirmed (tests/fairness/test_fairness_verdict.py simulates this).
VERDICT_MIN_COUNT = 100
#: Paired bootstrap resamples of the confirmation (counts only: cheap).
CONFIRM_BOOTSTRAP = 2000

_DEN_WORDS = {"tpr": "positives", "fpr": "negatives", "selection_rate": "rows",
              "ppv": "predicted positives"}


def points(x: float, signed: bool = False) -> str:
    """``12.7`` (``+12.7`` when `signed`) for a fraction 0.127; never "nan"."""
    if x is None or not math.isfinite(x):
        return "not measurable"
    return format_points(x, signed)


def points_estimate(e: Estimate | None, signed: bool = False) -> str:
    """``"12.7 points [8.1, 15.0]"``; "not measurable" for a NaN value (the report's rule
    for a gap, `format_figure`)."""
    return format_figure(e, "gap", signed)


@dataclass
class PairedComparison(Serial):
    """A candidate against the unmitigated model on the same rows (paired bootstrap).

    Attributes
    ----------
    n_rows : int
    gap, baseline_gap : Estimate
        The constraint's gap, largest over every grouping (each attribute and every
        intersection); NaN when a grouping is not measurable.
    difference : Estimate
        ``gap - baseline_gap``, with the interval of the same row resamples for both.
    cost : Estimate
        Balanced accuracy given up: the unmitigated model's minus the candidate's.
    by_grouping : dict of str to (float, float)
        Each grouping's gap, (candidate, unmitigated); NaN where not measurable.
    unmeasurable : list of str
        Why a grouping's gap cannot be measured on these rows (empty: all are).
    """

    n_rows: int
    gap: Estimate
    baseline_gap: Estimate
    difference: Estimate
    cost: Estimate
    by_grouping: dict[str, tuple[float, float]] = field(default_factory=dict)
    unmeasurable: list[str] = field(default_factory=list)

    __json_required__ = ("by_grouping", "unmeasurable")

    @property
    def measurable(self) -> bool:
        return not self.unmeasurable and math.isfinite(self.difference.value)


def compare_paired(y_true, y_pred, base_pred, groups, constraint: str, *, min_support: int,
                   min_count: int, n_bootstrap: int = CONFIRM_BOOTSTRAP,
                   confidence: float = 0.95, random_state: int | None = 0
                   ) -> PairedComparison:
    """A candidate's decisions against the unmitigated model's, on the same rows.

    Both models' gaps come from one multinomial bootstrap over the finest cells crossed
    with (label, candidate's decision, unmitigated decision): every resample moves both
    gaps together, so the interval of their difference is paired. A group enters a gap
    as in `fairness_metrics` (at least `min_support` rows and `min_count` in the rate's
    denominator on these rows); a grouping with fewer than two such groups is not
    measurable, and then neither is the largest gap.
    """
    from assay.groups import as_group_index

    index = as_group_index(groups)
    truth = np.asarray(y_true).astype(np.int64)
    a = np.asarray(y_pred).astype(np.int64)
    b = np.asarray(base_pred).astype(np.int64)
    n = truth.shape[0]
    finest, cell_groups = _finest(index)
    n_cells = len(cell_groups[0])
    observed = np.bincount(finest * 8 + truth * 4 + a * 2 + b,
                           minlength=8 * n_cells).astype(np.float64)
    rng = np.random.default_rng(random_state)
    boot = rng.multinomial(n, observed / n, size=n_bootstrap).astype(np.float64) \
        if n_bootstrap else np.zeros((0, observed.size))
    # Row 0: the observed counts; then the resamples. Axes: (truth, candidate, baseline).
    cells = np.concatenate([observed[None], boot]).reshape(-1, n_cells, 2, 2, 2)
    counts = {"candidate": cells.sum(axis=4).reshape(-1, n_cells, 4),
              "baseline": cells.sum(axis=3).reshape(-1, n_cells, 4)}
    per_grouping: dict[str, list[np.ndarray]] = {k: [] for k in counts}
    by_grouping: dict[str, tuple[float, float]] = {}
    unmeasurable: list[str] = []
    for h, g in enumerate(index.groupings):
        gather = np.zeros((n_cells, g.n_groups))
        gather[np.arange(n_cells), cell_groups[h]] = 1
        ok = g.supported(min_support)
        per = {}
        for k, c in counts.items():
            gc = np.einsum("bfc,fg->bgc", c, gather)
            use = {r: ok & (gc[0][:, list(_DEN[r])].sum(axis=1) >= min_count)
                   for r in GAPS[constraint]}
            short = [r for r in GAPS[constraint] if use[r].sum() < 2]
            if short:
                if k == "candidate":
                    r = short[0]
                    unmeasurable.append(
                        f"{g.key} has {int(use[r].sum())} group(s) with at least "
                        f"{min_support} rows and {min_count} {_DEN_WORDS.get(r, 'rows')} "
                        f"(2 needed)")
                per[k] = np.full(cells.shape[0], np.nan)
                continue
            rates = {r: np.where(use[r], _rate(gc, r), np.nan) for r in GAPS[constraint]}
            per[k] = _gap_from_rates(constraint, rates)[0]
        by_grouping[g.key] = (float(per["candidate"][0]), float(per["baseline"][0]))
        for k in counts:
            per_grouping[k].append(per[k])
    # The worst grouping counts; NaN (not measurable) when any grouping is.
    worst = {k: np.max(np.stack(v), axis=0) for k, v in per_grouping.items()}

    def estimate(values: np.ndarray) -> Estimate:
        value = float(values[0])
        rest = values[1:][np.isfinite(values[1:])]
        if not math.isfinite(value) or rest.size == 0:
            return Estimate(value, float("nan"), float("nan"))
        lo, hi = np.quantile(rest, [(1 - confidence) / 2, (1 + confidence) / 2])
        return Estimate(value, float(lo), float(hi))

    bal = {k: (_rate(c.sum(axis=1), "tpr") + 1 - _rate(c.sum(axis=1), "fpr")) / 2
           for k, c in counts.items()}
    return PairedComparison(
        n_rows=int(n), gap=estimate(worst["candidate"]),
        baseline_gap=estimate(worst["baseline"]),
        difference=estimate(worst["candidate"] - worst["baseline"]),
        cost=estimate(bal["baseline"] - bal["candidate"]), by_grouping=by_grouping,
        unmeasurable=unmeasurable)


@dataclass
class Verdict(Serial):
    """Whether the preferred candidate is a fix, confirmed on rows that did not choose it.

    Attributes
    ----------
    fixed : bool
        True only when, on the confirmation rows, the paired interval of (candidate's
        gap - unmitigated model's gap) lies below ``-min_reduction`` and the balanced
        accuracy it gives up is at most ``max_cost``.
    reason : str
        The verdict in words ("Fix found: ..." or "No fix found: ...").
    candidate : int
        The candidate the preference picked (the fix, or the best candidate only).
    comparison : PairedComparison or None
        The candidate against the unmitigated model on the confirmation rows.
    min_reduction, max_cost : float
    """

    fixed: bool
    reason: str
    candidate: int
    comparison: PairedComparison | None = None
    min_reduction: float = DEFAULT_MIN_REDUCTION
    max_cost: float = DEFAULT_MAX_COST

    __json_required__ = ("comparison", "min_reduction", "max_cost")


@dataclass(frozen=True)
class Wording:
    """How a verdict words its figures. The default is a classifier's: gaps and the cost in
    points of rate or balanced accuracy; a regression front states a distance between
    groups' predictions at a relative error cost (`assay.fairness.regression_front`).

    ``gap(x, signed)`` and ``cost(x)`` word a bare figure with its unit, ``limit(x)`` the
    cost limit where the unit follows the sentence, the estimates an `Estimate` with its
    interval; ``base_gap(candidate, constraint)`` is the unmitigated model's gap on the
    choosing rows and ``unmeasured(candidate, constraint, min_count)`` why it is not
    measurable there.
    """

    cost_name: str = "balanced accuracy"
    gap: Callable[..., str] = lambda x, signed=False: f"{points(x, signed)} points"
    gap_estimate: Callable[..., str] = lambda e, signed=False: points_estimate(e, signed)
    cost: Callable[[float], str] = lambda x: f"{points(x)} points"
    cost_estimate: Callable[..., str] = lambda e, signed=False: points_estimate(e, signed)
    limit: Callable[[float], str] = lambda x: points(x)
    gap_names: Mapping[str, str] = field(default_factory=dict)
    base_gap: Callable[[Any, str], float] = lambda c, k: worst_over_groupings(c, k)
    unmeasured: Callable[[Any, str, int], list[str]] = \
        lambda c, k, m: _unmeasured_on(c, k, m)


#: A classifier's verdict.
CLASSIFICATION_WORDING = Wording()


def worst_over_groupings(candidate: Candidate, constraint: str) -> float:
    """The candidate's largest `constraint` gap over every grouping; NaN when any grouping
    is not measurable (the worst cannot then be known)."""
    values = [e.value for e in candidate.gaps_by_grouping.get(constraint, {}).values()]
    if not values or not all(v is not None and math.isfinite(v) for v in values):
        return float("nan")
    return float(max(values))


def _unmeasured_on(candidate: Candidate, constraint: str, min_count: int) -> list[str]:
    """Why each grouping's gap is not measurable on the candidate's rows, in words."""
    out = []
    for key, e in candidate.gaps_by_grouping.get(constraint, {}).items():
        if e.value is not None and math.isfinite(e.value):
            continue
        groups = [g for g in candidate.groups if g.grouping == key]
        for r in GAPS[constraint]:
            den = list(_DEN[r])
            k = sum(1 for g in groups if g.supported and sum(
                g.counts[("tn", "fp", "fn", "tp")[i]] for i in den) >= min_count)
            if k < 2:
                out.append(f"{key} has {k} group(s) with enough rows and at least "
                           f"{min_count} {_DEN_WORDS.get(r, 'rows')} (2 needed)")
                break
    return out


def judge(candidates: Sequence[Candidate] | Sequence[Any], preferred: int, eligible: bool,
          comparison: PairedComparison | None, *, constraint: str, n_choosing: int,
          min_reduction: float, max_cost: float, min_count: int = 1,
          crossfit: Mapping[str, Any] | None = None,
          wording: Wording = CLASSIFICATION_WORDING) -> Verdict:
    """The verdict on the preferred candidate (see `Verdict`); `crossfit`: the record of a
    cross-fitted confirmation (`_crossfit`), whose rows are every test row; `wording`: the
    figures' units (a classifier's by default)."""
    w = wording
    cand, base = candidates[preferred], candidates[0]
    gap_name = w.gap_names.get(constraint, constraint)
    kw: dict[str, Any] = dict(candidate=preferred, comparison=comparison,
                              min_reduction=min_reduction, max_cost=max_cost)
    best = f"best candidate {cand.name} (shown as a candidate only)"
    if preferred == 0:
        return Verdict(False, "No fix found: every mitigated candidate is degenerate (see the "
                       "rejected list); the unmitigated model stays as it is.", **kw)
    if not eligible:
        base_gap = w.base_gap(base, constraint)
        if not math.isfinite(base_gap):
            why = "; ".join(w.unmeasured(base, constraint, min_count)) or \
                "no grouping has two groups with enough rows"
            return Verdict(False, f"No fix found: gaps not measurable: groups lack support "
                           f"on the {n_choosing} rows the candidates are chosen on ({why}); "
                           f"{best}.", **kw)
        return Verdict(False, f"No fix found: no candidate's {gap_name} gap on the "
                       f"{n_choosing} rows the candidates are chosen on is below the "
                       f"unmitigated model's ({w.gap(base_gap)}) at a {w.cost_name} "
                       f"cost of at most {w.cost(max_cost)}; {best}.", **kw)
    if comparison is None:
        return Verdict(False, "No fix found: no rows were held back to confirm the choice "
                       f"(confirm=0); {best}.", **kw)
    n = comparison.n_rows
    rows = f"{n} confirmation rows"
    if crossfit:
        rows = (f"{n} held-out rows, cross-fitted ({crossfit['folds']} folds x "
                f"{crossfit['repeats']} repeats: each row decided by a choice made without "
                f"it; the envelope of the repeats' intervals)")
    if not comparison.measurable:
        why = "; ".join(comparison.unmeasurable) or "the gap has no interval"
        return Verdict(False, f"No fix found: gaps not measurable: groups lack support "
                       f"on the {rows} ({why}); {best}.", **kw)
    if crossfit and not any(p for row in crossfit["picks"] for p in row):
        return Verdict(False, f"No fix found: in no fold of the cross-fitting did a "
                       f"candidate's {gap_name} gap on the other folds' rows lie below the "
                       f"unmitigated model's at a {w.cost_name} cost of at most "
                       f"{w.cost(max_cost)} (or the gaps there were not measurable: "
                       f"groups lack support), so the choosing procedure keeps the "
                       f"unmitigated model on all {n} held-out rows; {best}.", **kw)
    diff, cost = comparison.difference, comparison.cost
    figures = (f"its {gap_name} gap {w.gap_estimate(comparison.gap)} against the "
               f"unmitigated model's {w.gap_estimate(comparison.baseline_gap)}, a "
               f"difference of {w.gap_estimate(diff, signed=True)} (paired bootstrap), and "
               f"a {w.cost_name} cost of {w.cost_estimate(cost, signed=True)}")
    bound = 0.0 - min_reduction
    below = "zero" if min_reduction == 0 else w.gap(bound, signed=True)
    if not (math.isfinite(diff.ci_high) and diff.ci_high < bound):
        return Verdict(False, f"No fix found: no candidate's gap is confirmed below the "
                       f"unmitigated model's on the {rows}: {best}, gap "
                       f"difference {w.gap_estimate(diff, signed=True)} (the interval must "
                       f"lie below {below}); {figures}.", **kw)
    if not cost.value <= max_cost:
        return Verdict(False, f"No fix found: the best candidate, {cand.name}, costs more "
                       f"{w.cost_name} than allowed on the {rows}: "
                       f"{w.cost_estimate(cost, signed=True)} against at most "
                       f"{w.limit(max_cost)} (shown as a candidate only); {figures}.", **kw)
    own = Estimate.from_dict(crossfit["own_difference"]) if crossfit else None
    if crossfit and own is not None and not (math.isfinite(own.ci_high)
                                             and own.ci_high < bound):
        return Verdict(False, f"No fix found: the choosing procedure is confirmed, but "
                       f"{cand.name}'s own decisions (equal to the out-of-fold ones on "
                       f"{100 * crossfit['agreement']:.0f} % of the rows) give a gap "
                       f"difference of {w.gap_estimate(own, signed=True)}, not below "
                       f"{below}; {best}; on the {rows}, {figures}.", **kw)
    if crossfit:
        return Verdict(True, f"Fix found: {cand.name}; the out-of-fold decisions equal its "
                       f"own on {100 * crossfit['agreement']:.0f} % of the rows. On the {rows}, "
                       f"for the choosing procedure's decisions, {figures}: the gap "
                       f"difference lies below {below} (its own decisions: "
                       f"{w.gap_estimate(own, signed=True)}) and the cost is within "
                       f"{w.cost(max_cost)}.", **kw)
    return Verdict(True, f"Fix found: {cand.name}. On the {n} confirmation rows, which took "
                   f"no part in choosing it, {figures}: the gap difference lies below "
                   f"{below} and the cost is within "
                   f"{w.cost(max_cost)}.", **kw)


