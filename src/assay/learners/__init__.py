"""Learners the population engine trains: batched built-ins and a scikit-learn adapter.

`get_learner` turns what a user writes (``"logreg"``, ``"mlp"``,
``"sklearn:sklearn.ensemble.HistGradientBoostingClassifier"``, an estimator class or
instance, or a ready `Learner`) and its hyper-parameters into a `Learner`, checking every
parameter before anything is trained. `parse_learner_params` reads ``KEY=VALUE``
command-line items and `learner_from_table` an ``audit.toml`` ``[learner]`` table.

The learner classes are imported on first use (numpy, torch and scikit-learn stay
unloaded until a learner is built), so the CLI can import this package at start-up.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import os
import re
import sys
import tomllib
import types
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from assay import _lazy_exports
from assay._validation import InvalidParameterError

if TYPE_CHECKING:
    from assay.learners.base import Learner, RegressionLearner
    from assay.learners.dpsgd import DPSGDMLP, DPSGDLinearRegression, DPSGDLogisticRegression
    from assay.learners.linear import LogisticRegressionLearner
    from assay.learners.mlp import MLPLearner, MLPRegressorLearner
    from assay.learners.sklearn import SklearnLearner, SklearnRegressorLearner

_public, __getattr__, __dir__ = _lazy_exports(
    __name__,
    {
        "base": ["Learner", "RegressionLearner"],
        "dpsgd": ["DPSGDLinearRegression", "DPSGDLogisticRegression", "DPSGDMLP"],
        "linear": ["LogisticRegressionLearner"],
        "mlp": ["MLPLearner", "MLPRegressorLearner"],
        "sklearn": ["SklearnLearner", "SklearnRegressorLearner"],
    },
)
__all__ = [*_public, "PACKAGES_ENV", "get_learner", "learner_from_table", "learner_packages",
           "parse_learner_params", "sklearn_estimators"]
del _public

#: Built-in learner name -> (submodule, class); torch is imported inside the fits only.
_BUILTIN = {
    "logreg": ("linear", "LogisticRegressionLearner"),
    "mlp": ("mlp", "MLPLearner"),
    "dp-logreg": ("dpsgd", "DPSGDLogisticRegression"),
    "dp-mlp": ("dpsgd", "DPSGDMLP"),
    "dp-linreg": ("dpsgd", "DPSGDLinearRegression"),  # continuous targets, public bounds
    "mlp-regressor": ("mlp", "MLPRegressorLearner"),  # continuous targets
    "ridge": ("ridge", "RidgeLearner"),  # continuous targets
}

# A hyper-parameter name: a Python identifier, scikit-learn's ``step__param`` included.
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# What follows "sklearn:": dotted identifiers, at least module.Class.
_DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+", re.ASCII)
# A value that is not TOML but reads as one word: taken as a string (solver=lbfgs).
_BARE_WORD = re.compile(r"[A-Za-z_][\w.:+/-]*", re.ASCII)
# TOML has no null, and Python users write True/False: these bare words mean Python's.
_PYTHON_WORDS = {"None": None, "True": True, "False": False}

#: Environment variable naming, comma-separated, the packages beyond scikit-learn whose
#: estimator classes ``sklearn:`` may name (e.g. ``xgboost,lightgbm``). A variable, not
#: an audit.toml key, so that a configuration file someone sends cannot widen it.
PACKAGES_ENV = "ASSAY_LEARNER_PACKAGES"
# A top-level package name as given in PACKAGES_ENV.
_PACKAGE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)

_SPEC_HELP = ("'logreg', 'mlp', 'dp-logreg', 'dp-mlp', 'mlp-regressor', 'ridge', "
              "'sklearn:<module>.<Class>', an estimator or a Learner")


# --------------------------------------------------------------------------- parsing


def _parse_value(text: str, item: str) -> Any:
    """A TOML literal, a Python None/True/False, or a bare word as a string."""
    if text in _PYTHON_WORDS:
        return _PYTHON_WORDS[text]
    try:
        parsed = tomllib.loads(f"v = {text}")
    except tomllib.TOMLDecodeError:
        parsed = None
    # Exactly one key: a value such as "1\nw = 2" must not smuggle in more.
    if parsed is not None and list(parsed) == ["v"]:
        return parsed["v"]
    if _BARE_WORD.fullmatch(text):
        return text
    raise InvalidParameterError(
        "learner parameter value must be a TOML literal (0.5, [64, 32], \"lbfgs\", true)"
        f" or one bare word. Got {item!r}."
    )


def parse_learner_params(items: Iterable[str]) -> dict[str, Any]:
    """Read ``KEY=VALUE`` items (command-line ``--param`` options) into a dict.

    Parameters
    ----------
    items : iterable of str
        Each ``KEY=VALUE``. KEY is an identifier (``step__param`` for nested
        scikit-learn parameters); VALUE is a TOML literal (``C=0.5``, ``hidden=[64, 32]``,
        ``solver="lbfgs"``, ``warm_start=false``), or one bare word taken as a string
        (``solver=lbfgs``); ``None``, ``True`` and ``False`` are Python's.

    Returns
    -------
    dict
        Parameter name -> value, in the order given. Whether the learner takes them is
        checked by `get_learner`.

    Raises
    ------
    InvalidParameterError
        An item without ``=``, a key that is not an identifier, an empty or malformed
        value, or a key given twice.

    Examples
    --------
    >>> from assay.learners import parse_learner_params
    >>> parse_learner_params(["C=0.5", "hidden=[64,32]"])
    {'C': 0.5, 'hidden': [64, 32]}
    """
    if isinstance(items, str):  # one item, not its characters
        items = [items]
    params: dict[str, Any] = {}
    seen: dict[str, str] = {}
    for item in items:
        item = str(item)
        key, sep, text = item.partition("=")
        key, text = key.strip(), text.strip()
        if not sep or not _KEY.fullmatch(key) or not text:
            raise InvalidParameterError(
                "learner parameter must be KEY=VALUE with KEY an identifier (step__param"
                f" for nested ones) and a value. Got {item!r}."
            )
        if key in seen:
            raise InvalidParameterError(
                f"learner parameter {key} must be given once. Got {seen[key]!r} and {item!r}."
            )
        seen[key] = item
        params[key] = _parse_value(text, item)
    return params


def learner_from_table(table: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Split an ``audit.toml`` ``[learner]`` table into a learner name and its parameters.

    Parameters
    ----------
    table : mapping
        ``name`` (required: ``"logreg"``, ``"mlp"`` or ``"sklearn:module.Class"``) and
        the learner's hyper-parameters, e.g. ``{"name": "mlp", "hidden": 64}``.

    Returns
    -------
    name : str
    params : dict
        Everything but ``name``; `get_learner` checks that the learner takes them.

    Raises
    ------
    InvalidParameterError
        Not a table, no string ``name``, or a key that is not an identifier.
    """
    if not isinstance(table, Mapping):
        raise InvalidParameterError(
            f"learner must be a table with a name and parameters. Got {table!r}."
        )
    params = dict(table)
    name = params.pop("name", None)
    if not isinstance(name, str) or not name.strip():
        raise InvalidParameterError(
            "learner.name must be 'logreg', 'mlp', 'dp-logreg', 'dp-mlp' or "
            "'sklearn:<module>.<Class>'."
            f" Got {'nothing' if name is None else repr(name)}."
        )
    for key in params:
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise InvalidParameterError(
                f"learner parameter names must be identifiers. Got {key!r}."
            )
    return name.strip(), params


# --------------------------------------------------------------------------- resolving


def _check_known(params: Mapping[str, Any], accepted: list[str], label: str) -> None:
    """One line naming every parameter `label` does not take, and those it does."""
    unknown = [key for key in params if key not in accepted]
    if not unknown:
        return
    names = ", ".join(repr(key) for key in unknown)
    what = "learner parameter" if len(unknown) == 1 else "learner parameters"
    verb = "is not one of" if len(unknown) == 1 else "are not among"
    given = ", ".join(f"{key}={params[key]!r}" for key in unknown)
    raise InvalidParameterError(
        f"{what} {names} {verb} {label}'s: {', '.join(accepted) or '(none)'}. Got {given}."
    )


def _field_value(field: dataclasses.Field, value: Any) -> Any:
    """Type checks a dataclass field's __post_init__ leaves out: bools, integral floats."""
    kind = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "")
    if kind == "bool" and not isinstance(value, bool):
        raise InvalidParameterError(f"{field.name} must be true or false. Got {value!r}.")
    # 500.0 passes check_scalar(kind=int) but would stay a float (range() refuses it).
    if kind in ("int", "int | None") and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _builtin_learner(cls: type, params: dict[str, Any], label: str, base: Any = None) -> Any:
    """A dataclass learner built (or `base` copied) with `params`, checked field by field."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    _check_known(params, list(fields), label)
    values = {key: _field_value(fields[key], value) for key, value in params.items()}
    # __post_init__ checks the values (InvalidParameterError naming the parameter).
    return dataclasses.replace(base, **values) if base is not None else cls(**values)


def _is_regressor(obj: Any) -> bool:
    """Whether an estimator instance is a regressor (scikit-learn's tags); a class, by
    `RegressorMixin` or else by the tags of an instance built with its defaults."""
    from sklearn.base import RegressorMixin, is_regressor

    try:
        if isinstance(obj, type):
            return issubclass(obj, RegressorMixin) or bool(is_regressor(obj()))
        return bool(is_regressor(obj))
    except Exception:  # noqa: BLE001 - not buildable without arguments, or no tags
        return False


def _check_estimator_class(obj: Any, label: str) -> None:
    """`obj` must be a scikit-learn estimator class: a classifier with fit and
    predict_proba, or a regressor (``is_regressor``) with fit and predict."""
    if not isinstance(obj, type):
        kind = ("a module" if isinstance(obj, types.ModuleType)
                else "a function" if callable(obj) else f"a {type(obj).__name__}")
        raise InvalidParameterError(
            f"learner must name a scikit-learn estimator class. Got {label!r} ({kind})."
        )
    from sklearn.base import BaseEstimator

    if not issubclass(obj, BaseEstimator):
        raise InvalidParameterError(
            "learner must name a subclass of sklearn.base.BaseEstimator."
            f" Got {label!r} (a class that is not)."
        )
    _check_methods(obj, repr(label), "")


def _check_methods(obj: Any, label: str, how: str) -> None:
    """A regressor needs fit and predict, a classifier fit and predict_proba."""
    regressor = _is_regressor(obj)
    needed = ("fit", "predict") if regressor else ("fit", "predict_proba")
    missing = [m for m in needed if not hasattr(obj, m)]
    if missing:
        raise InvalidParameterError(
            "learner must be a scikit-learn classifier with fit and predict_proba, or a "
            f"regressor with fit and predict. Got {label} (no {' or '.join(missing)}{how}).")


def learner_packages() -> tuple[str, ...]:
    """The packages whose estimator classes ``sklearn:`` may name.

    Returns
    -------
    tuple of str
        ``"sklearn"``, then the top-level packages listed (comma-separated) in the
        ``ASSAY_LEARNER_PACKAGES`` environment variable.

    Raises
    ------
    InvalidParameterError
        A listed name that is not a top-level package name.
    """
    names = ["sklearn"]
    for item in os.environ.get(PACKAGES_ENV, "").split(","):
        item = item.strip()
        if not item:
            continue
        if not _PACKAGE.fullmatch(item):
            raise InvalidParameterError(
                f"{PACKAGES_ENV} must list top-level package names, comma-separated (e.g. "
                f"xgboost,lightgbm). Got {item!r}.")
        if item not in names:
            names.append(item)
    return tuple(names)


@functools.cache
def sklearn_estimators() -> frozenset[type]:
    """scikit-learn's estimator classes (importing scikit-learn's own modules only); the
    classes ``sklearn:`` may name and the estimators a model file may hold."""
    from sklearn.utils import all_estimators

    return frozenset(cls for _, cls in all_estimators())


def _sklearn_class(module_name: str, class_name: str, spec: str) -> Any:
    """`module_name.class_name` among scikit-learn's estimators, importing nothing new."""
    estimators = sklearn_estimators()
    # all_estimators imported every module that holds an estimator: one not loaded now
    # holds none (tests, conftest), and is not imported.
    module = sys.modules.get(module_name)
    if module is None:
        raise InvalidParameterError(
            "learner must name a scikit-learn module that holds estimators, e.g. "
            f"'sklearn:sklearn.ensemble.HistGradientBoostingClassifier'. Got {spec!r}.")
    obj = getattr(module, class_name, None)
    if obj is None:
        raise InvalidParameterError(
            f"learner must name an importable estimator class. Got {spec!r} "
            f"({module_name} has no {class_name}).")
    if isinstance(obj, type) and obj not in estimators and obj.__module__.startswith("sklearn"):
        _check_estimator_class(obj, spec)  # the specific reason where there is one
        raise InvalidParameterError(
            f"learner must name one of scikit-learn's public estimators. Got {spec!r}.")
    return obj


def _import_estimator(spec: str) -> type:
    """The class named by ``sklearn:module.Class``, its package checked before any import."""
    path = spec.removeprefix("sklearn:")
    if not _DOTTED.fullmatch(path) or any(p.startswith("__") for p in path.split(".")):
        raise InvalidParameterError(f"learner must be 'sklearn:<module>.<Class>'. Got {spec!r}.")
    module_name, _, class_name = path.rpartition(".")
    top = path.split(".", 1)[0]
    packages = learner_packages()
    if top not in packages:
        # Importing a module runs its code: only packages that hold estimators.
        raise InvalidParameterError(
            f"learner must name a class of {', '.join(packages)} (a plug-in package's "
            f"estimators: list the package in {PACKAGES_ENV}). Got {spec!r}.")
    if top == "sklearn":
        obj = _sklearn_class(module_name, class_name, spec)
    else:
        try:
            obj = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as exc:
            reason = " ".join(str(exc).split())  # one line
            raise InvalidParameterError(
                f"learner must name an importable estimator class. Got {spec!r} ({reason})."
            ) from None
    _check_estimator_class(obj, spec)
    return obj


def _init_param_names(cls: Any) -> list[str] | None:
    """Constructor parameters of an estimator class (None if it takes ``**kwargs``)."""
    try:
        return list(cls._get_param_names())
    except (AttributeError, RuntimeError, TypeError, ValueError):
        return None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _configured(estimator: Any, params: dict[str, Any], label: str) -> Any:
    """`estimator` with (possibly nested) `params` set, every parameter value checked."""
    from sklearn.base import BaseEstimator

    _check_known(params, list(estimator.get_params(deep=True)), label)
    try:
        if params:
            estimator.set_params(**params)
        # scikit-learn checks values in fit; check them now, in every nested estimator.
        nested = estimator.get_params(deep=True).values()
        for part in [estimator, *(v for v in nested if isinstance(v, BaseEstimator))]:
            if hasattr(part, "_parameter_constraints") and hasattr(part, "_validate_params"):
                part._validate_params()
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(f"learner {label}: {_one_line(exc)}") from None
    # A pipeline has predict_proba only if its last step does (checked on the instance),
    # and is a regressor only if its last step is.
    _check_methods(estimator, label, " with these parameters")
    from assay.learners.sklearn import SklearnLearner, SklearnRegressorLearner

    if _is_regressor(estimator):
        return SklearnRegressorLearner(estimator)
    return SklearnLearner(estimator)


def _from_class(cls: type, params: dict[str, Any], label: str) -> Any:
    top = {k: v for k, v in params.items() if "__" not in k}
    names = _init_param_names(cls)
    if names is not None:
        _check_known(top, names, label)
    try:
        estimator = cls(**top)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(
            f"learner {label} must be buildable from the parameters given. Got {_one_line(exc)}."
        ) from None
    return _configured(estimator, {k: v for k, v in params.items() if "__" in k}, label)


def get_learner(spec: Any, **params: Any) -> Learner:
    """Resolve a learner specification into a `Learner`, checking every parameter.

    Parameters
    ----------
    spec : str, scikit-learn estimator class or instance, or Learner
        ``"logreg"`` or ``"mlp"`` (batched built-ins); ``"sklearn:module.Class"`` (a
        scikit-learn estimator class, i.e. a subclass of `sklearn.base.BaseEstimator`
        with ``fit`` and ``predict_proba``, or a regressor (``is_regressor``) with
        ``fit`` and ``predict``, whose learner predicts values for a continuous target,
        built with `params`; the path must lie in
        scikit-learn, whose estimators are found without importing the named module,
        or in a package listed in ``ASSAY_LEARNER_PACKAGES``, whose module is then
        imported; nothing else is called before these checks); such a class itself; an
        estimator instance (cloned, `params` set on the clone); or a `Learner` (a
        dataclass learner is copied with `params` replacing its fields).
    **params
        Hyper-parameters: the built-in learner's fields, or the estimator's
        ``get_params(deep=True)`` keys (``step__param`` for nested ones).

    Returns
    -------
    Learner

    Raises
    ------
    InvalidParameterError
        Unknown name; a ``sklearn:`` target that is not importable or not a
        scikit-learn classifier or regressor class; a parameter the learner does not take (the
        message lists those it does); or a value the learner refuses. Values are
        checked here, so an audit fails before any training.

    Examples
    --------
    >>> from assay.learners import get_learner
    >>> learner = get_learner("logreg", C=0.5)
    >>> learner.name, learner.C
    ('logreg', 0.5)
    """
    if isinstance(spec, str):
        if spec.startswith("sklearn:"):
            return _from_class(_import_estimator(spec), params, spec)
        if spec in _BUILTIN:
            module, name = _BUILTIN[spec]
            cls = getattr(importlib.import_module(f"{__name__}.{module}"), name)
            return _builtin_learner(cls, params, spec)
        raise InvalidParameterError(f"learner must be one of {_SPEC_HELP}. Got {spec!r}.")
    if isinstance(spec, type):
        label = f"sklearn:{spec.__module__}.{spec.__qualname__}"
        _check_estimator_class(spec, label)
        return _from_class(spec, params, label)

    from assay.learners.base import Learner

    if isinstance(spec, Learner):
        if dataclasses.is_dataclass(spec):
            return _builtin_learner(type(spec), params, spec.name, base=spec)
        if params:
            raise InvalidParameterError(
                f"params must be empty for a {type(spec).__name__}. Got {sorted(params)}."
            )
        return spec
    if hasattr(spec, "fit") and hasattr(spec, "get_params"):
        from sklearn.base import clone

        label = type(spec).__name__
        try:
            estimator = clone(spec)
        except (TypeError, RuntimeError) as exc:
            raise InvalidParameterError(
                f"learner must be a clonable scikit-learn estimator. Got {label} ({exc})."
            ) from None
        return _configured(estimator, params, label)
    raise InvalidParameterError(
        f"learner must be one of {_SPEC_HELP}. Got {type(spec).__name__}."
    )
