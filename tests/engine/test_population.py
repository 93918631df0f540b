"""Plans, backends, the on-disk cache and resuming an interrupted run."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from _helpers import KILLABLE_FIT
from assay import DataError, InvalidParameterError
from assay.engine import Population, PopulationPlan, fit_population
from assay.learners import LogisticRegressionLearner

# Same data, seeds and chunks in another process: only float32 summation order may differ.
BACKEND_ATOL = 1e-5


def _table(n_rows=400, n_features=6, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, n_features)).astype(np.float32)
    W = rng.normal(size=(n_features, n_classes))
    y = np.argmax(X @ W + rng.gumbel(size=(n_rows, n_classes)), axis=1)
    return X, y


def _logreg(chunk_size=2):
    return LogisticRegressionLearner(chunk_size=chunk_size, n_threads=1)


# --------------------------------------------------------------------------- plans


@pytest.mark.parametrize("n_rows", [10, 11])
def test_balanced_plan_pairs_are_complementary(n_rows):
    plan = PopulationPlan.balanced(n_rows, 8, random_state=0)
    assert plan.member.shape == (8, n_rows) and plan.seeds.shape == (8,)
    np.testing.assert_array_equal(plan.member.sum(axis=0), 4)  # every row in K/2 models
    np.testing.assert_array_equal(plan.member[0::2], ~plan.member[1::2])
    assert set(plan.member.sum(axis=1)) <= {n_rows // 2, (n_rows + 1) // 2}
    assert len(set(plan.seeds.tolist())) == 8
    assert not plan.member.flags.writeable


def test_balanced_plan_is_deterministic_under_random_state():
    a = PopulationPlan.balanced(50, 6, random_state=3)
    b = PopulationPlan.balanced(50, 6, random_state=3)
    c = PopulationPlan.balanced(50, 6, random_state=4)
    np.testing.assert_array_equal(a.member, b.member)
    np.testing.assert_array_equal(a.seeds, b.seeds)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
    assert not np.array_equal(a.member, c.member)


@pytest.mark.parametrize(
    ("n_rows", "n_models", "match"),
    [
        (10, 3, "n_models must be an even integer"),
        (10, 0, "n_models must be an integer in [2, inf)"),
        (1, 2, "n_rows must be an integer in [2, inf)"),
        (10, 2.5, "n_models must be an integer"),
    ],
)
def test_balanced_plan_rejects_bad_sizes(n_rows, n_models, match):
    with pytest.raises(InvalidParameterError, match=re.escape(match)):
        PopulationPlan.balanced(n_rows, n_models)


def test_plan_checks_its_arrays():
    with pytest.raises(InvalidParameterError, match="member must be a 2-d boolean array"):
        PopulationPlan(member=np.ones((2, 3)), seeds=np.arange(2))
    with pytest.raises(InvalidParameterError, match="seeds must be 2 integers"):
        PopulationPlan(member=np.ones((2, 3), dtype=bool), seeds=np.arange(3))


# --------------------------------------------------------------------------- population


def test_population_signals_match_their_definitions():
    probs = np.array([[[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]], dtype=np.float32)
    pop = Population(probs=probs, member=np.array([[True, False]]), y=np.array([0, 1]))
    np.testing.assert_allclose(pop.true_prob(), [[0.7, 0.1]], rtol=1e-6)
    np.testing.assert_allclose(pop.loss(), -np.log([[0.7, 0.1]]), rtol=1e-6)
    np.testing.assert_allclose(pop.logit(), [[np.log(0.7 / 0.3), np.log(0.1 / 0.9)]], rtol=1e-5)
    np.testing.assert_array_equal(pop.predictions(), [[0, 2]])
    np.testing.assert_array_equal(pop.accuracy(members=True), [1.0])
    np.testing.assert_array_equal(pop.accuracy(members=False), [0.0])


def test_fit_population_batched_and_joblib_agree():
    X, y = _table()
    plan = PopulationPlan.balanced(len(y), 6, random_state=1)
    batched = fit_population(X, y, _logreg(), plan, progress=False)
    joblib = fit_population(X, y, _logreg(), plan, backend="joblib", n_jobs=2, progress=False)
    assert batched.probs.shape == (6, len(y), 3)
    np.testing.assert_allclose(batched.probs, joblib.probs, atol=BACKEND_ATOL)
    np.testing.assert_array_equal(batched.member, plan.member)
    assert batched.info["backend"] == "batched" and joblib.info["backend"] == "joblib"
    assert batched.info["n_fitted"] == 6 and batched.info["n_loaded_from_cache"] == 0
    assert batched.info["learner"]["name"] == "logreg"
    assert batched.info["seeds"] == plan.seeds.tolist()
    assert len(batched.info["chunk_seconds"]) == 3
    # Trained models: better than the 1/3 of a guess on rows they never saw.
    assert batched.accuracy(members=False).min() > 0.6


def test_fit_population_accepts_a_scikit_learn_estimator():
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, y = _table(n_rows=200)
    plan = PopulationPlan.balanced(len(y), 2, random_state=2)
    pop = fit_population(X, y, HistGradientBoostingClassifier(max_iter=10), plan, progress=False)
    assert pop.info["learner"]["estimator"].endswith("HistGradientBoostingClassifier")
    np.testing.assert_allclose(pop.probs.sum(axis=2), 1.0, atol=1e-5)


@pytest.fixture(scope="module")
def two_worker_cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        yield cluster


def test_dask_backend_matches_local_backends(two_worker_cluster):
    X, y = _table()
    plan = PopulationPlan.balanced(len(y), 6, random_state=5)
    local = fit_population(X, y, _logreg(), plan, progress=False)
    remote = fit_population(
        X,
        y,
        _logreg(),
        plan,
        backend="dask",
        scheduler_address=two_worker_cluster.scheduler_address,
        progress=False,
    )
    np.testing.assert_allclose(remote.probs, local.probs, atol=BACKEND_ATOL)
    assert remote.info["backend"] == "dask" and remote.info["n_workers"] == 2


def test_dask_backend_runs_the_mlp_reproducibly(two_worker_cluster):
    X, y = _table(n_rows=200)
    plan = PopulationPlan.balanced(len(y), 4, random_state=6)
    learner = {"spec": "mlp", "hidden": 8, "max_epochs": 5, "chunk_size": 2, "n_threads": 1}
    from assay.learners import get_learner

    mlp = get_learner(learner.pop("spec"), **learner)
    local = fit_population(X, y, mlp, plan, progress=False)
    remote = fit_population(
        X, y, mlp, plan, backend="dask",
        scheduler_address=two_worker_cluster.scheduler_address, progress=False,
    )
    np.testing.assert_allclose(remote.probs, local.probs, atol=BACKEND_ATOL)


@pytest.mark.slow
def test_dask_backend_starts_its_own_local_cluster():
    X, y = _table(n_rows=200)
    plan = PopulationPlan.balanced(len(y), 4, random_state=7)
    local = fit_population(X, y, _logreg(), plan, progress=False)
    remote = fit_population(X, y, _logreg(), plan, backend="dask", n_jobs=2, progress=False)
    np.testing.assert_allclose(remote.probs, local.probs, atol=BACKEND_ATOL)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"backend": "ray"}, InvalidParameterError, "backend must be one of"),
        ({"scheduler_address": "tcp://x:1"}, InvalidParameterError, "scheduler_address must"),
        ({"n_jobs": 0}, InvalidParameterError, "n_jobs must be an integer"),
        ({"n_classes": 2}, DataError, "y must hold class indices in"),
    ],
)
def test_fit_population_rejects_bad_arguments(kwargs, error, match):
    X, y = _table(n_rows=20)
    plan = PopulationPlan.balanced(20, 2, random_state=0)
    with pytest.raises(error, match=match):
        fit_population(X, y, "logreg", plan, progress=False, **kwargs)


def test_fit_population_rejects_mismatched_data():
    X, y = _table(n_rows=20)
    with pytest.raises(InvalidParameterError, match="plan must cover the 20 rows"):
        fit_population(X, y, "logreg", PopulationPlan.balanced(21, 2), progress=False)
    plan = PopulationPlan.balanced(20, 2)
    with pytest.raises(DataError, match="y must be 20 integer class indices"):
        fit_population(X, y.astype(float), "logreg", plan, progress=False)
    X[0, 0] = np.nan
    with pytest.raises(DataError, match="X must contain only finite values"):
        fit_population(X, y, "logreg", plan, progress=False)



def test_on_chunk_reports_progress_and_can_stop_between_chunks(tmp_path):
    X, y = _table()
    plan = PopulationPlan.balanced(len(y), 6, random_state=8)
    seen = []
    fit_population(X, y, _logreg(), plan, progress=False, on_chunk=lambda d, t: seen.append((d, t)))
    assert seen == [(2, 6), (4, 6), (6, 6)]

    class Stop(Exception):
        pass

    def stop_after_first(done, total):
        raise Stop

    with pytest.raises(Stop):
        fit_population(X, y, _logreg(), plan, cache_dir=tmp_path, progress=False,
                       on_chunk=stop_after_first)
    resumed = fit_population(X, y, _logreg(), plan, cache_dir=tmp_path, progress=False)
    assert resumed.info["n_loaded_from_cache"] == 2 and resumed.info["n_fitted"] == 4


# --------------------------------------------------------------------------- cache


def test_cache_reuses_finished_fits_and_refits_a_corrupt_entry(tmp_path):
    X, y = _table()
    plan = PopulationPlan.balanced(len(y), 6, random_state=8)
    first = fit_population(X, y, _logreg(), plan, cache_dir=tmp_path, progress=False)
    files = sorted(Path(first.info["cache_dir"]).glob("models-*.npz"))
    assert len(files) == 3 and first.info["n_fitted"] == 6

    second = fit_population(X, y, _logreg(), plan, cache_dir=tmp_path, progress=False)
    assert second.info["n_loaded_from_cache"] == 6 and second.info["n_fitted"] == 0
    np.testing.assert_array_equal(second.probs, first.probs)

    # Flip bytes in the middle of one entry (inside the stored probabilities).
    raw = bytearray(files[1].read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    files[1].write_bytes(bytes(raw))
    files[2].write_bytes(b"not a zip file")
    with pytest.warns(RuntimeWarning, match="damaged cache entry"):
        third = fit_population(X, y, _logreg(), plan, cache_dir=tmp_path, progress=False)
    assert third.info["n_corrupt"] == 4 and third.info["n_fitted"] == 4
    assert third.info["n_loaded_from_cache"] == 2
    np.testing.assert_allclose(third.probs, first.probs, atol=1e-6)
    fourth = fit_population(X, y, _logreg(), plan, cache_dir=tmp_path, progress=False)
    assert fourth.info["n_loaded_from_cache"] == 6  # the refit entries were rewritten


def test_cache_chunk_edited_with_a_recomputed_checksum_is_refit(tmp_path):
    import hashlib
    import io

    X, y = _table()
    plan = PopulationPlan.balanced(len(y), 4, random_state=8)
    first = fit_population(X, y, _logreg(), plan, cache_dir=tmp_path, progress=False)
    folder = Path(first.info["cache_dir"])
    victim = sorted(folder.glob("models-*.npz"))[1]
    # The attack that beat format 1: new probabilities with a checksum that matches them.
    with np.load(victim) as data:
        forged = np.full_like(data["probs"], 1 / 3)
        models = data["models"]
    buffer = io.BytesIO()
    np.savez(buffer, probs=forged, models=models,
             sha256=np.array(hashlib.sha256(forged.tobytes()).hexdigest()))
    victim.write_bytes(buffer.getvalue())
    with pytest.warns(RuntimeWarning, match="does not match the cache manifest"):
        second = fit_population(X, y, _logreg(), plan, cache_dir=tmp_path, progress=False)
    assert second.info["n_corrupt"] == 2 and second.info["n_fitted"] == 2
    assert second.info["n_loaded_from_cache"] == 2
    np.testing.assert_allclose(second.probs, first.probs, atol=1e-6)
    assert not np.allclose(second.probs[2:], 1 / 3)


def test_cache_manifest_rejects_unlisted_swapped_and_foreign_entries(tmp_path):
    import json

    X, y = _table()
    plan = PopulationPlan.balanced(len(y), 6, random_state=8)
    first = fit_population(X, y, _logreg(), plan, cache_dir=tmp_path, progress=False)
    folder = Path(first.info["cache_dir"])
    files = sorted(folder.glob("models-*.npz"))
    # A chunk from another plan's folder, copied in under the same name.
    other = fit_population(X, y, _logreg(), PopulationPlan.balanced(len(y), 6, random_state=9),
                           cache_dir=tmp_path, progress=False)
    files[0].write_bytes((Path(other.info["cache_dir"]) / files[0].name).read_bytes())
    # A chunk the manifest does not list.
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["chunks"][files[2].name]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.warns(RuntimeWarning) as caught:
        second = fit_population(X, y, _logreg(), plan, cache_dir=tmp_path, progress=False)
    messages = " | ".join(str(w.message) for w in caught)
    assert "does not match the cache manifest" in messages and "not listed" in messages
    assert second.info["n_corrupt"] == 4 and second.info["n_loaded_from_cache"] == 2
    np.testing.assert_allclose(second.probs, first.probs, atol=1e-6)
    # A manifest written for other key fields makes every chunk of the folder untrusted.
    manifest = json.loads((folder / "manifest.json").read_text())
    assert sorted(manifest["chunks"]) == [f.name for f in files]
    manifest["fields"]["n_classes"] = 7
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.warns(RuntimeWarning, match="not listed"):
        third = fit_population(X, y, _logreg(), plan, cache_dir=tmp_path, progress=False)
    assert third.info["n_corrupt"] == 6 and third.info["n_loaded_from_cache"] == 0
    fourth = fit_population(X, y, _logreg(), plan, cache_dir=tmp_path, progress=False)
    assert fourth.info["n_loaded_from_cache"] == 6


def test_cache_folder_and_files_are_private(tmp_path):
    X, y = _table()
    plan = PopulationPlan.balanced(len(y), 2, random_state=8)
    pop = fit_population(X, y, _logreg(), plan, cache_dir=tmp_path / "cache", progress=False)
    folder = Path(pop.info["cache_dir"])
    assert (tmp_path / "cache").stat().st_mode & 0o777 == 0o700
    assert folder.stat().st_mode & 0o777 == 0o700
    entries = list(folder.iterdir())
    assert {p.name for p in entries} == {"manifest.json", "models-00000-00002.npz"}
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in entries)


def test_cache_key_changes_with_learner_plan_and_data(tmp_path):
    X, y = _table()
    plan = PopulationPlan.balanced(len(y), 2, random_state=9)
    base = fit_population(X, y, _logreg(), plan, cache_dir=tmp_path, progress=False)
    other_c = fit_population(
        X, y, LogisticRegressionLearner(C=0.1, chunk_size=2), plan, cache_dir=tmp_path,
        progress=False,
    )
    other_plan = fit_population(
        X, y, _logreg(), PopulationPlan.balanced(len(y), 2, random_state=10),
        cache_dir=tmp_path, progress=False,
    )
    other_data = fit_population(
        X + 1, y, _logreg(), plan, cache_dir=tmp_path, progress=False
    )
    folders = {p.info["cache_dir"] for p in (base, other_c, other_plan, other_data)}
    assert len(folders) == 4
    assert all(p.info["n_loaded_from_cache"] == 0 for p in (other_c, other_plan, other_data))
    # Threads do not change results, so they do not change the key.
    same = fit_population(
        X, y, LogisticRegressionLearner(chunk_size=2, n_threads=2), plan, cache_dir=tmp_path,
        progress=False,
    )
    assert same.info["n_loaded_from_cache"] == 2


def test_killed_run_resumes_without_refitting_finished_models(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(KILLABLE_FIT)
    cache = tmp_path / "cache"
    args = [sys.executable, str(script), str(cache), str(tmp_path / "probs.npy")]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    finished: list[Path] = []
    while time.monotonic() < deadline and len(finished) < 3:
        finished = list(cache.glob("*/models-*.npz"))
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = sorted(cache.glob("*/models-*.npz"))
    assert 3 <= len(finished) < 8, "the run finished or never started"
    stamps = {p: p.stat().st_mtime_ns for p in finished}

    done = subprocess.run(args, capture_output=True, text=True, check=True, timeout=120)
    loaded, fitted, store = done.stdout.split()
    loaded, fitted = int(loaded), int(fitted)
    assert store == "memory"
    assert loaded == 2 * len(finished) and fitted == 16 - loaded
    assert {p: p.stat().st_mtime_ns for p in finished} == stamps  # read, not rewritten
    assert len(list(cache.glob("*/models-*.npz"))) == 8

    # Same result as an uninterrupted run.
    fresh = subprocess.run(
        [*args[:2], str(tmp_path / "fresh"), str(tmp_path / "fresh.npy")],
        capture_output=True, text=True, check=True, timeout=120,
    )
    assert fresh.stdout.split() == ["0", "16", "memory"]
    np.testing.assert_allclose(
        np.load(tmp_path / "probs.npy"), np.load(tmp_path / "fresh.npy"), atol=1e-6
    )
