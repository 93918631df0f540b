"""The fairness section of ``assay audit``: options, flags, checks, schema and page.

Declared through the ``assay.sections`` entry point. Light to import (the CLI builds its
flags from it); the work is in `assay.fairness.run` and the page in
`assay.fairness.page`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from assay._validation import MAX_RESAMPLES, InvalidParameterError, check_option, check_scalar
from assay.section import Flag, Options
from assay.section.base import SectionBase

__all__ = ["FairnessOptions", "FairnessSection", "SECTION"]

CONSTRAINTS = ("dp", "eo", "eodds")
METHODS = ("thresholds", "score_transformer", "fair_boost", "reductions")
#: The unmitigated model: the audit's model under audit, or gradient boosting fitted here.
BASELINES = ("target", "gradient_boosting")
#: A regression model's front (`assay.fairness.regression_front`): its methods, the
#: distance between groups' predictions it closes, the error a fix may cost.
REGRESSION_METHODS = ("barycenter", "bounded_group_loss")
REGRESSION_GAPS = ("ks", "wasserstein")
REGRESSION_ERRORS = ("mse", "mae")


@dataclass(frozen=True)
class FairnessOptions(Options):
    """Options of the fairness section (``[fairness]`` in ``audit.toml``).

    Parameters
    ----------
    constraint : {"dp", "eo", "eodds"}, default="eo"
        The gap the mitigation closes: demographic parity, equal opportunity, equalized
        odds.
    prefer : str or None
        How the model is chosen from the front, e.g. ``"eo<=0.05, then
        balanced_accuracy"``; default: within 1 point of the best balanced accuracy of
        any usable candidate, the smallest gap.
    methods : tuple of str
        Mitigation methods ("reductions" needs fairlearn); empty: measure only.
    min_gap : float, default=0.05
        Smallest shortfall of a group's rate (selection rate, TPR; FPR excess) that is
        flagged.
    min_count : int, default=20
        Rows of a rate's denominator (positives for TPR) a group needs to enter a gap of
        the audited model (its flags test each group's shortfall for significance).
    fix_min_count : int, default=100
        The same for the gaps the mitigation front chooses and confirms a fix on: a
        largest gap over groups is set by the noisiest group, so each rate must be known
        to about +/-10 points (`assay.fairness.verdict.VERDICT_MIN_COUNT`).
    n_rounds : int, default=60
        Fair-boosting rounds.
    n_bootstrap : int, default=400
        Bootstrap resamples of the gap intervals.
    export : bool, default=True
        Write the front's models and cards under ``<out>/fairness/`` (the chosen model's
        as ``model.skops`` / ``model_card.md`` only when a fix is confirmed; on a
        regression model, that chosen fix alone).
    max_cost : float, default=0.02
        Balanced accuracy a fix may give up against the unmitigated model, on the rows
        that took no part in choosing it; on a regression model, the relative increase of
        its error (0.02: 2 % higher MSE).
    min_reduction : float, default=0
        A fix is chosen only when the paired 95 % interval of (its gap - the unmitigated
        model's gap, worst of every attribute and intersection) on those rows lies below
        minus this (on a regression model, in the units of ``regression_gap``).
    confirm_by : {"auto", "split", "crossfit"}, default="auto"
        How the choice is confirmed: half of the held-out rows, or repeated cross-fitting
        of all of them ("auto": cross-fitting where half would lack group support); on a
        regression model too.
    baseline : {"target", "gradient_boosting"}, default="target"
        The unmitigated model: the audit's model under audit, or scikit-learn's
        HistGradientBoostingClassifier fitted here on a stratified split of the table
        (`test_size` held out, a quarter of the rest calibrating the post-processors; no
        population needed), as ``assay fair`` without ``--predictions``.
    test_size : float in [0.05, 0.9], default=0.3
        Held-out share of the rows with ``baseline = "gradient_boosting"``.
    n_jobs : int, default=1
        Threads of the native libraries while the front is built (the figures do not
        depend on it).
    regression_methods : tuple of str, default=("barycenter",)
        A regression model's mitigation: Wasserstein-barycenter post-processing, and
        fairlearn's bounded group loss reductions (needs fairlearn; slow, so asked for by
        name); empty: measure only.
        ``fix_min_count`` is then the rows a group needs to enter the front's gaps.
    regression_gap : {"ks", "wasserstein"}, default="ks"
        The distance between a group's predictions and the rest's that the regression
        front closes (Wasserstein-1 in the target's units).
    regression_error : {"mse", "mae"}, default="mse"
        The error whose relative increase is a regression fix's cost.
    """

    constraint: str = "eo"
    prefer: str | None = None
    methods: tuple[str, ...] = ("thresholds", "score_transformer", "fair_boost")
    min_gap: float = 0.05
    min_count: int = 20
    fix_min_count: int = 100
    n_rounds: int = 60
    n_bootstrap: int = 400
    export: bool = True
    max_cost: float = 0.02
    min_reduction: float = 0.0
    confirm_by: str = "auto"
    baseline: str = "target"
    test_size: float = 0.3
    n_jobs: int = 1
    regression_methods: tuple[str, ...] = ("barycenter",)
    regression_gap: str = "ks"
    regression_error: str = "mse"

    def __post_init__(self) -> None:
        check_option(self.constraint, "fairness.constraint", CONSTRAINTS)
        methods = (self.methods,) if isinstance(self.methods, str) else tuple(self.methods)
        for m in methods:
            check_option(m, "fairness.methods", METHODS)
        object.__setattr__(self, "methods", tuple(dict.fromkeys(methods)))
        if self.prefer is not None:
            from assay.fairness.pareto import parse_preference

            parse_preference(self.prefer)
        check_scalar(self.min_gap, "fairness.min_gap", low=0, high=1)
        check_scalar(self.min_count, "fairness.min_count", kind=int, low=1)
        check_scalar(self.fix_min_count, "fairness.fix_min_count", kind=int, low=1)
        check_scalar(self.n_rounds, "fairness.n_rounds", kind=int, low=1, high=2000)
        check_scalar(self.n_bootstrap, "fairness.n_bootstrap", kind=int, low=0, high=MAX_RESAMPLES)
        check_scalar(self.max_cost, "fairness.max_cost", low=0, high=1)
        check_scalar(self.min_reduction, "fairness.min_reduction", low=0, high=1)
        from assay.fairness.crossfit import CONFIRM_BY

        check_option(self.confirm_by, "fairness.confirm_by", CONFIRM_BY)
        check_option(self.baseline, "fairness.baseline", BASELINES)
        check_scalar(self.test_size, "fairness.test_size", low=0.05, high=0.9)
        check_scalar(self.n_jobs, "fairness.n_jobs", kind=int, low=1)
        fixes = ((self.regression_methods,) if isinstance(self.regression_methods, str)
                 else tuple(self.regression_methods))
        for m in fixes:
            check_option(m, "fairness.regression_methods", REGRESSION_METHODS)
        object.__setattr__(self, "regression_methods", tuple(dict.fromkeys(fixes)))
        check_option(self.regression_gap, "fairness.regression_gap", REGRESSION_GAPS)
        check_option(self.regression_error, "fairness.regression_error", REGRESSION_ERRORS)
        if not isinstance(self.export, bool):
            raise InvalidParameterError(f"fairness.export must be true or false. Got "
                                        f"{self.export!r}.")


    def to_dict(self) -> dict[str, Any]:
        """Every option as given; the regression front's only where set, so that a
        classifier's recorded config reads as before they existed."""
        out = super().to_dict()
        for key in ("regression_methods", "regression_gap", "regression_error"):
            if getattr(self, key) == getattr(FairnessOptions, key):
                out.pop(key, None)
        return out


class FairnessSection(SectionBase):
    """Whom the model treats worse, with intervals, and a model that fixes it."""

    name = "fairness"
    title = "Fairness: who is treated worse, and the fix"
    options_type = FairnessOptions
    flags = (
        Flag("constraint", "Fairness constraint of the mitigation: dp, eo or eodds.",
             name="--fair-constraint"),
        Flag("prefer", "How the fair model is chosen, e.g. 'eo<=0.05, then "
             "balanced_accuracy'.", name="--fair-prefer"),
        Flag("methods", "Mitigation methods: thresholds, score_transformer, fair_boost, "
             "reductions (comma-separated).", kind="list", name="--fair-methods"),
        Flag("min_gap", "Smallest group shortfall in a rate that is flagged.", kind="float",
             name="--fair-min-gap"),
        Flag("max_cost", "Balanced accuracy a fix may give up (confirmation rows).",
             kind="float", name="--fair-max-cost"),
        Flag("min_reduction", "Gap reduction a fix must show on the confirmation rows "
             "(paired interval below minus this).", kind="float",
             name="--fair-min-reduction"),
        Flag("confirm_by", "How the choice is confirmed: split, crossfit, or auto "
             "(cross-fitting where half of the held-out rows lack group support).",
             name="--fair-confirm-by"),
        Flag("regression_methods", "A regression model's mitigation: barycenter, "
             "bounded_group_loss (comma-separated; empty: none).", kind="list",
             name="--fair-regression-methods"),
        Flag("regression_gap", "The distance between groups' predictions a regression fix "
             "closes: ks or wasserstein.", name="--fair-regression-gap"),
        Flag("regression_error", "The error a regression fix may cost: mse or mae.",
             name="--fair-regression-error"),
    )
    payload = "assay.fairness.run:FairnessPayload"
    schema_file = "assay.fairness:schema.json"
    schema_from = "assay.fairness.section:payload_schema"
    #: What the section audits: classifiers, and regression models (errors by group).
    tasks = ("classification", "regression")
    #: Options refused on a regression model, and why (the classifier's front and rates).
    regression_refused = {
        **{key: "only the classifier's mitigation front reads it (a regression model's "
                "reads regression_methods, regression_gap, regression_error, max_cost, "
                "min_reduction, fix_min_count, confirm_by and export)"
           for key in ("constraint", "prefer", "methods", "n_rounds", "n_jobs")},
        **{key: "a regression audit measures its own model under audit"
           for key in ("baseline", "test_size")},
    }
    checker = "assay.fairness.run:check_fairness"
    runner = "assay.fairness.run:run_fairness"
    pager = "assay.fairness.page:fairness_page"

    def check(self, context: Any, options: FairnessOptions) -> None:
        if context.task == "regression":
            from assay.fairness.regression_audit import check_regression_fairness

            check_regression_fairness(context, options)
        else:
            super().check(context, options)

    def run(self, context: Any, options: FairnessOptions) -> Any:
        if context.task == "regression":
            from assay.section.base import load_attribute

            return load_attribute("assay.fairness.regression_audit:"
                                  "run_regression_fairness")(self, context, options)
        return super().run(context, options)

    def page(self, section: Any, result: Any) -> Any:
        if getattr(section.data, "task", None) == "regression":
            from assay.fairness.regression_audit import regression_fairness_page

            return regression_fairness_page(section, result)
        return super().page(section, result)

    def uses_population(self, config: Any) -> bool:
        """The population gives the model under audit and the gaps' spread: none is needed
        with a model of the user's own or a gradient-boosting baseline."""
        return (config.predictions is None
                and config.options(self.name).baseline == "target")

    def applies(self, context: Any, options: FairnessOptions) -> bool:
        if context.task == "regression":
            return context.groups is not None and context.target is not None
        return (context.groups is not None and len(context.dataset.classes) == 2
                and (context.target is not None or options.baseline == "gradient_boosting"))


def payload_schema() -> dict[str, Any]:
    """The payload schema of a classifier's audit, or of a regression model's."""
    from assay.audit.regression import task_schema

    return task_schema("assay.fairness:schema.json", "assay.fairness:regression.schema.json")


SECTION = FairnessSection()
