"""The DP guarantee a model was trained with, as the privacy section reads it, and its
f-DP bound on an attack's ROC (`BoundCurve`, drawn beside the measured attack)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from assay._serial import Serial
from assay._validation import InvalidParameterError, check_scalar

__all__ = ["BoundCurve", "DPGuarantee"]


@dataclass(frozen=True)
class DPGuarantee(Serial):
    """The DP guarantee a model was trained with (drawn as the theory curve).

    Either DP-SGD settings (``noise_multiplier``, ``sample_rate``, ``steps``) or an
    (ε, δ) pair; not both. Every value is checked here, so a bad guarantee fails before
    any model is trained.

    Examples
    --------
    >>> from assay.privacy import DPGuarantee
    >>> claim = DPGuarantee(epsilon=1.0, delta=1e-5)
    >>> claim.kind, claim.describe()
    ('approx', '(ε = 1, δ = 1e-05)-DP')
    """

    noise_multiplier: float | None = None
    sample_rate: float | None = None
    steps: int | None = None
    epsilon: float | None = None
    delta: float | None = None

    # The values as given, None fields left out.
    __json_plain__ = True
    __json_omit_none__ = True

    def __post_init__(self) -> None:
        sgd = (self.noise_multiplier, self.sample_rate, self.steps)
        eps = (self.epsilon, self.delta)
        if any(v is not None for v in sgd) and any(v is not None for v in eps):
            raise InvalidParameterError(
                "dp must be either DP-SGD settings (noise_multiplier, sample_rate, steps) or "
                f"(epsilon, delta), not both. Got {self.to_dict()}.")
        if any(v is not None for v in sgd) and any(v is None for v in sgd):
            raise InvalidParameterError(
                "dp must give all three of noise_multiplier, sample_rate and steps. "
                f"Got {self.to_dict()}.")
        if self.noise_multiplier is not None:
            check_scalar(self.noise_multiplier, "dp noise_multiplier", low=0, low_open=True)
            check_scalar(self.sample_rate, "dp sample_rate", low=0, high=1, low_open=True)
            check_scalar(self.steps, "dp steps", kind=int, low=1)
        if self.delta is not None and self.epsilon is None:
            raise InvalidParameterError(
                f"dp epsilon must be given with delta. Got {self.to_dict()}.")
        if self.epsilon is not None:
            check_scalar(self.epsilon, "dp epsilon", low=0)
        if self.delta is not None:
            check_scalar(self.delta, "dp delta", low=0, high=1, high_open=True)

    @property
    def kind(self) -> str:
        """``"dpsgd"``, ``"approx"`` or ``"none"``."""
        if self.noise_multiplier is not None:
            return "dpsgd"
        if self.epsilon is not None:
            return "approx"
        return "none"

    def tradeoff(self):
        """The f-DP trade-off curve of the guarantee (`assay.privacy.theory.accounting`)."""
        from assay.privacy.theory import accounting
        rate, steps, sigma = self.sample_rate, self.steps, self.noise_multiplier
        if self.kind == "dpsgd" and rate is not None and steps is not None \
                and sigma is not None:  # the kind says all three are set
            return accounting.dpsgd(rate, steps, sigma, discretization=1e-3)
        return accounting.approximate_dp(cast(float, self.epsilon), self.delta or 0.0)

    def describe(self) -> str:
        """Plain-language description for the report."""
        if self.kind == "dpsgd":
            return (f"DP-SGD with noise multiplier σ = {self.noise_multiplier:g}, "
                    f"sample rate q = {self.sample_rate:g}, {self.steps} steps")
        return f"(ε = {self.epsilon:g}, δ = {self.delta or 0:g})-DP"


@dataclass
class BoundCurve(Serial):
    """An f-DP bound on the attack ROC: the most any attacker can reach under a guarantee.

    Attributes
    ----------
    description : str
    guarantee : DPGuarantee
    fpr, tpr : list of float
        The bound on the attack's ROC grid.
    tpr_at_fpr : dict of float to float
        The bound at the audit's FPR levels.
    advantage : float
    exceeded_at : list of float
        FPR levels where the measured attack's lower 95 % bound is above the bound.
    """

    description: str
    guarantee: DPGuarantee
    fpr: list[float]
    tpr: list[float]
    tpr_at_fpr: dict[float, float] = field(default_factory=dict)
    advantage: float | None = None
    exceeded_at: list[float] = field(default_factory=list)

    __json_plain__ = True
    __json_required__ = ("tpr_at_fpr",)
