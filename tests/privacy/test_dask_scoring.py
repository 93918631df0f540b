"""Attack scoring on a Dask cluster (issue 15): the same figures as the local run, bit for
bit, from workers that never hold the population, and one-line errors before any work."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from _helpers import balanced_member
from assay._validation import InvalidParameterError
from assay.engine import Population, runners
from assay.privacy.membership import attacks, mia, scoring
from assay.privacy.membership.attacks import ATTACKS, attack_scores
from assay.privacy.membership.mia import run_mia

distributed = pytest.importorskip("distributed")


def make_population(n_models: int, n_rows: int, n_classes: int, seed: int = 0):
    """A balanced population whose true-label probability rises with membership (the
    other classes share the rest), and two protected attributes."""
    rng = np.random.default_rng(seed)
    member = balanced_member(n_models, n_rows, rng)
    y = rng.integers(0, n_classes, n_rows)
    race = rng.choice(["a", "b", "c"], n_rows)
    # Group "c" leaks more: its members are fitted harder.
    boost = np.where(race == "c", 1.5, 0.5)
    phi = rng.normal(size=(n_models, n_rows)) + boost * member + rng.normal(size=n_rows)
    p_true = (1 / (1 + np.exp(-phi))).astype(np.float32)
    probs = np.empty((n_models, n_rows, n_classes), dtype=np.float32)
    probs[:] = ((1 - p_true) / (n_classes - 1))[..., None]
    probs[np.arange(n_models)[:, None], np.arange(n_rows)[None], y[None]] = p_true
    groups = pd.DataFrame({"sex": rng.choice(["F", "M"], n_rows), "race": race})
    return Population(probs=probs, member=member, y=y), groups


@pytest.fixture(scope="module")
def cluster():
    """Two single-threaded worker processes."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as c:
        yield c


# The memory-limited workers' cap, below the population on disk (512 MB) and well above
# what a worker was measured to use reading its rows (~200 MB: ~150 MB of imports).
WORKER_MEMORY = 400 * 2**20


@pytest.fixture(scope="module")
def limited_cluster():
    """Two single-threaded worker processes that may hold less than a population. A
    worker over its cap is terminated (the run fails), never paused or spilled: a paused
    worker would leave the run waiting instead of failing."""
    import dask

    no_pause = {"distributed.worker.memory.target": False,
                "distributed.worker.memory.spill": False,
                "distributed.worker.memory.pause": False}
    with dask.config.set(no_pause), distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, memory_limit=WORKER_MEMORY,
            dashboard_address=":0") as c:
        with distributed.Client(c.scheduler_address) as client:  # the workers' own config
            assert set(client.run(dask.config.get, "distributed.worker.memory.pause")
                       .values()) == {False}
        yield c


@pytest.fixture
def shipped(monkeypatch):
    """The size in bytes of every value the driver sends to the cluster: task arguments,
    broadcasts and values shared for the run. (A worker memory limit would say less,
    less reliably: a worker's own imports take a varying share of it.)"""
    sizes: list[int] = []
    ship, put, share = runners.DaskRunner._ship, runners.DaskRunner.put, \
        runners.DaskRunner.share

    def record(send):
        def sending(self, value):
            sizes.append(int(getattr(value, "nbytes", 0)))
            return send(self, value)
        return sending

    def sharing(self, key, make):
        def made():
            value = make()
            sizes.append(int(value.nbytes))
            return value
        return share(self, key, made)

    monkeypatch.setattr(runners.DaskRunner, "_ship", record(ship))
    monkeypatch.setattr(runners.DaskRunner, "put", record(put))
    monkeypatch.setattr(runners.DaskRunner, "share", sharing)
    return sizes


MIA = {"attacks": ATTACKS, "n_permutations": 30, "min_support": 50, "n_records": 10}


def worker_addresses(cluster) -> set[str]:
    with distributed.Client(cluster.scheduler_address) as client:
        return set(client.scheduler_info()["workers"])


def assert_same_run(local, remote):
    assert remote.to_dict() == local.to_dict()
    for name in local.attacks:
        np.testing.assert_array_equal(remote.attacks[name].statistic,
                                      local.attacks[name].statistic)


@pytest.mark.slow
def test_population_on_disk_beyond_a_worker_memory_limit_equals_local(limited_cluster,
                                                                      tmp_path, shipped):
    """A population larger than each worker's memory limit, on disk: workers read their
    targets' rows from the file, which is named, not sent. The run completes with every
    attack and grouping, no worker is lost, and its figures are the local run's."""
    pop, groups = make_population(16, 80_000, 100)
    path = tmp_path / "probs.npy"
    np.save(path, pop.probs)
    on_disk = Population(probs=np.load(path, mmap_mode="r"), member=pop.member, y=pop.y)
    del pop
    assert on_disk.probs.nbytes > WORKER_MEMORY
    assert scoring._memmap_rows(on_disk.probs) is not None  # named by file, not shipped
    workers = worker_addresses(limited_cluster)
    local = run_mia(on_disk, groups=groups, **MIA)
    remote = run_mia(on_disk, groups=groups, backend="dask",
                     scheduler_address=limited_cluster.scheduler_address, **MIA)
    assert_same_run(local, remote)
    assert local.attacks["lira"].auc.value > 0.6
    assert any(r.flagged_groups for r in local.attacks.values())
    # Labels, statistics and indices only: under a tenth of the probabilities in all.
    assert sum(shipped) < on_disk.probs.nbytes / 10
    # Both workers lived through it (none was terminated for exceeding its limit).
    assert worker_addresses(limited_cluster) == workers


@pytest.mark.slow
def test_population_in_memory_is_sent_in_pieces_and_equals_local(cluster, shipped):
    """Held by the driver: each block of models goes to the cluster once for every pass
    and attack, and a task receives the probabilities of its own targets and partners
    only, never the 320 MB population."""
    pop, groups = make_population(16, 50_000, 100)
    workers = worker_addresses(cluster)
    local = run_mia(pop, groups=groups, **MIA)
    remote = run_mia(pop, groups=groups, backend="dask",
                     scheduler_address=cluster.scheduler_address, **MIA)
    assert_same_run(local, remote)
    assert len(shipped) > 16 and max(shipped) <= pop.probs.nbytes / 4
    # Five attacks, each with several passes: the probabilities are sent about once
    # (targets' and partners' blocks), not once per pass (13 times before).
    assert sum(shipped) <= 2 * pop.probs.nbytes
    assert worker_addresses(cluster) == workers


@pytest.mark.parametrize("attack", ATTACKS)
def test_attack_scores_on_dask_equal_local(cluster, attack):
    """Raw scores of a subset of targets (not in model order), many blocks per task."""
    pop, _ = make_population(12, 4000, 3, seed=1)
    targets = [7, 2, 11, 0, 5]
    local = attack_scores(pop, attack, targets)
    remote = attack_scores(pop, attack, targets, backend="dask",
                           scheduler_address=cluster.scheduler_address)
    np.testing.assert_array_equal(remote, local)


def test_sums_from_partial_blocks_equal_on_both_paths(cluster, monkeypatch):
    """Many blocks of models and of targets (tiny blocks): partial sums combined in
    block order give the same numbers on the cluster as here."""
    monkeypatch.setattr(scoring, "_SIGNAL_CACHE_CELLS", 0)
    pop, groups = make_population(10, 3000, 2, seed=2)
    monkeypatch.setattr(scoring, "_BLOCK_BYTES", 3000 * 2 * 4 * 2)  # 2 models a block
    kwargs = {"attacks": ("lira", "rmia_offline"), "groups": groups, "n_permutations": 20,
              "min_support": 50}
    local = run_mia(pop, **kwargs)
    # The cluster's workers import this module afresh: the patched block size must not
    # matter to them (blocks are cut on the driver).
    remote = run_mia(pop, backend="dask", scheduler_address=cluster.scheduler_address,
                     **kwargs)
    assert_same_run(local, remote)


def _slow_square(i: int, pause: float) -> int:
    time.sleep(pause)
    return i * i


def test_results_come_back_in_order_with_few_tasks_in_flight(cluster):
    """Tasks that finish out of order are read back in submission order, and no more
    than two per worker are submitted ahead of the consumer."""
    runner = runners.DaskRunner(cluster.scheduler_address)
    try:
        window = 2 * runner.n_workers
        pulled = [0]

        def tasks():
            for i in range(12):
                pulled[0] += 1
                yield i, 0.2 if i % 3 == 0 else 0.0

        for i, value in enumerate(runner.map(_slow_square, tasks())):
            assert value == i * i
            assert pulled[0] <= i + 1 + window
    finally:
        runner.close()


def _refuse(*args, **kwargs):
    raise AssertionError("work started before the options were checked")


@pytest.mark.parametrize("kwargs, message", [
    ({"backend": "spark"}, "backend must be one of"),
    ({"scheduler_address": "tcp://127.0.0.1:8786"}, "scheduler_address must be None unless"),
    ({"backend": "dask", "scheduler_address": "tcp://host name:1"}, "scheduler_address must be"),
    ({"backend": "dask", "scheduler_address": 8786}, "scheduler_address must be"),
])
def test_invalid_backend_or_address_is_one_line_before_any_work(kwargs, message,
                                                                 monkeypatch):
    for module in (scoring, attacks):
        monkeypatch.setattr(module, "complement_partners", _refuse)
    monkeypatch.setattr(mia, "_attack_params", _refuse)
    pop, groups = make_population(6, 200, 2)
    for call in (lambda: run_mia(pop, groups=groups, **kwargs),
                 lambda: attack_scores(pop, "lira", **kwargs)):
        with pytest.raises(InvalidParameterError, match=message) as info:
            call()
        assert "\n" not in str(info.value)


def test_unreachable_scheduler_is_one_line_before_any_work(monkeypatch):
    for module in (scoring, attacks):
        monkeypatch.setattr(module, "complement_partners", _refuse)
    monkeypatch.setattr(mia, "_attack_params", _refuse)
    import assay.engine.cluster

    monkeypatch.setattr(assay.engine.cluster, "CONNECT_TIMEOUT", 1)
    pop, _ = make_population(6, 200, 2)
    with pytest.raises(InvalidParameterError, match="running Dask scheduler. Got "
                                                    "'tcp://127.0.0.1:9'") as info:
        run_mia(pop, backend="dask", scheduler_address="tcp://127.0.0.1:9")
    assert "\n" not in str(info.value)


def test_missing_dask_names_the_extra(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "distributed" else real(name, *a))
    pop, _ = make_population(6, 200, 2)
    with pytest.raises(InvalidParameterError, match=r'pip install "assay\[dask\]"'):
        run_mia(pop, backend="dask")
