"""Regression populations on a Dask cluster: the same chunks and seeds as the batched
backend, so the same predicted values; the scheduler given is the one used (no local
cluster of its own), and an audit of a regression target runs there end to end."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("distributed")

from assay.engine import PopulationPlan  # noqa: E402
from assay.engine.regression import fit_regression_population  # noqa: E402


def _data(n=300, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = X @ rng.normal(size=d) + rng.normal(0.0, 0.5, n)
    return X, y


def _no_local_cluster(*args, **kwargs):
    raise AssertionError("started a local cluster instead of using the given scheduler")


@pytest.fixture(scope="module")
def threads_cluster():
    """Two in-process workers: quick to start, their scheduler readable here."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=":0") as cluster:
        yield cluster


def _ran_on(cluster) -> bool:
    """Whether the cluster's scheduler has seen the engine's regression chunks."""
    return "fit_values" in cluster.scheduler.task_prefixes


@pytest.mark.parametrize("learner", ["ridge", "sklearn:sklearn.tree.DecisionTreeRegressor"])
def test_dask_equals_batched_on_the_given_scheduler(threads_cluster, monkeypatch, learner):
    import assay.engine.cluster
    from assay.learners import get_learner

    X, y = _data()
    plan = PopulationPlan.balanced(X.shape[0], 6, random_state=0)
    spec = get_learner(learner, **({"max_depth": 3} if learner.startswith("sklearn") else {}))
    batched = fit_regression_population(X, y, spec, plan)
    monkeypatch.setattr(assay.engine.cluster, "_local_cluster", _no_local_cluster)
    on_dask = fit_regression_population(X, y, spec, plan, backend="dask",
                                        scheduler_address=threads_cluster.scheduler_address)
    np.testing.assert_array_equal(on_dask.values, batched.values)
    np.testing.assert_array_equal(on_dask.member, batched.member)
    assert on_dask.info["backend"] == "dask" and on_dask.info["n_workers"] == 2
    assert on_dask.info["n_fitted"] == 6
    assert _ran_on(threads_cluster)


def test_dask_chunks_are_cached_like_the_others(threads_cluster, tmp_path):
    X, y = _data()
    plan = PopulationPlan.balanced(X.shape[0], 4, random_state=1)
    first = fit_regression_population(X, y, "ridge", plan, backend="dask",
                                      scheduler_address=threads_cluster.scheduler_address,
                                      cache_dir=tmp_path)
    again = fit_regression_population(X, y, "ridge", plan, cache_dir=tmp_path)
    assert again.info["n_loaded_from_cache"] == 4 and again.info["n_fitted"] == 0
    np.testing.assert_array_equal(again.values, first.values)


def test_a_regression_audit_runs_on_the_given_scheduler(threads_cluster, monkeypatch,
                                                        tmp_path, data_home):
    import assay.engine.cluster
    from assay.audit import AuditConfig, run_audit
    from assay.multiplicity.section import MultiplicityOptions

    def config(**kwargs):
        return AuditConfig(data="german", target="credit_amount", protected=("sex",),
                           models=6, out=str(tmp_path / "out"), decision_threshold=5000.0,
                           sections={"multiplicity": MultiplicityOptions(n_bootstrap=10)},
                           **kwargs)

    batched = run_audit(config(), progress=False, write=False)
    monkeypatch.setattr(assay.engine.cluster, "_local_cluster", _no_local_cluster)
    on_dask = run_audit(config(backend="dask",
                               scheduler_address=threads_cluster.scheduler_address),
                        progress=False, write=False)
    assert on_dask.population["backend"] == "dask"
    assert _ran_on(threads_cluster)
    for name in ("privacy", "multiplicity"):
        assert on_dask.sections[name].status == "ok", on_dask.sections[name].message
        # Every figure equal; only the timings and the backend of the candidates differ.
        assert on_dask.sections[name].metrics == batched.sections[name].metrics
    dask_figures = on_dask.sections["multiplicity"].data
    batched_figures = batched.sections["multiplicity"].data
    assert [f.to_dict() for f in dask_figures.epsilons] == \
        [f.to_dict() for f in batched_figures.epsilons]
    assert dask_figures.losses == batched_figures.losses
    assert on_dask.sections["privacy"].data.to_dict() == \
        batched.sections["privacy"].data.to_dict()


@pytest.mark.slow  # a local cluster of two worker processes (~15 s)
def test_mlp_regressor_on_worker_processes_equals_batched():
    from distributed import LocalCluster

    X, y = _data(n=200)
    plan = PopulationPlan.balanced(X.shape[0], 4, random_state=2)
    from assay.learners import get_learner

    learner = get_learner("mlp-regressor", max_epochs=5)
    batched = fit_regression_population(X, y, learner, plan)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster:
        on_dask = fit_regression_population(X, y, learner, plan, backend="dask",
                                            scheduler_address=cluster.scheduler_address)
    # Torch on one thread per worker against its own pool here: the same up to rounding.
    np.testing.assert_allclose(on_dask.values, batched.values, rtol=1e-5, atol=1e-5)
