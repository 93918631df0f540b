"""How one candidate is preferred: a stated `Preference` (constraints, then an objective),
the non-dominated front, and eligibility (a gap below the unmitigated model's at the
stated cost)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from assay._validation import DataError, InvalidParameterError, check_option
from assay.fairness.metrics import GAPS
from assay.fairness.verdict import points, worst_over_groupings

if TYPE_CHECKING:
    from assay.fairness.candidates import Candidate

__all__ = ["PREFERENCE_METRICS", "Preference", "References", "default_preference",
           "non_dominated", "parse_preference", "prefer_candidate", "select"]

#: Metrics a preference may name: higher is better for the first two, lower for gaps.
PREFERENCE_METRICS = ("accuracy", "balanced_accuracy", *GAPS)
_HIGHER = ("accuracy", "balanced_accuracy")

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
    constraints: list[tuple[str, str, float, str | None]] = []
    objective = "balanced_accuracy"
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
    for metric, *_rest in preference.constraints:
        if metric in GAPS:
            return metric
    return "eo"


def prefer_candidate(candidates: Sequence[Candidate], constraint: str, preference: Preference,
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


