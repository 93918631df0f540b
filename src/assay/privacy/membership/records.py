"""The records a membership attack exposes most: each row's membership effect."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from assay._serial import NULL_NAN, Serial
from assay._validation import DataError, check_scalar
from assay.groups import (
    GroupIndex,
)
from assay.privacy.membership.estimates import (
    TargetCurves,
    check_group_index,
    membership_statistic,
)

__all__ = [
    "ExposedRecord",
    "membership_effect",
    "most_exposed_records",
]

# --------------------------------------------------------------------------- records


@dataclass
class ExposedRecord(Serial):
    """A row whose membership the attack reveals: flagged more often when it is a member.

    Attributes
    ----------
    row_id : str
    effect : float
        ``flagged_in - flagged_out``: 1 means every target flags it exactly when it
        trained on it; ~0 for a row flagged (or not) regardless of membership.
    flagged_in : float
        Share of the targets that trained on the row whose threshold at FPR α it meets.
    flagged_out : float
        The same share over the targets that did not train on it.
    n_in, n_out : int
        Targets that did / did not train on the row.
    statistic : float
        The row's membership statistic ``d`` (see `membership_statistic`); breaks ties.
    groups : dict of str to str
        The row's protected attributes (empty without groups).
    """

    row_id: str
    effect: float
    flagged_in: float
    flagged_out: float
    n_in: int
    n_out: int
    statistic: float = field(metadata=NULL_NAN)
    groups: dict[str, str] = field(default_factory=dict)


def membership_effect(scores: np.ndarray, member: np.ndarray, thresholds: np.ndarray):
    """Per-row membership effect of one attack at given per-target thresholds.

    Parameters
    ----------
    scores, member : ndarray of shape (n_targets, n_rows)
    thresholds : ndarray of shape (n_targets,)
        A row is flagged by target t when its score is at least ``thresholds[t]``.

    Returns
    -------
    effect, flagged_in, flagged_out : ndarray of shape (n_rows,)
        NaN where the row has no target on one side.
    n_in, n_out : ndarray of int, shape (n_rows,)
    """
    member = np.asarray(member, dtype=bool)
    flagged = np.asarray(scores) >= np.asarray(thresholds, dtype=float)[:, None]
    hit_in = np.einsum("tn,tn->n", flagged, member, dtype=np.int64)
    return _effect_from_hits(hit_in, flagged.sum(axis=0) - hit_in, member.sum(axis=0),
                             member.shape[0])


def _effect_from_hits(hit_in, hit_out, n_in, n_targets):
    n_out = n_targets - n_in
    with np.errstate(invalid="ignore", divide="ignore"):
        share_in = np.where(n_in > 0, hit_in / np.maximum(n_in, 1), np.nan)
        share_out = np.where(n_out > 0, hit_out / np.maximum(n_out, 1), np.nan)
    return share_in - share_out, share_in, share_out, n_in, n_out


def _row_ids(row_ids, n_rows: int) -> np.ndarray:
    ids = np.arange(n_rows).astype(str) if row_ids is None else np.asarray(row_ids).astype(str)
    if ids.shape != (n_rows,):
        raise DataError(f"row_ids must have one id per population row ({n_rows}). "
                        f"Got {ids.size}.")
    return ids


def _records(effect_parts, statistic: np.ndarray, ids: np.ndarray,
             index: GroupIndex | None, n_records: int) -> list[ExposedRecord]:
    """The rows with the largest positive effect (ties by the statistic)."""
    effect, share_in, share_out, n_in, n_out = effect_parts
    eligible = np.flatnonzero(np.isfinite(effect) & (effect > 0))
    stat = np.nan_to_num(statistic[eligible], nan=-np.inf)
    ranked = eligible[np.lexsort((-stat, -effect[eligible]))][:n_records]
    singles = [] if index is None else [g for g in index.groupings if len(g.attributes) == 1]
    return [ExposedRecord(row_id=str(ids[i]), effect=float(effect[i]),
                          flagged_in=float(share_in[i]), flagged_out=float(share_out[i]),
                          n_in=int(n_in[i]), n_out=int(n_out[i]),
                          statistic=float(statistic[i]),
                          groups={g.attributes[0]: g.values[g.codes[i]][0] for g in singles})
            for i in ranked]


def most_exposed_records(
    scores: np.ndarray,
    member: np.ndarray,
    row_ids=None,
    groups=None,
    n_records: int = 20,
    *,
    fpr: float = 0.1,
    curves: TargetCurves | None = None,
    statistic: np.ndarray | None = None,
) -> list[ExposedRecord]:
    """The ``n_records`` rows with the largest positive membership effect.

    Parameters
    ----------
    scores, member : ndarray of shape (n_targets, n_rows)
    row_ids : array-like of shape (n_rows,), optional
        Row identifiers (default: the row index).
    groups : DataFrame, Series or GroupIndex, optional
        Protected attributes, copied into each record.
    n_records : int, default=20
    fpr : float, default=0.1
        α of the per-target thresholds that flag a row.
    curves : TargetCurves, optional
        Precomputed sorted scores.
    statistic : ndarray of shape (n_rows,), optional
        Membership statistic ``d`` (ties of the effect are broken by it; computed when
        not given).

    Returns
    -------
    list of ExposedRecord
        Largest effect first; rows with effect ≤ 0 (or without targets on both sides)
        are not listed.
    """
    n_records = check_scalar(n_records, "n_records", kind=int, low=0)
    fpr = check_scalar(fpr, "fpr", low=0.0, high=1.0, low_open=True, high_open=True)
    scores = np.asarray(scores, dtype=float)
    member = np.asarray(member, dtype=bool)
    n_rows = scores.shape[1]
    ids = _row_ids(row_ids, n_rows)
    index = None if groups is None else check_group_index(groups, n_rows)
    if curves is None:
        curves = TargetCurves(scores, member)
    if statistic is None:
        statistic = membership_statistic(curves, member)
    effect = membership_effect(scores, member, curves.thresholds([fpr])[:, 0])
    return _records(effect, statistic, ids, index, n_records)

