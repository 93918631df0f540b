"""Tests for assay.data: Dataset validation, encoding, splitting and the public tables."""

from __future__ import annotations

import json
import re
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay._validation import DataError, InvalidParameterError
from assay.data import (
    DATA_HOME_ENV,
    PUBLIC_TABLES,
    Dataset,
    DataWarning,
    binning,
    data_home,
    load,
    messages,
)
from assay.data import public as pubmod

# Row counts from the datasets README (an independent record of each table).
README_ROWS = {
    "adult": 48_842,
    "compas": 7_214,
    "german": 1_000,
    "bank": 45_211,
    "bank-additional": 41_188,
    "law": 21_791,
    "location30": 5_010,
}


def _frame(n: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "age": rng.integers(18, 80, n),
        "income": rng.normal(50.0, 10.0, n),
        "city": rng.choice(["Oslo", "Rome", "Lima"], n),
        "sex": np.array(["F", "M"] * (n // 2)),
        "race": np.array(["A", "B", "C", "D"] * (n // 4)),
        "y": np.array(["no", "yes"] * (n // 2))[rng.permutation(n)],
    })


def _build(df: pd.DataFrame, **kwargs) -> Dataset:
    kwargs.setdefault("protected", ["sex", "race"])
    return Dataset.from_frame(df, "y", **kwargs)


# ---------------------------------------------------------------- basic contract


def test_arrays_have_documented_types_and_shapes():
    ds = _build(_frame())
    assert ds.X.dtype == np.float32 and ds.X.shape == (40, ds.n_features)
    assert ds.y.dtype == np.int64 and set(ds.y) == {0, 1}
    assert list(ds.classes) == ["no", "yes"] and ds.n_classes == 2
    assert list(ds.groups.columns) == ["sex", "race"] and len(ds.groups) == 40
    assert ds.row_ids.tolist() == list(range(40))
    # numerics first, then one-hot levels sorted as strings
    assert ds.feature_names[:2] == ["age", "income"]
    assert "city=Lima" in ds.feature_names and "sex=F" in ds.feature_names
    assert ds.target == "y" and ds.protected == ["sex", "race"] and len(ds) == 40


def test_y_maps_each_label_to_its_sorted_index():
    df = _frame()
    ds = _build(df)
    assert np.array_equal(ds.classes[ds.y], df["y"].to_numpy())


def test_positive_label_becomes_class_one():
    df = _frame()
    ds = _build(df, positive="no")
    assert list(ds.classes) == ["yes", "no"]
    assert np.array_equal(ds.y == 1, (df["y"] == "no").to_numpy())


def test_positive_label_must_exist():
    with pytest.raises(InvalidParameterError, match="positive label 'maybe' is not a label"):
        _build(_frame(), positive="maybe")


def test_protected_are_features_by_default_and_can_be_left_out():
    with_prot = _build(_frame())
    without = _build(_frame(), protected_as_features=False)
    assert any(n.startswith("sex=") for n in with_prot.feature_names)
    assert not any(n.startswith(("sex=", "race=")) for n in without.feature_names)
    assert without.groups.equals(with_prot.groups)


def test_features_selects_columns_and_keeps_protected():
    ds = _build(_frame(), features=["income"])
    assert ds.feature_names[0] == "income"
    assert not any(n.startswith(("age", "city")) for n in ds.feature_names)
    assert any(n.startswith("sex=") for n in ds.feature_names)


def test_categorical_override_one_hots_a_numeric_column():
    df = _frame()
    df["grade"] = np.tile([1, 2, 3, 4], 10)
    ds = _build(df, categorical=["grade"])
    assert {"grade=1", "grade=4"} <= set(ds.feature_names) and "grade" not in ds.feature_names


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "role", "column"),
    [
        ({"target": "incme"}, "target", "incme"),
        ({"protected": ["sex", "gender"]}, "protected", "gender"),
        ({"features": ["age", "salary"]}, "feature", "salary"),
        ({"row_id": "ident"}, "row id", "ident"),
    ],
)
def test_unknown_column_is_named_with_the_columns(kwargs, role, column):
    kwargs = {"target": "y", "protected": ["sex"], **kwargs}
    target = kwargs.pop("target")
    expected = messages.MSG_COLUMN_NOT_FOUND.format(
        role=role, column=column, columns="age, income, city, sex, race, y")
    with pytest.raises(DataError) as info:
        Dataset.from_frame(_frame(), target, **kwargs)
    assert str(info.value) == expected


def test_one_class_target_is_rejected():
    df = _frame().assign(y="yes")
    with pytest.raises(DataError, match="target column 'y' has a single class 'yes' in all 40"):
        _build(df)


def test_regression_target_is_rejected():
    df = _frame()
    with pytest.raises(DataError, match="target column 'income' looks continuous"):
        Dataset.from_frame(df, "income", ["sex"])


def test_target_with_too_many_labels_is_rejected():
    df = pd.DataFrame({"x": np.arange(300.0), "sex": ["F", "M"] * 150, "y": np.arange(300)})
    with pytest.raises(DataError, match="looks continuous \\(300 distinct values"):
        Dataset.from_frame(df, "y", ["sex"])


def test_float_labels_with_integral_values_are_classes():
    df = _frame().assign(y=lambda d: (d["y"] == "yes").astype(float))
    assert list(_build(df).classes) == [0.0, 1.0]


def test_target_cannot_be_protected():
    with pytest.raises(InvalidParameterError, match="'y' is also listed in protected"):
        Dataset.from_frame(_frame(), "y", ["sex", "y"])


def test_missing_values_error_lists_columns_and_counts():
    df = _frame()
    df.loc[[1, 5], "income"] = np.nan
    df.loc[3, "city"] = None
    with pytest.raises(DataError) as info:
        _build(df)
    message = str(info.value)
    assert message.startswith("missing values (NaN) in income (2), city (1);")
    assert "missing='drop'" in message and "missing='impute'" in message


def test_missing_drop_drops_rows_with_a_warning_and_keeps_ids():
    df = _frame()
    df.loc[[1, 5], "income"] = np.nan
    with pytest.warns(DataWarning, match="2 of 40 rows dropped for missing values in income"):
        ds = _build(df, missing="drop")
    assert ds.n_rows == 38
    assert 1 not in ds.row_ids and 5 not in ds.row_ids and ds.row_ids[1] == 2
    assert any("rows dropped" in note for note in ds.notes)


def test_missing_impute_uses_fit_mean_and_a_missing_level():
    df = _frame()
    df.loc[1, "income"] = np.nan
    df.loc[2, "city"] = None
    df.loc[[3, 4], "race"] = None  # two rows: a group of one would be rare
    ds = _build(df, missing="impute")
    income = ds.feature_names.index("income")
    assert ds.X[1, income] == pytest.approx(0.0, abs=1e-6)  # mean after standardising
    assert ds.X[2, ds.feature_names.index("city=(missing)")] == 1.0
    assert ds.groups.loc[3, "race"] == "(missing)"
    assert any("imputed" in note for note in ds.notes)


def test_missing_target_cannot_be_imputed():
    df = _frame()
    df.loc[0, "y"] = None
    with pytest.raises(DataError, match="target column 'y' has 1 missing values"):
        _build(df, missing="impute")


def test_na_values_marks_strings_as_missing():
    df = _frame()
    df.loc[[0, 1], "city"] = "?"
    with pytest.raises(DataError, match=r"missing values \(NaN\) in city \(2\)"):
        _build(df, na_values=["?"])
    ds = _build(df, na_values=["?"], missing="impute")
    assert "city=?" not in ds.feature_names
    assert any("'?' read as missing in city (2)" in note for note in ds.notes)


def test_constant_feature_is_dropped_with_a_warning():
    df = _frame().assign(country="NO", const=1.0)
    with pytest.warns(DataWarning, match="constant columns dropped from features: country, const"):
        ds = _build(df)
    assert not any(n.startswith(("country", "const")) for n in ds.feature_names)
    assert any("constant columns dropped" in note for note in ds.notes)


def test_no_feature_left_is_an_error():
    df = pd.DataFrame({"c": 1.0, "sex": ["F", "M"] * 5, "y": [0, 1] * 5})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        with pytest.raises(DataError, match="no feature columns are left"):
            Dataset.from_frame(df, "y", ["sex"], protected_as_features=False)


def test_fit_rows_mask_of_wrong_length_is_rejected():
    with pytest.raises(DataError, match="fit_rows mask has 39 entries but the table has 40 rows"):
        _build(_frame(), fit_rows=np.ones(39, dtype=bool))


def test_from_arrays_with_mismatched_lengths_is_rejected():
    X = np.zeros((10, 2))
    with pytest.raises(DataError, match="y has 9 entries but the table has 10 rows"):
        Dataset.from_arrays(X, np.zeros(9))
    with pytest.raises(DataError, match="groups has 8 entries but the table has 10 rows"):
        Dataset.from_arrays(X, [0, 1] * 5, groups=pd.Series(["a", "b"] * 4, name="g"))


def test_from_arrays_builds_a_dataset_with_groups_not_as_features():
    rng = np.random.default_rng(0)
    ds = Dataset.from_arrays(rng.normal(size=(20, 3)), [0, 1] * 10,
                             groups={"sex": ["F", "M"] * 10})
    assert ds.feature_names == ["x0", "x1", "x2"] and ds.protected == ["sex"]


@pytest.mark.parametrize("size", [0, 1])
def test_protected_group_of_size_zero_or_one(size):
    df = _frame()
    if size == 1:
        df.loc[0, "race"] = "E"
        with pytest.raises(DataError, match=r"fewer than 2 rows: 'E' \(1\)"):
            _build(df)
        with pytest.warns(DataWarning, match="merged into '\\(rare\\)'"):
            merged = _build(df, rare_groups="merge")
        assert merged.groups.loc[0, "race"] == "(rare)"
        kept = _build(df, rare_groups="keep")
        assert kept.groups.loc[0, "race"] == "E" and any("small groups kept" in n
                                                         for n in kept.notes)
    else:
        df["sex"] = pd.Categorical(df["sex"], categories=["F", "M", "X"])
        ds = _build(df)
        assert set(ds.groups["sex"]) == {"F", "M"}
        assert any("declared levels with no rows ignored: X" in n for n in ds.notes)


def test_protected_with_a_single_group_is_rejected():
    df = _frame().assign(sex="F")
    with pytest.raises(DataError, match="protected column 'sex' has a single group 'F'"):
        _build(df)


def test_min_group_size_is_configurable():
    with pytest.raises(DataError, match="fewer than 11 rows"):
        _build(_frame(), min_group_size=11)


def test_table_level_problems():
    df = _frame()
    with pytest.raises(DataError, match="duplicate column names: sex"):
        _build(pd.concat([df, df[["sex"]]], axis=1))
    with pytest.raises(DataError, match="column names must be strings; got 0"):
        Dataset.from_frame(df.rename(columns={"age": 0}), "y", ["sex"])
    with pytest.raises(DataError, match="the table has no rows"):
        _build(df.iloc[:0])
    with pytest.raises(DataError, match="column 'when' has dtype datetime64"):
        _build(df.assign(when=pd.Timestamp("2020-01-01") + pd.to_timedelta(df["age"], "D")))
    with pytest.raises(InvalidParameterError, match="missing must be one of"):
        _build(df, missing="ignore")
    with pytest.raises(InvalidParameterError, match="df must be a pandas DataFrame"):
        Dataset.from_frame(df.to_numpy(), "y", ["sex"])


def test_infinite_values_are_rejected():
    df = _frame()
    df.loc[[2, 3], "income"] = np.inf
    with pytest.raises(DataError, match="column 'income' has 2 infinite values"):
        _build(df)


def test_stratified_split_needs_two_rows_per_class():
    df = _frame()
    df.loc[0, "y"] = "maybe"
    with pytest.raises(DataError, match="class 'maybe' has only 1 row"):
        _build(df).train_test_split()
    train, test = _build(df).train_test_split(stratify=False)
    assert train.n_rows + test.n_rows == 40


def test_row_id_column_gives_ids_and_must_be_unique():
    df = _frame().assign(pid=lambda d: [f"p{k}" for k in range(len(d))])
    ds = _build(df, row_id="pid")
    assert ds.row_ids[3] == "p3" and not any(n.startswith("pid") for n in ds.feature_names)
    df.loc[5, "pid"] = "p4"
    with pytest.raises(DataError, match="row id column 'pid' repeats the id 'p4'"):
        _build(df, row_id="pid")


# ---------------------------------------------------------------- groups


def test_numeric_protected_columns_are_binned_visibly():
    df = _frame().assign(code=np.tile([1, 2], 20))
    ds = Dataset.from_frame(df, "y", ["age", "income", "code"])
    assert set(ds.groups["age"]) <= {"<25", "25-39", "40-59", "60+"}
    ages = df["age"].to_numpy()
    assert (ds.groups["age"][ages < 25] == "<25").all()
    assert (ds.groups["age"][(ages >= 40) & (ages < 60)] == "40-59").all()
    assert set(ds.groups["code"]) == {"1", "2"}
    assert ds.groups["income"].nunique() == 4  # quartiles
    assert any("'age' binned by age bands" in n for n in ds.notes)
    assert any("'income' binned by quartiles" in n for n in ds.notes)


def test_custom_bins():
    ds = Dataset.from_frame(_frame(), "y", ["age"], bins={"age": [30, 50]})
    ages = _frame()["age"].to_numpy()
    assert set(ds.groups["age"]) == {"<30", "30-49", "50+"}
    assert (ds.groups["age"][ages >= 50] == "50+").all()


def test_intersections_label_rows_and_hide_small_cells():
    ds = _build(_frame())
    labels = ds.intersections()
    assert labels[0] == f"sex={ds.groups.loc[0, 'sex']} & race={ds.groups.loc[0, 'race']}"
    counts = labels.value_counts()
    small = ds.intersections(min_support=int(counts.max()))
    assert small.isna().sum() == (labels.map(counts) < counts.max()).sum()
    assert ds.intersections(columns=["sex"]).nunique() == 2
    with pytest.raises(InvalidParameterError, match="protected column 'city' not found"):
        ds.intersections(columns=["city"])


# ---------------------------------------------------------------- encoding on fit rows


def test_encoder_uses_fit_rows_only():
    df = _frame(60)
    df.loc[50:, "city"] = "Nuuk"  # a level only outside the fit rows
    fit = np.arange(60) < 50
    ds = _build(df, fit_rows=fit)
    assert "city=Nuuk" not in ds.feature_names
    city = [j for j, n in enumerate(ds.feature_names) if n.startswith("city=")]
    assert np.all(ds.X[50:][:, city] == 0)  # unseen level: all-zero one-hot
    income = ds.feature_names.index("income")
    mean, std = df.loc[:49, "income"].mean(), df.loc[:49, "income"].std(ddof=0)
    expected = ((df["income"] - mean) / std).to_numpy()
    np.testing.assert_allclose(ds.X[:, income], expected, rtol=1e-5, atol=1e-5)
    assert ds.encoding["means"][ds.encoding["numeric"].index("income")] == pytest.approx(mean)


def test_indicator_columns_stay_zero_one_and_the_rest_is_standardised():
    df = _frame(60)
    df["smoker"] = (np.arange(60) % 20 == 0).astype(int)  # rare: z-scores would be ~4.4
    df["flag"] = np.where(np.arange(60) % 2 == 0, 1.0, 0.0)
    df.loc[3, "flag"] = np.nan
    ds = _build(df, missing="impute")
    for column in ("smoker", "flag"):
        j = ds.feature_names.index(column)
        kept = ~df[column].isna().to_numpy()
        np.testing.assert_array_equal(ds.X[kept, j], df.loc[kept, column].to_numpy())
    assert ds.X[3, ds.feature_names.index("flag")] == pytest.approx(df["flag"].mean())
    income = ds.X[:, ds.feature_names.index("income")]
    assert income.mean() == pytest.approx(0.0, abs=1e-5)
    assert income.std() == pytest.approx(1.0, abs=1e-4)
    assert ds.encoding["indicators"] == ["smoker", "flag"]
    assert any("0/1 indicators" in n and "'smoker'" in n for n in ds.notes)
    # 0/1 on the fit rows decides: a 2 elsewhere is carried through unscaled
    df.loc[59, "smoker"] = 2
    refit = _build(df, missing="impute", fit_rows=np.arange(60) < 59)
    assert refit.X[59, refit.feature_names.index("smoker")] == 2.0


def test_train_test_split_refits_on_train_rows():
    df = _frame(100)
    df.loc[95:, "city"] = "Nuuk"
    ds = _build(df)
    train, test = ds.train_test_split(test_size=0.3, random_state=1)
    assert train.n_rows == 70 and test.n_rows == 30
    assert sorted([*train.row_ids, *test.row_ids]) == list(range(100))
    assert train.feature_names == test.feature_names
    income = train.feature_names.index("income")
    assert train.X[:, income].mean() == pytest.approx(0.0, abs=1e-5)
    assert train.X[:, income].std() == pytest.approx(1.0, abs=1e-4)
    nuuk_test = np.isin(test.row_ids, df.index[df["city"] == "Nuuk"])
    if "city=Nuuk" not in train.feature_names:  # every Nuuk row landed in test
        city = [j for j, n in enumerate(test.feature_names) if n.startswith("city=")]
        assert np.all(test.X[nuuk_test][:, city] == 0)
    # stratified: class shares equal up to one row
    assert abs(train.y.mean() - test.y.mean()) < 0.05


def test_split_puts_unseen_levels_to_zero():
    df = _frame(100)
    df.loc[[7], "city"] = "Nuuk"
    ds = _build(df, rare_groups="keep")
    for seed in range(20):
        train, test = ds.train_test_split(test_size=0.3, random_state=seed)
        if 7 in test.row_ids:
            break
    else:
        pytest.fail("row 7 never in the test part")
    assert "city=Nuuk" not in train.feature_names
    row = test.X[list(test.row_ids).index(7)]
    city = [j for j, n in enumerate(test.feature_names) if n.startswith("city=")]
    assert np.all(row[city] == 0)


def test_split_is_deterministic_and_validates():
    ds = _build(_frame())
    a, b = ds.train_test_split(random_state=3), ds.train_test_split(random_state=3)
    assert np.array_equal(a[1].row_ids, b[1].row_ids)
    assert not np.array_equal(a[1].row_ids, ds.train_test_split(random_state=4)[1].row_ids)
    with pytest.raises(InvalidParameterError, match="test_size must be a number in \\(0, 1\\)"):
        ds.train_test_split(test_size=1.5)


def test_subset_keeps_ids_encoder_and_groups():
    ds = _build(_frame())
    rows = np.array([5, 2, 30])
    sub = ds.subset(rows)
    assert sub.row_ids.tolist() == [5, 2, 30]
    np.testing.assert_array_equal(sub.X, ds.X[rows])
    assert sub.groups["sex"].tolist() == ds.groups["sex"].iloc[rows].tolist()
    assert sub.feature_names == ds.feature_names and sub.encoding == ds.encoding
    mask = np.zeros(40, dtype=bool)
    mask[[1, 3]] = True
    assert ds.subset(mask).row_ids.tolist() == [1, 3]
    again = sub.subset([2])
    assert again.row_ids.tolist() == [30]
    with pytest.raises(InvalidParameterError, match="integer positions in \\[0, 40\\)"):
        ds.subset([40])


def test_row_ids_stable_through_split_and_subset():
    df = _frame(60).assign(pid=lambda d: [f"p{k}" for k in range(len(d))])
    ds = _build(df, row_id="pid")
    train, test = ds.train_test_split(random_state=0)
    piece = test.subset([0, 2])
    for k, pid in enumerate(piece.row_ids):
        original = int(pid[1:])
        assert piece.groups.loc[k, "sex"] == df.loc[original, "sex"]
        assert piece.classes[piece.y[k]] == df.loc[original, "y"]


# ---------------------------------------------------------------- fingerprint


def test_fingerprint_is_a_stable_content_key():
    a, b = _build(_frame()), _build(_frame())
    assert a.fingerprint == b.fingerprint and len(a.fingerprint) == 64
    assert _build(_frame(seed=1)).fingerprint != a.fingerprint
    assert _build(_frame(), protected=["sex"]).fingerprint != a.fingerprint
    assert _build(_frame(), protected_as_features=False).fingerprint != a.fingerprint
    assert a.subset(np.arange(39)).fingerprint != a.fingerprint
    assert a.refit(np.arange(20)).fingerprint != a.fingerprint


def test_fingerprint_ignores_index_labels_but_not_row_order():
    df = _frame()
    relabelled = df.set_axis(np.arange(100, 140))
    assert _build(relabelled).fingerprint == _build(df).fingerprint
    reordered = df.iloc[::-1].reset_index(drop=True)
    assert _build(reordered).fingerprint != _build(df).fingerprint


def test_warnings_point_at_the_caller():
    df = _frame()
    df.loc[0, "income"] = np.nan
    with pytest.warns(DataWarning) as record:
        _build(df, missing="drop")
    assert record[0].filename == __file__


# ---------------------------------------------------------------- files


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_from_path_reads_each_format(tmp_path, suffix):
    df = _frame()
    path = tmp_path / f"people{suffix}"
    if suffix == ".parquet":
        df.to_parquet(path)
    else:
        df.to_csv(path, index=False)
    ds = Dataset.from_path(path, "y", ["sex", "race"])
    assert ds.name == "people"
    np.testing.assert_allclose(ds.X, _build(df).X, rtol=1e-6)


def test_from_path_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        Dataset.from_path(tmp_path / "nope.csv", "y")
    (tmp_path / "t.xlsx").write_bytes(b"x")
    with pytest.raises(DataError, match="unsupported file type; use .csv, .csv.gz or .parquet"):
        Dataset.from_path(tmp_path / "t.xlsx", "y")


# ---------------------------------------------------------------- public tables


@pytest.mark.parametrize("name", sorted(PUBLIC_TABLES))
def test_load_every_public_table(name, data_home):
    ds = load(name, data_home=data_home)
    table = PUBLIC_TABLES[name]
    assert ds.n_rows == README_ROWS[name] and ds.name == name
    assert ds.target == table.target and tuple(ds.protected) == table.protected
    assert ds.X.dtype == np.float32 and np.isfinite(ds.X).all()
    assert ds.n_classes == (30 if name == "location30" else 2)


def test_load_defaults_per_table(data_home):
    compas = load("compas", data_home=data_home)
    banned = ("name", "first", "last", "dob", "decile_score", "score_text", "v_decile")
    assert not any(n.startswith(banned) for n in compas.feature_names)
    assert compas.row_ids[0] == 1  # ProPublica's id column
    german = load("german", data_home=data_home)
    assert german.groups["sex"].value_counts().to_dict() == {"male": 690, "female": 310}
    assert not any(n.startswith("personal_status_sex") for n in german.feature_names)
    assert list(german.classes) == [2, 1]  # good credit is class 1
    law = load("law", data_home=data_home)
    assert "ZFYA" not in law.feature_names and list(law.classes) == [0, 1]
    adult = load("adult", data_home=data_home)
    assert list(adult.classes) == ["<=50K", ">50K"] and "workclass=?" in adult.feature_names
    assert any("'?' (the original missing marker) kept" in n for n in adult.notes)
    bank = load("bank", data_home=data_home)
    assert "duration" not in bank.feature_names


def test_load_overrides(data_home):
    with pytest.warns(DataWarning, match="3,620 of 48,842 rows dropped"):
        adult = load("adult", data_home=data_home, na_values=["?"], missing="drop",
                     protected=["sex"])
    assert adult.n_rows == 45_222 and adult.protected == ["sex"]  # known complete rows
    assert "workclass=?" not in adult.feature_names


def test_load_uses_the_environment_variable(data_home, monkeypatch):
    monkeypatch.setenv(DATA_HOME_ENV, str(data_home))
    assert data_home_fn() == data_home
    assert load("german").n_rows == 1000


def data_home_fn(path=None):
    return data_home(path)


def test_data_home_option_beats_the_environment(tmp_path, data_home, monkeypatch):
    monkeypatch.setenv(DATA_HOME_ENV, str(tmp_path / "absent"))
    assert data_home_fn(data_home) == data_home
    with pytest.raises(DataError, match="is not an existing folder"):
        data_home_fn()


def test_missing_data_home_names_the_variable(monkeypatch):
    monkeypatch.delenv(DATA_HOME_ENV, raising=False)
    with pytest.raises(DataError, match="ASSAY_DATA_HOME") as info:
        load("adult")
    assert str(info.value) == pubmod.MSG_NO_HOME


def test_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match="needs german_credit.csv but it is not in the data home"):
        load("german", data_home=tmp_path)


def test_tampered_file_fails_the_checksum(tmp_path, data_home):
    copy = tmp_path / "german_credit.csv"
    shutil.copy(data_home / "german_credit.csv", copy)
    copy.chmod(0o644)
    text = copy.read_text().replace("A11", "A12", 1)
    copy.write_text(text)
    with pytest.raises(DataError, match="checksum mismatch for .*german_credit.csv: expected"):
        load("german", data_home=tmp_path)


def test_registry_checksums_match_the_shipped_sums_file(data_home):
    sums = dict(line.split()[::-1] for line in (data_home / "SHA256SUMS").read_text().splitlines())
    assert {t.file: t.sha256 for t in PUBLIC_TABLES.values()} == sums


def test_unknown_table_name():
    with pytest.raises(InvalidParameterError, match="name must be one of 'adult'"):
        load("mnist")


def test_load_synthetic_needs_no_data_home(monkeypatch):
    monkeypatch.delenv(DATA_HOME_ENV, raising=False)
    ds = load("synthetic", n_rows=500, random_state=1)
    assert ds.n_rows == 500 and ds.protected == ["sex", "region"] and ds.target == "approved"
    assert json.dumps(ds.notes)


# ---------------------------------------------------------------- containers and properties


@pytest.mark.parametrize("container", ["list", "ndarray", "series", "frame"])
def test_from_arrays_accepts_common_containers(container):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 2))
    y = [0, 1, 1] * 4
    groups = ["a", "b"] * 6
    convert = {
        "list": lambda v, name: list(v),
        "ndarray": lambda v, name: np.asarray(v),
        "series": lambda v, name: pd.Series(v, name=name),
        "frame": lambda v, name: pd.DataFrame({name: v}),
    }[container]
    y_in = convert(y, "label") if container != "frame" else y  # y is 1-D
    ds = Dataset.from_arrays(X, y_in, groups=convert(groups, "group"))
    assert ds.y.tolist() == y and ds.groups.iloc[:, 0].tolist() == groups
    np.testing.assert_allclose(ds.X[:, 0], (X[:, 0] - X[:, 0].mean()) / X[:, 0].std(),
                               rtol=1e-5, atol=1e-6)


def test_protected_may_be_a_single_name():
    assert _build(_frame(), protected="sex").protected == ["sex"]


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.integers(0, 99), min_size=4, max_size=40),
    edges=st.lists(st.integers(1, 98), min_size=1, max_size=4, unique=True),
)
def test_integer_bins_put_every_value_in_the_band_its_label_names(values, edges):
    edges = sorted(edges)
    column = pd.Series(values, dtype="int64")
    notes: list[str] = []
    labels = binning._group_labels(column, "score", edges, notes)
    for value, label in zip(values, labels):
        if label.startswith("<"):
            assert value < int(label[1:])
        elif label.endswith("+"):
            assert value >= int(label[:-1])
        else:
            low, high = (int(part) for part in label.split("-"))
            assert low <= value <= high


@pytest.mark.parametrize(("content", "message"), [
    (b"", "is empty"),
    (b"a,b\n\xff\xfe,1\n", "is not UTF-8 text"),
    (b'a,b\n"1,2\n', "cannot be read as a table"),
])
def test_unreadable_csv_is_one_data_error(tmp_path, content, message):
    from assay.data.read import read_table

    path = tmp_path / "t.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_table(path)
    folder = tmp_path / "dir.csv"
    folder.mkdir()
    with pytest.raises(DataError, match="is a folder"):
        read_table(folder)


# ---------------------------------------------------------------- headers, encodings, rows


@pytest.mark.parametrize(("header", "message"), [
    # pandas would silently rename the second "a" to "a.1".
    ("a,a,y", "duplicate column names: 'a'"),
    # ... and the empty name to "Unnamed: 1".
    ("a,,y", "a column without a name (column 2 of the header)"),
    # A table saved with its pandas index: the unnamed first column.
    (",a,y", "save it with index=False"),
    ("a,  ,y", "column without a name"),
])
@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_header_names_must_be_unique_and_non_empty(tmp_path, header, message, suffix):
    import gzip

    text = f"{header}\n1,2,0\n3,4,1\n5,6,0\n"
    path = tmp_path / f"t{suffix}"
    if suffix == ".csv.gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    with pytest.raises(DataError, match=re.escape(message)) as info:
        Dataset.from_path(path, "y")
    assert str(path) in str(info.value)


def test_duplicate_parquet_and_frame_columns_are_refused(tmp_path):
    frame = pd.DataFrame([[1, 2, 0], [3, 4, 1]], columns=["a", "a", "y"])
    with pytest.raises(DataError, match="duplicate column names: a"):
        Dataset.from_frame(frame, "y")
    with pytest.raises(DataError, match="column names must not be empty"):
        Dataset.from_frame(frame.set_axis(["a", " ", "y"], axis=1), "y")


def test_other_encodings_are_read_with_encoding(tmp_path):
    path = tmp_path / "t.csv"
    rows = "città,y\n" + "".join(f"{'Forlì' if i % 2 else 'Bra'},{i % 2}\n" for i in range(20))
    path.write_bytes(rows.encode("latin-1"))
    with pytest.raises(DataError, match=r"is not UTF-8 text .*--encoding latin-1"):
        Dataset.from_path(path, "y")
    ds = Dataset.from_path(path, "y", ["città"], encoding="latin-1")
    assert set(ds.groups["città"]) == {"Forlì", "Bra"}
    with pytest.raises(InvalidParameterError, match="encoding must be a text encoding"):
        Dataset.from_path(path, "y", encoding="rot13")
    with pytest.raises(InvalidParameterError, match="Got 'klingon'"):
        Dataset.from_path(path, "y", encoding="klingon")


def test_byte_order_mark_is_not_part_of_the_first_name(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes("\ufeffa,y\n1,0\n2,1\n3,0\n".encode())
    assert Dataset.from_path(path, "y").feature_names == ["a"]


@pytest.mark.parametrize(("rows", "message"), [
    (["1,0"], "the table has 1 row; a dataset needs at least 2 rows."),
    (["1,0", ",1", ",0"], "the table has 1 row left (2 dropped for missing values)"),
    ([",0", ",1"], "no rows are left: all 2 rows have missing values"),
])
def test_too_few_rows_are_counted_right(tmp_path, rows, message):
    path = tmp_path / "t.csv"
    path.write_text("a,y\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError, match=re.escape(message)):
        Dataset.from_path(path, "y", missing="drop")


def test_public_tables_keep_their_own_header_rules(data_home):
    # COMPAS repeats two column names; its loader picks its columns, so it still loads.
    from assay.data.read import read_table

    frame = read_table(data_home / "compas-scores-two-years.csv.gz")
    assert "decile_score.1" in frame.columns
    with pytest.raises(DataError, match="duplicate column names: 'decile_score'"):
        read_table(data_home / "compas-scores-two-years.csv.gz", strict_header=True)


# ---------------------------------------------------------------- many levels (issue 15)


def _many_levels(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """A code column with distinct level counts (40, 39, ..., 1: no ties at any cap),
    the rest of the rows in one common level."""
    rng = np.random.default_rng(seed)
    tail = np.repeat([f"c{k:02d}" for k in range(40)], np.arange(40, 0, -1))[:n]
    code = np.r_[tail, np.full(max(n - tail.size, 0), "common")].astype(object)
    return pd.DataFrame({"income": rng.normal(50, 10, n), "code": rng.permutation(code),
                         "sex": rng.choice(["F", "M"], n),
                         "y": rng.integers(0, 2, n)})


@pytest.mark.parametrize("caps", [{"max_categories": 8}, {"min_frequency": 12},
                                  {"min_frequency": 0.02},
                                  {"max_categories": 5, "min_frequency": 20}])
def test_capped_one_hot_matches_scikit_learn_infrequent_levels(caps):
    from sklearn.preprocessing import OneHotEncoder

    df = _many_levels()
    ds = Dataset.from_frame(df, "y", ["sex"], protected_as_features=False, **caps)
    ref = OneHotEncoder(sparse_output=False, handle_unknown="infrequent_if_exist",
                        **caps).fit(df[["code"]])
    expected = ref.transform(df[["code"]])
    names = [n for n in ds.feature_names if n.startswith("code=")]
    block = ds.X[:, [ds.feature_names.index(n) for n in names]]
    # Same columns in the same order: kept levels sorted, the infrequent one last.
    ref_names = ["code=" + n.removeprefix("code_").replace("infrequent_sklearn",
                                                            messages.INFREQUENT_LEVEL)
                 for n in ref.get_feature_names_out(["code"])]
    assert names == ref_names
    np.testing.assert_array_equal(block, expected)
    assert ds.X.dtype == np.float32
    grouped = sorted(ref.infrequent_categories_[0])
    assert ds.encoding["infrequent"]["code"] == grouped
    note = next(n for n in ds.notes if messages.INFREQUENT_LEVEL in n)
    assert f"{len(grouped):,} grouped" in note and "code" in note
    for key, value in caps.items():
        assert f"{key}={value!r}" in note


def test_no_cap_reached_leaves_encoding_and_fingerprint_unchanged():
    df = _many_levels()
    plain = Dataset.from_frame(df, "y", ["sex"])
    loose = Dataset.from_frame(df, "y", ["sex"], max_categories=1000, min_frequency=1)
    np.testing.assert_array_equal(plain.X, loose.X)
    assert plain.fingerprint == loose.fingerprint and "infrequent" not in loose.encoding
    assert not any(messages.INFREQUENT_LEVEL in n for n in loose.notes)


def test_caps_are_kept_by_refit_and_split_and_use_fit_rows_only():
    df = _many_levels(800)
    ds = Dataset.from_frame(df, "y", ["sex"], max_categories=6)
    train, test = ds.train_test_split(test_size=0.25, random_state=1)
    assert len([n for n in train.feature_names if n.startswith("code=")]) == 6
    assert train.feature_names == test.feature_names
    # Rows of a grouped level light the infrequent column, in train and test alike.
    j = train.feature_names.index(f"code={messages.INFREQUENT_LEVEL}")
    rare = set(train.encoding["infrequent"]["code"])
    for part in (train, test):
        in_rare = part.frame["code"].isin(rare).to_numpy()
        np.testing.assert_array_equal(part.X[:, j] == 1, in_rare)


def test_memory_budget_is_a_one_line_error_before_allocation_with_a_cap_that_fits():
    from assay.data.synthetic import make_synthetic

    frame = make_synthetic(4000)
    full = Dataset.from_frame(frame, "approved", ["sex", "region"])
    budget = full.X.nbytes / 2**30 / 3  # a third of what the full one-hot needs
    with pytest.raises(DataError) as info:  # dense asked for (the default would go sparse)
        Dataset.from_frame(frame, "approved", ["sex", "region"], memory_budget=budget,
                           sparse=False)
    message = str(info.value)
    assert "\n" not in message and message.startswith("memory_budget must hold")
    assert f"4,000 rows x {full.n_features:,} features" in message
    assert "--max-categories" in message and "code (" in message
    cap = int(re.search(r"max_categories=(\d+)", message).group(1))
    capped = Dataset.from_frame(frame, "approved", ["sex", "region"], memory_budget=budget,
                                max_categories=cap, sparse=False)
    assert capped.X.nbytes <= budget * 2**30 < full.X.nbytes
    # The check runs before the matrix exists: an impossible table fails at once.
    huge = pd.DataFrame({"code": np.arange(200_000).astype(str),
                         "y": np.arange(200_000) % 2})
    with pytest.raises(DataError, match=r"200,000 rows x 200,000 features = 149\.0 GiB"):
        Dataset.from_frame(huge, "y", sparse=False)


@pytest.mark.parametrize("bad", [{"max_categories": 0}, {"max_categories": 2.5},
                                 {"min_frequency": 0}, {"min_frequency": 1.5},
                                 {"min_frequency": True}, {"memory_budget": 0},
                                 {"memory_budget": -1.0}])
def test_encoding_limits_are_validated(bad):
    with pytest.raises(InvalidParameterError, match=next(iter(bad)) + " must be"):
        Dataset.from_frame(_many_levels(50), "y", ["sex"], **bad)
