"""Multiplicity maths: Rashomon capacity, per-row metrics, ε-Rashomon sets and churn."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from assay._validation import DataError, InvalidParameterError
from assay.groups import FlagRule, GroupIndex
from assay.multiplicity import (
    Candidates,
    ambiguity,
    discrepancy,
    multiplicity_curve,
    predictive_churn,
    rashomon_capacity,
    rashomon_plan,
    row_metrics,
    self_consistency,
    viable_prediction_range,
)
from assay.multiplicity.metrics import blahut_arimoto
from assay.multiplicity.rashomon import check_epsilons, held_out_losses, rashomon_sets
from assay.multiplicity.section import MultiplicityOptions


def _scipy_capacity(P: np.ndarray) -> float:
    """2^C by an independent maximisation of the mutual information (SLSQP on the simplex)."""
    m = P.shape[0]

    def negative_information(w):
        w = np.clip(w, 0, None)
        w = w / w.sum()
        q = w @ P
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(P > 0, P * np.log(P / q[None, :]), 0.0)
        return -float((w[:, None] * terms).sum())

    best = np.inf
    for start in (np.full(m, 1.0 / m), np.eye(m)[0] * 0.5 + 0.5 / m):
        res = minimize(negative_information, start, method="SLSQP", bounds=[(0, 1)] * m,
                       constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}],
                       options={"ftol": 1e-15, "maxiter": 2000})
        best = min(best, res.fun)
    return float(np.exp(-best))


# --------------------------------------------------------------------------- capacity


@pytest.mark.parametrize("method", ["auto", "blahut_arimoto"])
def test_capacity_of_identical_scores_is_one(method):
    scores = np.tile([0.2, 0.5, 0.3], (6, 1))
    assert rashomon_capacity(scores, method=method) == pytest.approx(1.0, abs=1e-9)
    binary = np.tile([0.3, 0.7], (4, 1))
    assert rashomon_capacity(binary, method=method) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("m, c", [(2, 2), (2, 5), (3, 3), (3, 5), (4, 6)])
def test_capacity_of_distinct_one_hot_vectors_is_min_m_c(m, c):
    scores = np.eye(c)[:m]
    assert rashomon_capacity(scores) == pytest.approx(min(m, c), abs=1e-6)
    assert rashomon_capacity(scores, method="blahut_arimoto") == pytest.approx(min(m, c),
                                                                              abs=1e-6)
    # Repeating models adds no capacity.
    assert rashomon_capacity(np.vstack([scores, scores])) == pytest.approx(min(m, c), abs=1e-6)


@pytest.mark.parametrize("m, c, seed", [(2, 2, 0), (5, 2, 1), (3, 3, 2), (5, 3, 3),
                                        (4, 4, 4), (7, 5, 5), (6, 2, 6)])
def test_capacity_matches_an_independent_scipy_maximisation(m, c, seed):
    P = np.random.default_rng(seed).dirichlet(np.ones(c), size=m)
    expected = _scipy_capacity(P)
    assert rashomon_capacity(P, method="blahut_arimoto") == pytest.approx(expected, abs=1e-6)
    assert rashomon_capacity(P) == pytest.approx(expected, abs=1e-6)
    assert 1.0 <= expected <= min(m, c) + 1e-9


def test_capacity_is_vectorised_over_rows():
    rng = np.random.default_rng(7)
    scores = rng.dirichlet(np.ones(3), size=(5, 40))  # (models, rows, classes)
    together = rashomon_capacity(scores)
    assert together.shape == (40,)
    one_by_one = np.array([rashomon_capacity(scores[:, i]) for i in range(40)])
    np.testing.assert_allclose(together, one_by_one, atol=1e-9)
    binary = rng.dirichlet(np.ones(2), size=(9, 60))
    np.testing.assert_allclose(rashomon_capacity(binary, method="exact"),
                               rashomon_capacity(binary, method="blahut_arimoto"), atol=1e-6)


def test_blahut_arimoto_with_weights_restricts_the_channel():
    rng = np.random.default_rng(3)
    P = rng.dirichlet(np.ones(3), size=(10, 5))  # (rows, inputs, outputs)
    keep = rng.random((10, 5)) < 0.6
    keep[:, 0] = True
    restricted = blahut_arimoto(P, weights=keep.astype(float))
    for i in range(10):
        assert np.exp(restricted[i]) == pytest.approx(_scipy_capacity(P[i][keep[i]]), abs=1e-6)


def test_capacity_rejects_bad_scores():
    with pytest.raises(DataError, match="sum to 1"):
        rashomon_capacity(np.array([[0.2, 0.2], [0.5, 0.5]]))
    with pytest.raises(DataError, match="shape"):
        rashomon_capacity(np.ones(3))
    with pytest.raises(InvalidParameterError, match="method"):
        rashomon_capacity(np.eye(3), method="exact")


# --------------------------------------------------------------------------- per row


def test_row_metrics_by_hand():
    # 4 models, 3 rows, binary; baseline decides 1, 0, 1.
    p1 = np.array([[0.9, 0.4, 0.6],
                   [0.8, 0.6, 0.4],
                   [0.7, 0.3, 0.45],
                   [0.6, 0.2, 0.55]])
    probs = np.stack([1 - p1, p1], axis=-1)
    baseline = np.array([[0.2, 0.8], [0.7, 0.3], [0.4, 0.6]])
    metrics = row_metrics(probs, baseline)
    np.testing.assert_array_equal(metrics.flip, [False, True, True])
    np.testing.assert_array_equal(metrics.n_reversing, [0, 1, 2])
    np.testing.assert_allclose(metrics.vpr, [0.3, 0.4, 0.2])
    np.testing.assert_allclose(metrics.score_std, p1.std(axis=0))
    # Self-consistency 1 - 2 B0 B1 / (B (B - 1)) with B = 4.
    np.testing.assert_allclose(metrics.self_consistency, [1.0, 1 - 2 * 3 / 12, 1 - 2 * 4 / 12])
    np.testing.assert_allclose(self_consistency(probs), metrics.self_consistency)
    np.testing.assert_allclose(viable_prediction_range(probs), metrics.vpr)
    assert ambiguity(probs, baseline) == pytest.approx(2 / 3)
    # Model 1 reverses row 1, models 2 and 3... model 1 (0.4) and model 2 (0.45) reverse row 2.
    assert discrepancy(probs, baseline) == pytest.approx(2 / 3)
    assert metrics.capacity[0] > 1.0 and metrics.capacity.shape == (3,)


def test_ambiguity_is_at_least_discrepancy_on_random_sets():
    rng = np.random.default_rng(11)
    for _ in range(20):
        m, n = rng.integers(2, 12), rng.integers(5, 60)
        probs = rng.dirichlet(np.ones(3), size=(m, n))
        baseline = rng.dirichlet(np.ones(3), size=n)
        assert ambiguity(probs, baseline) >= discrepancy(probs, baseline) - 1e-12


# --------------------------------------------------------------------------- sets and curves


def _random_candidates(seed: int, n_models: int = 24, n_rows: int = 400, n_classes: int = 2):
    """Candidates whose scores spread around a common signal; rows 0..n/2 held out
    (fewer rows with more classes: Blahut–Arimoto per bootstrap resample)."""
    n_rows = n_rows if n_classes == 2 else 120
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=(n_rows, n_classes))
    logits = signal[None] + rng.normal(scale=rng.uniform(0.1, 0.8, size=(n_models, 1, 1)),
                                       size=(n_models, n_rows, n_classes))
    probs = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)
    y = (signal + rng.normal(scale=0.7, size=signal.shape)).argmax(axis=1)
    heldout = np.zeros(n_rows, dtype=bool)
    heldout[: n_rows // 2] = True
    member = np.zeros((n_models, n_rows), dtype=bool)
    member[:, n_rows // 2:] = True
    return Candidates(probs=probs.astype(np.float32), member=member, y=y, heldout=heldout)


@pytest.mark.parametrize("seed, n_classes", [(0, 2), (1, 2), (2, 3)])
def test_figures_grow_monotonically_with_epsilon(seed, n_classes):
    candidates = _random_candidates(seed, n_classes=n_classes)
    n = candidates.y.shape[0]
    groups = GroupIndex.from_frame(__import__("pandas").DataFrame({"g": np.arange(n) % 3}))
    epsilons = (0.002, 0.01, 0.03, 0.1, 0.3, 1.0)
    curve = multiplicity_curve(candidates, epsilons, groups=groups,
                               n_bootstrap=20 if n_classes == 2 else 5, min_support=10,
                               n_permutations=50, headline_epsilon=0.1, capacity_iter=500)
    figures = [f for f in curve.epsilons if f.ambiguity is not None]
    assert len(figures) >= 3
    for name in ("ambiguity", "discrepancy", "mean_capacity", "mean_vpr"):
        values = [getattr(f, name).value for f in figures]
        assert all(b >= a - 1e-9 for a, b in zip(values, values[1:])), (name, values)
    sizes = [f.n_models for f in curve.epsilons]
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0]
    for f in figures:
        assert f.ambiguity.value >= f.discrepancy.value - 1e-12
        assert f.ambiguity.ci_low <= f.ambiguity.value <= f.ambiguity.ci_high
        assert 1.0 <= f.mean_capacity.value <= min(f.n_models, n_classes)
        # Group figures grow too (same rows, nested sets).
    for key in curve.epsilons[-1].groups:
        for label in curve.epsilons[-1].groups[key]:
            values = [f.groups[key][label].ambiguity.value for f in figures]
            assert all(b >= a - 1e-9 for a, b in zip(values, values[1:]))


def test_sets_are_relative_to_the_best_held_out_loss():
    losses = np.array([0.50, 0.503, 0.51, 0.60])
    in_set, thresholds = rashomon_sets(losses, [0.01, 0.05], tolerance="relative")
    np.testing.assert_array_equal(in_set, [[True, True, False, False],
                                           [True, True, True, False]])
    np.testing.assert_allclose(thresholds, [0.505, 0.525])
    in_set, _ = rashomon_sets(losses, [0.01], tolerance="absolute")
    np.testing.assert_array_equal(in_set[0], [True, True, True, False])
    probs = np.array([[[0.9, 0.1], [0.2, 0.8]]])
    assert held_out_losses(probs, np.array([0, 1]))[0] == pytest.approx(-np.log([0.9, 0.8]).mean())
    assert held_out_losses(probs, np.array([1, 1]), "error")[0] == pytest.approx(0.5)


@pytest.mark.parametrize("bad", [0, -0.1, [], [0.01, 0.0], float("nan")])
def test_epsilon_must_be_positive(bad):
    with pytest.raises(InvalidParameterError, match="must"):
        check_epsilons(bad)
    with pytest.raises(InvalidParameterError, match="multiplicity.epsilons"):
        MultiplicityOptions(epsilons=bad if isinstance(bad, list) else (bad,))
    with pytest.raises(InvalidParameterError):
        multiplicity_curve(_random_candidates(0, n_models=4), bad)


def test_fewer_than_two_models_is_reported_not_raised():
    candidates = _random_candidates(5, n_models=6)
    # A tolerance far below the loss spread: the best candidate alone.
    curve = multiplicity_curve(candidates, (1e-9, 1.0), tolerance="absolute", n_bootstrap=10,
                               headline_epsilon=1e-9)
    alone = curve.epsilons[0]
    assert alone.n_models == 1 and alone.ambiguity is None
    assert "only 1 model" in alone.note
    assert alone.reason.startswith("not measurable at this epsilon")
    full = curve.epsilons[1]
    assert full.n_models == 6
    # The whole pool: the share of held-out rows where some model decides otherwise than
    # the one of least held-out log loss.
    probs = candidates.probs[:, candidates.rows].astype(float)
    y = candidates.y[candidates.rows]
    log_loss = -np.log(np.take_along_axis(probs, y[None, :, None], axis=2)[..., 0]).mean(axis=1)
    decisions = probs.argmax(axis=2)
    reversed_rows = (decisions != decisions[np.argmin(log_loss)]).any(axis=0)
    assert full.ambiguity.value == pytest.approx(reversed_rows.mean())
    from assay.multiplicity.run import summary_lines

    class _Payload:  # summary of a headline without a set
        headline = alone
        epsilons = curve.epsilons
        tolerance, loss, n_heldout = "absolute", "log_loss", 200

    lines = summary_lines(_Payload)
    assert "not measurable at this epsilon" in lines[0]
    assert "Measured at ε = 1" in lines[1]


def test_rashomon_plan_never_trains_on_the_held_out_rows():
    heldout = np.zeros(100, dtype=bool)
    heldout[::4] = True
    plan = rashomon_plan(100, 10, heldout=heldout, subsample=0.5, random_state=1)
    assert not plan.member[:, heldout].any()
    np.testing.assert_array_equal(plan.member.sum(axis=1), np.full(10, 38))
    assert len({row.tobytes() for row in plan.member}) == 10  # different subsamples
    random = rashomon_plan(200, 3, holdout=0.25, subsample=1.0, random_state=2)
    assert (~random.member.any(axis=0)).sum() == 50
    assert (random.member.sum(axis=1) == 150).all()
    with pytest.raises(InvalidParameterError, match="subsample"):
        rashomon_plan(100, 2, subsample=0)
    with pytest.raises(InvalidParameterError, match="heldout"):
        Candidates(probs=np.full((1, 4, 2), 0.5, np.float32), member=np.ones((1, 4), bool),
                   y=np.zeros(4, int), heldout=np.array([True, False, False, False]))


def test_audited_model_is_the_baseline_and_must_not_have_seen_held_out_rows():
    candidates = _random_candidates(3)
    n = candidates.y.shape[0]
    target = candidates.probs[0].astype(np.float64)
    curve = multiplicity_curve(candidates, (0.05,), target=target, n_bootstrap=0)
    head = curve.headline
    assert head.target_in_set and head.n_models >= 2
    flips = (candidates.probs[:, candidates.heldout].argmax(2)
             != target[candidates.heldout].argmax(1))
    assert head.discrepancy.value <= flips.mean(axis=1).max() + 1e-12
    # A much worse model is flagged as outside its own set, and figures still come.
    worse = np.full((n, 2), 0.5)
    worse[:, 0] = 0.99
    worse[:, 1] = 0.01
    curve = multiplicity_curve(candidates, (0.01,), target=worse, n_bootstrap=0)
    assert not curve.headline.target_in_set
    assert "not within" in curve.headline.note
    with pytest.raises(DataError, match="shape"):
        multiplicity_curve(candidates, (0.01,), target=np.full((n - 1, 2), 0.5))

    class Seen:
        probs = target
        member = np.ones(n, dtype=bool)

    with pytest.raises(DataError, match="held-out"):
        multiplicity_curve(candidates, (0.01,), target=Seen())


def test_group_flags_follow_the_flag_rule():
    rng = np.random.default_rng(0)
    n_models, n_rows = 20, 1200
    arbitrary = np.arange(n_rows) % 4 == 0  # group "a": a quarter of the rows, near 0.5
    p1 = np.where(arbitrary, 0.5, 0.9)[None, :] + rng.normal(0, 0.08, (n_models, n_rows))
    p1 = np.clip(p1, 0.01, 0.99)
    probs = np.stack([1 - p1, p1], -1).astype(np.float32)
    heldout = np.ones(n_rows, dtype=bool)
    candidates = Candidates(probs=probs, member=np.zeros((n_models, n_rows), bool),
                            y=np.ones(n_rows, int), heldout=heldout)
    import pandas as pd

    groups = GroupIndex.from_frame(pd.DataFrame({"g": np.where(arbitrary, "a", "b")}))
    rule = FlagRule(min_difference=0.05)
    curve = multiplicity_curve(candidates, (1.0,), groups=groups, flag_rule=rule,
                               n_bootstrap=30, n_permutations=100, min_support=20)
    figures = curve.headline.groups["g"]
    assert figures["g=a"].flagged and not figures["g=b"].flagged
    assert figures["g=a"].ambiguity.value > 0.5 > figures["g=b"].ambiguity.value
    assert figures["g=a"].n_reversed == int(round(figures["g=a"].ambiguity.value * 300))
    # The same gap is not flagged when the rule asks for more than it.
    strict = multiplicity_curve(candidates, (1.0,), groups=groups,
                                flag_rule=FlagRule(min_difference=0.9), n_bootstrap=0,
                                n_permutations=100, min_support=20)
    assert not strict.headline.groups["g"]["g=a"].flagged


# --------------------------------------------------------------------------- churn


def test_churn_between_two_versions():
    import pandas as pd

    a = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.7, 0.3]])
    b = np.array([[0.6, 0.4], [0.6, 0.4], [0.1, 0.9], [0.2, 0.8]])
    groups = GroupIndex.from_frame(pd.DataFrame({"sex": ["F", "F", "M", "M"]}))
    result = predictive_churn(a, b, y=np.array([0, 1, 1, 0]), groups=groups,
                              row_ids=np.array([10, 11, 12, 13]))
    assert result.n_flipped == 2 and result.churn.value == pytest.approx(0.5)
    assert result.churn.ci_low < 0.5 < result.churn.ci_high
    assert result.flipped_row_ids == [11, 13]
    assert result.transitions == [[1, 1], [1, 1]]
    assert result.bound == pytest.approx(0.0 + 0.5)  # A errs nowhere, B on 2 of 4
    assert result.groups["sex"]["sex=F"]["n_flipped"] == 1
    assert result.to_dict()["groups"]["sex"]["sex=M"]["churn"]["value"] == pytest.approx(0.5)
    with pytest.raises(DataError, match="shape"):
        predictive_churn(a, b[:3])


# --------------------------------------------------------------------------- sets of one


def _one_plus_outsider(seed: int = 7):
    """Candidates whose best loss is well apart from the rest, and an audited model far
    worse than all: at a small ε the set is the best candidate alone."""
    candidates = _random_candidates(seed, n_models=8)
    n = candidates.y.shape[0]
    worse = np.empty((n, 2))
    worse[:, 0], worse[:, 1] = 0.9, 0.1
    return candidates, worse


def test_a_set_of_one_model_has_no_figures_and_says_from_which_epsilon():
    candidates, worse = _one_plus_outsider()
    losses = held_out_losses(candidates.probs[:, candidates.heldout],
                             candidates.y[candidates.heldout])
    ordered = np.sort(losses)
    gap = ordered[1] / ordered[0] - 1  # relative ε at which the second candidate joins
    assert gap > 1e-4
    small = gap / 2
    curve = multiplicity_curve(candidates, (small, gap * 1.001), target=worse, n_bootstrap=5,
                               headline_epsilon=small)
    alone, pair = curve.epsilons
    # The audited model is outside; one candidate is in: a "set" of one model.
    assert alone.n_models == 1 and not alone.target_in_set
    for name in ("ambiguity", "discrepancy", "mean_capacity", "mean_vpr", "churn"):
        assert getattr(alone, name) is None, name
    assert alone.reason.startswith("not measurable at this epsilon")
    assert curve.min_measurable_epsilon == pytest.approx(gap)
    from assay.multiplicity.rashomon import _eps_text

    assert f"from ε = {_eps_text(gap)}" in alone.reason
    assert pair.n_models >= 2 and pair.ambiguity is not None and pair.reason is None
    d = alone.to_dict()
    assert d["ambiguity"] is None and d["reason"] == alone.reason
    assert type(alone).from_dict(d).reason == alone.reason


def test_the_printed_smallest_epsilon_gives_two_models():
    from assay.multiplicity.rashomon import _eps_text, smallest_measurable_epsilon

    losses = np.array([0.41523, 0.41727, 0.5])
    for tolerance in ("relative", "absolute"):
        e = smallest_measurable_epsilon(losses, 0.41523, tolerance)
        printed = float(_eps_text(e))
        in_set, _ = rashomon_sets(losses, [printed], tolerance=tolerance)
        assert in_set[0].sum() == 2, tolerance
        in_set, _ = rashomon_sets(losses, [e * 0.99], tolerance=tolerance)
        assert in_set[0].sum() == 1, tolerance
    assert smallest_measurable_epsilon(np.array([0.4]), 0.4, "relative") is None


def _dataset_for(candidates, n_groups=2):
    from types import SimpleNamespace

    import pandas as pd

    n = candidates.y.shape[0]
    return SimpleNamespace(groups=pd.DataFrame({"g": np.arange(n) % n_groups}),
                           classes=np.array([0, 1]))


@pytest.mark.parametrize("outsider", [False, True])
def test_summary_groups_and_records_count_the_same_decisions(outsider):
    from assay.multiplicity.run import build_payload, summary_lines

    candidates, worse = _one_plus_outsider()
    n = candidates.y.shape[0]
    groups = GroupIndex.from_frame(__import__("pandas").DataFrame({"g": np.arange(n) % 2}))
    options = MultiplicityOptions(n_records=15)
    if outsider:  # headline set of one model: nothing counted anywhere
        losses = held_out_losses(candidates.probs[:, candidates.heldout],
                                 candidates.y[candidates.heldout])
        ordered = np.sort(losses)
        eps = (ordered[1] / ordered[0] - 1) / 2
        curve = multiplicity_curve(candidates, (eps, 0.5), target=worse, groups=groups,
                                   n_bootstrap=5, min_support=10, n_permutations=20,
                                   headline_epsilon=eps)
    else:
        curve = multiplicity_curve(candidates, (0.05,), groups=groups, n_bootstrap=5,
                                   min_support=10, n_permutations=20)
    payload = build_payload(curve, candidates, _dataset_for(candidates), worse if outsider
                            else None, options)
    head = payload.headline
    lines = summary_lines(payload)
    if outsider:
        assert head.ambiguity is None and payload.records == []
        assert head.groups == {} and "not measurable at this epsilon" in lines[0]
        assert sum(payload.capacity_histogram["counts"]) == 0
        return
    assert head.n_reversed > options.n_records  # the list is cut, not empty
    assert head.ambiguity.value == pytest.approx(head.n_reversed / payload.n_heldout)
    assert f"({head.n_reversed:,} decisions)" in lines[0]
    assert sum(g.n_reversed for g in head.groups["g"].values()) == head.n_reversed
    reversed_listed = [r for r in payload.records if r["reversal_share"] > 0]
    assert len(reversed_listed) == options.n_records
    # Listed first: the decisions the most models reverse.
    shares = np.sort(curve.reversal_share)[::-1][:options.n_records]
    np.testing.assert_allclose([r["reversal_share"] for r in payload.records], shares)
