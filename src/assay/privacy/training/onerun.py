"""One-run DP auditing (Steinke, Nasr, Jagielski, NeurIPS 2023): a lower bound on ε.

m canaries are drawn from the table, their labels flipped (a mislabelled record is the
hardest for a model to hide), and each is put in the training set independently with
probability ½; one model is trained. The auditor scores every canary by the model's
log-probability of its (flipped) label, guesses IN for the k highest and OUT for the k
lowest, and counts the correct guesses v of the r = 2k made. Under (ε, δ)-DP,

    p(ε) = Pr[Binomial(r, e^ε/(1 + e^ε)) ≥ v] + 2mδ · max_{1≤i≤v} Pr[v−i ≤ Binomial < v] / i

bounds the chance of v or more correct guesses, so every ε with p(ε) < p₀ is refuted:
the largest such ε (by bisection) is the reported lower bound. k is chosen from a fixed
grid with a Bonferroni correction (p₀ divided by the grid size), never post hoc.

On a continuous target (`one_run_regression_audit`) each canary's target is set to the
public bound farther from its value, and scored by minus its squared loss.

With black-box access to one final model the bound is loose (far below the accounted
ε): it is a check that the training is not grossly broken, beside the guarantee.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import bdtr, bdtrc

from assay._serial import Serial
from assay._validation import DataError, check_scalar

__all__ = ["OneRunAudit", "epsilon_lower_bound", "guess_from_scores", "one_run_audit",
           "one_run_regression_audit", "p_value"]

#: Shares of the canaries guessed on each side (IN for the top, OUT for the bottom).
GUESS_SHARES = (0.02, 0.05, 0.1, 0.2, 0.5)


def _tail(r: int, v: int, q: float) -> float:
    """Pr[Binomial(r, q) ≥ v]."""
    return 1.0 if v <= 0 else float(bdtrc(v - 1, r, q))


def p_value(epsilon: float, n_guesses: int, n_correct: int, n_canaries: int,
            delta: float = 0.0) -> float:
    """Chance of ``n_correct`` or more correct guesses of ``n_guesses`` under (ε, δ)-DP."""
    q = 1.0 / (1.0 + np.exp(-epsilon))
    r, v = int(n_guesses), int(n_correct)
    beta = _tail(r, v, q)
    if delta <= 0 or v <= 0:
        return min(1.0, beta)
    i = np.arange(1, v + 1)
    # Pr[v − i ≤ B < v] = cdf(v − 1) − cdf(v − i − 1)
    below = bdtr(v - 1, r, q) - np.where(v - i - 1 >= 0, bdtr(np.maximum(v - i - 1, 0), r, q),
                                         0.0)
    alpha = float(np.max(below / i))
    return min(1.0, beta + alpha * 2 * n_canaries * delta)


def epsilon_lower_bound(n_guesses: int, n_correct: int, n_canaries: int, delta: float = 0.0,
                        significance: float = 0.05) -> float:
    """Largest ε refuted at level `significance` (0 when none is)."""
    if n_guesses <= 0 or p_value(0.0, n_guesses, n_correct, n_canaries, delta) >= significance:
        return 0.0
    from assay.privacy.theory.calibrate import largest_meeting

    eps, _, _ = largest_meeting(
        lambda e: p_value(e, n_guesses, n_correct, n_canaries, delta) < significance)
    return eps


@dataclass
class OneRunAudit(Serial):
    """Result of `one_run_audit`.

    Attributes
    ----------
    n_canaries, n_included : int
    epsilon_lower : float
        Empirical lower bound on ε (at ``delta``, level ``significance``).
    n_guesses, n_correct : int
        At the grid point that gave the bound.
    delta, significance : float
    canary_auc : float
        AUC of the canary scores, IN against OUT (0.5: no signal).
    """

    n_canaries: int
    n_included: int
    epsilon_lower: float
    n_guesses: int
    n_correct: int
    delta: float
    significance: float
    canary_auc: float

    __json_plain__ = True


def _flip(y: np.ndarray, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    return (y + rng.integers(1, n_classes, size=y.shape)) % n_classes


def _draw_canaries(n: int, n_canaries: int, train_rows: np.ndarray | None, delta: float,
                   significance: float, seed: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.random.Generator]:
    """Canary rows, their coin flips, the one model's training mask, and the generator
    (to alter the canaries with next); every option checked first."""
    m = check_scalar(n_canaries, "n_canaries", kind=int, low=10)
    check_scalar(delta, "delta", low=0, high=1, high_open=True)
    check_scalar(significance, "significance", low=0, high=1, low_open=True, high_open=True)
    rng = np.random.default_rng([seed, 7])
    base = np.zeros(n, bool) if train_rows is None else np.asarray(train_rows, bool).copy()
    pool = np.flatnonzero(~base) if train_rows is not None else np.arange(n)
    if pool.size < m:
        raise DataError(f"n_canaries must be at most the {pool.size} rows available. Got {m}.")
    canaries = rng.choice(pool, size=m, replace=False)
    if train_rows is None:
        base[:] = True
        base[canaries] = False
    included = rng.random(m) < 0.5
    mask = base.copy()
    mask[canaries[included]] = True
    return canaries, included, mask, rng


def one_run_audit(X: np.ndarray, y: np.ndarray, learner, n_classes: int, *,
                  n_canaries: int = 500, train_rows: np.ndarray | None = None,
                  delta: float = 1e-5, significance: float = 0.05,
                  seed: int = 0) -> OneRunAudit:
    """Train one model with canaries and bound ε from below (see the module notes).

    Parameters
    ----------
    X, y : arrays
        Encoded table and class indices.
    learner : Learner
        Trains the one model (a DP-SGD learner with fixed sample rate and steps keeps the
        guarantee independent of how many canaries went in).
    n_classes : int
    n_canaries : int, default=500
        Canaries m, drawn from the rows not in `train_rows`.
    train_rows : bool array, optional
        Rows always trained on (default: every row that is not a canary).
    delta, significance : float
    seed : int
    """
    canaries, included, mask, rng = _draw_canaries(X.shape[0], n_canaries, train_rows,
                                                   delta, significance, seed)
    labels = np.asarray(y).copy()
    labels[canaries] = _flip(labels[canaries], n_classes, rng)
    probs = learner.fit_predict(X, labels, mask[None], np.array([seed]), n_classes)[0]
    score = np.log(np.clip(probs[canaries, labels[canaries]], 1e-12, 1.0))
    return guess_from_scores(score, included, delta, significance)



def one_run_regression_audit(X: np.ndarray, y: np.ndarray, learner,
                             target_bounds: tuple[float, float], *, n_canaries: int = 500,
                             train_rows: np.ndarray | None = None, delta: float = 1e-5,
                             significance: float = 0.05, seed: int = 0) -> OneRunAudit:
    """`one_run_audit` for a model that predicts a number (``fit_predict_values``).

    Each canary's target is set to the public bound farther from its own value (the
    regression counterpart of a flipped label: a value the features do not predict, and
    the largest residual the clipped target allows); the score is minus its squared loss
    under the one model (a canary trained on is pulled towards its bound). The same
    guesses and estimator as for classes (`guess_from_scores`).

    Parameters
    ----------
    X, y : arrays
        Encoded table and the continuous target.
    learner : Learner
        With ``fit_predict_values(X, y, train_mask, seeds)`` (the DP linear regression,
        with fixed sample rate and steps).
    target_bounds : (LO, HI)
        The public bounds the learner clips the target into.
    n_canaries, train_rows, delta, significance, seed
        As for `one_run_audit`.
    """
    low, high = (float(b) for b in target_bounds)
    canaries, included, mask, _ = _draw_canaries(X.shape[0], n_canaries, train_rows,
                                                 delta, significance, seed)
    targets = np.asarray(y, dtype=np.float64).copy()
    own = np.clip(targets[canaries], low, high)
    targets[canaries] = np.where(own - low < high - own, high, low)
    values = learner.fit_predict_values(X, targets, mask[None], np.array([seed]))[0]
    score = -np.square(values[canaries] - targets[canaries])
    return guess_from_scores(score, included, delta, significance)

def guess_from_scores(score: np.ndarray, included: np.ndarray, delta: float = 1e-5,
                      significance: float = 0.05) -> OneRunAudit:
    """The auditor's guesses from the canaries' scores (higher: more likely IN), and the
    lower bound on ε they give (see the module notes), whatever the model and canaries."""
    score, included = np.asarray(score, dtype=float), np.asarray(included, dtype=bool)
    m = int(score.size)
    order = np.argsort(-score, kind="stable")
    grid = sorted({max(1, int(round(s * m / 2))) for s in GUESS_SHARES})
    level = significance / len(grid)  # Bonferroni over the fixed grid
    best = (0.0, 0, 0)
    for k in grid:
        correct = int(included[order[:k]].sum() + (~included[order[-k:]]).sum())
        eps = epsilon_lower_bound(2 * k, correct, m, delta, level)
        if eps > best[0] or best[1] == 0:
            best = (eps, 2 * k, correct)
    ranks = np.empty(m)
    ranks[np.argsort(score, kind="stable")] = np.arange(1, m + 1)
    n_in = int(included.sum())
    auc = ((ranks[included].sum() - n_in * (n_in + 1) / 2) / max(n_in * (m - n_in), 1))
    return OneRunAudit(n_canaries=m, n_included=n_in, epsilon_lower=float(best[0]),
                       n_guesses=int(best[1]), n_correct=int(best[2]), delta=float(delta),
                       significance=float(significance), canary_auc=float(auc))
