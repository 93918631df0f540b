"""Calibrate DP noise directly to an attack-risk target, always on the safe side.

A target (:class:`Advantage`, :class:`TPRAtFPR`, :class:`Epsilon`,
:class:`Reidentification`, :class:`AttributeInference`, :class:`Reconstruction`)
bounds a risk that decreases as noise grows. :func:`calibrate_dpsgd` returns the
smallest noise multiplier whose re-evaluated risk is at most the target;
:func:`calibrate_gaussian` the largest μ for μ-GDP.

Search (DP-SGD): a closed-form start (the CLT/GDP approximation
μ ≈ q√T·√(e^{1/σ²} − 1), with its local slope), then a bracket [unsafe, safe] found
and shrunk by secant steps in (log σ, log risk); when the model agrees with the last
point the next evaluation is placed just across the predicted root, so a good
prediction closes the bracket in one step. Evaluations are cached. For a final
lattice finer than 1e-3 a 10× coarser lattice guides the search first (a coarse
pessimistic PLD over-states risk, so it only guides); the returned σ is always the
safe end of a bracket evaluated on the final lattice, so its re-evaluated risk is at
most the target. Typically 3–6 PLD constructions per calibration.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from assay._validation import (
    InvalidParameterError,
    UnachievableTargetError,
    check_option,
    check_scalar,
)
from assay.privacy.theory import risk as _risk
from assay.privacy.theory.accounting import (
    GaussianTradeOff,
    PLDTradeOff,
    TradeOff,
    _check_discretization,
    _check_dpsgd,
    dpsgd_pld,
)

__all__ = [
    "RiskTarget",
    "Advantage",
    "TPRAtFPR",
    "Epsilon",
    "Reidentification",
    "AttributeInference",
    "Reconstruction",
    "TARGET_NAMES",
    "parse_target",
    "CalibrationResult",
    "calibrate_dpsgd",
    "calibrate_gaussian",
    "NoiseRiskCurve",
    "noise_risk_curve",
]

_MIN_NOISE, _MAX_NOISE = 0.1, 1000.0


# ---------------------------------------------------------------------------------
# Targets: records of what must hold; they measure a curve but hold no state.
# ---------------------------------------------------------------------------------


class RiskTarget(ABC):
    """A bound on one risk: calibration makes ``measure(curve) <= value``."""

    name: str = ""
    value: float

    @abstractmethod
    def measure(self, curve: TradeOff) -> float:
        """The risk of ``curve`` in this target's units (higher = riskier)."""

    def describe(self) -> str:
        """Human-readable target, e.g. ``advantage ≤ 0.1``."""
        return f"{self.name} ≤ {self.value:g}"

    def params(self) -> dict:
        """The target's inputs, for JSON output."""
        return {"target": self.name, "target_value": self.value}


@dataclass(frozen=True)
class Advantage(RiskTarget):
    """Membership advantage (TPR − FPR of the best test) at most ``value`` in (0, 1)."""

    value: float
    name = "advantage"

    def __post_init__(self):
        v = check_scalar(self.value, "advantage")
        if not 0 < v < 1:
            raise UnachievableTargetError(
                f"advantage must be in (0, 1): 0 needs infinite noise and 1 bounds nothing. "
                f"Got {v:g}."
            )
        object.__setattr__(self, "value", v)

    def measure(self, curve):
        return curve.advantage()


@dataclass(frozen=True)
class TPRAtFPR(RiskTarget):
    """Attack TPR at FPR ``fpr`` at most ``value`` (needs fpr < value < 1)."""

    value: float
    fpr: float
    name = "tpr@fpr"

    def __post_init__(self):
        fpr = check_scalar(self.fpr, "fpr", low=0, high=1, low_open=True, high_open=True)
        tpr = check_scalar(self.value, "tpr")
        if tpr <= fpr:
            raise UnachievableTargetError(
                f"tpr must be above the FPR (a random guess already reaches TPR = FPR). "
                f"Got tpr={tpr:g} at fpr={fpr:g}."
            )
        if tpr >= 1:
            raise UnachievableTargetError(
                f"tpr must be below 1 to constrain anything. Got {tpr:g}.")
        object.__setattr__(self, "value", tpr)
        object.__setattr__(self, "fpr", fpr)

    def measure(self, curve):
        return float(curve.tpr(self.fpr))

    def describe(self):
        return f"TPR ≤ {self.value:g} at FPR {self.fpr:g}"

    def params(self):
        return {"target": self.name, "target_value": self.value, "fpr": self.fpr}


@dataclass(frozen=True)
class Epsilon(RiskTarget):
    """(ε, δ)-DP with ε at most ``value`` > 0 at the given δ in (0, 1)."""

    value: float
    delta: float
    name = "epsilon"

    def __post_init__(self):
        eps = check_scalar(self.value, "epsilon", high=700)
        if eps <= 0:
            raise UnachievableTargetError(
                f"epsilon must be above 0 (ε = 0 needs infinite noise). Got {eps:g}."
            )
        d = check_scalar(self.delta, "delta", low=0, high=1, low_open=True, high_open=True)
        object.__setattr__(self, "value", eps)
        object.__setattr__(self, "delta", d)

    def measure(self, curve):
        return curve.epsilon(self.delta)

    def describe(self):
        return f"ε ≤ {self.value:g} at δ = {self.delta:g}"

    def params(self):
        return {"target": self.name, "target_value": self.value, "delta": self.delta}


def _check_success(value: float, baseline: float, name: str, why: str) -> float:
    v = check_scalar(value, name)
    if v <= baseline:
        raise UnachievableTargetError(
            f"{name} must be above the baseline {baseline:g} ({why}). Got {v:g}."
        )
    if v >= 1:
        raise UnachievableTargetError(f"{name} must be below 1 to constrain anything. Got {v:g}.")
    return v


@dataclass(frozen=True)
class Reidentification(RiskTarget):
    """Re-identification (singling out among ``population`` candidates) success ≤ value."""

    value: float
    population: int
    name = "reidentification"

    def __post_init__(self):
        n = check_scalar(self.population, "population", kind=int, low=2)
        v = _check_success(self.value, 1.0 / n, "reidentification",
                           "a uniform guess among the population")
        object.__setattr__(self, "population", n)
        object.__setattr__(self, "value", v)

    def measure(self, curve):
        return _risk.reidentification_risk(curve, self.population)

    def params(self):
        return {"target": self.name, "target_value": self.value, "population": self.population}


@dataclass(frozen=True)
class AttributeInference(RiskTarget):
    """Attribute-inference success ≤ value, for a known prior (list, or its maximum)."""

    value: float
    prior: float | tuple = 0.5
    name = "attribute-inference"

    def __post_init__(self):
        prior = self.prior if isinstance(self.prior, (int, float)) else tuple(self.prior)
        kappa = _risk.max_prior(prior)
        v = _check_success(self.value, kappa, "attribute-inference",
                           "guessing the most likely value")
        object.__setattr__(self, "prior", prior)
        object.__setattr__(self, "value", v)

    def measure(self, curve):
        return _risk.attribute_inference_risk(curve, self.prior)

    def params(self):
        prior = list(self.prior) if isinstance(self.prior, tuple) else self.prior
        return {"target": self.name, "target_value": self.value, "prior": prior}


@dataclass(frozen=True)
class Reconstruction(RiskTarget):
    """Reconstruction success ≤ value, for a baseline success κ in (0, 1)."""

    value: float
    baseline: float
    name = "reconstruction"

    def __post_init__(self):
        kappa = check_scalar(self.baseline, "baseline", low=0, high=1,
                             low_open=True, high_open=True)
        v = _check_success(self.value, kappa, "reconstruction", "the baseline success")
        object.__setattr__(self, "baseline", kappa)
        object.__setattr__(self, "value", v)

    def measure(self, curve):
        return _risk.reconstruction_risk(curve, self.baseline)

    def params(self):
        return {"target": self.name, "target_value": self.value, "baseline": self.baseline}


TARGET_NAMES = ("advantage", "tpr@fpr", "epsilon", "reidentification",
                "attribute-inference", "reconstruction")


def parse_target(spec: str, *, delta: float | None = None, population: int | None = None,
                 prior=None, baseline: float | None = None) -> RiskTarget:
    """Parse ``name=value`` (``tpr@fpr=TPR@FPR``) into a target.

    The extra inputs (``delta``, ``population``, ``prior``, ``baseline``) are required
    by the epsilon, re-identification, attribute-inference and reconstruction targets.

    Examples
    --------
    >>> from assay.privacy import parse_target
    >>> parse_target("tpr@fpr=0.1@0.01")
    TPRAtFPR(value=0.1, fpr=0.01)
    >>> parse_target("advantage=0.1")
    Advantage(value=0.1)
    """
    name, sep, raw = str(spec).partition("=")
    name = name.strip().lower()
    if not sep:
        raise InvalidParameterError(
            f"target must look like NAME=VALUE with NAME one of {', '.join(TARGET_NAMES)}. "
            f"Got {spec!r}."
        )
    check_option(name, "target name", TARGET_NAMES)
    if name == "tpr@fpr":
        tpr, at, fpr = raw.partition("@")
        if not at:
            raise InvalidParameterError(
                f"tpr@fpr target must look like tpr@fpr=TPR@FPR. Got {spec!r}.")
        return TPRAtFPR(_number(tpr, "tpr"), _number(fpr, "fpr"))
    value = _number(raw, name)
    if name == "advantage":
        return Advantage(value)
    if name == "epsilon":
        return Epsilon(value, _required(delta, "delta", name))
    if name == "reidentification":
        return Reidentification(value, _required(population, "population", name))
    if name == "attribute-inference":
        return AttributeInference(value, _required(prior, "prior", name))
    return Reconstruction(value, _required(baseline, "baseline", name))


def _number(text: str, name: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InvalidParameterError(f"{name} must be a number. Got {text.strip()!r}.") from None


def _required(value, name: str, target: str):
    if value is None:
        raise InvalidParameterError(f"{name} must be given for the {target} target. Got none.")
    return value


# ---------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------


@dataclass
class CalibrationResult:
    """Outcome of a calibration.

    Attributes
    ----------
    parameter_name : str
        ``"noise_multiplier"`` (DP-SGD) or ``"mu"`` (GDP).
    value : float
        The calibrated parameter (the safe end of the final bracket).
    target : RiskTarget
        What was asked.
    achieved : float
        The risk re-evaluated at ``value`` (≤ ``target.value``).
    bracket : tuple of float
        Final (unsafe, safe) parameter bracket; the unsafe end may be ``nan`` when the
        search met the edge of the allowed range.
    n_evaluations : int
        Risk evaluations (PLD constructions for DP-SGD), over all lattice levels.
    discretization : float or None
        PLD lattice step of the final check (DP-SGD only).
    inputs : dict
        Mechanism inputs (sample rate, steps), echoed for reports.
    """

    parameter_name: str
    value: float
    target: RiskTarget
    achieved: float
    bracket: tuple[float, float]
    n_evaluations: int
    discretization: float | None = None
    inputs: dict = field(default_factory=dict)

    @property
    def noise_multiplier(self) -> float:
        """Alias of ``value`` for DP-SGD."""
        return self.value

    def to_dict(self) -> dict:
        """Plain-JSON view."""
        return {
            self.parameter_name: self.value,
            **self.inputs,
            **self.target.params(),
            "achieved": self.achieved,
            "bracket": list(self.bracket),
            "n_evaluations": self.n_evaluations,
            "discretization": self.discretization,
        }


# ---------------------------------------------------------------------------------
# Search
# ---------------------------------------------------------------------------------


class _Evaluator:
    """Cached risk of DP-SGD at (σ, lattice step)."""

    def __init__(self, target: RiskTarget, sample_rate: float, steps: int):
        self.target, self.q, self.t = target, sample_rate, steps
        self.cache: dict[tuple[float, float], float] = {}

    def __call__(self, sigma: float, disc: float) -> float:
        key = (sigma, disc)
        if key not in self.cache:
            curve = PLDTradeOff(dpsgd_pld(self.q, self.t, sigma, disc), disc)
            self.cache[key] = float(self.target.measure(curve))
        return self.cache[key]


def _gdp_mu(target: RiskTarget) -> float:
    """Largest μ whose μ-GDP curve meets the target (the closed-form starting point)."""
    res = calibrate_gaussian(target)
    return res.value


def _sigma_from_mu(mu: float, q: float, steps: int) -> float:
    """Invert the CLT approximation μ = q√T·√(e^{1/σ²} − 1)."""
    x = (mu / (q * math.sqrt(steps))) ** 2
    if x <= 0:
        return _MAX_NOISE
    return float(np.clip(1.0 / math.sqrt(math.log1p(x)), _MIN_NOISE, _MAX_NOISE))


def _gdp_slope(target: RiskTarget, sigma: float, q: float, steps: int) -> float:
    """d log(risk) / d log(σ) under the CLT/GDP approximation (a first slope guess)."""
    def r(s):
        x = (q * math.sqrt(steps)) ** 2 * math.expm1(min(1.0 / s**2, 700.0))
        return max(target.measure(GaussianTradeOff(math.sqrt(x))), 1e-300)
    try:
        slope = (math.log(r(sigma * 1.01)) - math.log(r(sigma))) / math.log(1.01)
    except (ValueError, ZeroDivisionError):
        slope = -2.0
    return slope if slope < -1e-3 else -2.0


def _loglog_root(x1: float, r1: float, x2: float, r2: float, target: float) -> float | None:
    """Root of the secant through (log σ, log risk) points; None if degenerate."""
    y1, y2 = math.log(max(r1, 1e-300)), math.log(max(r2, 1e-300))
    if y1 == y2 or x1 == x2:
        return None
    slope = (y2 - y1) / (math.log(x2) - math.log(x1))
    if not slope < 0:
        return None
    return math.exp(math.log(x1) + (math.log(target) - y1) / slope)


class _Level:
    """Root search for the smallest safe σ on one PLD lattice.

    Keeps every evaluated point; predicts the root from a local log-log model (the
    secant of the closest points on each side, or one point plus a slope carried
    over from the previous level), then evaluates just across the prediction so that
    one good prediction closes the bracket in two evaluations. ``rtol`` is the
    bracket width relative to its safe end.
    """

    def __init__(self, risk: Callable[[float], float], target: float, rtol: float):
        self.risk, self.target, self.rtol = risk, target, rtol
        self.safe: dict[float, float] = {}
        self.unsafe: dict[float, float] = {}

    def eval(self, x: float) -> bool:
        r = self.risk(x)
        (self.safe if r <= self.target else self.unsafe)[x] = r
        return r <= self.target

    def ends(self) -> tuple[float | None, float | None]:
        hi = min(self.safe) if self.safe else None
        below = [u for u in self.unsafe if hi is None or u < hi]
        return (max(below) if below else None), hi

    @staticmethod
    def _end(lo: float | None, hi: float | None) -> float:
        """`hi`, else `lo`: the bracket's end that is known (one is, after `eval`)."""
        if hi is not None:
            return hi
        if lo is None:
            raise RuntimeError("no noise level has been evaluated")
        return lo

    def root(self) -> float:
        """The root interpolated inside the bracket (log-log secant), else its safe end."""
        lo, hi = self.ends()
        if lo is None or hi is None:
            return self._end(lo, hi)
        x = _loglog_root(lo, self.unsafe[lo], hi, self.safe[hi], self.target)
        return x if x is not None and lo <= x <= hi else 0.5 * (lo + hi)

    def solve(self, start: float, slope: float,
              accept_safe: bool = False) -> tuple[float | None, float]:
        """Bracket the root from ``start``; return its (unsafe, safe) ends.

        With ``accept_safe`` a safe point whose predicted root (secant to the nearest
        unsafe point, else the carried slope) is within ``rtol`` below it ends the
        search without evaluating the unsafe side (the unsafe end is then None).
        """
        self.eval(start)
        push = 1.0  # grows when predictions keep landing on the same side
        last = start
        for _ in range(80):
            lo, hi = self.ends()
            tol = self.rtol * self._end(lo, hi)
            if lo is not None and hi is not None and hi - lo <= tol:
                return lo, hi
            if accept_safe and hi is not None and self.predict_root(slope) >= hi - tol:
                return lo, hi
            if lo is not None and hi is not None:
                w = hi - lo
                x = _loglog_root(lo, self.unsafe[lo], hi, self.safe[hi], self.target)
                if x is None or not lo < x < hi:
                    x = 0.5 * (lo + hi)
                elif abs(x - last) < 0.5 * tol:
                    # The model agrees with the last point: step just across the
                    # predicted root so that the bracket closes in one evaluation.
                    x += 0.25 * tol if last == lo else -0.25 * tol
                # keep away from the ends so the bracket always shrinks
                x = min(max(x, lo + 0.02 * w), hi - 0.02 * w)
            elif hi is not None:  # only safe points: look below for an unsafe one
                if hi <= _MIN_NOISE:
                    return None, hi
                x = self._predict(hi, self.safe, slope) - 0.5 * tol * push
                x = max(min(x, hi - 0.5 * tol * push), _MIN_NOISE)
                push *= 2
            else:  # only unsafe points: look above for a safe one
                lo = self._end(None, lo)
                if lo >= _MAX_NOISE:
                    raise UnachievableTargetError(
                        f"noise_multiplier must be at most {_MAX_NOISE:g}, but the target "
                        f"needs more noise than that. Got target {self.target:g}."
                    )
                x = self._predict(lo, self.unsafe, slope) + 0.5 * tol * push
                x = min(max(x, lo + 0.5 * tol * push), _MAX_NOISE)
                push *= 2
            last = x
            self.eval(x)
        lo, hi = self.ends()
        if hi is None:  # the unsafe side stops at _MAX_NOISE, so a safe end is found
            raise RuntimeError("no safe noise level was found")
        return lo, hi

    def predict_root(self, slope: float) -> float:
        """The root predicted from the bracket, else from the nearest point and ``slope``."""
        lo, hi = self.ends()
        if lo is not None and hi is not None:
            return self.root()
        x0, side = self._end(lo, hi), (self.safe if hi is not None else self.unsafe)
        r0 = max(side[x0], 1e-300)
        return math.exp(math.log(x0) + (math.log(self.target) - math.log(r0)) / slope)

    def _predict(self, x0: float, side: dict[float, float], slope: float) -> float:
        pts = sorted(side, key=lambda x: abs(x - x0))[:2]
        if len(pts) == 2:
            root = _loglog_root(pts[0], side[pts[0]], pts[1], side[pts[1]], self.target)
            if root is not None:
                return root
        r0 = max(side[x0], 1e-300)
        return math.exp(math.log(x0) + (math.log(self.target) - math.log(r0)) / slope)

    def slope(self, default: float) -> float:
        """d log risk / d log σ fitted (least squares) over every point of this level.

        The two ends of a closed bracket are too close for a secant: the lattice's
        rounding wiggles the risk by more than the bracket moves it.
        """
        pts = {**self.safe, **self.unsafe}
        if len(pts) < 2:
            return default
        x = np.log(np.fromiter(pts, float))
        y = np.log(np.maximum(np.fromiter(pts.values(), float), 1e-300))
        if np.ptp(x) == 0:
            return default
        s = float(np.polyfit(x, y, 1)[0])
        return s if s < -1e-3 else default


# Lattices: a pessimistic connect-the-dots PLD over-states the root σ by about c·Δ²
# (measured: the shift shrinks 10-12× per √10 refinement). Two coarse lattices give c
# (Richardson); the final lattice is the coarsest whose c·Δ² fits the error budget.
_GUIDE, _PROBE, _FINEST = 10 ** -2.5, 1e-3, 1e-5  # (coarser, probe, finest) lattice steps


def _final_lattice(c: float, budget: float) -> float:
    """Coarsest lattice (≤ the probe's) whose estimated σ over-statement c·Δ² ≤ budget."""
    if c <= 0:
        return _PROBE
    d = math.sqrt(budget / c)
    # round down to 2 significant digits so the lattice is a readable number
    exp = math.floor(math.log10(d))
    d = math.floor(d / 10 ** (exp - 1)) * 10 ** (exp - 1)
    return float(min(max(d, _FINEST), _PROBE))


def calibrate_dpsgd(target: RiskTarget, *, sample_rate: float, steps: int,
                    discretization: float | None = None,
                    xtol: float = 2.5e-4) -> CalibrationResult:
    """Smallest DP-SGD noise multiplier whose risk meets ``target`` (safe side).

    The root is bracketed on a coarse PLD lattice (3.2e-3, cheap), probed once on a
    finer one (1e-3), and finished on the coarsest lattice whose estimated
    over-statement of σ fits the budget (the shift between the two coarse roots gives
    the constant of the Δ² error). Every lattice is pessimistic and the returned σ is
    a point evaluated safe on the final lattice, so the result never reports less
    risk than the mechanism has. It is also tight: within about ``3·xtol`` (0.075 %)
    of the smallest safe σ (``xtol`` of search slack plus at most ``2·xtol`` of
    lattice over-statement), which ``benchmarks/calibration.py`` checks against an
    independent dp_accounting computation.

    Parameters
    ----------
    target : RiskTarget
        E.g. ``Advantage(0.1)``, ``TPRAtFPR(0.1, fpr=0.01)``, ``Epsilon(3, delta=1e-5)``.
    sample_rate : float
        Poisson sampling probability q in (0, 1].
    steps : int
        Number of steps T ≥ 1.
    discretization : float or None, default=None
        PLD lattice step of the final check. ``None`` chooses it per problem as above
        (between 1e-5 and 1e-3). A given step is used as is: tight for that lattice,
        which over-states σ when coarse (by ~0.5 % at 1e-3 for small targets).
    xtol : float, default=2.5e-4
        Search tolerance relative to σ: the returned σ is at most ``xtol`` above the
        final lattice's root (and the auto lattice's error budget is ``2·xtol``).

    Returns
    -------
    CalibrationResult
        ``value`` is safe: its re-evaluated risk (``achieved``) is ≤ the target.

    Raises
    ------
    UnachievableTargetError
        If the target needs a noise multiplier above 1000.
    """
    if not isinstance(target, RiskTarget):
        raise InvalidParameterError(f"target must be a RiskTarget. Got {type(target).__name__}.")
    q, t, _ = _check_dpsgd(sample_rate, steps, 1.0)
    disc = None if discretization is None else _check_discretization(discretization)
    xtol = check_scalar(xtol, "xtol", low=1e-6, high=0.1)
    evaluate = _Evaluator(target, q, t)

    def level(d: float, rtol: float) -> _Level:
        return _Level(lambda s: evaluate(s, d), target.value, rtol)

    x = _sigma_from_mu(_gdp_mu(target), q, t)
    slope = _gdp_slope(target, x, q, t)
    # Root on the probe lattice (the final one when a step is given), from the
    # closed-form start: secant steps until a safe point is within xtol of the root.
    final_disc = _PROBE if disc is None else disc
    final = level(final_disc, xtol)
    lo, x = final.solve(x, slope, accept_safe=True)
    slope = final.slope(slope)
    if disc is None and x > _MIN_NOISE:
        # One evaluation on a coarser lattice at the probe's root: how much the root
        # moves between the two lattices gives c of the c·Δ² over-statement.
        root = final.predict_root(slope)
        r_guide = max(evaluate(root, _GUIDE), 1e-300)
        root_guide = root * (target.value / r_guide) ** (1.0 / slope)
        c = (root_guide - root) / root / (_GUIDE**2 - _PROBE**2)
        final_disc = _final_lattice(c, 1.5 * xtol)
        if final_disc < _PROBE:
            # Finish on the finer lattice just above the predicted root: one safe
            # evaluation usually ends it.
            x_hat = root * (1 - c * (_PROBE**2 - final_disc**2))
            final = level(final_disc, xtol)
            start = float(min(max(x_hat * (1 + 0.5 * xtol), _MIN_NOISE), _MAX_NOISE))
            lo, x = final.solve(start, slope, accept_safe=True)
    achieved = evaluate(x, final_disc)
    return CalibrationResult(
        "noise_multiplier", x, target, achieved,
        (math.nan if lo is None else lo, x), len(evaluate.cache), final_disc,
        {"sample_rate": q, "steps": t},
    )


#: Upper end of every bisection over a privacy parameter (μ of μ-GDP here, ε of
#: (ε, δ)-DP in `assay.privacy.training.train.epsilon_for_target`, the ε a one-run audit
#: refutes in `assay.privacy.training.onerun.epsilon_lower_bound`). A power of two, so the
#: doubling bracket 1, 2, 4, ... lands on it exactly; beyond it no measure moves (μ-GDP at
#: μ = 64 has advantage 1 − 1e-224, e^64 ≈ 6e27), so a search that reaches it returns it.
SEARCH_MAX = 64.0
#: Width of the final bracket of those bisections: the answer is within this of the
#: threshold, on its safe side.
SEARCH_XTOL = 1e-9


def largest_meeting(meets: Callable[[float], bool], *, upper: float = SEARCH_MAX,
                    xtol: float = SEARCH_XTOL) -> tuple[float, float, int]:
    """Largest x in [0, `upper`] with ``meets(x)``, for a condition that holds up to a
    threshold and fails above it: doubling from 1, then bisection.

    Parameters
    ----------
    meets : callable
        ``meets(x) -> bool``; true on [0, threshold], false above (0 itself is not tried:
        callers that can fail at 0 check it first).
    upper : float, default=SEARCH_MAX
        Largest x searched; returned when the condition still holds there.
    xtol : float, default=SEARCH_XTOL
        The bisection stops when the bracket is at most this wide.

    Returns
    -------
    (lo, hi, n_evaluations)
        ``lo`` meets the condition (the answer); ``hi`` is the nearest point known to fail
        it (``upper`` itself when none does); ``n_evaluations`` calls of `meets`.

    Examples
    --------
    >>> lo, hi, n = largest_meeting(lambda x: x * x <= 2.0)
    >>> round(lo, 8), hi - lo <= SEARCH_XTOL, lo * lo <= 2.0
    (1.41421356, True, True)
    """
    n = 0
    lo, hi = 0.0, 1.0
    while True:
        n += 1
        if not meets(hi):
            break
        if hi >= upper:
            return upper, upper, n
        lo, hi = hi, min(2.0 * hi, upper)
    while hi - lo > xtol:
        n += 1
        mid = 0.5 * (lo + hi)
        if meets(mid):
            lo = mid
        else:
            hi = mid
    return lo, hi, n


def calibrate_gaussian(target: RiskTarget, *, mu_max: float = SEARCH_MAX,
                       xtol: float = SEARCH_XTOL) -> CalibrationResult:
    """Largest μ such that μ-GDP meets ``target`` (risk re-checked at the returned μ),
    by `largest_meeting`.

    Examples
    --------
    The largest μ (least noise) whose attack advantage stays within 0.1:

    >>> from assay.privacy import calibrate_gaussian, parse_target
    >>> result = calibrate_gaussian(parse_target("advantage=0.1"))
    >>> result.parameter_name, round(result.value, 4), round(result.achieved, 4)
    ('mu', 0.2513, 0.1)
    """
    if not isinstance(target, RiskTarget):
        raise InvalidParameterError(f"target must be a RiskTarget. Got {type(target).__name__}.")
    risk = lambda mu: target.measure(GaussianTradeOff(mu))  # noqa: E731
    lo, hi, n = largest_meeting(lambda mu: risk(mu) <= target.value, upper=mu_max, xtol=xtol)
    return CalibrationResult("mu", lo, target, float(risk(lo)), (hi, lo), n)


# ---------------------------------------------------------------------------------
# Noise vs risk
# ---------------------------------------------------------------------------------


@dataclass
class NoiseRiskCurve:
    """Risk of DP-SGD as a function of the noise multiplier.

    ``tpr[i, j]`` is the TPR bound at ``fprs[j]`` for ``noise_multipliers[i]``;
    ``epsilon`` is present when a δ was given.
    """

    noise_multipliers: np.ndarray
    advantage: np.ndarray
    fprs: np.ndarray
    tpr: np.ndarray
    sample_rate: float
    steps: int
    delta: float | None = None
    epsilon: np.ndarray | None = None

    def to_dict(self) -> dict:
        """Plain-JSON view (one row per noise multiplier)."""
        rows = []
        for i, s in enumerate(self.noise_multipliers):
            row = {"noise_multiplier": float(s), "advantage": float(self.advantage[i]),
                   "tpr_at_fpr": {f"{f:g}": float(v) for f, v in zip(self.fprs, self.tpr[i])}}
            if self.epsilon is not None:
                row["epsilon"] = float(self.epsilon[i])
            rows.append(row)
        return {"sample_rate": self.sample_rate, "steps": self.steps, "delta": self.delta,
                "curve": rows}


def noise_risk_curve(sample_rate: float, steps: int, noise_multipliers: Sequence[float],
                     fprs: Sequence[float] = (0.001, 0.01, 0.1), *, delta: float | None = None,
                     discretization: float = 1e-3) -> NoiseRiskCurve:
    """Advantage and TPR at ``fprs`` (and ε at ``delta``) for each noise multiplier."""
    sigmas = [_check_dpsgd(sample_rate, steps, s)[2] for s in np.atleast_1d(noise_multipliers)]
    q, t, _ = _check_dpsgd(sample_rate, steps, 1.0)
    fpr_arr = np.array([check_scalar(f, "fprs", low=0, high=1) for f in np.atleast_1d(fprs)])
    if delta is not None:
        delta = check_scalar(delta, "delta", low=0, high=1, low_open=True, high_open=True)
    disc = _check_discretization(discretization)
    adv, tpr, eps = [], [], []
    for s in sigmas:
        curve = PLDTradeOff(dpsgd_pld(q, t, s, disc), disc)
        adv.append(curve.advantage())
        tpr.append(curve.tpr(fpr_arr))
        if delta is not None:
            eps.append(curve.epsilon(delta))
    return NoiseRiskCurve(np.array(sigmas), np.array(adv), fpr_arr, np.array(tpr).reshape(
        len(sigmas), -1), q, t, delta, np.array(eps) if delta is not None else None)
