"""Membership inference against regression models (assay.privacy.membership.regression)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.linear_model import Ridge
from sklearn.metrics import roc_auc_score
from sklearn.tree import DecisionTreeRegressor

from assay._validation import DataError, InvalidParameterError
from assay.engine import PopulationPlan
from assay.learners.ridge import fit_ridge
from assay.privacy.membership import regression as reg


def _tiny(seed=0, k=6, n=7):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n)
    preds = y + rng.normal(scale=0.5, size=(k, n))
    member = rng.random((k, n)) < 0.5
    # Row 0: one IN reference; row 1: none (the pooled and overall fallbacks).
    member[:, 0] = False
    member[2, 0] = True
    member[:, 1] = False
    target_pred = y + rng.normal(scale=0.4, size=n)
    return preds, member, target_pred, y


# ---------------------------------------------------------------- LOSS


def test_loss_scores_equal_direct_errors():
    _, _, tp, y = _tiny()
    direct = [-(p - t) ** 2 for p, t in zip(tp.tolist(), y.tolist())]
    np.testing.assert_allclose(reg.loss_scores(tp, y), direct, rtol=0, atol=1e-15)
    np.testing.assert_allclose(reg.loss_scores(tp, y, error="absolute"),
                               [-abs(p - t) for p, t in zip(tp.tolist(), y.tolist())])
    with pytest.raises(InvalidParameterError):
        reg.loss_scores(tp, y, error="huber")
    with pytest.raises(DataError):
        reg.loss_scores(tp[:-1], y)


# ---------------------------------------------------------------- LiRA oracle


def _oracle_fits(resid, side, floor, fixed=False):
    """Per-row Gaussian fits written out row by row (sample variance, pooled fallback;
    `fixed`: the pooled variance at every row)."""
    k, n = resid.shape
    values = [[resid[j, i] for j in range(k) if side[j, i]] for i in range(n)]
    ss, dof = 0.0, 0
    for v in values:
        if len(v) >= 2:
            m = sum(v) / len(v)
            ss += sum((x - m) ** 2 for x in v)
            dof += len(v) - 1
    every = [x for v in values for x in v]
    # No row with two values: the spread of all of them (none: the floor).
    pooled = ss / dof if dof else (float(np.var(every)) if len(every) > 1 else floor)
    fits = []
    for v in values:
        mean = sum(v) / len(v) if v else (sum(every) / len(every) if every else 0.0)
        var = (sum((x - mean) ** 2 for x in v) / (len(v) - 1)) if len(v) >= 2 else pooled
        fits.append((mean, max(pooled if fixed else var, floor)))
    return fits


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("variance", ["per_row", "fixed"])
def test_lira_equals_row_by_row_oracle(seed, variance):
    # No reference fits a row exactly: Carlini et al.'s Gaussian LiRA.
    preds, member, tp, y = _tiny(seed)
    floor = 1e-6 * float(np.var(y))
    resid = preds - y
    fin = _oracle_fits(resid, member, floor, fixed=variance == "fixed")
    fout = _oracle_fits(resid, ~member, floor, fixed=variance == "fixed")
    online, offline = [], []
    for i in range(y.size):
        r = tp[i] - y[i]
        (mi, vi), (mo, vo) = fin[i], fout[i]
        # Carlini et al. online: likelihood ratio of IN vs OUT Gaussians.
        online.append(stats.norm.logpdf(r, mi, math.sqrt(vi))
                      - stats.norm.logpdf(r, mo, math.sqrt(vo)))
        # Offline: p-value of an OUT residual at least as close to zero.
        s = math.sqrt(vo)
        p = stats.norm.cdf((abs(r) - mo) / s) - stats.norm.cdf((-abs(r) - mo) / s)
        offline.append(-math.log(p))
    np.testing.assert_allclose(reg.lira_scores(preds, member, tp, y, variance=variance),
                               online, rtol=1e-10)
    np.testing.assert_allclose(reg.lira_scores(preds, member, tp, y, online=False,
                                               variance=variance),
                               offline, rtol=1e-9, atol=1e-12)
    # Fewer than 64 references: "auto" is the fixed variance.
    if variance == "fixed":
        np.testing.assert_array_equal(reg.lira_scores(preds, member, tp, y),
                                      reg.lira_scores(preds, member, tp, y, variance="fixed"))


def test_lira_variance_auto_switches_to_per_row_at_64_references():
    rng = np.random.default_rng(7)
    y = rng.normal(size=30)
    member = PopulationPlan.balanced(30, reg.PER_ROW_VARIANCE_FROM, 0).member
    preds = y + rng.normal(scale=0.5, size=member.shape)
    tp = y + rng.normal(scale=0.4, size=30)
    for k, variance in [(reg.PER_ROW_VARIANCE_FROM, "per_row"),
                        (reg.PER_ROW_VARIANCE_FROM - 2, "fixed")]:
        auto = reg.lira_scores(preds[:k], member[:k], tp, y)
        np.testing.assert_array_equal(
            auto, reg.lira_scores(preds[:k], member[:k], tp, y, variance=variance))
    assert not np.allclose(reg.lira_scores(preds, member, tp, y, variance="fixed"),
                           reg.lira_scores(preds, member, tp, y, variance="per_row"))
    with pytest.raises(InvalidParameterError):
        reg.lira_scores(preds, member, tp, y, variance="pooled")


def test_lira_exact_fit_atom_equals_direct_computation():
    """Zero-inflated fits written out row by row: the atom's probability is the row's
    share of exact fits shrunk by one pseudo-reference at the side's overall share, the
    Gaussian (fixed variance) fitted to the other residuals."""
    rng = np.random.default_rng(8)
    k, n = 8, 12
    y = rng.normal(size=n)
    member = PopulationPlan.balanced(n, k, 2).member
    # Memorising references (IN residual 0); OUT references exact at rows 0-2 now and then.
    preds = np.where(member, y, y + rng.normal(scale=1.0, size=(k, n)))
    preds[:, :3] = np.where(rng.random((k, 3)) < 0.4, y[:3], preds[:, :3])
    tp = y + np.where(np.arange(n) % 2 == 0, 0.0, rng.normal(scale=0.7, size=n))
    floor = 1e-6 * float(np.var(y))
    e = math.sqrt(floor)
    resid = preds - y
    exact = np.abs(resid) <= e

    def side_model(side):
        overall = (side & exact).sum() / side.sum()
        fits = _oracle_fits(resid, side & ~exact, floor, fixed=True)
        atoms = [((side[:, i] & exact[:, i]).sum() + overall) / (side[:, i].sum() + 1)
                 for i in range(n)]
        return atoms, fits

    def within(p, mean, var, r_abs):
        s = math.sqrt(var)
        mass = stats.norm.cdf((r_abs - mean) / s) - stats.norm.cdf((-r_abs - mean) / s)
        return p + (1 - p) * mass

    a_in, f_in = side_model(member)
    a_out, f_out = side_model(~member)
    online, offline = [], []
    for i in range(n):
        r = tp[i] - y[i]
        (mi, vi), (mo, vo) = f_in[i], f_out[i]
        if abs(r) <= e:  # exact fit: ratio of the probabilities of |R| <= e
            online.append(math.log(within(min(a_in[i], 1 - 1e-12), mi, vi, e))
                          - math.log(within(a_out[i], mo, vo, e)))
        else:
            online.append(math.log1p(-min(a_in[i], 1 - 1e-12))
                          + stats.norm.logpdf(r, mi, math.sqrt(vi))
                          - math.log1p(-a_out[i]) - stats.norm.logpdf(r, mo, math.sqrt(vo)))
        offline.append(-math.log(within(a_out[i], mo, vo, max(abs(r), e))))
    assert exact[member].all() and exact[~member].any()
    np.testing.assert_allclose(reg.lira_scores(preds, member, tp, y), online, rtol=1e-9)
    np.testing.assert_allclose(reg.lira_scores(preds, member, tp, y, online=False), offline,
                               rtol=1e-9)
    # Without the atom (and per row): the Gaussian through every residual, as before.
    fin = _oracle_fits(resid, member, floor)
    fout = _oracle_fits(resid, ~member, floor)
    plain = [stats.norm.logpdf(tp[i] - y[i], fin[i][0], math.sqrt(fin[i][1]))
             - stats.norm.logpdf(tp[i] - y[i], fout[i][0], math.sqrt(fout[i][1]))
             for i in range(n)]
    np.testing.assert_allclose(reg.lira_scores(preds, member, tp, y, variance="per_row",
                                               exact_fit_atom=False), plain, rtol=1e-9)


def _memorising_trees(seed, n=4000, k=16):
    """Fully grown trees on few discrete features (many rows share a feature vector) and
    an integer target with a common value: a tree fits many non-members exactly too."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 6, size=(n, 4)).astype(float)
    y = np.where(rng.random(n) < 0.5, 40.0,
                 np.round(X @ [3.0, 2.0, 1.0, 1.0] + rng.normal(0, 8, n)))
    plan = PopulationPlan.balanced(n, k + 2, seed).member
    preds = np.stack([DecisionTreeRegressor(random_state=j).fit(X[m], y[m]).predict(X)
                      for j, m in enumerate(plan)])
    return preds[:k], plan[:k], preds[k], plan[k], y


def test_lira_atom_and_fixed_variance_beat_per_row_gaussian_on_memorising_trees():
    offline_new, offline_old = [], []
    for seed in range(3):
        preds, member, tp, tm, y = _memorising_trees(seed)

        def tpr(scores, tm=tm):
            return reg.evaluate_scores(scores, tm).tpr.value

        before = dict(variance="per_row", exact_fit_atom=False)
        assert tpr(reg.loss_scores(tp, y)) == 0.0  # exact fits tie members and non-members
        new = tpr(reg.lira_scores(preds, member, tp, y))
        assert new >= tpr(reg.lira_scores(preds, member, tp, y, **before)) and new > 0.05
        offline_new.append(tpr(reg.lira_scores(preds, member, tp, y, online=False)))
        offline_old.append(tpr(reg.lira_scores(preds, member, tp, y, online=False, **before)))
    assert np.mean(offline_new) >= np.mean(offline_old)


def test_lira_floor_keeps_exact_fits_finite_and_offline_does_not_saturate():
    rng = np.random.default_rng(3)
    y = rng.normal(size=50)
    member = PopulationPlan.balanced(50, 8, 0).member
    # Memorising references: residual exactly 0 on their own rows.
    preds = np.where(member, y, y + rng.normal(scale=3.0, size=(8, 50)))
    tp = y + rng.normal(scale=1e-2, size=50)  # near-exact fit everywhere
    online = reg.lira_scores(preds, member, tp, y, variance="per_row")
    offline = reg.lira_scores(preds, member, tp, y, online=False, variance="per_row")
    assert np.isfinite(online).all() and np.isfinite(offline).all()
    # Distinct residuals stay distinct: no saturation at a probability of 1.
    assert np.unique(offline).size == 50
    # Further from zero -> less like a member, offline.
    far = reg.lira_scores(preds, member, tp + 0.5, y, online=False, variance="per_row")
    assert (far < offline).all()
    # Exact fits everywhere: ranked by how rarely OUT residuals come that close to zero
    # (Pr(|R| <= e) ~ 2e * density at 0), not all tied at p = 0.
    exact = reg.lira_scores(preds, member, y, y, online=False, variance="per_row")
    out = ~member
    mu = np.array([(preds[out[:, i], i] - y[i]).mean() for i in range(50)])
    sd = np.array([(preds[out[:, i], i] - y[i]).std(ddof=1) for i in range(50)])
    density = stats.norm.logpdf(0.0, mu, sd)
    assert np.isfinite(exact).all() and np.unique(exact).size == 50
    assert stats.spearmanr(exact, -density).statistic > 0.999


# ---------------------------------------------------------------- RMIA


def test_rmia_equals_pairwise_definition():
    rng = np.random.default_rng(4)
    k, n = 6, 40
    y = rng.normal(size=n)
    member = PopulationPlan.balanced(n, k, 1).member
    preds = y + rng.normal(scale=0.6, size=(k, n)) * np.where(member, 0.5, 1.0)
    tm = rng.random(n) < 0.5
    tp = y + rng.normal(scale=0.5, size=n) * np.where(tm, 0.3, 1.0)
    s_ref = [math.sqrt(np.mean((preds[j, member[j]] - y[member[j]]) ** 2)) for j in range(k)]
    s_t = math.sqrt(np.mean((tp[tm] - y[tm]) ** 2))
    lr = []
    for i in range(n):
        px = np.mean([stats.norm.pdf(y[i], preds[j, i], s_ref[j]) for j in range(k)])
        lr.append(stats.norm.pdf(y[i], tp[i], s_t) / px)
    expected = []
    for i in range(n):
        zs = [z for z in range(n) if not tm[z] and z != i]
        expected.append(sum(lr[i] / lr[z] >= 1 for z in zs) / len(zs))
    np.testing.assert_allclose(reg.rmia_scores(preds, member, tp, tm, y), expected, atol=1e-12)


# ---------------------------------------------------------------- evaluation


def test_evaluate_scores_auc_and_estimable_tpr():
    rng = np.random.default_rng(5)
    member = rng.random(3000) < 0.5
    scores = rng.normal(size=3000) + member
    fig = reg.evaluate_scores(scores, member)
    assert fig.auc.value == pytest.approx(roc_auc_score(member, scores), abs=1e-12)
    assert fig.auc.ci_low < fig.auc.value < fig.auc.ci_high
    # Conservative TPR: no more than the best threshold with FPR <= 1 % achieves.
    neg = np.sort(scores[~member])[::-1]
    cut = neg[int(0.01 * neg.size)]
    assert fig.tpr is not None and fig.tpr.value <= np.mean(scores[member] > cut) + 1e-12
    assert reg.AttackFigures.from_dict(fig.to_dict()) == fig
    # 300 non-members cannot resolve 1 % FPR (3 expected false positives).
    small = reg.evaluate_scores(scores[:600], member[:600])
    assert small.tpr is None and "not estimable" in small.tpr_note


def test_ridge_references_match_one_model_at_a_time():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(80, 3))
    y = X @ [1.0, -1.0, 0.5] + rng.normal(size=80)
    preds, member = reg.ridge_references(X, y, 4, alpha=2.0, random_state=0)
    assert (member.sum(axis=0) == 2).all()
    for k in range(4):
        one = Ridge(alpha=2.0).fit(X[member[k]], y[member[k]]).predict(X)
        np.testing.assert_allclose(preds[k], one, rtol=1e-8, atol=1e-10)


# ---------------------------------------------------------------- the check


def _law_school(data_home, n_rows=4000):
    df = pd.read_csv(data_home / "law_school.csv").sample(n_rows, random_state=0)
    num = df[["LSAT", "UGPA"]].to_numpy(float)
    num = (num - num.mean(0)) / num.std(0)
    cats = pd.get_dummies(df[["race", "region_first"]].astype(str)).to_numpy(float)
    X = np.hstack([num, cats, df[["sex"]].to_numpy(float)])
    return X, df["ZFYA"].to_numpy(float)


def test_membership_auc_tree_high_ridge_low(data_home):
    X, y = _law_school(data_home)
    k = 16
    plan = PopulationPlan.balanced(y.size, k + 2, 1)
    member, tm = plan.member[:k], plan.member[k]
    tree = lambda m: DecisionTreeRegressor(random_state=0).fit(X[m], y[m]).predict(X)  # noqa: E731
    preds = np.stack([tree(m) for m in member])
    tp = tree(tm)
    aucs = {name: reg.evaluate_scores(s, tm).auc.value for name, s in [
        ("loss", reg.loss_scores(tp, y)), ("lira", reg.lira_scores(preds, member, tp, y))]}
    assert min(aucs.values()) >= 0.6, aucs

    ridge = fit_ridge(X, y, plan.member, alpha=1.0).predict(X)
    preds, tp = ridge[:k], ridge[k]
    scores = [reg.loss_scores(tp, y), reg.lira_scores(preds, member, tp, y),
              reg.lira_scores(preds, member, tp, y, online=False),
              reg.rmia_scores(preds, member, tp, tm, y)]
    aucs = [reg.evaluate_scores(s, tm).auc.value for s in scores]
    assert max(aucs) <= 0.56, aucs
