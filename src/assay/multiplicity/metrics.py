"""Predictive-multiplicity metrics of a set of models, per row and aggregated.

Every function takes the class probabilities of the m models of a set on n rows,
``probs`` of shape (m, n, c), and, where a metric is relative to one model (the model
under audit, or the best model of the set), that model's probabilities ``baseline``
(n, c). Decisions are the argmax class (for a binary task: probability of class 1 above
one half).

Per row:

- **flip** (`reversals`): some model of the set decides differently from the baseline
  (Marx, Calmon & Ustun 2020); its mean over rows is the **ambiguity**;
- **viable prediction range** (`viable_prediction_range`): the width max − min over the
  set of a class probability (Watson-Daniels, Parkes & Ustun 2023). For a binary task the
  probability of class 1; with more classes the widest class;
- **score standard deviation** (`score_std`): over the set, same class as the range;
- **self-consistency** (`self_consistency`): the probability that two different models
  drawn from the set decide alike, Σ_k B_k (B_k − 1) / (B (B − 1)) with B_k the models
  deciding class k (Cooper et al. 2024; 1 − 2 B0 B1 / (B (B − 1)) for two classes);
- **Rashomon capacity** (`rashomon_capacity`): 2^C with C the capacity (bits) of the
  channel whose inputs are the models and whose outputs are the classes, between 1 (all
  models agree exactly) and min(m, c) (Hsu & Calmon 2022). Computed by Blahut–Arimoto,
  vectorised over rows; for two classes an exact closed form is used by default (the
  capacity of a binary-output channel is that of its two extreme inputs).

Aggregated: the **discrepancy** is the largest share of rows on which one model of the
set disagrees with the baseline (always ≤ ambiguity); the **churn** is the mean share of
rows on which a model of the set disagrees with the baseline (an update drawn from the
set), and 1 − mean self-consistency is the churn between two updates.

With sampled models every figure is a lower bound on its value over the whole set of
good models (more models can only flip more decisions).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from assay._validation import DataError, InvalidParameterError, check_option, check_scalar

__all__ = [
    "RowMetrics",
    "ambiguity",
    "decisions",
    "discrepancy",
    "rashomon_capacity",
    "reversals",
    "row_metrics",
    "score_std",
    "self_consistency",
    "viable_prediction_range",
]

_TINY = 1e-300  # floor inside logs: 0 log 0 = 0 is kept by the zero weight in front
CAPACITY_METHODS = ("auto", "blahut_arimoto", "exact")


# --------------------------------------------------------------------------- inputs


def _check_probs(probs, name: str = "probs") -> np.ndarray:
    """(m, n, c) float64 array of probabilities; (m, c) is one row."""
    try:
        arr = np.asarray(probs, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{name} must be numeric probabilities. Got {type(probs).__name__}.") \
            from None
    if arr.ndim == 2:
        arr = arr[:, None, :]
    if arr.ndim != 3 or arr.shape[0] < 1 or arr.shape[2] < 2:
        raise DataError(f"{name} must have shape (models, classes) or (models, rows, classes) "
                        f"with at least 2 classes. Got shape {np.shape(probs)}.")
    if not np.isfinite(arr).all() or arr.min() < -1e-9 or arr.max() > 1 + 1e-9:
        raise DataError(f"{name} must hold probabilities in [0, 1]. Got values outside "
                        f"(or NaN).")
    sums = arr.sum(axis=2)
    if np.abs(sums - 1).max() > 1e-3:
        raise DataError(f"{name} must sum to 1 over classes (within 1e-3). Got sums from "
                        f"{sums.min():.4g} to {sums.max():.4g}.")
    return np.clip(arr, 0.0, 1.0)


def _check_baseline(baseline, shape: tuple[int, int]) -> np.ndarray:
    """(n, c) probabilities of the baseline model."""
    arr = np.asarray(baseline)
    if arr.shape != shape:
        raise DataError(f"baseline must have shape {shape} (rows, classes). Got {arr.shape}.")
    return _check_probs(arr[None], "baseline")[0]


def decisions(probs) -> np.ndarray:
    """Decided class of every model on every row: argmax, shape (m, n) (or (n,) for 2-d)."""
    arr = np.asarray(probs)
    return arr.argmax(axis=-1)


# --------------------------------------------------------------------------- per row


def reversals(probs, baseline) -> np.ndarray:
    """Whether each model reverses the baseline's decision on each row: bool (m, n)."""
    p = _check_probs(probs)
    b = _check_baseline(baseline, p.shape[1:])
    return decisions(p) != decisions(b)[None, :]


def _spread_class(p: np.ndarray) -> np.ndarray:
    """Per-class spread (max − min over models), shape (n, c)."""
    return p.max(axis=0) - p.min(axis=0)


def viable_prediction_range(probs) -> np.ndarray:
    """Width of the viable prediction range of every row, shape (n,).

    max − min over models of the probability of class 1 for two classes; with more
    classes the widest class.

    Examples
    --------
    Two models, two rows, two classes:

    >>> import numpy as np
    >>> from assay.multiplicity import viable_prediction_range
    >>> probs = np.array([[[0.9, 0.1], [0.4, 0.6]],
    ...                   [[0.7, 0.3], [0.6, 0.4]]])
    >>> np.round(viable_prediction_range(probs), 3)
    array([0.2, 0.2])
    """
    p = _check_probs(probs)
    return _spread_class(p).max(axis=1)


def score_std(probs) -> np.ndarray:
    """Standard deviation over models of the class probability (class 1, or the widest
    class), shape (n,)."""
    p = _check_probs(probs)
    return _std_of(p)


def _std_of(p: np.ndarray) -> np.ndarray:
    std = p.std(axis=0)  # (n, c)
    if p.shape[2] == 2:
        return std[:, 1]
    return np.take_along_axis(std, _spread_class(p).argmax(axis=1)[:, None], axis=1)[:, 0]


def self_consistency(probs) -> np.ndarray:
    """Probability that two different models of the set decide a row alike, shape (n,).

    Needs at least two models.
    """
    p = _check_probs(probs)
    m = p.shape[0]
    if m < 2:
        raise InvalidParameterError(f"probs must hold at least 2 models for self-consistency. "
                                    f"Got {m}.")
    counts = _class_counts(decisions(p), p.shape[2])
    return _sc_from_counts(counts, float(m))


def _class_counts(dec: np.ndarray, n_classes: int, weights: np.ndarray | None = None
                  ) -> np.ndarray:
    """Models deciding each class on each row: (n, c) (or (B, n, c) for weights (B, m))."""
    m, n = dec.shape
    onehot = np.zeros((m, n, n_classes), dtype=np.float32)
    np.put_along_axis(onehot, dec[:, :, None], 1.0, axis=2)
    if weights is None:
        return onehot.sum(axis=0)
    return (weights.astype(np.float32) @ onehot.reshape(m, -1)).reshape(-1, n, n_classes)


def _sc_from_counts(counts: np.ndarray, total) -> np.ndarray:
    total = np.asarray(total, dtype=np.float64)
    pairs = (counts.astype(np.float64) * (counts - 1.0)).sum(axis=-1)
    if total.ndim:
        total = total.reshape(total.shape + (1,) * (pairs.ndim - total.ndim))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 1, pairs / np.maximum(total * (total - 1), 1), np.nan)


# --------------------------------------------------------------------------- capacity


def rashomon_capacity(scores, *, method: str = "auto", tol: float = 1e-8,
                      max_iter: int = 5000) -> np.ndarray | float:
    """Rashomon capacity 2^C of the models' score vectors, per row.

    C is the capacity (in bits) of the channel P(Y = k | M = h) = scores[h, k]: the
    largest mutual information between a model drawn with some weights and its decided
    class, equivalently the smallest KL radius min_q max_h KL(scores[h] ‖ q) of the
    score vectors (Hsu & Calmon, NeurIPS 2022). 2^C lies in [1, min(m, c)]: 1 when every
    model gives the same scores, min(m, c) for m distinct one-hot vectors.

    Parameters
    ----------
    scores : array-like of shape (models, classes) or (models, rows, classes)
        Class probabilities of m models (each row of a model sums to 1).
    method : {"auto", "blahut_arimoto", "exact"}, default="auto"
        "blahut_arimoto": the Blahut–Arimoto iteration, all rows at once (rows that
        have converged leave the batch). "exact": the closed form of two classes (the
        capacity of a binary-output channel is that of its two extreme inputs, solved
        in closed form). "auto": exact for two classes, Blahut–Arimoto otherwise.
    tol : float, default=1e-8
        Blahut–Arimoto stops on a row when the gap between its upper bound
        max_h KL(scores[h] ‖ q) and lower bound I(w) is below `tol` (nats).
    max_iter : int, default=5000
        Iterations at most (rows not converged keep their lower bound, a few 1e-6 below
        the capacity for 100 models with a wide spread; small sets converge to 1e-12).

    Returns
    -------
    float or ndarray of shape (rows,)
        2^C (a float for a 2-d input).

    Examples
    --------
    Two models that decide for opposite classes with certainty: 2^C = 2.

    >>> import numpy as np
    >>> from assay.multiplicity import rashomon_capacity
    >>> round(float(rashomon_capacity(np.array([[1.0, 0.0], [0.0, 1.0]]))), 6)
    2.0
    """
    one_row = np.ndim(scores) == 2
    p = _check_probs(scores, "scores")
    check_option(method, "method", CAPACITY_METHODS)
    tol = check_scalar(tol, "tol", low=0, low_open=True)
    max_iter = check_scalar(max_iter, "max_iter", kind=int, low=1)
    if method == "exact" and p.shape[2] != 2:
        raise InvalidParameterError(f"method must be 'blahut_arimoto' or 'auto' for more than "
                                    f"two classes. Got 'exact' with {p.shape[2]} classes.")
    if method == "exact" or (method == "auto" and p.shape[2] == 2):
        nats = _binary_capacity(p[:, :, 1].min(axis=0), p[:, :, 1].max(axis=0))
    else:
        nats = blahut_arimoto(p.transpose(1, 0, 2), tol=tol, max_iter=max_iter)
    out = np.exp(nats)
    return float(out[0]) if one_row else out


def _binary_capacity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Capacity (nats) of the binary channel with P(Y=1 | X=0) = a ≤ b = P(Y=1 | X=1).

    min_q max(KL(a ‖ q), KL(b ‖ q)) is reached where the two are equal, at
    logit(q) = (H(a) − H(b)) / (b − a); any input between a and b has a smaller
    divergence from that q (KL is convex in its first argument).
    """
    from scipy.special import entr  # -x log x, 0 at 0

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    entropy_a = entr(a) + entr(1 - a)
    width = b - a
    distinct = width > 1e-12
    z = (entropy_a - entr(b) - entr(1 - b)) / np.where(distinct, width, 1.0)
    z[~distinct] = 0.0
    # KL(a ‖ q) = -H(a) - a log q - (1 - a) log(1 - q), log q = -softplus(-z).
    kl = a * np.logaddexp(0.0, -z) + (1 - a) * np.logaddexp(0.0, z) - entropy_a
    return np.where(distinct, np.maximum(kl, 0.0), 0.0)


def blahut_arimoto(channels, *, weights=None, tol: float = 1e-9,
                   max_iter: int = 5000) -> np.ndarray:
    """Capacity (nats) of many channels at once by the Blahut–Arimoto iteration.

    Each iteration moves the input weights to w_h exp(μ D_h) (normalised), D_h the
    divergence KL(P_h ‖ q) of input h from the output distribution q. μ = 1 is the
    classic step, which never lowers the mutual information I(w); a longer trial step
    (μ doubling while it helps, back to 1 where it would lower I) is kept only where
    it raises I, so the lower bound I(w) still rises monotonically, in fewer
    iterations. A row leaves the batch when its upper bound max_h D_h and lower bound
    I(w) are within `tol`.

    Parameters
    ----------
    channels : ndarray of shape (rows, inputs, outputs)
        One channel per row; each input's row is a probability vector.
    weights : ndarray of shape (rows, inputs), optional
        Starting input distribution (default uniform). Inputs with weight 0 stay at 0:
        the capacity of the channel restricted to the others.
    tol : float, default=1e-9
        Largest gap (nats) between the bounds of a converged row.
    max_iter : int, default=5000
        Iterations at most; rows not converged by then keep their lower bound I(w).

    Returns
    -------
    ndarray of shape (rows,)
        The lower bound I(w) of each row (within `tol` of the capacity once converged).
    """
    P = np.asarray(channels, dtype=np.float64)
    n, m, _ = P.shape
    neg_entropy = (P * np.log(np.maximum(P, _TINY))).sum(axis=2)  # Σ_k P log P, (n, m)
    if weights is None:
        w = np.full((n, m), 1.0 / m)
        allowed = None
    else:
        w = np.asarray(weights, dtype=np.float64)
        w = w / w.sum(axis=1, keepdims=True)
        allowed = w > 0

    def evaluate(w, P, H, allowed):
        q = np.einsum("nm,nmk->nk", w, P)
        D = H - np.einsum("nmk,nk->nm", P, np.log(np.maximum(q, _TINY)))
        lower = (w * D).sum(axis=1)
        if allowed is not None:
            D = np.where(allowed, D, -np.inf)
        return D, lower, D.max(axis=1)

    def step(w, D, upper, mu):
        new = w * np.exp(mu[:, None] * (D - upper[:, None]))
        return new / new.sum(axis=1, keepdims=True)

    out = np.zeros(n)
    active = np.arange(n)
    mu = np.ones(n)
    D, lower, upper = evaluate(w, P, neg_entropy, allowed)
    for _ in range(max_iter):
        out[active] = lower
        keep = upper - lower > tol
        if not keep.any():
            break
        active, P, neg_entropy, w, D, lower, upper, mu = (
            a[keep] for a in (active, P, neg_entropy, w, D, lower, upper, mu))
        if allowed is not None:
            allowed = allowed[keep]
        trial = step(w, D, upper, mu)
        Dt, lt, ut = evaluate(trial, P, neg_entropy, allowed)
        worse = lt < lower
        if worse.any():  # the classic step there
            sub = None if allowed is None else allowed[worse]
            trial[worse] = step(w[worse], D[worse], upper[worse], np.ones(int(worse.sum())))
            Dt[worse], lt[worse], ut[worse] = evaluate(trial[worse], P[worse],
                                                       neg_entropy[worse], sub)
        mu = np.where(worse, 1.0, mu * 2.0)
        w, D, lower, upper = trial, Dt, lt, ut
    else:
        out[active] = lower
    return np.maximum(out, 0.0)


# --------------------------------------------------------------------------- aggregates


def ambiguity(probs, baseline) -> float:
    """Share of rows on which some model of the set reverses the baseline's decision.

    Examples
    --------
    The second model reverses the baseline's decision on the second row:

    >>> import numpy as np
    >>> from assay.multiplicity import ambiguity
    >>> probs = np.array([[[0.9, 0.1], [0.4, 0.6]],
    ...                   [[0.7, 0.3], [0.6, 0.4]]])
    >>> ambiguity(probs, baseline=probs[0])
    0.5
    """
    return float(reversals(probs, baseline).any(axis=0).mean())


def discrepancy(probs, baseline) -> float:
    """Largest share of rows on which one model of the set disagrees with the baseline."""
    return float(reversals(probs, baseline).mean(axis=1).max())


@dataclass(frozen=True)
class RowMetrics:
    """Every per-row figure of one set of models (arrays of shape (n,)).

    Attributes
    ----------
    flip : bool
        Some model reverses the baseline's decision.
    n_reversing : int
        How many models do.
    vpr, score_std, self_consistency, capacity : float
        See the module docstring (self-consistency NaN for a single model).
    """

    flip: np.ndarray
    n_reversing: np.ndarray
    vpr: np.ndarray
    score_std: np.ndarray
    self_consistency: np.ndarray
    capacity: np.ndarray


def row_metrics(probs, baseline, *, capacity_method: str = "auto") -> RowMetrics:
    """Every per-row figure of the set ``probs`` (m, n, c) relative to ``baseline`` (n, c)."""
    p = _check_probs(probs)
    b = _check_baseline(baseline, p.shape[1:])
    rev = decisions(p) != decisions(b)[None, :]
    counts = _class_counts(decisions(p), p.shape[2])
    return RowMetrics(
        flip=rev.any(axis=0), n_reversing=rev.sum(axis=0),
        vpr=_spread_class(p).max(axis=1), score_std=_std_of(p),
        self_consistency=_sc_from_counts(counts, float(p.shape[0])),
        capacity=np.atleast_1d(rashomon_capacity(p, method=capacity_method)))
