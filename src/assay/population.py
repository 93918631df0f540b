"""Populations of models trained on random halves of one table.

A `PopulationPlan` says which rows each of K models trains on (a balanced membership
matrix: complementary pairs, so every row is a member of exactly K/2 models) and with
which seed. Fitting a plan gives a `Population`: every model's class probabilities on
every row. Membership-inference attacks, Rashomon sets and fairness audits all read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Probabilities are clipped away from 0 and 1 before logs: float32 softmax saturates.
_EPS = 1e-7


@dataclass(frozen=True)
class Population:
    """Per-model, per-row outputs of a fitted population.

    Attributes
    ----------
    probs : float32 array of shape (n_models, n_rows, n_classes)
        Class probabilities of every model on every row.
    member : bool array of shape (n_models, n_rows)
        member[k, i] is true when row i was in model k's training set.
    y : int64 array of shape (n_rows,)
        True class index of every row.
    info : dict
        Learner config, plan seeds, data fingerprint, backend and timings.
    """

    probs: np.ndarray
    member: np.ndarray
    y: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_models(self) -> int:
        return self.probs.shape[0]

    @property
    def n_rows(self) -> int:
        return self.probs.shape[1]

    @property
    def n_classes(self) -> int:
        return self.probs.shape[2]

    def true_prob(self) -> np.ndarray:
        """Probability of the true label, shape (n_models, n_rows)."""
        return np.take_along_axis(self.probs, self.y[None, :, None], axis=2)[..., 0]

    def loss(self) -> np.ndarray:
        """Cross-entropy loss of the true label, shape (n_models, n_rows)."""
        return -np.log(np.clip(self.true_prob(), _EPS, 1.0))

    def logit(self) -> np.ndarray:
        """LiRA's scaled confidence log(p_y) - log(sum of the other classes' p).

        Computed in the stable form (no 1 - p_y cancellation), shape (n_models, n_rows).
        """
        p = np.clip(self.probs.astype(np.float64), _EPS, 1.0)
        p_true = np.take_along_axis(p, self.y[None, :, None], axis=2)[..., 0]
        others = p.sum(axis=2) - p_true
        return np.log(p_true) - np.log(np.clip(others, _EPS, None))

    def predictions(self) -> np.ndarray:
        """Predicted class of every model on every row, shape (n_models, n_rows)."""
        return self.probs.argmax(axis=2)

    def accuracy(self, members: bool) -> np.ndarray:
        """Per-model accuracy on its training rows (members=True) or held-out rows."""
        correct = self.predictions() == self.y[None, :]
        mask = self.member if members else ~self.member
        return (correct & mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1)
