"""The release-check section of ``assay audit`` (``[release]``): may the model leave?

Light to import; the work is in `assay.privacy.release.checks`. With a model of the user's own
(a predictions file) only the predictions-based checks run and the page says which
could not; with assay's learner, one model is fitted on the audited model's training
rows and checked in full.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from assay._serial import Serial, meta
from assay._validation import check_scalar
from assay.section import Flag, Options
from assay.section.base import SectionBase

__all__ = ["ReleaseOptions", "ReleaseSection", "SECTION"]


@dataclass(frozen=True)
class ReleaseOptions(Options):
    """Options of the release section: whether it runs (off by default: it fits one more
    model), which model is checked, and the thresholds of the checks
    (`assay.privacy.release.checks.ReleaseThresholds`).

    Parameters
    ----------
    model : str or None, default=None
        A fitted scikit-learn model saved with skops (``.skops``), checked in full on every
        row of the encoded table instead of a model fitted here.
    fit_on : {"target", "all"}, default="target"
        The rows assay's learner is fitted on for the checks (without `model` or a model
        of the user's own): the audited model's training rows, or every row ("all": the
        model one would release, as ``assay release --learner``; no population needed).
    """

    enabled: bool = False
    model: str | None = None
    fit_on: str = "target"
    min_leaf_rows: int = 10
    min_cell_rows: int = 10
    min_residual_dof: int = 10
    min_samples_leaf: int = 5
    max_class_disclosure: float = 0.0
    max_mia_auc: float = 0.6
    mia_fpr: float = 0.01
    max_mia_tpr: float = 0.03

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            from assay._validation import InvalidParameterError

            raise InvalidParameterError(f"release.enabled must be true or false. "
                                        f"Got {self.enabled!r}.")
        from assay._validation import check_option

        check_option(self.fit_on, "release.fit_on", ("target", "all"))
        if self.model is not None and not isinstance(self.model, str):
            from assay._validation import InvalidParameterError

            raise InvalidParameterError(f"release.model must be the path of a .skops file. "
                                        f"Got {self.model!r}.")
        check_scalar(self.min_leaf_rows, "release.min_leaf_rows", kind=int, low=1)
        self.thresholds  # noqa: B018 - validates every threshold

    @property
    def thresholds(self):
        from assay.privacy.release.checks import ReleaseThresholds

        return ReleaseThresholds(self.min_leaf_rows, self.min_cell_rows,
                                 self.min_residual_dof, self.min_samples_leaf,
                                 self.max_class_disclosure, self.max_mia_auc, self.mia_fpr,
                                 self.max_mia_tpr)


def _report_type() -> Any:
    from assay.privacy.release.checks import ReleaseReport

    return ReleaseReport


@dataclass
class ReleasePayload(Serial):
    """The section's payload: the release report, written as it is (unwrapped)."""

    report: Any = field(metadata=meta(hint=_report_type))  # ReleaseReport (heavy import)

    __json_unwrap__ = "report"


class ReleaseSection(SectionBase):
    """Disclosure checks before release, and a reject / review / release recommendation."""

    name = "release"
    title = "Privacy: release checks"
    options_type = ReleaseOptions
    flags = (
        Flag("enabled", "Run the release checks on the audited model.", kind="bool",
             name="--release-checks"),
        Flag("min_leaf_rows", "Release check: training rows a tree leaf must hold.",
             kind="int"),
    )
    payload = "assay.privacy.release.section:ReleasePayload"
    schema_file = "assay.privacy.release:schema.json"
    #: What the section checks: classifiers, and regressors (residual degrees of freedom,
    #: leaf sizes of regression trees: `assay.privacy.release.regression`).
    tasks = ("classification", "regression")
    #: Options refused on a regression model, and why.
    regression_refused = {
        "min_cell_rows": "a regression tree's leaves hold numbers, not classes (their sizes "
                         "are checked by min_leaf_rows)",
        "max_class_disclosure": "a regression model gives no class probabilities",
    }

    def uses_population(self, config: Any) -> bool:
        """The population only gives the audited model's training rows: none is needed for
        a model file, a model of the user's own or a fit on every row."""
        options = config.options(self.name)
        return (config.predictions is None and options.model is None
                and options.fit_on == "target")

    def check(self, context: Any, options: ReleaseOptions) -> None:
        if options.enabled and options.model is not None:
            model_file(context, options)  # refused before any training

    def applies(self, context: Any, options: ReleaseOptions) -> bool:
        return options.enabled and (context.target is not None or options.model is not None
                                    or options.fit_on == "all")

    def run(self, context: Any, options: ReleaseOptions):
        from assay.privacy.release.checks import (
            evidence_from_results,
            release_checks,
            release_for_learner,
        )
        from assay.report.result import SectionResult

        if context.task == "regression":  # a regressor's checks, read from its own sections
            from assay.privacy.release.regression import regression_release_report

            fitted = None if options.model is None else model_file(context, options)
            report = regression_release_report(context, options, fitted)
            return SectionResult(name=self.name, title=self.title, summary=summary(report),
                                 metrics=metrics(report), data=ReleasePayload(report))
        # The sections that ran before this one (the runner shares them): the measured
        # attacks enter the decision.
        evidence = evidence_from_results(context.extras.get("results", {}), options.mia_fpr)
        if options.model is not None:
            report = release_checks(model_file(context, options), context.dataset.X,
                                    context.dataset.y, thresholds=options.thresholds,
                                    evidence=evidence)
        elif context.brings_own_model:
            report = release_checks(predictions=context.target,
                                    thresholds=options.thresholds, evidence=evidence)
        else:
            rows = None if options.fit_on == "all" else context.target.member
            _, report = release_for_learner(context.learner,
                                            context.dataset.dense_X("the release section"),
                                            context.dataset.y, rows,
                                            random_state=context.config.seed,
                                            thresholds=options.thresholds, evidence=evidence)
        return SectionResult(name=self.name, title=self.title, summary=summary(report),
                             metrics=metrics(report), data=ReleasePayload(report))

    def page(self, section: Any, result: Any):
        from assay.section import Card, Page

        r = section.data.report
        failed = [c for c in r.checks if c.status == "fail"]
        cards = [Card("release recommendation", r.recommendation,
                      f"{len(failed)} check(s) failed", "card-release")]
        template = resources.files("assay.privacy.release").joinpath("templates/release.html.j2") \
            .read_text(encoding="utf-8")
        return Page(template=template, view={"r": r}, cards=cards)


def model_file(context: Any, options: ReleaseOptions) -> Any:
    """The fitted model of ``options.model`` (loaded once per audit), checked against the
    table's encoded columns."""
    fitted = context.extras.get("release.model")
    if fitted is None:
        from assay.learners.model_file import check_model_input, load_model_file

        fitted = load_model_file(str(options.model), what="release.model")
        check_model_input(fitted, context.dataset.X.shape[1], what="release.model",
                          task=context.task)
        context.extras["release.model"] = fitted
    return fitted


def summary(report: Any) -> list[str]:
    lines = [f"Release recommendation for {report.model}: {report.recommendation.upper()}."]
    lines += report.reasons
    return lines


def metrics(report: Any) -> dict[str, Any]:
    from assay.report.result import Metric

    out = {"reject": Metric(float(report.recommendation == "reject"),
                            label="release recommendation is reject (1) or not (0)"),
           "failed_checks": Metric(float(sum(c.status == "fail" for c in report.checks)),
                                   label="release checks failed")}
    for c in report.checks:
        out[f"{c.name}.failed"] = Metric(float(c.status == "fail"),
                                         label=f"release check failed: {c.title}")
    return out


SECTION = ReleaseSection()
