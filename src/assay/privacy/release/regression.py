"""Release checks for a regression model: residual degrees of freedom and leaf sizes.

The checks and verdicts of `assay.privacy.release.checks` (same names, severities and
``reject`` / ``review`` / ``release`` recommendation), read for a model that predicts a
number:

* **residual degrees of freedom** (linear models, ridge, MLPs, single trees): training
  rows minus the model's effective parameters below ``min_residual_dof``: *reject*. For
  ordinary least squares and ridge the effective parameters are the trace of the hat
  matrix H (ŷ = H y; Hastie, Tibshirani & Friedman, *Elements of Statistical Learning*,
  eq. 3.50): Σ d_j² / (d_j² + α) over the singular values d_j of the centred training
  rows, plus one for an unpenalised intercept (α = 0: the rank plus one). Other linear
  models, MLPs and single trees count their fitted numbers as the classification check
  does.
* **leaf k-anonymity** (regression trees and their ensembles): a leaf holding fewer than
  ``min_leaf_rows`` training rows: *reject*. A regression leaf predicts a value computed
  from its rows' targets alone; a leaf of one row publishes that person's target.
* stored rows, risky hyper-parameters, leaf combinations across an ensemble's trees and
  the measured attacks as for classifiers; small cells inside leaves and class
  disclosure are "n/a" (a regression model has no classes).

Thresholds: the same `ReleaseThresholds`. Their defaults follow the statistical
disclosure control practice the classification checks follow: SACRO's ACRO checker
(Green et al., "ACRO: A tool for automating the statistical disclosure control of
research outputs", 2023; ``acro/default.yaml``) asks a released regression for at least
``safe_dof_threshold: 10`` residual degrees of freedom and a cell (here a leaf) for at
least ``safe_threshold: 10`` people.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np

from assay._validation import InvalidParameterError
from assay.privacy.release.checks import (
    ReleaseReport,
    ReleaseThresholds,
    _check_attribute,
    _check_dof,
    _check_hyperparameters,
    _check_leaf_combinations,
    _check_leaves,
    _check_membership,
    _check_stored_rows,
    _failed,
    _final_step,
    _n_parameters,
    _not_applicable,
    _not_run,
    _passed,
    _recommend,
    _trees,
    _triple,
)

__all__ = ["effective_dof", "regression_evidence", "regression_release_checks",
           "regression_release_report", "release_for_regressor"]

_NO_CLASSES = "a regression model predicts a number: it has no classes"


def effective_dof(X: Any, alpha: float = 0.0, fit_intercept: bool = True) -> float:
    """Effective parameters of a ridge (α > 0) or least-squares (α = 0) fit on rows `X`:
    the trace of its hat matrix.

    ``Σ d_j² / (d_j² + α)`` over the singular values d_j of `X` (centred when the model
    fits an intercept, which is not penalised and adds 1). Computed from the eigenvalues
    of the d × d Gram matrix, never the n × n hat matrix.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(50, 3))
    >>> round(effective_dof(X, 0.0), 6)  # OLS: 3 slopes and the intercept
    4.0
    >>> effective_dof(X, 1e9) < 1.001  # all slopes shrunk away: the intercept is left
    True
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 1:
        raise InvalidParameterError(f"X must be a 2-D array with rows. Got shape {X.shape}.")
    alpha = float(alpha)
    if not np.isfinite(alpha) or alpha < 0:
        raise InvalidParameterError(f"alpha must be a number >= 0. Got {alpha!r}.")
    if fit_intercept:
        X = X - X.mean(axis=0)
    eig = np.clip(np.linalg.eigvalsh(X.T @ X), 0.0, None)  # the d_j²
    # Directions with no variance carry no parameter (the rank, for least squares).
    nonzero = eig > eig.max(initial=0.0) * max(X.shape) * np.finfo(float).eps
    return float(np.sum(eig[nonzero] / (eig[nonzero] + alpha)) + (1.0 if fit_intercept else 0.0))


def _hat_trace(model: Any, X: np.ndarray) -> tuple[float, str] | None:
    """Effective parameters of a fitted scikit-learn least-squares or ridge regressor
    (the trace of its hat matrix on its training rows), or None for another model."""
    from sklearn.linear_model import LinearRegression, Ridge, RidgeCV

    if isinstance(model, LinearRegression) and not model.positive:
        alpha = 0.0
    elif isinstance(model, Ridge | RidgeCV) and not getattr(model, "positive", False):
        alpha = getattr(model, "alpha_", model.alpha)
        if np.size(alpha) != 1:
            return None  # one alpha per target: not a single-output ridge
        alpha = float(np.asarray(alpha).reshape(-1)[0])
    else:
        return None
    dof = effective_dof(X, alpha, bool(model.fit_intercept))
    return dof, f"trace of the hat matrix (alpha = {alpha:g})"


def _check_effective_dof(n_params: float | None, how: str, n_train: int, model_name: str,
                         thresholds: ReleaseThresholds) -> Any:
    """The residual degrees-of-freedom check on effective (possibly fractional)
    parameters, in the classification check's words and figures."""
    if n_params is None:
        return _check_dof(None, n_train, model_name, thresholds)
    dof, t = n_train - n_params, thresholds.min_residual_dof
    figures = dict(n_parameters=round(float(n_params), 4), n_train=n_train,
                   residual_dof=round(float(dof), 4), threshold=t, parameters_from=how)
    text = (f"{n_params:,.1f} effective parameters ({how}) for {n_train:,} training rows: "
            f"{dof:,.1f} residual degrees of freedom (at least {t} needed)")
    if dof < t:
        return _failed("residual_dof", text + ": the model can encode its training data.",
                       **figures)
    return _passed("residual_dof", text + ".", **figures)


def _leaf_sizes(model: Any, trees: list[Any], X: np.ndarray) -> list[np.ndarray]:
    """Per tree, training rows in each leaf, as (n_leaves, 1) counts."""
    leaves = np.asarray(model.apply(X)).astype(np.int64).reshape(X.shape[0], -1)
    out = []
    for t, tree in enumerate(trees):
        counts = np.bincount(leaves[:, t], minlength=tree.node_count)
        out.append(counts[tree.children_left == -1][:, None])
    return out


def regression_release_checks(model: Any, X: Any, y: Any, *,
                              thresholds: ReleaseThresholds | None = None,
                              evidence: dict[str, Any] | None = None) -> ReleaseReport:
    """Run the release checks on a fitted scikit-learn regressor and its training rows.

    Parameters
    ----------
    model : fitted scikit-learn regressor
        A Pipeline is unwrapped to its final step, its earlier steps applied to `X`.
    X : array-like of shape (n_train, n_features)
        The rows the model was trained on (leaf sizes and the hat matrix are read there).
    y : array-like of shape (n_train,)
        Their targets.
    thresholds : ReleaseThresholds, optional
    evidence : dict, optional
        Measured attacks (`regression_evidence`).

    Returns
    -------
    ReleaseReport
    """
    thresholds = thresholds or ReleaseThresholds()
    if not isinstance(thresholds, ReleaseThresholds):
        raise InvalidParameterError(
            f"thresholds must be ReleaseThresholds. Got {type(thresholds).__name__}.")
    if not hasattr(model, "get_params"):
        raise InvalidParameterError(f"model must be a fitted scikit-learn regressor. Got "
                                    f"{type(model).__name__}.")
    if y is None or len(X) != len(y):
        raise InvalidParameterError(f"y must hold one target per row of X ({len(X)}). Got "
                                    f"{'none' if y is None else len(y)}.")
    final, transform = _final_step(model)
    name = type(final).__name__
    Xf = np.asarray(transform.transform(X) if transform is not None else X, dtype=np.float32)
    n_train = len(X)
    trees = _trees(final)
    if trees is None:
        leaf = _not_applicable("leaf_k_anonymity", f"a {name} model has no leaves.")
        combos = _not_applicable("leaf_combinations", f"a {name} model has no leaves.")
    else:
        sizes = _leaf_sizes(final, trees, Xf)
        leaf, _ = _check_leaves(sizes, thresholds)  # its small-cells twin reads classes
        single = int(sum(int(np.sum(s == 1)) for s in sizes))
        leaf.figures["n_single_row_leaves"] = single
        if leaf.status == "fail":
            leaf.reason += (f" A regression leaf's value is computed from its rows' targets "
                            f"alone: {single:,} leaves hold one row and publish its target.")
        combos = (_check_leaf_combinations(final, trees, Xf, thresholds) if len(trees) > 1
                  else _not_applicable("leaf_combinations", f"a {name} model is not an "
                                       "ensemble of trees (its leaves are checked above)."))
    hat = _hat_trace(final, np.asarray(Xf, dtype=np.float64))
    if hat is not None:
        dof = _check_effective_dof(hat[0], hat[1], n_train, name, thresholds)
    else:
        # A regression tree: one value per leaf and its splits (n_classes = 1).
        dof = _check_dof(_n_parameters(final, trees, 1), n_train, name, thresholds)
    checks = [_check_stored_rows(final), leaf, dof,
              _not_applicable("small_cells", f"{_NO_CLASSES} (leaf sizes are checked "
                              "above)."),
              _not_applicable("class_disclosure", f"{_NO_CLASSES} and no class "
                              "probabilities."),
              _check_hyperparameters(final, thresholds), combos,
              _check_membership(evidence, thresholds), _check_attribute(evidence)]
    return ReleaseReport(_recommend(checks), name, n_train, checks, thresholds)


def release_for_regressor(learner: Any, X: Any, y: Any, train_mask: Any = None, *,
                          random_state: int = 0,
                          thresholds: ReleaseThresholds | None = None,
                          evidence: dict[str, Any] | None = None
                          ) -> tuple[Any, ReleaseReport]:
    """Check the regressor a learner fits on the training rows.

    A scikit-learn regressor (``sklearn:module.Class``) is fitted once, seeded, on the
    rows and checked in full. The built-in ``ridge`` needs no fit: its effective
    parameters are the trace of its hat matrix on the rows; ``mlp-regressor`` counts its
    weights. Their structural checks say they do not apply (no leaves, no stored rows).

    Returns
    -------
    (model, ReleaseReport)
        The fitted estimator (None for a built-in learner) and the report.
    """
    from assay.learners import get_learner

    spec = get_learner(learner)
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y, dtype=np.float64)
    mask = np.ones(len(y), dtype=bool) if train_mask is None else np.asarray(train_mask)
    thresholds = thresholds or ReleaseThresholds()
    if hasattr(spec, "estimator"):
        model = cast(Any, spec)._seeded_clone(int(random_state))
        model.fit(X[mask], y[mask])
        return model, regression_release_checks(model, X[mask], y[mask],
                                                thresholds=thresholds, evidence=evidence)
    config = spec.get_config()
    n_train, d = int(mask.sum()), X.shape[1]
    how, n_params = "", None
    if config.get("name") == "ridge":
        n_params = effective_dof(X[mask], float(config["alpha"]),
                                 bool(config.get("fit_intercept", True)))
        how = f"trace of the hat matrix (alpha = {float(config['alpha']):g})"
    elif config.get("name") == "mlp-regressor":
        h = int(config.get("hidden", 128))
        n_params, how = float(d * h + h + h + 1), "weights and biases"
    name = str(config.get("name"))
    no_leaves = f"a {name} model has no leaves."
    checks = [_passed("stored_rows", f"a {name} model keeps only its weights.", model=name),
              _not_applicable("leaf_k_anonymity", no_leaves),
              _check_effective_dof(n_params, how, n_train, name, thresholds),
              _not_applicable("small_cells", f"{_NO_CLASSES}."),
              _not_applicable("class_disclosure", f"{_NO_CLASSES} and no class "
                              "probabilities."),
              _passed("hyperparameters", f"no tree or neighbour settings in {name}.",
                      model=name),
              _not_applicable("leaf_combinations", no_leaves),
              _check_membership(evidence, thresholds), _check_attribute(evidence)]
    report = ReleaseReport(_recommend(checks), f"{name} (assay's built-in learner)", n_train,
                           checks, thresholds)
    return None, report


def regression_evidence(results: dict[str, Any], fpr: float = 0.01) -> dict[str, Any]:
    """The measured attacks of a regression audit's privacy and attribute sections, in the
    form the checks read (`assay.privacy.release.checks.evidence_from_results`)."""
    out: dict[str, Any] = {}
    privacy = results.get("privacy")
    if privacy is not None and privacy.status == "ok" and privacy.data is not None:
        attacks = []
        for a in privacy.data.attacks:  # RegressionAttack
            levels = [f for f in a.tpr if f <= fpr + 1e-12]
            tpr, note = None, None
            if not levels:
                note = f"not measured at or below {fpr:g}"
            elif a.tpr[max(levels)] is None:
                note = a.tpr_notes.get(max(levels)) or f"not estimable at {max(levels):g} FPR"
            else:
                tpr = _triple(a.tpr[max(levels)])
            entry = {"attack": a.name, "auc": _triple(a.auc), "tpr": tpr, "tpr_note": note}
            if entry["auc"] is not None:
                attacks.append(entry)
        out["membership"] = attacks
    elif privacy is not None:
        out["membership_missing"] = ("the audit's membership-inference section did not run "
                                     f"({privacy.message or 'failed'}).")
    attribute = results.get("attribute")
    if attribute is not None and attribute.status == "ok" and attribute.data is not None:
        r = attribute.data  # RegressionAttributePayload
        best = r.best
        out["attribute"] = {"sensitive": r.sensitive, "strongest": r.strongest,
                            "contribution": None if best is None
                            else _triple(best.contribution),
                            "reason": r.strongest_reason}
    return out


def regression_release_report(context: Any, options: Any,
                               model: Any = None) -> ReleaseReport:
    """The release report of a regression audit: a model file's fitted regressor (`model`,
    checked on every row of the table, as a classifier's file is), the regressor the
    learner fits on the audited model's training rows (or every row), or, for a model of
    the user's own, the checks that need the model marked as not run."""
    evidence = regression_evidence(context.extras.get("results", {}), options.mia_fpr)
    if model is not None:
        return regression_release_checks(
            model, context.dataset.dense_X("the release section"), context.dataset.y,
            thresholds=options.thresholds, evidence=evidence)
    if context.brings_own_model:
        structure = "needs the model itself; only its predictions were given"
        checks = [_not_run("stored_rows", structure), _not_run("leaf_k_anonymity", structure),
                  _not_run("residual_dof", structure),
                  _not_applicable("small_cells", f"{_NO_CLASSES}."),
                  _not_applicable("class_disclosure", f"{_NO_CLASSES} and no class "
                                  "probabilities."),
                  _not_run("hyperparameters", structure),
                  _not_run("leaf_combinations", structure),
                  _check_membership(evidence, options.thresholds), _check_attribute(evidence)]
        return ReleaseReport(_recommend(checks), context.target.source,
                             context.target.n_members, checks, options.thresholds)
    rows = None if options.fit_on == "all" else context.target.member
    _, report = release_for_regressor(
        context.learner, context.dataset.dense_X("the release section"), context.dataset.y,
        rows, random_state=context.config.seed, thresholds=options.thresholds,
        evidence=evidence)
    return report
