"""The regression front's confirmed fix, deployable, and its model card.

The fix is a `BarycenterFairRegressor`: the base model (a fitted regressor, or the audited
model's prediction read from X's ``prediction`` column when assay did not train it), the
fitted groups' quantile tables and alpha; the groups are read from X by column name. It is
written with skops (`assay.fairness.export.export_model`) and loads through the exact-type
allow-list of `assay.learners.model_file`. Nothing is written unless the front confirmed a
fix: the best candidate of a front without one is not a fix.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assay._validation import InvalidParameterError

__all__ = ["audited_base", "deployable_fix", "group_columns", "regression_model_card",
           "write_regression_fix"]

#: The files a regression fix is written as, in its folder.
MODEL_FILE, CARD_FILE = "model.skops", "model_card.md"


def group_columns(protected: Sequence[str], features: Sequence[str] | None) -> list[str]:
    """X's column of each protected attribute's group label: its own name, or
    ``<name>_group`` where a feature already has that name (German credit's numeric age
    is a feature; its age band is the group)."""
    taken = set(features or ())
    return [f"{p}_group" if p in taken else str(p) for p in protected]


def audited_base(context: Any) -> Any:
    """The model under audit as a scikit-learn estimator where assay trained it as one:
    population model 0 of the ``ridge`` learner, as a `Ridge` with that model's
    coefficients (its predictions equal the audited ones up to the last bits of the
    matrix product); None otherwise (the user's own model: its predictions are read)."""
    from assay.learners.ridge import RidgeLearner, fit_ridge

    target, learner = context.target, context.learner
    if not (isinstance(learner, RidgeLearner)
            and str(target.source).startswith("population")):
        return None
    import numpy as np
    from sklearn.linear_model import Ridge

    X = context.dataset.dense_X("the exported fix's base model")
    fit = fit_ridge(X, np.asarray(context.dataset.y, dtype=np.float64),
                    np.asarray(target.member, dtype=bool)[None, :], learner.alpha,
                    learner.fit_intercept)
    base = Ridge(alpha=learner.alpha, fit_intercept=learner.fit_intercept)
    base.coef_ = np.asarray(fit.coef[0], dtype=np.float64)
    base.intercept_ = float(fit.intercept[0])
    base.n_features_in_ = int(X.shape[1])
    return base


def deployable_fix(front: Any, *, estimator: Any = None,
                   features: Sequence[str] | None = None,
                   groups: Sequence[str] | None = None) -> Any:
    """The front's confirmed fix as a `BarycenterFairRegressor` reading the base model
    `estimator` on X's `features` (None: the prediction from X's ``prediction`` column)
    and the groups from X's `groups` columns (default: the protected attributes' names).

    Raises
    ------
    InvalidParameterError
        No fix was confirmed, or the fix is not a barycenter model.
    """
    if front is None or not front.fixed:
        raise InvalidParameterError(
            "export must follow a confirmed fix. Got a front whose verdict is: "
            f"{'no front' if front is None else front.verdict.reason}")
    chosen = front.preferred_candidate
    if chosen.model is None:
        raise InvalidParameterError(
            f"export must be of a barycenter fix (a deterministic model). Got "
            f"{chosen.name}, a randomized bounded-group-loss model.")
    model = copy.deepcopy(chosen.model)
    attributes = tuple(model.groups)
    model.set_params(estimator=estimator,
                     features=None if features is None else tuple(features),
                     groups=tuple(groups) if groups is not None else attributes,
                     attributes=attributes)
    return model


def _group_table(model: Any, front: Any) -> list[str]:
    counts = {label: round(share * front.rows["fit"]) for label, share in model.shares_.items()}
    return [f"| {label} | {counts[label]} | {100 * share:.1f} % |"
            for label, share in sorted(model.shares_.items())]


def regression_model_card(front: Any, model: Any, *, dataset: dict[str, Any],
                          export: dict[str, Any] | None = None, inputs: str = "") -> str:
    """A short Markdown model card of the confirmed fix `model` of `front`: what was
    fixed, the confirmed gap change and cost with their intervals, the groups, the data."""
    from assay.fairness.regression_front import (
        _DISTANCE_WORDS,
        _distance_estimate,
        _relative_estimate,
    )

    chosen = front.preferred_candidate
    comp = front.verdict.comparison
    word = _DISTANCE_WORDS[front.distance]
    how = (f"cross-fitted over the {front.rows['confirm']} held-out rows "
           f"({front.crossfit['folds']} folds x {front.crossfit['repeats']} repeats; every "
           f"row predicted by a choice made without it)" if front.confirmed_by == "crossfit"
           else f"on {front.rows['confirm']} held-out rows that took no part in the choice")
    lines = [
        f"# Model card: {chosen.name}",
        "",
        f"- what was fixed: the {word} distance between a group's predictions and everyone "
        f"else's (largest over every protected attribute and intersection), closed by "
        f"Wasserstein-barycenter post-processing (Chzhen et al. 2020) at alpha = "
        f"{model.alpha:g} (1: the groups' prediction distributions made equal)",
        f"- data: {dataset.get('name')} (fingerprint `{dataset.get('fingerprint')}`), "
        f"target `{dataset.get('target')}`, protected "
        f"{', '.join(dataset.get('protected', []))}",
        f"- rows: {front.rows['fit']} to fit the groups' quantile tables (the base model's "
        f"training rows), {front.rows['choose']} held out to choose, confirmed {how}",
    ]
    base = ("the audited model's own predictions (read from X)" if model.estimator is None
            else f"{type(model.estimator).__name__}, the audited model (its predictions "
                 f"equal the audited ones up to the last bits of floating-point arithmetic)")
    lines.append(f"- base model: {base}")
    if inputs:
        lines.append(f"- inputs: {inputs}")
    lines += ["", "## Confirmed figures (95 % intervals, paired bootstrap)", "",
              "| figure | value |", "| --- | --- |",
              f"| {word} gap of this model | {_distance_estimate(comp.gap)} |",
              f"| {word} gap of the unmitigated model | "
              f"{_distance_estimate(comp.baseline_gap)} |",
              f"| gap change | {_distance_estimate(comp.difference, signed=True)} |",
              f"| cost: relative {front.error.upper()} increase | "
              f"{_relative_estimate(comp.cost, signed=True)} |",
              "", front.verdict.reason, "",
              "## Groups (quantile tables)", "",
              "| group | fitting rows | share |", "| --- | --- | --- |",
              *_group_table(model, front), "",
              "A group not listed (or unseen) reads the pooled group's table, or everyone's."]
    if export is not None:
        lines += ["", "## Export", "",
                  f"- file: `{Path(export['path']).name}` ({export['format']}, sha256 "
                  f"`{export['sha256']}`)",
                  "- load with `assay.fairness.export.load_model(path)` (an exact allow-list "
                  "of types), or `skops.io.load(path, trusted=[...])` trusting exactly: "
                  + ", ".join(f"`{t}`" for t in export["trusted_types"])]
    return "\n".join(lines) + "\n"


def write_regression_fix(front: Any, folder: str | Path, *, dataset: dict[str, Any],
                         estimator: Any = None, features: Sequence[str] | None = None,
                         groups: Sequence[str] | None = None
                         ) -> dict[str, str]:
    """Write the confirmed fix (`deployable_fix`) as ``model.skops`` and its
    ``model_card.md`` into `folder`; the paths written."""
    from assay.fairness.export import export_model

    model = deployable_fix(front, estimator=estimator, features=features, groups=groups)
    folder = Path(folder)
    info = export_model(model, folder / MODEL_FILE, onnx=False)
    reads = ("the base model's feature columns "
             + ", ".join(f"`{c}`" for c in model.features)
             if model.features is not None else
             f"the audited model's prediction in column `{model.prediction_column}`")
    inputs = (f"a DataFrame holding {reads} and the group columns "
              + ", ".join(f"`{c}` ({a})" for c, a in zip(model.groups, model.attributes))
              + " by name, labelled as the audit read them")
    card = regression_model_card(front, model, dataset=dataset, export=info, inputs=inputs)
    (folder / CARD_FILE).write_text(card, encoding="utf-8")
    return {"model": str(folder / MODEL_FILE), "card": str(folder / CARD_FILE)}
