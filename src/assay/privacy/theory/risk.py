"""Operational privacy risks read off an f-DP trade-off curve.

Each function takes a :class:`~assay.privacy.theory.accounting.TradeOff` and returns an
upper bound on what any attacker can achieve against one person in the data:

* ``advantage`` — TPR − FPR of the best membership test (total variation), δ(0).
* ``tpr_at_fpr`` — best TPR at a given FPR, 1 − f(α).
* ``bayes_risk`` — smallest error of a Bayes-optimal membership guess under a prior.
* ``epsilon_at_delta`` — the (ε, δ) reading of the curve.
* ``reidentification_risk``, ``attribute_inference_risk``, ``reconstruction_risk`` —
  the unified bound (Kulynych et al., arXiv 2507.06969): an attack whose success
  without the output (its baseline) is κ succeeds with probability at most 1 − f(κ).

All are conservative because the curves are (never above the true f).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from assay._validation import InvalidParameterError, check_scalar
from assay.privacy.theory.accounting import TradeOff

__all__ = [
    "advantage",
    "tpr_at_fpr",
    "bayes_risk",
    "epsilon_at_delta",
    "success_bound",
    "reidentification_risk",
    "attribute_inference_risk",
    "reconstruction_risk",
]


def _check_curve(curve) -> TradeOff:
    if not isinstance(curve, TradeOff):
        raise InvalidParameterError(
            f"tradeoff must be an assay TradeOff curve. Got {type(curve).__name__}."
        )
    return curve


def advantage(tradeoff: TradeOff) -> float:
    """Membership advantage sup_α (1 − α − f(α)), an upper bound in [0, 1].

    Examples
    --------
    >>> from assay.privacy import advantage, gaussian_dp
    >>> round(advantage(gaussian_dp(1.0)), 4)
    0.3829
    """
    return _check_curve(tradeoff).advantage()


def tpr_at_fpr(tradeoff: TradeOff, fpr):
    """Highest attack TPR at each FPR: 1 − f(fpr) (float for a scalar, else array).

    Examples
    --------
    >>> import numpy as np
    >>> from assay.privacy import gaussian_dp, tpr_at_fpr
    >>> np.round(tpr_at_fpr(gaussian_dp(1.0), [0.01, 0.1]), 4)
    array([0.0924, 0.3891])
    """
    return _check_curve(tradeoff).tpr(fpr)


def bayes_risk(tradeoff: TradeOff, prior: float = 0.5) -> float:
    """Smallest error probability of a membership guess when P[member] = ``prior``.

    R(π) = min_α [πα + (1 − π) f(α)] = (1 − π)(1 − δ(ln(π/(1 − π)))) for π ≥ ½; the
    curves are symmetric, so R(π) = R(1 − π). A lower bound (more risk) because δ is
    an upper bound. R(½) = (1 − advantage)/2.

    Examples
    --------
    >>> from assay.privacy import bayes_risk, gaussian_dp
    >>> round(bayes_risk(gaussian_dp(1.0), prior=0.5), 4)
    0.3085
    """
    curve = _check_curve(tradeoff)
    pi = check_scalar(prior, "prior", low=0, high=1, low_open=True, high_open=True)
    pi = max(pi, 1.0 - pi)
    return float((1 - pi) * (1 - curve.delta(math.log(pi / (1 - pi)))))


def epsilon_at_delta(tradeoff: TradeOff, delta: float) -> float:
    """Smallest ε (rounded up) such that the curve is (ε, δ)-DP; ``inf`` if none."""
    return _check_curve(tradeoff).epsilon(delta)


def success_bound(tradeoff: TradeOff, baseline: float) -> float:
    """Success bound 1 − f(κ) of any attack with baseline success κ in (0, 1)."""
    curve = _check_curve(tradeoff)
    kappa = check_scalar(baseline, "baseline", low=0, high=1, low_open=True, high_open=True)
    return float(1.0 - curve(kappa))


def reidentification_risk(tradeoff: TradeOff, population: int) -> float:
    """Probability of singling out a target among ``population`` ≥ 2 candidates.

    Baseline κ = 1/n (a uniform guess); bound 1 − f(1/n).
    """
    n = check_scalar(population, "population", kind=int, low=2)
    return success_bound(tradeoff, 1.0 / n)


def attribute_inference_risk(tradeoff: TradeOff, prior: float | Sequence[float]) -> float:
    """Probability of inferring a sensitive attribute whose prior is known.

    Parameters
    ----------
    prior : float or sequence of float
        Either the prior probabilities of the attribute's values (summing to 1), or
        directly the largest of them. Baseline κ = max prior; bound 1 − f(κ).
    """
    return success_bound(tradeoff, max_prior(prior))


def max_prior(prior: float | Sequence[float]) -> float:
    """Largest prior mass, validated (used as the attribute-inference baseline)."""
    if isinstance(prior, (int, float)) and not isinstance(prior, bool):
        return check_scalar(prior, "prior", low=0, high=1, low_open=True, high_open=True)
    try:
        probs = np.asarray(prior, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise InvalidParameterError(
            f"prior must be a probability or a list of probabilities. Got {prior!r}."
        ) from None
    if probs.size < 2 or np.any(~np.isfinite(probs)) or np.any(probs < 0):
        raise InvalidParameterError(
            f"prior must be at least two non-negative probabilities. Got {prior!r}."
        )
    if abs(probs.sum() - 1.0) > 1e-6:
        raise InvalidParameterError(f"prior must sum to 1. Got sum {probs.sum():g}.")
    return check_scalar(float(probs.max()), "max(prior)", low=0, high=1, high_open=True)


def reconstruction_risk(tradeoff: TradeOff, baseline: float) -> float:
    """Probability of reconstructing a record (within the user's tolerance).

    ``baseline`` κ is the prior probability of a correct reconstruction without the
    output (e.g. the prior mass of the tolerance ball); bound 1 − f(κ).
    """
    return success_bound(tradeoff, baseline)
