"""Any scikit-learn classifier or regressor as a population learner (one fit per model).

`SklearnLearner` returns a classifier's class probabilities (`Learner`);
`SklearnRegressorLearner` a regressor's predicted values (`RegressionLearner`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from assay._validation import InvalidParameterError
from assay.learners.base import is_sparse, sparse_refusal


def _json_safe(value: Any) -> Any:
    """Hyper-parameter value as JSON: plain scalars kept, anything else by its repr."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return repr(value)


class _SklearnAdapter:
    """What both adapters share: chunking, config, sparse input, seeded clones."""

    estimator: Any
    chunk_size: int
    name: str

    @property
    def preferred_chunk(self) -> int:
        return self.chunk_size

    def get_config(self) -> dict[str, Any]:
        """Estimator class and its (deep) parameters, JSON-serialisable."""
        cls = type(self.estimator)
        params = {
            key: _json_safe(value)
            for key, value in sorted(self.estimator.get_params(deep=True).items())
            if not key.endswith("random_state")  # set per model from the seed
        }
        return {
            "name": self.name,
            "estimator": f"{cls.__module__}.{cls.__qualname__}",
            "params": params,
        }

    def accepts_sparse(self) -> bool:
        """Whether the estimator takes scipy sparse X (its scikit-learn input tags)."""
        from sklearn.utils import get_tags

        try:
            return bool(get_tags(self.estimator).input_tags.sparse)
        except (AttributeError, TypeError, ValueError):  # no tags: assume dense only
            return False

    def check_input(self, X: Any) -> None:
        """Refuse, before any fit, a sparse X the estimator cannot take."""
        if is_sparse(X) and not self.accepts_sparse():
            raise InvalidParameterError(sparse_refusal(
                f"sklearn:{type(self.estimator).__name__}",
                " (its scikit-learn tags say it does not take sparse input)"))

    def _seeded_clone(self, seed: int) -> Any:
        from sklearn.base import clone

        model = clone(self.estimator)
        keys = [k for k in model.get_params(deep=True) if k.split("__")[-1] == "random_state"]
        if keys:
            model.set_params(**{key: seed for key in keys})
        return model


@dataclass
class SklearnLearner(_SklearnAdapter):
    """Fit a scikit-learn classifier once per model (via `sklearn.base.clone`).

    Every ``random_state`` parameter of the estimator (nested ones in pipelines and
    meta-estimators included) is set from the model's seed, so refits are reproducible
    and the population's models differ in their randomness as well as their data.

    Parameters
    ----------
    estimator : scikit-learn classifier
        Unfitted template with `fit` and `predict_proba`; never modified.
    chunk_size : int, default=1
        Models per task when the engine fans out through joblib or Dask.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> from assay.engine import PopulationPlan
    >>> from assay.learners.sklearn import SklearnLearner
    >>> X = np.random.default_rng(0).normal(size=(60, 2)).astype("float32")
    >>> y = (X[:, 0] > 0).astype("int64")
    >>> plan = PopulationPlan.balanced(60, 2, random_state=0)
    >>> learner = SklearnLearner(DecisionTreeClassifier(max_depth=2))
    >>> learner.fit_predict(X, y, plan.member, plan.seeds, 2).shape
    (2, 60, 2)
    >>> learner.get_config()["params"]["max_depth"]
    2
    """

    estimator: Any
    chunk_size: int = 1

    name = "sklearn"

    def __post_init__(self) -> None:
        for method in ("fit", "predict_proba", "get_params"):
            if not hasattr(self.estimator, method):
                raise InvalidParameterError(
                    "estimator must be a scikit-learn classifier with fit and predict_proba."
                    f" Got {type(self.estimator).__name__} without {method}."
                )

    def fit_predict(
        self,
        X: np.ndarray,
        y: np.ndarray,
        train_mask: np.ndarray,
        seeds: np.ndarray,
        n_classes: int,
    ) -> np.ndarray:
        """Fit ``len(seeds)`` clones; return probabilities of shape (k, n_rows, n_classes).

        A scipy CSR `X` goes to the estimator as is when its tags say it accepts sparse
        input; otherwise it is refused before any fit (`check_input`).
        """
        self.check_input(X)
        out = np.zeros((len(seeds), X.shape[0], n_classes), dtype=np.float32)
        for j, (mask, seed) in enumerate(zip(train_mask, seeds, strict=True)):
            model = self._seeded_clone(int(seed))
            model.fit(X[mask], y[mask])
            # A half may miss a rare class: scatter into the full class axis.
            classes = np.asarray(model.classes_, dtype=np.int64)
            out[j][:, classes] = model.predict_proba(X)
        return out


@dataclass
class SklearnRegressorLearner(_SklearnAdapter):
    """Fit a scikit-learn regressor once per model: the `RegressionLearner` contract.

    Model k is a clone of `estimator` fitted on the rows of ``train_mask[k]`` (every
    ``random_state`` set from its seed, as `SklearnLearner` does); its predictions on
    every row are row k of ``fit_predict_values``. The engine's joblib backend fans the
    models out to processes (one per task with the default `chunk_size`).

    Parameters
    ----------
    estimator : scikit-learn regressor
        Unfitted template with `fit` and `predict` (``is_regressor``); never modified.
    chunk_size : int, default=1
        Models per task when the engine fans out through joblib.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.tree import DecisionTreeRegressor
    >>> from assay.engine import PopulationPlan
    >>> from assay.learners.sklearn import SklearnRegressorLearner
    >>> X = np.random.default_rng(0).normal(size=(60, 2)).astype("float32")
    >>> y = X[:, 0] * 2.0
    >>> plan = PopulationPlan.balanced(60, 2, random_state=0)
    >>> learner = SklearnRegressorLearner(DecisionTreeRegressor(max_depth=2))
    >>> learner.fit_predict_values(X, y, plan.member, plan.seeds).shape
    (2, 60)
    """

    estimator: Any
    chunk_size: int = 1

    name = "sklearn-regressor"
    uses_torch = False

    def __post_init__(self) -> None:
        from sklearn.base import is_regressor

        missing = [m for m in ("fit", "predict", "get_params") if not hasattr(self.estimator, m)]
        if missing or not is_regressor(self.estimator):
            why = f"without {missing[0]}" if missing else "not a regressor"
            raise InvalidParameterError(
                "estimator must be a scikit-learn regressor with fit and predict."
                f" Got {type(self.estimator).__name__} ({why}).")

    def fit_predict(self, X: np.ndarray, y: np.ndarray, train_mask: np.ndarray,
                    seeds: np.ndarray, n_classes: int) -> np.ndarray:
        """Refused: this learner predicts a number, not class probabilities."""
        raise InvalidParameterError(
            f"learner sklearn:{type(self.estimator).__name__} predicts a number, not "
            "classes: use it on a continuous target (fit_predict_values, --task "
            "regression), or a scikit-learn classifier for classes.")

    def fit_predict_values(
        self,
        X: np.ndarray,
        y: np.ndarray,
        train_mask: np.ndarray,
        seeds: np.ndarray,
    ) -> np.ndarray:
        """Fit ``len(seeds)`` clones, clone k on the rows of ``train_mask[k]``; return
        their predictions on every row, shape (k, n_rows), float64.

        A scipy CSR `X` goes to the estimator as is when its tags say it accepts sparse
        input; otherwise it is refused before any fit (`check_input`).
        """
        self.check_input(X)
        y = np.asarray(y, dtype=np.float64)
        out = np.empty((len(seeds), X.shape[0]), dtype=np.float64)
        for j, (mask, seed) in enumerate(zip(train_mask, seeds, strict=True)):
            model = self._seeded_clone(int(seed))
            model.fit(X[mask], y[mask])
            pred = np.asarray(model.predict(X), dtype=np.float64)
            if pred.shape != (X.shape[0],):  # a multi-output regressor
                raise InvalidParameterError(
                    f"learner sklearn:{type(self.estimator).__name__} must predict one "
                    f"number per row. Got predictions of shape {pred.shape}.")
            out[j] = pred
        return out
