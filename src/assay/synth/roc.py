"""Members' scores against non-members': the AUC and the TPR at low FPR, with intervals.

Shared by the two membership attacks on a synthetic release, the density-ratio one
(`assay.synth.membership`) and the shadow-generator one (`assay.synth.shadow`).
"""

from __future__ import annotations

import numpy as np

from assay._stats import Estimate, hanley_mcneil_interval
from assay.privacy.membership.estimates import (
    fpr_band,
    not_estimable_reason,
    tpr_estimable,
    tpr_estimates,
)

__all__ = ["auc", "auc_estimate", "tpr_figures"]


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Probability a member outscores a non-member (ties count one half)."""
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    scores = np.concatenate([pos, neg])
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(scores.size)
    sorted_scores = scores[order]
    # Average ranks over ties.
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[:pos.size].sum() - pos.size * (pos.size + 1) / 2) / (pos.size * neg.size))


def auc_estimate(pos: np.ndarray, neg: np.ndarray, confidence: float) -> Estimate:
    value = auc(pos, neg)
    low, high = hanley_mcneil_interval(value, pos.size, neg.size, confidence)
    return Estimate(value, low, high)


def _tpr_at(pos: np.ndarray, neg: np.ndarray, fprs: np.ndarray) -> np.ndarray:
    """Members above the threshold that lets through at most ``fpr`` of the non-members."""
    neg_sorted = np.sort(neg)[::-1]
    out = np.zeros(len(fprs))
    for i, a in enumerate(fprs):
        allowed = int(np.floor(a * neg.size + 1e-9))
        # Threshold strictly above the (allowed+1)-th highest non-member score.
        thr = neg_sorted[allowed] if allowed < neg.size else -np.inf
        out[i] = np.sum(pos > thr)
    return out


def tpr_figures(pos: np.ndarray, neg: np.ndarray, fprs, confidence: float = 0.95
                ) -> tuple[dict[float, Estimate | None], dict[float, str]]:
    """TPR of members' scores at each FPR of the non-members', None where not estimable.

    Returns
    -------
    tpr : dict of float to Estimate or None
        None where ``fpr · n_nonmembers`` is too small to resolve.
    reasons : dict of float to str
        Why, for each FPR left out.
    """
    fprs = np.asarray(sorted(set(float(a) for a in fprs), reverse=True))
    tpr: dict[float, Estimate | None] = {}
    reasons: dict[float, str] = {}
    lo_fpr, hi_fpr = fpr_band(fprs, neg.size, confidence)
    tp = _tpr_at(pos, neg, fprs)
    tp_lo = _tpr_at(pos, neg, lo_fpr)
    tp_hi = _tpr_at(pos, neg, hi_fpr)
    v, lo, hi, _, _ = tpr_estimates(tp[None, :], tp_lo[None, :], tp_hi[None, :],
                                    np.array([pos.size]), confidence)
    for i, a in enumerate(fprs):
        if tpr_estimable(a, neg.size):
            tpr[float(a)] = Estimate(float(v[i]), float(lo[i]), float(hi[i]))
        else:
            tpr[float(a)] = None
            reasons[float(a)] = not_estimable_reason(neg.size)
    return tpr, reasons
