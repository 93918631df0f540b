"""Membership inference against regression models: LOSS, LiRA and RMIA on residuals.

Every attack reads plain arrays, so any learner fits: the predictions of K reference
models on N rows ``preds[K, N]`` with their membership ``member[K, N]``, the target
model's predictions ``target_pred[N]`` and the true values ``y[N]``. Every score is
higher for rows more likely to be members of the target's training set.

* **LOSS** (Yeom et al. 2018): minus the squared (or absolute) error.
* **LiRA** (Carlini et al. 2022) on the residual ``r = pred - y``: per row, fits of the
  residuals of the references that trained on the row (IN) and of those that did not
  (OUT), each an atom at an exact fit plus a Gaussian (its variance per row, or one for
  all rows below 64 references). Online: the log-likelihood ratio of the target's
  residual. Offline: a one-sided test against OUT alone.
* **RMIA** (Zarifzadeh et al. 2024) with a Gaussian predictive likelihood
  ``Pr(y | f) = N(y; f(x), s_f^2)``, ``s_f`` the RMS of model f's training residuals.

`evaluate_scores` turns one target's scores into an AUC and a TPR at a low FPR with
the intervals of :mod:`~assay.privacy.membership.estimates`; `ridge_references` fits K ridge
references on a balanced plan in one program.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from assay._serial import Serial
from assay._stats import Estimate
from assay._validation import DataError, InvalidParameterError
from assay.privacy.membership.estimates import (
    TargetCurves,
    auc_estimate,
    fpr_band,
    not_estimable_reason,
    tpr_estimable,
    tpr_estimates,
)

__all__ = [
    "AttackFigures",
    "evaluate_scores",
    "lira_scores",
    "loss_scores",
    "residual_scales",
    "ridge_references",
    "rmia_scores",
]

#: Lowest variance of a Gaussian fit, relative to the variance of y: a side whose
#: references all predict a row alike (a fully grown tree on its own rows) would
#: otherwise give an infinite likelihood.
DEFAULT_VAR_FLOOR = 1e-6

# Offline LiRA: a p-value of 0 (residual exactly at its limit) scores as this one.
_LOG_TINY = float(np.log(np.finfo(np.float64).tiny))


def _vector(values, name: str, n: int | None = None) -> np.ndarray:
    out = np.asarray(values, dtype=np.float64)
    if out.ndim != 1 or (n is not None and out.shape[0] != n):
        raise DataError(f"{name} must be a 1-d array" + (f" of length {n}" if n else "")
                        + f". Got shape {out.shape}.")
    if not np.isfinite(out).all():
        raise DataError(f"{name} must be finite. Got {int((~np.isfinite(out)).sum())} "
                        "non-finite values.")
    return out


def _references(preds, member, n: int) -> tuple[np.ndarray, np.ndarray]:
    preds = np.asarray(preds, dtype=np.float64)
    member = np.asarray(member, dtype=bool)
    if preds.ndim != 2 or preds.shape != member.shape or preds.shape[1] != n:
        raise DataError(f"preds and member must both have shape (K, {n}). Got "
                        f"{preds.shape} and {member.shape}.")
    if not np.isfinite(preds).all():
        raise DataError("preds must be finite.")
    return preds, member


def loss_scores(pred, y, error: str = "squared") -> np.ndarray:
    """LOSS attack: minus every row's error (a low error suggests a member).

    Parameters
    ----------
    pred, y : array of shape (N,)
        The target model's predictions and the true values.
    error : {"squared", "absolute"}, default="squared"

    Returns
    -------
    ndarray of shape (N,)
    """
    y = _vector(y, "y")
    pred = _vector(pred, "pred", y.shape[0])
    if error == "squared":
        return -np.square(pred - y)
    if error == "absolute":
        return -np.abs(pred - y)
    raise InvalidParameterError(f"error must be 'squared' or 'absolute'. Got {error!r}.")


def _side_fit(resid: np.ndarray, side: np.ndarray, floor: float):
    """Per-row mean and variance of the residuals where `side` holds.

    A row with fewer than two such references takes the pooled within-row variance of
    all rows that have two or more (its single residual as mean; with none, the mean of
    all the side's residuals), since one value says nothing about the spread.
    """
    count = side.sum(axis=0)
    total = np.where(side, resid, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    squares = np.where(side, np.square(resid - np.where(count > 0, mean, 0.0)), 0.0).sum(0)
    enough = count >= 2
    dof = (count[enough] - 1).sum()
    if dof > 0:
        pooled = squares[enough].sum() / dof
    else:  # no row has two references: the spread of all the side's residuals
        pooled = float(np.var(resid[side])) if side.sum() > 1 else floor
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.where(enough, squares / np.maximum(count - 1, 1), pooled)
    overall = float(resid[side].mean()) if side.any() else 0.0
    mean = np.where(count > 0, mean, overall)
    return mean, np.maximum(var, floor), max(float(pooled), floor)


def _log_normal(x, mean, var):
    return -0.5 * (np.log(2 * np.pi * var) + np.square(x - mean) / var)


def _log_inside(r_abs, mean, sd):
    """log Pr(|Z| <= r_abs) for Z ~ N(mean, sd^2), accurate in both tails."""
    a = (-r_abs - mean) / sd
    b = (r_abs - mean) / sd
    # Difference of two CDFs taken on the side where both are small (no cancellation).
    upper = a > 0
    hi = np.where(upper, -a, b)
    lo = np.where(upper, -b, a)
    log_hi = special.log_ndtr(hi)
    log_lo = special.log_ndtr(lo)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = log_hi + np.log1p(-np.exp(log_lo - log_hi))
    return np.where(np.isnan(out) | (out < _LOG_TINY), _LOG_TINY, out)


#: From this many references on, LiRA fits a variance per row; below, one variance per
#: side over all rows (Carlini et al. 2022's fixed variance, which they recommend with
#: fewer than 64 shadow models: a per-example variance from a handful of values is
#: noise). Confirmed on the development tables of benchmarks/regression_mia.py (per row
#: wins at 64 references, fixed at 16).
PER_ROW_VARIANCE_FROM = 64

# An exact-fit share is kept below 1 so that a residual off the atom stays possible.
_MAX_ATOM = 1.0 - 1e-12


@dataclass(frozen=True)
class _ResidualModel:
    """One side's residual distribution at every row: an atom at an exact fit
    (``|R| <= e``) with probability `atom`, else ``N(mean, var)``."""

    atom: np.ndarray
    mean: np.ndarray
    var: np.ndarray

    def log_density(self, r):
        """Log-likelihood of a residual off the atom."""
        with np.errstate(divide="ignore"):
            return np.log1p(-self.atom) + _log_normal(r, self.mean, self.var)

    def log_within(self, r_abs):
        """log Pr(|R| <= r_abs) for ``r_abs >= e``: the atom and the Gaussian's mass."""
        with np.errstate(divide="ignore"):
            return np.logaddexp(np.log(self.atom), np.log1p(-self.atom)
                                + _log_inside(r_abs, self.mean, np.sqrt(self.var)))


def _residual_model(resid: np.ndarray, side: np.ndarray, exact: np.ndarray, floor: float,
                    per_row: bool) -> _ResidualModel:
    """Zero-inflated Gaussian of the residuals where `side` holds.

    A fully grown tree (any interpolating learner) predicts its own rows exactly, so a
    side's residuals are a point mass at 0 plus a spread: a Gaussian through both makes
    the variance of IN collapse to the floor and that of OUT meaningless. The atom's
    probability is the row's share of exact fits among the side's references, shrunk
    towards the side's share over all rows by one pseudo-reference (empirical Bayes: with
    8 references a row's own share moves in steps of 1/8); the Gaussian is fitted to the
    other residuals, its variance per row or one for all rows (`per_row`).
    """
    count = side.sum(axis=0)
    hits = (side & exact).sum(axis=0)
    overall = hits.sum() / max(int(count.sum()), 1)
    atom = np.minimum((hits + overall) / (count + 1.0), _MAX_ATOM)
    mean, var, pooled = _side_fit(resid, side & ~exact, floor)
    if not per_row:
        var = np.full_like(mean, pooled)
    return _ResidualModel(atom, mean, var)


def lira_scores(preds, member, target_pred, y, online: bool = True,
                var_floor: float = DEFAULT_VAR_FLOOR, variance: str = "auto",
                exact_fit_atom: bool = True) -> np.ndarray:
    """LiRA on the residual ``r = pred - y``, per-row fits of a zero-inflated Gaussian.

    Every side (IN: the references that trained on the row; OUT: the others) is modelled
    at every row as an atom at an exact fit, ``|r| <= e`` with ``e = sqrt(var_floor *
    var(y))``, of probability ``p`` (the row's share of exact fits, shrunk towards the
    side's overall share by one pseudo-reference), else ``N(mu, s^2)`` fitted to the
    other residuals. Where no reference fits a row exactly this is Carlini et al.'s
    Gaussian LiRA on the residual.

    Parameters
    ----------
    preds : array of shape (K, N)
        Predictions of the reference models.
    member : bool array of shape (K, N)
        Whether reference k trained on row i.
    target_pred, y : array of shape (N,)
    online : bool, default=True
        True: the log-likelihood ratio of IN vs OUT at the target's residual (the atoms'
        probabilities for an exact fit, ``log (1-p) N(r; mu, s^2)`` otherwise). False: a
        one-sided test against OUT alone, on the residual's magnitude (training pulls a
        member's residual towards zero): ``-log Pr_OUT(|R| <= max(|r|, e))``, minus the
        log of the p-value, which keeps ordering rows where a probability would
        saturate at 1.
    var_floor : float, default=1e-6
        Lowest variance of a fit, as a share of the variance of y.
    variance : {"auto", "per_row", "fixed"}, default="auto"
        The Gaussian's variance: per row, or one per side over all rows (Carlini et al.'s
        fixed variance). "auto": per row from `PER_ROW_VARIANCE_FROM` references on.
    exact_fit_atom : bool, default=True
        False: plain Gaussians through every residual, exact fits included (``p = 0``;
        with ``variance="per_row"``, assay's LiRA before the atom, kept for comparison).

    Returns
    -------
    ndarray of shape (N,)
    """
    y = _vector(y, "y")
    n = y.shape[0]
    target_pred = _vector(target_pred, "target_pred", n)
    preds, member = _references(preds, member, n)
    if not isinstance(online, bool):
        raise InvalidParameterError(f"online must be True or False. Got {online!r}.")
    if not (np.isfinite(var_floor) and var_floor > 0):
        raise InvalidParameterError(f"var_floor must be a float in (0, inf). Got {var_floor!r}.")
    if not isinstance(exact_fit_atom, bool):
        raise InvalidParameterError(f"exact_fit_atom must be True or False. Got "
                                    f"{exact_fit_atom!r}.")
    if variance not in ("auto", "per_row", "fixed"):
        raise InvalidParameterError("variance must be 'auto', 'per_row' or 'fixed'. "
                                    f"Got {variance!r}.")
    per_row = variance == "per_row" or (variance == "auto"
                                        and preds.shape[0] >= PER_ROW_VARIANCE_FROM)
    floor = var_floor * max(float(np.var(y)), np.finfo(float).tiny)
    tolerance = np.sqrt(floor)
    resid = preds - y
    exact = (np.abs(resid) <= tolerance) if exact_fit_atom else np.zeros(resid.shape, bool)
    r = target_pred - y
    out_side = _residual_model(resid, ~member, exact, floor, per_row)
    if not online:
        # Below the floor's resolution a residual counts as at it: exact fits (a
        # memorising model's members, and its non-members at a common value) then rank
        # by how unlikely an OUT residual that close to zero is.
        return -out_side.log_within(np.maximum(np.abs(r), tolerance))
    in_side = _residual_model(resid, member, exact, floor, per_row)
    with np.errstate(invalid="ignore"):
        off_atom = in_side.log_density(r) - out_side.log_density(r)
    if not exact_fit_atom:
        return off_atom
    # An exact fit is an event of positive probability on either side: its ratio is of
    # the two probabilities of |R| <= e, not of densities.
    at_atom = np.full_like(r, tolerance)
    on_atom = in_side.log_within(at_atom) - out_side.log_within(at_atom)
    return np.where(np.abs(r) <= tolerance, on_atom, off_atom)


def residual_scales(preds, member, y, floor: float = DEFAULT_VAR_FLOOR) -> np.ndarray:
    """RMS training residual of every model, ``s_f``: (K,).

    A model without training rows, or one that fits them exactly, gets
    ``sqrt(floor * var(y))`` so that its likelihood stays finite.
    """
    y = _vector(y, "y")
    preds = np.atleast_2d(np.asarray(preds, dtype=np.float64))
    member = np.atleast_2d(np.asarray(member, dtype=bool))
    if preds.shape != member.shape or preds.shape[1] != y.shape[0]:
        raise DataError(f"preds and member must both have shape (K, {y.shape[0]}). Got "
                        f"{preds.shape} and {member.shape}.")
    sq = np.where(member, np.square(preds - y), 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = sq / member.sum(axis=1)
    least = floor * max(float(np.var(y)), np.finfo(float).tiny)
    return np.sqrt(np.where(np.isfinite(var), np.maximum(var, least), least))


def rmia_scores(preds, member, target_pred, target_member, y,
                var_floor: float = DEFAULT_VAR_FLOOR) -> np.ndarray:
    """RMIA with a Gaussian predictive likelihood, gamma = 1.

    ``LR(x) = Pr(y_x | target) / Pr(x)`` with ``Pr(y | f) = N(y; f(x), s_f^2)`` and
    ``Pr(x)`` the mean of the references' likelihoods. A row's score is the share of
    population rows z, the target's non-members other than the row itself, with
    ``LR(x) >= LR(z)``. One sort of the population's ratios and a binary search per
    row, no N x N comparison.

    Parameters
    ----------
    preds : array of shape (K, N)
    member : bool array of shape (K, N)
        The references' training rows (for their ``s_f``).
    target_pred : array of shape (N,)
    target_member : bool array of shape (N,)
        The target's training rows: its ``s_f``, and its non-members are the population.
    y : array of shape (N,)
    var_floor : float, default=1e-6
        Lowest ``s_f^2``, as a share of the variance of y.

    Returns
    -------
    ndarray of shape (N,), in [0, 1]
    """
    y = _vector(y, "y")
    n = y.shape[0]
    target_pred = _vector(target_pred, "target_pred", n)
    preds, member = _references(preds, member, n)
    target_member = np.asarray(target_member, dtype=bool)
    if target_member.shape != (n,):
        raise DataError(f"target_member must have shape ({n},). Got {target_member.shape}.")
    population = ~target_member
    if population.sum() < 2:
        raise DataError("RMIA needs at least 2 non-members of the target as population. "
                        f"Got {int(population.sum())}.")
    s_ref = residual_scales(preds, member, y, var_floor)
    s_t = residual_scales(target_pred[None], target_member[None], y, var_floor)[0]
    log_ref = _log_normal(y, preds, np.square(s_ref)[:, None])
    log_px = special.logsumexp(log_ref, axis=0) - np.log(preds.shape[0])
    log_lr = _log_normal(y, target_pred, s_t ** 2) - log_px
    pop = np.sort(log_lr[population])
    dominated = np.searchsorted(pop, log_lr, side="right").astype(np.float64)
    # A population row dominates itself: leave it out of its own comparison.
    dominated -= population
    return dominated / (pop.size - population)


def _check_fpr(fpr: float) -> float:
    if not (isinstance(fpr, (int, float)) and 0 < fpr < 1):
        raise InvalidParameterError(f"fpr must be a float in (0, 1). Got {fpr!r}.")
    return float(fpr)


@dataclass(frozen=True)
class AttackFigures(Serial):
    """AUC and TPR at a low FPR of one attack against one target.

    Attributes
    ----------
    auc : Estimate
    fpr : float
        The FPR at which `tpr` is read.
    tpr : Estimate or None
        None where the non-members cannot resolve `fpr` (see `tpr_note`).
    tpr_note : str or None
        Why `tpr` is missing.
    n_members, n_nonmembers : int
    """

    auc: Estimate
    fpr: float
    tpr: Estimate | None
    tpr_note: str | None
    n_members: int
    n_nonmembers: int

    __json_plain__ = True


def evaluate_scores(scores, target_member, fpr: float = 0.01,
                    confidence: float = 0.95) -> AttackFigures:
    """AUC and TPR at `fpr` of one target's scores, with intervals.

    The TPR is the conservative one of `TargetCurves` (empirical FPR at most `fpr`),
    reported only where `tpr_estimable` allows it.

    Parameters
    ----------
    scores : array of shape (N,)
        Higher means "member"; no NaN.
    target_member : bool array of shape (N,)
    fpr : float, default=0.01
    confidence : float, default=0.95

    Returns
    -------
    AttackFigures
    """
    fpr = _check_fpr(fpr)
    curves = TargetCurves(np.asarray(scores, dtype=np.float64)[None],
                          np.asarray(target_member, dtype=bool)[None])
    n_pos, n_neg = int(curves.n_pos[0]), int(curves.n_neg[0])
    if n_pos == 0 or n_neg == 0:
        raise DataError(f"The target needs members and non-members. Got {n_pos} and {n_neg}.")
    auc = auc_estimate(curves.auc(), curves.n_pos, curves.n_neg, confidence)
    tpr: Estimate | None = None
    note: str | None = None
    if tpr_estimable(fpr, n_neg):
        low, high = fpr_band([fpr], n_neg, confidence)
        tp, _ = curves.counts_at([fpr])
        tp_low, _ = curves.counts_at(low)
        tp_high, _ = curves.counts_at(high)
        v, lo, hi, _, _ = tpr_estimates(tp, tp_low, tp_high, curves.n_pos, confidence)
        tpr = Estimate(float(v[0]), float(lo[0]), float(hi[0]))
    else:
        note = not_estimable_reason(n_neg)
    return AttackFigures(auc=auc, fpr=fpr, tpr=tpr, tpr_note=note, n_members=n_pos,
                         n_nonmembers=n_neg)


def ridge_references(X, y, n_models: int, alpha: float = 1.0,
                     random_state: int | np.random.Generator | None = None):
    """K ridge references on a balanced plan (every row in half of them), in one program.

    Returns
    -------
    preds : ndarray of shape (K, N)
    member : bool ndarray of shape (K, N)
    """
    from assay.engine import PopulationPlan
    from assay.learners.ridge import fit_ridge

    X = np.asarray(X, dtype=np.float64)
    plan = PopulationPlan.balanced(X.shape[0], n_models, random_state)
    fit = fit_ridge(X, y, plan.member, alpha)
    return fit.predict(X), plan.member
