"""The DP section of ``assay audit``: risk- against ε-calibrated DP-SGD, each attacked.

Declared through the ``assay.sections`` entry point. Light to import (the CLI builds its
flags from it); the work is in `assay.privacy.training.run` and the page in
`assay.privacy.training.page`. Off by default (it trains several more populations):
``[dp] enabled = true`` or ``--dp``. With ``deploy = true`` it trains instead the one
deployable model of ``assay train-dp`` and exports it into the run's output folder
(`assay.privacy.training.deploy`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from assay._validation import InvalidParameterError, check_option, check_scalar
from assay.section import Flag, Options
from assay.section.base import SectionBase

__all__ = ["DEFAULT_CANARIES", "DPOptions", "DPSection", "SECTION", "canaries_for",
           "canary_note", "check_canaries"]

_ATTACKS = ("loss", "lira", "lira_offline", "rmia", "rmia_offline")

#: Canaries of the one-run audit when ``dp.canaries`` is not given (a smaller table: all
#: its rows).
DEFAULT_CANARIES = 500


@dataclass(frozen=True)
class DPOptions(Options):
    """Options of the DP section (``[dp]`` in ``audit.toml``).

    Parameters
    ----------
    enabled : bool, default=False
        Train and audit the DP populations (several populations: off unless asked).
    risk_target : str, default="tpr@fpr=0.05@0.01"
        The attack-risk target (`assay.privacy.theory.calibrate.parse_target`).
    delta : float, default=1e-5
        δ of the ε-calibrated comparison.
    epochs, batch_size, max_grad_norm : float, int, float
        DP-SGD settings (q = batch_size / half the rows, T = ceil(epochs / q)).
    lr : float or None
        SGD learning rate (None: the learner's default).
    learner : {"auto", "logreg", "mlp"}
        "auto": the audit's learner when it is ``mlp``, else logistic regression.
    models : int, default=8
        Models of each DP population (even, at least 6 for LiRA).
    attacks : tuple of str, default=("lira", "rmia")
    fprs : tuple of float, default=(0.001, 0.01, 0.1)
    noise_grid : tuple of float, default=(0.5, 2.0)
        Further σ trained for the noise-vs-risk curve (on a regression target too, in an
        audit: populations of DP linear regressions attacked on their residuals).
    canaries : int or None, default=None
        Canaries of the one-run audit (0: none): mislabelled rows for classes; on a
        regression target, rows whose target is set to the public bound farther from
        their value. At most the table's rows; None: 500, or every row of a smaller table
        (said in the summary).
    deploy : bool, default=False
        Instead of the comparison, train the one deployable DP-SGD model: one seeded
        train/test split (`test_size`), σ calibrated to the risk target for that fit's own
        q and T, exported into the run's output folder as ``model.npz`` and ``model.json``
        (no pickle). Needs no population of the audit.
    test_size : float, default=0.2
        With `deploy`: share of rows held out for the deployed model's accuracy.
    deploy_audit : bool, default=False
        With `deploy`: also attack a population of `models` DP models at the deployed
        model's settings (`attacks`), check its ROC against the guarantee, and run the
        one-run audit (`canaries`).
    target_bounds : "LO:HI" or (LO, HI), optional
        Public bounds of a continuous target, required on one: DP linear regression
        clips the target into them (never read off the data: that would leak it). On a
        regression target the section trains, exports and (in an audit, or with
        `deploy_audit`) attacks the DP linear regression on its residuals
        (`assay.privacy.training.regression`).
    """

    enabled: bool = False
    risk_target: str = "tpr@fpr=0.05@0.01"
    delta: float = 1e-5
    epochs: float = 5.0
    batch_size: int = 256
    max_grad_norm: float = 1.0
    lr: float | None = None
    learner: str = "auto"
    models: int = 8
    attacks: tuple[str, ...] = ("lira", "rmia")
    fprs: tuple[float, ...] = (0.001, 0.01, 0.1)
    noise_grid: tuple[float, ...] = (0.5, 2.0)
    canaries: int | None = None
    deploy: bool = False
    test_size: float = 0.2
    deploy_audit: bool = False
    target_bounds: tuple[float, float] | str | None = None  # "LO:HI" is read into the pair

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise InvalidParameterError(f"dp.enabled must be true or false. Got {self.enabled!r}.")
        if not isinstance(self.risk_target, str):
            raise InvalidParameterError(f"dp.risk_target must be text such as "
                                        f"tpr@fpr=0.05@0.01. Got {self.risk_target!r}.")
        check_scalar(self.delta, "dp.delta", low=0, high=1, low_open=True, high_open=True)
        check_scalar(self.epochs, "dp.epochs", low=0, low_open=True, high=10_000)
        check_scalar(self.batch_size, "dp.batch_size", kind=int, low=1)
        check_scalar(self.max_grad_norm, "dp.max_grad_norm", low=0, low_open=True)
        if self.lr is not None:
            check_scalar(self.lr, "dp.lr", low=0, low_open=True)
        check_option(self.learner, "dp.learner", ("auto", "logreg", "mlp"))
        check_scalar(self.models, "dp.models", kind=int, low=6)
        if self.models % 2:
            raise InvalidParameterError(f"dp.models must be an even integer in [6, inf). "
                                        f"Got {self.models}.")
        attacks = (self.attacks,) if isinstance(self.attacks, str) else tuple(self.attacks)
        if not attacks:
            raise InvalidParameterError("dp.attacks must name at least one attack. Got [].")
        for name in attacks:
            check_option(name, "dp.attacks", _ATTACKS)
        object.__setattr__(self, "attacks", tuple(dict.fromkeys(attacks)))
        fprs = tuple(check_scalar(f, "dp.fprs", low=0, high=1, low_open=True, high_open=True)
                     for f in self.fprs)
        if not fprs:
            raise InvalidParameterError("dp.fprs must hold at least one FPR in (0, 1). Got [].")
        object.__setattr__(self, "fprs", tuple(sorted(set(fprs))))
        object.__setattr__(self, "noise_grid", tuple(
            check_scalar(s, "dp.noise_grid", low=0.1, high=1000) for s in self.noise_grid))
        if self.canaries is not None:
            check_scalar(self.canaries, "dp.canaries", kind=int, low=0)
        if self.canaries is not None and 0 < self.canaries < 10:
            raise InvalidParameterError(f"dp.canaries must be 0 or at least 10. "
                                        f"Got {self.canaries}.")
        for name in ("deploy", "deploy_audit"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidParameterError(f"dp.{name} must be true or false. "
                                            f"Got {getattr(self, name)!r}.")
        check_scalar(self.test_size, "dp.test_size", low=0, high=1, low_open=True,
                     high_open=True)
        if self.target_bounds is not None:
            from assay.learners.dpsgd import parse_target_bounds

            object.__setattr__(self, "target_bounds",
                               parse_target_bounds(self.target_bounds, "dp.target_bounds"))
        self.risk  # noqa: B018 - a bad target fails here, before any training

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if self.target_bounds is None:  # a classification audit's options as before
            del out["target_bounds"]
        return out

    @cached_property
    def risk(self):
        """`risk_target` parsed once, with `delta` (`assay.privacy.theory.calibrate.RiskTarget`)."""
        from assay.privacy.theory.calibrate import parse_target

        return parse_target(self.risk_target, delta=self.delta)


class DPSection(SectionBase):
    """DP-SGD calibrated to the risk target against ε-calibrated, each audited."""

    name = "dp"
    title = "DP training: risk-calibrated against ε-calibrated"
    options_type = DPOptions
    flags = (
        Flag("enabled", "Train and audit DP populations (risk- vs ε-calibrated).", kind="bool",
             name="--dp"),
        Flag("risk_target", "Attack-risk target of the DP training, e.g. tpr@fpr=0.05@0.01.",
             name="--dp-risk"),
        Flag("epochs", "DP-SGD epochs.", kind="float", name="--dp-epochs"),
        Flag("batch_size", "DP-SGD expected batch size.", kind="int", name="--dp-batch-size"),
        Flag("max_grad_norm", "DP-SGD clipping norm.", kind="float", name="--dp-max-grad-norm"),
        Flag("models", "Models per DP population.", kind="int", name="--dp-models"),
        Flag("canaries", "Canaries of the one-run audit (0: none; default 500, at most "
             "the table's rows).", kind="int",
             name="--dp-canaries"),
        Flag("target_bounds", "Public bounds LO:HI of a continuous target (DP linear "
             "regression clips it into them).", name="--dp-target-bounds"),
    )
    payload = "assay.privacy.training.run:DPPayload"
    schema_file = "assay.privacy.training:schema.json"
    schema_from = "assay.privacy.training.section:payload_schema"
    checker = "assay.privacy.training.run:check_dp"
    runner = "assay.privacy.training.run:run_dp"
    pager = "assay.privacy.training.page:dp_page"
    #: Classifiers, and (DP linear regression) regression targets.
    tasks = ("classification", "regression")

    def uses_population(self, config: Any) -> bool:
        """The deployed model is trained on its own split: no population is needed."""
        return not config.options(self.name).deploy

    def applies(self, context: Any, options: DPOptions) -> bool:
        return bool(options.enabled)


def payload_schema() -> dict[str, Any]:
    """The comparison's payload schema, or the deployed model's where ``mode`` is
    ``"deploy"`` (the DP linear regression's where ``task`` is also ``"regression"``)."""
    import json
    from importlib import resources

    def read(file: str) -> dict[str, Any]:
        return json.loads(resources.files("assay.privacy.training").joinpath(file)
                          .read_text("utf-8"))

    deployed = {"if": {"type": "object", "required": ["task"],
                       "properties": {"task": {"const": "regression"}}},
                "then": read("regression.schema.json"), "else": read("deploy.schema.json")}
    return {"if": {"type": "object", "required": ["mode"],
                   "properties": {"mode": {"const": "deploy"}}},
            "then": deployed, "else": read("schema.json")}


def check_canaries(options: DPOptions, n_rows: int) -> None:
    """Refuse, before training, more canaries than the table has rows (the default is
    capped instead: `canaries_for`)."""
    if options.canaries is not None and options.canaries > n_rows:
        raise InvalidParameterError(
            f"dp.canaries must be at most the {n_rows} rows of the table "
            f"(0: no one-run audit). Got {options.canaries}.")


def canaries_for(options: DPOptions, n_rows: int) -> int:
    """The one-run audit's canaries: ``dp.canaries``, by default 500 capped at the rows."""
    if options.canaries is None:
        return min(DEFAULT_CANARIES, n_rows)
    return int(options.canaries)


def canary_note(options: DPOptions, n_rows: int) -> list[str]:
    """The summary's line when the default was capped at a small table's rows."""
    if options.canaries is None and n_rows < DEFAULT_CANARIES:
        return [f"The one-run audit took all {n_rows} rows of the table as canaries (the "
                f"default, {DEFAULT_CANARIES}, is capped at the table's rows)."]
    return []


SECTION = DPSection()
