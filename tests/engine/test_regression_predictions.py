"""A regression model under audit as a predictions file: the same container as a
classifier's (row_id, in_train) with a ``prediction`` column, written and read back
exactly, every fault refused in one line."""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge

from assay._validation import AssayError, DataError, InvalidParameterError
from assay.data import Dataset
from assay.engine.predictions import (
    RegressionTarget,
    read_regression_predictions,
    reference_plan,
    regression_predictions_from_estimator,
    write_regression_predictions,
)

N_ROWS = 90


@pytest.fixture(scope="module")
def prices():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "uid": [f"u{i:03d}" for i in range(N_ROWS)],
        "x": rng.normal(size=N_ROWS),
        "sex": rng.choice(["F", "M"], N_ROWS),
        "price": rng.normal(100.0, 15.0, N_ROWS),
    })
    return Dataset.from_frame(frame, "price", ["sex"], row_id="uid", task="regression")


def model(dataset, seed=1):
    """A RegressionTarget with values no float format rounds exactly."""
    rng = np.random.default_rng(seed)
    values = rng.normal(100.0, 15.0, dataset.n_rows) / 3.0
    member = rng.random(dataset.n_rows) < 0.5
    return RegressionTarget(values=values, member=member, source="test")


def frame_of(dataset, target, with_ids=True):
    frame = pd.DataFrame({"prediction": target.values,
                          "in_train": target.member.astype(int)})
    if with_ids:
        frame.insert(0, "row_id", dataset.row_ids)
    return frame


def save(frame, tmp_path, name="pred.csv"):
    path = tmp_path / name
    if name.endswith(".parquet"):
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("name", ["pred.csv", "pred.csv.gz", "pred.parquet"])
def test_a_written_file_reads_back_exactly(prices, tmp_path, name):
    target = model(prices)
    path = write_regression_predictions(tmp_path / name, target, prices.row_ids)
    back = read_regression_predictions(path, prices)
    np.testing.assert_array_equal(back.values, target.values)
    np.testing.assert_array_equal(back.member, target.member)
    assert back.source == f"predictions file {name}"
    assert back.summary()["n_members"] == int(target.member.sum())


def test_rows_are_matched_by_id_whatever_their_order_or_by_order_without_ids(prices,
                                                                            tmp_path):
    target = model(prices)
    shuffled = frame_of(prices, target).sample(frac=1, random_state=3)
    assert not np.array_equal(shuffled["row_id"], prices.row_ids)
    back = read_regression_predictions(save(shuffled, tmp_path), prices)
    np.testing.assert_allclose(back.values, target.values, rtol=1e-15)
    np.testing.assert_array_equal(back.member, target.member)
    plain = write_regression_predictions(tmp_path / "plain.csv", target)
    assert list(pd.read_csv(plain).columns) == ["prediction", "in_train"]
    np.testing.assert_array_equal(read_regression_predictions(plain, prices).values,
                                  target.values)


def test_another_train_column_name(prices, tmp_path):
    target = model(prices)
    path = write_regression_predictions(tmp_path / "p.csv", target, prices.row_ids,
                                        train_column="fitted_on")
    back = read_regression_predictions(path, prices, train_column="fitted_on")
    np.testing.assert_array_equal(back.member, target.member)


def _poke(column, value, rows=(0,)):
    def make(frame):
        frame = frame.copy()
        frame[column] = frame[column].astype(object)
        for r in rows:
            frame.loc[r, column] = value
        return frame
    return make


BAD = [
    ("no prediction column", lambda f: f.drop(columns="prediction"),
     ["pred.csv", "'prediction'", "'price'"]),
    ("class probabilities instead", lambda f: f.rename(columns={"prediction": "proba_1"}),
     ["'prediction'", "proba_1", "classifier's probabilities"]),
    ("text prediction", _poke("prediction", "high"), ["'prediction'", "'high'", "numbers"]),
    ("NaN prediction", _poke("prediction", np.nan, rows=(0, 5)),
     ["'prediction'", "finite", "2 NaN or infinite values"]),
    ("infinite prediction", _poke("prediction", np.inf), ["'prediction'", "finite", "inf"]),
    ("a row short", lambda f: f.drop(columns="row_id").iloc[:-1],
     [f"({N_ROWS})", f"Got {N_ROWS - 1} rows"]),
    ("unknown id", _poke("row_id", "stranger"), ["'row_id'", "stranger"]),
    ("no train column", lambda f: f.drop(columns="in_train"), ["'in_train'"]),
    ("train column not 0/1", _poke("in_train", 3), ["'in_train'", "0/1"]),
    ("no members", lambda f: f.assign(in_train=0), ["at least one training row"]),
    ("no non-members", lambda f: f.assign(in_train=1), ["non-member"]),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_malformed_files_are_refused_in_one_line(prices, tmp_path, case):
    _, mutate, needles = case
    path = save(mutate(frame_of(prices, model(prices))), tmp_path)
    with pytest.raises(DataError) as info:
        read_regression_predictions(path, prices)
    message = str(info.value)
    assert isinstance(info.value, AssayError) and "\n" not in message
    for needle in needles:
        assert needle in message, (needle, message)


def test_a_missing_or_empty_file_is_one_line(prices, tmp_path):
    for path, needle in ((tmp_path / "nowhere.csv", "does not exist"),
                         (tmp_path / "empty.csv", "is empty")):
        if needle == "is empty":
            path.write_text("")
        with pytest.raises(DataError, match=needle) as info:
            read_regression_predictions(path, prices)
        assert "\n" not in str(info.value)


def test_a_target_built_in_code_is_checked():
    with pytest.raises(DataError, match="finite"):
        RegressionTarget(values=[1.0, np.nan, 2.0], member=[True, False, True], source="x")
    with pytest.raises(InvalidParameterError, match="1-d"):
        RegressionTarget(values=np.ones((3, 2)), member=[True, False, True], source="x")
    with pytest.raises(InvalidParameterError, match="boolean array of length 3"):
        RegressionTarget(values=[1.0, 2.0, 3.0], member=[1, 0, 1], source="x")
    with pytest.raises(DataError, match="non-member"):
        RegressionTarget(values=[1.0, 2.0], member=np.array([True, True]), source="x")
    target = RegressionTarget(values=[1, 2, 3], member=np.array([True, False, True]),
                              source="x")
    assert target.values.dtype == np.float64 and not target.values.flags.writeable


def test_writer_refuses_what_the_reader_would_not_read(prices, tmp_path):
    target = model(prices)
    with pytest.raises(InvalidParameterError, match=r"\.csv"):
        write_regression_predictions(tmp_path / "p.xlsx", target)
    with pytest.raises(InvalidParameterError, match="one id per row"):
        write_regression_predictions(tmp_path / "p.csv", target, prices.row_ids[:-1])


def test_a_fitted_regressor_gives_its_predictions(prices):
    rng = np.random.default_rng(4)
    mask = rng.random(prices.n_rows) < 0.5
    estimator = Ridge().fit(prices.X[mask], prices.y[mask])
    target = regression_predictions_from_estimator(estimator, prices, mask, X=prices.X)
    np.testing.assert_allclose(target.values, estimator.predict(prices.X))
    assert target.source == "estimator Ridge"
    with pytest.raises(InvalidParameterError, match="predict"):
        regression_predictions_from_estimator(object(), prices, mask)


def test_reference_models_copy_a_regression_models_training_size(prices):
    target = model(prices)
    plan = reference_plan(target, 6, random_state=0)
    assert (plan.member.sum(axis=1) == target.n_members).all()
