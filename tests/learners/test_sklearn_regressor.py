"""scikit-learn regressors as population learners: K independent fits, (K, N) values."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.ensemble import ExtraTreesRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeRegressor

from assay._validation import InvalidParameterError
from assay.engine import PopulationPlan
from assay.engine.regression import fit_regression_population
from assay.learners import get_learner
from assay.learners.base import RegressionLearner
from assay.learners.sklearn import SklearnLearner, SklearnRegressorLearner


def _table(n=300, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = X @ rng.normal(size=d) + rng.normal(0, 0.5, n) + 10
    return X, y


@pytest.mark.parametrize("spec, params, template", [
    ("sklearn:sklearn.tree.DecisionTreeRegressor", {"max_depth": 4},
     DecisionTreeRegressor(max_depth=4)),
    ("sklearn:sklearn.ensemble.ExtraTreesRegressor", {"n_estimators": 5},
     ExtraTreesRegressor(n_estimators=5)),
])
def test_every_model_equals_sklearn_fitted_on_its_members(spec, params, template):
    X, y = _table()
    plan = PopulationPlan.balanced(X.shape[0], 6, random_state=3)
    learner = get_learner(spec, **params)
    assert isinstance(learner, SklearnRegressorLearner)
    assert isinstance(learner, RegressionLearner)
    values = learner.fit_predict_values(X, y, plan.member, plan.seeds)
    assert values.shape == (6, X.shape[0]) and values.dtype == np.float64
    for k in range(6):
        model = clone(template).set_params(random_state=int(plan.seeds[k]))
        model.fit(X[plan.member[k]], y[plan.member[k]])
        np.testing.assert_array_equal(values[k], model.predict(X))
    config = learner.get_config()
    assert config["name"] == "sklearn-regressor"
    assert config["estimator"].endswith("." + spec.rpartition(".")[2])
    assert "random_state" not in config["params"]


def test_population_joblib_equals_batched_and_a_pipeline_is_a_regressor():
    X, y = _table(n=200)
    plan = PopulationPlan.balanced(X.shape[0], 4, random_state=0)
    learner = get_learner(make_pipeline(StandardScaler(), DecisionTreeRegressor(max_depth=3)))
    assert isinstance(learner, SklearnRegressorLearner)
    batched = fit_regression_population(X, y, learner, plan)
    fanned = fit_regression_population(X, y, learner, plan, backend="joblib")
    np.testing.assert_array_equal(batched.values, fanned.values)
    assert batched.info["learner"]["name"] == "sklearn-regressor"
    assert fanned.info["n_fitted"] == 4


def test_classifiers_stay_classifiers_and_a_regressor_refuses_classes():
    assert isinstance(get_learner("sklearn:sklearn.tree.DecisionTreeClassifier"),
                      SklearnLearner)
    learner = get_learner(DecisionTreeRegressor)
    X, y = _table(n=40)
    plan = PopulationPlan.balanced(40, 2, random_state=0)
    with pytest.raises(InvalidParameterError, match="predicts a number") as info:
        learner.fit_predict(X, (y > 10).astype(np.int64), plan.member, plan.seeds, 2)
    assert "\n" not in str(info.value)
    with pytest.raises(InvalidParameterError, match="classifier with fit and predict_proba"):
        SklearnLearner(DecisionTreeRegressor())
    with pytest.raises(InvalidParameterError, match="regressor with fit and predict"):
        SklearnRegressorLearner(clone(get_learner(
            "sklearn:sklearn.tree.DecisionTreeClassifier").estimator))


def test_the_allow_list_and_parameter_checks_hold_for_regressors(monkeypatch):
    monkeypatch.delenv("ASSAY_LEARNER_PACKAGES", raising=False)
    with pytest.raises(InvalidParameterError, match="ASSAY_LEARNER_PACKAGES"):
        get_learner("sklearn:xgboost.XGBRegressor")
    with pytest.raises(InvalidParameterError, match="max_depth"):
        get_learner("sklearn:sklearn.tree.DecisionTreeRegressor", max_depth=-1)
    with pytest.raises(InvalidParameterError, match="not among|is not one of"):
        get_learner("sklearn:sklearn.tree.DecisionTreeRegressor", C=1.0)


def test_sparse_input_is_refused_before_any_fit_where_the_tags_say_so():
    from scipy import sparse

    X, y = _table(n=40)
    plan = PopulationPlan.balanced(40, 2, random_state=0)
    tree = get_learner("sklearn:sklearn.tree.DecisionTreeRegressor")
    values = tree.fit_predict_values(sparse.csr_matrix(X), y, plan.member, plan.seeds)
    assert values.shape == (2, 40) and np.isfinite(values).all()  # taken as is
    hist = get_learner("sklearn:sklearn.ensemble.HistGradientBoostingRegressor")
    with pytest.raises(InvalidParameterError, match="dense"):
        hist.fit_predict_values(sparse.csr_matrix(X), y, plan.member, plan.seeds)
