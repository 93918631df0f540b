"""Sparse one-hot encoding (``Dataset(sparse=...)``) and the learners that take it."""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from assay import DataError, InvalidParameterError
from assay.data import Dataset, load
from assay.data.synthetic import make_synthetic
from assay.engine import PopulationPlan
from assay.learners import LogisticRegressionLearner, SklearnLearner
from assay.learners.base import check_features

SYNTH = ("approved", ["sex", "region"])


@pytest.fixture(scope="module")
def adult(data_home):
    """Adult in both layouts, from one load each."""
    return (load("adult", data_home=data_home),
            load("adult", data_home=data_home, sparse=True))


def _same(dense: Dataset, sparse: Dataset) -> None:
    assert isinstance(sparse.X, sp.csr_matrix) and sparse.is_sparse and not dense.is_sparse
    assert sparse.X.dtype == np.float32 and sparse.X.has_sorted_indices
    assert sparse.feature_names == dense.feature_names
    np.testing.assert_array_equal(sparse.X.toarray(), dense.X)
    assert sparse.fingerprint == dense.fingerprint


# ------------------------------------------------------------------------- encoding


def test_sparse_X_equals_the_dense_one_on_adult(adult):
    dense, sparse = adult
    _same(dense, sparse)
    assert sparse.X.indices.dtype == np.int32
    # One stored entry per row and categorical column, numerics where not 0.
    n_cat = len(sparse.encoding["categorical"])
    assert sparse.X.nnz == np.count_nonzero(dense.X) <= sparse.n_rows * (
        n_cat + len(sparse.encoding["numeric"]))
    note = next(n for n in sparse.notes if "sparse CSR" in n)
    assert "sparse=True" in note and f"{sparse.X.nnz:,} stored entries" in note
    assert not any("sparse" in n for n in dense.notes)


def test_sparse_X_equals_the_dense_one_on_synthetic_with_caps_missing_and_splits():
    frame = make_synthetic(3000, random_state=1)
    frame.loc[::7, "income"] = np.nan
    frame.loc[::11, "branch"] = None
    for options in ({}, {"max_categories": 8}, {"min_frequency": 3}):
        dense = Dataset.from_frame(frame, *SYNTH, missing="impute", **options)
        sparse = Dataset.from_frame(frame, *SYNTH, missing="impute", sparse=True, **options)
        _same(dense, sparse)
        # Refitted on train rows: test rows hold levels never seen there (all-zero blocks).
        (d_train, d_test), (s_train, s_test) = (dense.train_test_split(random_state=3),
                                                sparse.train_test_split(random_state=3))
        _same(d_train, s_train)
        _same(d_test, s_test)
        _same(dense.subset(np.arange(0, 3000, 5)), sparse.subset(np.arange(0, 3000, 5)))
    # The shared fingerprint still tells data apart.
    other = Dataset.from_frame(make_synthetic(3000, random_state=2), *SYNTH, sparse=True)
    assert other.fingerprint != sparse.fingerprint


def test_unseen_levels_store_no_entry():
    frame = make_synthetic(2000, random_state=4)
    dense = Dataset.from_frame(frame, *SYNTH)
    sparse = Dataset.from_frame(frame, *SYNTH, sparse=True)
    refit_d, refit_s = dense.refit(np.arange(200)), sparse.refit(np.arange(200))
    _same(refit_d, refit_s)
    blocks = len(refit_s.encoding["categorical"])
    one_hot = np.diff(refit_s.X[:, len(refit_s.encoding["numeric"]):].indptr)
    # Every fit row has one entry per categorical column; rows past them carry levels
    # the encoder never saw, which store nothing.
    assert (one_hot[:200] == blocks).all() and one_hot[200:].min() < blocks


def test_sparse_build_never_makes_the_dense_matrix():
    """200,000 rows x 200,000 one-hot columns: 149 GiB dense, a few MiB as CSR."""
    n = 200_000
    frame = pd.DataFrame({"code": np.arange(n).astype(str), "y": np.arange(n) % 2})
    with pytest.raises(DataError, match=r"--sparse true"):
        Dataset.from_frame(frame, "y", sparse=False)  # over budget; the message names the fix
    tracemalloc.start()
    try:
        ds = Dataset.from_frame(frame, "y")  # the default, "auto", goes sparse
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert ds.X.shape == (n, n) and ds.X.nnz == n
    assert peak < 256 * 2**20  # the dense matrix would be 149 GiB
    codes = ds.X.indices[ds.X.indptr[:-1]]
    np.testing.assert_array_equal(np.asarray(ds.feature_names, dtype=object)[codes],
                                  "code=" + frame["code"].to_numpy(dtype=object))


def test_auto_goes_sparse_exactly_when_dense_is_over_budget_and_csr_fits():
    frame = make_synthetic(3000, random_state=0)
    dense = Dataset.from_frame(frame, *SYNTH)
    dense_gib = dense.X.nbytes / 2**30
    roomy = Dataset.from_frame(frame, *SYNTH, sparse="auto")
    assert not roomy.is_sparse and not any("sparse" in n for n in roomy.notes)
    tight = Dataset.from_frame(frame, *SYNTH, sparse="auto", memory_budget=dense_gib / 3)
    assert tight.is_sparse and tight.fingerprint == dense.fingerprint
    assert any("would exceed memory_budget" in n for n in tight.notes)
    # "auto" is the default: a table too wide for the budget dense is not refused.
    default = Dataset.from_frame(frame, *SYNTH, memory_budget=dense_gib / 3)
    assert default.is_sparse and default.fingerprint == dense.fingerprint
    with pytest.raises(DataError, match="memory_budget must hold"):
        Dataset.from_frame(frame, *SYNTH, sparse=False, memory_budget=dense_gib / 3)
    # The budget counts the CSR size when sparse: too small for it is a one-line error.
    for sparse in (True, "auto"):
        with pytest.raises(DataError) as info:
            Dataset.from_frame(frame, *SYNTH, sparse=sparse, memory_budget=1e-5)
        message = str(info.value)
        assert "\n" not in message and message.startswith("memory_budget must hold")
    assert "--sparse true" not in message  # "auto" over budget either way: not a fix
    with pytest.raises(DataError, match="as a float32 CSR matrix"):
        Dataset.from_frame(frame, *SYNTH, sparse=True, memory_budget=1e-5)


@pytest.mark.parametrize("bad", ["yes", 1, None, "true"])
def test_sparse_option_is_validated(bad):
    with pytest.raises(InvalidParameterError, match="sparse must be true, false or 'auto'"):
        Dataset.from_frame(make_synthetic(200), *SYNTH, sparse=bad)


def test_dense_X_densifies_within_the_budget_or_names_the_fix():
    frame = make_synthetic(3000, random_state=0)
    dense = Dataset.from_frame(frame, *SYNTH)
    sparse = Dataset.from_frame(frame, *SYNTH, sparse=True)
    assert dense.dense_X() is dense.X
    np.testing.assert_array_equal(sparse.dense_X(), dense.X)
    small = Dataset.from_frame(frame, *SYNTH, sparse=True,
                               memory_budget=dense.X.nbytes / 2**30 / 2)
    with pytest.raises(DataError) as info:
        small.dense_X("the fairness section")
    message = str(info.value)
    assert "\n" not in message and "the fairness section" in message
    assert f"3,000 rows x {dense.n_features:,} features" in message
    assert "--max-categories" in message


def test_check_features_keeps_csr_and_refuses_non_finite():
    X = sp.random(50, 20, density=0.1, format="csr", dtype=np.float64, random_state=0)
    checked = check_features(X)
    assert sp.issparse(checked) and checked.dtype == np.float32 and checked.format == "csr"
    np.testing.assert_allclose(checked.toarray(), X.toarray(), rtol=1e-6)
    X.data[3] = np.nan
    with pytest.raises(DataError, match="finite"):
        check_features(X)
    dense = check_features(np.arange(6.0).reshape(2, 3))
    assert dense.dtype == np.float32 and dense.flags.c_contiguous


# ------------------------------------------------------------------------- learners


def _no_densify(monkeypatch, n_rows: int):
    """Make densifying any scipy matrix with `n_rows` rows (X, not a D x D Gram
    matrix) fail the test."""
    for cls in (sp.csr_matrix, sp.csc_matrix, sp.coo_matrix):
        for name in ("toarray", "todense"):
            original = getattr(cls, name)

            def guarded(self, *args, _original=original, **kwargs):
                if max(self.shape) >= n_rows:
                    raise AssertionError(f"a {self.shape} sparse matrix was densified")
                return _original(self, *args, **kwargs)

            monkeypatch.setattr(cls, name, guarded)


def test_logreg_sparse_fit_matches_the_dense_fit_on_adult(adult, monkeypatch):
    dense, sparse = adult
    rows = np.random.default_rng(0).choice(dense.n_rows, 4000, replace=False)
    d, s = dense.subset(rows), sparse.subset(rows)
    plan = PopulationPlan.balanced(4000, 8, random_state=0)
    learner = LogisticRegressionLearner()
    expected = learner.fit_predict(d.X, d.y, plan.member, plan.seeds, 2)
    _no_densify(monkeypatch, s.n_rows)
    got = learner.fit_predict(s.X, s.y, plan.member, plan.seeds, 2)
    assert got.shape == expected.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-4)
    # Not a trivial agreement: the models differ from one another.
    assert np.abs(got[0] - got[1]).max() > 1e-2


@pytest.mark.parametrize("route", ["dense row blocks", "sparse product"])
def test_logreg_sparse_hessian_equals_the_dense_one(adult, monkeypatch, route):
    """The pooled model's inverse Hessian (L-BFGS's preconditioner), both routes."""
    import assay.learners.linear as linear

    if route == "sparse product":
        monkeypatch.setattr(linear, "_DENSE_GRAM_RATIO", 0)
    dense, sparse = adult
    rows = np.random.default_rng(2).choice(dense.n_rows, 3000, replace=False)
    d, s = dense.subset(rows), sparse.subset(rows)
    member = PopulationPlan.balanced(3000, 2, random_state=0).member
    theta = np.random.default_rng(3).normal(scale=0.3, size=d.n_features + 1)
    theta = theta.astype(np.float32)
    expected = linear._Problem(d.X, d.y, member, 2, 1.0).inverse_hessian(theta)
    _no_densify(monkeypatch, s.n_rows)
    got = linear._Problem(s.X, s.y, member, 2, 1.0).inverse_hessian(theta)
    np.testing.assert_allclose(got, expected, atol=1e-5 * np.abs(expected).max())


def test_logreg_sparse_multiclass_matches_dense(adult, monkeypatch):
    dense, _ = adult
    rows = np.random.default_rng(1).choice(dense.n_rows, 3000, replace=False)
    frame = dense.frame.iloc[rows].drop(columns=["education"])
    frame["target"] = pd.cut(dense.frame["age"].iloc[rows], [0, 30, 45, 200],
                             labels=["young", "mid", "old"]).astype(str).to_numpy()
    frame = frame.drop(columns=["age"])
    d = Dataset.from_frame(frame, "target", ["sex"])
    s = Dataset.from_frame(frame, "target", ["sex"], sparse=True)
    plan = PopulationPlan.balanced(3000, 4, random_state=0)
    # Tighter than the default tol: both paths then sit at the one optimum.
    learner = LogisticRegressionLearner(tol=1e-6)
    expected = learner.fit_predict(d.X, d.y, plan.member, plan.seeds, 3)
    _no_densify(monkeypatch, s.n_rows)
    got = learner.fit_predict(s.X, s.y, plan.member, plan.seeds, 3)
    np.testing.assert_allclose(got, expected, atol=5e-4)
    np.testing.assert_allclose(got.sum(axis=2), 1.0, atol=1e-5)


def test_logreg_fits_a_wide_sparse_table_a_small_budget_could_not_hold_dense():
    frame = make_synthetic(20_000, random_state=0)
    ds = Dataset.from_frame(frame, *SYNTH, sparse="auto", memory_budget=0.05)
    dense_bytes = ds.n_rows * ds.n_features * 4
    assert ds.is_sparse and dense_bytes > 0.05 * 2**30
    plan = PopulationPlan.balanced(ds.n_rows, 4, random_state=0)
    tracemalloc.start()
    try:
        probs = LogisticRegressionLearner().fit_predict(ds.X, ds.y, plan.member, plan.seeds, 2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < dense_bytes / 4
    accuracy = (probs.argmax(axis=2) == ds.y).mean(axis=1)
    assert (accuracy > 0.7).all()
    # Members are fitted better than non-members (the models learnt their rows).
    member_loss = -np.log(probs[0][plan.member[0], ds.y[plan.member[0]]]).mean()
    other_loss = -np.log(probs[0][~plan.member[0], ds.y[~plan.member[0]]]).mean()
    assert member_loss < other_loss


def test_sklearn_learner_passes_csr_through_or_refuses_before_any_fit(monkeypatch):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    frame = make_synthetic(1500, random_state=0)
    d = Dataset.from_frame(frame, *SYNTH)
    s = Dataset.from_frame(frame, *SYNTH, sparse=True)
    plan = PopulationPlan.balanced(d.n_rows, 2, random_state=0)
    seen = []

    class Recording(LogisticRegression):
        def fit(self, X, y):
            seen.append(sp.issparse(X))
            return super().fit(X, y)

    linear = SklearnLearner(Recording(max_iter=1000))
    assert linear.accepts_sparse()
    # scikit-learn's own solver tolerance on each layout: close, not identical.
    np.testing.assert_allclose(linear.fit_predict(s.X, s.y, plan.member, plan.seeds, 2),
                               linear.fit_predict(d.X, d.y, plan.member, plan.seeds, 2),
                               atol=2e-3)
    assert seen == [True, True, False, False]  # CSR went through as CSR
    trees = SklearnLearner(HistGradientBoostingClassifier())
    assert not trees.accepts_sparse()

    def no_fit(*args, **kwargs):
        raise AssertionError("fit ran before the input check")

    monkeypatch.setattr(HistGradientBoostingClassifier, "fit", no_fit)
    with pytest.raises(InvalidParameterError) as info:
        trees.fit_predict(s.X, s.y, plan.member, plan.seeds, 2)
    message = str(info.value)
    assert "\n" not in message and "HistGradientBoostingClassifier" in message
    assert "--sparse false" in message and "--max-categories" in message


def test_torch_learners_refuse_sparse_before_training():
    pytest.importorskip("torch")
    from assay.learners import get_learner

    s = Dataset.from_frame(make_synthetic(300, random_state=0), *SYNTH, sparse=True)
    plan = PopulationPlan.balanced(s.n_rows, 2, random_state=0)
    for name, advice in (("mlp", "'logreg'"), ("dp-logreg", None)):
        learner = get_learner(name)
        with pytest.raises(InvalidParameterError) as info:
            learner.fit_predict(s.X, s.y, plan.member, plan.seeds, 2)
        message = str(info.value)
        assert "\n" not in message and message.startswith("X must be a dense array")
        assert (f"or use the {advice} learner" in message) if advice else "or use" not in message


# ------------------------------------------------------------------------- wiring


def test_cli_sparse_is_checked_before_loading(tmp_path, capsys):
    from assay.cli import main

    missing = tmp_path / "absent.csv"  # never read: the option fails first
    assert main(["mia", str(missing), "--target", "y", "--sparse", "maybe"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--sparse must be one of" in err


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--max-categories", "0", "--max-categories must be an integer in [1, inf)"),
    ("--min-frequency", "1.5", "--min-frequency must be an integer >= 1 (rows) or a float"),
    ("--memory-budget", "-1", "--memory-budget must be"),
])
def test_cli_encoding_errors_name_the_flag(tmp_path, capsys, flag, value, message):
    from assay.cli import main

    missing = tmp_path / "absent.csv"
    assert main(["mia", str(missing), "--target", "y", flag, value]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


@pytest.mark.slow
def test_audit_sparse_flag_overrides_the_config(tmp_path, capsys):
    from assay.cli import main

    table = tmp_path / "loans.csv"
    make_synthetic(600, random_state=0).to_csv(table, index=False)
    argv = ["audit", str(table), "--target", "approved", "--protected", "sex", "--models",
            "6", "--permutations", "0", "--quiet", "--out", str(tmp_path / "out")]
    assert main([*argv, "--sparse", "maybe"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "sparse must be true, false or 'auto'" in err
    assert not (tmp_path / "out" / "result.json").exists()
    config = tmp_path / "audit.toml"
    config.write_text("sparse = false\n")
    assert main([*argv, "--config", str(config), "--sparse", "TRUE"]) == 0
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["config"]["sparse"] is True


def test_audit_config_sparse_reaches_the_dataset(tmp_path):
    from assay.audit import AuditConfig, load_dataset

    with pytest.raises(InvalidParameterError, match="sparse must be true, false or"):
        AuditConfig(data="synthetic", sparse="yes")
    table = tmp_path / "loans.csv"
    make_synthetic(800, random_state=0).to_csv(table, index=False)
    config = AuditConfig.from_mapping({"data": str(table), "target": "approved",
                                       "protected": ["sex"], "sparse": "auto",
                                       "memory_budget": 1e-4})
    assert config.encoding_limits()["sparse"] == "auto"
    assert json.loads(json.dumps(config.to_dict()))["sparse"] == "auto"
    dataset = load_dataset(config)
    assert dataset.is_sparse
    assert not load_dataset(AuditConfig(data=str(table), target="approved",
                                        protected=("sex",), sparse=False)).is_sparse


# ------------------------------------------------------------------------- end to end

def test_mia_on_sparse_features_equals_the_dense_run(tmp_path):
    from assay.cli import main
    from assay.engine import fit_population
    from assay.groups import GroupIndex
    from assay.privacy.membership.mia import run_mia

    frame = make_synthetic(2000, random_state=5)
    runs = {}
    for sparse in (False, True):
        ds = Dataset.from_frame(frame, *SYNTH, sparse=sparse)
        plan = PopulationPlan.balanced(ds.n_rows, 8, random_state=0)
        population = fit_population(ds.X, ds.y, LogisticRegressionLearner(), plan,
                                    n_classes=2, data_fingerprint=ds.fingerprint,
                                    progress=False)
        runs[sparse] = (population, run_mia(population, attacks=["loss", "rmia"],
                                            groups=GroupIndex.from_frame(ds.groups),
                                            row_ids=ds.row_ids, n_permutations=0))
    np.testing.assert_allclose(runs[True][0].probs, runs[False][0].probs, atol=1e-4)
    for name in ("loss", "rmia"):
        assert runs[True][1].attacks[name].auc.value == pytest.approx(
            runs[False][1].attacks[name].auc.value, abs=1e-3)
    table = tmp_path / "loans.csv"
    frame.to_csv(table, index=False)
    out = tmp_path / "mia.json"
    assert main(["mia", str(table), "--target", "approved", "--protected", "sex,region",
                 "--models", "6", "--permutations", "0", "--no-progress", "--attacks",
                 "loss", "--sparse", "true", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["data"]["fingerprint"] == \
        Dataset.from_frame(frame, *SYNTH).fingerprint


@pytest.mark.slow
def test_audit_privacy_section_honours_sparse_and_others_densify_or_say_why(tmp_path):
    from assay.audit import AuditConfig, run_audit

    table = tmp_path / "loans.csv"
    make_synthetic(1000, random_state=1).to_csv(table, index=False)
    base = {"data": str(table), "target": "approved", "protected": ["sex", "region"],
            "models": 6, "groups": {"n_permutations": 0}}
    results = {}
    for sparse, budget in ((False, None), (True, None), (True, 0.0005)):
        config = AuditConfig.from_mapping({**base, "sparse": sparse,
                                           "out": str(tmp_path / f"{sparse}-{budget}"),
                                           **({"memory_budget": budget} if budget else {})})
        results[sparse, budget] = run_audit(config, progress=False).sections
    dense, sparse, tight = (results[k] for k in ((False, None), (True, None), (True, 0.0005)))
    for sections in (dense, sparse, tight):
        assert sections["privacy"].status == "ok"
    figures = {layout: {k: m.value for k, m in sections["privacy"].metrics.items()}
               for layout, sections in (("dense", dense), ("sparse", sparse))}
    assert figures["dense"] and set(figures["sparse"]) == set(figures["dense"])
    for key, value in figures["dense"].items():
        assert figures["sparse"][key] == pytest.approx(value, abs=1e-3, nan_ok=True), key
    assert sparse["fairness"].status == "ok"  # densified within the budget
    # Over the budget, the audited model's rates and gaps (no features needed) stay; the
    # mitigation front, which needs dense features, is not built and the section says why.
    assert tight["fairness"].status == "ok"
    payload = tight["fairness"].data
    assert payload.front is None and payload.report.gaps
    assert payload.no_front.startswith("memory_budget must hold the dense features")
    assert any(line.startswith("No mitigation front was built")
               for line in tight["fairness"].summary)
    html = (tmp_path / "True-0.0005" / "report.html").read_text()
    assert 'id="fair-no-front"' in html


@pytest.mark.slow
def test_the_400k_synthetic_table_audits_with_default_options(tmp_path, capsys):
    """96,030 one-hot columns, 143 GiB dense: the default layout ("auto") stores it sparse
    instead of refusing it, and the membership attacks run on it."""
    from assay.cli import main

    path = tmp_path / "s400.parquet"
    make_synthetic(400_000, random_state=0).to_parquet(path)
    out = tmp_path / "mia.json"
    code = main(["mia", str(path), "--target", "approved", "--protected", "sex,region",
                 "--models", "8", "--attacks", "loss,rmia", "--permutations", "0",
                 "--json", str(out), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    payload = json.loads(out.read_text())
    assert payload["data"]["n_rows"] == 400_000
    aucs = {name: a["auc"]["value"] for name, a in payload["privacy"]["mia"]["attacks"].items()}
    assert set(aucs) == {"loss", "rmia"} and aucs["rmia"] > 0.52

