"""Audits at scale (issue 15): streamed attack figures equal the in-memory ones, and a
large synthetic table with tens of thousands of levels audits within its memory budget."""

from __future__ import annotations

import json

import numpy as np
import pytest

from assay.engine import PopulationPlan, fit_population
from assay.groups import GroupIndex
from assay.learners import get_learner
from assay.privacy.membership import vulnerability as vuln
from assay.privacy.membership.attacks import attack_scores
from assay.privacy.membership.estimates import TargetCurves, membership_statistic
from assay.privacy.membership.mia import run_mia
from assay.privacy.membership.records import membership_effect, most_exposed_records
from assay.privacy.membership.vulnerability import group_figures, stream_figures

FPRS = (0.1, 0.01, 0.001)


def assert_close(a, b, path=""):
    """Nested JSON-like values equal, floats to 1e-12 (a mean over targets may take its
    terms in another order once they come from several blocks)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), path
        for key in a:
            assert_close(a[key], b[key], f"{path}/{key}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_close(x, y, f"{path}/{i}")
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-12, abs=1e-12), path
    else:
        assert a == b, path


@pytest.fixture(scope="module")
def synthetic_population():
    """A real population: 12 logistic regressions on the planted synthetic table."""
    from assay.data import load

    ds = load("synthetic", n_rows=3000)
    plan = PopulationPlan.balanced(ds.n_rows, 12, random_state=0)
    pop = fit_population(ds.X, ds.y, get_learner("logreg"), plan, n_classes=ds.n_classes,
                         progress=False)
    return ds, pop, GroupIndex.from_frame(ds.groups)


@pytest.mark.parametrize("attack", ["loss", "lira", "rmia"])
@pytest.mark.parametrize("block_cells", [1, 3000 * 5, 3000 * 7 + 11])
def test_streamed_figures_equal_one_in_memory_sort(synthetic_population, attack, block_cells):
    ds, pop, index = synthetic_population
    scores = attack_scores(pop, attack)
    member = pop.member
    levels = np.r_[FPRS, np.logspace(-3, 0, 20)]
    streamed = stream_figures(scores, member, levels, index=index, group_fprs=FPRS,
                              record_fpr=0.1, block_cells=block_cells)
    curves = TargetCurves(scores, member)  # every target at once
    np.testing.assert_array_equal(streamed.auc, curves.auc())
    np.testing.assert_array_equal(streamed.tp, curves.counts_at(levels)[0])
    np.testing.assert_array_equal(streamed.n_neg, curves.n_neg)
    # Per-row sums only change order across blocks.
    np.testing.assert_allclose(streamed.statistic, membership_statistic(curves, member),
                               rtol=0, atol=1e-12)
    effect = membership_effect(scores, member, curves.thresholds([0.1])[:, 0])
    for got, want in zip(streamed.effect, effect, strict=True):
        np.testing.assert_array_equal(got, want)
    in_memory = group_figures(curves, index, FPRS, min_support=20)
    assert_close({k: v.to_dict() for k, v in streamed.group_figures(
        index, FPRS, min_support=20).items()}, {k: v.to_dict() for k, v in in_memory.items()})
    records = most_exposed_records(scores, member, ds.row_ids, index, 15, fpr=0.1,
                                   curves=curves)
    assert len(records) == 15
    # The same ranking of (effect, statistic); rows whose statistics tie to 1e-16 may
    # swap, so each listed row is checked against the in-memory figures of that row.
    got = streamed.records(ds.row_ids, index, 15)
    stat = membership_statistic(curves, member)
    row = {str(r): i for i, r in enumerate(ds.row_ids)}
    for mine, theirs in zip(got, records, strict=True):
        assert mine.effect == theirs.effect
        assert mine.statistic == pytest.approx(theirs.statistic, abs=1e-12)
        i = row[mine.row_id]
        assert (mine.effect, mine.n_in) == (effect[0][i], effect[3][i])
        assert mine.statistic == pytest.approx(stat[i], abs=1e-12)


def test_run_mia_streamed_over_blocks_equals_one_block(synthetic_population, monkeypatch):
    ds, pop, index = synthetic_population
    kwargs = dict(attacks=("loss", "lira", "rmia"), groups=index, row_ids=ds.row_ids,
                  n_permutations=50, min_support=20)
    whole = run_mia(pop, **kwargs)
    two_targets = {**vuln.stream_figures.__kwdefaults__, "block_cells": 2 * pop.n_rows + 1}
    monkeypatch.setattr(vuln.stream_figures, "__kwdefaults__", two_targets)
    blocks = run_mia(pop, **kwargs)
    a, b = whole.to_dict(), blocks.to_dict()
    assert_close(json.loads(json.dumps(a)), json.loads(json.dumps(b)))
    assert any(attack["flagged_groups"] for attack in a["attacks"].values())
    for name in a["attacks"]:
        np.testing.assert_allclose(blocks.attacks[name].statistic,
                                   whole.attacks[name].statistic, atol=1e-12)


def test_block_memory_does_not_grow_with_targets():
    """The sorted curves of a block, not of all targets, are alive at once."""
    import tracemalloc

    rng = np.random.default_rng(0)
    n_rows = 20_000
    peaks = []
    for n_targets in (8, 32):
        scores = rng.normal(size=(n_targets, n_rows))
        member = rng.random((n_targets, n_rows)) < 0.5
        tracemalloc.start()
        stream_figures(scores, member, FPRS, record_fpr=0.1, block_cells=4 * n_rows)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    # 4x the targets: the input grows 4x but the working set stays one block's.
    assert peaks[1] < 1.3 * peaks[0], peaks
    # A block's curves and temporaries: well under 100 bytes a cell of the block.
    assert peaks[1] < 4 * n_rows * 100, peaks


def test_mia_cli_names_the_budget_and_the_cap_that_fixes_it(tmp_path, capsys):
    from assay.cli import main
    from assay.data.synthetic import make_synthetic

    table = tmp_path / "loans.csv"
    make_synthetic(6000).to_csv(table, index=False)
    argv = ["mia", str(table), "--target", "approved", "--protected", "sex,region",
            "--models", "6", "--permutations", "0", "--no-progress",
            "--attacks", "loss", "--memory-budget", "0.01", "--sparse", "false"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "6,000 rows x" in err and "GiB" not in err[:40]
    cap = int(err.split("--max-categories ")[1].split(")")[0])
    out = tmp_path / "mia.json"
    assert main([*argv, "--max-categories", str(cap), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["data"]["n_rows"] == 6000
    assert result["privacy"]["mia"]["attacks"]["loss"]["auc"]["value"] > 0.5
    assert main([*argv[:-4], "--min-frequency", "0"]) == 2
    assert "--min-frequency must be" in capsys.readouterr().err


@pytest.mark.slow
def test_400k_row_synthetic_table_audits_within_the_default_budget():
    """The issue's table (three columns with ~32,000 levels each): a one-line error when
    dense is asked for, then audited end to end with the one-hot capped. (The default
    layout stores it sparse: test_sparse_encoding.)"""
    from assay._validation import DataError
    from assay.data import load

    with pytest.raises(DataError, match=r"400,000 rows x 96,0\d\d features"):
        load("synthetic", n_rows=400_000, sparse=False)
    ds = load("synthetic", n_rows=400_000, max_categories=64)
    assert ds.X.dtype == np.float32 and ds.X.nbytes < 2 * 2**30
    plan = PopulationPlan.balanced(ds.n_rows, 6, random_state=0)
    pop = fit_population(ds.X, ds.y, get_learner("logreg"), plan, n_classes=ds.n_classes,
                         progress=False)
    result = run_mia(pop, groups=GroupIndex.from_frame(ds.groups), row_ids=ds.row_ids,
                     n_permutations=20)
    assert set(result.attacks) == {"loss", "lira", "rmia"}
    # Every attack's figures are read off its scores (kept at this size): each target's
    # AUC equals scikit-learn's on the same scores and memberships.
    from sklearn.metrics import roc_auc_score

    for attack in result.attacks.values():
        assert attack.scores is not None and attack.scores.shape == (6, ds.n_rows)
        for t in (0, 5):
            assert attack.per_target_auc[t] == pytest.approx(
                roc_auc_score(pop.member[t], attack.scores[t]), abs=1e-9)
        assert attack.auc.ci_low <= attack.auc.value <= attack.auc.ci_high
    json.dumps(result.to_dict())


def test_blocks_computed_ahead_keep_their_order_errors_and_stop_early():
    import threading

    from assay.engine.runners import ahead

    def items(fail_at=None):
        for i in range(6):
            if i == fail_at:
                raise ValueError(f"block {i}")
            yield i

    with ahead(items()) as early:
        assert list(early) == list(range(6))
    seen = []
    with pytest.raises(ValueError, match="block 3"), ahead(items(fail_at=3)) as early:
        for i in early:
            seen.append(i)
    assert seen == [0, 1, 2]  # everything before the failing block, in order
    before = threading.active_count()
    with ahead(items()) as early:
        assert next(iter(early)) == 0  # the caller leaves after one block
    assert threading.active_count() == before  # the producer thread has ended
