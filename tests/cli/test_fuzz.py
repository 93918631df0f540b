"""Hostile input, generated: every file a user can hand to assay works or is one error line.

For tables, audit.toml files, result files and predictions files, hypothesis writes
arbitrary (often malformed) content; the property is always the same: the command
either gets past its checks or exits with status 2 and one ``error:`` line; no
traceback, whatever the input. Training is replaced by a sentinel (the checks are what
is under test), so each example costs milliseconds.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assay._validation import AssayError
from assay.cli import main

FUZZ = settings(max_examples=15, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class _Trained(Exception):
    """Raised instead of training: the run got past every check."""


def _no_training(*args, **kwargs):
    raise _Trained


def _run_cli(argv: list[str]) -> tuple[object, str]:
    """Exit status (or "trained") and stderr of ``assay <argv>``; any other exception fails."""
    err = io.StringIO()
    with mock.patch("assay.engine.fit_population", _no_training), \
            contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except _Trained:
            code = "trained"
    return code, err.getvalue()


def _assert_one_line_or_ok(code, err: str, allowed=(0, "trained")) -> None:
    assert "Traceback" not in err
    if code in allowed:
        return
    assert code == 2, (code, err)
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err


# --------------------------------------------------------------------------- tables

_names = st.sampled_from(["a", "b", "y", "sex", "", " ", "a", "café", "x,y", 'q"t', "1"])
_cells = st.one_of(
    st.integers(-5, 5).map(str), st.floats(allow_nan=True).map(repr),
    st.sampled_from(["", "NA", "?", "inf", "-inf", "M", "F", "é", "True", "1e400"]),
    st.text(max_size=4))


@st.composite
def _tables(draw) -> tuple[bytes, str]:
    header = draw(st.lists(_names, min_size=1, max_size=5))
    n_rows = draw(st.integers(0, 6))
    rows = [[draw(_cells) for _ in range(draw(st.sampled_from([len(header), len(header),
                                                                 len(header) + 1, 1])))]
            for _ in range(n_rows)]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    text = buffer.getvalue()
    encoding = draw(st.sampled_from(["utf-8", "latin-1", "utf-16", "raw"]))
    if encoding == "raw":
        content = draw(st.binary(max_size=80))
    else:
        content = text.encode(encoding, errors="replace")
    return content, draw(st.sampled_from([*header, "y", "missing"]))


@FUZZ
@given(table=_tables(), encoding=st.sampled_from([None, "utf-8", "latin-1", "nope"]),
       protected=st.sampled_from([None, "sex", "a,a", "y"]))
def test_any_table_is_read_or_one_error_line(table, encoding, protected):
    content, target = table
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.csv"
        path.write_bytes(content)
        argv = ["audit", str(path), "--target", target, "--out", str(Path(folder) / "o"),
                "--quiet", "--models", "4", "--attacks", "loss"]
        if encoding:
            argv += ["--encoding", encoding]
        if protected:
            argv += ["--protected", protected]
        code, err = _run_cli(argv)
    _assert_one_line_or_ok(code, err)


@settings(FUZZ, max_examples=60)
@given(table=_tables())
def test_any_table_builds_a_dataset_or_raises_assay_error(table):
    from assay.data import Dataset

    content, target = table
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.csv"
        path.write_bytes(content)
        try:
            dataset = Dataset.from_path(path, target)
        except AssayError:
            return
    assert dataset.n_rows >= 2 and len(set(dataset.feature_names)) == dataset.n_features


# --------------------------------------------------------------------------- configs

_SHARED = ["data", "target", "protected", "learner", "models", "out", "backend", "seed",
           "n_rows", "predictions", "train_column", "encoding", "colour"]
_PRIVACY = ["attacks", "fprs", "risk_target", "noise_grid", "min_gap", "n_records",
            "dp_noise_multiplier", "dp_sample_rate", "dp_steps", "dp_epsilon", "dp_delta",
            "dp"]
_GROUPS = ["min_support", "alpha", "n_permutations", "max_intersection", "beta"]
_scalars = st.one_of(
    st.integers(-3, 40), st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.booleans(), st.sampled_from(["synthetic", "loss", "lira", "nope", "", "approved",
                                    "tpr@fpr=0.01@0.001", "advantage=2", "foo", "logreg",
                                    "dask", "sklearn:os.system", "utf-8", "rot13"]))
_values = st.one_of(_scalars, st.lists(_scalars, max_size=3))


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") \
            if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(value)  # a TOML basic string


def _toml(top: dict, tables: dict) -> str:
    lines = [f"{key} = {_toml_value(value)}" for key, value in top.items()]
    for name, table in tables.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in table.items()]
    return "\n".join(lines) + "\n"


@FUZZ
@given(top=st.dictionaries(st.sampled_from(_SHARED), _values, max_size=5),
       privacy=st.dictionaries(st.sampled_from(_PRIVACY), _values, max_size=4),
       groups=st.dictionaries(st.sampled_from(_GROUPS), _values, max_size=3),
       learner=st.dictionaries(st.sampled_from(["name", "C", "max_iter", "hidden", "nope"]),
                               _values, max_size=3),
       garbage=st.one_of(st.none(), st.binary(max_size=30)))
def test_any_config_is_accepted_or_one_error_line(top, privacy, groups, learner, garbage):
    top = {"data": "synthetic", "n_rows": 300, **top}
    with tempfile.TemporaryDirectory() as folder:
        top["out"] = str(Path(folder) / "o") if top.get("out") in (None, "synthetic") \
            else top["out"]
        tables = {name: table for name, table in
                  (("privacy", privacy), ("groups", groups), ("learner", learner)) if table}
        if "learner" in tables:
            top.pop("learner", None)  # a key and a table of one name is invalid TOML
        path = Path(folder) / "audit.toml"
        path.write_bytes(garbage if garbage is not None else _toml(top, tables).encode())
        code, err = _run_cli(["audit", "--config", str(path), "--quiet"])
    _assert_one_line_or_ok(code, err)


# --------------------------------------------------------------------------- result files


@pytest.fixture(scope="module")
def result_payload(tmp_path_factory):
    """A real result.json (privacy section on a planted population; no training)."""
    import types

    from _helpers import balanced_member
    from assay.audit import AuditConfig, AuditContext
    from assay.engine import Population
    from assay.privacy.membership.section import SECTION, PrivacyOptions
    from assay.report.result import AuditResult, Metric, SectionResult

    rng = np.random.default_rng(0)
    n_models, n_rows = 4, 200
    member = balanced_member(n_models, n_rows, rng)
    p = 1 / (1 + np.exp(-(rng.normal(0, 1, (n_models, n_rows)) + member)))
    y = rng.integers(0, 2, n_rows)
    probs = np.stack([np.where(y == 0, p, 1 - p), np.where(y == 1, p, 1 - p)], -1)
    population = Population(probs=probs.astype(np.float32), member=member, y=y)
    options = PrivacyOptions(attacks=("loss", "rmia"), noise_grid=(1.0, 3.0),
                             dp_epsilon=2.0, dp_delta=1e-5)
    config = AuditConfig(data="synthetic", models=n_models, sections={"privacy": options})
    groups = pd.DataFrame({"sex": rng.choice(["F", "M"], n_rows)})
    from assay.groups import GroupIndex

    context = AuditContext(config=config, population=population,
                           dataset=types.SimpleNamespace(row_ids=np.arange(n_rows)),
                           groups=GroupIndex.from_frame(groups))
    privacy = SECTION.run(context, options)
    other = SectionResult(name="extra", title="Extra", summary=["a finding"],
                          metrics={"gap": Metric(0.1, 0.0, 0.2, "gap")}, data={"k": [1]})
    result = AuditResult(config=config.to_dict(),
                         data={"name": "t", "n_rows": n_rows, "target": "y",
                               "protected": ["sex"], "fingerprint": "abc"},
                         population={"n_models": n_models}, sections={"privacy": privacy,
                                                                      "extra": other})
    return result.to_dict()


def _paths(value, prefix=()):
    """Every (path, value) inside a JSON value, depth-first."""
    yield prefix, value
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value[:3]):
            yield from _paths(child, (*prefix, i))


_json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
              st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=5),
              st.sampled_from(["ok", "error", "skipped", "<script>", "loss"])),
    lambda children: st.one_of(st.lists(children, max_size=3),
                               st.dictionaries(st.text(max_size=4), children, max_size=3)),
    max_leaves=6)


@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow,
                                 HealthCheck.function_scoped_fixture])
@given(data=st.data(), action=st.sampled_from(["replace", "delete", "truncate"]))
def test_any_result_file_renders_gates_or_one_error_line(result_payload, data, action):
    payload = json.loads(json.dumps(result_payload))
    paths = [p for p, _ in _paths(payload) if p]
    where = data.draw(st.sampled_from(paths))
    parent = payload
    for key in where[:-1]:
        parent = parent[key]
    if action == "delete" and isinstance(parent, dict):
        del parent[where[-1]]
    else:
        parent[where[-1]] = data.draw(_json_values)
    text = json.dumps(payload)
    if action == "truncate":
        text = text[:data.draw(st.integers(0, len(text)))]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "result.json"
        path.write_text(text)
        code, err = _run_cli(["report", str(path), "--out", str(Path(folder) / "r.html")])
        _assert_one_line_or_ok(code, err)
        code, err = _run_cli(["gate", str(path), "--max", "auc=0.9", "--min", "gap=0"])
        _assert_one_line_or_ok(code, err, allowed=(0, 1, 3))


# --------------------------------------------------------------------------- predictions

_PRED_COLUMNS = ["row_id", "proba_0", "proba_1", "score", "in_train", "proba_2", "junk"]
_pred_cells = st.one_of(st.sampled_from(["0", "1", "0.5", "", "nan", "2", "-1", "x", "1e9",
                                         "true", "007"]),
                        st.floats(allow_nan=True).map(repr))


@st.composite
def _prediction_files(draw, n_rows: int) -> bytes:
    columns = draw(st.lists(st.sampled_from(_PRED_COLUMNS), min_size=1, max_size=5))
    rows = draw(st.sampled_from([n_rows, n_rows, 0, 3, n_rows + 1]))
    lines = [",".join(columns)]
    for i in range(rows):
        cells = [str(i) if c == "row_id" and draw(st.booleans()) else draw(_pred_cells)
                 for c in columns]
        lines.append(",".join(cells))
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture(scope="module")
def small_dataset():
    from assay.data import Dataset

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=8), "y": [0, 1] * 4})
    return Dataset.from_frame(frame, "y")


@settings(max_examples=80, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow,
                                 HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_predictions_file_is_read_or_raises_assay_error(small_dataset, data):
    from assay.engine.predictions import read_predictions

    content = data.draw(st.one_of(_prediction_files(8), st.binary(max_size=60)))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pred.csv"
        path.write_bytes(content)
        try:
            target = read_predictions(path, small_dataset)
        except AssayError as exc:
            assert "\n" not in str(exc)
            return
    assert target.probs.shape == (8, 2) and np.allclose(target.probs.sum(axis=1), 1)
    assert np.isfinite(target.probs).all() and target.member.any() and not target.member.all()
