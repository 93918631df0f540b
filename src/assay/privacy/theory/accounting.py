"""f-DP trade-off curves: what a differentially private mechanism lets an attacker do.

A mechanism is f-DP when every test between two neighbouring datasets with false
positive rate (FPR) α has false negative rate (FNR) at least f(α). The trade-off
function f is convex, non-increasing, f(α) ≤ 1 − α, and symmetric for add/remove
neighbours. Every curve here is **conservative**: the value returned at any α is never
above the true f(α) (never under-reports risk).

* Closed forms are evaluated exactly: μ-GDP β = Φ(Φ⁻¹(1 − α) − μ), (ε, δ)-DP, Laplace,
  randomized response.
* RDP (one order or a whole profile, and zCDP) uses the optimal RDP → f-DP conversion:
  per order the smallest β feasible for the two Rényi constraints (solved by
  bisection, returning the infeasible end of the bracket), then the pointwise maximum
  over orders.
* DP-SGD and compositions use ``dp_accounting`` privacy-loss distributions (PLDs) with
  pessimistic discretisation, through the public hockey-stick curve δ(ε) only:
  f(α) = sup_{ε ≥ 0} max(1 − δ(ε) − e^ε α, e^{−ε}(1 − δ(ε) − α)). On the PLD's lattice
  the supremum over lattice points ε = kΔ is exact for the discretised PLD (which is
  itself below the true curve); any subset of ε gives a curve lower still, so every
  shortcut stays on the safe side. ``get_delta_for_epsilon`` is the maximum over the
  add and remove adjacencies, so the curve is the symmetrised one.

No interpolation between grid values is ever used: for a convex curve linear
interpolation lies above the curve, i.e. on the unsafe side.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from functools import cached_property

import numpy as np
from dp_accounting.pld import common as pld_common
from dp_accounting.pld import pld_pmf
from dp_accounting.pld import privacy_loss_distribution as pld_lib
from dp_accounting.pld import privacy_loss_mechanism as pl_mech
from dp_accounting.rdp import rdp_privacy_accountant as rdp_lib
from numpy.typing import ArrayLike
from scipy import stats

from assay._validation import InvalidParameterError, check_scalar
from assay.privacy.theory._pld import _self_compose, _SubsampledGaussianLoss

__all__ = [
    "TradeOff",
    "GaussianTradeOff",
    "ApproxDPTradeOff",
    "LaplaceTradeOff",
    "DiscreteTradeOff",
    "RDPTradeOff",
    "PLDTradeOff",
    "gaussian_dp",
    "gaussian_mechanism",
    "approximate_dp",
    "laplace_mechanism",
    "randomized_response",
    "rdp_order",
    "rdp_profile",
    "zcdp",
    "dpsgd",
    "from_pld",
    "compose",
    "DEFAULT_DISCRETIZATION",
]

#: PLD discretisation of the loss lattice used when none is given (as riskcal).
DEFAULT_DISCRETIZATION = 1e-4

# The α grid for drawing: dense near 0, where membership-inference ROCs are read.
_DRAW_GRID = np.unique(
    np.concatenate([[0.0], np.geomspace(1e-6, 1e-2, 81), np.linspace(1e-2, 1.0, 199)])
)
# Grid for the generic (monotone-bound) suprema; refined around the maximiser.
_SUP_GRID = np.unique(
    np.concatenate([[0.0], np.geomspace(1e-12, 1e-3, 60), np.linspace(1e-3, 1.0, 240)])
)
_EPS_MAX = 700.0  # e^ε overflows float64 beyond ~709


def _check_alpha(alpha) -> np.ndarray:
    """Validate FPR values (scalar or array-like) in [0, 1]; return a float array."""
    try:
        arr = np.asarray(alpha, dtype=float)
    except (TypeError, ValueError):
        raise InvalidParameterError(
            f"alpha must be a number or array of numbers in [0, 1]. Got {alpha!r}."
        ) from None
    bad = ~np.isfinite(arr) | (arr < 0) | (arr > 1)
    if np.any(bad):
        first = arr[bad].flat[0]
        raise InvalidParameterError(f"alpha must be in [0, 1]. Got {first!r}.")
    return arr


class TradeOff(ABC):
    """A conservative f-DP trade-off curve: FNR β = f(α) for an attacker with FPR α.

    Call the object with FPR values to get the FNR (never above the true curve).
    ``alpha`` / ``beta`` give the curve on a drawing grid; ``tpr(fpr)`` = 1 − f(fpr)
    is what to plot beside an empirical ROC.
    """

    #: Short description of the mechanism (for reports).
    description: str = "trade-off"

    def __call__(self, alpha):
        """FNR at the given FPR(s); a float for a scalar, else an array."""
        arr = _check_alpha(alpha)
        flat = arr.reshape(-1)
        beta = np.asarray(self._beta(flat), dtype=float)
        # Any true trade-off function lies in [0, 1 − α]; clipping down stays conservative.
        beta = np.clip(np.minimum(beta, 1.0 - flat), 0.0, 1.0)
        beta = beta.reshape(arr.shape)
        return float(beta) if beta.ndim == 0 else beta

    @abstractmethod
    def _beta(self, alpha: np.ndarray) -> np.ndarray:
        """FNR at each α of a validated 1-D array (may be unclipped)."""

    def tpr(self, fpr):
        """Highest attack TPR at the given FPR(s): 1 − f(fpr)."""
        beta = self(fpr)
        return 1.0 - beta

    @cached_property
    def _grid_curve(self) -> tuple[np.ndarray, np.ndarray]:
        alpha = _DRAW_GRID.copy()
        beta = self(alpha)
        # A running minimum keeps the drawn curve non-increasing and stays below f.
        return alpha, np.minimum.accumulate(beta)

    @property
    def alpha(self) -> np.ndarray:
        """FPR grid on which the curve is drawn (dense near 0)."""
        return self._grid_curve[0]

    @property
    def beta(self) -> np.ndarray:
        """FNR f(α) on ``alpha`` (conservative)."""
        return self._grid_curve[1]

    # -- hockey-stick view -------------------------------------------------------
    def delta(self, epsilon: float) -> float:
        """Upper bound on δ(ε) = sup_α (1 − f(α) − e^ε α) for ε ≥ 0."""
        epsilon = check_scalar(epsilon, "epsilon", low=0)
        return _sup_bound(self, math.exp(min(epsilon, _EPS_MAX)))

    def advantage(self) -> float:
        """Upper bound on the attack advantage sup_α (1 − α − f(α)) = δ(0)."""
        return self.delta(0.0)

    def epsilon(self, delta: float) -> float:
        """Smallest ε (rounded up) with δ(ε) ≤ delta; ``inf`` if none."""
        delta = check_scalar(delta, "delta", low=0, high=1, high_open=True)
        return _invert_delta(self.delta, delta)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.description}>"


def _sup_bound(curve: TradeOff, slope: float, tol: float = 1e-8) -> float:
    """Upper bound on sup_α (1 − α·slope − f(α)) from values of f on a grid.

    f is non-increasing, so on a cell [a, b] it is at least f(b): each cell is bounded
    by 1 − slope·a − f(b). Cells whose bound could still beat the best grid value are
    subdivided (branch and bound); the others keep their bound, so the result is a
    valid upper bound whatever the number of rounds.
    """
    grid = _SUP_GRID
    settled = -np.inf
    for _ in range(8):
        beta = curve(grid)
        lefts = grid[:-1]
        bounds = 1.0 - slope * lefts - beta[1:]
        best_point = float(np.max(1.0 - slope * grid - beta))
        open_ = bounds > best_point + tol
        if not open_.any():
            break
        settled = max(settled, float(bounds[~open_].max(initial=-np.inf)))
        idx = np.flatnonzero(open_)
        pieces = max(2, min(16, 3000 // idx.size))
        if idx.size * pieces > 20000:
            break
        grid = np.unique(np.concatenate(
            [np.linspace(grid[i], grid[i + 1], pieces + 1) for i in idx]))
        if grid.size < 2:
            break
    best = max(settled, float(bounds.max()))
    return float(min(max(best, 0.0), 1.0))


def _invert_delta(delta_fn, target: float, tol: float = 1e-9) -> float:
    """Smallest ε ≥ 0 with delta_fn(ε) ≤ target, by bisection on a decreasing function."""
    if delta_fn(0.0) <= target:
        return 0.0
    hi = 1.0
    while delta_fn(hi) > target:
        hi *= 2.0
        if hi > _EPS_MAX:
            return math.inf
    lo = 0.0 if hi == 1.0 else hi / 2.0
    while hi - lo > tol * max(1.0, hi):
        mid = 0.5 * (lo + hi)
        if delta_fn(mid) > target:
            lo = mid
        else:
            hi = mid
    return hi  # the end where δ ≤ target: ε is rounded up


# ---------------------------------------------------------------------------------
# Closed forms
# ---------------------------------------------------------------------------------


class GaussianTradeOff(TradeOff):
    """μ-GDP: β = Φ(Φ⁻¹(1 − α) − μ), evaluated exactly."""

    def __init__(self, mu: float):
        self.mu = check_scalar(mu, "mu", low=0)
        self.description = f"{self.mu:g}-GDP"

    def _beta(self, alpha):
        return stats.norm.cdf(stats.norm.isf(alpha) - self.mu)

    def delta(self, epsilon: float) -> float:
        """Exact δ(ε) of μ-GDP (Dong et al. 2019, Cor. 2.13)."""
        epsilon = check_scalar(epsilon, "epsilon", low=0)
        if self.mu == 0:
            return 0.0
        a = -epsilon / self.mu + self.mu / 2
        # Φ(a) − e^ε Φ(a − μ), in logs so large ε does not overflow.
        second = math.exp(epsilon + stats.norm.logcdf(a - self.mu)) if epsilon < _EPS_MAX else 0
        return float(min(max(stats.norm.cdf(a) - second, 0.0), 1.0))

    def advantage(self) -> float:
        """Exact advantage 2Φ(μ/2) − 1."""
        return float(2 * stats.norm.cdf(self.mu / 2) - 1)

    def to_pld(self, discretization: float) -> pld_lib.PrivacyLossDistribution:
        """Pessimistic PLD of the Gaussian mechanism with σ = 1/μ."""
        if self.mu == 0:
            return pld_lib.identity(discretization)
        return pld_lib.from_gaussian_mechanism(
            standard_deviation=1.0 / self.mu,
            value_discretization_interval=discretization,
            pessimistic_estimate=True,
            use_connect_dots=True,
        )


class ApproxDPTradeOff(TradeOff):
    """(ε, δ)-DP: f(α) = max(0, 1 − δ − e^ε α, e^{−ε}(1 − δ − α))."""

    def __init__(self, epsilon: float, delta: float = 0.0):
        self.eps = check_scalar(epsilon, "epsilon", low=0, high=_EPS_MAX)
        self.dlt = check_scalar(delta, "delta", low=0, high=1)
        self.description = f"({self.eps:g}, {self.dlt:g})-DP"

    def _beta(self, alpha):
        e = math.exp(self.eps)
        return np.maximum.reduce(
            [np.zeros_like(alpha), 1 - self.dlt - e * alpha, (1 - self.dlt - alpha) / e]
        )

    def delta(self, epsilon: float) -> float:
        """Exact δ(ε') of the (ε, δ) curve: its vertices decide the supremum."""
        epsilon = check_scalar(epsilon, "epsilon", low=0)
        if epsilon >= self.eps:
            return self.dlt
        corner = 1 - (1 - self.dlt) * (1 + math.exp(epsilon)) / (1 + math.exp(self.eps))
        return float(max(self.dlt, corner))

    def advantage(self) -> float:
        """(e^ε − 1 + 2δ)/(e^ε + 1)."""
        return float((math.exp(self.eps) - 1 + 2 * self.dlt) / (math.exp(self.eps) + 1))

    def to_pld(self, discretization: float) -> pld_lib.PrivacyLossDistribution:
        """Pessimistic PLD of an (ε, δ)-DP mechanism (dp_accounting's dominating pair)."""
        params = pld_common.DifferentialPrivacyParameters(self.eps, self.dlt)
        return pld_lib.from_privacy_parameters(params, value_discretization_interval=discretization)


class LaplaceTradeOff(TradeOff):
    """Laplace mechanism with ε = sensitivity/scale (Dong et al. 2019, closed form)."""

    def __init__(self, epsilon: float):
        self.eps = check_scalar(epsilon, "epsilon", low=0, high=_EPS_MAX)
        self.description = f"Laplace, ε = {self.eps:g}"

    def _beta(self, alpha):
        e = self.eps
        out = np.empty_like(alpha)
        low = alpha < math.exp(-e) / 2
        mid = ~low & (alpha < 0.5)
        high = alpha >= 0.5
        out[low] = 1 - math.exp(e) * alpha[low]
        with np.errstate(divide="ignore"):
            out[mid] = math.exp(-e) / (4 * alpha[mid])
        out[high] = math.exp(-e) * (1 - alpha[high])
        return out

    def advantage(self) -> float:
        """Exact: the fixed point is α* = e^{−ε/2}/2, so η = 1 − e^{−ε/2}."""
        return float(-math.expm1(-self.eps / 2))

    def to_pld(self, discretization: float) -> pld_lib.PrivacyLossDistribution:
        """Pessimistic PLD of the Laplace mechanism with scale 1/ε."""
        if self.eps == 0:
            return pld_lib.identity(discretization)
        return pld_lib.from_laplace_mechanism(
            1.0 / self.eps, value_discretization_interval=discretization
        )


class DiscreteTradeOff(TradeOff):
    """Exact (randomised Neyman–Pearson) curve between two finite distributions P, Q.

    The most powerful tests reject outcomes in decreasing order of P/Q: α is the
    null's (Q) mass in the rejection region, β the alternative's (P) mass outside it.
    The pair should be swap-symmetric (as for randomized response) for the curve to
    hold for both neighbouring directions.
    """

    def __init__(self, null: ArrayLike, alternative: ArrayLike, description: str):
        q = np.asarray(null, dtype=float)
        p = np.asarray(alternative, dtype=float)
        # Reject the outcomes most likely under the alternative first.
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(q > 0, p / np.where(q > 0, q, 1), np.inf)
        order = np.argsort(-ratio, kind="stable")
        self._alpha_v = np.concatenate([[0.0], np.cumsum(q[order])])
        self._beta_v = np.concatenate([[1.0], 1.0 - np.cumsum(p[order])])
        self._alpha_v[-1] = 1.0
        self._beta_v[-1] = 0.0
        self.description = description

    def _beta(self, alpha):
        # Randomising between adjacent NP tests is achievable, so linear between the
        # vertices is the exact curve (not an interpolation of a smooth one).
        return np.interp(alpha, self._alpha_v, self._beta_v)


# ---------------------------------------------------------------------------------
# RDP → f-DP (optimal conversion)
# ---------------------------------------------------------------------------------


def _log_bernoulli_moment(a, b, order, log_u):
    """log of the two Rényi constraints' left-hand sides minus log U (both ≤ 0 when feasible).

    For a test (α, β) the outcome laws are Bernoulli; RDP of order τ bounds
    (1−α)^{1−τ} β^τ + α^{1−τ} (1−β)^τ and (1−α)^τ β^{1−τ} + α^τ (1−β)^{1−τ} by U.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        la, l1a = np.log(a), np.log1p(-a)
        lb, l1b = np.log(b), np.log1p(-b)
        first = np.logaddexp((1 - order) * l1a + order * lb, (1 - order) * la + order * l1b)
        second = np.logaddexp(order * l1a + (1 - order) * lb, order * la + (1 - order) * l1b)
    first = np.where(np.isnan(first), np.inf, first)
    second = np.where(np.isnan(second), np.inf, second)
    return np.maximum(first, second) - log_u


class RDPTradeOff(TradeOff):
    """Optimal f-DP curve of an RDP profile: pointwise max over orders of f_{τ, ε(τ)}.

    For each order τ > 1, f_{τ,ε}(α) is the smallest β in [0, 1 − α] satisfying both
    Rényi constraints (Zhu et al. 2022; optimal per Riess et al.). The feasible set is
    an interval ending at 1 − α, so bisection applies; the infeasible end of the final
    bracket is returned, i.e. a value at or below the true curve.
    """

    _ITER = 48  # bracket width 2^-48: far below any reported digit
    _COARSE = 14  # first pass over all orders
    _KEEP = 4  # orders kept per α for the fine pass

    def __init__(self, orders: ArrayLike, epsilons: ArrayLike, description: str = ""):
        self.orders, self.epsilons = _check_profile(orders, epsilons)
        self.description = description or f"RDP profile ({len(self.orders)} orders)"

    def _beta(self, alpha):
        tau = self.orders[None, :]
        log_u = (tau - 1) * self.epsilons[None, :]
        lo, hi = self._bisect(alpha[:, None], tau, log_u, np.zeros((len(alpha), tau.size)),
                              np.broadcast_to(1.0 - alpha[:, None], (len(alpha), tau.size)),
                              self._COARSE)
        if tau.size > self._KEEP:
            # Only the few orders that lead after a coarse pass can win; every order's
            # infeasible end is a valid lower bound, so dropping the others is safe.
            top = np.argsort(-hi, axis=1)[:, : self._KEEP]
            rows = np.arange(len(alpha))[:, None]
            lo, hi = lo[rows, top], hi[rows, top]
            tau, log_u = self.orders[top], log_u[0][top]
        lo, _ = self._bisect(alpha[:, None], tau, log_u, lo, hi, self._ITER - self._COARSE)
        out = lo.max(axis=1)
        # At α = 0 or 1 the constraints are degenerate; f(0) ≤ 1 and f(1) = 0 hold anyway.
        return np.where(alpha >= 1.0, 0.0, out)

    @staticmethod
    def _bisect(a, tau, log_u, lo, hi, n_iter):
        lo, hi = lo.copy(), np.array(hi, dtype=float)
        for _ in range(n_iter):
            mid = 0.5 * (lo + hi)
            feasible = _log_bernoulli_moment(a, mid, tau, log_u) <= 0
            hi = np.where(feasible, mid, hi)
            lo = np.where(feasible, lo, mid)
        return lo, hi

    def epsilon(self, delta: float) -> float:
        """ε at δ from dp_accounting's RDP → (ε, δ) conversion (a valid upper bound).

        Reading ε off the f-DP curve needs δ(ε) over a grid at every bisection step
        (slow) and gave the same value in our checks on DP-SGD profiles.
        """
        delta = check_scalar(delta, "delta", low=0, high=1, high_open=True)
        if delta == 0:
            return math.inf
        return float(rdp_lib.compute_epsilon(self.orders, self.epsilons, delta)[0])


def _check_profile(orders, epsilons) -> tuple[np.ndarray, np.ndarray]:
    orders_l = _as_list(orders, "orders")
    eps_l = _as_list(epsilons, "rdp")
    if len(orders_l) != len(eps_l) or not orders_l:
        raise InvalidParameterError(
            "orders and rdp must be non-empty lists of the same length. "
            f"Got {len(orders_l)} orders and {len(eps_l)} values."
        )
    o = np.array([check_scalar(v, "orders", low=1, low_open=True) for v in orders_l])
    e = np.array([check_scalar(v, "rdp", low=0) for v in eps_l])
    return o, e


def _as_list(values, name: str) -> list:
    if isinstance(values, (int, float)) and not isinstance(values, bool):
        return [values]
    try:
        return list(np.asarray(values, dtype=object).reshape(-1))
    except TypeError:
        raise InvalidParameterError(f"{name} must be a list of numbers. Got {values!r}.") from None


# ---------------------------------------------------------------------------------
# PLD-based curves (DP-SGD, compositions)
# ---------------------------------------------------------------------------------


class PLDTradeOff(TradeOff):
    """Trade-off curve of a (pessimistic) dp_accounting PLD, via the public δ(ε) only.

    ``discretization`` must be the PLD's loss lattice step Δ: every privacy loss is a
    multiple of Δ, and the supremum over ε = kΔ, k ≥ 0, is then exact for the PLD.
    For a few α the maximising lattice point is found by binary search (the objective
    is unimodal in k); for many α (drawing) a uniform subset of lattice points is used,
    which can only lower the curve.
    """

    def __init__(self, pld: pld_lib.PrivacyLossDistribution, discretization: float,
                 description: str = "PLD"):
        self.pld = pld
        self.discretization = check_scalar(
            discretization, "discretization", low=0, high=1, low_open=True
        )
        self.description = description
        self._cache: dict[int, float] = {}

    @cached_property
    def _dense_pmfs(self) -> list[tuple[int, np.ndarray, float]] | None:
        """(lowest loss index, probabilities, ∞ mass) of each dense PMF on this lattice."""
        pmfs = [self.pld._pmf_remove] + ([] if self.pld._symmetric else [self.pld._pmf_add])
        out = []
        for pmf in pmfs:
            if not (isinstance(pmf, pld_pmf.DensePLDPmf)
                    and math.isclose(pmf._discretization, self.discretization, rel_tol=1e-12)):
                return None
            out.append((int(pmf._lower_loss), np.asarray(pmf._probs, dtype=float),
                        float(pmf._infinity_mass)))
        return out

    # δ on the lattice, cached: the binary searches revisit the same points.
    def _delta_k(self, k: int) -> float:
        d = self._cache.get(k)
        if d is None:
            eps = k * self.discretization
            if self._dense_pmfs is not None and eps <= _EPS_MAX:
                # dp_accounting's sum over losses above ε, on the suffix of the lattice
                # above k instead of a mask over all of it (the same terms).
                d = max(inf + float(np.dot(
                    -np.expm1(eps - (lower + np.arange(max(0, k - lower + 1), probs.size))
                              * self.discretization),
                    probs[max(0, k - lower + 1):]))
                    for lower, probs, inf in self._dense_pmfs)
            else:
                d = float(self.pld.get_delta_for_epsilon(min(eps, _EPS_MAX)))
            self._cache[k] = d
        return d

    def delta(self, epsilon: float) -> float:
        """δ(ε) of the PLD (max over add/remove), clipped to [0, 1]."""
        epsilon = check_scalar(epsilon, "epsilon", low=0)
        return float(min(max(self.pld.get_delta_for_epsilon(epsilon), 0.0), 1.0))

    def advantage(self) -> float:
        """δ(0), exactly as the PLD gives it (an upper bound on the true advantage)."""
        return float(min(max(self._delta_k(0), 0.0), 1.0))

    def epsilon(self, delta: float) -> float:
        """dp_accounting's ε for δ (pessimistic PLD ⇒ an upper bound)."""
        delta = check_scalar(delta, "delta", low=0, high=1, high_open=True)
        return float(self.pld.get_epsilon_for_delta(delta))

    @cached_property
    def _k_top(self) -> int:
        """A lattice index beyond which δ no longer changes (largest finite loss)."""
        k_cap = int(_EPS_MAX / self.discretization)
        d_inf = self._delta_k(k_cap)
        k = max(1, int(round(1.0 / self.discretization)))
        while k < k_cap and self._delta_k(k) - d_inf > 1e-15:
            k *= 2
        return min(k, k_cap)

    def _line(self, k: int, alpha: float, branch: int) -> float:
        e = k * self.discretization
        one_minus = 1.0 - self._delta_k(k)
        if branch == 0:
            return one_minus - math.exp(e) * alpha if alpha > 0 else one_minus
        return math.exp(-e) * (one_minus - alpha)

    def _increment_sign(self, k: int, alpha: float, branch: int) -> float:
        """A number with the sign of line(k + 1) − line(k), scaled for interpolation.

        Branch 0: log of the null's tail mass at ε_{k+1} minus log α (the increment is
        (e^{ε_{k+1}} − e^{ε_k})·(tail − α)). Branch 1: the increment times
        e^{ε_k}/(1 − e^{−Δ}).
        """
        d0, d1 = self._delta_k(k), self._delta_k(k + 1)
        e0 = k * self.discretization
        if branch == 0:
            tail = (d0 - d1) / (math.exp(e0) * math.expm1(self.discretization))
            # Floor the tail so that interpolation is not thrown off by log(0).
            return math.log(max(tail, 1e-6 * alpha)) - math.log(alpha)
        shrink = -math.expm1(-self.discretization)
        return (d0 - math.exp(-self.discretization) * d1) / shrink - (1.0 - alpha)

    def _best_line(self, alpha: float, branch: int) -> float:
        """max over lattice k of the branch's line at α.

        The increments change sign once (from + to −), so the first k with a
        non-positive increment is the maximiser: found by regula falsi on the scaled
        increments, falling back to bisection when the bracket does not halve.
        """
        if alpha <= 0.0:
            return 1.0 - self._delta_k(self._k_top)
        lo, hi = 0, max(1, int(round(0.5 / self.discretization)))
        k_cap = int(_EPS_MAX / self.discretization) - 1
        s_lo = self._increment_sign(lo, alpha, branch)
        if s_lo <= 0:
            return self._line(0, alpha, branch)
        s_hi = self._increment_sign(hi, alpha, branch)
        while s_hi > 0 and hi < k_cap:  # expand until the increment turns non-positive
            lo, s_lo = hi, s_hi
            hi = min(2 * hi, k_cap)
            s_hi = self._increment_sign(hi, alpha, branch)
        interpolate = True
        while hi - lo > 1 and s_hi <= 0:
            width = hi - lo
            if interpolate and math.isfinite(s_lo - s_hi) and s_lo != s_hi:
                mid = lo + int(round(width * s_lo / (s_lo - s_hi)))
                mid = min(max(mid, lo + 1), hi - 1)
            else:
                mid = (lo + hi) // 2
            s_mid = self._increment_sign(mid, alpha, branch)
            if s_mid > 0:
                lo, s_lo = mid, s_mid
            else:
                hi, s_hi = mid, s_mid
            interpolate = (hi - lo) <= width // 2
        ks = {lo, hi, hi + 1}
        return max(self._line(k, alpha, branch) for k in ks)

    def _beta(self, alpha):
        a_star = (1.0 - self.advantage()) / 2.0  # fixed point of the symmetric curve
        if alpha.size <= 16:
            return np.array([self._best_line(float(a), 0 if a <= a_star else 1) for a in alpha])
        return self._beta_lines(alpha)

    def _beta_lines(self, alpha: np.ndarray) -> np.ndarray:
        step = max(1, self._k_top // 4000)
        ks = np.arange(0, self._k_top + step, step)
        eps = np.minimum(ks * self.discretization, _EPS_MAX)
        one_minus = 1.0 - np.asarray(self.pld.get_delta_for_epsilon(eps), dtype=float)
        out = np.zeros_like(alpha)
        for chunk in np.array_split(np.arange(alpha.size), max(1, alpha.size // 64)):
            a = alpha[chunk][:, None]
            first = one_minus[None, :] - np.exp(eps)[None, :] * a
            second = np.exp(-eps)[None, :] * (one_minus[None, :] - a)
            out[chunk] = np.maximum(first.max(axis=1), second.max(axis=1))
        return out


# ---------------------------------------------------------------------------------
# Constructors
# ---------------------------------------------------------------------------------


def gaussian_dp(mu: float) -> GaussianTradeOff:
    """μ-GDP trade-off curve (``mu`` ≥ 0).

    Examples
    --------
    The curve gives the smallest type II error β of any membership test at each type I
    error α; 1 - β is the best attack's TPR at that FPR:

    >>> import numpy as np
    >>> from assay.privacy import gaussian_dp
    >>> curve = gaussian_dp(1.0)
    >>> curve
    <GaussianTradeOff: 1-GDP>
    >>> np.round(curve([0.01, 0.1]), 4)
    array([0.9076, 0.6109])
    """
    return GaussianTradeOff(mu)


def gaussian_mechanism(noise_multiplier: float, steps: int = 1) -> GaussianTradeOff:
    """Gaussian mechanism with noise σ·sensitivity, composed ``steps`` times: μ = √T/σ."""
    sigma = check_scalar(noise_multiplier, "noise_multiplier", low=0, low_open=True)
    steps = check_scalar(steps, "steps", kind=int, low=1)
    return GaussianTradeOff(math.sqrt(steps) / sigma)


def approximate_dp(epsilon: float, delta: float = 0.0) -> ApproxDPTradeOff:
    """(ε, δ)-DP trade-off curve.

    Examples
    --------
    >>> from assay.privacy import approximate_dp, tpr_at_fpr
    >>> curve = approximate_dp(1.0, 1e-5)
    >>> curve
    <ApproxDPTradeOff: (1, 1e-05)-DP>
    >>> round(float(tpr_at_fpr(curve, 0.1)), 4)  # at most e^ε · FPR + δ
    0.2718
    """
    return ApproxDPTradeOff(epsilon, delta)


def laplace_mechanism(epsilon: float) -> LaplaceTradeOff:
    """Laplace mechanism with scale sensitivity/ε.

    Examples
    --------
    >>> from assay.privacy import laplace_mechanism, tpr_at_fpr
    >>> round(float(tpr_at_fpr(laplace_mechanism(1.0), 0.1)), 4)
    0.2718
    """
    return LaplaceTradeOff(epsilon)


def randomized_response(epsilon: float, n_categories: int = 2) -> DiscreteTradeOff:
    """k-ary randomized response reporting the truth w.p. e^ε/(e^ε + k − 1).

    For k = 2 this is exactly (ε, 0)-DP; for k > 2 the curve is above f_{ε,0}.

    Examples
    --------
    >>> from assay.privacy import randomized_response
    >>> randomized_response(1.0)
    <DiscreteTradeOff: randomized response, ε = 1, k = 2>
    """
    eps = check_scalar(epsilon, "epsilon", low=0, high=_EPS_MAX)
    k = check_scalar(n_categories, "n_categories", kind=int, low=2)
    norm = math.exp(eps) + k - 1
    p = np.full(k, 1.0 / norm)
    q = p.copy()
    p[0] = q[1] = math.exp(eps) / norm
    return DiscreteTradeOff(q, p, f"randomized response, ε = {eps:g}, k = {k}")


def rdp_order(order: float, epsilon: float) -> RDPTradeOff:
    """Optimal f-DP curve implied by (τ, ε_τ)-RDP at a single order τ > 1."""
    return RDPTradeOff([order], [epsilon], f"({order:g}, {epsilon:g})-RDP")


def rdp_profile(orders: Sequence[float], epsilons: Sequence[float]) -> RDPTradeOff:
    """Optimal f-DP curve of a whole RDP profile (e.g. from an RDP accountant).

    Parameters
    ----------
    orders : sequence of float
        Rényi orders, each > 1.
    epsilons : sequence of float
        RDP guarantee ε(τ) ≥ 0 at each order.
    """
    return RDPTradeOff(orders, epsilons)


# zCDP as an RDP profile ρτ on a dense set of orders (τ → 1⁺ matters for small ρ).
_ZCDP_ORDERS = 1 + np.geomspace(1e-3, 1023, 160)


def zcdp(rho: float) -> RDPTradeOff:
    """ρ-zCDP (RDP ε(τ) = ρτ for all τ > 1), via the optimal RDP-profile conversion."""
    rho = check_scalar(rho, "rho", low=0)
    return RDPTradeOff(_ZCDP_ORDERS, rho * _ZCDP_ORDERS, f"{rho:g}-zCDP")


#: Smallest DP-SGD sample rate accepted: 1e-300 overflowed the calibration's Gaussian
#: approximation ((μ / (q √T))² past the largest float); 1e-12 keeps it finite for any
#: accepted μ and T, and is far below any real table (a batch of 1 in 10^12 rows).
MIN_SAMPLE_RATE = 1e-12


def _check_dpsgd(sample_rate, steps, noise_multiplier) -> tuple[float, int, float]:
    q = check_scalar(sample_rate, "sample_rate", low=MIN_SAMPLE_RATE, high=1,
                     why="a batch of one in 10^12 rows at the least; below, the accounting "
                         "overflows")
    t = check_scalar(steps, "steps", kind=int, low=1, high=10_000_000)
    s = check_scalar(noise_multiplier, "noise_multiplier", low=0.1, high=1000)
    return q, t, s


def _check_discretization(discretization) -> float:
    return check_scalar(discretization, "discretization", low=1e-6, high=0.5)


def dpsgd_pld(sample_rate: float, steps: int, noise_multiplier: float,
              discretization: float = DEFAULT_DISCRETIZATION) -> pld_lib.PrivacyLossDistribution:
    """Pessimistic PLD of DP-SGD: Poisson-subsampled Gaussian, composed ``steps`` times.

    The same PLD as dp_accounting's ``from_gaussian_mechanism(..., pessimistic_estimate=
    True, use_connect_dots=True).self_compose(steps)``, built with a vectorised δ(ε).
    """
    if sample_rate == 1.0:
        single = pld_lib.from_gaussian_mechanism(
            standard_deviation=noise_multiplier, value_discretization_interval=discretization,
            pessimistic_estimate=True, use_connect_dots=True)
        return single.self_compose(steps)

    def one(adjacency):
        loss = _SubsampledGaussianLoss(noise_multiplier, sampling_prob=sample_rate,
                                       adjacency_type=adjacency)
        return pld_lib._create_pld_pmf_from_monotone_privacy_loss(
            loss, pessimistic_estimate=True, value_discretization_interval=discretization,
            use_connect_dots=True)

    return pld_lib.PrivacyLossDistribution(
        _self_compose(one(pl_mech.AdjacencyType.REMOVE), steps),
        _self_compose(one(pl_mech.AdjacencyType.ADD), steps))


def dpsgd(sample_rate: float, steps: int, noise_multiplier: float, *,
          discretization: float = DEFAULT_DISCRETIZATION) -> PLDTradeOff:
    """Trade-off curve of DP-SGD with Poisson subsampling (add/remove neighbours).

    Parameters
    ----------
    sample_rate : float
        Poisson sampling probability q in (0, 1].
    steps : int
        Number of noisy steps T ≥ 1.
    noise_multiplier : float
        Gaussian noise σ relative to the clipping norm, in [0.1, 1000].
    discretization : float, default=1e-4
        PLD loss-lattice step; coarser is faster and more pessimistic.
    """
    q, t, s = _check_dpsgd(sample_rate, steps, noise_multiplier)
    d = _check_discretization(discretization)
    pld = dpsgd_pld(q, t, s, d)
    return PLDTradeOff(pld, d, f"DP-SGD q={q:g}, T={t}, σ={s:g}")


def from_pld(pld: pld_lib.PrivacyLossDistribution, discretization: float) -> PLDTradeOff:
    """Wrap an existing (pessimistic) dp_accounting PLD with lattice step ``discretization``."""
    if not isinstance(pld, pld_lib.PrivacyLossDistribution):
        raise InvalidParameterError(
            f"pld must be a dp_accounting PrivacyLossDistribution. Got {type(pld).__name__}."
        )
    return PLDTradeOff(pld, discretization)


def compose(*curves: TradeOff, discretization: float = DEFAULT_DISCRETIZATION) -> TradeOff:
    """Compose heterogeneous mechanisms (each applied once, in any order).

    All-Gaussian inputs compose exactly (μ = √Σμᵢ²); otherwise every input is turned
    into a pessimistic PLD on one lattice and the PLDs are composed. RDP curves cannot
    be composed here (compose their RDP profiles instead: ε(τ) adds up).

    Examples
    --------
    Gaussian mechanisms compose exactly:

    >>> from assay.privacy import compose, gaussian_dp
    >>> compose(gaussian_dp(0.6), gaussian_dp(0.8))
    <GaussianTradeOff: 1-GDP>
    """
    if not curves:
        raise InvalidParameterError("compose needs at least one trade-off curve. Got none.")
    gaussians = [c for c in curves if isinstance(c, GaussianTradeOff)]
    if len(gaussians) == len(curves):
        return GaussianTradeOff(math.sqrt(sum(c.mu**2 for c in gaussians)))
    d = _check_discretization(discretization)
    plds = []
    for c in curves:
        if isinstance(c, PLDTradeOff):
            if not math.isclose(c.discretization, d, rel_tol=1e-12):
                raise InvalidParameterError(
                    f"discretization must match the PLD curves' lattice step. "
                    f"Got {d:g} and {c.discretization:g}."
                )
            plds.append(c.pld)
        elif hasattr(c, "to_pld"):
            plds.append(c.to_pld(d))
        else:
            raise InvalidParameterError(
                "curves must be Gaussian, (ε, δ), Laplace or PLD-based trade-offs. "
                f"Got {type(c).__name__}."
            )
    pld = plds[0]
    for other in plds[1:]:
        pld = pld.compose(other)
    return PLDTradeOff(pld, d, " ∘ ".join(c.description for c in curves))

