"""Model files from other people: an exact allow-list of types, nothing run, one-line errors."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
import skops.io as sio
from sklearn.ensemble import (
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestRegressor,
)
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.neural_network import MLPRegressor
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from assay._validation import InvalidParameterError
from assay.cli import main
from assay.data import load
from assay.fairness.export import export_model, load_model
from assay.learners.model_file import allowed_types, load_model_file


@pytest.fixture(scope="module")
def german(data_home):
    return load("german", data_home=data_home)


def _strip_ids(node):
    """A node tree without memo ids, so it can be grafted into another file."""
    if isinstance(node, dict):
        for key in ("protocol", "_skops_version", "__id__"):
            node.pop(key, None)
        for value in node.values():
            _strip_ids(value)
    elif isinstance(node, list):
        for value in node:
            _strip_ids(value)


def _evil_file(path, marker, X, y, module="numpy.testing._private.utils", name="runstring",
               base=None):
    """A fitted logistic regression (or `base`, fitted) whose attribute is rebuilt by
    calling `module.name` with code that writes `marker` (how a hostile file would be made
    by hand)."""
    code = f"open({str(marker)!r}, 'w').write('ran')"
    args = (code, {}) if name == "runstring" else (code,)
    with zipfile.ZipFile(io.BytesIO(sio.dumps(args))) as z:
        args_state = json.loads(z.read("schema.json"))
    _strip_ids(args_state)
    model = LogisticRegression() if base is None else base
    source = zipfile.ZipFile(io.BytesIO(sio.dumps(model.fit(X, y))))
    schema = json.loads(source.read("schema.json"))
    attrs = schema["content"]
    attrs["content"]["note"] = {"__class__": name, "__module__": module,
                                "__loader__": "ConstructorFromReduceNode",
                                "content": args_state}
    key_types = attrs["key_types"]["content"]
    key_types.append(dict(key_types[0]))
    with zipfile.ZipFile(path, "w") as out:
        for item in source.namelist():
            out.writestr(item, json.dumps(schema) if item == "schema.json"
                         else source.read(item))
    return path


def _one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    return lines[0]


def _release(data_home, model):
    return main(["release", "german", "--data-home", str(data_home), "--model", str(model)])


@pytest.mark.parametrize("module,name", [("numpy.testing._private.utils", "runstring"),
                                         ("builtins", "exec")])
def test_an_exec_ing_file_runs_nothing_and_exits_2(german, data_home, tmp_path, capsys,
                                                   module, name):
    marker = tmp_path / "ran"
    X, y = np.asarray(german.X[:, :3], dtype=float), german.y
    evil = _evil_file(tmp_path / "evil.skops", marker, X, y, module, name)
    # The file is a working attack: skops runs it when told to trust what it names.
    sio.load(evil, trusted=sio.get_untrusted_types(file=evil))
    assert marker.read_text() == "ran"
    marker.unlink()

    assert _release(data_home, evil) == 2
    line = _one_error_line(capsys)
    assert f"{module}.{name}" in line and "--model" in line
    with pytest.raises(InvalidParameterError, match=name):
        load_model(evil)
    # A prefix in trusted= matches nothing: names are compared whole.
    with pytest.raises(InvalidParameterError, match=name):
        load_model(evil, trusted=["numpy.", "builtins."])
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"\x00" * 10, b"PK\x03\x04 not a zip",
                                     np.random.default_rng(0).bytes(4096), "zip-no-schema",
                                     "zip-bad-json", "truncated"])
def test_files_that_are_not_skops_are_one_line(data_home, german, tmp_path, capsys, content):
    path = tmp_path / "model.skops"
    if content == "zip-no-schema":
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("other.json", "{}")
    elif content == "zip-bad-json":
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("schema.json", "{not json")
    elif content == "truncated":
        data = sio.dumps(LogisticRegression().fit(german.X, german.y))
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(content)
    assert _release(data_home, path) == 2
    assert "--model must be" in _one_error_line(capsys)


def test_missing_file_is_one_line(data_home, tmp_path, capsys):
    assert _release(data_home, tmp_path / "absent.skops") == 2
    assert "existing .skops file" in _one_error_line(capsys)


def test_a_model_for_another_table_or_without_probabilities_is_one_line(
        german, data_home, tmp_path, capsys):
    narrow = tmp_path / "narrow.skops"
    sio.dump(LogisticRegression().fit(german.X[:, :5], german.y), narrow)
    assert _release(data_home, narrow) == 2
    line = _one_error_line(capsys)
    assert f"{german.X.shape[1]} columns" in line and "fitted on 5" in line
    hard = tmp_path / "svc.skops"
    sio.dump(LinearSVC().fit(german.X, german.y), hard)
    assert _release(data_home, hard) == 2
    assert "predict_proba" in _one_error_line(capsys)


def test_plain_scikit_learn_models_still_run(german, data_home, tmp_path, capsys):
    for name, model in (("logreg", LogisticRegression(max_iter=500)),
                        ("tree", DecisionTreeClassifier(random_state=0))):
        path = tmp_path / f"{name}.skops"
        sio.dump(model.fit(german.X, german.y), path)
        assert _release(data_home, path) in (0, 1, 3)
        assert "Release recommendation for" in capsys.readouterr().out
    back = load_model_file(tmp_path / "tree.skops")
    assert np.array_equal(back.predict(german.X), model.predict(german.X))


def test_trusted_is_an_exact_list(german, tmp_path):
    path = tmp_path / "tree.skops"
    sio.dump(DecisionTreeClassifier(max_depth=3).fit(german.X, german.y), path)
    with pytest.raises(InvalidParameterError, match="sklearn.tree._tree.Tree"):
        load_model(path, trusted=[])
    assert load_model(path, trusted=["sklearn.tree._tree.Tree"]).get_depth() <= 3


def test_node_indices_out_of_range_are_refused(german, tmp_path):
    X, y = np.asarray(german.X, dtype=float), german.y
    tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)
    tree.tree_.children_left[0] = 10**6  # a crafted file: predict would read past the end
    sio.dump(tree, tmp_path / "tree.skops")
    with pytest.raises(InvalidParameterError, match="child indices are out of range"):
        load_model_file(tmp_path / "tree.skops")
    hgb = HistGradientBoostingClassifier(max_iter=3, random_state=0).fit(X, y)
    hgb._predictors[0][0].nodes["feature_idx"][0] = 10**4
    sio.dump(hgb, tmp_path / "hgb.skops")
    with pytest.raises(InvalidParameterError, match="splits on a feature it does not have"):
        load_model_file(tmp_path / "hgb.skops")


def test_exported_fair_models_load(tmp_path):
    from assay.fairness.mitigate import FairBoostClassifier, GroupThresholdClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 4))
    y = (X[:, 0] + rng.normal(size=400) > 0).astype(int)
    A = np.where(rng.random(400) < 0.5, "f", "m")
    base = HistGradientBoostingClassifier(max_iter=5, random_state=0).fit(X, y)
    for model in (FairBoostClassifier(n_estimators=4, random_state=0).fit(
                      X, y, sensitive_features=A),
                  GroupThresholdClassifier(base).fit(X, y, sensitive_features=A)):
        info = export_model(model, tmp_path / f"{type(model).__name__}.skops", onnx=False)
        back = load_model(info["path"])
        kw = {"sensitive_features": A} if hasattr(model, "estimator") else {}
        assert np.array_equal(back.predict_proba(X, **kw), model.predict_proba(X, **kw))
        assert load_model(info["path"], trusted=info["trusted_types"]) is not None


def test_the_allow_list_is_exact_names():
    names = allowed_types()
    assert "sklearn.linear_model._logistic.LogisticRegression" in names
    assert "assay.fairness.mitigate.GroupThresholdClassifier" in names
    assert "numpy.testing._private.utils.runstring" not in names
    assert not any(n.endswith(".") or "*" in n for n in names)
    assert {"builtins.exec", "builtins.eval", "os.system", "subprocess.Popen"}.isdisjoint(names)


# --------------------------------------------------------------------------- regressors


@pytest.fixture(scope="module")
def german_amount(data_home):
    """German credit with its credit amount to predict: the release checks of a regressor."""
    return load("german", target="credit_amount", task="auto", data_home=data_home)


def _release_amount(data_home, model, *extra):
    return main(["release", "german", "--target", "credit_amount", "--data-home",
                 str(data_home), "--model", str(model), *extra])


REGRESSORS = {
    "tree": lambda: DecisionTreeRegressor(max_depth=4, random_state=0),
    "forest": lambda: RandomForestRegressor(n_estimators=3, max_depth=4, random_state=0),
    "ridge": lambda: Ridge(alpha=2.0),
    "ols": lambda: LinearRegression(),
    "hist_boosting": lambda: HistGradientBoostingRegressor(max_iter=5, random_state=0),
    "hist_boosting_poisson": lambda: HistGradientBoostingRegressor(
        loss="poisson", max_iter=5, random_state=0),
    "boosting_huber": lambda: GradientBoostingRegressor(loss="huber", n_estimators=5,
                                                        random_state=0),
    "mlp": lambda: MLPRegressor(hidden_layer_sizes=(8,), max_iter=20, random_state=0),
}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("kind", sorted(REGRESSORS))
def test_regressor_files_load_and_predict_as_saved(german_amount, tmp_path, kind):
    X, y = german_amount.dense_X("test"), german_amount.y
    model = REGRESSORS[kind]().fit(X, y)
    sio.dump(model, tmp_path / "model.skops")
    back = load_model_file(tmp_path / "model.skops")
    assert type(back) is type(model)
    assert np.array_equal(back.predict(X), model.predict(X))


@pytest.mark.parametrize("module,name", [("numpy.testing._private.utils", "runstring"),
                                         ("builtins", "exec")])
def test_a_crafted_regressor_file_runs_nothing(german_amount, data_home, tmp_path, capsys,
                                               module, name):
    marker = tmp_path / "ran"
    X, y = german_amount.dense_X("test")[:, :3], german_amount.y
    evil = _evil_file(tmp_path / "evil.skops", marker, X, y, module, name,
                      base=DecisionTreeRegressor(max_depth=2))
    sio.load(evil, trusted=sio.get_untrusted_types(file=evil))  # a working attack
    assert marker.read_text() == "ran"
    marker.unlink()

    assert _release_amount(data_home, evil) == 2
    line = _one_error_line(capsys)
    assert f"{module}.{name}" in line and "--model" in line
    assert not marker.exists()


def test_a_fully_grown_tree_regressor_fails_the_leaf_check(german_amount, data_home,
                                                           tmp_path, capsys):
    X, y = german_amount.dense_X("test"), german_amount.y
    tree = DecisionTreeRegressor(random_state=0).fit(X, y)  # grown until leaves are pure
    sio.dump(tree, tmp_path / "tree.skops")
    out = tmp_path / "release.json"
    assert _release_amount(data_home, tmp_path / "tree.skops", "--json", str(out)) == 3
    checks = {c["name"]: c for c in json.loads(out.read_text())["release"]["checks"]}
    leaf = checks["leaf_k_anonymity"]
    assert leaf["status"] == "fail"
    sizes = np.bincount(tree.apply(X.astype(np.float32)))[tree.tree_.children_left == -1]
    assert leaf["figures"]["n_single_row_leaves"] == int(np.sum(sizes == 1)) > 0
    assert "REJECT" in capsys.readouterr().out


def test_a_linear_regressor_file_is_checked_by_its_hat_matrix(german_amount, data_home,
                                                              tmp_path):
    from assay.privacy.release.regression import effective_dof

    X, y = german_amount.dense_X("test"), german_amount.y
    sio.dump(Ridge(alpha=5.0).fit(X, y), tmp_path / "ridge.skops")
    out = tmp_path / "release.json"
    assert _release_amount(data_home, tmp_path / "ridge.skops", "--json", str(out)) in (0, 1)
    checks = {c["name"]: c for c in json.loads(out.read_text())["release"]["checks"]}
    figures = checks["residual_dof"]["figures"]
    expected = effective_dof(X, 5.0)
    assert figures["n_parameters"] == pytest.approx(expected, abs=1e-3)
    assert figures["residual_dof"] == pytest.approx(len(y) - expected, abs=1e-3)


def test_the_model_must_suit_the_target(german, german_amount, data_home, tmp_path, capsys):
    classifier = tmp_path / "logreg.skops"
    sio.dump(LogisticRegression(max_iter=200).fit(german.X, german.y), classifier)
    assert _release_amount(data_home, classifier) == 2
    assert "must be a regressor with predict" in _one_error_line(capsys)
    regressor = tmp_path / "tree.skops"
    sio.dump(DecisionTreeRegressor(max_depth=3).fit(german_amount.dense_X("test"),
                                                    german_amount.y), regressor)
    assert _release(data_home, regressor) == 2  # german's class target
    assert "predict_proba" in _one_error_line(capsys)


def test_every_loss_helper_names_a_real_type():
    import importlib

    helpers = sorted(n for n in allowed_types() if n.startswith("sklearn._loss."))
    assert "sklearn._loss.loss.HalfSquaredError" in helpers
    for name in helpers:  # a misspelt name would allow nothing and hide a missing one
        module, _, attr = name.rpartition(".")
        assert isinstance(getattr(importlib.import_module(module), attr), type), name
