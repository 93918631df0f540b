"""Sorted scores and the intervals of a membership attack's figures.

* **TPR at FPR α, conservatively.** For every target the threshold is the lowest score
  cut whose *empirical* FPR is at most α (a tie block is never split, no interpolation),
  so the TPR reported is one the attacker actually achieves at FPR ≤ α. With few
  non-members this is a low-side estimate; below `MIN_EXPECTED_FALSE_POSITIVES`
  expected false positives the TPR is not estimated at all.
* **Averaging over targets.** Each model of the population takes its turn as target; a
  figure is the mean over targets. Its interval adds, in quadrature, (i) a Student-t
  interval across targets (the spread due to training randomness and to which rows were
  members) and (ii) the exact interval one single target would get from its own counts
  (Clopper–Pearson for rates, Hanley–McNeil for AUC). Part (ii) keeps the interval honest
  when all targets agree (e.g. all zero at 0.1 % FPR) and reflects that the targets share
  one pool of rows, so averaging them cannot make that uncertainty vanish.

Every target's scores are sorted once (`TargetCurves`); the group figures of
:mod:`~assay.privacy.membership.vulnerability` read that order too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import special  # not scipy.stats: its import alone takes ~1 s

from assay._stats import Estimate, clopper_pearson
from assay._validation import DataError, InvalidParameterError
from assay.groups import (
    FlagRule,
    GroupIndex,
    as_group_index,
)

__all__ = [
    "MIN_EXPECTED_FALSE_POSITIVES",
    "auc_estimate",
    "auc_estimates",
    "check_flag_rule",
    "check_group_index",
    "fpr_band",
    "membership_statistic",
    "min_estimable_fpr",
    "not_estimable_reason",
    "rate_estimate",
    "rate_estimates",
    "TargetCurves",
    "tpr_estimable",
    "tpr_estimates",
]

# Comparisons of empirical FPR with α allow for the rounding of α·n.
_FPR_TOL = 1e-9


def _fpr_key(a: float) -> str:
    return format(float(a), "g")


def _float(value: Any) -> float:
    """JSON null (written for NaN) back to NaN."""
    return float("nan") if value is None else float(value)


def _json_float(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _estimate_dict(e: Estimate) -> dict[str, float | None]:
    return {k: _json_float(v) for k, v in e.to_dict().items()}


def _fpr_dict(values: Mapping[float, Any], convert) -> dict[str, Any]:
    return {_fpr_key(a): convert(v) for a, v in values.items()}


def _fpr_from(values: Mapping[str, Any], convert) -> dict[float, Any]:
    return {float(a): convert(v) for a, v in values.items()}



# --------------------------------------------------------------------------- sorted scores


class TargetCurves:
    """Every target's rows sorted by descending score, with tie blocks marked.

    Built once per attack and reused for the overall figures, every group figure, the
    per-row statistic and the records. Within a tie block rows come in no particular
    order: every figure treats a block as one.

    Parameters
    ----------
    scores : ndarray of shape (n_targets, n_rows)
        Attack scores (higher means "member"); no NaN.
    member : bool ndarray of shape (n_targets, n_rows)
        True membership of every row in every target's training set.

    Attributes
    ----------
    order : ndarray of int64, shape (n_targets, n_rows)
        Row at every sorted position.
    sorted_scores : ndarray of shape (n_targets, n_rows)
    member_sorted : bool ndarray of shape (n_targets, n_rows)
    block_start : ndarray of int32, shape (n_targets, n_rows)
        First sorted position of the tie block of every sorted position.
    tied : bool ndarray of shape (n_targets, n_rows)
        Whether the position's tie block holds more than one row.
    fp_cum : ndarray of int32, shape (n_targets, n_rows)
        Non-members at or above every sorted position.
    n_pos, n_neg : ndarray of int64, shape (n_targets,)
        Members and non-members of every target.
    """

    def __init__(self, scores, member) -> None:
        scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
        member = np.atleast_2d(np.asarray(member, dtype=bool))
        if scores.shape != member.shape or scores.ndim != 2:
            raise DataError(f"scores and member must have the same shape (n_targets, "
                            f"n_rows). Got {scores.shape} and {member.shape}.")
        if np.isnan(scores).any():
            raise DataError(f"scores must not be NaN. Got {int(np.isnan(scores).sum())} NaN "
                            "scores.")
        n_targets, n_rows = scores.shape
        # Unstable (SIMD) sort: 4-5x faster than a stable one, and order within a tie
        # block never matters below.
        self.order = np.argsort(-scores, axis=1)
        flat = self._flat()
        self.sorted_scores = np.take(scores.reshape(-1), flat)
        self.member_sorted = np.take(member.reshape(-1), flat)
        first = np.ones((n_targets, n_rows), dtype=bool)
        np.not_equal(self.sorted_scores[:, 1:], self.sorted_scores[:, :-1], out=first[:, 1:])
        last = np.ones_like(first)
        last[:, :-1] = first[:, 1:]
        position = np.arange(n_rows, dtype=np.int32)
        self.block_start = np.maximum.accumulate(np.where(first, position, 0), axis=1)
        self.tied = ~(first & last)
        self.fp_cum = np.cumsum(~self.member_sorted, axis=1, dtype=np.int32)
        self.n_neg = (self.fp_cum[:, -1].astype(np.int64) if n_rows
                      else np.zeros(n_targets, np.int64))
        self.n_pos = n_rows - self.n_neg
        self._share: np.ndarray | None = None

    @property
    def n_targets(self) -> int:
        return int(self.order.shape[0])

    @property
    def n_rows(self) -> int:
        return int(self.order.shape[1])

    def _flat(self) -> np.ndarray:
        """Flat index (target, row) of every sorted position."""
        return self.order + (np.arange(self.n_targets) * self.n_rows)[:, None]

    def cuts(self, fprs) -> np.ndarray:
        """Rows above every target's conservative cut at FPR ≤ α: (n_targets, n_fprs).

        The cut is the lowest one between tie blocks whose non-members above it are at
        most ``floor(α · n_neg)``.
        """
        fprs = np.atleast_1d(np.asarray(fprs, dtype=float))
        allowed = np.floor(fprs[None, :] * self.n_neg[:, None] + _FPR_TOL).astype(np.int64)
        out = np.empty(allowed.shape, dtype=np.int64)
        for t in range(self.n_targets):  # a binary search per target, not per row
            # First sorted position holding more non-members than allowed; the cut falls
            # at the start of its tie block.
            first_over = np.searchsorted(self.fp_cum[t], allowed[t], side="right")
            inside = first_over < self.n_rows
            out[t] = np.where(inside, self.block_start[t, np.minimum(first_over,
                                                                    self.n_rows - 1)],
                              self.n_rows)
        return out

    def counts_at(self, fprs) -> tuple[np.ndarray, np.ndarray]:
        """TP and FP above every target's conservative cut: two (n_targets, n_fprs) arrays."""
        cut = self.cuts(fprs)
        fp = np.where(cut > 0, np.take_along_axis(self.fp_cum, np.maximum(cut - 1, 0), axis=1),
                      0).astype(np.int64)
        return cut - fp, fp

    def thresholds(self, fprs) -> np.ndarray:
        """Score at or above which a row is called a member at FPR ≤ α (inf: none).

        Returns an (n_targets, n_fprs) array.
        """
        cut = self.cuts(fprs)
        score = np.take_along_axis(self.sorted_scores, np.maximum(cut - 1, 0), axis=1)
        return np.where(cut > 0, score, np.inf)

    def share_sorted(self) -> np.ndarray:
        """Share of the target's non-members scoring below each sorted position.

        Ties count one half (the mid-rank), so the mean over a target's non-members is
        exactly 1/2 and over its members its AUC. (n_targets, n_rows), cached; NaN for a
        target without non-members.
        """
        if self._share is not None:
            return self._share
        non = ~self.member_sorted
        with np.errstate(invalid="ignore", divide="ignore"):
            inverse = 1.0 / self.n_neg.astype(float)
        # An untied row: non-members below it, plus itself as one half if a non-member.
        share = (self.n_neg[:, None] - self.fp_cum + 0.5 * non) * inverse[:, None]
        tied = np.flatnonzero(self.tied)
        if tied.size:
            # A tied row: the non-members below its block plus half of those inside it.
            n = self.n_rows
            block = tied - tied % n + self.block_start.reshape(-1)[tied]  # flat block start
            new = np.ones(tied.size, dtype=bool)
            new[1:] = block[1:] != block[:-1]
            first = np.flatnonzero(new)
            end = tied[np.r_[first[1:], tied.size] - 1]  # flat block end, per block
            fp_cum = self.fp_cum.reshape(-1)
            through = fp_cum[end]
            before = fp_cum[block[first]] - non.reshape(-1)[block[first]]
            lengths = np.diff(np.r_[first, tied.size])
            value = (self.n_neg[tied[first] // n] - 0.5 * (through + before)) \
                * inverse[tied[first] // n]
            share.reshape(-1)[tied] = np.repeat(value, lengths)
        self._share = share
        return share

    def auc(self) -> np.ndarray:
        """Exact AUC of every target (Mann–Whitney, ties one half): (n_targets,)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            total = np.einsum("tn,tn->t", self.share_sorted(), self.member_sorted)
            return np.where((self.n_pos > 0) & (self.n_neg > 0), total / self.n_pos, np.nan)

    def mid_rank_share(self) -> np.ndarray:
        """`share_sorted` in the original row order: (n_targets, n_rows)."""
        out = np.empty((self.n_targets, self.n_rows))
        out.reshape(-1)[self._flat().reshape(-1)] = self.share_sorted().reshape(-1)
        return out


# --------------------------------------------------------------------------- intervals


def _t_intervals(values: np.ndarray, confidence: float):
    """Column-wise Student-t intervals of the finite entries of (n_targets, m) values.

    The same figures as `assay._stats.t_interval`, for many columns at once: returns
    mean, low, high, and the count of finite values (all (m,)); fewer than two values
    give the point itself, none gives NaN.
    """
    ok = np.isfinite(values)
    n = ok.sum(axis=0)
    x = np.where(ok, values, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = x.sum(axis=0) / n
        ss = np.where(ok, (values - mean) ** 2, 0.0).sum(axis=0)
        sd = np.sqrt(ss / (n - 1))
        half = special.stdtrit(np.maximum(n - 1, 1), 0.5 + confidence / 2) * sd / np.sqrt(n)
    half = np.where(n >= 2, half, 0.0)
    return mean, mean - half, mean + half, n


def _hanley_mcneil(auc: np.ndarray, n_pos: np.ndarray, n_neg: np.ndarray, confidence: float):
    """`assay._stats.hanley_mcneil_interval` for arrays."""
    z = special.ndtri(0.5 + confidence / 2)
    ok = (n_pos > 0) & (n_neg > 0) & np.isfinite(auc)
    a = np.where(ok, auc, 0.5)
    p, q = np.where(ok, n_pos, 1.0), np.where(ok, n_neg, 1.0)
    q1 = a / (2 - a)
    q2 = 2 * a**2 / (1 + a)
    var = a * (1 - a) + (p - 1) * (q1 - a**2) + (q - 1) * (q2 - a**2)
    se = np.sqrt(np.maximum(var, 0.0) / (p * q))
    # The SE vanishes at AUC 0 or 1; keep at least the resolution of the counts.
    se = np.maximum(se, 1.0 / (2.0 * np.minimum(p, q)))
    return (np.where(ok, np.maximum(a - z * se, 0.0), 0.0),
            np.where(ok, np.minimum(a + z * se, 1.0), 1.0))


def rate_estimates(k, n, confidence: float = 0.95):
    """Column-wise :func:`rate_estimate`: ``value, ci_low, ci_high`` arrays of shape (m,).

    Parameters
    ----------
    k, n : ndarray of shape (n_targets, m)
        Successes and trials of every target (targets with ``n == 0`` are skipped).
    """
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    if k.ndim == 1:
        k, n = k[:, None], n[:, None]
    ok = n > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(ok, k / np.where(ok, n, 1.0), np.nan)
        count = ok.sum(axis=0)
        mean_k = np.where(ok, k, 0.0).sum(axis=0) / count
        mean_n = np.where(ok, n, 0.0).sum(axis=0) / count
    value, t_low, t_high, _ = _t_intervals(rate, confidence)
    none = count == 0
    cp_low, cp_high = clopper_pearson(np.where(none, 0.0, mean_k), np.where(none, 0.0, mean_n),
                                       confidence)
    low = np.maximum(0.0, np.minimum(t_low, cp_low))
    high = np.minimum(1.0, np.maximum(t_high, cp_high))
    return (np.where(none, np.nan, value), np.where(none, 0.0, low),
            np.where(none, 1.0, high))


#: A TPR at FPR α is reported only where the non-members allow at least this many false
#: positives (α · n_nonmembers ≥ 10). The threshold is then set by the 11th-highest
#: non-member score or a lower one, so the FPR it achieves is known to about ±1/√10 ≈ 30 %
#: (Poisson); with fewer, it rests on a handful of extreme non-members (on none below
#: 1/n) and the TPR swings between draws of reference models (0.00 to 0.50 at 0.1 % FPR
#: with 500 non-members of German credit).
MIN_EXPECTED_FALSE_POSITIVES = 10


def min_estimable_fpr(n_nonmembers: float) -> float:
    """Smallest FPR whose TPR the non-members can resolve (1 when there are none)."""
    n = float(n_nonmembers)
    return 1.0 if n <= 0 else min(1.0, MIN_EXPECTED_FALSE_POSITIVES / n)


def tpr_estimable(fpr: float, n_nonmembers: float) -> bool:
    """Whether ``fpr · n_nonmembers`` reaches ``MIN_EXPECTED_FALSE_POSITIVES``."""
    return float(fpr) * float(n_nonmembers) >= MIN_EXPECTED_FALSE_POSITIVES - _FPR_TOL


def not_estimable_reason(n_nonmembers: int) -> str:
    """The words a figure is replaced by where its FPR cannot be resolved."""
    return (f"not estimable with {int(n_nonmembers):,} non-members (needs FPR ≥ "
            f"{min_estimable_fpr(n_nonmembers):.3g}: at least {MIN_EXPECTED_FALSE_POSITIVES} "
            f"expected false positives)")


def fpr_band(fprs, n_nonmembers: float, confidence: float = 0.95):
    """FPRs a threshold set at each α may truly have: α ∓ z·√(α(1−α)/n), within [0, 1].

    The row level of `tpr_estimates`: the TPR read at these FPRs brackets the TPR of a
    threshold whose non-members are themselves a sample.
    """
    a = np.atleast_1d(np.asarray(fprs, dtype=float))
    z = special.ndtri(0.5 + confidence / 2)
    half = z * np.sqrt(a * (1 - a) / max(float(n_nonmembers), 1.0))
    return np.clip(a - half, 0.0, 1.0), np.clip(a + half, 0.0, 1.0)


def tpr_estimates(tp, tp_low, tp_high, n_pos, confidence: float = 0.95):
    """Mean TPR over targets with an interval for rows *and* reference draws.

    Two levels, combined conservatively (half-widths added in quadrature):

    * rows: Clopper–Pearson on the mean target's members, widened (in quadrature) by
      how far the TPR moves across the FPR the threshold may truly have (`fpr_band`);
    * models and reference draws: the Student-t interval of the mean across targets
      (each target is its own draw of model, split and leave-one-out references).

    The row level is shared by every target (one pool of rows), so it does not shrink
    with more targets: it is added to the spread across targets, not hulled with it
    (the hull, the earlier interval, is the narrower of the two).

    Parameters
    ----------
    tp, tp_low, tp_high : ndarray of shape (n_targets, m)
        True positives at α, at the band's low and its high FPR.
    n_pos : ndarray of shape (n_targets,)
        Members of every target (targets without members are skipped).

    Returns
    -------
    value, ci_low, ci_high, row_low, row_high : ndarray of shape (m,)
        The row-only interval comes last (for comparison).
    """
    tp, tp_low, tp_high = (np.asarray(v, dtype=float) for v in (tp, tp_low, tp_high))
    n = np.asarray(n_pos, dtype=float)[:, None]
    ok = np.broadcast_to(n > 0, tp.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(ok, tp / np.where(ok, n, 1.0), np.nan)
        count = ok.sum(axis=0)
        mean_n = np.where(ok, n, 0.0).sum(axis=0) / count
        mean_lo = np.where(ok, tp_low, 0.0).sum(axis=0) / count
        mean_hi = np.where(ok, tp_high, 0.0).sum(axis=0) / count
    value, t_low, _, _ = _t_intervals(rate, confidence)
    none = count == 0
    mean_n = np.where(none, 0.0, mean_n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_tp = np.where(none, 0.0, value * mean_n)
        # The threshold's FPR band moves the TPR by half its spread each way (the
        # slope of the ROC times the FPR's own sampling error, Hsieh & Turnbull 1996).
        band = np.where(none, 0.0, (mean_hi - mean_lo) / (2 * np.where(none, 1.0, mean_n)))
    cp_low, cp_high = clopper_pearson(mean_tp, mean_n, confidence)
    row_low = value - np.hypot(np.maximum(value - cp_low, 0.0), band)
    row_high = value + np.hypot(np.maximum(cp_high - value, 0.0), band)
    between = value - t_low
    low = value - np.hypot(value - row_low, between)
    high = value + np.hypot(row_high - value, between)
    nan = np.full(value.shape, np.nan)
    return (np.where(none, nan, value), np.where(none, 0.0, np.maximum(low, 0.0)),
            np.where(none, 1.0, np.minimum(high, 1.0)), np.where(none, 0.0, row_low),
            np.where(none, 1.0, row_high))


def auc_estimates(auc, n_pos, n_neg, confidence: float = 0.95):
    """Column-wise :func:`auc_estimate`: ``value, ci_low, ci_high`` arrays of shape (m,)."""
    auc = np.asarray(auc, dtype=float)
    n_pos = np.asarray(n_pos, dtype=float)
    n_neg = np.asarray(n_neg, dtype=float)
    if auc.ndim == 1:
        auc, n_pos, n_neg = auc[:, None], n_pos[:, None], n_neg[:, None]
    ok = np.isfinite(auc)
    value, t_low, t_high, count = _t_intervals(auc, confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_pos = np.where(ok, n_pos, 0.0).sum(axis=0) / count
        mean_neg = np.where(ok, n_neg, 0.0).sum(axis=0) / count
    none = count == 0
    hm_low, hm_high = _hanley_mcneil(value, np.where(none, 0.0, mean_pos),
                                     np.where(none, 0.0, mean_neg), confidence)
    low = np.maximum(0.0, np.minimum(t_low, hm_low))
    high = np.minimum(1.0, np.maximum(t_high, hm_high))
    return (np.where(none, np.nan, value), np.where(none, 0.0, low),
            np.where(none, 1.0, high))


def rate_estimate(k, n, confidence: float = 0.95) -> Estimate:
    """Mean over targets of k/n with its interval (t across targets ∪ one target's CP).

    Parameters
    ----------
    k, n : ndarray of shape (n_targets,)
        Successes and trials of every target (targets with ``n == 0`` are skipped).
    """
    v, lo, hi = rate_estimates(np.asarray(k, float)[:, None], np.asarray(n, float)[:, None],
                               confidence)
    return Estimate(float(v[0]), float(lo[0]), float(hi[0]))


def auc_estimate(auc, n_pos, n_neg, confidence: float = 0.95) -> Estimate:
    """Mean AUC over targets with its interval (t across targets ∪ Hanley–McNeil)."""
    v, lo, hi = auc_estimates(np.asarray(auc, float)[:, None], np.asarray(n_pos, float)[:, None],
                              np.asarray(n_neg, float)[:, None], confidence)
    return Estimate(float(v[0]), float(lo[0]), float(hi[0]))


# --------------------------------------------------------------------------- per row


class _StatisticSums:
    """Running sums of `membership_statistic` over blocks of targets."""

    def __init__(self, n_rows: int) -> None:
        self.sum_in = np.zeros(n_rows)
        self.sum_all = np.zeros(n_rows)
        self.n_in = np.zeros(n_rows, dtype=np.int64)
        self.n_targets = 0

    def add(self, curves: TargetCurves, member: np.ndarray) -> None:
        share = curves.mid_rank_share()
        valid = curves.n_neg > 0  # a target without non-members says nothing
        if not valid.all():
            share, member = share[valid], member[valid]
        self.n_in += member.sum(axis=0)
        self.n_targets += member.shape[0]
        self.sum_in += np.einsum("tn,tn->n", share, member)
        self.sum_all += share.sum(axis=0)

    def statistic(self) -> np.ndarray:
        n_in, sum_in = self.n_in, self.sum_in
        n_out = self.n_targets - n_in
        sum_out = self.sum_all - sum_in
        with np.errstate(invalid="ignore", divide="ignore"):
            fill_in = sum_in.sum() / n_in.sum()
            fill_out = sum_out.sum() / n_out.sum()
            mean_in = np.where(n_in > 0, sum_in / np.maximum(n_in, 1), fill_in)
            mean_out = np.where(n_out > 0, sum_out / np.maximum(n_out, 1), fill_out)
        return mean_in - mean_out


def membership_statistic(curves: TargetCurves, member: np.ndarray) -> np.ndarray:
    """Per-row membership statistic ``d`` of one attack: (n_rows,).

    ``d_i`` = mean of ``u_ti`` over the targets that trained on row i minus its mean over
    the targets that did not, ``u_ti`` being the share of target t's non-members that
    score below row i (ties one half; `TargetCurves.mid_rank_share`). A row without
    targets on one side (e.g. a single target) takes that side's mean over all
    (target, row) pairs, so ``d`` stays centred; NaN only without any target.
    """
    sums = _StatisticSums(curves.n_rows)
    sums.add(curves, np.asarray(member, dtype=bool))
    return sums.statistic()


# --------------------------------------------------------------------------- checks


def check_flag_rule(flag_rule: FlagRule | None) -> FlagRule:
    """The rule groups are flagged by (the default `FlagRule` when None)."""
    rule = FlagRule() if flag_rule is None else flag_rule
    if not isinstance(rule, FlagRule):
        raise InvalidParameterError(f"flag_rule must be an assay.groups.FlagRule. "
                                    f"Got {type(rule).__name__}.")
    return rule


def check_group_index(groups, n_rows: int, max_intersection: int | None = None) -> GroupIndex:
    """`groups` (DataFrame, Series or GroupIndex) as a GroupIndex of ``n_rows`` rows."""
    index = as_group_index(groups, max_intersection)
    if index.n_rows != n_rows:
        raise DataError(f"groups must have one row per population row ({n_rows}). "
                        f"Got {index.n_rows} rows.")
    return index
