"""Learners the population engine trains: batched built-ins and a scikit-learn adapter.

`get_learner` turns what a user writes (``"logreg"``, ``"mlp"``,
``"sklearn:sklearn.ensemble.HistGradientBoostingClassifier"``, an estimator instance
or a ready `Learner`) into a `Learner`.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

from assay._validation import InvalidParameterError
from assay.learners.base import Learner
from assay.learners.linear import LogisticRegressionLearner
from assay.learners.mlp import MLPLearner
from assay.learners.sklearn import SklearnLearner

# torch is imported inside the fits only, so `import assay.learners` stays light.
_BUILTIN = {"logreg": LogisticRegressionLearner, "mlp": MLPLearner}


def _import_estimator(path: str) -> type:
    module_name, _, class_name = path.rpartition(".")
    if not module_name:
        raise InvalidParameterError(
            f"learner must be 'sklearn:<module>.<Class>'. Got 'sklearn:{path}'."
        )
    try:
        return getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise InvalidParameterError(
            f"learner must name an importable estimator class. Got 'sklearn:{path}' ({exc})."
        ) from None


def get_learner(spec: Any, **params: Any) -> Learner:
    """Resolve a learner specification into a `Learner`.

    Parameters
    ----------
    spec : str, scikit-learn estimator or Learner
        ``"logreg"`` or ``"mlp"`` (batched built-ins), ``"sklearn:module.Class"`` (an
        estimator class built with `params`), an estimator instance (cloned, `params`
        set on the clone) or a `Learner` (its dataclass fields replaced by `params`).
    **params
        Hyper-parameters for the learner or estimator.

    Returns
    -------
    Learner

    Raises
    ------
    InvalidParameterError
        Unknown name, unimportable class, or parameters the learner does not take.
    """
    try:
        if isinstance(spec, str):
            if spec.startswith("sklearn:"):
                cls = _import_estimator(spec.removeprefix("sklearn:"))
                return SklearnLearner(cls(**params))
            if spec in _BUILTIN:
                return _BUILTIN[spec](**params)
            raise InvalidParameterError(
                "learner must be one of 'logreg', 'mlp', 'sklearn:<module>.<Class>', an"
                f" estimator or a Learner. Got {spec!r}."
            )
        if isinstance(spec, Learner) and dataclasses.is_dataclass(spec):
            return dataclasses.replace(spec, **params)
        if isinstance(spec, Learner):
            if params:
                raise InvalidParameterError(
                    f"params must be empty for a {type(spec).__name__}. Got {sorted(params)}."
                )
            return spec
        if hasattr(spec, "fit") and hasattr(spec, "get_params"):
            from sklearn.base import clone

            return SklearnLearner(clone(spec).set_params(**params))
    except InvalidParameterError:
        raise
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(f"params must be accepted by the learner. Got {exc}.") from None
    raise InvalidParameterError(
        "learner must be a name, a scikit-learn estimator or a Learner."
        f" Got {type(spec).__name__}."
    )


__all__ = [
    "Learner",
    "LogisticRegressionLearner",
    "MLPLearner",
    "SklearnLearner",
    "get_learner",
]
