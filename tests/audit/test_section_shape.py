"""One shape for every section: the shared skeleton, one group policy, options parsed once,
one backend vocabulary and one bisection."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from assay._validation import InvalidParameterError
from assay.section import registered_sections
from assay.section.base import SectionBase, load_attribute

BUILT_IN = ("privacy", "fairness", "multiplicity", "attribute", "distribution", "release", "dp",
            "synthetic")


def test_built_in_sections_share_the_skeleton():
    sections = {s.name: s for s in registered_sections()}
    for name in BUILT_IN:
        section = sections[name]
        assert isinstance(section, SectionBase)
        assert section.payload_type is load_attribute(section.payload)
        schema = section.payload_schema
        assert isinstance(schema, dict) and schema  # read once, from its package or code


def test_registering_the_sections_imports_no_work():
    code = ("import sys; from assay.section import registered_sections; "
            "registered_sections(); "
            "work = [m for m in ('numpy', 'assay.fairness.run', 'assay.privacy.membership.run', "
            "'assay.multiplicity.run', 'assay.privacy.training.run', 'assay.synth.run') "
            "if m in sys.modules]; print(work); sys.exit(1 if work else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_load_attribute_needs_a_colon():
    with pytest.raises(ValueError, match="module:name"):
        load_attribute("assay.fairness.run")


def test_group_policy_carries_the_rule_support_and_permutations():
    from assay.audit.config import GroupOptions
    from assay.groups import FlagRule, GroupPolicy

    policy = GroupOptions(min_support=30, alpha=0.01, n_permutations=99).policy
    fair = policy.for_section(0.1, "less")
    assert fair.flag_rule == FlagRule(alpha=0.01, min_difference=0.1, direction="less")
    assert fair.test_options() == {"flag_rule": fair.flag_rule, "min_support": 30,
                                   "n_permutations": 99}
    assert policy.min_support == 30 and policy.n_permutations == 99
    with pytest.raises(InvalidParameterError, match="direction"):
        GroupPolicy(direction="up")


def test_risk_target_is_parsed_once_into_a_typed_value():
    from assay.privacy.membership.section import PrivacyOptions
    from assay.privacy.theory.calibrate import TPRAtFPR
    from assay.privacy.training.section import DPOptions

    options = PrivacyOptions(risk_target="tpr@fpr=0.02@0.001")
    assert options.risk == TPRAtFPR(0.02, 0.001)
    assert options.risk is options.risk  # cached: no second parse
    assert "risk" not in options.to_dict()
    dp = DPOptions(risk_target="epsilon=2", delta=1e-6)
    assert dp.risk.value == 2.0 and dp.risk.delta == 1e-6
    with pytest.raises(InvalidParameterError, match="risk_target"):
        PrivacyOptions(risk_target="tpr@fpr=0.5")


def test_one_backend_vocabulary():
    from assay.audit.config import AuditConfig
    from assay.engine.backends import BACKENDS, check_backend_name
    from assay.engine.fit import engine_options
    from assay.engine.runners import check_backend

    assert BACKENDS == ("batched", "joblib", "dask")
    for backend in BACKENDS:
        assert check_backend_name(backend) == backend
    assert check_backend_name("local") == "batched"  # the scoring's old spelling
    assert AuditConfig(data="synthetic", backend="local").backend == "batched"
    assert engine_options("local")["backend"] == "batched"
    check_backend("batched", None)  # the scoring reads the same names
    with pytest.raises(InvalidParameterError, match="'batched', 'joblib', 'dask'"):
        check_backend_name("spark", "--backend")


def test_largest_meeting_is_safe_and_tight():
    from assay.privacy.theory.calibrate import SEARCH_MAX, SEARCH_XTOL, largest_meeting

    for root in (1e-6, 0.3, 1.0, 7.25, 40.0, 63.9):
        lo, hi, n = largest_meeting(lambda x, r=root: x <= r)
        assert lo <= root < hi and hi - lo <= SEARCH_XTOL
        assert n > 0
    lo, hi, n = largest_meeting(lambda x: True)
    assert lo == hi == SEARCH_MAX and n == 7  # 1, 2, ..., 64
    assert math.log2(SEARCH_MAX).is_integer()  # the doubling bracket lands on it


def test_calibrations_share_the_bisection():
    from assay.privacy.theory.accounting import approximate_dp
    from assay.privacy.theory.calibrate import SEARCH_XTOL, Advantage, calibrate_gaussian
    from assay.privacy.training.onerun import epsilon_lower_bound, p_value
    from assay.privacy.training.train import epsilon_for_target

    target = Advantage(0.2)
    res = calibrate_gaussian(target)
    assert res.achieved <= 0.2 and res.bracket[0] - res.bracket[1] <= SEARCH_XTOL
    eps = epsilon_for_target(target, 1e-5)
    assert target.measure(approximate_dp(eps, 1e-5)) <= 0.2
    assert target.measure(approximate_dp(eps + SEARCH_XTOL, 1e-5)) > 0.2
    eps = epsilon_lower_bound(100, 90, 1000)
    assert p_value(eps, 100, 90, 1000) < 0.05 <= p_value(eps + SEARCH_XTOL, 100, 90, 1000)
