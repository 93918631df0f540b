"""Downstream utility of a synthetic release: a model trained on the release against the
same model trained on the real rows, both tested on holdout rows neither saw.

The target's kind decides the model and the figures (`target_task`):

* **classes** (`classification_downstream`): a logistic regression (one-hot, standardised);
  accuracy from the release, from the real rows, and of always guessing the real rows'
  majority class;
* **a continuous target** (`regression_downstream`): a ridge regression on the same
  encoding; MAE and R² from the release and from the real rows, with 95 % intervals from
  a paired bootstrap over the holdout rows (both models on the same resampled rows, so
  the gap's interval is the gap's, not two intervals compared), and the figures of always
  predicting the real rows' mean.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from assay._serial import Serial, meta
from assay._stats import Estimate
from assay._validation import DataError
from assay.synth.marginals import _is_numeric

__all__ = ["MAX_TARGET_CLASSES", "RegressionUtility", "classification_downstream",
           "downstream_utility", "regression_downstream", "target_numbers", "target_task"]

#: Distinct numeric values above which a target is read as continuous (else classes).
MAX_TARGET_CLASSES = 20
#: Bootstrap resamples of the holdout rows behind every interval.
N_RESAMPLES = 1000


def target_task(values: pd.Series) -> str:
    """``"regression"`` for a numeric column of more than `MAX_TARGET_CLASSES` distinct
    values, ``"classification"`` otherwise."""
    if _is_numeric(values) and values.nunique() > MAX_TARGET_CLASSES:
        return "regression"
    return "classification"


def _encoded_model(real: pd.DataFrame, target: str, estimator: Any) -> tuple[Any, Any]:
    """A pipeline (numerics imputed and standardised, the rest one-hot) ending in
    `estimator`, and the function that prepares a frame's features for it."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    features = [c for c in real.columns if c != target]
    numeric = [c for c in features if _is_numeric(real[c])]
    categorical = [c for c in features if c not in numeric]

    def model():
        prep = ColumnTransformer([
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore"), categorical)])
        return make_pipeline(prep, estimator())

    def prepared(frame):
        x = frame[features].copy()
        for c in numeric:
            x[c] = pd.to_numeric(x[c], errors="coerce")
        for c in categorical:
            x[c] = x[c].astype(str)
        return x

    return model, prepared


def classification_downstream(real: pd.DataFrame, synth: pd.DataFrame, holdout: pd.DataFrame,
                              target: str, seed: int) -> dict[str, Any] | None:
    """Accuracy on HOLDOUT of a model trained on SYNTH and one trained on REAL; None for
    fewer than two or more than `MAX_TARGET_CLASSES` classes."""
    from sklearn.linear_model import LogisticRegression

    y_real = real[target].astype(str)
    if y_real.nunique() > MAX_TARGET_CLASSES or y_real.nunique() < 2:
        return None
    model, prepared = _encoded_model(
        real, target, lambda: LogisticRegression(max_iter=2000, random_state=seed))
    x_hold, y_hold = prepared(holdout), holdout[target].astype(str).to_numpy()
    y_synth = synth[target].astype(str)
    acc = {}
    for name, frame, y in (("real", real, y_real), ("synthetic", synth, y_synth)):
        if y.nunique() < 2:  # one class only: the model predicts it
            acc[name] = float(np.mean(y_hold == y.iloc[0]))
            continue
        fitted = model().fit(prepared(frame), y.to_numpy())
        acc[name] = float(np.mean(fitted.predict(x_hold) == y_hold))
    majority = y_real.value_counts().index[0]
    return {"target": target, "model": "logistic regression (one-hot, standardised)",
            "accuracy_synthetic": acc["synthetic"], "accuracy_real": acc["real"],
            "majority_baseline": float(np.mean(y_hold == majority))}


@dataclass
class RegressionUtility(Serial):
    """A continuous target predicted from the release and from the real rows.

    Attributes
    ----------
    target, model : str
    mae_synthetic, mae_real : Estimate
        Mean absolute error on the holdout of the model trained on the release, and on
        the real rows (the target's units).
    r2_synthetic, r2_real : Estimate
        R² on the holdout of each.
    r2_gap : Estimate
        ``r2_real − r2_synthetic``: what the release loses (paired bootstrap).
    mae_mean_baseline, r2_mean_baseline : float
        Always predicting the real rows' mean.
    n_train_synthetic, n_train_real, n_test : int
        Rows with a target each model was trained and tested on.
    task : "regression"
    """

    target: str
    model: str
    mae_synthetic: Estimate
    mae_real: Estimate
    r2_synthetic: Estimate
    r2_real: Estimate
    r2_gap: Estimate
    mae_mean_baseline: float
    r2_mean_baseline: float
    n_train_synthetic: int = field(metadata=meta(schema={"minimum": 2}))
    n_train_real: int = field(metadata=meta(schema={"minimum": 2}))
    n_test: int = field(metadata=meta(schema={"minimum": 2}))
    task: str = field(default="regression", metadata=meta(schema={"const": "regression"}))

    __json_required__ = ("task",)


def target_numbers(frame: pd.DataFrame, target: str, name: str
                   ) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows of `frame` whose target is a number, and those numbers.

    Raises
    ------
    DataError
        `frame` (called `name`) lacks the target column or has fewer than two numbers in it.
    """
    if target not in frame.columns:
        raise DataError(f"{name} must hold the target column {target!r}. Got the columns "
                        f"{', '.join(map(str, frame.columns))}.")
    y = pd.to_numeric(frame[target], errors="coerce").to_numpy(dtype=float)
    keep = np.isfinite(y)
    if keep.sum() < 2:
        raise DataError(f"{name} must hold at least 2 numbers in the target column "
                        f"{target!r}. Got {int(keep.sum())}.")
    return frame.loc[keep], y[keep]


def _mae_r2(y: np.ndarray, pred: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MAE and R² on each resample of rows (``idx``: (B, n) row indices)."""
    yb, pb = y[idx], pred[idx]
    mae = np.abs(yb - pb).mean(axis=1)
    total = np.square(yb - yb.mean(axis=1, keepdims=True)).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = 1 - np.square(yb - pb).sum(axis=1) / total
    return mae, r2


def regression_downstream(real: pd.DataFrame, synth: pd.DataFrame, holdout: pd.DataFrame,
                          target: str, seed: int = 0, confidence: float = 0.95
                          ) -> RegressionUtility:
    """MAE and R² on HOLDOUT of a ridge regression trained on SYNTH and one on REAL.

    Rows whose target is not a number are left out of training and testing.

    Raises
    ------
    DataError
        A table with fewer than two numbers in the target column.
    """
    from sklearn.linear_model import Ridge

    real, y_real = target_numbers(real, target, "REAL")
    synth, y_synth = target_numbers(synth, target, "SYNTH")
    holdout, y_hold = target_numbers(holdout, target, "HOLDOUT")
    model, prepared = _encoded_model(real, target, lambda: Ridge(alpha=1.0))
    x_hold = prepared(holdout)
    preds = {name: model().fit(prepared(frame), y).predict(x_hold)
             for name, frame, y in (("real", real, y_real), ("synthetic", synth, y_synth))}
    mean = np.full_like(y_hold, y_real.mean())
    rng = np.random.default_rng(seed)
    idx = np.vstack([np.arange(y_hold.size),  # row 0: the figures themselves
                     rng.integers(0, y_hold.size, size=(N_RESAMPLES, y_hold.size))])
    figures = {name: _mae_r2(y_hold, p, idx) for name, p in preds.items()}
    tail = (1 - confidence) / 2

    def estimate(values: np.ndarray) -> Estimate:
        boot = values[1:][np.isfinite(values[1:])]
        low, high = np.quantile(boot, [tail, 1 - tail]) if boot.size else (np.nan, np.nan)
        return Estimate(float(values[0]), float(low), float(high))

    base_mae, base_r2 = _mae_r2(y_hold, mean, idx[:1])
    return RegressionUtility(
        target=target, model="ridge regression (alpha 1; one-hot, standardised)",
        mae_synthetic=estimate(figures["synthetic"][0]), mae_real=estimate(figures["real"][0]),
        r2_synthetic=estimate(figures["synthetic"][1]), r2_real=estimate(figures["real"][1]),
        r2_gap=estimate(figures["real"][1] - figures["synthetic"][1]),
        mae_mean_baseline=float(base_mae[0]), r2_mean_baseline=float(base_r2[0]),
        n_train_synthetic=int(y_synth.size), n_train_real=int(y_real.size),
        n_test=int(y_hold.size))


def downstream_utility(real: pd.DataFrame, synth: pd.DataFrame, holdout: pd.DataFrame,
                       target: str, seed: int = 0, task: str | None = None
                       ) -> dict[str, Any] | None:
    """The downstream figures of `target` as a plain dict: `regression_downstream`'s for a
    continuous target, `classification_downstream`'s for classes (`task`, or read from
    the real rows by `target_task`)."""
    task = task or target_task(real[target])
    if task == "regression":
        return regression_downstream(real, synth, holdout, target, seed).to_dict()
    return classification_downstream(real, synth, holdout, target, seed)
