"""Batched learners against the same models fitted one at a time, and the adapters."""

from __future__ import annotations

import math
import sys
import types

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from assay import InvalidParameterError
from assay.learners import (
    Learner,
    LogisticRegressionLearner,
    SklearnLearner,
    SklearnRegressorLearner,
    get_learner,
    learner_from_table,
    parse_learner_params,
)
from assay.learners.mlp import MLPLearner

torch = pytest.importorskip("torch")

# After convergence both solvers sit at the same optimum of a strictly convex
# objective; what is left is float32 rounding in the batched solver.
LOGREG_PROB_ATOL = 1e-3
# Held-out accuracy may differ by at most half a percentage point.
ACC_ATOL = 0.005
# Batched vs one-model torch loop with the same seeds: same arithmetic up to the order
# of float32 summation (bmm vs mm), amplified a little by many Adam steps.
MLP_PROB_ATOL = 5e-3


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Small problems: one thread is faster, and immune to a busy machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _table(n_rows, n_features, n_classes, seed):
    """Features on uneven scales and offsets (the solver must not rely on scaling)."""
    rng = np.random.default_rng(seed)
    scales = rng.uniform(0.2, 5.0, size=n_features)
    X = rng.normal(size=(n_rows, n_features)) * scales + rng.normal(size=n_features)
    W = rng.normal(size=(n_features, n_classes))
    y = np.argmax((X / scales) @ W + rng.gumbel(size=(n_rows, n_classes)), axis=1)
    return X.astype(np.float32), y.astype(np.int64)


def _halves(n_rows, k, seed):
    rng = np.random.default_rng(seed)
    return rng.random((k, n_rows)) < 0.5


def _held_out_accuracy(probs, y, mask):
    return np.array([(p.argmax(1) == y)[~m].mean() for p, m in zip(probs, mask, strict=True)])


@pytest.mark.parametrize("n_classes", [2, 4])
@pytest.mark.parametrize("C", [0.05, 1.0])
def test_logreg_matches_sklearn(n_classes, C):
    X, y = _table(1500, 12, n_classes, seed=n_classes)
    mask = _halves(len(y), 4, seed=1)
    probs = LogisticRegressionLearner(C=C, tol=1e-6).fit_predict(
        X, y, mask, np.arange(4), n_classes
    )
    assert probs.shape == (4, len(y), n_classes) and probs.dtype == np.float32
    reference = np.stack(
        [
            LogisticRegression(C=C, tol=1e-8, max_iter=10_000)
            .fit(X[m].astype(np.float64), y[m])
            .predict_proba(X)
            for m in mask
        ]
    )
    np.testing.assert_allclose(probs, reference, atol=LOGREG_PROB_ATOL)
    np.testing.assert_allclose(
        _held_out_accuracy(probs, y, mask), _held_out_accuracy(reference, y, mask), atol=ACC_ATOL
    )


def test_logreg_constant_column_and_models_are_independent():
    X, y = _table(600, 5, 3, seed=3)
    X[:, 2] = 7.0  # zero variance: must not divide by zero
    mask = _halves(len(y), 4, seed=2)
    # A tight tolerance: a model alone starts cold, in a chunk from the pooled fit.
    together = LogisticRegressionLearner(tol=1e-6).fit_predict(X, y, mask, np.arange(4), 3)
    alone = LogisticRegressionLearner(tol=1e-6).fit_predict(X, y, mask[2:3], np.arange(1), 3)
    assert np.isfinite(together).all()
    # Independent up to the solver's tolerance (float32 sums differ with K).
    np.testing.assert_allclose(together[2], alone[0], atol=1e-4)


def _mlp_one_model(X, y, rows, seed, n_classes, cfg: MLPLearner):
    """The same network trained alone with torch.nn-style code and torch.optim.Adam."""
    gen = torch.Generator().manual_seed(int(seed))
    n_features = X.shape[1]

    def uniform(shape, fan_in):
        return (torch.rand(shape, generator=gen) * 2 - 1) / math.sqrt(fan_in)

    params = [
        uniform((n_features, cfg.hidden), n_features),
        uniform((1, cfg.hidden), n_features),
        uniform((cfg.hidden, n_classes), cfg.hidden),
        uniform((1, n_classes), cfg.hidden),
    ]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=cfg.lr)
    X_t, y_t = torch.tensor(X), torch.tensor(y)
    rows = torch.tensor(np.flatnonzero(rows))
    best, stale = math.inf, 0
    for _ in range(cfg.max_epochs):
        order = rows[torch.randperm(len(rows), generator=gen)]
        total = 0.0
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            logits = torch.relu(X_t[idx] @ params[0] + params[1]) @ params[2] + params[3]
            ce = torch.nn.functional.cross_entropy(logits, y_t[idx])
            l2 = (params[0] ** 2).sum() + (params[2] ** 2).sum()
            opt.zero_grad()
            (ce + 0.5 * cfg.alpha * l2 / len(idx)).backward()
            opt.step()
            total += ce.item() * len(idx)
        loss = total / len(order)
        stale = stale + 1 if loss > best - cfg.tol else 0
        best = min(best, loss)
        if stale > cfg.n_iter_no_change:
            break
    with torch.no_grad():
        logits = torch.relu(X_t @ params[0] + params[1]) @ params[2] + params[3]
        return torch.softmax(logits, 1).numpy()


def test_mlp_matches_one_model_torch_loop():
    X, y = _table(701, 10, 3, seed=5)  # odd rows: the two halves differ in size
    mask = _halves(len(y), 3, seed=4)
    cfg = MLPLearner(hidden=32, batch_size=64, max_epochs=60, n_iter_no_change=5)
    seeds = np.array([11, 12, 13])
    probs = cfg.fit_predict(X, y, mask, seeds, 3)
    reference = np.stack(
        [_mlp_one_model(X, y, m, s, 3, cfg) for m, s in zip(mask, seeds, strict=True)]
    )
    np.testing.assert_allclose(probs, reference, atol=MLP_PROB_ATOL)
    np.testing.assert_allclose(
        _held_out_accuracy(probs, y, mask), _held_out_accuracy(reference, y, mask), atol=ACC_ATOL
    )
    # Trained, not just initialised: well above the 1/3 of a random guess.
    assert _held_out_accuracy(probs, y, mask).min() > 0.6


def test_mlp_model_does_not_depend_on_its_chunk():
    X, y = _table(300, 6, 2, seed=6)
    mask = _halves(len(y), 4, seed=6)
    cfg = MLPLearner(hidden=16, max_epochs=5)
    together = cfg.fit_predict(X, y, mask, np.arange(4), 2)
    alone = cfg.fit_predict(X, y, mask[3:], np.arange(3, 4), 2)
    np.testing.assert_allclose(together[3], alone[0], atol=1e-5)
    again = cfg.fit_predict(X, y, mask, np.arange(4), 2)
    np.testing.assert_array_equal(together, again)


def test_mlp_shared_batches_reach_the_same_accuracy():
    X, y = _table(800, 8, 3, seed=7)
    mask = _halves(len(y), 4, seed=7)
    per_model = MLPLearner(hidden=32, max_epochs=60).fit_predict(X, y, mask, np.arange(4), 3)
    shared = MLPLearner(hidden=32, max_epochs=60, batching="shared").fit_predict(
        X, y, mask, np.arange(4), 3
    )
    np.testing.assert_allclose(probs_sum := shared.sum(axis=2), np.ones_like(probs_sum), atol=1e-5)
    gap = _held_out_accuracy(shared, y, mask).mean() - _held_out_accuracy(per_model, y, mask).mean()
    assert abs(gap) < 0.03


@pytest.mark.parametrize(
    "estimator",
    [
        GradientBoostingClassifier(n_estimators=20, subsample=0.7),
        HistGradientBoostingClassifier(max_iter=20),
        make_pipeline(StandardScaler(), LogisticRegression()),
    ],
    ids=["gradient-boosting", "hist-gradient-boosting", "pipeline"],
)
def test_sklearn_adapter_matches_direct_fits(estimator):
    X, y = _table(400, 6, 3, seed=8)
    mask = _halves(len(y), 2, seed=8)
    seeds = np.array([3, 4])
    learner = get_learner(estimator)
    assert isinstance(learner, SklearnLearner) and isinstance(learner, Learner)
    probs = learner.fit_predict(X, y, mask, seeds, 3)
    assert probs.shape == (2, len(y), 3) and probs.dtype == np.float32
    for k in range(2):
        direct = learner._seeded_clone(int(seeds[k])).fit(X[mask[k]], y[mask[k]])
        np.testing.assert_allclose(probs[k], direct.predict_proba(X), atol=1e-6)


def test_sklearn_adapter_seeds_every_random_state():
    X, y = _table(300, 5, 2, seed=9)
    mask = np.ones((3, len(y)), dtype=bool)
    learner = SklearnLearner(make_pipeline(StandardScaler(), RandomForestClassifier(5)))
    probs = learner.fit_predict(X, y, mask, np.array([1, 1, 2]), 2)
    np.testing.assert_array_equal(probs[0], probs[1])  # same seed, same forest
    assert not np.array_equal(probs[0], probs[2])
    assert "randomforestclassifier__random_state" not in learner.get_config()["params"]
    assert learner.estimator.get_params()["randomforestclassifier__random_state"] is None


def test_sklearn_adapter_scatters_a_class_missing_from_a_half():
    X, y = _table(200, 4, 3, seed=10)
    mask = np.ones((1, len(y)), dtype=bool)
    mask[0, y == 1] = False
    probs = get_learner("sklearn:sklearn.linear_model.LogisticRegression").fit_predict(
        X, y, mask, np.array([0]), 3
    )
    assert np.all(probs[0, :, 1] == 0)
    np.testing.assert_allclose(probs.sum(axis=2), 1.0, atol=1e-6)


def test_get_learner_resolves_every_spec():
    assert get_learner("logreg", C=0.5).C == 0.5
    assert get_learner("mlp", hidden=8).hidden == 8
    hgb = get_learner("sklearn:sklearn.ensemble.HistGradientBoostingClassifier", max_iter=7)
    assert hgb.estimator.max_iter == 7
    template = LogisticRegression(C=2.0)
    adapted = get_learner(template, C=3.0)
    assert adapted.estimator.C == 3.0 and template.C == 2.0  # cloned, not modified
    base = LogisticRegressionLearner(C=4.0)
    assert get_learner(base) == base
    assert get_learner(base, max_iter=9).max_iter == 9 and base.max_iter != 9
    config = get_learner("mlp").get_config()
    assert config["name"] == "mlp" and "n_threads" not in config


@pytest.mark.parametrize(
    ("spec", "params", "match"),
    [
        ("forest", {}, "learner must be one of"),
        ("sklearn:nowhere.Thing", {}, "must name a class of sklearn"),
        ("sklearn:LogisticRegression", {}, "sklearn:<module>.<Class>"),
        ("logreg", {"depth": 3}, "learner parameter 'depth' is not one of logreg's: C, max_iter"),
        (LogisticRegression(), {"depth": 3}, "'depth' is not one of LogisticRegression's: C,"),
        (42, {}, "learner must be one of"),
        ("logreg", {"C": 0}, "C must be a number in (0, inf)"),
        ("mlp", {"batching": "odd"}, "batching must be one of"),
    ],
)
def test_get_learner_errors(spec, params, match):
    with pytest.raises(InvalidParameterError, match=match.replace("(", r"\(").replace(")", r"\)")):
        get_learner(spec, **params)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_logreg_warm_start_reaches_the_same_optimum(n_classes):
    X, y = _table(1200, 8, n_classes, seed=5)
    mask = _halves(len(y), 3, seed=4)
    warm = LogisticRegressionLearner(tol=1e-6).fit_predict(X, y, mask, np.arange(3), n_classes)
    cold = LogisticRegressionLearner(tol=1e-6, warm_start=False).fit_predict(
        X, y, mask, np.arange(3), n_classes
    )
    np.testing.assert_allclose(warm, cold, atol=LOGREG_PROB_ATOL)


def test_logreg_default_tolerance_is_as_close_as_sklearn_default():
    """tol=1e-4 on sklearn's own measure: no farther from the optimum than sklearn's fit."""
    X, y = _table(2000, 10, 2, seed=6)
    mask = _halves(len(y), 2, seed=5)
    probs = LogisticRegressionLearner().fit_predict(X, y, mask, np.arange(2), 2)
    for p, m in zip(probs, mask, strict=True):
        tight = LogisticRegression(tol=1e-10, max_iter=10_000).fit(X[m].astype(np.float64), y[m])
        default = LogisticRegression(max_iter=10_000).fit(X[m], y[m])
        ours = np.abs(p - tight.predict_proba(X)).max()
        theirs = np.abs(default.predict_proba(X) - tight.predict_proba(X)).max()
        assert ours <= max(theirs, LOGREG_PROB_ATOL)


# --------------------------------------------------------------------------- specs and params


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (["C=0.5"], {"C": 0.5}),
        (["hidden=[64, 32]"], {"hidden": [64, 32]}),
        (['solver="lbfgs"', "penalty=l2"], {"solver": "lbfgs", "penalty": "l2"}),
        (["max_iter=300", "warm_start=false", "tol=1e-6"],
         {"max_iter": 300, "warm_start": False, "tol": 1e-6}),
        (["max_depth=None", "early_stopping=True"], {"max_depth": None, "early_stopping": True}),
        (["logisticregression__C = 2"], {"logisticregression__C": 2}),
        (["loss=log_loss", "kernel=sklearn.gaussian_process.kernels.RBF"],
         {"loss": "log_loss", "kernel": "sklearn.gaussian_process.kernels.RBF"}),
        ([], {}),
    ],
)
def test_parse_learner_params_reads_toml_literals_and_bare_words(items, expected):
    parsed = parse_learner_params(items)
    assert parsed == expected
    assert [type(v) for v in parsed.values()] == [type(v) for v in expected.values()]


@pytest.mark.parametrize(
    ("items", "match"),
    [
        (["C"], "KEY=VALUE.* Got 'C'"),
        (["=1"], "KEY=VALUE.* Got '=1'"),
        (["C="], "KEY=VALUE.* Got 'C='"),
        (["1a=2"], "KEY=VALUE.* Got '1a=2'"),
        (["a.b=2"], "KEY=VALUE.* Got 'a.b=2'"),
        (["C=1", "C=2"], "parameter C must be given once. Got 'C=1' and 'C=2'"),
        (["hidden=[64, 32"], "TOML literal .* Got 'hidden=\\[64, 32'"),
        (["solver=two words"], "TOML literal .* Got 'solver=two words'"),
        (["C=1\nmax_iter=2"], "TOML literal"),  # one item cannot smuggle in a second key
    ],
)
def test_parse_learner_params_errors_name_the_item(items, match):
    with pytest.raises(InvalidParameterError, match=match) as info:
        parse_learner_params(items)
    assert "\n" not in str(info.value)  # one line, the item shown by its repr


def test_learner_from_table_splits_name_and_params():
    assert learner_from_table({"name": "mlp", "hidden": 64, "lr": 0.01}) == (
        "mlp",
        {"hidden": 64, "lr": 0.01},
    )
    table = {"name": "sklearn:sklearn.ensemble.HistGradientBoostingClassifier"}
    name, params = learner_from_table(table)
    assert get_learner(name, **params).estimator.max_iter == 100 and "name" in table
    for bad, match in [
        ({"hidden": 64}, "learner.name must be .* Got nothing"),
        ({"name": 3}, "learner.name must be .* Got 3"),
        ({"name": "mlp", "a b": 1}, "identifiers. Got 'a b'"),
        ("mlp", "learner must be a table"),
    ]:
        with pytest.raises(InvalidParameterError, match=match):
            learner_from_table(bad)


def test_get_learner_validates_every_value_before_training():
    # Unknown keys list what the learner takes; values fail at construction, not in fit.
    with pytest.raises(InvalidParameterError, match=r"'hiden' is not one of mlp's: hidden, "):
        get_learner("mlp", hiden=64)
    with pytest.raises(InvalidParameterError, match="warm_start must be true or false. Got 'no'"):
        get_learner("logreg", warm_start="no")
    with pytest.raises(InvalidParameterError, match=r"max_epochs must be an integer in \[1"):
        get_learner("mlp", max_epochs=2.5)
    assert type(get_learner("mlp", max_epochs=3.0).max_epochs) is int  # TOML 3.0: range() needs int
    hgb = "sklearn:sklearn.ensemble.HistGradientBoostingClassifier"
    with pytest.raises(InvalidParameterError, match="'max_iter' parameter of HistGradient.*Got 0"):
        get_learner(hgb, max_iter=0)
    with pytest.raises(InvalidParameterError, match=r"'depth' is not one of .*'s: .*max_depth"):
        get_learner(hgb, depth=3)
    pipe = make_pipeline(StandardScaler(), LogisticRegression())
    with pytest.raises(InvalidParameterError, match="'C' parameter of LogisticRegression"):
        get_learner(pipe, logisticregression__C=-1.0)  # nested estimators are checked too
    with pytest.raises(InvalidParameterError, match="'logisticregression__D' is not one of"):
        get_learner(pipe, logisticregression__D=1)
    assert get_learner(pipe, logisticregression__C=0.1).estimator.steps[1][1].C == 0.1
    assert pipe.steps[1][1].C == 1.0


def test_get_learner_accepts_an_estimator_class():
    learner = get_learner(RandomForestClassifier, n_estimators=3)
    assert isinstance(learner, SklearnLearner) and learner.estimator.n_estimators == 3
    # A regressor is a learner of a continuous target; neither kind is refused.
    assert isinstance(get_learner(LinearRegression), SklearnRegressorLearner)
    with pytest.raises(InvalidParameterError, match="no predict_proba"):
        get_learner(KMeans)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("sklearn:os.system", r"estimator class. Got 'sklearn:os.system' \(a function\)"),
        ("sklearn:os.path", r"estimator class. Got 'sklearn:os.path' \(a module\)"),
        ("sklearn:os", "must be 'sklearn:<module>.<Class>'"),
        ("sklearn:..os.system", "must be 'sklearn:<module>.<Class>'"),
        ("sklearn:collections.OrderedDict", "subclass of sklearn.base.BaseEstimator"),
        ("sklearn:sklearn.cluster.KMeans", r"predict_proba.*\(no predict_proba\)"),
        ("sklearn:sklearn.base.BaseEstimator", r"\(no fit or predict_proba\)"),
        ("sklearn:sklearn.linear_model.NoSuchClass", "importable estimator class"),
        ("sklearn:sklearn.pipeline.Pipeline", "buildable from the parameters given.*steps"),
    ],
)
def test_sklearn_spec_accepts_only_estimator_classes(spec, match, monkeypatch):
    # os and collections stand for plug-in packages: the class checks still apply there.
    monkeypatch.setenv("ASSAY_LEARNER_PACKAGES", "os, collections")
    with pytest.raises(InvalidParameterError, match=match) as info:
        get_learner(spec)
    assert "\n" not in str(info.value)


def test_sklearn_spec_calls_nothing_before_the_checks(monkeypatch):
    calls = []

    class NotAnEstimator:  # has the methods, but is no BaseEstimator
        def __init__(self, **kwargs):
            calls.append(("init", kwargs))

        def fit(self, X, y):  # pragma: no cover - must never run
            calls.append("fit")

        def predict_proba(self, X):  # pragma: no cover
            calls.append("predict_proba")

    def payload(**kwargs):  # pragma: no cover - must never run
        calls.append(("payload", kwargs))

    module = types.ModuleType("assay_test_fake_estimators")
    module.NotAnEstimator, module.payload = NotAnEstimator, payload
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setenv("ASSAY_LEARNER_PACKAGES", module.__name__)
    for name in ("NotAnEstimator", "payload"):
        with pytest.raises(InvalidParameterError, match="learner must name"):
            get_learner(f"sklearn:{module.__name__}.{name}", command="rm -rf /")
    assert calls == []


def test_sklearn_spec_checks_the_built_pipeline_too():
    # The class has predict_proba (available_if), this instance's last step does not;
    # a pipeline ending in a regressor is a regressor.
    with pytest.raises(InvalidParameterError, match="no predict_proba with these parameters"):
        get_learner(make_pipeline(StandardScaler(), PCA()))
    assert isinstance(get_learner(make_pipeline(StandardScaler(), LinearRegression())),
                      SklearnRegressorLearner)
    assert isinstance(get_learner(make_pipeline(StandardScaler(), LogisticRegression())),
                      SklearnLearner)


# --------------------------------------------------------------------------- without torch


def test_torch_learner_without_torch_names_the_extra(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "torch" else real(name, *a))
    with pytest.raises(InvalidParameterError, match=r"pip install 'assay\[torch\]'"):
        get_learner("mlp")
    assert get_learner("logreg").name == "logreg"


@pytest.mark.slow
def test_logreg_audit_runs_where_torch_cannot_be_imported(tmp_path):
    """A base install (no torch): the built-in logistic regression and a whole audit run."""
    import subprocess
    import sys

    code = (
        "import importlib.abc, sys\n"
        "class NoTorch(importlib.abc.MetaPathFinder):\n"  # `import torch` raises ImportError
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch': raise ImportError('no torch here')\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        "from assay.audit import AuditConfig, run_audit\n"
        f"cfg = AuditConfig(data='synthetic', n_rows=600, models=8, out={str(tmp_path)!r})\n"
        "result = run_audit(cfg, progress=False)\n"
        "assert result.sections['privacy'].status == 'ok', result.sections['privacy']\n"
        "assert 'torch' not in sys.modules\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("ok")
