"""DP-SGD training at the noise that meets an attack-risk target, and the model's export.

The noise multiplier comes from the accounting core (`assay.privacy.theory.calibrate`,
the same search and PLD lattice step as ``assay calibrate dpsgd``) for the *real*
sample rate q = batch_size / n_train and number of steps T = ceil(epochs / q) of the
fit; the learner is then built with exactly that (σ, q, T), so the guarantee reported
is the guarantee of the model trained.

For comparison the *ε-calibrated* noise for the same target is the classic route:
read the target through the (ε, δ)-DP bound (advantage ≤ (e^ε − 1 + 2δ)/(e^ε + 1), TPR
≤ 1 − f_{ε,δ}(FPR)), take the largest ε that meets it, and calibrate σ to that ε. The
(ε, δ) curve is looser than DP-SGD's own f-DP curve, so it always asks for more noise.

The model is exported without pickle: ``model.npz`` (its weight arrays, read back with
``allow_pickle=False``) and ``model.json`` (learner, layout, classes, feature names and
the privacy settings and guarantee).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assay._validation import (
    DataError,
    InvalidParameterError,
    UnachievableTargetError,
    check_option,
    check_scalar,
)

__all__ = ["CALIBRATION_DISCRETIZATION", "DEFAULT_DELTA", "DEFAULT_FPRS", "DPModel",
           "DPTrainingResult", "EXPORT_FORMAT", "calibrate_noise", "dp_learner",
           "epsilon_for_target", "guarantee_figures", "load_dp_model", "parse_risk", "train_dp"]

#: PLD lattice step of every calibration here: `assay calibrate dpsgd`'s default.
CALIBRATION_DISCRETIZATION = 1e-3
#: δ of the ε-calibrated comparison and of the ε reported beside a guarantee.
DEFAULT_DELTA = 1e-5
#: FPR levels of the guarantee and the attack figures.
DEFAULT_FPRS = (0.001, 0.01, 0.1)
#: How `DPModel.save` writes a model (``export.format`` of the DP payloads).
EXPORT_FORMAT = "npz weights + JSON config (no pickle)"
#: Learners that train with DP-SGD, by the name of their non-private counterpart.
DP_LEARNERS = {"logreg": "dp-logreg", "mlp": "dp-mlp", "dp-logreg": "dp-logreg",
               "dp-mlp": "dp-mlp"}


# --------------------------------------------------------------------------- calibration


def parse_risk(spec: str, delta: float | None = None):
    """A risk target from text (`assay.privacy.theory.calibrate.parse_target`).

    ``tpr@fpr=0.05@0.01``, ``advantage=0.1``, ``epsilon=3`` (with `delta`), ...
    """
    from assay.privacy.theory.calibrate import parse_target

    if not isinstance(spec, str):
        raise InvalidParameterError(f"risk must be text such as tpr@fpr=0.05@0.01. Got {spec!r}.")
    return parse_target(spec, delta=delta)


def calibrate_noise(target, sample_rate: float, steps: int):
    """Smallest σ whose DP-SGD curve meets `target` at (q, T): `CalibrationResult`.

    Exactly ``assay calibrate dpsgd --sample-rate q --steps T --target ...``.

    Raises
    ------
    UnachievableTargetError
        No σ up to 1000 meets the target.
    """
    from assay.privacy.theory.calibrate import calibrate_dpsgd

    return calibrate_dpsgd(target, sample_rate=sample_rate, steps=steps,
                           discretization=CALIBRATION_DISCRETIZATION)


def epsilon_for_target(target, delta: float = DEFAULT_DELTA) -> float:
    """Largest ε whose (ε, δ)-DP bound meets `target` (the classic ε calibration).

    Raises
    ------
    UnachievableTargetError
        Even ε = 0 does not meet the target at this δ (δ alone exceeds it).
    """
    from assay.privacy.theory.accounting import approximate_dp
    from assay.privacy.theory.calibrate import Epsilon, largest_meeting

    if isinstance(target, Epsilon):
        return float(target.value)
    delta = check_scalar(delta, "delta", low=0, high=1, low_open=True, high_open=True)
    risk = lambda eps: target.measure(approximate_dp(eps, delta))  # noqa: E731
    if risk(0.0) > target.value:
        raise UnachievableTargetError(
            f"delta must be small enough for (0, δ)-DP to meet {target.describe()}. "
            f"Got {delta:g}.")
    eps, _, _ = largest_meeting(lambda e: risk(e) <= target.value)
    return eps  # the end that meets the target


def guarantee_figures(noise_multiplier: float, sample_rate: float, steps: int,
                      fprs=DEFAULT_FPRS, delta: float | None = DEFAULT_DELTA) -> dict[str, Any]:
    """The guarantee of DP-SGD at (σ, q, T): advantage, TPR bound at each FPR, ε at δ.

    On the PLD lattice of the calibration, so it is the curve the σ was chosen on.
    """
    from assay.privacy.theory import accounting
    curve = accounting.dpsgd(sample_rate, steps, noise_multiplier,
                             discretization=CALIBRATION_DISCRETIZATION)
    out: dict[str, Any] = {
        "advantage": float(curve.advantage()),
        "tpr_at_fpr": {f"{f:g}": float(curve.tpr(f)) for f in fprs},
    }
    if delta is not None:
        out["delta"] = float(delta)
        out["epsilon"] = float(curve.epsilon(delta))
    return out


def dp_learner(name: str, **params):
    """The DP-SGD learner for ``logreg``/``mlp`` (or ``dp-logreg``/``dp-mlp``), checked."""
    from assay.learners import get_learner

    check_option(name, "learner", tuple(DP_LEARNERS))
    return get_learner(DP_LEARNERS[name], **params)


# --------------------------------------------------------------------------- the model


@dataclass
class DPModel:
    """A DP-SGD model: its weights in ``torch.nn.Linear`` layout, and what it was trained with.

    Attributes
    ----------
    kind : {"linear", "mlp", "linreg"}
    weights : list of ndarray
        ``[W, b]`` (W of shape (C', D), C' = 1 for two classes) or ``[W1, b1, W2, b2]``;
        ``"linreg"``: ``[W (1, D), b (1,)]`` predicting the target in its own units.
    classes : list of str
        Empty for ``"linreg"``.
    feature_names : list of str
        Columns of the encoded design matrix the weights read.
    config : dict
        Learner, privacy settings and guarantee (written to ``model.json``).
    """

    kind: str
    weights: list[np.ndarray]
    classes: list[str]
    feature_names: list[str]
    config: dict[str, Any] = field(default_factory=dict)

    def _rows(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.feature_names):
            raise DataError(f"X must have {len(self.feature_names)} encoded columns. "
                            f"Got shape {X.shape}.")
        return X

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted values (n_rows,) of a ``"linreg"`` model on encoded rows X (n_rows, D)."""
        if self.kind != "linreg":
            raise InvalidParameterError(f"model must be a regression model ('linreg') to "
                                        f"predict values. Got {self.kind!r}: predict_proba.")
        return self._rows(X) @ self.weights[0][0] + self.weights[1][0]

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities (n_rows, n_classes) of encoded rows X (n_rows, D)."""
        if self.kind == "linreg":
            raise InvalidParameterError("model must be a classifier for predict_proba. "
                                        "Got 'linreg': predict.")
        X = self._rows(X)
        if self.kind == "linear":
            z = X @ self.weights[0].T + self.weights[1]
        else:
            h = np.maximum(X @ self.weights[0].T + self.weights[1], 0.0)
            z = h @ self.weights[2].T + self.weights[3]
        if z.shape[1] == 1:
            p1 = 1.0 / (1.0 + np.exp(-z[:, 0]))
            return np.stack([1.0 - p1, p1], axis=1)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def save(self, folder: str | Path) -> tuple[Path, Path]:
        """Write ``model.npz`` (weights) and ``model.json`` (the rest) into `folder`."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        weights = folder / "model.npz"
        arrays: dict[str, Any] = {f"w{i}": np.asarray(w, dtype=np.float32)
                                  for i, w in enumerate(self.weights)}
        np.savez(weights, **arrays)
        meta = folder / "model.json"
        meta.write_text(json.dumps({
            "format": "assay-dp-model/1", "weights": "model.npz", "kind": self.kind,
            "n_weights": len(self.weights), "classes": self.classes,
            "feature_names": self.feature_names, "config": self.config}, indent=1,
            default=float))
        return weights, meta


def load_dp_model(folder: str | Path) -> DPModel:
    """Read a model written by `DPModel.save` (no pickle is ever loaded)."""
    folder = Path(folder)
    meta_path = folder / "model.json"
    if not meta_path.is_file():
        raise DataError(f"folder must hold model.json and model.npz. Got {str(folder)!r}.")
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != "assay-dp-model/1":
        raise DataError(f"model.json must be an assay DP model. Got format "
                        f"{meta.get('format')!r}.")
    with np.load(folder / meta["weights"], allow_pickle=False) as data:
        weights = [np.asarray(data[f"w{i}"], dtype=np.float64) for i in range(meta["n_weights"])]
    return DPModel(meta["kind"], weights, list(meta["classes"]), list(meta["feature_names"]),
                   dict(meta.get("config", {})))


# --------------------------------------------------------------------------- training


@dataclass
class DPTrainingResult:
    """One DP-SGD model trained at the noise that meets a risk target.

    Attributes
    ----------
    model : DPModel
    target : RiskTarget
    calibration : CalibrationResult
        ``value`` is the noise multiplier the model was trained with.
    sample_rate, steps : float, int
    accuracy, train_accuracy : float
        On the held-out and the training rows.
    guarantee : dict
        `guarantee_figures` at the calibrated σ.
    n_train, n_test : int
    settings : dict
        Learner and training settings.
    """

    model: DPModel
    target: Any
    calibration: Any
    sample_rate: float
    steps: int
    accuracy: float
    train_accuracy: float
    guarantee: dict[str, Any]
    n_train: int
    n_test: int
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def noise_multiplier(self) -> float:
        return float(self.calibration.value)

    def to_dict(self) -> dict[str, Any]:
        return {"noise_multiplier": self.noise_multiplier, "sample_rate": self.sample_rate,
                "steps": self.steps, "accuracy": self.accuracy,
                "train_accuracy": self.train_accuracy, "guarantee": self.guarantee,
                "target": self.target.params(), "target_description": self.target.describe(),
                "achieved": float(self.calibration.achieved), "n_train": self.n_train,
                "n_test": self.n_test, **self.settings}


def split_rows(n_rows: int, test_size: float, seed: int) -> np.ndarray:
    """Training-row mask of a seeded random split (the rest is held out)."""
    test_size = check_scalar(test_size, "test_size", low=0, high=1, low_open=True,
                             high_open=True)
    rng = np.random.default_rng(seed)
    n_test = max(1, int(round(test_size * n_rows)))
    train = np.ones(n_rows, dtype=bool)
    train[rng.permutation(n_rows)[:n_test]] = False
    if not train.any():
        raise DataError(f"the table must leave training rows after the split. Got {n_rows}.")
    return train


def check_training(n_train: int, batch_size: int, max_grad_norm: float, epochs: float,
                   what: str = "the training split") -> None:
    """Options of a DP fit, checked before anything is calibrated or trained."""
    check_scalar(max_grad_norm, "max_grad_norm", low=0, low_open=True)
    check_scalar(epochs, "epochs", low=0, low_open=True, high=10_000)
    batch_size = check_scalar(batch_size, "batch_size", kind=int, low=1)
    if batch_size > n_train:
        raise InvalidParameterError(
            f"batch_size must be at most the {n_train} rows of {what}. Got {batch_size}.")


def train_dp(dataset, risk, *, learner: str = "logreg", epochs: float = 5.0,
             batch_size: int = 256, max_grad_norm: float = 1.0, test_size: float = 0.2,
             seed: int = 0, delta: float = DEFAULT_DELTA, fprs=DEFAULT_FPRS,
             learner_params: dict[str, Any] | None = None) -> DPTrainingResult:
    """Calibrate σ to `risk` for the real (q, T) of the fit, train, and measure accuracy.

    Parameters
    ----------
    dataset : Dataset
    risk : str or RiskTarget
        ``"tpr@fpr=0.05@0.01"``, ``"advantage=0.1"``, ...
    learner : {"logreg", "mlp"}
        Its DP-SGD version is trained.
    epochs, batch_size, max_grad_norm : float, int, float
        q = batch_size / n_train, T = ceil(epochs / q), clipping norm C.
    test_size : float
        Share of rows held out for the accuracy.
    seed : int
        Seed of the split and of the model.
    delta : float
        δ of the ε reported beside the guarantee.
    learner_params : dict, optional
        Other learner parameters (``lr``, ``hidden``, ``momentum``).

    Raises
    ------
    AssayError
        Every option is checked, and σ calibrated, before the fit: a target no σ in
        [0.1, 1000] meets, a batch larger than the training rows, C ≤ 0.
    """
    target = parse_risk(risk, delta) if isinstance(risk, str) else risk
    params = dict(learner_params or {})
    reserved = {"noise_multiplier", "sample_rate", "steps", "max_grad_norm", "batch_size",
                "epochs"} & set(params)
    if reserved:
        raise InvalidParameterError(f"learner_params must not set {', '.join(sorted(reserved))} "
                                    f"(they follow from the target and the options). "
                                    f"Got {sorted(reserved)}.")
    train = split_rows(dataset.n_rows, test_size, seed)
    n_train = int(train.sum())
    check_training(n_train, batch_size, max_grad_norm, epochs)
    spec = dp_learner(learner, batch_size=batch_size, epochs=epochs,
                      max_grad_norm=max_grad_norm, **params)
    q, steps = spec.schedule(n_train)
    calibration = calibrate_noise(target, q, steps)
    fitted = dp_learner(learner, **{**params, "batch_size": batch_size,
                                    "max_grad_norm": max_grad_norm,
                                    "noise_multiplier": calibration.value,
                                    "sample_rate": q, "steps": steps})
    weights = fitted.fit_params(dataset.X, dataset.y, train[None], np.array([seed]),
                                dataset.n_classes)
    weights = [w[0].numpy().astype(np.float64) for w in weights]
    guarantee = guarantee_figures(calibration.value, q, steps, fprs, delta)
    settings = {"learner": fitted.name, "epochs": float(epochs), "batch_size": int(batch_size),
                "max_grad_norm": float(max_grad_norm), "seed": int(seed),
                "learner_config": fitted.get_config()}
    model = DPModel(fitted.kind, weights, [str(c) for c in dataset.classes],
                    list(dataset.feature_names),
                    {**settings, "noise_multiplier": calibration.value, "sample_rate": q,
                     "steps": steps, "guarantee": guarantee,
                     "target": target.describe(), "dataset": dataset.name,
                     "fingerprint": str(dataset.fingerprint)})
    pred = model.predict_proba(dataset.X).argmax(axis=1)
    correct = pred == dataset.y
    return DPTrainingResult(model=model, target=target, calibration=calibration, sample_rate=q,
                            steps=steps, accuracy=float(correct[~train].mean()),
                            train_accuracy=float(correct[train].mean()), guarantee=guarantee,
                            n_train=n_train, n_test=int((~train).sum()), settings=settings)


def steps_for(sample_rate: float, epochs: float) -> int:
    """T = ceil(epochs / q), as the learners compute it."""
    return max(1, math.ceil(epochs / sample_rate))
