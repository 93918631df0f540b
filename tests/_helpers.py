"""Helpers shared by several test modules (pytest puts tests/ on sys.path)."""

import numpy as np


def balanced_member(n_models, n_rows, rng):
    """Complementary pairs of random halves, as PopulationPlan.balanced builds them."""
    member = np.zeros((n_models, n_rows), bool)
    for k in range(0, n_models, 2):
        half = rng.random(n_rows) < 0.5
        member[k], member[k + 1] = half, ~half
    return member
