"""The model under audit as predictions: file reader, estimator path, reference plans,
and the attack of one target by assay's references."""

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from _helpers import balanced_member
from assay._validation import AssayError, DataError, InvalidParameterError
from assay.data import Dataset
from assay.engine import Population, PopulationPlan
from assay.engine.predictions import (
    TargetPredictions,
    predictions_from_estimator,
    read_predictions,
    reference_plan,
)
from assay.privacy.membership.audited_model import applicable_attacks, attack_target, reference_note
from assay.privacy.membership.scoring import complement_partners

N_ROWS = 120
LABELS = ["bird", "cat", "dog"]


def table(n=N_ROWS, seed=0, labels=LABELS):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "uid": [f"u{i:04d}" for i in range(n)],
        "x": rng.normal(size=n),
        "colour": rng.choice(["red", "green", "blue"], n),
        "sex": rng.choice(["F", "M"], n),
        "label": np.asarray(labels, dtype=object)[np.arange(n) % len(labels)],
    })


@pytest.fixture(scope="module")
def multi():
    return Dataset.from_frame(table(), "label", ["sex"], row_id="uid")


@pytest.fixture(scope="module")
def binary():
    # Classes in the dataset's order: positive="yes" makes "yes" class 1.
    return Dataset.from_frame(table(labels=["no", "yes"]), "label", ["sex"], row_id="uid",
                              positive="yes")


def good_frame(dataset, seed=1, with_ids=True):
    """A valid predictions frame for `dataset` and the arrays it encodes."""
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(dataset.n_classes), dataset.n_rows)
    member = rng.random(dataset.n_rows) < 0.5
    frame = pd.DataFrame({f"proba_{c}": probs[:, k] for k, c in enumerate(dataset.classes)})
    frame["in_train"] = member.astype(int)
    if with_ids:
        frame.insert(0, "row_id", dataset.row_ids)
    return frame, probs, member


def write(frame, tmp_path, name="pred.csv"):
    path = tmp_path / name
    if name.endswith(".parquet"):
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


def one_line_error(excinfo, *needles):
    message = str(excinfo.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, (needle, message)
    return message


# --------------------------------------------------------------------------- reading


@pytest.mark.parametrize("name", ["pred.csv", "pred.parquet", "pred.csv.gz"])
def test_reads_every_format_in_dataset_order(multi, tmp_path, name):
    frame, probs, member = good_frame(multi)
    target = read_predictions(write(frame, tmp_path, name), multi)
    np.testing.assert_allclose(target.probs, probs, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(target.member, member)
    assert target.probs.dtype == np.float64 and target.member.dtype == bool
    assert target.source == f"predictions file {name}"
    assert target.summary() == {"source": f"predictions file {name}", "n_rows": N_ROWS,
                                "n_members": int(member.sum()),
                                "n_nonmembers": int((~member).sum())}


def test_row_ids_match_shuffled_rows_and_columns(multi, tmp_path):
    frame, probs, member = good_frame(multi)
    shuffled = frame.sample(frac=1, random_state=3)
    shuffled = shuffled[["in_train", *shuffled.columns[::-1].drop("in_train")]]
    assert not np.array_equal(shuffled["row_id"], multi.row_ids)
    target = read_predictions(write(shuffled, tmp_path), multi)
    np.testing.assert_allclose(target.probs, probs, atol=1e-12)
    np.testing.assert_array_equal(target.member, member)


def test_integer_row_ids_compare_as_strings(tmp_path):
    # Default row ids are positions; the file's ids are read back as text.
    dataset = Dataset.from_frame(table().drop(columns="uid"), "label", ["sex"])
    frame, probs, _ = good_frame(dataset)
    reordered = frame.iloc[::-1]
    target = read_predictions(write(reordered, tmp_path, "ids.parquet"), dataset)
    np.testing.assert_allclose(target.probs, probs, atol=1e-12)


def test_without_row_id_rows_are_matched_by_order(multi, tmp_path):
    frame, probs, _ = good_frame(multi, with_ids=False)
    target = read_predictions(write(frame, tmp_path), multi)
    np.testing.assert_allclose(target.probs, probs, atol=1e-12)


def test_score_column_is_the_probability_of_class_one(binary, tmp_path):
    frame, probs, _ = good_frame(binary)
    assert list(binary.classes) == ["no", "yes"]
    scored = frame.drop(columns=["proba_no", "proba_yes"]).assign(score=probs[:, 1])
    target = read_predictions(write(scored, tmp_path), binary)
    np.testing.assert_allclose(target.probs[:, 1], probs[:, 1], atol=1e-12)
    np.testing.assert_allclose(target.probs.sum(axis=1), 1.0)


def test_positive_label_reorders_proba_columns(tmp_path):
    # positive="no" makes "no" class 1: the columns follow dataset.classes, not the file.
    dataset = Dataset.from_frame(table(labels=["no", "yes"]), "label", row_id="uid",
                                 positive="no")
    assert list(dataset.classes) == ["yes", "no"]
    frame, probs, _ = good_frame(dataset)
    target = read_predictions(write(frame[["row_id", "proba_no", "proba_yes", "in_train"]],
                                    tmp_path), dataset)
    np.testing.assert_allclose(target.probs, probs, atol=1e-12)


@pytest.mark.parametrize("mark", [("true", "false"), ("True", "False"), (True, False),
                                  (1.0, 0.0)])
def test_train_column_accepts_true_false(multi, tmp_path, mark):
    frame, _, member = good_frame(multi)
    frame["in_train"] = np.where(member, mark[0], mark[1])
    frame = frame.rename(columns={"in_train": "seen"})
    target = read_predictions(write(frame, tmp_path), multi, train_column="seen")
    np.testing.assert_array_equal(target.member, member)


def test_numeric_class_labels_name_columns_as_text(tmp_path):
    frame = table()
    frame["label"] = np.arange(N_ROWS) % 3 + 1
    dataset = Dataset.from_frame(frame, "label", row_id="uid")
    pred, probs, _ = good_frame(dataset)
    assert {"proba_1", "proba_2", "proba_3"} <= set(pred.columns)
    np.testing.assert_allclose(read_predictions(write(pred, tmp_path), dataset).probs, probs,
                               atol=1e-12)


def _bad_cases():
    """(case name, mutation of (frame, tmp_path) -> path, error class, needles)."""

    def save(frame, tmp_path, name="pred.csv"):
        return write(frame, tmp_path, name)

    def raw(text, name="pred.csv"):
        def make(frame, tmp_path):
            path = tmp_path / name
            path.write_bytes(text)
            return path
        return make

    def setcol(column, values):
        def make(frame, tmp_path):
            frame = frame.copy()
            frame[column] = values(frame)
            return save(frame, tmp_path)
        return make

    def poke(column, value, rows=(0,)):
        def make(frame, tmp_path):
            frame = frame.copy()
            frame[column] = frame[column].astype(object)
            for r in rows:
                frame.loc[r, column] = value
            return save(frame, tmp_path)
        return make

    def drop(*columns):
        return lambda frame, tmp_path: save(frame.drop(columns=list(columns)), tmp_path)

    return [
        ("missing file", lambda f, p: p / "nowhere.csv", DataError, ["nowhere.csv",
                                                                     "does not exist"]),
        ("folder", lambda f, p: p, DataError, ["is a folder"]),
        ("empty file", raw(b""), DataError, ["pred.csv", "is empty"]),
        ("header only", raw(b"row_id,proba_bird,proba_cat,proba_dog,in_train\n"), DataError,
         ["pred.csv", "no rows"]),
        ("unreadable parquet", raw(b"\x00\x01garbage", "pred.parquet"), DataError,
         ["pred.parquet", "cannot be read"]),
        ("unknown suffix", raw(b"a,b\n1,2\n", "pred.xlsx"), DataError,
         ["pred.xlsx", ".csv"]),
        ("row count", lambda f, p: save(f.drop(columns="row_id").iloc[:-1], p), DataError,
         ["pred.csv", f"({N_ROWS})", f"Got {N_ROWS - 1} rows", "'row_id'"]),
        ("unknown id", poke("row_id", "stranger"), DataError,
         ["pred.csv", "'row_id'", "stranger", "unknown"]),
        ("duplicated id", poke("row_id", "u0005", rows=(0,)), DataError,
         ["pred.csv", "'row_id'", "u0005", "repeat"]),
        ("table row without prediction", lambda f, p: save(f.iloc[1:], p), DataError,
         ["pred.csv", "u0000", "needs a prediction"]),
        ("missing id", poke("row_id", np.nan), DataError, ["pred.csv", "'row_id'",
                                                           "missing"]),
        ("no probability column", drop("proba_bird", "proba_cat", "proba_dog"), DataError,
         ["pred.csv", "proba_bird", "predict_proba"]),
        ("missing class", drop("proba_dog"), DataError,
         ["pred.csv", "missing 'proba_dog'", "'label'"]),
        ("extra class", setcol("proba_fish", lambda f: 0.0), DataError,
         ["pred.csv", "unknown 'proba_fish'"]),
        ("score for multi-class", setcol("score", lambda f: 0.5), DataError,
         ["pred.csv", "not both"]),
        ("sum not 1", setcol("proba_bird", lambda f: f["proba_bird"] + 0.01), DataError,
         ["pred.csv", "sum to 1", "1.01"]),
        ("negative", poke("proba_cat", -0.2), DataError,
         ["pred.csv", "[0, 1]", "-0.2", "proba_cat"]),
        ("above one", poke("proba_dog", 1.5), DataError,
         ["pred.csv", "[0, 1]", "1.5", "proba_dog"]),
        ("NaN", poke("proba_bird", np.nan), DataError,
         ["pred.csv", "NaN", "proba_bird"]),
        ("text probability", poke("proba_bird", "high"), DataError,
         ["pred.csv", "'proba_bird'", "'high'", "numbers"]),
        ("missing train column", drop("in_train"), DataError,
         ["pred.csv", "'in_train'", "train_column"]),
        ("train column not 0/1", poke("in_train", 2, rows=(0, 1)), DataError,
         ["pred.csv", "'in_train'", "0/1", "2", "2 rows"]),
        ("train column text", poke("in_train", "yes"), DataError,
         ["pred.csv", "'in_train'", "'yes'"]),
        ("no members", setcol("in_train", lambda f: 0), DataError,
         ["pred.csv", "'in_train'", "at least one training row"]),
        ("no non-members", setcol("in_train", lambda f: 1), DataError,
         ["pred.csv", "'in_train'", "non-member"]),
    ]


@pytest.mark.parametrize("case", _bad_cases(), ids=lambda c: c[0])
def test_bad_files_give_one_line_errors(multi, tmp_path, case):
    _, make, error, needles = case
    frame, _, _ = good_frame(multi)
    path = make(frame, tmp_path)
    with pytest.raises(error) as excinfo:
        read_predictions(path, multi)
    assert isinstance(excinfo.value, AssayError)
    one_line_error(excinfo, *needles)


def test_score_column_rejected_for_multiclass(multi, tmp_path):
    frame, _, _ = good_frame(multi)
    frame = frame.drop(columns=["proba_bird", "proba_cat", "proba_dog"]).assign(score=0.3)
    with pytest.raises(DataError) as excinfo:
        read_predictions(write(frame, tmp_path), multi)
    one_line_error(excinfo, "'score'", "binary", "3 classes", "proba_bird")


def test_score_out_of_range(binary, tmp_path):
    frame, probs, _ = good_frame(binary)
    frame = frame.drop(columns=["proba_no", "proba_yes"]).assign(score=probs[:, 1] * 2)
    with pytest.raises(DataError) as excinfo:
        read_predictions(write(frame, tmp_path), binary)
    one_line_error(excinfo, "'score'", "[0, 1]")


def test_sum_tolerance_is_1e3(multi, tmp_path):
    frame, _, _ = good_frame(multi)
    frame["proba_bird"] += 0.0009
    read_predictions(write(frame, tmp_path), multi)  # inside the tolerance
    frame["proba_bird"] += 0.0002
    with pytest.raises(DataError, match="sum to 1"):
        read_predictions(write(frame, tmp_path), multi)


def test_bad_train_column_parameter(multi, tmp_path):
    frame, _, _ = good_frame(multi)
    with pytest.raises(InvalidParameterError, match="train_column must be"):
        read_predictions(write(frame, tmp_path), multi, train_column="")


def test_target_predictions_validates_direct_construction():
    probs = np.full((4, 2), 0.5)
    with pytest.raises(InvalidParameterError, match="member must be a boolean array"):
        TargetPredictions(probs, np.array([1, 0, 1, 0]), "x")
    with pytest.raises(DataError, match="non-member"):
        TargetPredictions(probs, np.ones(4, bool), "x")
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        TargetPredictions(np.array([[1.5, -0.5]] * 4), np.array([1, 0, 1, 0], bool), "x")
    target = TargetPredictions(probs, np.array([1, 0, 1, 0], bool), "x")
    with pytest.raises(ValueError):
        target.probs[0, 0] = 1.0  # frozen arrays: plans and attacks share them


# --------------------------------------------------------------------------- estimators


def pipeline():
    encode = ColumnTransformer([("num", StandardScaler(), ["x"]),
                                ("cat", OneHotEncoder(handle_unknown="ignore"),
                                 ["colour", "sex"])])
    return make_pipeline(encode, LogisticRegression(max_iter=500))


def test_estimator_pipeline_on_the_raw_frame(multi):
    member = np.arange(multi.n_rows) % 5 < 2
    labels = np.asarray(multi.classes)[multi.y]
    model = pipeline().fit(multi.frame[member], labels[member])
    target = predictions_from_estimator(model, multi, member)
    np.testing.assert_allclose(target.probs, model.predict_proba(multi.frame), atol=1e-12)
    np.testing.assert_array_equal(target.member, member)
    assert target.source == "estimator Pipeline ending in LogisticRegression"


def test_estimator_classes_mapped_onto_dataset_order(tmp_path):
    dataset = Dataset.from_frame(table(labels=["no", "yes"]), "label", row_id="uid",
                                 positive="no")
    member = np.arange(dataset.n_rows) < 70
    labels = np.asarray(dataset.classes)[dataset.y]
    model = pipeline().fit(dataset.frame[member], labels[member])
    assert list(model.classes_) == ["no", "yes"] != list(dataset.classes)
    target = predictions_from_estimator(model, dataset, member)
    np.testing.assert_allclose(target.probs, model.predict_proba(dataset.frame)[:, ::-1])


def test_estimator_fitted_on_encoded_matrix_and_class_indices(multi):
    member = np.arange(multi.n_rows) % 2 == 0
    model = LogisticRegression(max_iter=500).fit(multi.X[member], multi.y[member])
    target = predictions_from_estimator(model, multi, member, X=multi.X)
    np.testing.assert_allclose(target.probs, model.predict_proba(multi.X))
    assert target.source == "estimator LogisticRegression"


def test_estimator_errors(multi):
    member = np.arange(multi.n_rows) % 2 == 0
    labels = np.asarray(multi.classes)[multi.y]
    fitted = pipeline().fit(multi.frame[member], labels[member])
    with pytest.raises(InvalidParameterError, match="must be fitted"):
        predictions_from_estimator(pipeline(), multi, member)
    with pytest.raises(InvalidParameterError, match="predict_proba"):
        predictions_from_estimator(object(), multi, member)
    with pytest.raises(InvalidParameterError, match="boolean array of length 120"):
        predictions_from_estimator(fitted, multi, member.astype(int))
    with pytest.raises(InvalidParameterError, match="boolean array of length 120"):
        predictions_from_estimator(fitted, multi, member[:-1])
    with pytest.raises(DataError, match="train_mask must mark at least one"):
        predictions_from_estimator(fitted, multi, np.zeros(multi.n_rows, bool))
    with pytest.raises(DataError, match="non-member"):
        predictions_from_estimator(fitted, multi, np.ones(multi.n_rows, bool))
    with pytest.raises(InvalidParameterError, match="one row per table row"):
        predictions_from_estimator(fitted, multi, member, X=multi.frame.iloc[:10])
    two = np.isin(labels, ["bird", "cat"]) & member
    partial = pipeline().fit(multi.frame[two], labels[two])
    with pytest.raises(DataError) as excinfo:
        predictions_from_estimator(partial, multi, member)
    one_line_error(excinfo, "classes_", "'dog'", "every class")


# --------------------------------------------------------------------------- reference plans


def target_of(n_rows, n_members, seed=0, n_classes=2):
    rng = np.random.default_rng(seed)
    member = np.zeros(n_rows, bool)
    member[rng.choice(n_rows, n_members, replace=False)] = True
    return TargetPredictions(rng.dirichlet(np.ones(n_classes), n_rows), member, "test")


@pytest.mark.parametrize("n_rows, n_members, k", [(1000, 500, 16), (1001, 300, 7),
                                                  (500, 450, 10), (64, 3, 5)])
def test_reference_plan_sizes_and_balance(n_rows, n_members, k):
    target = target_of(n_rows, n_members)
    plan = reference_plan(target, k, random_state=4)
    assert isinstance(plan, PopulationPlan)
    assert plan.member.shape == (k, n_rows)
    np.testing.assert_array_equal(plan.member.sum(axis=1), n_members)
    per_row = plan.member.sum(axis=0)
    expected = k * n_members / n_rows
    assert per_row.min() == np.floor(expected) and per_row.max() <= np.ceil(expected)
    assert plan.params == {"reference_for": "predictions", "train_size": n_members}
    assert len(set(plan.seeds.tolist())) == k
    # Subsets are random: references differ from each other and from the target.
    assert len({row.tobytes() for row in plan.member}) == k
    assert not any(np.array_equal(row, target.member) for row in plan.member)


def test_reference_plan_half_gives_complementary_pairs():
    plan = reference_plan(target_of(400, 200), 8, random_state=1)
    partners = complement_partners(plan.member)
    np.testing.assert_array_equal(partners, [1, 0, 3, 2, 5, 4, 7, 6])
    np.testing.assert_array_equal(plan.member.sum(axis=0), 4)


def test_reference_plan_is_seeded():
    target = target_of(300, 120)
    a, b = reference_plan(target, 6, 3), reference_plan(target, 6, 3)
    c = reference_plan(target, 6, 4)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
    with pytest.raises(InvalidParameterError, match="n_models must be an integer"):
        reference_plan(target, 1)
    with pytest.raises(InvalidParameterError, match="target must be a TargetPredictions"):
        reference_plan(PopulationPlan.balanced(10, 2), 4)


# --------------------------------------------------------------------------- attacking


def synthetic_case(k=16, n_rows=2000, seed=0, target_effect=1.5):
    """K references on balanced halves and a target on its own random half.

    Every model's true-label logit is the row's difficulty plus noise, lifted by 1.5 on
    its training rows (by `target_effect` for the target: 0 leaks nothing).
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n_rows)
    member = np.vstack([balanced_member(k, n_rows, rng), rng.random(n_rows) < 0.5])
    difficulty = rng.normal(0, 1.5, n_rows)
    noise = rng.uniform(0.3, 1.0, n_rows)
    lift = np.r_[np.full(k, 1.5), target_effect][:, None]
    phi = difficulty + lift * member + rng.normal(0, 1, member.shape) * noise
    p_true = 1 / (1 + np.exp(-phi))
    probs = np.stack([1 - p_true, p_true], axis=-1)
    probs = np.where(y[:, None] == 1, probs, probs[..., ::-1])  # columns in class order
    refs = Population(probs=probs[:k].astype(np.float32), member=member[:k], y=y)
    target = TargetPredictions(probs[k].astype(np.float32).astype(np.float64), member[k],
                               "synthetic")
    return refs, target


def scaled_logit(probs, y):
    """log p_y - log of the other classes' summed probability (binary: the other one)."""
    probs = np.clip(probs.astype(np.float64), 1e-7, 1)
    rows = np.arange(y.size)
    return np.log(probs[..., rows, y]) - np.log(probs[..., rows, 1 - y])


def oracle_lira(refs, target):
    """Online LiRA with one pooled variance, written out row by row from the paper."""
    phi = scaled_logit(refs.probs, refs.y)
    q = scaled_logit(target.probs, refs.y)
    ss, dof, mu = 0.0, 0.0, {}
    for side, mask in (("in", refs.member), ("out", ~refs.member)):
        values = [phi[mask[:, i], i] for i in range(refs.n_rows)]
        mu[side] = np.array([v.mean() for v in values])
        ss += sum(((v - v.mean()) ** 2).sum() for v in values)
        dof += sum(len(v) - 1 for v in values)
    var = ss / dof
    return -(q - mu["in"]) ** 2 / (2 * var) + (q - mu["out"]) ** 2 / (2 * var)


def oracle_rmia(refs, target):
    """Online RMIA with the N×N likelihood-ratio matrix (small N only)."""
    p = np.take_along_axis(refs.probs.astype(np.float64), refs.y[None, :, None], 2)[..., 0]
    px = 0.5 * (np.array([p[refs.member[:, i], i].mean() for i in range(refs.n_rows)])
                + np.array([p[~refs.member[:, i], i].mean() for i in range(refs.n_rows)]))
    ratio = target.probs[np.arange(target.n_rows), refs.y].astype(np.float32) / px
    z = ~target.member
    lr = ratio[:, None] / ratio[None, z]
    hits = (lr > 1.0).sum(axis=1)
    return hits / (z.sum() - z)


def test_attack_target_scores_match_oracles():
    refs, target = synthetic_case(k=8, n_rows=400, seed=2)
    result = attack_target(refs, target, attacks=("loss", "lira", "rmia"),
                           n_permutations=20)
    assert result.n_models == 9
    assert [int(t) for t in result.attacks["lira"].targets] == [8]
    lira = result.attacks["lira"].scores[0]
    np.testing.assert_allclose(lira, oracle_lira(refs, target), rtol=1e-6, atol=1e-6)
    rmia = result.attacks["rmia"].scores[0]
    # RMIA's shares, and ties broken by the ratio with less than half a share's gap.
    n_z = int((~target.member).sum())
    np.testing.assert_allclose(rmia, oracle_rmia(refs, target), atol=0.25 / n_z**2)
    pt = np.clip(target.probs[np.arange(target.n_rows), refs.y], 1e-7, 1)
    np.testing.assert_allclose(result.attacks["loss"].scores[0], np.log(pt), rtol=1e-6)
    assert result.config["target"] == target.summary()
    assert result.config["n_references"] == 8
    assert "8 reference models" in result.config["references"]


def test_attack_target_detects_memorisation_and_not_chance():
    refs, leaky = synthetic_case(seed=0)
    _, blind = synthetic_case(seed=0, target_effect=0.0)
    for attack in ("lira", "rmia"):
        auc = attack_target(refs, leaky, attacks=(attack,), n_permutations=20) \
            .attacks[attack].auc
        assert auc.ci_low > 0.65, auc
        null = attack_target(refs, blind, attacks=(attack,), n_permutations=20) \
            .attacks[attack].auc
        assert null.ci_low < 0.5 < null.ci_high, null


def test_attack_target_groups_and_row_ids():
    from sklearn.metrics import roc_auc_score

    refs, target = synthetic_case(k=8, n_rows=600, seed=5)
    sex = np.where(np.arange(600) % 2, "F", "M")
    row_ids = np.array([f"r{i}" for i in range(600)])
    result = attack_target(refs, target, attacks=("lira",), groups=pd.DataFrame({"sex": sex}),
                           row_ids=row_ids, n_permutations=20, n_records=5)
    attack = result.attacks["lira"]
    assert list(attack.groups) == ["sex"]
    # Group figures are the target's own: its AUC on the group's rows.
    found = attack.most_exposed_group
    rows = sex == found.label.removeprefix("sex=")
    assert found.auc.value == pytest.approx(
        roc_auc_score(target.member[rows], attack.scores[0][rows]), abs=1e-9)
    assert all(str(r.row_id).startswith("r") for r in attack.records)


def test_attack_target_rejects_mismatches():
    refs, target = synthetic_case(k=8, n_rows=400)
    other = TargetPredictions(target.probs[:300], target.member[:300], "short")
    with pytest.raises(DataError, match="references must cover the target's 300 rows"):
        attack_target(refs, other)
    with pytest.raises(InvalidParameterError, match="targets must not be given"):
        attack_target(refs, target, targets=[0])
    with pytest.raises(InvalidParameterError, match="n_targets must not be given"):
        attack_target(refs, target, n_targets=1)
    with pytest.raises(InvalidParameterError, match="references must be"):
        attack_target(refs.probs, target)
    with pytest.raises(InvalidParameterError, match="attacks must be one of"):
        attack_target(refs, target, attacks=("nope",))


def test_applicable_attacks_reads_reference_counts():
    refs, target = synthetic_case(k=16, n_rows=300)
    verdicts = applicable_attacks(refs, target)
    assert set(verdicts) == {"loss", "lira", "lira_offline", "rmia", "rmia_offline"}
    assert all(v["applies"] for v in verdicts.values())
    assert "pooled" in verdicts["lira"]["reason"]
    # Two references on halves: one IN per row, so online LiRA does not apply.
    few = Population(probs=refs.probs[:2], member=refs.member[:2], y=refs.y)
    verdicts = applicable_attacks(few, target)
    assert not verdicts["lira"]["applies"]
    assert "at least 2 IN" in verdicts["lira"]["reason"]
    assert not verdicts["lira_offline"]["applies"]
    assert verdicts["rmia"]["applies"] and verdicts["loss"]["applies"]
    with pytest.raises(DataError) as excinfo:
        attack_target(few, target, attacks=("loss", "lira"))
    one_line_error(excinfo, "online LiRA needs at least 2 IN", "lira_offline")
    # References that all train on the same rows leave some rows without OUT models.
    same = Population(probs=refs.probs[:4],
                      member=np.repeat(refs.member[:1], 4, axis=0), y=refs.y)
    verdicts = applicable_attacks(same, target)
    assert not verdicts["rmia"]["applies"] and not verdicts["rmia_offline"]["applies"]


def test_reference_note_describes_the_draw():
    plan = reference_plan(target_of(1000, 500), 16)
    note = reference_note(plan)
    assert "16 reference models" in note
    assert "a random 500 of the 1,000 rows" in note
    assert "as many as the audited model's training set" in note
    assert "IN for 8 references and OUT for 8" in note
    assert "complementary pairs" in note
    uneven = reference_note(reference_plan(target_of(1001, 300), 7))
    assert "IN for 2 to 3 references" in uneven and "complementary" not in uneven
    population = Population(probs=np.full((16, 1000, 2), 0.5, np.float32),
                            member=np.array(plan.member), y=np.zeros(1000, int),
                            info={"plan_params": dict(plan.params)})
    assert reference_note(population) == note
    with pytest.raises(InvalidParameterError, match="plan must be"):
        reference_note("plan")


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_repeated_or_unnamed_columns_are_refused_not_renamed(binary, tmp_path, suffix):
    # pandas would read "proba_yes,proba_yes" as proba_yes and proba_yes.1: the second
    # column would be silently ignored.
    frame, _, _ = good_frame(binary)
    frame.insert(1, "dup", frame["proba_yes"])
    columns = [("proba_yes" if c == "dup" else c) for c in frame.columns]
    path = tmp_path / f"pred{suffix}"
    frame.set_axis(columns, axis=1).to_csv(path, index=False)
    with pytest.raises(DataError, match="duplicate column names: 'proba_yes'"):
        read_predictions(path, binary)
    frame.to_csv(tmp_path / "unnamed.csv")  # with pandas' unnamed index column
    with pytest.raises(DataError, match="column without a name"):
        read_predictions(tmp_path / "unnamed.csv", binary)
