"""The multiplicity section of ``assay audit``: options, flags, checks, run, schema and page.

Declared through the ``assay.sections`` entry point. Light to import (the CLI builds its
flags from it): numpy and the work (`assay.multiplicity.rashomon`) are imported inside
the functions.

The model under audit is the audit's target: the user's model (predictions file) or
model 0 of the population. Its held-out rows (those it did not train on) are held out
from every candidate too; the candidates train on random subsamples of its training rows
through the audit's learner, backend and cache (`AuditContext.fit`), so their losses and
its loss are measured on the same unseen rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from assay._validation import MAX_RESAMPLES, InvalidParameterError, check_option, check_scalar
from assay.section import Flag, Options
from assay.section.base import SectionBase

__all__ = ["MultiplicityOptions", "MultiplicitySection", "SECTION"]

DEFAULT_EPSILONS = (0.005, 0.01, 0.02, 0.05)


@dataclass(frozen=True)
class MultiplicityOptions(Options):
    """Options of the multiplicity section (``[multiplicity]`` in ``audit.toml``).

    Parameters
    ----------
    epsilons : tuple of float, default=(0.005, 0.01, 0.02, 0.05)
        Loss tolerances of the Rashomon sets (each > 0).
    headline_epsilon : float, default=0.01
        The ε of the headline, the per-person figures and the flags (added to
        `epsilons` when missing).
    tolerance : {"relative", "absolute"}, default="relative"
        A model is in the set when its held-out loss is at most best·(1 + ε)
        ("relative": ε = 0.01 is "within 1 % of the best loss") or best + ε.
    loss : {"log_loss", "error"}, default="log_loss"
        Held-out loss that ranks the models.
    models : int or None, default=None
        Candidate models (default: the audit's ``models``); at least 2.
    grid : dict, default={}
        Hyper-parameter values of the candidates, e.g. ``{C = [0.1, 1.0, 10.0]}``
        (``[multiplicity.grid]``); the candidates are spread over its combinations.
    subsample : float in (0, 1], default=0.8
        Share of the audited model's training rows each candidate trains on.
    n_bootstrap : int, default=100
        Resamples of the set's models behind every interval (0: none).
    min_gap : float, default=0.05
        Smallest excess of a group's ambiguity over the overall one that is flagged.
    n_records : int, default=20
        Most arbitrary decisions listed.
    holdout : float in (0, 1) or None, default=None
        Audit no model, only the learner: the candidates hold out this share of the rows
        and are measured against the best of them (what ``assay multiplicity`` does
        without ``--predictions``); None: the audit's model under audit, whose unseen rows
        are held out. Not with a model of the user's own.
    compare : str or None, default=None
        Predictions file of another version of the user's model (the audit's
        ``train_column``): churn against it (needs a model of the user's own).
    """

    epsilons: tuple[float, ...] = DEFAULT_EPSILONS
    headline_epsilon: float = 0.01
    tolerance: str = "relative"
    loss: str = "log_loss"
    models: int | None = None
    grid: Mapping[str, Any] = field(default_factory=dict)
    subsample: float = 0.8
    n_bootstrap: int = 100
    min_gap: float = 0.05
    n_records: int = 20
    holdout: float | None = None
    compare: str | None = None

    def __post_init__(self) -> None:
        eps = (self.epsilons,) if isinstance(self.epsilons, int | float) else self.epsilons
        if not isinstance(eps, tuple | list) or not eps:
            raise InvalidParameterError(
                f"multiplicity.epsilons must hold at least one number > 0. Got {eps!r}.")
        eps = tuple(sorted({check_scalar(e, "multiplicity.epsilons", low=0, low_open=True)
                            for e in eps}))
        object.__setattr__(self, "epsilons", eps)
        object.__setattr__(self, "headline_epsilon", check_scalar(
            self.headline_epsilon, "multiplicity.headline_epsilon", low=0, low_open=True))
        check_option(self.tolerance, "multiplicity.tolerance", ("relative", "absolute"))
        check_option(self.loss, "multiplicity.loss", ("log_loss", "error"))
        if self.models is not None:
            check_scalar(self.models, "multiplicity.models", kind=int, low=2)
        if not isinstance(self.grid, Mapping):
            raise InvalidParameterError(
                f"multiplicity.grid must be a table of hyper-parameter lists, e.g. "
                f"{{C = [0.1, 1.0]}}. Got {self.grid!r}.")
        grid = {}
        for key, values in self.grid.items():
            values = list(values) if isinstance(values, list | tuple) else [values]
            if not isinstance(key, str) or not values:
                raise InvalidParameterError(
                    f"multiplicity.grid must map names to non-empty lists. Got {key!r} = "
                    f"{values!r}.")
            grid[key] = tuple(values)
        object.__setattr__(self, "grid", grid)
        check_scalar(self.subsample, "multiplicity.subsample", low=0, high=1, low_open=True)
        check_scalar(self.n_bootstrap, "multiplicity.n_bootstrap", kind=int, low=0,
                     high=MAX_RESAMPLES)
        check_scalar(self.min_gap, "multiplicity.min_gap", low=0, high=1)
        check_scalar(self.n_records, "multiplicity.n_records", kind=int, low=0)
        if self.holdout is not None:
            check_scalar(self.holdout, "multiplicity.holdout", low=0, high=1, low_open=True,
                         high_open=True)
        if self.compare is not None and not isinstance(self.compare, str):
            raise InvalidParameterError(f"multiplicity.compare must be the path of a "
                                        f"predictions file. Got {self.compare!r}.")

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["grid"] = {k: list(v) for k, v in self.grid.items()}
        return out


class MultiplicitySection(SectionBase):
    """Arbitrariness: decisions an equally good model reverses, per person and group."""

    name = "multiplicity"
    title = "Arbitrariness: predictive multiplicity"
    options_type = MultiplicityOptions
    flags = (
        Flag("epsilons", "Loss tolerances of the Rashomon sets, e.g. 0.005,0.01,0.05.",
             kind="list", name="--rashomon-epsilon"),
        Flag("tolerance", "relative (ε = 0.01: within 1 % of the best loss) or absolute.",
             name="--rashomon-tolerance"),
        Flag("models", "Candidate models of the Rashomon set (default: --models).",
             kind="int", name="--rashomon-models"),
        Flag("min_gap", "Smallest group ambiguity excess over the overall that is flagged.",
             kind="float", name="--rashomon-min-gap"),
    )
    #: What the section audits: classifiers and regression models (Rashomon set by MSE).
    tasks = ("classification", "regression")
    #: Options refused on a regression model, and why.
    regression_refused = {
        "loss": "a regression model's Rashomon set is ranked by held-out squared error",
        "holdout": "a regression audit measures its own model under audit",
    }
    payload = "assay.multiplicity.run:MultiplicityPayload"
    schema_file = "assay.multiplicity:schema.json"
    schema_from = "assay.multiplicity.section:payload_schema"
    runner = "assay.multiplicity.run:run_multiplicity"
    pager = "assay.multiplicity.page:multiplicity_page"

    def check(self, context: Any, options: MultiplicityOptions) -> None:
        """Grid values the learner refuses fail here, before any model is trained."""
        from assay.learners import get_learner
        from assay.multiplicity.rashomon import grid_points

        models = options.models or context.config.models
        points = grid_points(options.grid)
        if models < len(points):
            raise InvalidParameterError(
                f"multiplicity.models must be at least the {len(points)} grid points. "
                f"Got {models}.")
        for point in points:
            get_learner(context.learner or context.config.make_learner(), **point)
        from assay.engine import check_population_size

        check_population_size(models, context.dataset.n_rows,
                              len(context.dataset.classes) or 2,
                              name="multiplicity.models", spill=False)
        if options.holdout is not None and context.brings_own_model:
            raise InvalidParameterError(
                f"multiplicity.holdout must be None with a model of your own (its unseen "
                f"rows are held out). Got {options.holdout}.")
        if options.compare is not None:
            if not context.brings_own_model:
                raise InvalidParameterError(
                    "multiplicity.compare needs a model of your own (predictions) to compare "
                    f"with. Got {options.compare!r} alone.")
            from assay.multiplicity.churn import compare_predictions

            compare_predictions(context, options)  # a bad file fails before any training

    def run(self, context: Any, options: MultiplicityOptions) -> Any:
        if context.task == "regression":
            from assay.section.base import load_attribute

            return load_attribute("assay.multiplicity.regression_audit:"
                                  "run_regression_multiplicity")(self, context, options)
        return super().run(context, options)

    def page(self, section: Any, result: Any) -> Any:
        if getattr(section.data, "task", None) == "regression":
            from assay.multiplicity.regression_audit import regression_multiplicity_page

            return regression_multiplicity_page(section, result)
        return super().page(section, result)

    def applies(self, context: Any, options: MultiplicityOptions) -> bool:
        return context.target is not None or options.holdout is not None

    def uses_population(self, config: Any) -> bool:
        """The population only gives the model under audit: none is needed with a model of
        the user's own or with ``holdout`` (no model audited)."""
        return config.predictions is None and config.options(self.name).holdout is None


def payload_schema() -> dict[str, Any]:
    """The payload schema of a classifier's audit, or of a regression model's."""
    from assay.audit.regression import task_schema

    return task_schema("assay.multiplicity:schema.json",
                       "assay.multiplicity:regression.schema.json")


SECTION = MultiplicitySection()
