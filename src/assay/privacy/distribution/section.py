"""The distribution-inference section of ``assay audit`` (``[distribution]``).

Light to import; the work is in `assay.privacy.distribution.inference`. Runs only when a property
(``COL=VALUE``) is named.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from assay._serial import Serial, meta
from assay._validation import InvalidParameterError, check_scalar
from assay.section import Flag, Options
from assay.section.base import SectionBase

__all__ = ["DistributionOptions", "DistributionSection", "SECTION"]

NAMES = {"kl": "KL divergence (pairwise votes)", "meta": "meta-classifier on outputs"}


@dataclass(frozen=True)
class DistributionOptions(Options):
    """Options of the distribution section.

    Parameters
    ----------
    property : str or None
        ``COL=VALUE`` whose share in the training data is inferred (none: no run).
    ratios : tuple of float, default=(0.3, 0.5)
        The two shares, each in (0, 1).
    models : int, default=32
        Models per share (even, ≥ 4): half shadow, half victim.
    train_size : int or None
        Rows per training set (default: half the largest both pools allow).
    n_query : int, default=2000
    """

    property: str | None = None
    ratios: tuple[float, float] = (0.3, 0.5)
    models: int = 32
    train_size: int | None = None
    n_query: int = 2000

    def __post_init__(self) -> None:
        if self.property is not None:
            from assay.privacy.distribution.inference import parse_property

            parse_property(self.property)
        from assay.privacy.distribution.inference import check_ratios

        object.__setattr__(self, "ratios", check_ratios(self.ratios, "distribution.ratios"))
        models = check_scalar(self.models, "distribution.models", kind=int, low=4)
        if models % 2:
            raise InvalidParameterError(f"distribution.models must be an even integer in "
                                        f"[4, inf). Got {models}.")
        if self.train_size is not None:
            check_scalar(self.train_size, "distribution.train_size", kind=int, low=2)
        check_scalar(self.n_query, "distribution.n_query", kind=int, low=1)


def _result_type() -> Any:
    from assay.privacy.distribution.inference import DistributionResult

    return DistributionResult


def _regression_type() -> Any:
    from assay.privacy.distribution.regression import RegressionDistributionPayload

    return RegressionDistributionPayload


@dataclass
class DistributionPayload(Serial):
    """The section's payload: the result, written as it is (unwrapped)."""

    result: Any = field(metadata=meta(hint=_result_type))  # DistributionResult (heavy)

    __json_unwrap__ = "result"
    # A regression model's payload (``task``) reads as its own type.
    __json_variants__ = ("task", {"regression": _regression_type})


def check_distribution(dataset: Any, options: DistributionOptions, pool_fraction: float = 0.4
                       ) -> Any:
    """The property mask, after checking the value occurs and the training size fits."""
    from assay.engine import check_population_size
    from assay.privacy.distribution.inference import max_train_size, property_mask

    if options.property is None:
        raise ValueError("check_distribution needs options.property")
    # A regression model's float64 values take the memory of two float32 probabilities.
    check_population_size(options.models, dataset.n_rows, len(dataset.classes) or 2,
                          name="distribution.models", factor=2, spill=False)
    mask = property_mask(dataset, options.property)
    n_pool = int(round(pool_fraction * mask.size))
    # The pools are random: check against their expected make-up, with 10 % slack.
    feasible = max_train_size(int(0.9 * mask.mean() * n_pool),
                              int(0.9 * (1 - mask.mean()) * n_pool), options.ratios)
    if options.train_size is not None:
        from assay.privacy.distribution.inference import check_share_counts

        check_share_counts(options.train_size, options.ratios, "distribution.train_size")
    if options.train_size is not None and options.train_size > feasible:
        raise InvalidParameterError(
            f"distribution.train_size must be at most about {feasible} for {options.property}"
            f" at shares {options.ratios[0]:g} and {options.ratios[1]:g}. "
            f"Got {options.train_size}.")
    if feasible < 2:
        raise InvalidParameterError(
            f"distribution.property must leave room for training sets at both shares. Got "
            f"{options.property} on {int(mask.sum())} of {mask.size} rows.")
    return mask


class DistributionSection(SectionBase):
    """Distribution inference: does the model reveal the share of a group in its data?"""

    name = "distribution"
    title = "Privacy: distribution inference"
    options_type = DistributionOptions
    #: It trains all its own 2 x K models: run alone, it needs no population.
    uses_population = False
    flags = (
        Flag("property", "COL=VALUE whose share in the training data is inferred."),
        Flag("ratios", "The two shares, e.g. 0.3,0.5.", kind="list"),
        Flag("models", "Models per share (distribution section).", kind="int",
             name="--distribution-models"),
    )
    payload = "assay.privacy.distribution.section:DistributionPayload"
    schema_file = "assay.privacy.distribution:schema.json"
    schema_from = "assay.privacy.distribution.section:payload_schema"
    #: Classifiers, and regression models through shadow regressors of the audit's learner.
    tasks = ("classification", "regression")

    def check(self, context: Any, options: DistributionOptions) -> None:
        if options.property is not None:
            check_distribution(context.dataset, options)

    def applies(self, context: Any, options: DistributionOptions) -> bool:
        return options.property is not None

    def run(self, context: Any, options: DistributionOptions):
        from assay.privacy.distribution.inference import distribution_inference
        from assay.report.result import SectionResult

        config = context.config
        if options.property is None:  # `applies` said no run
            raise ValueError("the distribution section needs a property")
        mask = check_distribution(context.dataset, options)
        if context.task == "regression":
            return _run_regression(self, context, options, mask)
        result = distribution_inference(
            context.dataset.dense_X("the distribution section"), context.dataset.y, mask,
            ratios=options.ratios,
            n_models=options.models, learner=context.learner, train_size=options.train_size,
            n_query=options.n_query, property_label=options.property,
            n_classes=context.dataset.n_classes,
            random_state=config.seed, memory_budget=config.memory_budget,
            fit=context.fit)
        payload = DistributionPayload(result)
        return SectionResult(name=self.name, title=self.title, summary=summary(result),
                             metrics=metrics(result), data=payload)

    def page(self, section: Any, result: Any):
        from assay.report.result import format_rate
        from assay.section import Card, Page

        if getattr(section.data.result, "task", None) == "regression":
            from assay.privacy.distribution.regression import regression_distribution_page

            return regression_distribution_page(section, result)
        r = section.data.result
        best = r.best
        cards = [Card(f"share of {r.property} guessed right", format_rate(best.accuracy.value),
                      f"[{format_rate(best.accuracy.ci_low)}, "
                      f"{format_rate(best.accuracy.ci_high)}]",
                      "card-dist-accuracy")]
        if best.n_leaked is not None:
            cards.append(Card("n_leaked", f"{best.n_leaked.value:.1f}",
                              f"of {r.train_size} training rows", "card-dist-leaked"))
        template = resources.files("assay.privacy.distribution").joinpath(
            "templates/distribution.html.j2").read_text(encoding="utf-8")
        return Page(template=template, view={"r": r, "names": NAMES}, cards=cards)


def _run_regression(section: DistributionSection, context: Any, options: DistributionOptions,
                    mask: Any) -> Any:
    """The result on a regression model: shadow and victim regressors of the audit's
    learner, fitted through the audit's engine; the classifier's figures and words."""
    from assay.privacy.distribution import regression
    from assay.report.result import SectionResult

    dataset = context.dataset
    result = regression.regression_distribution_inference(
        dataset.dense_X("the distribution section"), dataset.y, mask, ratios=options.ratios,
        n_models=options.models, learner=context.learner, train_size=options.train_size,
        n_query=options.n_query, property_label=str(options.property),
        target_label=str(dataset.target), random_state=context.config.seed, fit=context.fit)
    return SectionResult(name=section.name, title=section.title,
                         summary=[*summary(result, regression.NAMES),
                                  regression.shift_line(result)],
                         metrics=metrics(result),
                         data=regression.RegressionDistributionPayload(result))


def payload_schema() -> dict[str, Any]:
    """The payload schema of a classifier's audit, or of a regression model's."""
    from assay.audit.regression import task_schema

    return task_schema("assay.privacy.distribution:schema.json",
                       "assay.privacy.distribution:regression.schema.json")


def summary(r: Any, names: dict[str, str] = NAMES) -> list[str]:
    from assay.report.result import format_rate

    best = r.best
    acc = best.accuracy
    line = (f"Telling whether {r.property} made up {r.ratios[0]:g} or {r.ratios[1]:g} of the "
            f"training data: the {names[r.strongest]} attack is right for "
            f"{format_rate(acc.value)} [{format_rate(acc.ci_low)}, {format_rate(acc.ci_high)}] "
            f"of {best.n_victims} victim models (0.5 is guessing).")
    lines = [line]
    if best.n_leaked is not None:
        lines.append(f"That is as much as counting {best.n_leaked.value:.1f} of the "
                     f"{r.train_size} training rows would reveal (n_leaked).")
    return lines


def metrics(r: Any) -> dict[str, Any]:
    from assay.report.result import Metric

    out = {}
    for name, a in r.attacks.items():
        out[f"{name}.accuracy"] = Metric(a.accuracy.value, a.accuracy.ci_low,
                                         a.accuracy.ci_high, label=f"{name}: accuracy")
    best = r.best
    out["accuracy"] = Metric(best.accuracy.value, best.accuracy.ci_low, best.accuracy.ci_high,
                             label=f"distribution-inference accuracy ({r.strongest})")
    if best.n_leaked is not None:
        import math

        def finite(v):
            return v if math.isfinite(v) else None

        out["n_leaked"] = Metric(finite(best.n_leaked.value), finite(best.n_leaked.ci_low),
                                 finite(best.n_leaked.ci_high), label="n_leaked")
        out["n_leaked_share"] = Metric(
            finite(best.n_leaked.value / r.train_size),
            label="n_leaked as a share of the training rows")
    return out


SECTION = DistributionSection()
