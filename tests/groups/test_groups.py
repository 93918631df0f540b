"""The group layer: labels, group index, flag rule, permutation test, GroupFrame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay._validation import DataError, InvalidParameterError
from assay.groups import (
    FULL_PERMUTATION_ROWS,
    LABEL_SEP,
    RATE_METRICS,
    FlagRule,
    GroupFrame,
    GroupIndex,
    group_label,
    parse_group_label,
    permutation_test,
)

# --------------------------------------------------------------------------- labels


def test_label_format():
    assert group_label(["sex"], ["Female"]) == "sex=Female"
    assert group_label(("sex", "race"), ("Female", "Black")) == "sex=Female & race=Black"
    assert LABEL_SEP == " & "
    # Ordinary punctuation stays bare.
    assert group_label(["age"], ["18-29"]) == "age=18-29"
    assert group_label(["age"], ["[30, 45)"]) == "age=[30, 45)"


def test_label_quotes_values_that_would_be_ambiguous():
    # Joined naively, both rows read "x=a & y=b & z=c".
    first = group_label(["x", "y"], ["a & y=b", "c"])
    second = group_label(["x", "y"], ["a", "b & z=c"])
    assert first != second
    assert first == 'x="a & y=b" & y=c'
    assert parse_group_label(first) == (("x", "y"), ("a & y=b", "c"))
    assert parse_group_label(second) == (("x", "y"), ("a", "b & z=c"))
    assert group_label(["dept"], ["R&D"]) == 'dept="R&D"'
    assert group_label(["v"], [""]) == 'v=""'
    assert group_label(["v"], [" padded"]) == 'v=" padded"'


_text = st.text(alphabet=st.sampled_from(list("ab =&\"\\ x")), max_size=6)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_text, _text), min_size=1, max_size=3))
def test_label_round_trip(pairs):
    names, values = zip(*pairs)
    assert parse_group_label(group_label(names, values)) == (names, values)


def test_label_errors():
    with pytest.raises(InvalidParameterError, match="one entry per attribute"):
        group_label(["a", "b"], ["x"])
    for bad in ["sex", "sex=F & ", "=F", "sex=F && race=B", 'sex="F']:
        with pytest.raises(InvalidParameterError, match="label must be"):
            parse_group_label(bad)


# --------------------------------------------------------------------------- GroupIndex


@pytest.fixture
def small_frame():
    return pd.DataFrame({
        "sex": ["M", "F", "F", "M", "F", "M"],
        "race": ["b", "a", "b", "b", "b", "b"],
        "age": [30, 4, 30, 100, 4, 30],
    })


def test_index_single_attributes(small_frame):
    index = GroupIndex.from_frame(small_frame)
    sex = index["sex"]
    assert sex.attributes == ("sex",)
    assert sex.values == (("F",), ("M",))
    np.testing.assert_array_equal(sex.codes, [1, 0, 0, 1, 0, 1])
    np.testing.assert_array_equal(sex.sizes, [3, 3])
    assert sex.codes.dtype == np.int64 and sex.sizes.dtype == np.int64
    # Numbers sort as numbers, not as text ("100" < "30" < "4").
    age = index["age"]
    assert age.values == (("4",), ("30",), ("100",))
    np.testing.assert_array_equal(age.codes, [1, 0, 1, 2, 0, 1])
    assert index.attributes == ("sex", "race", "age")
    assert sex.labels == ["sex=F", "sex=M"]
    assert sex.supported(3).all() and not sex.supported(4).any()


def test_index_intersections_only_observed(small_frame):
    index = GroupIndex.from_frame(small_frame)
    assert index.keys == ["sex", "race", "age", "sex & race", "sex & age", "race & age",
                          "sex & race & age"]
    both = index["sex & race"]
    # (M, a) never occurs, so it is not a group.
    assert both.values == (("F", "a"), ("F", "b"), ("M", "b"))
    np.testing.assert_array_equal(both.sizes, [1, 2, 3])
    np.testing.assert_array_equal(both.codes, [2, 0, 1, 2, 1, 2])
    assert both.key == "sex & race"
    assert both.labels[0] == "sex=F & race=a"
    # Every row's group holds that row's values.
    for g in index.groupings:
        rows = small_frame[list(g.attributes)].astype(str).to_numpy()
        assert (np.array(g.values, dtype=object)[g.codes] == rows).all()
        assert g.sizes.sum() == len(small_frame) and (g.sizes > 0).all()
    assert index["race", "sex"] is both  # attributes in any order
    assert ("sex", "race") in index and "sex & colour" not in index
    mi = both.index()
    assert isinstance(mi, pd.MultiIndex) and list(mi.names) == ["sex", "race"]
    assert list(mi) == list(both.values)


def test_index_max_intersection_and_categorical_order():
    frame = pd.DataFrame({
        "band": pd.Categorical(["<18", "30+", "18-29", "30+"],
                               categories=["<18", "18-29", "30+", "unused"]),
        "sex": ["F", "M", "F", "F"],
    })
    index = GroupIndex.from_frame(frame, max_intersection=1)
    assert index.keys == ["band", "sex"]
    # Declared category order, unused levels dropped.
    assert index["band"].values == (("<18",), ("18-29",), ("30+",))
    series = GroupIndex.from_frame(pd.Series(["x", "y", "x"], name="site"))
    assert series.keys == ["site"] and series.n_rows == 3


def test_index_distinct_labels_with_separator_values():
    frame = pd.DataFrame({"x": ["a & y=b", "a", "a & y=b"], "y": ["c", "b & z=c", "c"]})
    labels = GroupIndex.from_frame(frame)["x & y"].labels
    assert len(set(labels)) == len(labels) == 2


def test_index_large_intersection_space():
    # Cardinalities whose product overflows a flat int64 code.
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({f"c{j}": rng.integers(0, 3000, 500) for j in range(6)})
    index = GroupIndex.from_frame(frame, max_intersection=6)
    full = index["c0 & c1 & c2 & c3 & c4 & c5"]
    assert full.n_groups == len(frame.drop_duplicates())


def test_index_errors(small_frame):
    with pytest.raises(InvalidParameterError, match="groups must be a pandas DataFrame"):
        GroupIndex.from_frame(small_frame.to_numpy())
    with pytest.raises(DataError, match="at least one column"):
        GroupIndex.from_frame(small_frame[[]])
    with pytest.raises(DataError, match="at least one row"):
        GroupIndex.from_frame(small_frame.iloc[:0])
    with pytest.raises(DataError, match="no missing values"):
        GroupIndex.from_frame(small_frame.assign(race=[None, "a", "b", "b", "b", "b"]))
    with pytest.raises(DataError, match="must not contain"):
        GroupIndex.from_frame(small_frame.rename(columns={"sex": "sex & gender"}))
    with pytest.raises(InvalidParameterError, match="max_intersection must be"):
        GroupIndex.from_frame(small_frame, max_intersection=0)
    index = GroupIndex.from_frame(small_frame)
    with pytest.raises(InvalidParameterError, match="grouping must be one of"):
        index["colour"]


# --------------------------------------------------------------------------- FlagRule


def test_flag_rule_needs_significance_and_size():
    rule = FlagRule(alpha=0.05, min_difference=0.05)
    assert not rule.flags(0.01, 1e-6)  # significant but small
    assert not rule.flags(0.30, 0.20)  # large but not significant
    assert rule.flags(0.30, 0.01)
    assert not rule.flags(-0.30, 0.01)  # large in the harmless direction
    assert not rule.flags(np.nan, 0.01)
    less = FlagRule(direction="less")
    assert less.flags(-0.30, 0.01) and not less.flags(0.30, 0.01)
    both = FlagRule(direction="both", min_difference=0.1)
    np.testing.assert_array_equal(both.flags([-0.2, 0.2, 0.05, 0.2], [0.01, 0.01, 0.01, 0.5]),
                                  [True, True, False, False])
    assert FlagRule(min_difference=0.0).flags(0.001, 0.01)
    assert not FlagRule(min_difference=0.0).flags(0.0, 0.01)


def test_flag_rule_words_and_round_trip():
    rule = FlagRule()
    assert rule.describe() == "p < 0.05 and at least 0.05 above the overall value"
    assert FlagRule(0.01, 0.1, "less").describe("the best group") == \
        "p < 0.01 and at least 0.1 below the best group"
    d = FlagRule(0.01, 0.1, "both").to_dict()
    assert d == {"alpha": 0.01, "min_difference": 0.1, "direction": "both"}
    assert FlagRule.from_dict(d) == FlagRule(0.01, 0.1, "both")
    assert FlagRule.from_dict({}) == FlagRule()


@pytest.mark.parametrize("kwargs, match", [
    ({"alpha": 0.0}, "alpha must be"), ({"alpha": 1.0}, "alpha must be"),
    ({"min_difference": -0.1}, "min_difference must be"),
    ({"direction": "up"}, "direction must be one of"),
])
def test_flag_rule_validation(kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        FlagRule(**kwargs)


def test_flag_rule_from_dict_rejects_unknown_keys():
    with pytest.raises(InvalidParameterError, match="flag rule keys"):
        FlagRule.from_dict({"alpha": 0.05, "threshold": 1})


# --------------------------------------------------------------------------- permutation test


def _frame(n, rng):
    return pd.DataFrame({"sex": rng.choice(["F", "M"], n),
                         "site": rng.choice(["a", "b", "c", "d"], n, p=[0.4, 0.3, 0.2, 0.1])})


@pytest.mark.parametrize("n", [1200, FULL_PERMUTATION_ROWS + 1000])
def test_planted_group_is_found(n):
    rng = np.random.default_rng(1)
    frame = _frame(n, rng)
    values = rng.normal(size=(n, 2))
    planted = (frame["site"] == "d").to_numpy()
    values[planted, 0] += 0.6  # column 0: site d shifted up; column 1: null
    index = GroupIndex.from_frame(frame)
    tests = permutation_test(values, index, n_permutations=200, random_state=3)
    site = tests["site"]
    d = index["site"].values.index(("d",))
    assert site.p_value[d, 0] < 0.05
    assert site.difference[d, 0] == pytest.approx(
        values[planted, 0].mean() - values[:, 0].mean())
    assert np.all(np.delete(site.p_value[:, 0], d) > 0.05)
    inter = tests["sex & site"]
    assert min(inter.p_value[i, 0] for i, v in enumerate(index["sex & site"].values)
               if v[1] == "d") < 0.05
    # The shift is upward: the "less" alternative does not find it.
    less = permutation_test(values, index, direction="less", random_state=3)["site"]
    assert less.p_value[d, 0] > 0.5
    both = permutation_test(values, index, direction="both", random_state=3)["site"]
    assert both.p_value[d, 0] < 0.05


@pytest.mark.parametrize("n, seeds", [(300, 100), (FULL_PERMUTATION_ROWS + 500, 50)])
def test_null_grouping_keeps_its_level(n, seeds):
    rng = np.random.default_rng(7)
    index = GroupIndex.from_frame(_frame(n, rng)[["site"]])
    rejected = 0
    for seed in range(seeds):
        values = np.random.default_rng(seed).exponential(size=n)  # skewed, still null
        test = permutation_test(values, index, n_permutations=99, direction="both",
                                random_state=seed)["site"]
        rejected += bool((test.p_value < 0.05).any())  # family-wise: any group
    assert rejected / seeds <= 0.05 + 0.06


def test_max_t_is_never_below_the_unadjusted_p():
    rng = np.random.default_rng(2)
    frame = _frame(800, rng)
    values = rng.normal(size=800) + 0.3 * (frame["site"] == "c").to_numpy()
    for test in permutation_test(values, GroupIndex.from_frame(frame)).values():
        assert np.all(test.p_value >= test.p_unadjusted)
        assert np.all((test.p_value > 0) & (test.p_value <= 1))
        assert test.p_value.min() >= 1 / 201  # the observed arrangement counts


def test_statistic_is_the_standardised_mean_difference():
    rng = np.random.default_rng(4)
    frame = _frame(500, rng)
    values = rng.gamma(2.0, size=500)
    test = permutation_test(values, GroupIndex.from_frame(frame))["sex & site"]
    key = frame["sex"] + "|" + frame["site"]
    n, mean, var = len(values), values.mean(), values.var()
    for g, label in enumerate(test.labels):
        sex, site = (label.split(" & ")[0][4:], label.split(" & ")[1][5:])
        member = (key == f"{sex}|{site}").to_numpy()
        n_g = member.sum()
        z = (values[member].mean() - mean) / np.sqrt(var / n_g * (n - n_g) / (n - 1))
        assert test.statistic[g, 0] == pytest.approx(z)
        assert test.support[g] == n_g


def test_cyclic_permutations_match_full_permutations():
    # Above FULL_PERMUTATION_ROWS the null comes from random shifts of a random order;
    # its p-value agrees with a plain test over uniform permutations.
    n = FULL_PERMUTATION_ROWS + 1000
    rng = np.random.default_rng(5)
    site = rng.choice(3, n, p=[0.6, 0.3, 0.1])
    values = rng.normal(size=n) + 0.02 * (site == 2)
    index = GroupIndex.from_frame(pd.DataFrame({"site": site}))
    ours = permutation_test(values, index, n_permutations=2000, random_state=0)["site"]
    perms = rng.permuted(np.tile(np.arange(n), (2000, 1)), axis=1)
    sizes = np.bincount(site)
    sums = np.stack([values[perms][:, site == g].sum(axis=1) for g in range(3)], axis=1)
    scale = 1 / np.sqrt(sizes * (n - sizes) / (n - 1)) / values.std()
    null = (sums - sizes * values.mean()) * scale
    observed = ours.statistic[:, 0]
    plain = (1 + (null.max(axis=1)[:, None] >= observed).sum(axis=0)) / 2001
    assert 0.005 < plain[2] < 0.1  # a borderline effect, where differences would show
    np.testing.assert_allclose(ours.p_value[:, 0], plain, atol=0.02)
    own = (1 + (null >= observed).sum(axis=0)) / 2001
    np.testing.assert_allclose(ours.p_unadjusted[:, 0], own, atol=0.02)


def test_columns_are_tested_independently_and_reproducibly():
    rng = np.random.default_rng(6)
    frame = _frame(700, rng)
    values = rng.normal(size=(700, 3))
    index = GroupIndex.from_frame(frame)
    together = permutation_test(values, index, random_state=11)
    again = permutation_test(values, index, random_state=11)
    for j in range(3):
        alone = permutation_test(values[:, j], index, random_state=11)
        for key in index.keys:
            np.testing.assert_allclose(together[key].p_value[:, j], alone[key].p_value[:, 0])
            np.testing.assert_allclose(together[key].statistic[:, j],
                                       alone[key].statistic[:, 0])
    for key in index.keys:
        np.testing.assert_array_equal(together[key].p_value, again[key].p_value)
    assert list(together) == index.keys


def test_no_permutations_gives_p_one():
    rng = np.random.default_rng(8)
    frame = _frame(300, rng)
    values = rng.normal(size=300) + 5 * (frame["site"] == "a").to_numpy()
    tests = permutation_test(values, GroupIndex.from_frame(frame), n_permutations=0)
    for test in tests.values():
        assert np.all(test.p_value == 1.0) and test.n_permutations == 0
        assert np.isfinite(test.statistic).all()


def test_unsupported_groups_are_left_out():
    rng = np.random.default_rng(9)
    frame = pd.DataFrame({"site": ["a"] * 60 + ["b"] * 50 + ["c"] * 5})
    values = rng.normal(size=115)
    values[110:] += 10  # the tiny group would dominate if it were tested
    test = permutation_test(values, GroupIndex.from_frame(frame), min_support=10)["site"]
    np.testing.assert_array_equal(test.supported, [True, True, False])
    assert np.isnan(test.statistic[2, 0]) and test.p_value[2, 0] == 1.0
    # The reference is the mean of the supported rows only.
    assert test.difference[0, 0] == pytest.approx(values[:60].mean() - values[:110].mean())
    # A group too small to test still has its difference from that reference.
    assert test.difference[2, 0] == pytest.approx(values[110:].mean() - values[:110].mean())
    frame_ab = pd.DataFrame({"site": ["a"] * 60 + ["b"] * 50})
    alone = permutation_test(values[:110], GroupIndex.from_frame(frame_ab))["site"]
    np.testing.assert_allclose(test.statistic[:2], alone.statistic)
    table = test.to_frame()
    assert list(table.index) == ["site=a", "site=b", "site=c"]
    assert table.loc["site=c", "n"] == 5 and not table.loc["site=c", "supported"]


def test_unsupported_groups_in_the_large_path():
    rng = np.random.default_rng(12)
    site = np.repeat(["a", "b", "c"], [3600, 3000, 30])
    frame = pd.DataFrame({"sex": rng.choice(["F", "M"], site.size), "site": site})
    values = rng.normal(size=site.size)
    values[site == "c"] += 10
    index = GroupIndex.from_frame(frame)
    tests = permutation_test(values, index, min_support=100, random_state=2)
    site_test = tests["site"]
    assert np.isnan(site_test.statistic[2, 0]) and site_test.p_value[2, 0] == 1.0
    keep = site != "c"
    alone = permutation_test(values[keep], GroupIndex.from_frame(frame[keep][["site"]]))
    np.testing.assert_allclose(site_test.statistic[:2], alone["site"].statistic)
    assert np.all(site_test.p_value[:2, 0] > 0.05)
    # "sex" keeps every row (its own product) and does not depend on the other groupings.
    sex_alone = permutation_test(values, GroupIndex.from_frame(frame[["sex"]]),
                                 min_support=100, random_state=2)["sex"]
    np.testing.assert_allclose(tests["sex"].statistic, sex_alone.statistic)
    np.testing.assert_allclose(tests["sex"].p_value, sex_alone.p_value)
    assert tests["sex"].difference[0, 0] == pytest.approx(
        values[frame["sex"] == "F"].mean() - values.mean())


def test_nan_rows_are_left_out():
    rng = np.random.default_rng(10)
    frame = _frame(400, rng)
    values = rng.normal(size=(400, 2))
    values[::7, 1] = np.nan
    keep = ~np.isnan(values).any(axis=1)
    with_nan = permutation_test(values, GroupIndex.from_frame(frame), random_state=1)
    dropped = permutation_test(values[keep],
                               GroupIndex.from_frame(frame[keep].reset_index(drop=True)),
                               random_state=1)
    for key, test in with_nan.items():
        np.testing.assert_allclose(test.statistic, dropped[key].statistic)
        np.testing.assert_array_equal(test.p_value, dropped[key].p_value)


def test_permutation_test_errors():
    index = GroupIndex.from_frame(pd.DataFrame({"g": ["a", "b"] * 10}))
    with pytest.raises(DataError, match="values must have shape"):
        permutation_test(np.zeros(19), index)
    with pytest.raises(DataError, match="finite or NaN"):
        permutation_test(np.r_[np.inf, np.zeros(19)], index)
    with pytest.raises(InvalidParameterError, match="direction must be one of"):
        permutation_test(np.zeros(20), index, direction="up")
    with pytest.raises(InvalidParameterError, match="n_permutations must be"):
        permutation_test(np.zeros(20), index, n_permutations=-1)
    with pytest.raises(InvalidParameterError, match="index must be a GroupIndex"):
        permutation_test(np.zeros(20), pd.DataFrame({"g": ["a", "b"] * 10}))
    # A constant statistic has nothing to test.
    test = permutation_test(np.ones(20), index)["g"]
    assert np.all(test.p_value == 1.0) and np.all(test.statistic == 0)


# --------------------------------------------------------------------------- GroupFrame


@pytest.fixture(scope="module")
def adult(data_home):
    from sklearn.linear_model import LogisticRegression

    from assay.data import load

    ds = load("adult", data_home=data_home)
    model = LogisticRegression(max_iter=200).fit(ds.X[:3000], ds.y[:3000])
    return ds, model.predict(ds.X)


def test_group_frame_matches_fairlearn_by_group(adult):
    fairlearn = pytest.importorskip("fairlearn.metrics")
    ds, pred = adult
    frame = GroupFrame(ds.y, pred, ds.groups)
    metrics = {"selection_rate": fairlearn.selection_rate, "tpr": fairlearn.true_positive_rate}
    for columns in (["sex", "race"], ["sex"]):
        reference = fairlearn.MetricFrame(metrics=metrics, y_true=ds.y, y_pred=pred,
                                          sensitive_features=ds.groups[columns])
        ours = frame.by_group(columns)[["selection_rate", "tpr"]]
        pd.testing.assert_frame_equal(ours, reference.by_group, check_dtype=False)
        for method in ("between_groups", "to_overall"):
            key = " & ".join(columns)
            np.testing.assert_allclose(
                frame.difference(method).loc[key, ["selection_rate", "tpr"]],
                reference.difference(method=method)[["selection_rate", "tpr"]])
            np.testing.assert_allclose(
                frame.ratio(method).loc[key, ["selection_rate", "tpr"]],
                reference.ratio(method=method)[["selection_rate", "tpr"]])
        np.testing.assert_allclose(frame.overall.loc[["selection_rate", "tpr"], "value"],
                                   reference.overall)


def test_group_frame_rates_and_intervals():
    y = np.array([1, 1, 0, 0, 1, 0, 1, 0, 0, 1])
    p = np.array([1, 0, 0, 1, 1, 0, 1, 1, 0, 0])
    g = pd.DataFrame({"sex": list("FFFFFMMMMM")})
    frame = GroupFrame(y, p, g, metrics=RATE_METRICS + ("base_rate",))
    by = frame.by_group()
    assert by.index.name == "sex" and list(by.index) == ["F", "M"]
    f = by.loc["F"]  # F: y 1 1 0 0 1, p 1 0 0 1 1 -> tp 2, fn 1, fp 1, tn 1
    assert f["selection_rate"] == pytest.approx(3 / 5)
    assert f["tpr"] == pytest.approx(2 / 3) and f["fnr"] == pytest.approx(1 / 3)
    assert f["fpr"] == pytest.approx(1 / 2) and f["ppv"] == pytest.approx(2 / 3)
    assert f["accuracy"] == pytest.approx(3 / 5) and f["base_rate"] == pytest.approx(3 / 5)
    table = frame.table()
    assert table.index.names == ["grouping", "group"]
    row = table.loc[("sex", "sex=F")]
    assert row["tpr_ci_low"] < row["tpr"] < row["tpr_ci_high"]
    assert row["n"] == 5 and row["supported"]
    assert list(frame.overall.columns) == ["value", "ci_low", "ci_high", "n"]
    assert frame.overall.loc["tpr", "n"] == 5  # positives


def test_group_frame_min_support_marks_not_drops():
    y = np.r_[np.ones(20), np.zeros(20), [1, 0]].astype(int)
    p = np.r_[np.ones(15), np.zeros(5), np.zeros(18), np.ones(2), [0, 1]].astype(int)
    g = pd.DataFrame({"site": ["a"] * 20 + ["b"] * 20 + ["c"] * 2})
    frame = GroupFrame(y, p, g, min_support=5)
    table = frame.table()
    assert list(table["supported"]) == [True, True, False]
    assert table.loc[("site", "site=c"), "selection_rate"] == 0.5
    # The tiny group's selection rate (0.5) is left out of the gap: 0.75 - 0.1.
    assert frame.difference().loc["site", "selection_rate"] == pytest.approx(0.65)
    assert frame.ratio().loc["site", "selection_rate"] == pytest.approx(0.1 / 0.75)
    everyone = GroupFrame(y, p, g).difference().loc["site", "selection_rate"]
    assert everyone == pytest.approx(0.75 - 0.1)
    assert frame.difference("to_overall").loc["site", "selection_rate"] == pytest.approx(
        max(abs(0.75 - 18 / 42), abs(0.1 - 18 / 42)))


def test_group_frame_accepts_a_group_index_and_checks_input():
    g = pd.DataFrame({"sex": list("FFMM"), "race": list("abab")})
    index = GroupIndex.from_frame(g)
    frame = GroupFrame([1, 0, 1, 0], [True, False, False, False], index)
    assert frame.index is index
    assert frame.by_group("sex & race").index.names == ["sex", "race"]
    with pytest.raises(InvalidParameterError, match="max_intersection must be None"):
        GroupFrame([1, 0, 1, 0], [1, 0, 0, 0], index, max_intersection=1)
    with pytest.raises(DataError, match="binary labels"):
        GroupFrame([1, 2, 1, 0], [1, 0, 0, 0], g)
    with pytest.raises(DataError, match="y_pred must be a 1-D array of 4"):
        GroupFrame([1, 0, 1, 0], [1, 0, 0], g)
    with pytest.raises(InvalidParameterError, match="metric must be one of"):
        GroupFrame([1, 0, 1, 0], [1, 0, 0, 0], g, metrics=["auc"])
    with pytest.raises(InvalidParameterError, match="method must be one of"):
        GroupFrame([1, 0, 1, 0], [1, 0, 0, 0], g).difference("worst")
