"""Dataclass <-> JSON <-> JSON Schema derived from the types (`assay._serial`)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import jsonschema
import numpy as np
import pytest

from assay._serial import Serial, from_json, json_schema, meta, to_json
from assay._stats import Estimate
from assay._validation import InvalidParameterError


@dataclass
class Inner(Serial):
    value: float
    label: str | None = None


@dataclass
class Outer(Serial):
    n: int
    ratio: float
    kind: Literal["a", "b"]
    inner: Inner
    maybe: Inner | None = None
    items: list[Inner] = field(default_factory=list)
    pair: tuple[float, float] = (0.0, 0.0)
    shape: tuple[int, ...] = ()
    by_name: dict[str, Inner] = field(default_factory=dict)
    by_rate: dict[float, float] = field(default_factory=dict)
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    mask: np.ndarray | None = field(default=None, metadata=meta(dtype=bool))
    p_value: float | None = field(default=None, metadata=meta(null_nan=True))
    extra: Any = None
    json_name: str = field(default="", metadata=meta(key="renamed"))
    model: Any = field(default=None, metadata=meta(skip=True))
    shout: str = field(default="", metadata=meta(encode=str.upper, decode=str.lower))


def _outer() -> Outer:
    return Outer(n=np.int64(3), ratio=np.float32(0.25), kind="b", inner=Inner(np.nan, "x"),
                 maybe=None, items=[Inner(1.0), Inner(2.5, "y")], pair=(0.5, np.inf),
                 shape=(2, 3), by_name={"k": Inner(0.1)}, by_rate={0.01: 0.5, 0.1: 0.25},
                 scores=np.array([0.5, np.nan]), mask=np.array([True, False]),
                 p_value=float("nan"), extra={"a": np.float64(1.5), "b": (1, 2)},
                 json_name="j", model=object(), shout="loud")


def test_writes_plain_json_in_field_order():
    d = to_json(_outer())
    assert list(d) == ["n", "ratio", "kind", "inner", "maybe", "items", "pair", "shape",
                       "by_name", "by_rate", "scores", "mask", "p_value", "extra", "renamed",
                       "shout"]
    assert type(d["n"]) is int and type(d["ratio"]) is float
    assert math.isnan(d["inner"]["value"])  # NaN stays NaN unless the field says null_nan
    assert d["pair"] == [0.5, math.inf] and d["shape"] == [2, 3]
    assert d["by_rate"] == {"0.01": 0.5, "0.1": 0.25}
    assert d["mask"] == [True, False] and type(d["mask"][0]) is bool
    assert d["p_value"] is None
    assert d["extra"] == {"a": 1.5, "b": [1, 2]} and type(d["extra"]["a"]) is float
    assert d["shout"] == "LOUD"
    json.dumps(d)  # plain Python values only


def test_reads_back_what_it_writes():
    x = _outer()
    back = Outer.from_dict(json.loads(json.dumps(to_json(x))))
    assert back.n == 3 and back.kind == "b" and back.json_name == "j"
    assert math.isnan(back.inner.value) and back.inner.label == "x"
    assert back.items == x.items and back.by_name == x.by_name
    assert back.pair == (0.5, math.inf) and back.shape == (2, 3)
    assert back.by_rate == {0.01: 0.5, 0.1: 0.25}
    assert back.scores.dtype == np.float64 and np.isnan(back.scores[1])
    assert back.mask.dtype == bool and back.mask.tolist() == [True, False]
    assert back.p_value is None  # written as null
    assert back.model is None and back.shout == "loud"
    assert json.dumps(to_json(back)) == json.dumps(to_json(x))


def test_null_reads_as_nan_and_missing_fields_take_their_defaults():
    back = from_json(Outer, {"n": 1, "ratio": None, "kind": "a", "inner": {"value": None}})
    assert math.isnan(back.ratio) and math.isnan(back.inner.value)
    assert back.items == [] and back.pair == (0.0, 0.0) and back.mask is None
    with pytest.raises(KeyError):
        from_json(Outer, {"n": 1})


def test_layout_writes_computed_keys_that_are_not_read_back():
    @dataclass
    class Spread(Serial):
        values: list[float]
        __json_layout__ = (("max", lambda s: max(s.values)), "values", "count")

        @property
        def count(self) -> int:
            return len(self.values)

    d = Spread([1.0, 3.0]).to_dict()
    assert d == {"max": 3.0, "values": [1.0, 3.0], "count": 2}
    assert Spread.from_dict(d) == Spread([1.0, 3.0])
    assert json_schema(Spread)["required"] == ["max", "values", "count"]


def test_schema_accepts_what_is_written_and_is_strict_on_types():
    schema = json_schema(Outer, title="outer")
    assert schema["$schema"].endswith("2020-12/schema") and "Inner" in schema["$defs"]
    props = schema["properties"]
    assert props["kind"] == {"enum": ["a", "b"]}
    assert props["ratio"] == {"type": ["number", "null"]}
    assert props["maybe"] == {"anyOf": [{"$ref": "#/$defs/Inner"}, {"type": "null"}]}
    assert props["pair"]["minItems"] == 2 and "model" not in props
    assert schema["required"] == ["n", "ratio", "kind", "inner"]
    from assay.report.result import json_clean

    written = json_clean(to_json(_outer()))  # NaN as null, as in result.json
    jsonschema.Draft202012Validator(schema).validate(written)
    bad = dict(written, kind="c")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(dict(written, n=1.5), schema)


def test_estimate_keeps_its_error_for_a_bad_mapping():
    assert Estimate.from_dict({"value": 1, "ci_low": None, "ci_high": 2}).ci_high == 2.0
    with pytest.raises(InvalidParameterError, match="estimate must be a mapping"):
        Estimate.from_dict({"value": 1})
    with pytest.raises(InvalidParameterError, match="estimate must be a mapping"):
        Estimate.from_dict({"value": "x", "ci_low": 0, "ci_high": 1})


# --------------------------------------------------------------------------- generated schemas


def test_checked_in_schemas_are_those_of_the_payload_types():
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "schemas.py"
    done = subprocess.run([sys.executable, str(script), "--check"], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr


def test_a_real_fairness_payload_matches_its_generated_schema():
    from _helpers import fairness_table
    from assay.fairness.metrics import fairness_metrics, gap_spread
    from assay.fairness.run import FairnessPayload
    from assay.groups import FlagRule
    from assay.report.result import json_clean
    from assay.section import get_section

    _, y, A = fairness_table(1500)
    rng = np.random.default_rng(0)
    pred = (rng.random(len(y)) < 0.5).astype(int)
    report = fairness_metrics(y, pred, A, scores=rng.random(len(y)), n_bootstrap=20,
                              flag_rule=FlagRule(0.05, 0.02, "less"), n_permutations=20)
    decisions = (rng.random((3, len(y))) < 0.5).astype(int)
    spread = gap_spread(report, y, decisions, rng.random((3, len(y))) < 0.5, A)
    payload = FairnessPayload(report=report, constraint="eo", flag_rule=FlagRule(),
                              target={"source": "test"}, spread=spread)
    written = json_clean(payload.to_dict())
    schema = get_section("fairness").payload_schema  # the checked-in, generated file
    jsonschema.Draft202012Validator(schema).validate(written)
    with pytest.raises(jsonschema.ValidationError):  # as strict as the hand-written one
        jsonschema.validate({**written, "constraint": "parity"}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({k: v for k, v in written.items() if k != "exports"}, schema)
    back = FairnessPayload.from_dict(json.loads(json.dumps(written)))
    assert json_clean(back.to_dict()) == written


# --------------------------------------------------------------------------- class flags


@dataclass(frozen=True)
class Given(Serial):
    epsilon: float | None = None
    steps: int | None = None
    pair: tuple[float, ...] = ()
    __json_plain__ = True
    __json_omit_none__ = True


def test_plain_class_writes_and_reads_numbers_as_given_and_omits_none():
    d = Given(epsilon=2, pair=(np.float64(0.5), 1)).to_dict()
    assert d == {"epsilon": 2, "pair": [0.5, 1]}
    assert type(d["epsilon"]) is int and type(d["pair"][0]) is float  # no float(2)
    back = Given.from_dict(d)
    assert back == Given(epsilon=2, pair=(0.5, 1)) and type(back.epsilon) is int
    assert Given.from_dict({}) == Given() and Given().to_dict() == {"pair": []}
    assert json_schema(Given)["required"] == []


@dataclass
class Run(Serial):
    label: str
    epsilon: float = field(metadata=meta(null_nan=True,
                                         decode=lambda v: math.inf if v is None else v))
    fits: list[Inner] = field(default_factory=list, metadata=meta(null_nan=True))
    fpr: list[float] = field(default_factory=list, metadata=meta(key=("roc", "fpr")))
    tpr: list[float] = field(default_factory=list, metadata=meta(key=("roc", "tpr")))
    rates: dict[float, float] = field(default_factory=dict)
    __json_layout__ = ("label", "epsilon", ("rates", lambda r: {format(k, "g"): 2 * v
                                                                for k, v in r.rates.items()}),
                       "fits", "fpr", "tpr")
    __json_required__ = ("roc",)


def test_nested_keys_a_getter_over_a_field_and_null_nan_inside_nested_payloads():
    run = Run("a", math.inf, [Inner(np.nan, "x")], [0.1, 1.0], [0.2, 1.0], {0.01: 0.25})
    d = run.to_dict()
    assert d == {"label": "a", "epsilon": None, "rates": {"0.01": 0.5},
                 "fits": [{"value": None, "label": "x"}],
                 "roc": {"fpr": [0.1, 1.0], "tpr": [0.2, 1.0]}}
    back = Run.from_dict(d)  # the getter's key is the field's: read back as written
    assert back.epsilon == math.inf and back.fpr == [0.1, 1.0] and back.rates == {0.01: 0.5}
    assert Run.from_dict({"label": "b", "epsilon": 1.0}).fpr == []  # no roc: defaults
    schema = json_schema(Run)
    assert schema["required"] == ["label", "epsilon", "rates", "roc"]
    assert schema["properties"]["roc"] == {
        "type": "object", "required": ["fpr", "tpr"],
        "properties": {"fpr": {"type": "array", "items": {"type": ["number", "null"]}},
                       "tpr": {"type": "array", "items": {"type": ["number", "null"]}}}}
    assert schema["properties"]["rates"]["additionalProperties"] == {"type": ["number", "null"]}
    from assay.report.result import json_clean

    jsonschema.Draft202012Validator(schema).validate(json_clean(d))


@dataclass
class Wrapper(Serial):
    inner: Any = field(metadata=meta(hint=lambda: Inner))
    __json_unwrap__ = "inner"


def test_unwrapped_payload_is_its_fields_json():
    w = Wrapper(Inner(0.5, "y"))
    assert w.to_dict() == {"value": 0.5, "label": "y"}
    assert Wrapper.from_dict(w.to_dict()) == w
    schema = json_schema(Wrapper)
    assert schema["required"] == ["value"] and "$defs" not in schema

    @dataclass
    class Holder(Serial):
        w: Wrapper

    assert json_schema(Holder)["properties"]["w"] == {"$ref": "#/$defs/Inner"}


def test_serial_imports_no_numpy():
    import subprocess
    import sys

    code = "import sys, assay._serial, assay.section; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


@dataclass
class Loose(Serial):
    task: str = "classification"
    n: int = 0
    __json_variants__ = ("task", {"regression": lambda: Strict})


@dataclass
class Strict(Loose):
    scale: float = 1.0


def test_variants_read_as_their_own_type():
    assert Loose.from_dict({"n": 2}) == Loose(n=2)
    back = Loose.from_dict({"task": "regression", "n": 2, "scale": 0.5})
    assert type(back) is Strict and back == Strict("regression", 2, 0.5)
    assert Strict.from_dict({"task": "regression"}) == Strict("regression")  # no loop


def test_a_named_class_refuses_what_it_does_not_write():
    from assay.groups import FlagRule

    assert FlagRule.from_dict({"alpha": 0.01}) == FlagRule(alpha=0.01)
    with pytest.raises(InvalidParameterError, match="flag rule must be a mapping. Got list"):
        FlagRule.from_dict([0.05])
    with pytest.raises(InvalidParameterError, match=r"flag rule keys must be among 'alpha', "
                       r"'min_difference', 'direction'. Got \['x'\]"):
        FlagRule.from_dict({"alpha": 0.05, "x": 1})
    with pytest.raises(InvalidParameterError, match="alpha"):  # its own check, unchanged
        FlagRule.from_dict({"alpha": 2.0})
