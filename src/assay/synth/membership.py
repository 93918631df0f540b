"""Membership inference on a synthetic release, and distance to closest record beside it.

The attack is DOMIAS's (van Breugel et al. 2023, "Membership Inference Attacks against
Synthetic Data through Overfitting Detection"): a person is scored by how much denser the
synthetic table is around their record than the population is, ``p_synth(x) / p_ref(x)``,
with the population's density fitted on HOLDOUT. A generator that memorises its training
rows puts excess density exactly on them.

Densities are k-nearest-neighbour estimates on the mixed-type distance of
`assay.synth.encoding`: ``p(x) ∝ k / (n r_k(x)^d)`` with ``r_k`` the distance to the k-th
neighbour, so the log ratio is ``d (log r_k^ref(x) - log r_k^synth(x))`` plus a constant.
The score averages that over k = 1..K (``d`` is common to every row and dropped): k = 1
sees exact copies, larger k smooths. Distances get a floor of ``EPS`` (a hundredth of a
numeric column's range) so a copy scores high but finite. The holdout rows are scored
against the holdout reference leaving themselves out, so a non-member's own record does
not inflate its reference density.

Distance to closest record (DCR) is reported beside the attack, labelled for what it is:
a similarity statistic, not a privacy guarantee (Yao et al. 2025, "The DCR Delusion":
tables that pass DCR checks can fail membership inference).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from assay._serial import Serial
from assay._stats import Estimate
from assay.groups import group_label
from assay.synth.encoding import Tables, nearest
from assay.synth.roc import auc_estimate, tpr_figures
from assay.synth.shadow import ShadowFigures

__all__ = ["DCR_NOTE", "DcrFigures", "GroupAuc", "MembershipFigures", "density_ratio_scores",
           "membership_attack", "tpr_figures"]

EPS = 0.01
DCR_NOTE = ("distance to closest record is a similarity statistic, not a privacy guarantee: "
            "a release can pass it and still fail membership inference")


@dataclass
class DcrFigures(Serial):
    """Distance to closest synthetic record of the training and the holdout rows."""

    median_real: float
    median_holdout: float
    exact_real: float
    exact_holdout: float
    note: str = DCR_NOTE

    __json_required__ = ("note",)


@dataclass
class GroupAuc(Serial):
    """Attack AUC among one protected group's members and non-members (None: too few)."""

    label: str
    n_members: int
    n_nonmembers: int
    auc: Estimate | None = None
    flagged: bool = False

    __json_required__ = ("auc", "flagged")


@dataclass
class MembershipFigures(Serial):
    """The density-ratio attack's AUC and TPR at low FPR, with DCR beside them.

    ``tpr_at_fpr`` maps each FPR to its estimate, or None where the non-members cannot
    resolve it (fewer than ``MIN_EXPECTED_FALSE_POSITIVES`` expected false positives);
    ``tpr_reason`` says why.
    """

    auc: Estimate
    tpr_at_fpr: dict[float, Estimate | None]
    tpr_reason: dict[float, str]
    n_members: int
    n_nonmembers: int
    k: int
    dcr: DcrFigures
    attack: str = "density ratio (DOMIAS-style, kNN densities; reference fitted on holdout)"
    groups: list[GroupAuc] = field(default_factory=list)
    # The shadow-generator attack's figures when the generator is known, else None.
    shadow: ShadowFigures | None = None

    __json_layout__ = ("attack", "auc", "tpr_at_fpr", "tpr_reason", "n_members",
                       "n_nonmembers", "k", "dcr", "groups", "shadow")
    __json_required__ = ("attack", "groups")


def density_ratio_scores(tables: Tables, k: int = 5, members: np.ndarray | None = None,
                         nonmembers: np.ndarray | None = None
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Scores of the real (members) and holdout (non-members) rows, and their DCRs.

    Parameters
    ----------
    tables : Tables
    k : int, default=5
    members, nonmembers : ndarray of int, optional
        The real and holdout rows scored (default: all). The densities always use every
        synthetic and every holdout row.

    Returns
    -------
    members, nonmembers : ndarray
        Log density ratios (higher: more likely a member).
    dcr_real, dcr_holdout : ndarray
        Distance of each row to its closest synthetic row.
    """
    synth, real, hold = (tables.features(t) for t in ("synth", "real", "holdout"))
    dims = tables.numeric_dims()
    k_syn = min(k, synth.shape[0])
    k_ref = min(k, hold.shape[0] - 1)
    if k_ref < 1:
        raise ValueError("the holdout table needs at least 2 rows for a reference density")
    kk = min(k_syn, k_ref)
    members = np.arange(real.shape[0]) if members is None else np.asarray(members)
    nonmembers = np.arange(hold.shape[0]) if nonmembers is None else np.asarray(nonmembers)
    real, queries = real[members], hold[nonmembers]
    d_syn_real, _ = nearest(synth, real, kk, numeric_dims=dims)
    d_syn_hold, _ = nearest(synth, queries, kk, numeric_dims=dims)
    d_ref_real, _ = nearest(hold, real, kk, numeric_dims=dims)
    d_ref_hold, _ = nearest(hold, queries, kk, own=nonmembers, numeric_dims=dims)

    def score(d_ref, d_syn):
        return (np.log(d_ref + EPS) - np.log(d_syn + EPS)).mean(axis=1)

    return (score(d_ref_real, d_syn_real), score(d_ref_hold, d_syn_hold),
            d_syn_real[:, 0], d_syn_hold[:, 0])


def membership_attack(tables: Tables, *, k: int = 5, fprs=(0.1, 0.01, 0.001),
                      groups: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
                      min_support: int = 30, min_gap: float = 0.05,
                      confidence: float = 0.95, max_targets: int | None = 10_000,
                      random_state: int | None = 0) -> MembershipFigures:
    """Run the density-ratio attack: AUC, TPR at each FPR, per group, with DCR beside.

    Parameters
    ----------
    tables : Tables
    k : int, default=5
        Largest neighbour rank of the kNN densities.
    fprs : sequence of float
        FPRs at which the TPR is read (not estimable where ``fpr · n_nonmembers`` < 10).
    groups : mapping, optional
        Protected attribute → (labels of the real rows, labels of the holdout rows).
    min_support : int, default=30
        Members and non-members a group needs for an AUC.
    min_gap : float, default=0.05
        A group is flagged when its AUC's lower bound exceeds the overall AUC by this much.
    confidence : float
    max_targets : int or None, default=10_000
        Members and non-members scored at most (a random sample of each beyond it: every
        score costs a search over the synthetic and holdout tables); None: all.
    random_state : int or None
        Seed of that sample.
    """
    rng = np.random.default_rng(random_state)
    picks = []
    for table in ("real", "holdout"):
        n = tables.values[table].shape[0]
        picks.append(np.arange(n) if max_targets is None or n <= max_targets
                     else np.sort(rng.choice(n, size=max_targets, replace=False)))
    pos, neg, dcr_r, dcr_h = density_ratio_scores(tables, k, *picks)
    tpr, reasons = tpr_figures(pos, neg, fprs, confidence)
    overall = auc_estimate(pos, neg, confidence)
    by_group = []
    for attribute, (real_labels, hold_labels) in (groups or {}).items():
        real_labels = np.asarray(real_labels, dtype=object)[picks[0]]
        hold_labels = np.asarray(hold_labels, dtype=object)[picks[1]]
        for value in sorted(set(real_labels) | set(hold_labels), key=str):
            m, h = real_labels == value, hold_labels == value
            g = GroupAuc(group_label((attribute,), (str(value),)), int(m.sum()), int(h.sum()))
            if min(g.n_members, g.n_nonmembers) >= min_support:
                g.auc = auc_estimate(pos[m], neg[h], confidence)
                g.flagged = bool(g.auc.ci_low - overall.value >= min_gap)
            by_group.append(g)
    dcr = DcrFigures(median_real=float(np.median(dcr_r)), median_holdout=float(np.median(dcr_h)),
                     exact_real=float(np.mean(dcr_r == 0)),
                     exact_holdout=float(np.mean(dcr_h == 0)))
    return MembershipFigures(auc=overall, tpr_at_fpr=tpr, tpr_reason=reasons,
                             n_members=int(pos.size), n_nonmembers=int(neg.size), k=int(k),
                             dcr=dcr, groups=by_group)

