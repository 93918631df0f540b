"""What an audit does differently when the model under audit predicts a number.

`assay audit` on a regression target (detected as continuous, or ``task = "regression"``)
trains a population of regression models (`assay.engine.regression`) and runs the sections
that declare ``tasks`` with ``"regression"`` (every built-in one: privacy, attribute,
distribution, fairness, multiplicity, dp, release, synthetic); any other section is recorded
as skipped with the reason below, never run.
Options that make no sense for a regression model are refused in one line by
`regression_config`, before any model is trained.
"""

from __future__ import annotations

import dataclasses
import json
from importlib import resources
from typing import Any

from assay._validation import InvalidParameterError

__all__ = ["REGRESSION_LEARNERS", "regression_config", "skip_reason", "supports",
           "task_schema"]

#: Learners of a regression population.
REGRESSION_LEARNERS = ("ridge", "mlp-regressor")
#: Classification learners and their counterpart for a continuous target.
_COUNTERPART = {"logreg": "ridge", "mlp": "mlp-regressor"}

#: Why a built-in section does not run on a regression model yet (every built-in one
#: runs now; a plug-in without ``tasks`` gets the default reason).
_SKIP_REASONS: dict[str, str] = {}


def supports(section: Any, task: str) -> bool:
    """Whether `section` audits a model of this task (``tasks``; classes by default)."""
    return task in getattr(section, "tasks", ("classification",))


def skip_reason(section: Any) -> str:
    """The message of a section skipped on a regression model."""
    why = _SKIP_REASONS.get(section.name, "the section does not declare that it audits "
                                          "regression models")
    return f"not run on a regression model: {why}"


def _changed(options: Any) -> list[str]:
    """Fields of a section's options that differ from their defaults."""
    default = type(options)()
    return [f.name for f in dataclasses.fields(options)
            if getattr(options, f.name) != getattr(default, f.name)]


def _predicts_values(config: Any) -> bool:
    """Whether the configured learner predicts a number (``fit_predict_values``): a
    ``sklearn:`` regressor; its path and parameters are checked here."""
    if not str(config.learner).startswith("sklearn:"):
        return False
    return callable(getattr(config.make_learner(), "fit_predict_values", None))


def regression_config(config: Any, dataset: Any, sections: list[Any]) -> Any:
    """`config` ready for a regression audit, or a one-line `InvalidParameterError`.

    The default learner (``logreg``, no parameters) becomes ``ridge`` (``mlp``:
    ``mlp-regressor``); ``ridge``, ``mlp-regressor`` and ``sklearn:`` regressors are
    kept; another classifier, and any option of a section that does not run on a
    regression model (or that the section refuses for one, its ``regression_refused``)
    are refused. A predictions file (``prediction`` column,
    `assay.engine.predictions.read_regression_predictions`) and every backend are read
    as for classes.
    """
    learner = config.learner
    if learner in _COUNTERPART and not config.learner_params:
        learner = _COUNTERPART[learner]
    elif learner not in REGRESSION_LEARNERS and not _predicts_values(config):
        raise InvalidParameterError(
            f"learner must be one of {', '.join(REGRESSION_LEARNERS)} or a scikit-learn "
            f"regressor ('sklearn:<module>.<Class>') for the regression target "
            f"{dataset.target!r}. Got {config.learner!r}, a classifier.")
    for section in sections:
        options = config.options(section.name)
        changed = _changed(options)
        if not supports(section, "regression"):
            if changed:
                raise InvalidParameterError(
                    f"{section.name} options ({', '.join(changed)}) must be left out for "
                    f"the regression target {dataset.target!r}: the {section.name} "
                    f"section is {skip_reason(section)}.")
            continue
        refuse: dict[str, str] = dict(getattr(section, "regression_refused", {}))
        bad = [name for name in changed if name in refuse]
        if bad:
            raise InvalidParameterError(
                f"{section.name} option(s) {', '.join(bad)} must be left out for the "
                f"regression target {dataset.target!r}: {refuse[bad[0]]}.")
    return dataclasses.replace(config, learner=learner)


def _package_json(path: str) -> dict[str, Any]:
    package, _, file = path.partition(":")
    return json.loads(resources.files(package).joinpath(file).read_text("utf-8"))


def task_schema(classification: str, regression: str) -> dict[str, Any]:
    """A section's payload schema for both tasks: the regression payload's (generated
    file `regression`, ``"package:file.json"``) where ``task`` is ``"regression"``, the
    classification payload's (`classification`) otherwise."""
    return {"if": {"type": "object", "required": ["task"],
                   "properties": {"task": {"const": "regression"}}},
            "then": _package_json(regression), "else": _package_json(classification)}
