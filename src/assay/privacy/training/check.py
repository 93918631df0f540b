"""The guarantee against the attack: does the empirical ROC stay under the f-DP curve?

Under an f-DP guarantee no membership test does better than TPR = 1 − f(FPR), for every
record; averaged over records and targets the bound still holds (1 − f is concave).
The attacks of `assay.privacy.membership.attacks` report the TPR at FPR ≤ α (threshold chosen per
target, never interpolated) with a 95 % interval. The check fails at an FPR where the
*lower* end of that interval is above the bound: the attack then does better than the
guarantee allows, beyond what chance explains, so the training run (or its accounting)
is broken. It is read at the audit's FPR levels and at every point of the ROC grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assay._serial import Serial
from assay._stats import Estimate

__all__ = ["GuaranteeCheck", "check_guarantee", "check_attacks", "epsilon_from_json"]

# Slack for float rounding between the curve and the rates.
_TOL = 1e-9


def epsilon_from_json(value: Any) -> float:
    """An ε read back: null (written for an infinite ε) is infinity."""
    return math.inf if value is None else float(value)


@dataclass
class GuaranteeCheck(Serial):
    """One attack's ROC against a guarantee's f-DP curve.

    Attributes
    ----------
    attack : str
    passed : bool
        No FPR level and no ROC point with the interval's lower end above the bound.
    fprs : list of float
    bound : list of float
        1 − f(α) at each FPR level.
    empirical : list of Estimate
        The attack's TPR at each FPR level (mean over targets, 95 % interval).
    violations : list of float
        FPR levels and ROC grid points where the attack beats the bound.
    margin : float
        Smallest (bound − lower end) over all points checked (negative: violated).
    """

    attack: str
    passed: bool
    fprs: list[float]
    bound: list[float]
    empirical: list[Estimate]
    violations: list[float] = field(default_factory=list)
    margin: float = 0.0

    __json_plain__ = True


def check_guarantee(attack, curve, fprs=None) -> GuaranteeCheck:
    """Check one `AttackResult` against a `TradeOff` curve (see the module notes).

    Parameters
    ----------
    attack : AttackResult
        From `assay.privacy.membership.mia.run_mia` on a population trained under the guarantee.
    curve : TradeOff
        The guarantee's f-DP curve (`assay.privacy.theory.accounting`).
    fprs : sequence of float, optional
        FPR levels to report (default: the attack's).
    """
    levels = sorted(attack.tpr_at_fpr) if fprs is None else sorted(float(f) for f in fprs)
    bound = [float(curve.tpr(f)) for f in levels]
    empirical = [attack.tpr_at_fpr[f] for f in levels]
    # A TPR the non-members cannot resolve has no interval: it neither passes nor fails.
    gaps = [(f, b - e.ci_low) for f, b, e in zip(levels, bound, empirical, strict=True)
            if e.ci_low is not None and np.isfinite(e.ci_low)]
    grid = np.asarray(attack.roc.fpr, dtype=float)
    grid_bound = np.asarray(curve.tpr(grid), dtype=float)
    low = np.nan_to_num(np.asarray(attack.roc.tpr_low, dtype=float), nan=0.0)
    gaps += list(zip(grid.tolist(), (grid_bound - low).tolist(), strict=True))
    violations = sorted({f for f, gap in gaps if gap < -_TOL})
    margin = float(min(gap for _, gap in gaps if np.isfinite(gap)))
    return GuaranteeCheck(attack=attack.name, passed=not violations, fprs=levels, bound=bound,
                          empirical=empirical, violations=violations, margin=margin)


def check_attacks(mia, curve, fprs=None) -> dict[str, GuaranteeCheck]:
    """`check_guarantee` for every attack of a `MIAResult`."""
    return {name: check_guarantee(a, curve, fprs) for name, a in mia.attacks.items()}
