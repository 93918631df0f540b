"""The regression front's confirmed fix, exported: reloaded through the exact-type
allow-list it predicts exactly what the front's chosen candidate predicted on the rows
that confirmed it; a crafted file is refused; nothing is exported without a fix; the
audit writes the fix and its card beside the report."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pandas as pd
import pytest

from assay._validation import InvalidParameterError
from assay.fairness.export import load_model
from assay.fairness.fair_regressor import BarycenterFairRegressor
from assay.fairness.regression_export import (
    deployable_fix,
    group_columns,
    write_regression_fix,
)
from assay.fairness.regression_front import _split, build_regression_front, intersection_cells

FEATURES = ["x0", "x1", "x2"]
DATASET = {"name": "planted", "fingerprint": "abc123", "target": "y", "protected": ["sex"]}


def _planted(n: int, shift: float, seed: int = 0):
    """Features and a truth that ignore sex; the base model is fitted on a target that
    adds `shift` for women (planted), so its predictions do."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, 3)), columns=FEATURES)
    frame["sex"] = rng.choice(["F", "M"], n, p=[0.3, 0.7])
    women = (frame["sex"] == "F").to_numpy()
    y = frame[FEATURES].to_numpy() @ [1.0, 0.5, -0.3] + rng.normal(0, 0.5, n)
    rows = rng.permutation(n)
    train, held = np.sort(rows[: n // 2]), np.sort(rows[n // 2:])
    X = np.column_stack([frame[FEATURES].to_numpy(), women])
    base = HistGradientBoostingRegressor(max_iter=50, random_state=0).fit(
        X[train], (y + shift * women)[train])
    frame["female"] = women.astype(float)
    return frame, y, base, base.predict(X), train, held


def _front(frame, y, pred, train, held):
    # Fewer resamples of the choosing scores than the section's: the choice, not their
    # intervals, is what these tests read.
    return build_regression_front(y, pred, frame[["sex"]], train=train, held=held,
                                  min_rows=100, n_bootstrap=50)


@pytest.fixture(scope="module")
def planted():
    """A small planted table (cross-fitted, fixed) and its front."""
    frame, y, base, pred, train, held = _planted(1000, 1.0)
    return frame, y, base, pred, train, held, _front(frame, y, pred, train, held)


def _confirmation_rows(front, held, groups):
    if front.confirmed_by == "crossfit":
        return held
    return _split(held, intersection_cells(groups), 0)[1]


@pytest.mark.parametrize("n, confirmed_by", [
    (1000, "crossfit"), pytest.param(4000, "split", marks=pytest.mark.slow)])
@pytest.mark.parametrize("with_base", [True, False])
def test_the_reloaded_fix_predicts_what_the_front_chose(planted, tmp_path, n, confirmed_by,
                                                        with_base):
    if n == 1000:
        frame, y, base, pred, train, held, front = planted
    else:
        frame, y, base, pred, train, held = _planted(n, 1.0)
        front = _front(frame, y, pred, train, held)
    groups = frame[["sex"]]
    assert front.confirmed_by == confirmed_by and front.fixed, front.verdict.reason
    features = [*FEATURES, "female"] if with_base else None
    paths = write_regression_fix(front, tmp_path, dataset=DATASET,
                                 estimator=base if with_base else None, features=features,
                                 groups=["sex"])
    model = load_model(paths["model"])
    assert type(model) is BarycenterFairRegressor
    confirm = _confirmation_rows(front, held, groups)
    inputs = frame.iloc[confirm].copy()
    if not with_base:
        inputs["prediction"] = pred[confirm]
    chosen = front.preferred_candidate.values[np.searchsorted(held, confirm)]
    assert np.array_equal(model.predict(inputs), chosen)
    # The rows need not come together: one at a time gives the same answers.
    singly = np.concatenate([model.predict(inputs.iloc[[i]]) for i in range(5)])
    assert np.array_equal(singly, chosen[:5])


def test_the_card_states_the_fix_its_confirmed_figures_and_groups(planted, tmp_path):
    from assay.fairness.regression_front import _distance_estimate, _relative_estimate

    front = planted[-1]
    paths = write_regression_fix(front, tmp_path, dataset=DATASET)
    with open(paths["card"], encoding="utf-8") as file:
        card = file.read()
    comp = front.verdict.comparison
    assert front.preferred_candidate.name in card
    assert _distance_estimate(comp.difference, signed=True) in card
    assert _relative_estimate(comp.cost, signed=True) in card
    assert "| sex=F |" in card and "| sex=M |" in card
    assert "abc123" in card and "cross-fitted" in card


def test_no_fix_no_export(tmp_path):
    frame, y, base, pred, train, held = _planted(1000, 0.0)
    front = _front(frame, y, pred, train, held)
    assert not front.fixed
    with pytest.raises(InvalidParameterError, match="confirmed fix"):
        write_regression_fix(front, tmp_path, dataset=DATASET)
    assert not list(tmp_path.iterdir())


def _rewrite(path, out, old: str, new: str):
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    text = files["schema.json"].decode()
    assert old in text
    files["schema.json"] = text.replace(old, new).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    out.write_bytes(buffer.getvalue())
    return out


@pytest.mark.parametrize("old, new", [
    ('"__class__": "BarycenterFairRegressor"', '"__class__": "BarycenterPostprocessor"'),
    ('"__module__": "assay.fairness.fair_regressor"', '"__module__": "os"'),
])
def test_a_crafted_file_is_refused(planted, tmp_path, old, new):
    front = planted[-1]
    paths = write_regression_fix(front, tmp_path / "fix", dataset=DATASET)
    crafted = _rewrite(paths["model"], tmp_path / "crafted.skops", old, new)
    with pytest.raises(InvalidParameterError, match="naming"):
        load_model(crafted)


def test_group_columns_step_aside_from_features():
    assert group_columns(["sex", "age"], ["age", "duration"]) == ["sex", "age_group"]


@pytest.mark.slow
def test_the_audit_writes_a_confirmed_fix_beside_the_report(tmp_path):
    from assay.audit import AuditConfig, run_audit
    from assay.data import Dataset
    from assay.engine.predictions import RegressionTarget

    frame, y, base, pred, train, held = _planted(1000, 1.0)
    table = frame[[*FEATURES, "sex"]].assign(y=y)
    dataset = Dataset.from_frame(table, "y", ["sex"], task="regression")
    member = np.zeros(len(y), dtype=bool)
    member[train] = True
    target = RegressionTarget(values=pred, member=member, source="planted")
    config = AuditConfig(data="planted", target="y", protected=("sex",), models=4,
                         out=str(tmp_path / "out"), task="regression")
    result = run_audit(config, dataset=dataset, target=target, progress=False,
                       only="fairness")
    payload = result.sections["fairness"].data
    assert payload.front.fixed, payload.front.verdict.reason
    assert payload.exports == {"model": "fairness/model.skops",
                               "card": "fairness/model_card.md"}
    model = load_model(tmp_path / "out" / payload.exports["model"])
    inputs = frame.iloc[held][["sex"]].assign(prediction=pred[held])
    assert np.array_equal(model.predict(inputs), payload.front.preferred_candidate.values)
    saved = json.loads((tmp_path / "out" / "result.json").read_text())
    assert saved["sections"]["fairness"]["data"]["exports"] == payload.exports
    assert (tmp_path / "out" / payload.exports["card"]).is_file()
    # The report links both files, relative to its own folder.
    html = (tmp_path / "out" / "report.html").read_text()
    for kind in ("model", "card"):
        assert f'href="{payload.exports[kind]}"' in html


def test_deployable_fix_refuses_a_front_without_one():
    with pytest.raises(InvalidParameterError, match="confirmed fix"):
        deployable_fix(None)


@pytest.mark.slow
def test_assay_fair_exports_the_fix_of_a_regression_target(tmp_path, capsys):
    """`assay fair --export` on a continuous target: the audited ridge (population model
    0) and the fitted tables in one file; reloaded, it closes the gap between the sexes'
    predictions on the held-out rows that its base leaves open."""
    from scipy import stats

    from assay.cli import main
    from assay.data import Dataset

    rng = np.random.default_rng(0)
    n = 1000
    table = pd.DataFrame(rng.normal(size=(n, 3)), columns=FEATURES)
    table["sex"] = rng.choice(["F", "M"], n, p=[0.3, 0.7])
    # The truth differs by sex, so equal predictions cost error: allowed up to 50 %.
    table["y"] = (table[FEATURES].to_numpy() @ [1.0, 0.5, -0.3]
                  + 0.6 * (table["sex"] == "F") + rng.normal(0, 0.5, n))
    path = tmp_path / "planted.csv"
    table.to_csv(path, index=False)
    argv = ["fair", str(path), "--target", "y", "--protected", "sex"]
    assert main([*argv, "--export", str(tmp_path / "none")]) == 0
    assert "nothing written" in capsys.readouterr().out
    assert not (tmp_path / "none" / "model.skops").exists()
    out = tmp_path / "fix"
    assert main([*argv, "--max-cost", "0.5", "--export", str(out), "--json",
                 str(tmp_path / "fair.json")]) == 0
    front = json.loads((tmp_path / "fair.json").read_text())["fairness"]["front"]
    assert front["verdict"]["fixed"] and front["confirmed_by"] == "crossfit"
    model = load_model(out / "model.skops")
    assert type(model.estimator).__name__ == "Ridge"
    dataset = Dataset.from_path(path, "y", ["sex"], task="regression")
    inputs = pd.DataFrame(dataset.dense_X("test"), columns=dataset.feature_names)
    inputs["sex"] = table["sex"]
    women = (table["sex"] == "F").to_numpy()

    def ks(values):
        return stats.ks_2samp(values[women], values[~women]).statistic

    assert ks(model.predict(inputs)) < 0.5 * ks(model.base_predictions(inputs))
    card = (out / "model_card.md").read_text(encoding="utf-8")
    assert front["verdict"]["reason"] in card
