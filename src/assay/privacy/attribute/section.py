"""The attribute-inference section of ``assay audit`` (``[attribute]`` in ``audit.toml``).

Light to import (the CLI builds its flags from it); the work is in
`assay.privacy.attribute.inference`. Runs only when a sensitive column is named.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from assay._serial import Serial, meta
from assay._validation import InvalidParameterError, check_scalar
from assay.section import Flag, Options
from assay.section.base import SectionBase

__all__ = ["AttributeOptions", "AttributePayload", "AttributeSection", "SECTION"]

#: ε grid of the DP-bound figure.
EPSILON_GRID = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 4.0, 8.0)


@dataclass(frozen=True)
class AttributeOptions(Options):
    """Options of the attribute section.

    Parameters
    ----------
    sensitive : str or None
        The column to infer (none: the section does not run).
    positive : str or None
        Its value TPR and PPV are about (default: the rarest).
    attacks : tuple of str, default=("loss", "confidence", "model")
    models : int, default=8
        Models the section trains when the model takes the attribute as input (even).
    targets : int or None
        Target models attacked (default all).
    min_gap : float, default=0.05
        Smallest excess of a group's contribution over the overall one that is flagged.
    dp_epsilon, dp_delta : optional
        An (ε, δ)-DP guarantee to bound the attack with (baseline: the imputation).
    """

    sensitive: str | None = None
    positive: str | None = None
    attacks: tuple[str, ...] = ("loss", "confidence", "model")
    models: int = 8
    targets: int | None = None
    min_gap: float = 0.05
    dp_epsilon: float | None = None
    dp_delta: float | None = None

    def __post_init__(self) -> None:
        from assay.privacy.attribute.inference import ATTRIBUTE_ATTACKS

        if self.sensitive is not None and (not isinstance(self.sensitive, str)
                                           or not self.sensitive):
            raise InvalidParameterError(
                f"attribute.sensitive must be a column name. Got {self.sensitive!r}.")
        attacks = (self.attacks,) if isinstance(self.attacks, str) else tuple(self.attacks)
        if not attacks or any(a not in ATTRIBUTE_ATTACKS for a in attacks):
            raise InvalidParameterError(f"attribute.attacks must be among "
                                        f"{', '.join(ATTRIBUTE_ATTACKS)}. Got {list(attacks)!r}.")
        object.__setattr__(self, "attacks", tuple(dict.fromkeys(attacks)))
        models = check_scalar(self.models, "attribute.models", kind=int, low=2)
        if models % 2:
            raise InvalidParameterError(f"attribute.models must be an even integer in "
                                        f"[2, inf). Got {models}.")
        if self.targets is not None:
            check_scalar(self.targets, "attribute.targets", kind=int, low=1)
        check_scalar(self.min_gap, "attribute.min_gap", low=0, high=1)
        self.guarantee  # noqa: B018 - validates the DP settings

    @property
    def guarantee(self):
        from assay.privacy.theory.guarantee import DPGuarantee

        if self.dp_epsilon is None and self.dp_delta is None:
            return None
        return DPGuarantee(epsilon=self.dp_epsilon, delta=self.dp_delta)


def _result_type() -> Any:
    from assay.privacy.attribute.inference import AttributeResult

    return AttributeResult


def _regression_type() -> Any:
    from assay.privacy.attribute.regression import RegressionAttributePayload

    return RegressionAttributePayload


@dataclass
class AttributePayload(Serial):
    """The section's payload: the result and the DP bound against the same baseline."""

    result: Any = field(metadata=meta(hint=_result_type))  # AttributeResult (heavy import)
    bound: dict[str, Any] = field(default_factory=dict, metadata=meta(schema={
        "required": ["baseline", "delta", "epsilons", "bounds", "attack", "guarantee"]}))

    __json_plain__ = True
    __json_required__ = ("bound",)
    # A regression model's payload (``task``) reads as its own type.
    __json_variants__ = ("task", {"regression": _regression_type})


def dp_bound(result: Any, guarantee: Any = None, delta: float = 1e-5) -> dict[str, Any]:
    """The attribute-inference bound of DP against the measured imputation baseline.

    κ is the imputation accuracy on members; under f-DP no attacker succeeds with
    probability above 1 − f(κ) (`assay.privacy.theory.risk.success_bound`). The curve over
    `EPSILON_GRID` ((ε, δ)-DP) and the claimed guarantee's value are returned.
    """
    from assay.privacy.theory.accounting import approximate_dp
    from assay.privacy.theory.risk import success_bound

    kappa = float(result.baseline.members.accuracy.value)
    kappa = min(max(kappa, 1e-6), 1 - 1e-6)
    attack = result.attacks[result.leading].members.accuracy
    delta = guarantee.delta if guarantee is not None and guarantee.delta else delta
    curve = [success_bound(approximate_dp(e, delta), kappa) for e in EPSILON_GRID]
    out: dict[str, Any] = {"baseline": kappa, "delta": delta, "epsilons": list(EPSILON_GRID),
                           "bounds": curve, "attack": attack.to_dict(), "guarantee": None}
    # The smallest ε on the grid whose bound is not below the attack's lower 95 % bound.
    consistent = [e for e, b in zip(EPSILON_GRID, curve) if b >= attack.ci_low]
    out["smallest_consistent_epsilon"] = consistent[0] if consistent else None
    if guarantee is not None:
        bound = success_bound(guarantee.tradeoff(), kappa)
        out["guarantee"] = {"description": guarantee.describe(), "bound": bound,
                            "exceeded": bool(attack.ci_low > bound + 1e-12)}
    return out


class AttributeSection(SectionBase):
    """Attribute inference against an imputation baseline: the model's own contribution."""

    name = "attribute"
    title = "Privacy: attribute inference"
    options_type = AttributeOptions
    flags = (
        Flag("sensitive", "Sensitive column to infer (attribute-inference section)."),
        Flag("positive", "Its value of interest for TPR/PPV (default: the rarest).",
             name="--sensitive-positive"),
        Flag("models", "Models the attribute section trains (even).", kind="int",
             name="--attribute-models"),
    )
    payload = "assay.privacy.attribute.section:AttributePayload"
    schema_file = "assay.privacy.attribute:schema.json"
    schema_from = "assay.privacy.attribute.section:payload_schema"
    #: What the section audits: classifiers, and regression models through their outputs.
    tasks = ("classification", "regression")
    #: Options refused on a regression model, and why.
    regression_refused = {
        "attacks": "a regression model is attacked through its predicted value and its "
                   "residual (both always run)",
        "models": "the regression attacks read the audit's population (no models are "
                  "trained on altered rows)",
        **{key: "the DP bound beside a regression model's attribute attacks is not drawn "
                "yet" for key in ("dp_epsilon", "dp_delta")},
    }

    def check(self, context: Any, options: AttributeOptions) -> None:
        if options.sensitive is None:
            return
        from assay.privacy.attribute.inference import check_sensitive

        check_sensitive(context.dataset, options.sensitive, options.positive)

    def applies(self, context: Any, options: AttributeOptions) -> bool:
        return options.sensitive is not None

    def run(self, context: Any, options: AttributeOptions):
        from assay.privacy.attribute.inference import attribute_inference
        from assay.report.result import SectionResult

        config = context.config
        if options.sensitive is None:  # `applies` said no run
            raise ValueError("the attribute section needs a sensitive column")
        if context.task == "regression":
            from assay.privacy.attribute.regression import run_regression_attribute

            return run_regression_attribute(self, context, options)
        policy = context.group_policy.for_section(options.min_gap, "greater")
        target = context.target if context.brings_own_model else None
        result = attribute_inference(
            context.dataset, options.sensitive, learner=context.learner,
            n_models=options.models, population=context.population, target=target,
            n_targets=options.targets, attacks=options.attacks, positive=options.positive,
            **policy.test_options(), random_state=config.seed, fit=context.fit)
        payload = AttributePayload(result, dp_bound(result, options.guarantee))
        return SectionResult(name=self.name, title=self.title, summary=summary(payload),
                             metrics=metrics(payload), data=payload)

    def page(self, section: Any, result: Any):
        if getattr(section.data, "task", None) == "regression":
            from assay.privacy.attribute.regression import regression_attribute_page

            return regression_attribute_page(section, result)
        return attribute_page(section.data)


def payload_schema() -> dict[str, Any]:
    """The payload schema of a classifier's audit, or of a regression model's."""
    from assay.audit.regression import task_schema

    return task_schema("assay.privacy.attribute:schema.json",
                       "assay.privacy.attribute:regression.schema.json")


def summary(payload: AttributePayload) -> list[str]:
    """Plain-language findings, the headline first."""
    from assay.report.result import format_rate

    r = payload.result
    best, base = r.best, r.baseline
    if best is None:
        lines = [f"Inferring {r.sensitive} of a training record: "
                 f"{r.strongest_reason or 'no attack beats guessing'}. No attack is named "
                 f"strongest and no leak of the model is claimed."]
    else:
        c, acc = best.contribution, best.members.accuracy
        cmp = r.comparison.get(r.strongest, {})
        lines = [
            f"Inferring {r.sensitive} of a training record: the {r.strongest} attack is right "
            f"for {format_rate(acc.value)} [{format_rate(acc.ci_low)}, "
            f"{format_rate(acc.ci_high)}] of members; its lower bound is above "
            f"{format_rate(cmp.get('reference', base.members.accuracy.value))}, the better of "
            f"imputation from the other columns without the model "
            f"({format_rate(base.members.accuracy.value)}) and always guessing the most "
            f"common value ({format_rate(r.majority_accuracy or 0.0)}).",
            f"The model's own contribution (attack − imputation on members, minus the same on "
            f"non-members) is {c.value:+.3f} [{c.ci_low:+.3f}, {c.ci_high:+.3f}]: "
            + ("the model leaks the attribute of the people it was trained on." if c.ci_low > 0
               else "no leak beyond what anyone could impute is detected."),
        ]
    flagged = [g for g in r.groups if g.flagged]
    if flagged:
        lines.append(f"Groups where the model leaks more: "
                     f"{', '.join(g.label for g in flagged[:4])} (flagged when "
                     f"p < {r.flag_rule['alpha']:g} and at least "
                     f"{r.flag_rule['min_difference']:g} above the overall contribution).")
    guarantee = payload.bound.get("guarantee")
    if guarantee:
        lines.append(f"Under {guarantee['description']} no attacker could exceed "
                     f"{format_rate(guarantee['bound'])} with this baseline; the attack "
                     + ("exceeds it: the claim or its accounting is wrong." if
                        guarantee["exceeded"] else "stays within it."))
    if r.not_run:
        lines.append("Not run: " + "; ".join(f"{k} ({v})" for k, v in r.not_run.items()))
    return lines


def metrics(payload: AttributePayload) -> dict[str, Any]:
    from assay.report.result import Metric

    r = payload.result
    out = {}
    if r.best is not None:
        c = r.best.contribution
        out["contribution"] = Metric(c.value, c.ci_low, c.ci_high,
                                     label=f"model's contribution to attribute inference "
                                           f"({r.strongest})")
    out["beats_guessing"] = Metric(float(r.best is not None),
                                   label="an attack beats imputation and the majority guess")
    for name, a in r.attacks.items():
        acc = a.members.accuracy
        out[f"{name}.accuracy"] = Metric(acc.value, acc.ci_low, acc.ci_high,
                                         label=f"{name}: accuracy on members")
        if a.contribution is not None:
            out[f"{name}.contribution"] = Metric(a.contribution.value, a.contribution.ci_low,
                                                 a.contribution.ci_high,
                                                 label=f"{name}: model's contribution")
    out["flagged_groups"] = Metric(float(len(r.flagged_groups)),
                                   label="groups flagged as leaking more")
    if payload.bound.get("guarantee"):
        out["dp.bound"] = Metric(payload.bound["guarantee"]["bound"],
                                 label="DP bound on attribute-inference accuracy")
    return out


def bound_plot(bound: dict[str, Any]) -> str:
    """The DP bound over ε beside the measured attack and the imputation baseline."""
    from assay.report.plots import COLORS, GREY, THEORY, figure, svg_text

    fig, ax = figure(5.6, 3.6)
    eps = bound["epsilons"]
    ax.plot(eps, bound["bounds"], color=THEORY, ls="--", marker="o", ms=3,
            label=f"DP bound (δ = {bound['delta']:g})")
    attack = bound["attack"]
    ax.axhline(attack["value"], color=COLORS[1], lw=1.4, label="attack on members")
    ax.axhspan(attack["ci_low"], attack["ci_high"], color=COLORS[1], alpha=0.15)
    ax.axhline(bound["baseline"], color=GREY, lw=1, ls=":", label="imputation baseline κ")
    if bound.get("guarantee"):
        ax.axhline(bound["guarantee"]["bound"], color=COLORS[0], lw=1, ls="-.",
                   label="claimed guarantee's bound")
    ax.set_xscale("log")
    ax.set_ylim(max(0.0, bound["baseline"] - 0.1), 1.02)
    ax.set_xlabel("ε of an (ε, δ)-DP guarantee")
    ax.set_ylabel("attribute-inference accuracy")
    ax.set_title("DP bound vs the measured attack (same baseline)", loc="left")
    ax.legend(loc="lower right", fontsize=8)
    return svg_text(fig)


def attribute_page(payload: AttributePayload):
    from assay.privacy.plots import Bar, group_plot
    from assay.report.result import format_rate, format_value
    from assay.section import Card, Page

    r = payload.result
    baselines = (f"imputation {format_rate(r.baseline.members.accuracy.value)}, majority "
                 f"{format_rate(r.majority_accuracy or 0.0)}")
    if r.best is None:
        c = None
        cards = [Card("strongest attribute-inference attack", "no attack beats guessing",
                      baselines, "card-attr-contribution")]
    else:
        c = r.best.contribution
        acc = r.best.members.accuracy
        cards = [Card("model's contribution to attribute inference", f"{c.value:+.3f}",
                      f"[{c.ci_low:+.3f}, {c.ci_high:+.3f}]", "card-attr-contribution"),
                 Card(f"{r.sensitive} inferred for members ({r.strongest})",
                      format_rate(acc.value),
                      f"[{format_rate(acc.ci_low)}, {format_rate(acc.ci_high)}]; {baselines}",
                      "card-attr-accuracy")]
    groups = [g for g in r.groups if g.supported and g.contribution is not None]
    groups.sort(key=lambda g: -g.contribution.value)
    figures = {"bound": bound_plot(payload.bound)}
    if groups and c is not None:
        # group_plot draws around 0.5 (AUC); shift contributions onto that axis.
        figures["groups"] = group_plot(
            [Bar(f"{g.label}  (n={g.n_rows})", 0.5 + g.contribution.value,
                 0.5 + g.contribution.ci_low, 0.5 + g.contribution.ci_high, g.flagged)
             for g in groups], 0.5 + c.value,
            title="Model's contribution by group (+0.5; 95 % CI)")
    view = {"r": r, "bound": payload.bound, "groups": groups, "format_value": format_value,
            "small": [g.label for g in r.groups if not g.supported]}
    template = resources.files("assay.privacy.attribute").joinpath("templates/attribute.html.j2") \
        .read_text(encoding="utf-8")
    return Page(template=template, view=view, figures=figures, cards=cards)


SECTION = AttributeSection()
