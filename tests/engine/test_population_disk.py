"""Populations over their memory budget: written to disk as they are fitted, read by block."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import assay.engine as population_module
import assay.engine.population as population_core
from _helpers import KILLABLE_FIT
from assay import InvalidParameterError
from assay.data import load
from assay.engine import Population, PopulationPlan, fit_population
from assay.groups import FlagRule, GroupIndex
from assay.learners import LogisticRegressionLearner
from assay.privacy.membership.mia import run_mia

TINY = 1e-9  # GiB: every population is over it


def _logreg():
    return LogisticRegressionLearner(chunk_size=2, n_threads=1)


def _table(n_rows=400, n_classes=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, 5)).astype(np.float32)
    W = rng.normal(size=(5, n_classes))
    y = np.argmax(X @ W + rng.gumbel(size=(n_rows, n_classes)), axis=1)
    return X, y


class _Stop(Exception):
    pass


def _stop_after(n_models):
    def on_chunk(done, total):
        if done >= n_models:
            raise _Stop

    return on_chunk


@pytest.fixture(scope="module")
def synthetic():
    return load("synthetic", n_rows=500, random_state=0)


@pytest.fixture(scope="module")
def pair(synthetic, tmp_path_factory):
    """The same population in memory and on disk (8 models of the synthetic table)."""
    plan = PopulationPlan.balanced(synthetic.n_rows, 8, random_state=1)
    args = (synthetic.X, synthetic.y, _logreg(), plan)
    memory = fit_population(*args, n_classes=synthetic.n_classes, progress=False)
    disk = fit_population(*args, n_classes=synthetic.n_classes, progress=False,
                          cache_dir=tmp_path_factory.mktemp("cache"), memory_budget=TINY)
    return memory, disk


# --------------------------------------------------------------------------- storage


def test_population_over_budget_is_a_read_only_memmap_equal_bit_for_bit(pair):
    memory, disk = pair
    assert not memory.on_disk and memory.info["store"] == "memory"
    assert disk.on_disk and isinstance(disk.probs, np.memmap)
    assert not disk.probs.flags.writeable
    assert disk.probs.dtype == memory.probs.dtype == np.float32
    np.testing.assert_array_equal(disk.probs, memory.probs)
    info = disk.info
    assert info["store"] == "disk" and info["memory_budget"] == TINY
    assert "over memory_budget 1e-09 GiB" in info["store_reason"]
    path = Path(info["probs_path"])
    assert path.parent == Path(info["cache_dir"]) and path.name == "probs.npy"
    assert Path(disk.probs.filename) == path
    # The file is the store: no .npz copy of its chunks beside it.
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "manifest.json", "probs.json", "probs.npy"]
    manifest = json.loads((path.parent / "probs.json").read_text())
    assert sorted(manifest["chunks"]) == [f"models-{a:05d}-{a + 2:05d}" for a in (0, 2, 4, 6)]


def test_population_within_budget_stays_in_memory(tmp_path):
    X, y = _table()
    plan = PopulationPlan.balanced(len(y), 4, random_state=0)
    size = 4 * len(y) * 2 * 4 / 2**30
    pop = fit_population(X, y, _logreg(), plan, progress=False, cache_dir=tmp_path,
                         memory_budget=2 * size)
    assert not pop.on_disk and pop.info["store"] == "memory"
    assert "within memory_budget" in pop.info["store_reason"]
    assert pop.info["probs_path"] is None and pop.info["probs_gib"] == pytest.approx(size)
    assert not list(tmp_path.glob("*/probs.npy"))
    # store="disk" forces the file whatever the budget; store="memory" refuses it.
    forced = fit_population(X, y, _logreg(), plan, progress=False, cache_dir=tmp_path,
                            store="disk")
    assert forced.on_disk and forced.info["store_reason"].startswith("store='disk'")
    kept = fit_population(X, y, _logreg(), plan, progress=False, cache_dir=tmp_path,
                          memory_budget=TINY, store="memory")
    assert not kept.on_disk
    np.testing.assert_array_equal(kept.probs, forced.probs)


class _MustNotFit(LogisticRegressionLearner):
    def fit_predict(self, *args):
        raise AssertionError("a model was fitted before the options were checked")


@pytest.mark.parametrize("kwargs, match", [
    ({"memory_budget": TINY}, (r"cache_dir must be a folder to write the population to "
                               r"\(4 x 400 x 2 float32 probabilities take .* GiB, over "
                               r"memory_budget 1e-09 GiB\)\. Got None\.")),
    ({"store": "disk"}, r"cache_dir must be a folder .*store='disk'.*Got None\."),
    ({"memory_budget": 0}, r"memory_budget must be a number in \(0, inf\)\. Got 0"),
    ({"memory_budget": -1.0}, r"memory_budget must be a number in \(0, inf\)"),
    ({"memory_budget": "1"}, r"memory_budget must be a number"),
    ({"memory_budget": float("nan")}, r"memory_budget must be a number"),
    ({"store": "tape"}, r"store must be one of"),
])
def test_bad_store_options_are_refused_before_any_fit(kwargs, match):
    X, y = _table()
    plan = PopulationPlan.balanced(len(y), 4, random_state=0)
    with pytest.raises(InvalidParameterError, match=match):
        fit_population(X, y, _MustNotFit(chunk_size=2), plan, progress=False, **kwargs)


# --------------------------------------------------------------------------- figures


@pytest.mark.parametrize("n_classes", [2, 3])
def test_whole_population_figures_are_blockwise_and_unchanged(monkeypatch, n_classes):
    X, y = _table(n_rows=300, n_classes=n_classes)
    plan = PopulationPlan.balanced(len(y), 6, random_state=2)
    pop = fit_population(X, y, _logreg(), plan, progress=False)
    whole = {name: getattr(pop, name)() for name in ("true_prob", "loss", "logit",
                                                     "predictions")}
    whole["acc_in"], whole["acc_out"] = pop.accuracy(True), pop.accuracy(False)
    # The figures' definitions, on the whole array at once.
    p_true = np.take_along_axis(pop.probs, y[None, :, None], axis=2)[..., 0]
    np.testing.assert_array_equal(whole["true_prob"], p_true)
    np.testing.assert_array_equal(whole["predictions"], pop.probs.argmax(axis=2))
    correct = pop.probs.argmax(axis=2) == y
    np.testing.assert_array_equal(
        whole["acc_in"], (correct & pop.member).sum(1) / pop.member.sum(1))
    np.testing.assert_array_equal(
        whole["acc_out"], (correct & ~pop.member).sum(1) / (~pop.member).sum(1))
    # Blocks of 1 and 4 models (not dividing K): the same figures bit for bit.
    for cells in (len(y), 4 * len(y)):
        monkeypatch.setattr(population_core, "_BLOCK_CELLS", cells)
        assert len(pop.model_blocks()) == -(-6 // (cells // len(y)))
        for name in ("true_prob", "loss", "logit", "predictions"):
            got = getattr(pop, name)()
            assert got.dtype == whole[name].dtype
            np.testing.assert_array_equal(got, whole[name])
        np.testing.assert_array_equal(pop.accuracy(True), whole["acc_in"])
        np.testing.assert_array_equal(pop.accuracy(False), whole["acc_out"])


def test_run_mia_on_disk_equals_in_memory(pair, synthetic):
    memory, disk = pair
    groups = GroupIndex.from_frame(synthetic.groups)
    kwargs = {"attacks": ("loss", "lira", "rmia", "lira_offline", "rmia_offline"),
              "groups": groups, "row_ids": synthetic.row_ids, "random_state": 0,
              "min_support": 20, "n_permutations": 20, "flag_rule": FlagRule()}
    on_disk = run_mia(disk, **kwargs).to_dict()
    in_memory = run_mia(memory, **kwargs).to_dict()
    assert set(on_disk["attacks"]) == set(kwargs["attacks"])
    assert any(a["groups"] for a in on_disk["attacks"].values())
    assert json.dumps(on_disk, sort_keys=True) == json.dumps(in_memory, sort_keys=True)


# --------------------------------------------------------------------------- resuming


def test_interrupted_fit_on_disk_resumes_from_the_file(tmp_path):
    X, y = _table()
    plan = PopulationPlan.balanced(len(y), 8, random_state=3)
    fresh = fit_population(X, y, _logreg(), plan, progress=False)
    with pytest.raises(_Stop):
        fit_population(X, y, _logreg(), plan, progress=False, cache_dir=tmp_path,
                       memory_budget=TINY, on_chunk=_stop_after(4))
    resumed = fit_population(X, y, _logreg(), plan, progress=False, cache_dir=tmp_path,
                             memory_budget=TINY)
    assert resumed.info["n_loaded_from_cache"] == 4 and resumed.info["n_fitted"] == 4
    np.testing.assert_array_equal(resumed.probs, fresh.probs)
    again = fit_population(X, y, _logreg(), plan, progress=False, cache_dir=tmp_path,
                           memory_budget=TINY)
    assert again.info["n_loaded_from_cache"] == 8 and again.info["n_fitted"] == 0
    assert not list(tmp_path.glob("*/models-*.npz"))


def test_damaged_slice_of_the_file_is_refit_alone(tmp_path):
    X, y = _table()
    plan = PopulationPlan.balanced(len(y), 8, random_state=3)
    first = fit_population(X, y, _logreg(), plan, progress=False, cache_dir=tmp_path,
                           memory_budget=TINY)
    expected = np.array(first.probs)
    path = Path(first.info["probs_path"])
    del first
    raw = bytearray(path.read_bytes())
    # Flip a byte of model 3's probabilities (chunk models 2-3).
    offset = len(raw) - expected.nbytes + 3 * expected[0].nbytes + 17
    raw[offset] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.warns(RuntimeWarning, match=r"damaged cache entry refit: probs\.npy\[2:4\]"):
        second = fit_population(X, y, _logreg(), plan, progress=False, cache_dir=tmp_path,
                                memory_budget=TINY)
    assert second.info["n_corrupt"] == 2 and second.info["n_fitted"] == 2
    assert second.info["n_loaded_from_cache"] == 6
    np.testing.assert_array_equal(second.probs, expected)
    # A truncated file: no chunk matches its manifest any more, every one is refit.
    del second
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.warns(RuntimeWarning, match="damaged cache entry refit"):
        third = fit_population(X, y, _logreg(), plan, progress=False, cache_dir=tmp_path,
                               memory_budget=TINY)
    assert third.info["n_fitted"] == 8 and third.info["n_loaded_from_cache"] == 0
    np.testing.assert_array_equal(third.probs, expected)


def test_chunks_cached_in_memory_mode_fill_the_file_and_back(tmp_path):
    X, y = _table()
    plan = PopulationPlan.balanced(len(y), 8, random_state=4)
    with pytest.raises(_Stop):  # 4 models cached as .npz chunks by an in-memory run
        fit_population(X, y, _logreg(), plan, progress=False, cache_dir=tmp_path,
                       on_chunk=_stop_after(4))
    disk = fit_population(X, y, _logreg(), plan, progress=False, cache_dir=tmp_path,
                          memory_budget=TINY)
    assert disk.info["n_loaded_from_cache"] == 4 and disk.info["n_fitted"] == 4
    # A later run in memory reads the 4 models only the file holds from it.
    memory = fit_population(X, y, _logreg(), plan, progress=False, cache_dir=tmp_path)
    assert memory.info["n_loaded_from_cache"] == 8 and memory.info["n_fitted"] == 0
    assert not memory.on_disk
    np.testing.assert_array_equal(memory.probs, disk.probs)


def _listed(cache: Path) -> int:
    try:
        manifest = json.loads(next(cache.glob("*/probs.json")).read_text())
    except (StopIteration, ValueError, OSError):
        return 0
    return len(manifest["chunks"])


def test_killed_fit_on_disk_resumes_without_refitting_finished_models(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(KILLABLE_FIT)
    cache = tmp_path / "cache"
    args = [sys.executable, str(script), str(cache), str(tmp_path / "probs.npy"), "disk"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _listed(cache) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = _listed(cache)
    assert 3 <= finished < 8, "the run finished or never started"

    done = subprocess.run(args, capture_output=True, text=True, check=True, timeout=120)
    loaded, fitted, store = done.stdout.split()
    assert store == "disk" and int(loaded) == 2 * finished and int(fitted) == 16 - int(loaded)
    assert _listed(cache) == 8 and not list(cache.glob("*/models-*.npz"))

    fresh = subprocess.run(
        [*args[:2], str(tmp_path / "fresh"), str(tmp_path / "fresh.npy"), "disk"],
        capture_output=True, text=True, check=True, timeout=120,
    )
    assert fresh.stdout.split() == ["0", "16", "disk"]
    np.testing.assert_array_equal(np.load(tmp_path / "probs.npy"),
                                  np.load(tmp_path / "fresh.npy"))


# --------------------------------------------------------------------------- backends


@pytest.fixture(scope="module")
def two_worker_cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster:
        yield cluster


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["joblib", "dask"])
def test_other_backends_write_each_chunk_into_the_file(tmp_path, backend, request):
    X, y = _table()
    plan = PopulationPlan.balanced(len(y), 8, random_state=5)
    extra = ({"scheduler_address": request.getfixturevalue("two_worker_cluster")
              .scheduler_address} if backend == "dask" else {"n_jobs": 2})
    local = fit_population(X, y, _logreg(), plan, progress=False)
    seen = []
    disk = fit_population(X, y, _logreg(), plan, progress=False, backend=backend,
                          cache_dir=tmp_path, memory_budget=TINY,
                          on_chunk=lambda done, total: seen.append(_listed(tmp_path)), **extra)
    assert disk.on_disk and seen == [1, 2, 3, 4]  # each chunk listed as it finished
    # Another process: only float32 summation order may differ (as in test_population).
    np.testing.assert_allclose(disk.probs, local.probs, atol=1e-5)


def test_population_of_a_memmap_reads_blocks_not_the_whole_file(pair, monkeypatch):
    """Each figure touches probs one block of models at a time."""
    _, disk = pair
    seen = []

    class Spy(np.ndarray):
        def __getitem__(self, key):
            seen.append(key)
            return np.asarray(self)[key]

    spied = Population(probs=np.asarray(disk.probs).view(Spy), member=disk.member,
                       y=disk.y, info=disk.info)
    monkeypatch.setattr(population_core, "_BLOCK_CELLS", 3 * disk.n_rows)
    spied.accuracy(True)
    spied.logit()
    assert seen == [slice(0, 3), slice(3, 6), slice(6, 8)] * 2


# --------------------------------------------------------------------------- wiring


@pytest.fixture(scope="module")
def narrow_table(tmp_path_factory):
    """Few features, so that a budget can hold them but not 16 models' probabilities."""
    rng = np.random.default_rng(7)
    n = 800
    x = rng.normal(size=(n, 3))
    frame = {"x1": x[:, 0], "x2": x[:, 1], "x3": x[:, 2],
             "sex": rng.choice(["F", "M"], size=n),
             "t": (x[:, 0] + rng.normal(size=n) > 0).astype(int)}
    import pandas as pd

    path = tmp_path_factory.mktemp("narrow") / "narrow.csv"
    pd.DataFrame(frame).to_csv(path, index=False)
    return path


BUDGET = 5e-5  # GiB (52 kB): the features fit, 16 x 800 x 2 float32 (100 kB) does not


def _spy(monkeypatch):
    fitted = []
    real = population_module.fit_population

    def spy(*args, **kwargs):
        fitted.append(real(*args, **kwargs))
        return fitted[-1]

    monkeypatch.setattr(population_module, "fit_population", spy)
    return fitted


def test_assay_mia_memory_budget_puts_the_population_on_disk(narrow_table, tmp_path,
                                                             monkeypatch):
    from assay.cli import main

    fitted = _spy(monkeypatch)
    argv = ["mia", str(narrow_table), "--target", "t", "--protected", "sex", "--models", "16",
            "--attacks", "loss,rmia", "--permutations", "20", "--min-support", "30",
            "--no-progress"]
    assert main([*argv, "--json", str(tmp_path / "memory.json")]) == 0
    assert main([*argv, "--json", str(tmp_path / "disk.json"),
                 "--memory-budget", str(BUDGET)]) == 0
    assert main([*argv, "--json", str(tmp_path / "kept.json"), "--memory-budget", str(BUDGET),
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    memory, scratch, kept = fitted
    assert not memory.on_disk and scratch.on_disk and kept.on_disk
    assert scratch.info["memory_budget"] == BUDGET
    # Without --cache-dir the file lives in a temporary folder removed at the end.
    assert not Path(scratch.info["probs_path"]).exists()
    assert Path(kept.info["probs_path"]).is_relative_to(tmp_path / "cache")
    assert Path(kept.info["probs_path"]).exists()
    payloads = [json.loads((tmp_path / f"{n}.json").read_text())
                for n in ("memory", "disk", "kept")]
    sections = [p["privacy"] for p in payloads]
    assert sections[0]["mia"]["attacks"] and sections[0] == sections[1] == sections[2]


@pytest.mark.slow
def test_audit_memory_budget_puts_the_population_on_disk(narrow_table, tmp_path, monkeypatch):
    """Every section runs on the population on disk and finds what it finds in memory."""
    from assay.audit import AuditConfig, run_audit

    fitted = _spy(monkeypatch)
    results, stores = [], []
    for name, budget in (("memory", None), ("disk", BUDGET)):
        fitted.clear()
        results.append(run_audit(AuditConfig(
            data=str(narrow_table), target="t", protected=("sex",), models=16,
            out=str(tmp_path / name), memory_budget=budget), progress=False, write=False))
        stores.append([p.info["store"] for p in fitted])
    # The audit's population on disk (the multiplicity candidates fit within the budget).
    assert stores[0][0] == "memory" and stores[1][0] == "disk"
    assert set(stores[0]) == {"memory"} and len(stores[0]) == len(stores[1])
    memory, disk = (r.to_dict() for r in results)
    assert all(s["status"] != "error" for s in disk["sections"].values())
    assert disk["population"] == memory["population"] | {"seconds": disk["population"]
                                                         ["seconds"]}
    strip = ("seconds",)

    def clean(d):
        if isinstance(d, dict):
            return {k: clean(v) for k, v in d.items() if k not in strip}
        if isinstance(d, list):
            return [clean(v) for v in d]
        return d

    assert json.dumps(clean(disk["sections"]), sort_keys=True, default=str) == json.dumps(
        clean(memory["sections"]), sort_keys=True, default=str)


def test_read_models_copies_blocks_of_a_population_on_disk(pair):
    memory, disk = pair
    ks = np.array([5, 0, 3])
    block = disk.read_models(ks)
    assert type(block) is np.ndarray and block.flags.writeable  # a copy, not the file
    np.testing.assert_array_equal(block, memory.probs[ks])
    np.testing.assert_array_equal(disk.read_models(slice(2, 6)), memory.read_models(slice(2, 6)))
    assert memory.read_models(slice(0, 2)).base is memory.probs  # in memory: a view


def test_chunks_are_written_a_few_models_at_a_time(tmp_path, monkeypatch):
    X, y = _table()
    plan = PopulationPlan.balanced(len(y), 8, random_state=6)
    learner = LogisticRegressionLearner(chunk_size=4, n_threads=1)
    memory = fit_population(X, y, learner, plan, progress=False)
    monkeypatch.setattr(population_core, "_BLOCK_CELLS", 3 * len(y))  # 3 + 1 per chunk
    disk = fit_population(X, y, learner, plan, progress=False, cache_dir=tmp_path,
                          store="disk")
    np.testing.assert_array_equal(disk.probs, memory.probs)
    again = fit_population(X, y, learner, plan, progress=False, cache_dir=tmp_path,
                           store="disk")
    assert again.info["n_loaded_from_cache"] == 8


def test_sparse_features_fit_to_disk_as_in_memory(tmp_path):
    sparse = pytest.importorskip("scipy.sparse")
    X, y = _table()
    X[np.abs(X) < 0.8] = 0  # about half the entries stored
    X = sparse.csr_matrix(X)
    plan = PopulationPlan.balanced(len(y), 4, random_state=7)
    memory = fit_population(X, y, _logreg(), plan, progress=False)
    disk = fit_population(X, y, _logreg(), plan, progress=False, cache_dir=tmp_path,
                          memory_budget=TINY)
    assert disk.on_disk and X.nnz < X.shape[0] * X.shape[1]
    np.testing.assert_array_equal(disk.probs, memory.probs)
    # A CSR matrix is fingerprinted from its entries (not densified to hash it).
    assert memory.info["data_fingerprint"] == disk.info["data_fingerprint"]
