"""The accuracy / fairness front: candidates, held-out scores, rejection, selection.

`build_front` fits every mitigation method over its hyper-parameters on the training
rows (post-processors on separate calibration rows: scores of a model on its own
training rows are over-confident; the unmitigated model decides at the one threshold
that is best for balanced accuracy there, so no fix is credited with what
re-thresholding alone buys), scores every candidate on **held-out** rows it never
saw (accuracy with a Wilson interval, balanced accuracy and every gap with bootstrap
intervals, per attribute and intersection), and then:

- **rejects** degenerate candidates, with the reason recorded: constant decisions,
  balanced accuracy at or below `CHANCE_BALANCED_ACCURACY` (chance level), or one
  decision for every row of a supported group;
- keeps the **non-dominated** set on (balanced accuracy, the constraint's gap);
- **prefers** one by a stated `Preference`, e.g.
  ``"balanced_accuracy >= best - 0.01, then eo"`` (the default for the constraint):
  constraints first, then the objective, among the candidates whose gap (the worst of
  every attribute and intersection) is below the unmitigated model's at no more than
  ``max_cost`` balanced accuracy. A rejected candidate is never preferred; when no
  candidate meets the constraints, the one closest to meeting them is, and the result
  says so;
- **confirms** it on rows that took no part in choosing (`Verdict`): it is *chosen* as
  the fix only when the paired-bootstrap interval of (its gap - the unmitigated model's
  gap) lies below ``-min_reduction`` and it gives up at most ``max_cost`` balanced
  accuracy there. Otherwise the result is "no fix found", with the reason, and the
  preferred candidate is shown as a candidate only.

**Cross-fitted confirmation** (``confirm_by="crossfit"``; ``"auto"`` uses it where one
split would leave a grouping of the confirmation rows without two supported groups).
The candidates are fitted on the training and calibration rows only; the one step that
reads the held-out rows is the *choice*. So the held-out rows are cut into K folds; for
each fold the same choice (rejection, eligibility, preference) is made on the other
folds' rows, and that choice's decisions are kept for this fold's rows; a fold where no
candidate is eligible keeps the unmitigated model's decisions, as the procedure would.
Every held-out row then has one decision per repeat, from a choice it took no part in.

- *Estimand*: the worst gap (every attribute and intersection) of the decisions the
  choosing *procedure* hands out, minus the unmitigated model's, on the population the
  held-out rows come from -- as cross-validation estimates a learning procedure, not one
  fitted model. The exported fix is the procedure's choice on all held-out rows (as
  cross-validation refits on all data). Folds often pick a neighbouring candidate, so
  the fix must also pass on its own decisions: the paired interval of its own gap
  difference over all held-out rows (optimistic, since it was chosen there, hence only
  a further condition, never enough alone) must lie below the margin too. The share of
  rows where the out-of-fold decisions equal the fix's is reported (``agreement``).
- *Interval*: per repeat, the paired bootstrap of `compare_paired` over all held-out rows
  (twice the rows of a 50 % split: about 1/sqrt(2) the width). It holds the fold choices
  fixed, so it omits the variability of the choice; the result therefore takes the
  *envelope* of the repeats' intervals (lowest low, highest high) around their mean, not
  an average that would shrink as repeats are added: conservative.
- *Support*: a group enters a gap under the same rules (`min_support` rows,
  `min_count` in the rate's denominator, default `VERDICT_MIN_COUNT`) counted on the
  rows measured; cross-fitting measures more rows, never smaller groups. Where even all
  held-out rows leave a grouping without two supported groups, nothing is chosen and the
  reason is stated.

The confirmation's interval is the *percentile* paired bootstrap. The largest gap over
groups is a maximum, biased upwards on resamples; the percentile interval carries that
bias into the candidate's side, which errs towards "no fix". The basic and bias-corrected
intervals remove it but, on simulated decisions with equal true largest gaps, confirmed a
reduction 6-11 % of the time at a nominal 2.5 %; the percentile interval 0-3 %
(tests/test_fairness_verdict.py).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from assay._stats import Estimate
from assay._validation import DataError, InvalidParameterError, check_option, check_scalar
from assay.fairness.metrics import (
    _DEN,
    GAPS,
    FairnessReport,
    GroupRates,
    _finest,
    _gap_from_rates,
    _rate,
    fairness_metrics,
    format_estimate,
)
from assay.report.result import format_figure, format_points

__all__ = [
    "CHANCE_BALANCED_ACCURACY",
    "CONFIRM_BY",
    "DEFAULT_MAX_COST",
    "DEFAULT_MIN_REDUCTION",
    "METHODS",
    "VERDICT_MIN_COUNT",
    "Candidate",
    "FrontResult",
    "PairedComparison",
    "Preference",
    "Verdict",
    "build_front",
    "compare_paired",
    "default_preference",
    "parse_preference",
]

#: Candidates at or below this held-out balanced accuracy are at chance level: rejected.
CHANCE_BALANCED_ACCURACY = 0.55
#: Mitigation methods of the front ("reductions" needs fairlearn).
METHODS = ("thresholds", "score_transformer", "fair_boost", "reductions")
DEFAULT_METHODS = ("thresholds", "score_transformer", "fair_boost")
#: Metrics a preference may name: higher is better for the first two, lower for gaps.
PREFERENCE_METRICS = ("accuracy", "balanced_accuracy", *GAPS)
_HIGHER = ("accuracy", "balanced_accuracy")
#: Hyper-parameter grids.
EPSILONS = (0.0, 0.01, 0.03, 0.06, 0.1)
RATE_OFFSETS = (-0.1, -0.06, -0.04, -0.02, 0.0, 0.02, 0.04, 0.06, 0.1)


# --------------------------------------------------------------------------- preference

_CLAUSE = re.compile(r"^\s*(?P<metric>[a-z_]+)\s*(?P<op><=|>=|<|>)\s*(?P<value>.+?)\s*$")
#: What a preference's value may be measured from: the unmitigated model, or the best
#: figure any usable candidate reaches (highest accuracy, smallest gap).
REFERENCES = ("baseline", "best")
_VALUE = re.compile(r"^(?:(?P<num>[-+]?\d*\.?\d+(?:e[-+]?\d+)?)|(?P<ref>"
                    + "|".join(REFERENCES)
                    + r")\s*(?:(?P<sign>[-+])\s*(?P<off>\d*\.?\d+))?)$")


@dataclass(frozen=True)
class Preference:
    """How one candidate is chosen: constraints, then an objective.

    Attributes
    ----------
    constraints : tuple of (metric, op, value, reference)
        ``reference``: None (the value is absolute), "baseline" (an offset from the
        unmitigated model's figure) or "best" (an offset from the best figure of any
        usable candidate).
    objective : str
        Maximised for accuracy and balanced accuracy, minimised for a gap.
    text : str
        The preference as given.
    """

    constraints: tuple[tuple[str, str, float, str | None], ...]
    objective: str
    text: str

    def bound(self, constraint: tuple[str, str, float, str | None],
              refs: References) -> float:
        metric, _, value, reference = constraint
        return value + (refs.value(reference, metric) if reference else 0.0)

    def violation(self, candidate: Candidate, refs: References) -> float:
        """How far the candidate is from meeting every constraint (0: it meets them)."""
        total = 0.0
        for c in self.constraints:
            metric, op, _, _ = c
            v, b = candidate.metric(metric), self.bound(c, refs)
            if not math.isfinite(v):
                total += 1.0
            elif op in ("<=", "<"):
                total += max(0.0, v - b) if op == "<=" else max(0.0, v - b + 1e-12)
            else:
                total += max(0.0, b - v) if op == ">=" else max(0.0, b - v + 1e-12)
        return total

    def describe(self, refs: References | None = None) -> str:
        parts = []
        for c in self.constraints:
            metric, op, value, reference = c
            if reference and refs is not None:
                parts.append(f"{metric} {op} {self.bound(c, refs):.3f} ({reference} "
                             f"{value:+g})")
            elif reference:
                parts.append(f"{metric} {op} {reference} {value:+g}")
            else:
                parts.append(f"{metric} {op} {value:g}")
        best = "highest" if self.objective in _HIGHER else "smallest"
        return ", ".join(parts + [f"then the {best} {self.objective}"])


def parse_preference(text: str) -> Preference:
    """Read ``"eo<=0.05, then balanced_accuracy"``.

    Clauses are separated by commas. ``METRIC OP VALUE`` (OP one of ``<= >= < >``;
    VALUE a number, ``baseline`` or ``baseline +/- number``) is a constraint; the last
    bare metric (optionally after ``then``, ``max`` or ``min``) is the objective
    (default: balanced accuracy). Metrics: accuracy, balanced_accuracy, dp, eo, eodds,
    pp.

    Raises
    ------
    InvalidParameterError
        A clause that does not parse or names an unknown metric.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidParameterError(f"prefer must be text such as 'eo<=0.05, then "
                                    f"balanced_accuracy'. Got {text!r}.")
    constraints, objective = [], "balanced_accuracy"
    for raw in text.split(","):
        clause = raw.strip().lower()
        if not clause:
            continue
        match = _CLAUSE.match(clause)
        if match:
            metric = match["metric"]
            check_option(metric, "prefer metric", PREFERENCE_METRICS)
            value = _VALUE.match(match["value"].strip())
            if value is None:
                raise InvalidParameterError(
                    f"prefer value must be a number, 'baseline', 'best' or an offset such "
                    f"as 'best - 0.01'. Got "
                    f"{match['value']!r} in {raw.strip()!r}.")
            if value["num"] is not None:
                constraints.append((metric, match["op"], float(value["num"]), None))
            else:
                off = float(value["off"] or 0.0) * (-1 if value["sign"] == "-" else 1)
                constraints.append((metric, match["op"], off, value["ref"]))
            continue
        words = clause.split()
        if words and words[0] in ("then", "max", "min", "maximise", "maximize", "minimise",
                                  "minimize"):
            words = words[1:]
        if len(words) != 1:
            raise InvalidParameterError(
                f"prefer clauses must be 'metric <= value' or 'then metric'. Got "
                f"{raw.strip()!r}.")
        objective = check_option(words[0], "prefer objective", PREFERENCE_METRICS)
    return Preference(tuple(constraints), objective, text.strip())


#: Balanced accuracy the default preference gives up, at most, for a smaller gap.
DEFAULT_ACCURACY_SLACK = 0.01


def default_preference(constraint: str) -> str:
    """Within 1 point of the best balanced accuracy on offer, the smallest gap.

    Measured from the best candidate rather than from the unmitigated model: group
    thresholds often *raise* balanced accuracy above the baseline's (the baseline cuts at
    0.5 on an imbalanced target), and a preference anchored on the baseline would then
    trade away accuracy that a fair model keeps.
    """
    return f"balanced_accuracy >= best - {DEFAULT_ACCURACY_SLACK:g}, then {constraint}"


@dataclass(frozen=True)
class References:
    """The figures a preference's relative values are measured from."""

    baseline: Candidate
    best: dict[str, float]

    @classmethod
    def of(cls, candidates: Sequence[Candidate], baseline: Candidate) -> References:
        usable = [c for c in candidates if c.rejected is None] or [baseline]
        best = {}
        for name in PREFERENCE_METRICS:
            values = [v for v in (c.metric(name) for c in usable) if math.isfinite(v)]
            pick = max if name in _HIGHER else min
            best[name] = pick(values) if values else float("nan")
        return cls(baseline=baseline, best=best)

    def value(self, reference: str, metric: str) -> float:
        return self.baseline.metric(metric) if reference == "baseline" else self.best[metric]


# --------------------------------------------------------------------------- candidates


@dataclass
class Candidate:
    """One model of the front, scored on held-out rows.

    Attributes
    ----------
    index : int
    method : str
        "baseline", "thresholds", "score_transformer", "fair_boost" or "reductions".
    params : dict
    accuracy, balanced_accuracy : Estimate
    gaps : dict of str to Estimate
        Each gap's largest value over the groupings (attributes and intersections).
    gaps_by_grouping : dict of str to dict of str to Estimate
    groups : list of GroupRates
        Per-group rates of the candidate (held-out rows).
    rejected : str or None
        Why the candidate cannot be chosen.
    on_front : bool
    model : estimator or None
        The fitted model (not serialised).
    """

    index: int
    method: str
    params: dict[str, Any]
    accuracy: Estimate
    balanced_accuracy: Estimate
    gaps: dict[str, Estimate]
    gaps_by_grouping: dict[str, dict[str, Estimate]] = field(default_factory=dict)
    groups: list[GroupRates] = field(default_factory=list)
    rejected: str | None = None
    on_front: bool = False
    model: Any = None
    y_pred: np.ndarray | None = None
    score: np.ndarray | None = None

    def metric(self, name: str) -> float:
        if name == "accuracy":
            return float(self.accuracy.value)
        if name == "balanced_accuracy":
            return float(self.balanced_accuracy.value)
        value = self.gaps[name].value
        return float("inf") if value is None or not math.isfinite(value) else float(value)

    @property
    def name(self) -> str:
        """Short label, e.g. ``"score_transformer (epsilon=0.01)"``."""
        shown = ", ".join(f"{k}={_short(v)}" for k, v in self.params.items()
                          if k not in ("constraint",))
        return f"{self.method} ({shown})" if shown else self.method

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "method": self.method, "name": self.name,
                "params": _jsonable(self.params), "accuracy": self.accuracy.to_dict(),
                "balanced_accuracy": self.balanced_accuracy.to_dict(),
                "gaps": {k: v.to_dict() for k, v in self.gaps.items()},
                "gaps_by_grouping": {n: {k: v.to_dict() for k, v in by.items()}
                                     for n, by in self.gaps_by_grouping.items()},
                "groups": [g.to_dict() for g in self.groups],
                "rejected": self.rejected, "on_front": bool(self.on_front)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Candidate:
        return cls(index=int(d["index"]), method=d["method"], params=dict(d["params"]),
                   accuracy=Estimate.from_dict(d["accuracy"]),
                   balanced_accuracy=Estimate.from_dict(d["balanced_accuracy"]),
                   gaps={k: Estimate.from_dict(v) for k, v in d["gaps"].items()},
                   gaps_by_grouping={n: {k: Estimate.from_dict(v) for k, v in by.items()}
                                     for n, by in d.get("gaps_by_grouping", {}).items()},
                   groups=[GroupRates.from_dict(g) for g in d.get("groups", [])],
                   rejected=d.get("rejected"), on_front=bool(d.get("on_front", False)))


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float | int | str | bool) or value is None:
        return value
    return str(value)


@dataclass
class FrontResult:
    """Every candidate, the front, the baseline and the verdict.

    Attributes
    ----------
    constraint : str
    preference : str
        The preference in words, with the baseline's figures filled in.
    candidates : list of Candidate
    baseline : int
        Index of the unmitigated model.
    chosen : int or None
        The fix: the preferred candidate when the confirmation rows confirm it
        (`verdict`), else None ("no fix found": nothing is named or exported as the fix).
    preferred : int
        The candidate the preference picked on the test rows, among those whose gap there
        is below the unmitigated model's at the stated cost (the best candidate, shown as
        a candidate only when it is not confirmed).
    verdict : Verdict or None
        Fix found or not, and why.
    note : str
        How the preference picked (e.g. that no candidate met its constraints).
    rows : dict
        Rows used: ``train``, ``calibration``, ``test`` (every candidate is scored and
        the choice is made on these) and ``confirmation`` (held out from the choice).
    confirmation : dict of str to Candidate
        ``"baseline"`` and ``"candidate"`` (the preferred one) scored again on the
        confirmation rows, which took
        no part in fitting or choosing: figures free of the optimism of picking the best
        of many candidates on the same rows. Empty when there were no such rows.
    test_rows, confirmation_rows : array of int or None
        Row positions of the test and confirmation rows (not serialised).
    seconds : float
    """

    constraint: str
    preference: str
    candidates: list[Candidate]
    baseline: int
    chosen: int | None
    preferred: int = 0
    verdict: Verdict | None = None
    note: str = ""
    rows: dict[str, int] = field(default_factory=dict)
    confirmation: dict[str, Candidate] = field(default_factory=dict)
    test_rows: np.ndarray | None = None
    confirmation_rows: np.ndarray | None = None
    seconds: float = 0.0
    confirmed_by: str = "split"
    crossfit: dict[str, Any] = field(default_factory=dict)

    @property
    def front(self) -> list[Candidate]:
        return [c for c in self.candidates if c.on_front]

    @property
    def rejected(self) -> list[Candidate]:
        return [c for c in self.candidates if c.rejected]

    @property
    def chosen_candidate(self) -> Candidate | None:
        """The confirmed fix, or None when no fix was found."""
        return None if self.chosen is None else self.candidates[self.chosen]

    @property
    def preferred_candidate(self) -> Candidate:
        return self.candidates[self.preferred]

    @property
    def fixed(self) -> bool:
        return self.chosen is not None

    @property
    def baseline_candidate(self) -> Candidate:
        return self.candidates[self.baseline]

    def verdict_text(self) -> str:
        """"Fix found: ..." or "No fix found: ..." with the reason."""
        return self.verdict.reason if self.verdict is not None else ""

    def confirmation_text(self) -> str | None:
        """The preferred candidate and the baseline on the confirmation rows (balanced
        accuracy, and the constraint's gap over every grouping), in one sentence."""
        if "candidate" not in self.confirmation:
            return None
        comp = self.verdict.comparison if self.verdict is not None else None

        def figures(c: Candidate, gap: Estimate | None) -> str:
            return (f"balanced accuracy {format_estimate(c.balanced_accuracy)}, largest "
                    f"{self.constraint} gap {points_estimate(gap)}")

        who = "the chosen model" if self.fixed else "the best candidate (not a fix)"
        if self.confirmed_by == "crossfit":
            cf = self.crossfit
            who = "the choosing procedure's out-of-fold decisions (first repeat)"
            return (f"Cross-fitted over {cf.get('folds')} folds x {cf.get('repeats')} "
                    f"repeats of the {self.rows.get('confirmation', 0)} held-out rows, each "
                    f"row decided by a choice it took no part in: {who} have "
                    f"{figures(self.confirmation['candidate'], comp and comp.gap)}; the "
                    f"unmitigated model "
                    f"{figures(self.confirmation['baseline'], comp and comp.baseline_gap)}.")
        return (f"On {self.rows.get('confirmation', 0)} rows that took no part in the choice, "
                f"{who} has {figures(self.confirmation['candidate'], comp and comp.gap)}; "
                f"the unmitigated model "
                f"{figures(self.confirmation['baseline'], comp and comp.baseline_gap)}.")

    def held_out_predictions(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(row positions, decisions, scores) on the rows that took no part in choosing
        (the confirmation rows; the test rows when there are none) of the chosen model,
        or of the unmitigated model when no fix was found."""
        key, index = ("candidate", self.preferred) if self.fixed else ("baseline", 0)
        if key in self.confirmation and self.confirmation_rows is not None:
            c = self.confirmation[key]
            return self.confirmation_rows, c.y_pred, c.score
        c = self.candidates[index]
        return self.test_rows, c.y_pred, c.score

    def to_dict(self) -> dict[str, Any]:
        return {"constraint": self.constraint, "preference": self.preference,
                "front": [c.index for c in self.front], "chosen": self.chosen,
                "preferred": self.preferred,
                "verdict": None if self.verdict is None else self.verdict.to_dict(),
                "baseline": self.baseline, "rejected": [c.index for c in self.rejected],
                "candidates": [c.to_dict() for c in self.candidates], "note": self.note,
                "rows": dict(self.rows),
                "confirmation": {k: c.to_dict() for k, c in self.confirmation.items()},
                "seconds": float(self.seconds), "confirmed_by": self.confirmed_by,
                "crossfit": _jsonable(self.crossfit)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FrontResult:
        return cls(constraint=d["constraint"], preference=d["preference"],
                   candidates=[Candidate.from_dict(c) for c in d["candidates"]],
                   baseline=int(d["baseline"]),
                   chosen=None if d.get("chosen") is None else int(d["chosen"]),
                   preferred=int(d.get("preferred", d.get("chosen") or 0)),
                   verdict=None if d.get("verdict") is None
                   else Verdict.from_dict(d["verdict"]),
                   note=d.get("note", ""), rows=dict(d.get("rows", {})),
                   confirmation={k: Candidate.from_dict(c)
                                 for k, c in d.get("confirmation", {}).items()},
                   seconds=float(d.get("seconds", 0.0)),
                   confirmed_by=d.get("confirmed_by", "split"),
                   crossfit=dict(d.get("crossfit") or {}))

    def summary_dict(self) -> dict[str, Any]:
        """The CLI's JSON: ``front``, ``chosen`` (null: no fix found), ``preferred``,
        ``baseline``, ``rejected`` as points, and the ``verdict``."""
        def point(c: Candidate) -> dict[str, Any]:
            d = c.to_dict()
            d.pop("groups")
            return d

        return {"constraint": self.constraint, "preference": self.preference,
                "front": [point(c) for c in self.front],
                "chosen": None if self.chosen is None else point(self.chosen_candidate),
                "preferred": point(self.preferred_candidate),
                "verdict": None if self.verdict is None else self.verdict.to_dict(),
                "baseline": point(self.baseline_candidate),
                "rejected": [point(c) for c in self.rejected], "note": self.note,
                "rows": dict(self.rows),
                "confirmation": {k: point(c) for k, c in self.confirmation.items()},
                "seconds": float(self.seconds), "confirmed_by": self.confirmed_by,
                "crossfit": _jsonable(self.crossfit)}


# --------------------------------------------------------------------------- scoring


def score_candidate(index: int, method: str, params: dict[str, Any], y_true, y_pred, score,
                    groups, *, min_support: int, min_count: int, n_bootstrap: int,
                    random_state: int | None) -> Candidate:
    """A candidate's held-out figures and, if degenerate, why it is rejected."""
    report = fairness_metrics(y_true, y_pred, groups, scores=score, min_support=min_support,
                              min_count=min_count, n_bootstrap=n_bootstrap,
                              random_state=random_state)
    cand = Candidate(index=index, method=method, params=params,
                     accuracy=report.overall["accuracy"],
                     balanced_accuracy=report.overall["balanced_accuracy"],
                     gaps={}, groups=report.groups,
                     y_pred=np.asarray(y_pred), score=None if score is None else
                     np.asarray(score))
    for name in GAPS:
        worst = report.worst(name)
        cand.gaps[name] = worst.difference if worst is not None else \
            Estimate(float("nan"), float("nan"), float("nan"))
        cand.gaps_by_grouping[name] = {k: g.difference for k, g in report.gaps[name].items()}
    cand.rejected = _degenerate(report, np.asarray(y_pred), min_count)
    return cand


def _degenerate(report: FairnessReport, y_pred: np.ndarray, min_count: int) -> str | None:
    """Why a candidate cannot be chosen, or None.

    "One class for a whole group" counts only groups with enough rows and at least
    `min_count` rows of each true class: a small group with few positives that gets no
    positive decision is not by itself a degenerate model.
    """
    if np.all(y_pred == y_pred[0]):
        return f"constant: decides {int(y_pred[0])} for every row"
    bal = report.overall["balanced_accuracy"].value
    if not bal > CHANCE_BALANCED_ACCURACY:
        return (f"chance level: balanced accuracy {bal:.3f} <= "
                f"{CHANCE_BALANCED_ACCURACY:g}")
    for g in report.groups:
        both = min(g.counts["tp"] + g.counts["fn"], g.counts["tn"] + g.counts["fp"])
        rate = g.rates["selection_rate"].value
        if g.supported and both >= min_count and rate in (0.0, 1.0):
            which = "selects nobody" if rate == 0 else "selects everybody"
            return f"one class for a whole group: {which} in {g.label} ({g.n} rows)"
    return None


def non_dominated(candidates: Sequence[Candidate], constraint: str) -> np.ndarray:
    """Mask of the candidates no other (non-rejected) one beats on balanced accuracy and
    the constraint's gap (at least as good on both, better on one)."""
    ok = np.array([c.rejected is None for c in candidates])
    bal = np.array([c.metric("balanced_accuracy") for c in candidates])
    gap = np.array([c.metric(constraint) for c in candidates])
    better_eq = (bal[None, :] >= bal[:, None]) & (gap[None, :] <= gap[:, None])
    strictly = (bal[None, :] > bal[:, None]) | (gap[None, :] < gap[:, None])
    dominated = (better_eq & strictly & ok[None, :]).any(axis=1)
    return ok & ~dominated


def select(candidates: Sequence[Candidate], preference: Preference, refs: References
           ) -> tuple[int, str]:
    """Index of the chosen candidate and a note on how it was chosen (`refs`: what the
    preference's relative values are measured from)."""
    usable = [c for c in candidates if c.rejected is None]
    if not usable:
        raise DataError("every candidate model is degenerate (constant, at chance level or "
                        "one class for a whole group); see the rejected list.")
    sign = -1.0 if preference.objective in _HIGHER else 1.0

    def key(c: Candidate):
        v = c.metric(preference.objective)
        other = -c.metric("balanced_accuracy") if preference.objective != "balanced_accuracy" \
            else c.metric(baseline_gap_name(preference, c))
        return (sign * v if math.isfinite(v) else math.inf, other)

    feasible = [c for c in usable if preference.violation(c, refs) == 0]
    if feasible:
        best = min(feasible, key=key)
        return best.index, f"preferred by {preference.describe(refs)}"
    closest = min(usable, key=lambda c: (preference.violation(c, refs), key(c)))
    return closest.index, (f"no candidate meets {preference.describe(refs)}; the closest "
                           f"one is preferred")


def baseline_gap_name(preference: Preference, _: Candidate) -> str:
    """Tie-break of a balanced-accuracy objective: the first gap the preference names."""
    for metric, *_ in preference.constraints:
        if metric in GAPS:
            return metric
    return "eo"


# --------------------------------------------------------------------------- verdict

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
#: confirmed (tests/test_fairness_verdict.py simulates this).
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
class PairedComparison:
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

    @property
    def measurable(self) -> bool:
        return not self.unmeasurable and math.isfinite(self.difference.value)

    def to_dict(self) -> dict[str, Any]:
        return {"n_rows": int(self.n_rows), "gap": self.gap.to_dict(),
                "baseline_gap": self.baseline_gap.to_dict(),
                "difference": self.difference.to_dict(), "cost": self.cost.to_dict(),
                "by_grouping": {k: [float(a), float(b)] for k, (a, b) in
                                self.by_grouping.items()},
                "unmeasurable": list(self.unmeasurable)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PairedComparison:
        nan = float("nan")
        return cls(n_rows=int(d["n_rows"]), gap=Estimate.from_dict(d["gap"]),
                   baseline_gap=Estimate.from_dict(d["baseline_gap"]),
                   difference=Estimate.from_dict(d["difference"]),
                   cost=Estimate.from_dict(d["cost"]),
                   by_grouping={k: tuple(nan if x is None else float(x) for x in v)
                                for k, v in d.get("by_grouping", {}).items()},
                   unmeasurable=list(d.get("unmeasurable", [])))


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
class Verdict:
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

    def to_dict(self) -> dict[str, Any]:
        return {"fixed": bool(self.fixed), "reason": self.reason,
                "candidate": int(self.candidate),
                "comparison": None if self.comparison is None else self.comparison.to_dict(),
                "min_reduction": float(self.min_reduction), "max_cost": float(self.max_cost)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Verdict:
        comp = d.get("comparison")
        return cls(fixed=bool(d["fixed"]), reason=d["reason"], candidate=int(d["candidate"]),
                   comparison=None if comp is None else PairedComparison.from_dict(comp),
                   min_reduction=float(d.get("min_reduction", DEFAULT_MIN_REDUCTION)),
                   max_cost=float(d.get("max_cost", DEFAULT_MAX_COST)))


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


def judge(candidates: Sequence[Candidate], preferred: int, eligible: bool,
          comparison: PairedComparison | None, *, constraint: str, n_choosing: int,
          min_reduction: float, max_cost: float, min_count: int = 1,
          crossfit: Mapping[str, Any] | None = None) -> Verdict:
    """The verdict on the preferred candidate (see `Verdict`); `crossfit`: the record of a
    cross-fitted confirmation (`_crossfit`), whose rows are every test row."""
    cand, base = candidates[preferred], candidates[0]
    kw = dict(candidate=preferred, comparison=comparison, min_reduction=min_reduction,
              max_cost=max_cost)
    best = f"best candidate {cand.name} (shown as a candidate only)"
    if preferred == 0:
        return Verdict(False, "No fix found: every mitigated candidate is degenerate (see the "
                       "rejected list); the unmitigated model stays as it is.", **kw)
    if not eligible:
        base_gap = worst_over_groupings(base, constraint)
        if not math.isfinite(base_gap):
            why = "; ".join(_unmeasured_on(base, constraint, min_count)) or \
                "no grouping has two groups with enough rows"
            return Verdict(False, f"No fix found: gaps not measurable: groups lack support "
                           f"on the {n_choosing} rows the candidates are chosen on ({why}); "
                           f"{best}.", **kw)
        return Verdict(False, f"No fix found: no candidate's {constraint} gap on the "
                       f"{n_choosing} rows the candidates are chosen on is below the "
                       f"unmitigated model's ({points(base_gap)} points) at a balanced "
                       f"accuracy cost of at most {points(max_cost)} points; {best}.", **kw)
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
                       f"candidate's {constraint} gap on the other folds' rows lie below the "
                       f"unmitigated model's at a balanced accuracy cost of at most "
                       f"{points(max_cost)} points (or the gaps there were not measurable: "
                       f"groups lack support), so the choosing procedure keeps the "
                       f"unmitigated model on all {n} held-out rows; {best}.", **kw)
    diff, cost = comparison.difference, comparison.cost
    figures = (f"its {constraint} gap {points_estimate(comparison.gap)} against the "
               f"unmitigated model's {points_estimate(comparison.baseline_gap)}, a "
               f"difference of {points_estimate(diff, signed=True)} (paired bootstrap), and "
               f"a balanced accuracy cost of {points_estimate(cost, signed=True)}")
    bound = 0.0 - min_reduction
    below = "zero" if min_reduction == 0 else f"{points(bound, signed=True)} points"
    if not (math.isfinite(diff.ci_high) and diff.ci_high < bound):
        return Verdict(False, f"No fix found: no candidate's gap is confirmed below the "
                       f"unmitigated model's on the {rows}: {best}, gap "
                       f"difference {points_estimate(diff, signed=True)} (the interval must "
                       f"lie below {below}); {figures}.", **kw)
    if not cost.value <= max_cost:
        return Verdict(False, f"No fix found: the best candidate, {cand.name}, costs more "
                       f"balanced accuracy than allowed on the {rows}: "
                       f"{points_estimate(cost, signed=True)} against at most "
                       f"{points(max_cost)} (shown as a candidate only); {figures}.", **kw)
    own = Estimate.from_dict(crossfit["own_difference"]) if crossfit else None
    if own is not None and not (math.isfinite(own.ci_high) and own.ci_high < bound):
        return Verdict(False, f"No fix found: the choosing procedure is confirmed, but "
                       f"{cand.name}'s own decisions (equal to the out-of-fold ones on "
                       f"{100 * crossfit['agreement']:.0f} % of the rows) give a gap "
                       f"difference of {points_estimate(own, signed=True)}, not below "
                       f"{below}; {best}; on the {rows}, {figures}.", **kw)
    if crossfit:
        return Verdict(True, f"Fix found: {cand.name}; the out-of-fold decisions equal its "
                       f"own on {100 * crossfit['agreement']:.0f} % of the rows. On the {rows}, "
                       f"for the choosing procedure's decisions, {figures}: the gap "
                       f"difference lies below {below} (its own decisions: "
                       f"{points_estimate(own, signed=True)}) and the cost is within "
                       f"{points(max_cost)} points.", **kw)
    return Verdict(True, f"Fix found: {cand.name}. On the {n} confirmation rows, which took "
                   f"no part in choosing it, {figures}: the gap difference lies below "
                   f"{below} and the cost is within "
                   f"{points(max_cost)} points.", **kw)


# --------------------------------------------------------------------------- building


def _rows(mask_or_index, n: int, name: str) -> np.ndarray:
    arr = np.asarray(mask_or_index)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise InvalidParameterError(f"{name} must be a boolean mask of {n} rows. Got "
                                        f"shape {arr.shape}.")
        return np.flatnonzero(arr)
    return arr.astype(np.int64)


def build_front(
    X,
    y,
    groups: pd.DataFrame,
    *,
    train,
    calibration,
    test,
    constraint: str = "eo",
    methods: Sequence[str] = DEFAULT_METHODS,
    base_estimator: Any = None,
    base_scores=None,
    baseline_name: str = "gradient boosting (unmitigated)",
    prefer: str | None = None,
    min_support: int = 50,
    min_count: int = VERDICT_MIN_COUNT,
    n_bootstrap: int = 200,
    n_rounds: int = 60,
    confirm: float = 0.5,
    confirm_by: str = "auto",
    folds: int = 5,
    repeats: int = 3,
    min_reduction: float = DEFAULT_MIN_REDUCTION,
    max_cost: float = DEFAULT_MAX_COST,
    random_state: int = 0,
    n_jobs: int = 1,
    progress=None,
) -> FrontResult:
    """Fit every candidate, score it on the test rows, reject, find the front, choose.

    Parameters
    ----------
    X : array of shape (n_rows, n_features)
        Encoded features (fair boosting and the base estimator read them).
    y : array of shape (n_rows,)
        0/1 labels.
    groups : DataFrame of shape (n_rows, n_protected)
    train, calibration, test : bool masks or row positions
        Rows to fit models on, to fit post-processors and choose the boosting size on,
        and to score every candidate on (disjoint).
    constraint : {"dp", "eo", "eodds"}, default="eo"
    methods : sequence of str
        Among "thresholds", "score_transformer", "fair_boost", "reductions".
    base_estimator : unfitted classifier, optional
        The unmitigated model (default scikit-learn's HistGradientBoostingClassifier),
        fitted on the training rows. It decides at one threshold for everyone, the best
        for balanced accuracy on the calibration rows (`balanced_threshold`), so a fix
        is credited only with what group-aware mitigation adds.
    base_scores : array of shape (n_rows,), optional
        Scores of a model already trained (the user's): it is the baseline and the
        post-processors read it; nothing is refitted. Excludes fair boosting and
        reductions only if they are not asked for.
    prefer : str, optional
        Preference (`parse_preference`); default `default_preference` (constraint).
    min_support, min_count : int, default=50, 100
        Group rows, and rows of a rate's denominator, for a group to enter a gap
        (`VERDICT_MIN_COUNT`: each rate known to about +/-10 points).
    n_bootstrap : int
        Bootstrap resamples of each candidate's intervals.
    n_rounds : int
        Boosting rounds (every round is a candidate on the grid).
    confirm : float in [0, 1), default=0.5
        Share of the test rows held back from scoring the candidates and choosing: the
        baseline and the chosen model are scored again on them (`FrontResult.confirmation`),
        so the chosen model's figures are not flattered by having been picked, among many,
        on the rows that measure it. 0 scores and chooses on every test row, and then no
        fix can be confirmed. Not used when cross-fitting.
    confirm_by : {"auto", "split", "crossfit"}, default="auto"
        How the choice is confirmed: on the `confirm` share of the test rows ("split"),
        or by repeated cross-fitting over every test row ("crossfit": `folds` folds,
        `repeats` fold assignments; see the module docstring). "auto" cross-fits where
        the split's confirmation rows would leave a grouping without two groups of
        enough support.
    folds, repeats : int, default=5, 3
        Cross-fitting folds and repeats.
    min_reduction : float, default=0
        A candidate is chosen as the fix only when, on the confirmation rows, the 95 %
        paired-bootstrap interval of (its largest gap - the unmitigated model's largest
        gap, over every attribute and intersection) lies below ``-min_reduction``: 0 asks
        for a reduction the rows can tell from none; 0.02 for one of at least 2 points.
    max_cost : float, default=0.02
        Balanced accuracy a fix may give up against the unmitigated model, on the
        confirmation rows (point estimate; its interval is reported). Candidates that
        give up more on the test rows, or whose gap there is not below the unmitigated
        model's, are not preferred at all.
    random_state : int
    n_jobs : int, default=1
        Threads of the native libraries (OpenMP, BLAS) while the front is built. One
        thread is the safe default on a shared machine: gradient boosting's OpenMP loops
        slow down tenfold when their threads compete for busy cores.
    progress : callable(str), optional
        Told what is being fitted.

    Returns
    -------
    FrontResult
    """
    from threadpoolctl import threadpool_limits

    check_scalar(n_jobs, "n_jobs", kind=int, low=1)
    with threadpool_limits(n_jobs):
        return _build_front(X, y, groups, train=train, calibration=calibration, test=test,
                            constraint=constraint, methods=methods,
                            base_estimator=base_estimator, base_scores=base_scores,
                            baseline_name=baseline_name, prefer=prefer,
                            min_support=min_support, min_count=min_count,
                            n_bootstrap=n_bootstrap, n_rounds=n_rounds, confirm=confirm,
                            confirm_by=confirm_by, folds=folds, repeats=repeats,
                            min_reduction=min_reduction, max_cost=max_cost,
                            random_state=random_state, progress=progress)


def _build_front(X, y, groups, *, train, calibration, test, constraint, methods,
                 base_estimator, base_scores, baseline_name, prefer, min_support, min_count,
                 n_bootstrap, n_rounds, confirm, confirm_by, folds, repeats, min_reduction,
                 max_cost, random_state, progress) -> FrontResult:
    started = time.perf_counter()
    check_option(constraint, "constraint", ("dp", "eo", "eodds"))
    methods = tuple(dict.fromkeys(methods))
    for m in methods:
        check_option(m, "method", METHODS)
    if "reductions" in methods:
        _require_fairlearn(methods)
    preference = parse_preference(prefer or default_preference(constraint))
    check_scalar(n_rounds, "n_rounds", kind=int, low=1)
    confirm = check_scalar(confirm, "confirm", low=0.0, high=1.0, high_open=True)
    check_option(confirm_by, "confirm_by", CONFIRM_BY)
    check_scalar(folds, "folds", kind=int, low=2, high=20)
    check_scalar(repeats, "repeats", kind=int, low=1, high=50)
    min_reduction = check_scalar(min_reduction, "min_reduction", low=0.0, high=1.0)
    max_cost = check_scalar(max_cost, "max_cost", low=0.0, high=1.0)
    say = progress or (lambda _: None)
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y).astype(np.int64)
    n = y.shape[0]
    train, cal, test = (_rows(r, n, name) for r, name in
                        ((train, "train"), (calibration, "calibration"), (test, "test")))
    A = groups.reset_index(drop=True)
    # The test rows in order: those the candidates are scored and chosen on, then those
    # held back to confirm the choice. Every prediction covers both; scoring reads the first.
    chosen_on, confirming = _confirmation_split(test, y, A, confirm, random_state)
    if confirm_by == "auto":
        # Support depends on labels and groups only (rows, positives, negatives).
        short = confirming.size and not _support(y[confirming], A.iloc[confirming],
                                                 constraint, min_support, min_count)
        confirm_by = "crossfit" if short else "split"
    if confirm_by == "crossfit":
        # Every test row chooses and confirms, never both in one fold.
        chosen_on, confirming = np.sort(test), np.empty(0, dtype=np.int64)
    test = np.concatenate([chosen_on, confirming])
    on = slice(0, chosen_on.size)
    A_cal, A_test = A.iloc[cal].reset_index(drop=True), A.iloc[test].reset_index(drop=True)
    y_test = y[test]
    common = dict(min_support=min_support, min_count=min_count, n_bootstrap=n_bootstrap,
                  random_state=random_state)
    held: list[tuple[np.ndarray, np.ndarray | None]] = []
    from assay.fairness.mitigate import (
        FairBoostClassifier,
        FairScoreTransformer,
        GroupThresholdClassifier,
    )

    candidates: list[Candidate] = []

    def add(method, params, model, pred, score):
        pred = np.asarray(pred).astype(np.int64)
        score = None if score is None else np.asarray(score)
        held.append((pred, score))
        candidates.append(score_candidate(len(candidates), method, params, y_test[on],
                                          pred[on], None if score is None else score[on],
                                          A_test.iloc[on].reset_index(drop=True), **common))
        candidates[-1].model = model

    # The unmitigated model.
    if base_scores is not None:
        scores = np.asarray(base_scores, dtype=np.float64)
        base = None
        say("reading the model's scores")
    else:
        from sklearn.base import clone
        from sklearn.ensemble import HistGradientBoostingClassifier

        base = clone(base_estimator) if base_estimator is not None else \
            HistGradientBoostingClassifier(random_state=random_state)
        say(f"fitting the unmitigated model ({type(base).__name__})")
        base.fit(X[train], y[train])
        scores = np.full(n, np.nan)
        need = np.concatenate([cal, test])
        scores[need] = base.predict_proba(X[need])[:, 1]
    # One threshold for everyone, the best for balanced accuracy on the calibration rows:
    # a fix then gets no credit for what re-thresholding alone buys (0.5 on an imbalanced
    # target gives up a lot of balanced accuracy; every post-processor re-thresholds).
    cut = balanced_threshold(scores[cal], y[cal])
    add("baseline", {"model": baseline_name, "threshold": cut}, base, scores[test] >= cut,
        scores[test])

    s_cal, s_test = scores[cal], scores[test]
    if "thresholds" in methods:
        say("group thresholds")
        # One threshold per intersection, and per group of each single attribute: the
        # latter pool more rows per threshold, so their rates vary less off the fitting
        # rows (the gaps on intersections are then not held to the common rate).
        columns = [str(c) for c in A.columns]
        for by in [None] + (columns if len(columns) > 1 else []):
            first = GroupThresholdClassifier(None, constraint=constraint, by=by,
                                             min_support=min_count)
            first.fit(s_cal, y[cal], sensitive_features=A_cal)
            rates = sorted({round(float(np.clip(first.target_rate_ + d, 0.02, 0.98)), 3)
                            for d in RATE_OFFSETS})
            for rate in rates:
                model = GroupThresholdClassifier(None, constraint=constraint,
                                                 target_rate=rate, by=by,
                                                 min_support=min_count)
                model.fit(s_cal, y[cal], sensitive_features=A_cal)
                # Decisions from the scores already computed; the model then reads X.
                pred = model.predict(s_test, sensitive_features=A_test)
                _attach(model, base)
                add("thresholds", {"constraint": constraint, "by": by or "intersection",
                                   "target_rate": rate}, model, pred, None)
    if "score_transformer" in methods:
        say("fair score transformer")
        for eps in EPSILONS:
            model = FairScoreTransformer(None, constraint=constraint, epsilon=eps,
                                         min_support=min_support)
            model.fit(s_cal, y[cal], sensitive_features=A_cal)
            s = model.transform_scores(s_test, sensitive_features=A_test)
            _attach(model, base)
            add("score_transformer", {"constraint": constraint, "epsilon": eps}, model,
                s >= model.threshold, s)
    if "fair_boost" in methods:
        say(f"fair boosting ({n_rounds} rounds)")
        boost = FairBoostClassifier(constraint=constraint, n_estimators=n_rounds,
                                    min_support=min_count, random_state=random_state)
        boost.fit(X[train], y[train], sensitive_features=A.iloc[train].reset_index(drop=True),
                  X_val=X[cal], y_val=y[cal], sensitive_val=A_cal)
        staged = boost._staged_F(X[test])
        total = len(boost.estimators_)
        rounds = sorted({*np.unique(np.linspace(1, total, 12).round().astype(int)).tolist(),
                         boost.n_estimators_})
        for t in rounds:
            F = staged[t - 1]
            add("fair_boost", {"constraint": constraint, "rounds": int(t),
                               "chosen_on_validation": t == boost.n_estimators_},
                boost.with_rounds(t), F > 0, 1 / (1 + np.exp(-2 * F)))
    if "reductions" in methods:
        _reductions(add, X, y, A, train, test, constraint, random_state, say)

    mask = non_dominated(candidates, constraint)
    for c, on in zip(candidates, mask):
        c.on_front = bool(on)
    baseline = candidates[0]
    preferred, note, eligible, refs = _prefer(candidates, constraint, preference, max_cost)
    confirmation, comparison, crossfit = {}, None, {}
    kw = dict(min_support=min_support, min_count=min_count, random_state=random_state)
    if confirming.size:
        rest = slice(chosen_on.size, None)
        A_rest = A_test.iloc[rest].reset_index(drop=True)
        for name, i in (("baseline", 0), ("candidate", preferred))[:2 if preferred else 1]:
            pred, score = held[i]
            c = candidates[i]
            confirmation[name] = score_candidate(
                i, c.method, c.params, y_test[rest], pred[rest],
                None if score is None else score[rest], A_rest, **common)
        if preferred:
            comparison = compare_paired(y_test[rest], held[preferred][0][rest],
                                        held[0][0][rest], A_rest, constraint, **kw)
    elif confirm_by == "crossfit" and preferred and eligible:
        say(f"cross-fitting the choice ({folds} folds x {repeats} repeats)")
        comparison, crossfit, stitched = _crossfit(
            [h[0] for h in held], candidates, y_test, A_test, constraint=constraint,
            preference=preference, max_cost=max_cost, folds=folds, repeats=repeats,
            preferred=preferred, **kw)
        confirmation["baseline"] = score_candidate(0, baseline.method, baseline.params,
                                                   y_test, held[0][0], held[0][1], A_test,
                                                   **common)
        c = candidates[preferred]
        confirmation["candidate"] = score_candidate(preferred, c.method, c.params, y_test,
                                                    stitched, None, A_test, **common)
    verdict = judge(candidates, preferred, bool(eligible), comparison,
                    constraint=constraint, n_choosing=int(chosen_on.size),
                    min_reduction=min_reduction, max_cost=max_cost, min_count=min_count,
                    crossfit=crossfit or None)
    return FrontResult(constraint=constraint, preference=preference.describe(refs),
                       candidates=candidates, baseline=0,
                       chosen=preferred if verdict.fixed else None, preferred=preferred,
                       verdict=verdict, note=note,
                       rows={"train": int(len(train)), "calibration": int(len(cal)),
                             "test": int(chosen_on.size),
                             "confirmation": int(confirming.size or (
                                 chosen_on.size if crossfit else 0))},
                       confirmation=confirmation, test_rows=chosen_on,
                       confirmation_rows=confirming if not crossfit else chosen_on,
                       seconds=round(time.perf_counter() - started, 3),
                       confirmed_by=confirm_by, crossfit=crossfit)


def balanced_threshold(scores: np.ndarray, y: np.ndarray) -> float:
    """The cut ``scores >= t`` with the highest balanced accuracy on these rows (ties: the
    one nearest 0.5); 0.5 when the rows hold one class. Decisions given as 0/1 scores
    stay as they are (t = 1)."""
    from sklearn.metrics import roc_curve

    scores, y = np.asarray(scores, dtype=np.float64), np.asarray(y)
    if np.unique(y).size < 2:
        return 0.5
    fpr, tpr, cuts = roc_curve(y, scores)
    keep = np.isfinite(cuts)
    bal = (tpr[keep] + 1 - fpr[keep]) / 2
    cuts = cuts[keep]
    best = np.flatnonzero(bal >= bal.max() - 1e-12)
    return float(cuts[best[np.argmin(np.abs(cuts[best] - 0.5))]])


def _prefer(candidates: Sequence[Candidate], constraint: str, preference: Preference,
            max_cost: float) -> tuple[int, str, list[Candidate], References]:
    """(preferred index, note, eligible candidates, references): only a candidate whose
    gap (worst grouping) is below the unmitigated model's, at the stated cost, may be
    preferred; the preference picks among those (the closest one when none is)."""
    baseline = candidates[0]
    base_gap = worst_over_groupings(baseline, constraint)
    base_bal = baseline.metric("balanced_accuracy")
    mitigated = [c for c in candidates[1:] if c.rejected is None]
    eligible = [c for c in mitigated if worst_over_groupings(c, constraint) < base_gap
                and c.metric("balanced_accuracy") >= base_bal - max_cost]
    pool = eligible or mitigated
    refs = References.of(pool or [baseline], baseline)
    if pool:
        preferred, note = select(pool, preference, refs)
        note += (f", among the candidates whose {constraint} gap (worst grouping) is below "
                 f"the unmitigated model's at a balanced accuracy cost of at most "
                 f"{points(max_cost)} points" if eligible else
                 f" (no candidate's {constraint} gap, worst grouping, is below the "
                 f"unmitigated model's at that cost)")
    elif baseline.rejected is not None:
        raise DataError("every candidate model is degenerate (constant, at chance level or "
                        "one class for a whole group); see the rejected list.")
    else:
        preferred, note = 0, "every mitigated candidate is degenerate"
    return preferred, note, eligible, refs


#: How the choice is confirmed (`build_front`'s ``confirm_by``).
CONFIRM_BY = ("auto", "split", "crossfit")


def _support(y: np.ndarray, groups: pd.DataFrame, constraint: str, min_support: int,
             min_count: int) -> bool:
    """Whether every grouping has two groups with enough rows and enough of each rate's
    denominator (these depend on labels and groups only for dp, eo and eodds)."""
    y = np.asarray(y).astype(np.int64)
    check = compare_paired(y, y, y, groups.reset_index(drop=True), constraint,
                           min_support=min_support, min_count=min_count, n_bootstrap=0)
    return not check.unmeasurable


def _folds(y: np.ndarray, groups: pd.DataFrame, k: int, seed: int) -> np.ndarray:
    """Fold of each row: stratified by label and intersection (by label where an
    intersection is too rare to spread over the folds)."""
    from sklearn.model_selection import StratifiedKFold

    label = pd.Series(np.asarray(y).astype(str))
    strata = label + "|" + groups.astype(str).agg("|".join, axis=1).to_numpy()
    strata = strata.where(strata.map(strata.value_counts()) >= k, label)
    if strata.value_counts().min() < k:
        strata = pd.Series(np.zeros(len(label), dtype=int).astype(str))
    fold = np.empty(len(label), dtype=np.int64)
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    for i, (_, part) in enumerate(splitter.split(np.zeros(len(label)), strata)):
        fold[part] = i
    return fold


def _crossfit(preds: Sequence[np.ndarray], candidates: Sequence[Candidate], y: np.ndarray,
              groups: pd.DataFrame, *, constraint: str, preference: Preference,
              max_cost: float, folds: int, repeats: int, preferred: int, min_support: int,
              min_count: int, random_state: int
              ) -> tuple[PairedComparison, dict[str, Any], np.ndarray]:
    """Cross-fitted confirmation (module docstring): (the comparison of the out-of-fold
    decisions with the unmitigated model's, the record, the first repeat's decisions).

    ``preds[i]`` holds candidate i's decisions on every row of `y`."""
    picks, comparisons, stitched_first, same = [], [], None, []
    groups = groups.reset_index(drop=True)
    for r in range(repeats):
        fold = _folds(y, groups, folds, random_state + r)
        stitched = np.empty_like(preds[0])
        row_picks = []
        for k in range(folds):
            pick = _choose(preds, candidates, y, groups, np.flatnonzero(fold != k),
                           constraint=constraint, preference=preference, max_cost=max_cost,
                           min_support=min_support, min_count=min_count)
            # Only this fold's rows, which took no part in that choice, get its decisions.
            stitched[fold == k] = preds[pick][fold == k]
            row_picks.append(int(pick))
        picks.append(row_picks)
        comparisons.append(compare_paired(y, stitched, preds[0], groups, constraint,
                                          min_support=min_support, min_count=min_count,
                                          random_state=random_state + r))
        stitched_first = stitched if stitched_first is None else stitched_first
        same.append(np.mean(stitched == preds[preferred]))
    own = compare_paired(y, preds[preferred], preds[0], groups, constraint,
                         min_support=min_support, min_count=min_count,
                         random_state=random_state)
    record = {"folds": folds, "repeats": repeats, "picks": picks,
              "own_difference": own.difference.to_dict(),
              "chose_it": float(np.mean([p == preferred for row in picks for p in row])),
              "agreement": float(np.mean(same)),
              "differences": [c.difference.to_dict() for c in comparisons]}
    return _envelope(comparisons), record, stitched_first


def _choose(preds: Sequence[np.ndarray], candidates: Sequence[Candidate], y: np.ndarray,
            groups: pd.DataFrame, rows: np.ndarray, *, constraint: str,
            preference: Preference, max_cost: float, min_support: int, min_count: int
            ) -> int:
    """The procedure's choice made on `rows` only, by the rules of the front (rejection,
    eligibility, preference; point figures): a candidate, or 0 (the unmitigated model)
    when none is eligible."""
    A = groups.iloc[rows].reset_index(drop=True)
    scored = [score_candidate(c.index, c.method, c.params, y[rows], p[rows], None, A,
                              min_support=min_support, min_count=min_count, n_bootstrap=0,
                              random_state=0)
              for c, p in zip(candidates, preds)]
    try:
        pick, _, eligible, _ = _prefer(scored, constraint, preference, max_cost)
    except DataError:  # every candidate degenerate on these rows
        return 0
    return int(pick) if eligible else 0


def _envelope(comparisons: Sequence[PairedComparison]) -> PairedComparison:
    """The repeats' comparisons combined: mean value, the envelope of their intervals."""
    def combine(es: list[Estimate]) -> Estimate:
        values = [e.value for e in es]
        if not all(math.isfinite(v) for v in values):
            return Estimate(float("nan"), float("nan"), float("nan"))
        return Estimate(float(np.mean(values)), float(min(e.ci_low for e in es)),
                        float(max(e.ci_high for e in es)))

    first = comparisons[0]
    return PairedComparison(
        n_rows=first.n_rows, gap=combine([c.gap for c in comparisons]),
        baseline_gap=combine([c.baseline_gap for c in comparisons]),
        difference=combine([c.difference for c in comparisons]),
        cost=combine([c.cost for c in comparisons]), by_grouping=first.by_grouping,
        unmeasurable=sorted({u for c in comparisons for u in c.unmeasurable}))


def _confirmation_split(test: np.ndarray, y: np.ndarray, A: pd.DataFrame, share: float,
                        random_state: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows to score and choose on, rows to confirm on): a split of `test` stratified by
    label and intersection (by label alone where an intersection is too rare to split)."""
    if share == 0:
        return test, np.empty(0, dtype=np.int64)
    from sklearn.model_selection import train_test_split

    label = pd.Series(y[test].astype(str))
    strata = label + "|" + A.iloc[test].astype(str).agg("|".join, axis=1).to_numpy()
    counts = strata.map(strata.value_counts())
    strata = strata.where(counts >= 4, label)
    if strata.value_counts().min() < 2:
        strata = None
    chosen_on, confirming = train_test_split(test, test_size=share, random_state=random_state,
                                             stratify=strata)
    return np.sort(chosen_on), np.sort(confirming)


def _attach(model: Any, base: Any) -> None:
    """A post-processor fitted on scores, made to read X through the fitted base model."""
    if base is not None:
        model._attach(base)


def _require_fairlearn(methods) -> None:
    """The reductions backend is optional: asking for it without fairlearn is an error
    before anything is trained, not a silently missing method."""
    try:
        import fairlearn.reductions  # noqa: F401
    except ImportError:
        raise InvalidParameterError(
            f"methods must not include 'reductions' unless fairlearn is installed (pip "
            f"install fairlearn). Got {tuple(methods)}.") from None


def _reductions(add, X, y, A, train, test, constraint, random_state, say) -> None:
    """fairlearn's ExponentiatedGradient (logistic regression); fairlearn is checked first."""
    from fairlearn.reductions import (
        DemographicParity,
        EqualizedOdds,
        ExponentiatedGradient,
        TruePositiveRateParity,
    )
    from sklearn.linear_model import LogisticRegression

    say("fairlearn reductions (exponentiated gradient)")
    moment = {"dp": DemographicParity, "eo": TruePositiveRateParity,
              "eodds": EqualizedOdds}[constraint]
    sensitive = A.astype(str).agg("|".join, axis=1)
    for eps in (0.01, 0.05):
        model = ExponentiatedGradient(LogisticRegression(max_iter=500), moment(),
                                      eps=eps)
        model.fit(X[train], y[train], sensitive_features=sensitive.iloc[train])
        pred = model.predict(X[test], random_state=random_state)
        add("reductions", {"constraint": constraint, "eps": eps}, model, pred, None)
