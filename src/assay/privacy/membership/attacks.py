"""Membership-inference attacks on a population of models, and their audit figures.

Every model of a :class:`~assay.engine.Population` takes its turn as the *target*;
the other models, whose training sets are known, are its *reference* models
(leave-one-model-out). One population of K models therefore yields K attacked targets,
and no target's own outputs ever enter its reference statistics. All scores point the
same way: higher means "more likely a member".

A model trained on exactly the complement of the target's rows (its partner in a
balanced plan) is left out of the target's references too: the two fits share one
split of the data, so their outputs are coupled (for a linear model, nearly
φ_target + φ_partner ≈ const), and keeping the partner biases online LiRA upwards
(measured: AUC 0.58 instead of 0.51 for a heavily regularised logistic regression).
A balanced plan of K models thus gives K−2 references per target, (K−2)/2 per side;
LiRA needs K ≥ 6.

Attacks
-------
``loss``
    Yeom et al.: the target's log-probability of the true label (minus the loss).
``lira`` / ``lira_offline``
    Carlini et al. (2022) on the scaled confidence φ = log p_y − log Σ_{y'≠y} p_{y'}.
    Online: Gaussian log-likelihood ratio of the target's φ under IN and OUT reference
    fits. Offline (OUT references only): the paper's one-sided test, the probability
    Φ((φ − μ_out)/σ_out) that an OUT model is less confident; we return its logarithm
    (``log_ndtr``, same ranking, no saturation at 1 for confident members). Means are
    reference means (not Carlini's medians: means let every target's leave-one-out
    statistics be read off shared sums in O(N)). Variance: per example when every row
    has at least ``min_refs`` (default 32) references on each side used, otherwise one
    variance pooled over all rows (and over IN and OUT for the online attack), as the
    paper advises for few references.
``rmia`` / ``rmia_offline``
    Zarifzadeh et al. (2024) with Pr(x|f) the softmax probability of the true label.
    Pr(x) is the reference mean: online ½(P_in + P_out); offline ½((1+a)·P_out + (1−a))
    with a = 0.3 by default. Population samples z are the rows that are OUT for the
    target; score(x) = share of z with LR(x, z) = ratio(x)/ratio(z) > γ (γ = 1), x itself
    excluded. The z-ratios are sorted once and every x is placed with
    ``np.searchsorted``: O(N log N) time, O(N) memory, no N×N matrix.

Where scores are computed

How the scores are computed (shared sums, blocks of targets, the Dask backend) is in
:mod:`~assay.privacy.membership.scoring`; the figures of an attack in
:mod:`~assay.privacy.membership.results`;
`run_mia`, which runs every attack and gathers its figures, in :mod:`~assay.privacy.membership.mia`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from assay._validation import DataError, InvalidParameterError, check_option, check_scalar
from assay.engine import Population
from assay.engine.runners import LocalRunner, check_backend, open_runner
from assay.privacy.membership import scoring
from assay.privacy.membership.estimates import TargetCurves
from assay.privacy.membership.scoring import (
    _PROB_EPS,
    RMIA_GAMMA,
    _blocks_of,
    _check_population,
    _check_targets,
    _dominated_share,
    _LeaveOneOut,
    _lira_block,
    _Scorer,
    _Spec,
    complement_partners,
)

ATTACKS = ("loss", "lira", "lira_offline", "rmia", "rmia_offline")
DEFAULT_FPRS = (0.1, 0.01, 0.001)
#: Fewer references than this on a side → LiRA pools one variance over all rows.
LIRA_MIN_REFS = 32
#: RMIA's offline parameter a (P_in ≈ a·P_out + 1 − a); its threshold γ is `RMIA_GAMMA`.
RMIA_A = 0.3
#: Values of a that offline RMIA's tuning on reference models chooses from.
RMIA_A_GRID = tuple(float(v) for v in np.round(np.linspace(0.0, 1.0, 11), 2))
#: `run_mia` keeps every attack's raw (targets, rows) scores in `AttackResult.scores` up

# --------------------------------------------------------------------------- attacks


def loss_scores(population: Population, targets=None) -> np.ndarray:
    """LOSS attack: the target model's log-probability of the true label.

    Parameters
    ----------
    population : Population
    targets : sequence of int, optional
        Models attacked (default: all).

    Returns
    -------
    ndarray of shape (n_targets, n_rows)
        Higher means more likely a member (lower loss).
    """
    _check_population(population, False, "loss")
    t = _check_targets(population, targets)
    return np.concatenate([b for _, b in _loss_blocks(population, t)])


def _loss_blocks(population: Population, t: np.ndarray,
                 scorer: _Scorer | None = None
                 ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """LOSS scores a block of targets at a time: (targets, their scores)."""
    scorer = scorer or _Scorer(population, LocalRunner())
    return scorer.blocks(_Spec("loss", "neg_loss"), t)


def lira_variance_mode(population: Population, online: bool = True,
                       min_refs: int = LIRA_MIN_REFS) -> str:
    """"per_example" if every row has ≥ ``min_refs`` references per side used, else "fixed"."""
    member = population.member
    k = population.n_models
    partners = complement_partners(member)
    has_partner = partners >= 0
    n_in_all = member.sum(axis=0)
    fewest = np.inf
    for ks in _blocks_of(np.arange(k), member.shape[1]):  # O(block · N) memory
        partner_in = member[np.maximum(partners[ks], 0)] & has_partner[ks, None]
        n_in = n_in_all - member[ks] - partner_in
        n_out = k - 1 - has_partner[ks, None] - n_in
        fewest = min(fewest, n_out.min() if not online else min(n_in.min(), n_out.min()))
    return "per_example" if fewest >= min_refs else "fixed"


def lira_scores(
    population: Population,
    targets=None,
    *,
    online: bool = True,
    variance: str = "auto",
    min_refs: int = LIRA_MIN_REFS,
) -> np.ndarray:
    """LiRA scores, each target against the other models as references.

    Parameters
    ----------
    population : Population
    targets : sequence of int, optional
        Models attacked (default: all).
    online : bool, default=True
        Use IN and OUT references (likelihood ratio); False: OUT only (one-sided test,
        log Φ((φ − μ_out)/σ_out)).
    variance : {"auto", "fixed", "per_example"}, default="auto"
        "auto" uses per-example variances when every row has at least ``min_refs``
        references on each side used; with fewer, per-example or one pooled ("fixed")
        variance as chosen on reference models (`lira_variance_plan`).
    min_refs : int, default=32
        Threshold of "auto".

    Returns
    -------
    ndarray of shape (n_targets, n_rows)
    """
    _check_population(population, True, "lira")
    t = _check_targets(population, targets)
    check_option(variance, "variance", ("auto", "fixed", "per_example"))
    min_refs = check_scalar(min_refs, "min_refs", kind=int, low=2)
    per_example, _ = lira_variance_plan(population, online, variance, min_refs)
    return np.concatenate([b for _, b in _lira_blocks(population, t, online, per_example[t])])


def _lira_blocks(population: Population, t: np.ndarray, online: bool,
                 per_example: np.ndarray, scorer: _Scorer | None = None
                 ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """LiRA scores a block of targets at a time: (targets, their scores); `per_example`
    says, for each of `t`, whether it uses per-row variances."""
    scorer = scorer or _Scorer(population, LocalRunner())
    return scorer.blocks(_Spec("lira", "logit", online), t,
                         np.asarray(per_example, dtype=bool))


def lira_variance_plan(population: Population, online: bool = True, variance: str = "auto",
                       min_refs: int = LIRA_MIN_REFS, random_state: int | None = 0
                       ) -> tuple[np.ndarray, dict[str, Any]]:
    """Whether each model, as target, gets per-row variances; and what to record.

    "auto": per-row when every row has at least `min_refs` references per side (the
    paper's rule); with fewer, the choice between per-row and one pooled variance is
    tuned on reference models of the other fold (`tune_lira_variance`): the paper
    advises pooling for few references, but models that memorise their rows (a fully
    grown forest) leak far more under per-row variances (AUC 0.967 against 0.878 with 16
    references per side, German credit), and an audit must not under-report.
    """
    k = population.n_models
    if variance != "auto":
        return np.full(k, variance == "per_example"), {"variance": variance}
    if lira_variance_mode(population, online, min_refs) == "per_example":
        return np.ones(k, dtype=bool), {"variance": "per_example"}
    per_example, info = tune_lira_variance(population, online=online,
                                           random_state=random_state)
    chosen = ("per_example" if per_example.all() else
              "fixed" if not per_example.any() else "per fold")
    return per_example, {"variance": chosen, "variance_tuning": info}


def tune_lira_variance(
    population: Population,
    *,
    online: bool = True,
    n_pseudo_targets: int = 4,
    max_rows: int = 20_000,
    random_state: int | None = 0,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Per-row or pooled LiRA variances for every model as target, chosen on references.

    As `tune_rmia_a`: the models are split into two folds (complementary partners
    together); on one fold, a few models are attacked as pseudo-targets with the rest of
    that fold as references, both ways, and the way with the higher mean AUC is used for
    the targets of the other fold. No target's membership, nor its partner's, enters
    its choice. A fold too small to compare both ways keeps the pooled variance.

    Returns
    -------
    per_example : bool ndarray of shape (n_models,)
    info : dict
        ``by_fold`` (the choice for each fold's targets), ``auc_by_fold`` (the two
        pseudo-target AUCs behind it), ``tuned``, ``n_pseudo_targets``, ``max_rows``.
    """
    rng = np.random.default_rng(random_state)
    folds, chooser = _tuning_folds(population, max_rows, rng)
    chosen: list[str] = []
    aucs_by_fold: list[dict[str, float | None]] = []
    for fold in chooser:
        aucs = {} if fold is None else _lira_variance_aucs(fold, online, n_pseudo_targets, rng)
        both = len(aucs) == 2
        chosen.append("per_example" if both and aucs["per_example"] > aucs["fixed"]
                      else "fixed")
        aucs_by_fold.append({m: (None if not both else float(v)) for m, v in aucs.items()})
    info = {"by_fold": chosen, "auc_by_fold": aucs_by_fold,
            "tuned": [bool(a) and None not in a.values() for a in aucs_by_fold],
            "n_pseudo_targets": int(n_pseudo_targets), "max_rows": int(max_rows),
            "method": "higher mean AUC of LiRA on pseudo-targets of the other fold of models "
                      "(complementary pairs kept together)"}
    return np.asarray([c == "per_example" for c in chosen])[folds], info


def _lira_variance_aucs(fold: Population, online: bool, n_pseudo: int,
                        rng: np.random.Generator) -> dict[str, float]:
    """Mean LiRA AUC of a few pseudo-targets of `fold` with pooled and per-row variances
    (a way that cannot run on so few references is left out)."""
    member = fold.member
    loo = _LeaveOneOut(fold.logit(), member)
    pseudo = rng.choice(fold.n_models, size=min(n_pseudo, fold.n_models), replace=False)
    terms = loo.terms(pseudo)
    aucs = {}
    for mode in ("fixed", "per_example"):
        try:
            scores = _lira_block(loo.sums, terms, online, mode == "per_example")
        except DataError:
            continue
        aucs[mode] = float(TargetCurves(scores, member[pseudo]).auc().mean())
    return aucs


def _pair_folds(member: np.ndarray) -> np.ndarray:
    """Two folds of models (0/1 each) that keep complementary partners together."""
    partners = complement_partners(member)
    k = np.arange(member.shape[0])
    pair = np.where(partners >= 0, np.minimum(k, partners), k)
    return np.unique(pair, return_inverse=True)[1] % 2


def _tuning_folds(population: Population, max_rows: int, rng: np.random.Generator
                  ) -> tuple[np.ndarray, list[Population | None]]:
    """The two folds of models (`_pair_folds`) and, for the targets of fold 0 then fold 1,
    the population a choice is made on: the other fold's models on at most `max_rows`
    sampled rows (None when that fold has fewer than 4 models)."""
    rows = np.arange(population.n_rows)
    if rows.size > max_rows:
        rows = np.sort(rng.choice(rows, size=max_rows, replace=False))
    folds = _pair_folds(population.member)
    chooser = []
    for fold in (1, 0):  # fold 1's models choose for fold 0's targets, and back
        models = np.flatnonzero(folds == fold)
        chooser.append(None if models.size < 4 else Population(
            probs=_rows_of(population, models, rows),
            member=population.member[np.ix_(models, rows)], y=population.y[rows]))
    return folds, chooser


def _rows_of(population: Population, models: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``probs[np.ix_(models, rows)]`` read a block of models at a time (a population on
    disk never has more than one block resident)."""
    step = max(1, scoring._SIGNAL_CACHE_CELLS // max(population.n_rows, 1))
    return np.concatenate([population.read_models(models[i:i + step])[:, rows]
                           for i in range(0, models.size, step)])


def _tune_a_on(fold: Population, grid: np.ndarray, n_pseudo: int,
               rng: np.random.Generator) -> float | None:
    """The grid value of a with the best mean offline-RMIA AUC over pseudo-targets drawn
    from these models (each against the others as references); None when too few."""
    signal = fold.true_prob().astype(np.float64)
    member = fold.member
    loo = _LeaveOneOut(signal, member)
    pseudo = rng.choice(member.shape[0], size=min(n_pseudo, member.shape[0]), replace=False)
    n_out, mu_out, _ = loo.side(pseudo, False)
    if np.any(n_out == 0):
        return None
    mu_out = mu_out + loo.centre
    auc_list: list[float] = []
    for a in grid:
        marginal = 0.5 * ((1 + a) * mu_out + (1 - a))
        ratio = signal[pseudo] / np.maximum(marginal, _PROB_EPS)
        scores = np.stack([_dominated_share(r, ~member[j], RMIA_GAMMA)
                           for r, j in zip(ratio, pseudo, strict=True)])
        auc_list.append(TargetCurves(scores, member[pseudo]).auc().mean())
    aucs = np.asarray(auc_list)
    # Ties go to the value nearest the paper's default.
    best = np.flatnonzero(aucs >= aucs.max() - 1e-12)
    return float(grid[best[np.argmin(np.abs(grid[best] - RMIA_A))]])


def tune_rmia_a(
    population: Population,
    *,
    grid: Sequence[float] = RMIA_A_GRID,
    n_pseudo_targets: int = 4,
    max_rows: int = 20_000,
    random_state: int | None = 0,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Offline RMIA's a for every model as target, tuned on reference models only.

    The models are split into two folds (complementary partners together); a is chosen
    on one fold (a few of its models as pseudo-targets, the rest of that fold as their
    references, up to `max_rows` rows) for the targets of the other fold, so no
    target's membership, nor its partner's, enters the choice of its a. Privacy Meter
    tunes a on reference models the same way; a fixed a under-reports leakage.

    Returns
    -------
    a : ndarray of shape (n_models,)
        The a used when each model is the target.
    info : dict
        ``by_fold`` (the two values), ``tuned`` (whether each fold could be tuned; an
        untuned fold keeps the default 0.3), ``grid``, ``n_pseudo_targets``, ``max_rows``.
    """
    grid_arr = np.asarray([check_scalar(v, "grid", low=0.0, high=1.0) for v in grid])
    rng = np.random.default_rng(random_state)
    folds, chooser = _tuning_folds(population, max_rows, rng)
    chosen: list[float] = []
    tuned: list[bool] = []
    for fold in chooser:
        a = None if fold is None else _tune_a_on(fold, grid_arr, n_pseudo_targets, rng)
        tuned.append(a is not None)
        chosen.append(RMIA_A if a is None else a)
    info = {"by_fold": chosen, "tuned": tuned, "grid": [float(v) for v in grid_arr],
            "n_pseudo_targets": int(n_pseudo_targets), "max_rows": int(max_rows),
            "method": "best mean AUC of offline RMIA on pseudo-targets of the other fold "
                      "of models (complementary pairs kept together)"}
    return np.asarray(chosen)[folds], info


def rmia_scores(
    population: Population,
    targets=None,
    *,
    online: bool = True,
    a: float | Sequence[float] | str = "auto",
    gamma: float = RMIA_GAMMA,
    tie_break: bool = True,
) -> np.ndarray:
    """RMIA scores, each target against the other models as references.

    Parameters
    ----------
    population : Population
    targets : sequence of int, optional
        Models attacked (default: all).
    online : bool, default=True
        Pr(x) from IN and OUT references; False: OUT only with the linear
        approximation P_in ≈ a·P_out + (1 − a).
    a : "auto", float in [0, 1] or one per target, default="auto"
        Offline approximation parameter (online: used only for rows without IN
        references). "auto": offline tunes it on reference models (`tune_rmia_a`),
        online uses 0.3.
    gamma : float > 0, default=1.0
        Likelihood-ratio threshold of the pairwise comparison.
    tie_break : bool, default=True
        Order rows with equal shares by their likelihood ratio (adds less than half
        the smallest gap between distinct shares). Without it, members that dominate
        every population sample tie at 1 with the top non-member, and the TPR at FPRs
        below 1 / (number of z) is 0.

    Returns
    -------
    ndarray of shape (n_targets, n_rows)
        Share of population samples z (rows OUT for the target) that x dominates.
    """
    _check_population(population, True, "rmia")
    t = _check_targets(population, targets)
    a_t = _rmia_a_per_target(population, t, online, a)
    gamma = check_scalar(gamma, "gamma", low=0.0, low_open=True)
    return np.concatenate([b for _, b in _rmia_blocks(population, t, online, a_t, gamma,
                                                      tie_break)])


def _rmia_blocks(population: Population, t: np.ndarray, online: bool, a_t: np.ndarray,
                 gamma: float, tie_break: bool = True, scorer: _Scorer | None = None
                 ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """RMIA scores a block of targets at a time: (targets, their scores); `a_t` holds
    the offline parameter of each of `t`."""
    scorer = scorer or _Scorer(population, LocalRunner())
    return scorer.blocks(_Spec("rmia", "true_prob", online, gamma, tie_break), t,
                         np.asarray(a_t, dtype=float))


def _rmia_a_per_target(population: Population, t: np.ndarray, online: bool,
                       a: Any) -> np.ndarray:
    if isinstance(a, str):
        check_option(a, "a", ("auto",))
        if online:
            return np.full(t.size, RMIA_A)
        return tune_rmia_a(population)[0][t]
    values = np.atleast_1d(np.asarray(a, dtype=float))
    if values.size not in (1, t.size):
        raise InvalidParameterError(f"a must be 'auto', one value or one per target "
                                    f"({t.size}). Got {values.size} values.")
    for v in values:
        check_scalar(float(v), "a", low=0.0, high=1.0)
    return np.broadcast_to(values, (t.size,)).astype(float)


def _score_blocks(population: Population, attack: str, t: np.ndarray,
                  params: dict[str, Any], scorer: _Scorer | None = None
                  ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Scores of the named attack, a block of targets at a time: (targets, scores).

    Nothing of size (targets, rows) outlives its block: the caller keeps what it needs.
    Checks run when the generator is created, not at its first block. `scorer` says
    where the blocks are computed and keeps the per-row sums between attacks (default:
    here, for this call only).
    """
    if attack == "loss":
        _check_population(population, False, attack)
        return _loss_blocks(population, t, scorer)
    _check_population(population, True, attack.split("_")[0])
    online = not attack.endswith("_offline")
    if attack.startswith("lira"):
        min_refs = check_scalar(params["lira_min_refs"], "min_refs", kind=int, low=2)
        per_example = params.get("lira_per_example")
        if per_example is None:
            per_example = lira_variance_plan(population, online, "auto", min_refs)[0][t]
        return _lira_blocks(population, t, online, np.asarray(per_example, dtype=bool),
                            scorer)
    a_t = _rmia_a_per_target(population, t, online, params["rmia_a"])
    gamma = check_scalar(params["rmia_gamma"], "gamma", low=0.0, low_open=True)
    return _rmia_blocks(population, t, online, a_t, gamma, scorer=scorer)


def attack_scores(population: Population, attack: str, targets=None, *,
                  backend: str = "batched", scheduler_address: str | None = None,
                  **params) -> np.ndarray:
    """Scores of the named attack (one of ``ATTACKS``), shape (n_targets, n_rows).

    ``params``: ``lira_min_refs`` (32), ``rmia_a`` ("auto"), ``rmia_gamma`` (1.0).
    ``backend`` and ``scheduler_address``: where the blocks of targets are scored, as
    in `run_mia`.
    """
    check_option(attack, "attack", ATTACKS)
    check_backend(backend, scheduler_address)
    merged = {"lira_min_refs": LIRA_MIN_REFS, "rmia_a": "auto", "rmia_gamma": RMIA_GAMMA,
              **params}
    _check_population(population, False, attack)
    t = _check_targets(population, targets)
    with open_runner(backend, scheduler_address) as runner:
        blocks = _score_blocks(population, attack, t, merged, _Scorer(population, runner))
        return np.concatenate([b for _, b in blocks])


