"""The privacy section of ``assay audit``: its options, flags, checks, schema and page.

Declared through the ``assay.sections`` entry point. Light to import (the CLI builds
its flags from it); the work is in `assay.privacy.membership.run` and the page in
`assay.privacy.membership.page`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from assay._validation import InvalidParameterError, check_option, check_scalar
from assay.section import Flag, Options
from assay.section.base import SectionBase

__all__ = ["PrivacyOptions", "PrivacySection", "SECTION"]

#: Noise multipliers on the noise-vs-risk curve.
NOISE_GRID = (0.4, 0.6, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0)
#: Attacks the section can run (`assay.privacy.membership.attacks.ATTACKS`).
ATTACK_NAMES = ("loss", "lira", "lira_offline", "rmia", "rmia_offline")


@dataclass(frozen=True)
class PrivacyOptions(Options):
    """Options of the privacy section (``[privacy]`` in ``audit.toml``).

    Parameters
    ----------
    attacks : tuple of str, default=("loss", "lira", "rmia")
    fprs : tuple of float, default=(0.1, 0.01, 0.001)
        FPR levels of the TPR figures.
    risk_target : str, default="tpr@fpr=0.01@0.001"
        Target of the noise calibration (`assay.privacy.theory.calibrate.parse_target`).
    noise_grid : tuple of float
        Noise multipliers of the noise-vs-risk curve (empty: no curve, no calibration).
    min_gap : float, default=0.05
        Smallest excess of a group's attack AUC over the overall AUC that is flagged (a
        significant but smaller gap is reported, not flagged).
    n_records : int, default=20
        Records listed with the largest membership effect.
    dp_noise_multiplier, dp_sample_rate, dp_steps : optional
        DP-SGD settings the model was trained with (all three), or
    dp_epsilon, dp_delta : optional
        the (ε, δ)-DP guarantee it claims; drawn beside the measured attack.
    prior : float in (0, 1), optional
        Share of members among an attacker's candidates for the risk statement (people
        identified and precision); default the audit's own share of members.
    """

    attacks: tuple[str, ...] = ("loss", "lira", "rmia")
    fprs: tuple[float, ...] = (0.1, 0.01, 0.001)
    risk_target: str = "tpr@fpr=0.01@0.001"
    noise_grid: tuple[float, ...] = NOISE_GRID
    min_gap: float = 0.05
    n_records: int = 20
    dp_noise_multiplier: float | None = None
    dp_sample_rate: float | None = None
    dp_steps: int | None = None
    dp_epsilon: float | None = None
    dp_delta: float | None = None
    prior: float | None = None

    def __post_init__(self) -> None:
        attacks = (self.attacks,) if isinstance(self.attacks, str) else tuple(self.attacks)
        if not attacks:
            raise InvalidParameterError(
                f"privacy.attacks must name at least one of {', '.join(ATTACK_NAMES)}. Got [].")
        for name in attacks:
            check_option(name, "privacy.attacks", ATTACK_NAMES)
        object.__setattr__(self, "attacks", tuple(dict.fromkeys(attacks)))
        fprs = tuple(check_scalar(f, "privacy.fprs", low=0, high=1, low_open=True,
                                  high_open=True) for f in self.fprs)
        if not fprs:
            raise InvalidParameterError("privacy.fprs must hold at least one FPR in (0, 1). "
                                        "Got [].")
        object.__setattr__(self, "fprs", tuple(sorted(set(fprs), reverse=True)))
        object.__setattr__(self, "noise_grid", tuple(
            check_scalar(s, "privacy.noise_grid", low=0.1, high=1000) for s in self.noise_grid))
        check_scalar(self.min_gap, "privacy.min_gap", low=0, high=0.5)
        check_scalar(self.n_records, "privacy.n_records", kind=int, low=0)
        if self.prior is not None:
            check_scalar(self.prior, "privacy.prior", low=0, high=1, low_open=True,
                         high_open=True)
        if not isinstance(self.risk_target, str):
            raise InvalidParameterError(
                f"privacy.risk_target must be text such as tpr@fpr=0.01@0.001. "
                f"Got {self.risk_target!r}.")
        try:
            self.risk  # noqa: B018 - a bad target fails here, before any training
        except InvalidParameterError as exc:
            raise InvalidParameterError(f"privacy.risk_target (--risk-target): {exc}") from None
        self.guarantee  # noqa: B018 - validates the DP settings

    @cached_property
    def risk(self):
        """`risk_target` parsed once (`assay.privacy.theory.calibrate.RiskTarget`)."""
        from assay.privacy.theory.calibrate import parse_target

        return parse_target(self.risk_target)

    @property
    def guarantee(self):
        """The claimed `DPGuarantee`, or None."""
        from assay.privacy.theory.guarantee import DPGuarantee

        values = dict(noise_multiplier=self.dp_noise_multiplier, sample_rate=self.dp_sample_rate,
                      steps=self.dp_steps, epsilon=self.dp_epsilon, delta=self.dp_delta)
        if all(v is None for v in values.values()):
            return None
        return DPGuarantee(noise_multiplier=self.dp_noise_multiplier,
                           sample_rate=self.dp_sample_rate, steps=self.dp_steps,
                           epsilon=self.dp_epsilon, delta=self.dp_delta)


class PrivacySection(SectionBase):
    """Membership inference (LOSS, LiRA, RMIA) beside the DP guarantee and the fix."""

    name = "privacy"
    title = "Privacy: membership inference"
    options_type = PrivacyOptions
    flags = (
        Flag("attacks", "Attacks: loss, lira, lira_offline, rmia, rmia_offline "
             "(comma-separated).", kind="list"),
        Flag("fprs", "FPR levels of the TPR figures, e.g. 0.1,0.01,0.001.", kind="list"),
        Flag("risk_target", "Noise calibration target, e.g. tpr@fpr=0.01@0.001 or "
             "advantage=0.1."),
        Flag("min_gap", "Smallest group AUC excess over the overall AUC that is flagged.",
             kind="float"),
        Flag("dp_noise_multiplier", "DP-SGD noise multiplier the model was trained with.",
             kind="float"),
        Flag("dp_sample_rate", "DP-SGD sample rate.", kind="float"),
        Flag("dp_steps", "DP-SGD steps.", kind="int"),
        Flag("dp_epsilon", "(ε, δ)-DP guarantee: ε.", kind="float"),
        Flag("dp_delta", "(ε, δ)-DP guarantee: δ.", kind="float"),
        Flag("prior", "Share of members among an attacker's candidates for the risk "
             "statement (default: the audit's own share).", kind="float"),
    )
    payload = "assay.privacy.membership.run:PrivacyPayload"
    schema_file = "assay.privacy.membership:schema.json"
    schema_from = "assay.privacy.membership.section:payload_schema"
    #: What the section audits: classifiers, and regression models on their residuals.
    tasks = ("classification", "regression")
    #: Options refused on a regression model, and why.
    regression_refused = {
        "risk_target": "the noise calibration is built for DP-SGD classifiers",
        "noise_grid": "the noise calibration is built for DP-SGD classifiers",
        "prior": "the risk statement (people identified) is not built for regression yet",
    }
    checker = "assay.privacy.membership.run:check_privacy"
    runner = "assay.privacy.membership.run:run_privacy"
    pager = "assay.privacy.membership.page:privacy_page"

    def check(self, context: Any, options: PrivacyOptions) -> None:
        if context.task == "regression":
            from assay.privacy.membership.regression_audit import REGRESSION_ATTACKS

            other = [a for a in options.attacks if a not in REGRESSION_ATTACKS]
            if other:
                raise InvalidParameterError(
                    f"privacy.attacks must be among {', '.join(REGRESSION_ATTACKS)} for a "
                    f"regression target (attacks on residuals). Got {', '.join(other)}.")
        super().check(context, options)

    def run(self, context: Any, options: PrivacyOptions) -> Any:
        if context.task == "regression":
            from assay.section.base import load_attribute

            return load_attribute("assay.privacy.membership.regression_audit:"
                                  "run_regression_privacy")(self, context, options)
        return super().run(context, options)

    def page(self, section: Any, result: Any) -> Any:
        if getattr(section.data, "task", None) == "regression":
            from assay.privacy.membership.regression_audit import regression_privacy_page

            return regression_privacy_page(section, result)
        return super().page(section, result)

    def applies(self, context: Any, options: PrivacyOptions) -> bool:
        return context.population is not None and context.population.n_models >= 2


def payload_schema() -> dict[str, Any]:
    """The payload schema of a classifier's audit, or of a regression model's."""
    from assay.audit.regression import task_schema

    return task_schema("assay.privacy.membership:schema.json",
                       "assay.privacy.membership:regression.schema.json")


SECTION = PrivacySection()
