"""The figures of a membership attack: ROC, AUC, TPR at low FPR, groups, records, risk.

Metrics (see :mod:`assay.privacy.membership.vulnerability` for the estimators and intervals): AUC,
TPR at FPR α with the threshold chosen so that the empirical FPR is ≤ α, an averaged ROC
curve on a log-spaced FPR grid with its interval band, per-group figures with the groups
flagged by the one `~assay.groups.FlagRule` (one permutation test for every attack and
grouping), and the records whose membership the attack reveals most.

Every result type (`RocCurve`, `AttackResult`, `MIAResult` and the group and record
types of :mod:`~assay.privacy.membership.vulnerability`) has ``to_dict()`` (JSON-clean, FPR keys
written with ``format(α, "g")``) and ``from_dict()``, which reads it back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assay._serial import NULL_NAN, Serial, meta
from assay._stats import Estimate
from assay._validation import InvalidParameterError, check_scalar
from assay.groups import FlagRule
from assay.privacy.membership.attacks import DEFAULT_FPRS
from assay.privacy.membership.estimates import (
    TargetCurves,
    auc_estimates,
    fpr_band,
    min_estimable_fpr,
    not_estimable_reason,
    tpr_estimable,
    tpr_estimates,
)
from assay.privacy.membership.records import ExposedRecord
from assay.privacy.membership.vulnerability import GroupFinding, GroupingVulnerability

# --------------------------------------------------------------------------- results


def _fpr_key(a: float) -> str:
    return format(float(a), "g")


def _json_float(value: float) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _estimate_dict(e: Estimate) -> dict[str, float | None]:
    return {k: _json_float(v) for k, v in e.to_dict().items()}


@dataclass
class RocCurve(Serial):
    """ROC averaged over targets on a log-spaced FPR grid (for a log-log plot).

    ``tpr`` is the mean over targets of the conservative TPR at FPR ≤ each grid value;
    ``tpr_low`` / ``tpr_high`` its pointwise interval.
    """

    fpr: np.ndarray
    tpr: np.ndarray
    tpr_low: np.ndarray
    tpr_high: np.ndarray


@dataclass
class AttackResult(Serial):
    """Figures of one attack over all its targets.

    Attributes
    ----------
    name : str
    auc : Estimate
        Mean AUC over targets with its interval.
    tpr_at_fpr : dict of float to Estimate
        Conservative TPR at FPR ≤ α (threshold per target), mean over targets.
    roc : RocCurve
    groups : dict of str to GroupingVulnerability
        Keyed by grouping ("sex", "sex & race"), inside by group label
        ("sex=Female & race=Black"); empty without groups.
    flagged_groups : list of GroupFinding
        Groups the flag rule holds for, over every grouping, largest AUC difference
        first; empty when none is.
    most_exposed_group : GroupFinding or None
        The supported group with the highest AUC (with whether it is flagged).
    records : list of ExposedRecord
        Rows with the largest membership effect.
    targets : ndarray of int
        Models that were attacked.
    per_target_auc : ndarray
    params : dict
        Attack settings actually used (e.g. LiRA's variance mode).
    n_nonmembers : int
        Fewest non-members of a target: a TPR at an FPR below
        ``min_estimable_fpr(n_nonmembers)`` is NaN ("not estimable"); 0: not recorded.
    n_members : float
        Mean training rows (members) of a target.
    statistic : ndarray of shape (n_rows,), optional
        Per-row membership statistic the group test used (not serialised).
    scores : ndarray of shape (n_targets, n_rows), optional
        Raw scores (not serialised).
    """

    name: str
    auc: Estimate = field(metadata=NULL_NAN)
    tpr_at_fpr: dict[float, Estimate]
    roc: RocCurve
    groups: dict[str, GroupingVulnerability] = field(default_factory=dict)
    flagged_groups: list[GroupFinding] = field(default_factory=list)
    most_exposed_group: GroupFinding | None = None
    records: list[ExposedRecord] = field(default_factory=list)
    targets: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64),
                                metadata=meta(dtype=np.int64))
    per_target_auc: np.ndarray = field(default_factory=lambda: np.zeros(0), metadata=NULL_NAN)
    params: dict[str, Any] = field(default_factory=dict)
    n_nonmembers: int = field(default=0, metadata=meta(schema={"minimum": 0}))
    n_members: float = 0.0
    statistic: np.ndarray | None = field(default=None, repr=False, metadata=meta(skip=True))
    scores: np.ndarray | None = field(default=None, repr=False, metadata=meta(skip=True))

    # FPR keys written with ``format(α, 'g')``, NaN as null; a TPR that is not estimable
    # is null with ``reason``, ``min_estimable_fpr`` and ``n_nonmembers``.
    __json_required__ = ("groups", "flagged_groups")
    __json_layout__ = (
        "name", "auc",
        ("tpr_at_fpr", lambda s: {_fpr_key(a): s._tpr_dict(a, e)
                                  for a, e in s.tpr_at_fpr.items()}),
        "n_nonmembers", "n_members", "min_estimable_fpr", "roc", "groups", "flagged_groups",
        "most_exposed_group", "records", "targets", "per_target_auc", "params")

    def estimable(self, fpr: float) -> bool:
        """Whether the TPR at ``fpr`` is a figure (its non-members resolve the FPR)."""
        return self.n_nonmembers <= 0 or tpr_estimable(fpr, self.n_nonmembers)

    @property
    def min_estimable_fpr(self) -> float | None:
        """Smallest FPR whose TPR is estimable (None: non-members not recorded)."""
        return min_estimable_fpr(self.n_nonmembers) if self.n_nonmembers > 0 else None

    def tpr_reason(self, fpr: float) -> str | None:
        """Why the TPR at ``fpr`` is not given ("not estimable with 500 non-members ...")."""
        return None if self.estimable(fpr) else not_estimable_reason(self.n_nonmembers)

    def _tpr_dict(self, fpr: float, e: Estimate) -> dict[str, Any]:
        out: dict[str, Any] = {**_estimate_dict(e), "estimable": self.estimable(fpr)}
        if not out["estimable"]:
            out.update(value=None, ci_low=None, ci_high=None, reason=self.tpr_reason(fpr),
                       min_estimable_fpr=self.min_estimable_fpr,
                       n_nonmembers=int(self.n_nonmembers))
        return out


@dataclass
class RiskStatement(Serial):
    """What the strongest attack means for the people in the training set.

    At FPR ``fpr`` and attacker prior ``prior`` (the share of the candidates who are
    members): ``identified`` = TPR × ``n_train`` people of the training set, and
    ``precision`` = prior·TPR / (prior·TPR + (1 − prior)·FPR), the share of the people
    the attacker calls members who are (at the stated FPR: the conservative threshold's
    FPR is at most that, so the true precision is at least this). Intervals follow the
    TPR's. ``attack`` is None, and the figures NaN, when no attack's TPR is estimable at
    ``fpr`` (``reason`` says why).
    """

    attack: str | None
    fpr: float
    prior: float
    prior_source: str
    n_train: float
    tpr: Estimate = field(metadata=NULL_NAN)
    identified: Estimate = field(metadata=NULL_NAN)
    precision: Estimate = field(metadata=NULL_NAN)
    auc: Estimate = field(metadata=NULL_NAN)
    reason: str | None = None

    def sentence(self) -> str:
        """The statement in words."""
        from assay.report.result import format_rate, format_value

        if self.attack is None:
            return (f"No membership attack's success at {format_rate(self.fpr)} FPR can be "
                    f"stated: {self.reason}.")
        i, p = self.identified, self.precision
        return (f"At {format_rate(self.fpr)} false positives and a prior of "
                f"{format_rate(self.prior)} members among the candidates ({self.prior_source}), "
                f"the strongest attack ({self.attack.upper()}, AUC "
                f"{format_value(self.auc.value)}) identifies about {i.value:,.0f} "
                f"[{i.ci_low:,.0f}, {i.ci_high:,.0f}] of the {self.n_train:,.0f} training "
                f"people, with precision {format_rate(p.value)} [{format_rate(p.ci_low)}, "
                f"{format_rate(p.ci_high)}].")


def precision_at(tpr, fpr: float, prior: float):
    """PPV of calling members at (FPR, TPR) when a share ``prior`` of candidates are."""
    tpr = np.asarray(tpr, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return prior * tpr / (prior * tpr + (1 - prior) * fpr)


def risk_statement(attacks: dict[str, AttackResult], fprs: Sequence[float], n_rows: int,
                   fpr: float | None = None, prior: float | None = None) -> RiskStatement:
    """The `RiskStatement` of the attack with the highest estimable TPR at ``fpr``.

    Parameters
    ----------
    attacks : dict of str to AttackResult
    fprs : sequence of float
        The FPRs measured; ``fpr`` must be one of them.
    n_rows : int
        Rows of the audit (the candidates).
    fpr : float, optional
        Default: the smallest of ``fprs`` that some attack's TPR is estimable at (the
        largest of ``fprs`` when none is).
    prior : float, optional
        Share of candidates who are members; default the audit's own membership ratio
        (mean training rows of a target / rows).
    """
    fprs = tuple(float(a) for a in fprs)
    if fpr is None:
        ok = [a for a in sorted(fprs) if any(r.estimable(a) for r in attacks.values())]
        fpr = ok[0] if ok else max(fprs)
    elif float(fpr) not in fprs:
        raise InvalidParameterError(f"risk_fpr must be one of the measured FPRs "
                                    f"({', '.join(f'{a:g}' for a in fprs)}). Got {fpr!r}.")
    fpr = float(fpr)
    first = next(iter(attacks.values()))
    n_train = float(first.n_members)
    if prior is None:
        prior, source = n_train / max(n_rows, 1), "the audit's own share of members"
    else:
        prior = check_scalar(prior, "prior", low=0.0, high=1.0, low_open=True, high_open=True)
        source = "as stated"
    ready = {k: r for k, r in attacks.items()
             if r.estimable(fpr) and np.isfinite(r.tpr_at_fpr[fpr].value)}
    nan = Estimate(np.nan, np.nan, np.nan)
    if not ready:
        return RiskStatement(None, fpr, float(prior), source, n_train, nan, nan, nan,
                             first.auc, reason=first.tpr_reason(fpr) or "no TPR measured")
    name = max(ready, key=lambda k: (ready[k].tpr_at_fpr[fpr].value, ready[k].auc.value))
    t = ready[name].tpr_at_fpr[fpr]
    values = np.array([t.value, t.ci_low, t.ci_high])
    ppv = precision_at(values, fpr, prior)
    return RiskStatement(name, fpr, float(prior), source, n_train, t,
                         Estimate(*(float(v) for v in values * n_train)),
                         Estimate(*(float(v) for v in ppv)), ready[name].auc)


@dataclass
class MIAResult(Serial):
    """Result of :func:`run_mia`: one :class:`AttackResult` per attack.

    Attributes
    ----------
    attacks : dict of str to AttackResult
    n_models, n_rows : int
    fprs : tuple of float
    confidence : float
    flag_rule : FlagRule
        The rule every group was flagged by.
    config : dict
        The settings of the run.
    risk : RiskStatement, optional
        The strongest attack's meaning for the training people (`risk_statement`).
    """

    attacks: dict[str, AttackResult] = field(metadata=meta(schema={"minProperties": 1}))
    n_models: int = field(metadata=meta(schema={"minimum": 1}))
    n_rows: int
    fprs: tuple[float, ...]
    confidence: float
    flag_rule: FlagRule = field(default_factory=FlagRule)
    config: dict[str, Any] = field(default_factory=dict)
    risk: RiskStatement | None = None

    # Configuration, the flag rule and every attack's figures.
    __json_layout__ = ("n_models", "n_rows", "fprs", "confidence", "flag_rule", "config",
                       "attacks", "risk")


def roc_grid(n_nonmembers: float, n_points: int = 50) -> np.ndarray:
    """Log-spaced FPR grid from 1/n_nonmembers (at least 1e-5) to 1."""
    low = max(1.0 / max(n_nonmembers, 1.0), 1e-5)
    return np.unique(np.r_[np.logspace(np.log10(low), 0.0, n_points), 1.0])


def summarise_scores(scores: np.ndarray, member: np.ndarray, fprs=DEFAULT_FPRS,
                     confidence: float = 0.95, curves: TargetCurves | None = None
                     ) -> tuple[Estimate, dict[float, Estimate], RocCurve, np.ndarray]:
    """AUC, TPR at FPR ≤ α and the averaged ROC of per-target scores.

    Parameters
    ----------
    scores : ndarray of shape (n_targets, n_rows)
    member : bool ndarray of shape (n_targets, n_rows)
    fprs : sequence of float
    confidence : float, default=0.95
    curves : TargetCurves, optional
        Precomputed sorted scores.

    Returns
    -------
    auc, tpr_at_fpr, roc, per_target_auc
    """
    if curves is None:
        curves = TargetCurves(scores, member)
    fprs = tuple(float(a) for a in fprs)
    grid = roc_grid(float(curves.n_neg.mean()))
    tp, _ = curves.counts_at(_levels(fprs, grid, curves.n_neg, confidence))
    return _summary(curves.auc(), curves.n_pos, curves.n_neg, tp, fprs, grid, confidence)


def _levels(fprs: tuple[float, ...], grid: np.ndarray, n_neg: np.ndarray,
            confidence: float) -> np.ndarray:
    """FPR levels whose TP `_summary` reads: the FPRs, both ends of every point's FPR
    band (`fpr_band`: the row level of its interval), then the grid."""
    levels = np.r_[fprs, grid]
    low, high = fpr_band(levels, float(np.min(n_neg)) if np.size(n_neg) else 0.0, confidence)
    return np.r_[levels, low, high]


def _summary(per_target: np.ndarray, n_pos: np.ndarray, n_neg: np.ndarray, tp: np.ndarray,
             fprs: tuple[float, ...], grid: np.ndarray, confidence: float):
    """`summarise_scores` from every target's AUC, counts and TP at `_levels`.

    A TPR whose FPR the fewest non-members of a target cannot resolve (`tpr_estimable`)
    is NaN, interval included; elsewhere its interval covers rows and reference draws
    (`tpr_estimates`).
    """
    value, low, high = auc_estimates(per_target, n_pos, n_neg, confidence)
    auc = Estimate(float(value[0]), float(low[0]), float(high[0]))
    m = len(fprs) + grid.size
    value, low, high, _, _ = tpr_estimates(tp[:, :m], tp[:, m:2 * m], tp[:, 2 * m:3 * m],
                                           n_pos, confidence)
    n_nonmembers = int(np.min(n_neg)) if np.size(n_neg) else 0
    tpr = {a: (Estimate(float(value[i]), float(low[i]), float(high[i]))
               if tpr_estimable(a, n_nonmembers) else Estimate(np.nan, np.nan, np.nan))
           for i, a in enumerate(fprs)}
    k = len(fprs)
    roc = RocCurve(fpr=grid, tpr=value[k:], tpr_low=low[k:], tpr_high=high[k:])
    return auc, tpr, roc, per_target


