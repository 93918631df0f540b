"""Reading a model file someone else wrote: skops, with an allow-list of exact types.

A skops file is a zip holding ``schema.json``, a tree of nodes that each name a type (or a
function) by module and name, and the arrays they hold. Loading imports and builds every
named type, so a file naming ``numpy.testing._private.utils.runstring`` runs code. Here,
before skops builds anything, every name in the file is compared with `allowed_types`:
scikit-learn's estimators by exact qualified name, the helper types they store, numpy's
and scipy's array types, a few builtins and assay's own fairness estimators. Nothing is
accepted by prefix. After loading, the node arrays scikit-learn indexes without bounds
checks (trees, histogram-boosting predictors, neighbour trees) are checked, so a crafted
file cannot crash the process when the model first predicts.
"""

from __future__ import annotations

import functools
import io
import json
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from assay._validation import InvalidParameterError

__all__ = ["allowed_types", "check_model_input", "load_model_file"]

#: Largest model file read (bytes); a bigger one is refused before it is read.
MAX_MODEL_BYTES = 2 * 1024**3

# Helper types scikit-learn's fitted estimators store (found by saving fitted trees,
# forests, boosting, MLP, kNN, calibration and pipelines with skops; classifiers, and
# regressors: trees, forests, histogram and gradient boosting with each loss, linear
# models, MLP, kNN).
_SKLEARN_HELPERS = (
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn._loss.loss.HalfMultinomialLoss",
    "sklearn._loss.loss.ExponentialLoss",
    "sklearn._loss._loss.CyHalfBinomialLoss",
    "sklearn._loss._loss.CyHalfMultinomialLoss",
    "sklearn._loss._loss.CyExponentialLoss",
    "sklearn._loss.link.Interval",
    "sklearn._loss.link.IdentityLink",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.link.HalfLogitLink",
    "sklearn._loss.link.MultinomialLogit",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.metrics._dist_metrics.ManhattanDistance64",
    "sklearn.metrics._dist_metrics.ChebyshevDistance64",
    "sklearn.metrics._dist_metrics.MinkowskiDistance64",
    # Regressors' losses (histogram and gradient boosting, every loss they take).
    "sklearn._loss.loss.HalfSquaredError",
    "sklearn._loss.loss.AbsoluteError",
    "sklearn._loss.loss.PinballLoss",
    "sklearn._loss.loss.HuberLoss",
    "sklearn._loss.loss.HalfPoissonLoss",
    "sklearn._loss.loss.HalfGammaLoss",
    "sklearn._loss._loss.CyHalfSquaredError",
    "sklearn._loss._loss.CyAbsoluteError",
    "sklearn._loss._loss.CyPinballLoss",
    "sklearn._loss._loss.CyHuberLoss",
    "sklearn._loss._loss.CyHalfPoissonLoss",
    "sklearn._loss._loss.CyHalfGammaLoss",
    "sklearn._loss.link.LogLink",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    # HistGradientBoosting with categorical features keeps partial(check_array, ...).
    "sklearn.utils.validation.check_array",
    "functools.partial",
)
# What skops writes for containers and scalars (None is a "builtins.str" JSON node).
_BUILTINS = tuple(f"builtins.{t}" for t in (
    "dict", "list", "tuple", "set", "str", "int", "float", "bool", "complex", "slice",
    "bytes", "bytearray")) + ("collections.OrderedDict",)
_ASSAY = (
    "assay.fairness.fair_regressor.BarycenterFairRegressor",
    "assay.fairness.mitigate.FairBoostClassifier",
    "assay.fairness.mitigate.FairScoreTransformer",
    "assay.fairness.mitigate.GroupThresholdClassifier",
)
_SPARSE = ("csr_matrix", "csc_matrix", "coo_matrix", "csr_array", "csc_array", "coo_array")


def _name(obj: Any) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


@functools.cache
def allowed_types() -> frozenset[str]:
    """Every type or function name a model file may hold, each exact.

    Returns
    -------
    frozenset of str
        scikit-learn's estimators (``sklearn.utils.all_estimators``, qualified names),
        the helper types they store, numpy's array, dtype, scalar, random-state and
        ufunc names, scipy's sparse matrices, container builtins and assay's fairness
        estimators (what ``assay fair --export`` writes).
    """
    import numpy as np
    import scipy.sparse

    from assay.learners import sklearn_estimators

    names = {_name(cls) for cls in sklearn_estimators()}
    names = {n for n in names if n.startswith("sklearn.")}
    names.update(_SKLEARN_HELPERS, _BUILTINS, _ASSAY)
    names.update(_name(getattr(scipy.sparse, kind)) for kind in _SPARSE
                 if hasattr(scipy.sparse, kind))
    names.update({"numpy.ndarray", "numpy.dtype", "numpy.ma.core.MaskedArray",
                  "numpy.random.mtrand.RandomState", "numpy.random._generator.Generator"})
    names.update(f"numpy.random.{g}" for g in ("PCG64", "PCG64DXSM", "MT19937", "Philox",
                                               "SFC64"))
    names.update(f"numpy.{t.__name__}" for t in set(np.sctypeDict.values())
                 if t.__module__ == "numpy")
    names.update(f"numpy.{n}" for n in dir(np) if isinstance(getattr(np, n), np.ufunc))
    return frozenset(names)


def _schema_names(node: Any, out: set[str]) -> None:
    """Every ``module.name`` a skops schema names (each node's type or function)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            module, cls = item.get("__module__"), item.get("__class__")
            if isinstance(module, str) and isinstance(cls, str):
                out.add(f"{module}.{cls}")
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def load_model_file(path: str | Path, *, trusted: Sequence[str] | None = None,
                    what: str = "--model") -> Any:
    """Load a skops model file, refusing every type outside an exact allow-list.

    Parameters
    ----------
    path : path-like
    trusted : sequence of str, optional
        Exact type names the caller accepts beyond `allowed_types` (no prefixes: a
        name matches only itself). The types skops itself does not trust must all be
        listed here when given. Default: `allowed_types` alone.
    what : str
        How messages name the file (``--model``, ``model file``).

    Returns
    -------
    object
        The model, its tree-shaped arrays checked.

    Raises
    ------
    InvalidParameterError
        One line: the file is missing, not a skops file, names a type or function that
        is not allowed (nothing is imported or built then), or cannot be rebuilt.
    """
    import skops.io as sio

    path = Path(path)
    if not path.is_file():
        raise InvalidParameterError(f"{what} must be an existing .skops file. Got {path}.")
    if path.stat().st_size > MAX_MODEL_BYTES:
        raise InvalidParameterError(f"{what} must be at most {MAX_MODEL_BYTES >> 30} GiB. "
                                    f"Got {path} ({path.stat().st_size} bytes).")
    data = path.read_bytes()  # read once: what is checked is what is loaded
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            schema = json.loads(archive.read("schema.json"))
        if not isinstance(schema, dict):
            raise ValueError("schema.json is not an object")
        names: set[str] = set()
        _schema_names(schema, names)
        # skops' own view adds what a node reaches beyond its type (a bound method).
        needed = set(sio.get_untrusted_types(data=data))
    except Exception as exc:  # noqa: BLE001 - any malformed archive is the user's file
        raise InvalidParameterError(
            f"{what} must be a model saved with skops.io.dump. Got {path} "
            f"({_one_line(exc)}).") from None
    extra = set() if trusted is None else {str(t) for t in trusted}
    refused = sorted((names | needed) - allowed_types() - extra)
    if trusted is not None:
        refused = sorted(set(refused) | (needed - extra))
    if refused:
        shown = ", ".join(refused[:5]) + (f" and {len(refused) - 5} more"
                                          if len(refused) > 5 else "")
        raise InvalidParameterError(
            f"{what} must hold only scikit-learn, numpy, scipy and assay model types "
            f"(loading the others could run code). Got {path} naming {shown}.")
    try:
        model = sio.loads(data, trusted=sorted(needed))
    except Exception as exc:  # noqa: BLE001 - only allowed types are built: the file's fault
        raise InvalidParameterError(
            f"{what} must be a model skops can rebuild. Got {path} ({_one_line(exc)}).") \
            from None
    _check_tree_arrays(model, path, what)
    return model


# --------------------------------------------------------------------------- node arrays


def _walk(model: Any) -> Iterable[tuple[Any, Any]]:
    """(object, its owner) for every object reachable through attributes and containers."""
    seen: set[int] = set()
    stack: list[tuple[Any, Any]] = [(model, None)]
    while stack:
        obj, owner = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        yield obj, owner
        if isinstance(obj, dict):
            stack.extend((v, owner) for v in obj.values())
        elif isinstance(obj, (list, tuple)):
            stack.extend((v, owner) for v in obj)
        elif type(obj).__name__ == "ndarray" and obj.dtype == object:  # GB's estimators_
            stack.extend((v, owner) for v in obj.ravel())
        elif hasattr(obj, "__dict__") and type(obj).__module__.startswith(("sklearn", "assay")):
            stack.extend((v, obj) for v in vars(obj).values())


def _bad_tree(tree: Any, n_features: int | None) -> str | None:
    import numpy as np

    left, right = np.asarray(tree.children_left), np.asarray(tree.children_right)
    feature, n = np.asarray(tree.feature), int(tree.node_count)
    if n < 1 or left.shape != (n,) or right.shape != (n,) or feature.shape != (n,):
        return "a tree's node arrays do not match its node count"
    inner = left != -1
    idx = np.arange(n)
    # Children after their parent: every walk from the root ends at a leaf.
    if np.any((right != -1) != inner) or np.any(inner & ((left <= idx) | (left >= n)
                                                         | (right <= idx) | (right >= n))):
        return "a tree's child indices are out of range"
    width = int(tree.n_features) if n_features is None else n_features
    if n_features is not None and int(tree.n_features) != n_features:
        return "a tree's feature count differs from its estimator's"
    if np.any(inner & ((feature < 0) | (feature >= width))):
        return "a tree splits on a feature it does not have"
    return None


def _bad_predictor(pred: Any, n_features: int | None) -> str | None:
    import numpy as np
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE

    nodes = pred.nodes
    if not isinstance(nodes, np.ndarray) or nodes.dtype != PREDICTOR_RECORD_DTYPE \
            or nodes.ndim != 1 or nodes.size < 1:
        return "a boosting predictor's nodes are not scikit-learn's record array"
    n, idx, inner = nodes.size, np.arange(nodes.size), nodes["is_leaf"] == 0
    left, right = nodes["left"].astype(np.int64), nodes["right"].astype(np.int64)
    if np.any(inner & ((left <= idx) | (left >= n) | (right <= idx) | (right >= n))):
        return "a boosting predictor's child indices are out of range"
    feature = nodes["feature_idx"].astype(np.int64)
    if n_features is not None and np.any(inner & ((feature < 0) | (feature >= n_features))):
        return "a boosting predictor splits on a feature it does not have"
    cat = inner & (nodes["is_categorical"] != 0)
    bitsets = min(len(pred.raw_left_cat_bitsets), len(pred.binned_left_cat_bitsets))
    if np.any(cat & (nodes["bitset_idx"].astype(np.int64) >= bitsets)):
        return "a boosting predictor's category sets are out of range"
    return None


def _bad_neighbors(tree: Any) -> str | None:
    import numpy as np

    data, idx = np.asarray(tree.data), np.asarray(tree.idx_array)
    node_data = np.asarray(tree.node_data)
    n, nodes = data.shape[0], len(node_data)
    if data.ndim != 2 or idx.shape != (n,) or np.any((idx < 0) | (idx >= n)):
        return "a neighbour tree's index array is out of range"
    bounds = np.asarray(tree.node_bounds)
    if bounds.ndim != 3 or bounds.shape[1:] != (nodes, data.shape[1]):
        return "a neighbour tree's node bounds do not match its nodes"
    start, end = node_data["idx_start"], node_data["idx_end"]
    inner = node_data["is_leaf"] == 0
    if np.any((start < 0) | (end > n) | (start > end)) or \
            np.any(inner & (2 * np.arange(nodes) + 2 >= nodes)):
        return "a neighbour tree's nodes are out of range"
    return None


def _check_tree_arrays(model: Any, path: Path, what: str) -> None:
    """Refuse node arrays scikit-learn would index out of bounds when predicting."""
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    from sklearn.neighbors import BallTree, KDTree
    from sklearn.tree._tree import Tree

    for obj, owner in _walk(model):
        try:
            width = getattr(owner, "n_features_in_", None)
            width = None if width is None else int(width)
            if isinstance(obj, Tree):
                reason = _bad_tree(obj, width)
            elif isinstance(obj, TreePredictor):
                reason = _bad_predictor(obj, width)
            elif isinstance(obj, (KDTree, BallTree)):
                reason = _bad_neighbors(obj)
            else:
                continue
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            reason = _one_line(exc)
        if reason is not None:
            raise InvalidParameterError(
                f"{what} must be a model scikit-learn can run safely. Got {path} ({reason}).")


# --------------------------------------------------------------------------- fit to table


def check_model_input(model: Any, n_features: int, *, what: str = "--model",
                      task: str = "classification") -> None:
    """The model must suit the target and read `n_features` columns: a classifier gives
    probabilities; for a regression target (`task`), a regressor predicts numbers.

    Raises
    ------
    InvalidParameterError
        No ``predict_proba`` (a regression target: no ``predict``, or a classifier), or
        ``n_features_in_`` differs from `n_features`.
    """
    if task == "regression":
        from sklearn.base import is_classifier

        if not callable(getattr(model, "predict", None)) or is_classifier(model):
            raise InvalidParameterError(
                f"{what} must be a regressor with predict for a regression target. Got "
                f"{type(model).__name__}.")
    elif not callable(getattr(model, "predict_proba", None)):
        raise InvalidParameterError(
            f"{what} must be a classifier with predict_proba. Got {type(model).__name__}.")
    expected = getattr(model, "n_features_in_", None)
    if expected is not None and int(expected) != int(n_features):
        raise InvalidParameterError(
            f"{what} must read the encoded table's {n_features} columns. Got "
            f"{type(model).__name__} fitted on {int(expected)}.")
