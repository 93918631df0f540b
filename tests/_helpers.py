"""Helpers shared by several test modules (pytest puts tests/ on sys.path)."""

import textwrap

import numpy as np


def balanced_member(n_models, n_rows, rng):
    """Complementary pairs of random halves, as PopulationPlan.balanced builds them."""
    member = np.zeros((n_models, n_rows), bool)
    for k in range(0, n_models, 2):
        half = rng.random(n_rows) < 0.5
        member[k], member[k + 1] = half, ~half
    return member


#: A fit slow enough to be killed half-way: 16 models in chunks of 2, cached under
#: argv[1], probabilities saved to argv[2]; argv[3] == "disk" puts the population on disk.
#: Prints the models loaded from the cache, those fitted, and where the population lives.
KILLABLE_FIT = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from assay.learners import LogisticRegressionLearner
    from assay.population import PopulationPlan, fit_population

    class SlowLogreg(LogisticRegressionLearner):
        def fit_predict(self, *args):
            time.sleep(0.3)  # long enough to be killed half-way
            return super().fit_predict(*args)

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5)).astype(np.float32)
    y = (X[:, 0] + rng.normal(size=300) > 0).astype(np.int64)
    plan = PopulationPlan.balanced(300, 16, random_state=0)
    disk = sys.argv[3:] == ["disk"]
    pop = fit_population(X, y, SlowLogreg(chunk_size=2, n_threads=1), plan,
                         cache_dir=sys.argv[1], progress=False, data_fingerprint="toy",
                         memory_budget=1e-9 if disk else None)
    np.save(sys.argv[2], pop.probs)
    print(pop.info["n_loaded_from_cache"], pop.info["n_fitted"], pop.info["store"])
    """
)
