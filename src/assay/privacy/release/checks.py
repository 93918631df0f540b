"""Disclosure checks a model must pass before it leaves a trusted research environment.

An output checker in a trusted research environment (TRE) decides whether a trained
model may be released. The model file itself can disclose the people it was trained on,
whatever its accuracy: a tree leaf that holds three training rows describes those three
people; a support-vector machine *stores* training rows verbatim; a linear model with
as many parameters as rows can encode its data. `release_checks` runs the checks such a
checker needs (in the spirit of SACRO-ML's structural attack and safe-model rules, with
every threshold stated and configurable) and turns them into one recommendation:

* **leaf k-anonymity** (tree models) — leaves holding fewer than ``min_leaf_rows``
  training rows (their rows are singled out by the path to the leaf): *reject*;
* **small cells** (tree models) — a class held by between 1 and ``min_cell_rows - 1``
  training rows inside a leaf (a rare outcome of a few identifiable people): *review*;
* **class disclosure** (any model, also from predictions alone) — training rows for which
  the model gives some class probability 0 ("certainly not c" about a person): *review*;
* **residual degrees of freedom** (linear models, MLPs, single trees) — training rows minus
  fitted parameters below ``min_residual_dof`` (the model can encode its data): *reject*;
* **stored rows** — models that keep training rows in the file (SVM support vectors,
  nearest neighbours, Gaussian processes, kernel density): *reject*;
* **hyper-parameters** — risky settings (``min_samples_leaf`` below
  ``min_samples_leaf``, unbounded ``max_depth``, ``n_neighbors`` below ``min_leaf_rows``):
  *review*;
* **leaf combinations** (tree ensembles) — training rows grouped by the leaf they reach in
  every tree (``estimator.apply``): a group smaller than ``min_leaf_rows`` singles its rows
  out, even when every single leaf is large (k-anonymity of the whole ensemble, as
  SACRO-ML's check): *reject*;
* **membership inference** (measured attacks, from an audit's privacy section) — the
  strongest attack's AUC above ``max_mia_auc`` or its TPR at ``mia_fpr`` FPR above
  ``max_mia_tpr``: *reject*;
* **attribute inference** (from an audit's attribute section) — an attack that beats both
  imputation and the majority guess with a model contribution whose interval lies above
  0: *review*.

The recommendation is **reject** when any check with severity "reject" fails, **review**
when a "review" check fails or a check could not run (the checker must then look
themselves), and **release** otherwise. Every reason carries the figure behind it, in
words an output checker who is not an ML engineer can read.

Works on a fitted scikit-learn estimator (pipelines are unwrapped to their final step;
the structural checks need the training rows to count leaf occupancy) and on predictions
alone (`TargetPredictions`): then only class disclosure runs and the result says which
checks could not run and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from assay._serial import Serial, meta
from assay._validation import InvalidParameterError, check_scalar
from assay.report.result import format_figure, format_rate

__all__ = [
    "CHECKS",
    "CheckResult",
    "ReleaseReport",
    "ReleaseThresholds",
    "release_checks",
    "evidence_from_results",
    "release_for_learner",
]

#: Every check, in report order, with its severity when it fails.
CHECKS = {
    "stored_rows": "reject",
    "leaf_k_anonymity": "reject",
    "residual_dof": "reject",
    "small_cells": "review",
    "class_disclosure": "review",
    "hyperparameters": "review",
    "leaf_combinations": "reject",
    "membership_inference": "reject",
    "attribute_inference": "review",
}
#: Plain-language titles of the checks.
TITLES = {
    "stored_rows": "Training rows stored in the model",
    "leaf_k_anonymity": "Leaf k-anonymity",
    "residual_dof": "Residual degrees of freedom",
    "small_cells": "Small cells inside leaves",
    "class_disclosure": "Class disclosure (zero predicted probability)",
    "hyperparameters": "Risky hyper-parameters",
    "leaf_combinations": "Leaf combinations across the ensemble's trees",
    "membership_inference": "Measured membership inference",
    "attribute_inference": "Measured attribute inference",
}
#: Estimator attributes that hold training rows, by class name (searched in this order).
_STORED = (
    ("support_vectors_", "support vectors (training rows kept verbatim)"),
    ("_fit_X", "the whole training set (nearest-neighbour model)"),
    ("X_train_", "the whole training set (Gaussian process)"),
)
_INSTANCE_MODELS = ("KNeighbors", "RadiusNeighbors", "NearestCentroid", "KernelDensity",
                    "GaussianProcess", "SVC", "SVR", "NuSVC", "NuSVR", "OneClassSVM",
                    "LabelPropagation", "LabelSpreading")
#: Probabilities at or below this count as zero for class disclosure.
ZERO_PROBABILITY = 1e-12


@dataclass(frozen=True)
class ReleaseThresholds(Serial):
    """Thresholds of the release checks (all stated in the result).

    Parameters
    ----------
    min_leaf_rows : int, default=10
        k of leaf k-anonymity: a leaf must hold at least this many training rows.
    min_cell_rows : int, default=10
        A class present in a leaf must be held by at least this many of its rows.
    min_residual_dof : int, default=10
        Training rows minus fitted parameters must be at least this.
    min_samples_leaf : int, default=5
        Smallest acceptable ``min_samples_leaf`` hyper-parameter of a tree model.
    max_class_disclosure : float, default=0.0
        Largest acceptable share of training rows given a zero class probability.
    max_mia_auc : float, default=0.6
        Largest acceptable AUC of a measured membership-inference attack (0.5: guessing).
    mia_fpr : float, default=0.01
        FPR at which the attack's TPR is read.
    max_mia_tpr : float, default=0.03
        Largest acceptable TPR at `mia_fpr` (3 times the FPR: three members found per
        non-member falsely accused).
    """

    min_leaf_rows: int = 10
    min_cell_rows: int = 10
    min_residual_dof: int = 10
    min_samples_leaf: int = 5
    max_class_disclosure: float = 0.0
    max_mia_auc: float = 0.6
    mia_fpr: float = 0.01
    max_mia_tpr: float = 0.03

    __json_plain__ = True  # as given (a TOML 0 stays 0)
    __json_required__ = ("min_leaf_rows", "min_cell_rows", "min_residual_dof",
                         "min_samples_leaf", "max_class_disclosure")

    def __post_init__(self) -> None:
        check_scalar(self.min_leaf_rows, "release.min_leaf_rows", kind=int, low=1)
        check_scalar(self.min_cell_rows, "release.min_cell_rows", kind=int, low=1)
        check_scalar(self.min_residual_dof, "release.min_residual_dof", kind=int, low=0)
        check_scalar(self.min_samples_leaf, "release.min_samples_leaf", kind=int, low=1)
        check_scalar(self.max_class_disclosure, "release.max_class_disclosure", low=0, high=1)
        check_scalar(self.max_mia_auc, "release.max_mia_auc", low=0.5, high=1)
        check_scalar(self.mia_fpr, "release.mia_fpr", low=0, high=1, low_open=True,
                     high_open=True)
        check_scalar(self.max_mia_tpr, "release.max_mia_tpr", low=0, high=1)


@dataclass
class CheckResult(Serial):
    """One release check.

    Attributes
    ----------
    name : str
        Key in `CHECKS`.
    status : {"pass", "fail", "not_run", "n/a"}
        "not_run": the check applies but lacked what it needs (the checker must look);
        "n/a": the check does not apply to this kind of model (nothing to disclose).
    severity : {"reject", "review"}
        What a failure means for the recommendation.
    reason : str
        The finding in plain words, with the figure behind it.
    figures : dict
        The numbers behind the reason (counts, shares, thresholds).
    """

    name: str
    status: str = field(metadata=meta(schema={"enum": ["pass", "fail", "not_run", "n/a"]}))
    severity: str = field(metadata=meta(schema={"enum": ["reject", "review"]}))
    reason: str
    figures: dict[str, Any] = field(default_factory=dict)

    __json_plain__ = True
    __json_required__ = ("figures",)
    __json_layout__ = ("name", "title", "status", "severity", "reason", "figures")

    @property
    def title(self) -> str:
        return TITLES.get(self.name, self.name)


@dataclass
class ReleaseReport(Serial):
    """The release recommendation and every check behind it.

    Attributes
    ----------
    recommendation : {"reject", "review", "release"}
    model : str
        What was checked (estimator class, or the predictions source).
    n_train : int or None
        Training rows the checks counted.
    checks : list of CheckResult
    thresholds : ReleaseThresholds
    """

    recommendation: str = field(metadata=meta(schema={"enum": ["reject", "review",
                                                               "release"]}))
    model: str
    n_train: int | None
    checks: list[CheckResult]
    thresholds: ReleaseThresholds

    __json_plain__ = True
    __json_layout__ = ("recommendation", "model", "n_train", "reasons", "checks",
                       "thresholds")

    @property
    def reasons(self) -> list[str]:
        """Every failed check's reason, rejecting ones first, then the checks not run."""
        order = {"reject": 0, "review": 1}
        failed = sorted((c for c in self.checks if c.status == "fail"),
                        key=lambda c: order[c.severity])
        lines = [f"{c.title}: {c.reason}" for c in failed]
        lines += [f"{c.title} could not run: {c.reason}" for c in self.checks
                  if c.status == "not_run"]
        return lines

    def check(self, name: str) -> CheckResult:
        """The check called ``name``."""
        for c in self.checks:
            if c.name == name:
                return c
        raise InvalidParameterError(f"name must be one of {', '.join(CHECKS)}. Got {name!r}.")



# --------------------------------------------------------------------------- helpers


def _final_step(estimator: Any) -> tuple[Any, Any]:
    """The last step of a (nested) Pipeline and the transform before it (or None)."""
    transform = None
    while hasattr(estimator, "steps") and hasattr(estimator, "__getitem__"):
        transform = estimator[:-1]
        estimator = estimator.steps[-1][1]
    return estimator, transform


def _not_run(name: str, why: str) -> CheckResult:
    return CheckResult(name, "not_run", CHECKS[name], why)


def _not_applicable(name: str, why: str) -> CheckResult:
    return CheckResult(name, "n/a", CHECKS[name], why)


def _passed(name: str, reason: str, **figures: Any) -> CheckResult:
    return CheckResult(name, "pass", CHECKS[name], reason, figures)


def _failed(name: str, reason: str, **figures: Any) -> CheckResult:
    return CheckResult(name, "fail", CHECKS[name], reason, figures)


def _trees(model: Any) -> list[Any] | None:
    """The fitted scikit-learn trees of a tree model (``tree_`` objects), or None."""
    if hasattr(model, "tree_") and hasattr(model.tree_, "children_left"):
        return [model.tree_]
    estimators = getattr(model, "estimators_", None)
    if estimators is None:
        return None
    flat = np.asarray(estimators, dtype=object).reshape(-1)
    if flat.size and all(hasattr(e, "tree_") for e in flat):
        return [e.tree_ for e in flat]
    return None


def _leaf_class_counts(model: Any, trees: list[Any], X: np.ndarray, y: np.ndarray
                       ) -> list[np.ndarray]:
    """Per tree, training rows per (leaf, class): one bincount per tree on `apply`."""
    leaves = np.asarray(model.apply(X)).astype(np.int64)  # boosting returns floats
    if leaves.ndim == 1:
        leaves = leaves[:, None]
    leaves = leaves.reshape(leaves.shape[0], -1)
    n_classes = int(y.max()) + 1
    out = []
    for t, tree in enumerate(trees):  # a handful to hundreds of trees, not rows
        counts = np.bincount(leaves[:, t] * n_classes + y,
                             minlength=tree.node_count * n_classes)
        counts = counts.reshape(tree.node_count, n_classes)
        is_leaf = tree.children_left == -1
        out.append(counts[is_leaf])
    return out


def _rows(n: int) -> str:
    return f"{n:,} training row" + ("" if n == 1 else "s")


# --------------------------------------------------------------------------- checks


def _check_stored_rows(model: Any) -> CheckResult:
    name = type(model).__name__
    for attribute, what in _STORED:
        value = getattr(model, attribute, None)
        if value is not None and hasattr(value, "shape"):
            n = int(value.shape[0])
            return _failed("stored_rows", f"the {name} model keeps {n:,} {what} in the file; "
                           f"releasing it releases those rows.", n_stored=n, model=name)
    if any(name.startswith(prefix) for prefix in _INSTANCE_MODELS):
        return _failed("stored_rows", f"a {name} model keeps training rows in the file; "
                       "releasing it releases those rows.", model=name)
    return _passed("stored_rows", f"a {name} model keeps no training rows in the file.",
                   model=name)


def _check_leaves(counts: list[np.ndarray], thresholds: ReleaseThresholds
                  ) -> tuple[CheckResult, CheckResult]:
    k = thresholds.min_leaf_rows
    sizes = np.concatenate([c.sum(axis=1) for c in counts])
    occupied = sizes[sizes > 0]
    small = int(np.sum(occupied < k))
    smallest = int(occupied.min()) if occupied.size else 0
    rows_small = int(occupied[occupied < k].sum())
    figures = dict(n_trees=len(counts), n_leaves=int(occupied.size), n_small_leaves=small,
                   smallest_leaf=smallest, rows_in_small_leaves=rows_small, threshold=k)
    where = f" over {len(counts)} trees" if len(counts) > 1 else ""
    if small:
        leaf = _failed(
            "leaf_k_anonymity",
            f"{small:,} of {occupied.size:,} leaves{where} hold fewer than {k} training rows "
            f"(the smallest holds {_rows(smallest)}); the {rows_small:,} rows in them can be "
            f"singled out by the path to their leaf.", **figures)
    else:
        leaf = _passed("leaf_k_anonymity", f"every one of the {occupied.size:,} leaves{where} "
                       f"holds at least {k} training rows (smallest: {smallest}).", **figures)
    m = thresholds.min_cell_rows
    cells = np.concatenate([c.reshape(-1) for c in counts])
    bad = (cells > 0) & (cells < m)
    n_bad = int(bad.sum())
    cell_figures = dict(n_small_cells=n_bad, smallest_cell=int(cells[cells > 0].min())
                        if np.any(cells > 0) else 0, threshold=m)
    if n_bad:
        cell = _failed("small_cells", f"{n_bad:,} leaf-and-class cells{where} hold between 1 "
                       f"and {m - 1} training rows: the model reveals a rare outcome of a few "
                       f"identifiable people.", **cell_figures)
    else:
        cell = _passed("small_cells", f"every class present in a leaf is held by at least "
                       f"{m} training rows.", **cell_figures)
    return leaf, cell


def _n_parameters(model: Any, trees: list[Any] | None, n_classes: int) -> int | None:
    """Fitted parameters of a linear model, an MLP or a single tree (None: not counted)."""
    if trees is not None:
        if len(trees) != 1:
            return None  # an ensemble's parameters are not independent: no DoF reading
        n_leaves = int(np.sum(trees[0].children_left == -1))
        return n_leaves * max(n_classes - 1, 1) + (n_leaves - 1)
    if hasattr(model, "coefs_") and hasattr(model, "intercepts_"):
        return int(sum(np.size(w) for w in model.coefs_) +
                   sum(np.size(b) for b in model.intercepts_))
    if hasattr(model, "coef_"):
        return int(np.size(model.coef_) + np.size(getattr(model, "intercept_", 0)))
    return None


def _check_dof(n_params: int | None, n_train: int | None, model_name: str,
               thresholds: ReleaseThresholds) -> CheckResult:
    if n_params is None:
        return _not_applicable("residual_dof", f"the parameters of a {model_name} model are "
                               "not counted (linear models, MLPs and single trees only).")
    if n_train is None:
        return _not_run("residual_dof", "the number of training rows is unknown.")
    dof = n_train - n_params
    t = thresholds.min_residual_dof
    figures = dict(n_parameters=n_params, n_train=n_train, residual_dof=dof, threshold=t)
    if dof < t:
        return _failed("residual_dof", f"the model fits {n_params:,} parameters to "
                       f"{_rows(n_train)}, leaving {dof:,} residual degrees of freedom "
                       f"(at least {t} needed): it can encode its training data.", **figures)
    return _passed("residual_dof", f"{n_params:,} parameters for {_rows(n_train)}: {dof:,} "
                   f"residual degrees of freedom (at least {t} needed).", **figures)


def _check_class_disclosure(probs: np.ndarray | None, thresholds: ReleaseThresholds,
                            ) -> CheckResult:
    if probs is None:
        return _not_run("class_disclosure", "no predictions on the training rows.")
    zero = np.any(probs <= ZERO_PROBABILITY, axis=1)
    n, n_zero = int(zero.size), int(zero.sum())
    share = n_zero / max(n, 1)
    limit = thresholds.max_class_disclosure
    figures = dict(n_rows=n, n_zero=n_zero, share=share, threshold=limit)
    if share > limit:
        return _failed("class_disclosure", f"for {n_zero:,} of {_rows(n)} "
                       f"({100 * share:.1f} %) the model gives some class probability 0: it "
                       f"states with certainty what these people are not.", **figures)
    return _passed("class_disclosure", f"no more than {100 * limit:g} % of training rows get "
                   f"a zero class probability ({n_zero:,} of {n:,}).", **figures)


def _check_hyperparameters(model: Any, thresholds: ReleaseThresholds) -> CheckResult:
    params = model.get_params(deep=False) if hasattr(model, "get_params") else {}
    name = type(model).__name__
    risks: list[str] = []
    leaf = params.get("min_samples_leaf")
    if isinstance(leaf, int | np.integer) and not isinstance(leaf, bool) \
            and leaf < thresholds.min_samples_leaf:
        risks.append(f"min_samples_leaf = {leaf} (at least {thresholds.min_samples_leaf} "
                     "needed)")
    if "max_depth" in params and params["max_depth"] is None and \
            params.get("max_leaf_nodes") is None:
        risks.append("max_depth unbounded (trees grow until leaves are pure)")
    neighbours = params.get("n_neighbors")
    if isinstance(neighbours, int | np.integer) and neighbours < thresholds.min_leaf_rows:
        risks.append(f"n_neighbors = {neighbours} (at least {thresholds.min_leaf_rows} "
                     "needed)")
    figures = {k: params[k] for k in ("min_samples_leaf", "max_depth", "max_leaf_nodes",
                                      "n_neighbors") if k in params}
    figures = {k: (v if isinstance(v, int | float | str | None) else str(v))
               for k, v in figures.items()}
    if risks:
        return _failed("hyperparameters", f"{name} with " + "; ".join(risks) + ".",
                       **figures)
    return _passed("hyperparameters", f"no risky setting of {name} found.", **figures)


def _check_leaf_combinations(model: Any, trees: list[Any], X: np.ndarray,
                             thresholds: ReleaseThresholds) -> CheckResult:
    """Rows grouped by their leaf in every tree: the smallest group must hold k rows."""
    leaves = np.asarray(model.apply(X)).reshape(X.shape[0], -1)
    _, inverse, counts = np.unique(leaves, axis=0, return_inverse=True, return_counts=True)
    size = counts[np.asarray(inverse).reshape(-1)]
    n = int(size.size)
    k = thresholds.min_leaf_rows
    n_unique = int(np.sum(size == 1))
    n_small = int(np.sum(size < k))
    figures = dict(n_trees=len(trees), n_rows=n, n_combinations=int(counts.size),
                   n_unique_rows=n_unique, share_unique=n_unique / max(n, 1),
                   rows_in_small_groups=n_small, smallest_group=int(counts.min()),
                   threshold=k)
    text = (f"{n_unique:,} of {_rows(n)} ({100 * n_unique / max(n, 1):.1f} %) reach a "
            f"combination of leaves across the {len(trees)} trees that no other training "
            f"row reaches; {n_small:,} are in groups smaller than {k} (smallest group: "
            f"{int(counts.min())})")
    if n_small:
        return _failed("leaf_combinations", text + ": the ensemble singles these people "
                       "out, even where each leaf alone is large.", **figures)
    return _passed("leaf_combinations", f"every combination of leaves is shared by at least "
                   f"{k} training rows ({n:,} rows, {int(counts.size):,} combinations).",
                   **figures)


def _check_membership(evidence: dict[str, Any] | None, thresholds: ReleaseThresholds
                      ) -> CheckResult:
    """The measured membership-inference attacks against the stated thresholds."""
    attacks = (evidence or {}).get("membership")
    if not attacks:
        why = (evidence or {}).get("membership_missing") or (
            "no membership-inference attack was measured on this model; run it inside "
            "`assay audit --release-checks` (privacy section) so the decision weighs it.")
        return _not_run("membership_inference", why)
    auc_max, fpr, tpr_max = thresholds.max_mia_auc, thresholds.mia_fpr, thresholds.max_mia_tpr
    failures, lines = [], []
    # One rule per kind of figure (as in the privacy section): AUC a score, TPR a rate.
    for a in attacks:
        auc = {"value": a["auc"][0], "ci_low": a["auc"][1], "ci_high": a["auc"][2]}
        line = f"{a['attack']} AUC {format_figure(auc, 'score')}"
        if auc["value"] > auc_max:
            failures.append(f"{a['attack']} AUC {format_figure(auc, 'score')} above {auc_max:g}")
        tpr = a.get("tpr")
        if tpr is None:
            line += f", TPR at {format_rate(fpr)} FPR {a.get('tpr_note') or 'not measured'}"
        else:
            tpr = {"value": tpr[0], "ci_low": tpr[1], "ci_high": tpr[2]}
            line += f", TPR at {format_rate(fpr)} FPR {format_figure(tpr, 'rate')}"
            if tpr["value"] > tpr_max:
                failures.append(f"{a['attack']} TPR at {format_rate(fpr)} FPR "
                                f"{format_figure(tpr, 'rate')} above {format_rate(tpr_max)}")
        lines.append(line)
    figures = dict(attacks=[dict(a) for a in attacks], max_auc=auc_max, fpr=fpr,
                   max_tpr=tpr_max)
    if failures:
        return _failed("membership_inference", "measured attacks tell training people from "
                       "others: " + "; ".join(failures) + f" (thresholds: AUC {auc_max:g}, "
                       f"TPR {format_rate(tpr_max)} at {format_rate(fpr)} FPR).", **figures)
    return _passed("membership_inference", "; ".join(lines) + f": within AUC {auc_max:g} and "
                   f"TPR {format_rate(tpr_max)} at {format_rate(fpr)} FPR.", **figures)


def _check_attribute(evidence: dict[str, Any] | None) -> CheckResult:
    """The measured attribute-inference attack: does the model leak beyond guessing?"""
    found = (evidence or {}).get("attribute")
    figures = {k: v for k, v in (found or {}).items() if k != "reason"}
    if found is None:
        return _not_applicable("attribute_inference", "no attribute-inference attack was "
                               "run (no sensitive column named: --sensitive).")
    if found.get("strongest") is None:
        return _passed("attribute_inference", f"{found['sensitive']}: "
                       f"{found.get('reason') or 'no attack beats guessing'}.", **figures)
    c = found["contribution"]
    text = (f"{found['sensitive']}: the {found['strongest']} attack beats imputation and the "
            f"majority guess; the model's own contribution is "
            f"{format_figure(dict(value=c[0], ci_low=c[1], ci_high=c[2]), 'gap', signed=True)}")
    if c[1] > 0:
        return _failed("attribute_inference", text + " (interval above 0): the model leaks "
                       "the attribute of the people it was trained on.", **figures)
    return _passed("attribute_inference", text + " (interval reaches 0: no leak beyond "
                   "imputation shown).", **figures)


def _recommend(checks: list[CheckResult]) -> str:
    if any(c.status == "fail" and c.severity == "reject" for c in checks):
        return "reject"
    if any(c.status in ("fail", "not_run") for c in checks):
        return "review"
    return "release"


# --------------------------------------------------------------------------- entry


def release_checks(model: Any = None, X: Any = None, y: Any = None, *,
                   predictions: Any = None,
                   thresholds: ReleaseThresholds | None = None,
                   evidence: dict[str, Any] | None = None) -> ReleaseReport:
    """Run the release checks on a fitted model, or on its predictions alone.

    Parameters
    ----------
    model : fitted scikit-learn estimator, optional
        The model to release (a Pipeline is unwrapped to its final step, its earlier
        steps applied to `X`). Without it only the predictions-based checks run.
    X : array-like or DataFrame of shape (n_train, n_features), optional
        The model's training rows (the structural checks count leaf occupancy on them).
    y : array-like of shape (n_train,), optional
        Their labels (class indices, or labels the model's ``classes_`` holds).
    predictions : TargetPredictions or array of shape (n_rows, n_classes), optional
        Predicted probabilities; a `TargetPredictions`' training rows (``member``) are
        the ones checked. Default: the model's ``predict_proba(X)``.
    thresholds : ReleaseThresholds, optional
    evidence : dict, optional
        Measured attacks (`evidence_from_results`): ``membership``, a list of
        ``{"attack", "auc": (value, low, high), "tpr": (value, low, high) or None,
        "tpr_note"}``; ``attribute``, ``{"sensitive", "strongest", "contribution",
        "reason"}``. Without it the membership check could not run (review).

    Returns
    -------
    ReleaseReport
        The recommendation, and every check with its reason and figures; checks that
        could not run say why (and make the recommendation at least "review").

    Raises
    ------
    InvalidParameterError
        Neither a model nor predictions; a model without ``get_params``; `X` and `y` of
        different lengths.
    """
    thresholds = thresholds or ReleaseThresholds()
    if not isinstance(thresholds, ReleaseThresholds):
        raise InvalidParameterError(
            f"thresholds must be ReleaseThresholds. Got {type(thresholds).__name__}.")
    if model is None and predictions is None:
        raise InvalidParameterError("model or predictions must be given. Got neither.")
    probs = _prediction_rows(predictions)
    if model is None:
        source = getattr(predictions, "source", "predictions")
        structure = "needs the model itself; only its predictions were given"
        checks = [_not_run(name, structure) for name in CHECKS
                  if name not in ("class_disclosure", "membership_inference",
                                  "attribute_inference")]
        checks.insert(4, _check_class_disclosure(probs, thresholds))
        checks += [_check_membership(evidence, thresholds), _check_attribute(evidence)]
        return ReleaseReport(_recommend(checks), str(source), None if probs is None
                             else int(probs.shape[0]), checks, thresholds)
    if not hasattr(model, "get_params"):
        raise InvalidParameterError(f"model must be a fitted scikit-learn estimator. Got "
                                    f"{type(model).__name__}.")
    final, transform = _final_step(model)
    name = type(final).__name__
    Xf = yi = None
    if X is not None:
        if y is None or len(X) != len(y):
            raise InvalidParameterError(
                f"y must hold one label per row of X ({len(X)}). Got "
                f"{'none' if y is None else len(y)}.")
        Xf = transform.transform(X) if transform is not None else X
        Xf = np.asarray(Xf, dtype=np.float32)
        yi = _class_indices(final, y)
    if probs is None and X is not None and hasattr(model, "predict_proba"):
        probs = np.asarray(model.predict_proba(X), dtype=float)
    n_train = None if X is None else len(X)
    classes = getattr(final, "classes_", None)
    n_classes = len(classes) if classes is not None else (int(yi.max()) + 1 if yi is not None
                                                          else 2)
    trees = _trees(final)
    checks = [_check_stored_rows(final)]
    if trees is None:
        why = f"a {name} model has no leaves."
        leaf = _not_applicable("leaf_k_anonymity", why)
        cell = _not_applicable("small_cells", why)
    elif Xf is None or yi is None:  # set together
        why = "the training rows are needed to count rows per leaf."
        leaf, cell = _not_run("leaf_k_anonymity", why), _not_run("small_cells", why)
    else:
        leaf, cell = _check_leaves(_leaf_class_counts(final, trees, Xf, yi), thresholds)
    if trees is None or len(trees) < 2:
        combos = _not_applicable("leaf_combinations", f"a {name} model is not an ensemble "
                                 "of trees (a single tree's leaves are checked above).")
    elif Xf is None:
        combos = _not_run("leaf_combinations", "the training rows are needed to group them "
                          "by their leaves.")
    else:
        combos = _check_leaf_combinations(final, trees, Xf, thresholds)
    checks += [leaf, _check_dof(_n_parameters(final, trees, n_classes), n_train, name,
                                thresholds), cell,
               _check_class_disclosure(probs, thresholds),
               _check_hyperparameters(final, thresholds), combos,
               _check_membership(evidence, thresholds), _check_attribute(evidence)]
    return ReleaseReport(_recommend(checks), name, n_train, checks, thresholds)


def _prediction_rows(predictions: Any) -> np.ndarray | None:
    """Training rows' probabilities of a `TargetPredictions`, or an array as given."""
    if predictions is None:
        return None
    if hasattr(predictions, "probs") and hasattr(predictions, "member"):
        return np.asarray(predictions.probs, dtype=float)[np.asarray(predictions.member)]
    probs = np.asarray(predictions, dtype=float)
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise InvalidParameterError(f"predictions must have shape (n_rows, n_classes >= 2). "
                                    f"Got {probs.shape}.")
    return probs


def _class_indices(model: Any, y: Any) -> np.ndarray:
    """Labels as indices into the model's ``classes_`` (already indices when absent)."""
    y = np.asarray(y)
    classes = getattr(model, "classes_", None)
    if classes is None:
        return y.astype(np.int64)
    classes = np.asarray(classes)
    order = np.argsort(classes)
    pos = np.clip(np.searchsorted(classes[order], y), 0, len(classes) - 1)
    found = classes[order][pos] == y
    if not np.all(found):
        raise InvalidParameterError(f"y must hold the model's classes {classes.tolist()}. "
                                    f"Got {y[~found][0]!r}.")
    return order[pos].astype(np.int64)


def release_for_learner(learner: Any, X: Any, y: Any, train_mask: Any = None, *,
                        random_state: int = 0,
                        thresholds: ReleaseThresholds | None = None,
                        evidence: dict[str, Any] | None = None) -> tuple[Any, ReleaseReport]:
    """Fit the learner once on the training rows and run the release checks on it.

    A scikit-learn learner (``sklearn:module.Class``) is fitted as that estimator and
    checked in full. A built-in batched learner (``logreg``, ``mlp``) has no estimator
    object: its predictions are checked, and its parameters counted for the residual
    degrees of freedom; the structural checks that need a model object say so.

    Returns
    -------
    (model, ReleaseReport)
        The fitted estimator (None for a built-in learner) and the report.
    """
    from assay.learners import get_learner

    spec = get_learner(learner)
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    mask = np.ones(len(y), dtype=bool) if train_mask is None else np.asarray(train_mask)
    thresholds = thresholds or ReleaseThresholds()
    if hasattr(spec, "estimator"):
        model = cast(Any, spec)._seeded_clone(int(random_state))
        model.fit(X[mask], y[mask])
        return model, release_checks(model, X[mask], y[mask], thresholds=thresholds,
                                     evidence=evidence)
    n_classes = int(y.max()) + 1
    probs = spec.fit_predict(X, y, mask[None, :], np.array([random_state]), n_classes)[0]
    report = release_checks(predictions=probs[mask], thresholds=thresholds,
                            evidence=evidence)
    report.model = f"{spec.name} (assay's built-in learner)"
    report.n_train = int(mask.sum())
    config = spec.get_config()
    d, c = X.shape[1], n_classes
    out = 1 if c == 2 else c
    if spec.name == "logreg":
        n_params = (d + 1) * out
    elif spec.name == "mlp":
        h = int(config.get("hidden", 128))
        n_params = d * h + h + h * c + c
    else:
        n_params = None
    checks = []
    for check in report.checks:
        if check.name == "residual_dof":
            check = _check_dof(n_params, report.n_train, spec.name, thresholds)
        elif check.name in ("leaf_k_anonymity", "small_cells", "leaf_combinations"):
            check = _not_applicable(check.name, f"a {spec.name} model has no leaves.")
        elif check.name == "stored_rows":
            check = _passed("stored_rows", f"a {spec.name} model keeps only its weights.",
                            model=spec.name)
        elif check.name == "hyperparameters":
            check = _passed("hyperparameters", f"no tree or neighbour settings in "
                            f"{spec.name}.", model=spec.name)
        checks.append(check)
    report.checks = checks
    report.recommendation = _recommend(checks)
    return None, report


def _triple(e: Any) -> tuple[float, float, float] | None:
    if e is None or getattr(e, "value", None) is None:
        return None
    low = e.ci_low if e.ci_low is not None else e.value
    high = e.ci_high if e.ci_high is not None else e.value
    return (float(e.value), float(low), float(high))


def evidence_from_results(results: dict[str, Any], fpr: float = 0.01) -> dict[str, Any]:
    """The measured attacks of an audit's privacy and attribute sections, for the checks.

    Parameters
    ----------
    results : dict of section name to SectionResult
        The sections that ran before the release section.
    fpr : float
        FPR at which each membership attack's TPR is read (the nearest one measured at
        or below it; none if the attack's figure there is not estimable).
    """
    out: dict[str, Any] = {}
    privacy = results.get("privacy")
    if privacy is not None and getattr(privacy, "status", "ok") == "ok" \
            and getattr(privacy, "data", None) is not None:
        attacks = []
        for name, a in privacy.data.mia.attacks.items():
            levels = [f for f in a.tpr_at_fpr if f <= fpr + 1e-12]
            tpr, note = None, None
            if not levels:
                note = f"not measured at or below {fpr:g}"
            else:
                level = max(levels)
                estimable = getattr(a, "estimable", None)
                if callable(estimable) and not estimable(level):
                    note = f"not estimable at {level:g} FPR with these non-members"
                else:
                    tpr = _triple(a.tpr_at_fpr[level])
            entry = {"attack": name, "auc": _triple(a.auc), "tpr": tpr, "tpr_note": note}
            if entry["auc"] is not None:
                attacks.append(entry)
        out["membership"] = attacks
    elif privacy is not None:
        out["membership_missing"] = ("the audit's membership-inference section did not run "
                                     f"({getattr(privacy, 'message', '') or 'failed'}).")
    attribute = results.get("attribute")
    if attribute is not None and getattr(attribute, "status", "ok") == "ok" \
            and getattr(attribute, "data", None) is not None:
        r = attribute.data.result
        best = r.best
        out["attribute"] = {"sensitive": r.sensitive, "strongest": r.strongest,
                            "contribution": None if best is None
                            else _triple(best.contribution),
                            "reason": r.strongest_reason}
    return out
