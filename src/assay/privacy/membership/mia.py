"""`run_mia`: every attack on a population, every model in turn as target, with the
figures gathered as the blocks of scores come (:mod:`~assay.privacy.membership.results`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, cast

import numpy as np
import pandas as pd

from assay._validation import (
    MAX_RESAMPLES,
    DataError,
    InvalidParameterError,
    check_option,
    check_scalar,
)
from assay.engine import Population
from assay.engine.runners import ahead, check_backend, open_runner
from assay.groups import FlagRule, GroupIndex, permutation_test
from assay.privacy.membership.attacks import (
    ATTACKS,
    DEFAULT_FPRS,
    LIRA_MIN_REFS,
    RMIA_A,
    _score_blocks,
    lira_variance_plan,
    tune_rmia_a,
)
from assay.privacy.membership.estimates import check_flag_rule, check_group_index
from assay.privacy.membership.results import (
    AttackResult,
    MIAResult,
    _levels,
    _summary,
    risk_statement,
    roc_grid,
)
from assay.privacy.membership.scoring import RMIA_GAMMA, _check_population, _check_targets, _Scorer
from assay.privacy.membership.vulnerability import (
    apply_group_tests,
    flagged_groups,
    most_exposed_group,
    stream_figures,
)

#: to this many cells (32 MiB of float64 each); above it they are streamed and dropped
#: unless ``keep_scores=True`` (1M rows x 64 targets: 512 MiB an attack).
KEEP_SCORES_CELLS = 1 << 22

def _check_fprs(fprs) -> tuple[float, ...]:
    values = tuple(fprs) if isinstance(fprs, Sequence | np.ndarray) else (fprs,)
    if not values:
        raise InvalidParameterError("fprs must hold at least one FPR in (0, 1). Got ().")
    return tuple(check_scalar(a, "fprs", low=0.0, high=1.0, low_open=True, high_open=True)
                 for a in values)


def _check_attacks(attacks) -> tuple[str, ...]:
    names = (attacks,) if isinstance(attacks, str) else tuple(attacks)
    if not names:
        raise InvalidParameterError(f"attacks must name at least one of {', '.join(ATTACKS)}. "
                                    f"Got ().")
    for name in names:
        check_option(name, "attacks", ATTACKS)
    return tuple(dict.fromkeys(names))


def _pick_targets(population: Population, n_targets: int | None, targets,
                  random_state) -> np.ndarray:
    if targets is not None:
        if n_targets is not None:
            raise InvalidParameterError(f"n_targets must be None when targets are given. "
                                        f"Got n_targets={n_targets!r}.")
        chosen = _check_targets(population, targets)
        if np.unique(chosen).size != chosen.size:
            raise InvalidParameterError(f"targets must be distinct model indices. "
                                        f"Got {targets!r}.")
        return chosen
    if n_targets is None:
        return np.arange(population.n_models)
    n_targets = check_scalar(n_targets, "n_targets", kind=int, low=1, high=population.n_models)
    rng = np.random.default_rng(random_state)
    return np.sort(rng.choice(population.n_models, size=n_targets, replace=False))


def _check_row_ids(row_ids, n_rows: int) -> np.ndarray:
    if row_ids is None:
        return np.arange(n_rows).astype(str)
    ids = np.asarray(row_ids).astype(str)
    if ids.shape != (n_rows,):
        raise DataError(f"row_ids must have one id per population row ({n_rows}). "
                        f"Got shape {ids.shape}.")
    return ids


def run_mia(
    population: Population,
    attacks: Sequence[str] = ("loss", "lira", "rmia"),
    groups: pd.DataFrame | GroupIndex | None = None,
    row_ids=None,
    fprs: Sequence[float] = DEFAULT_FPRS,
    n_targets: int | None = None,
    random_state: int | None = 0,
    *,
    targets: Sequence[int] | None = None,
    min_support: int = 50,
    max_intersection: int | None = None,
    n_permutations: int = 200,
    n_records: int = 20,
    flag_rule: FlagRule | None = None,
    confidence: float = 0.95,
    lira_min_refs: int = LIRA_MIN_REFS,
    rmia_a: float | str = "auto",
    rmia_gamma: float = RMIA_GAMMA,
    keep_scores: bool | None = None,
    backend: str = "batched",
    scheduler_address: str | None = None,
    prior: float | None = None,
    risk_fpr: float | None = None,
) -> MIAResult:
    """Run membership-inference attacks on a population, every model in turn as target.

    Each attack is scored a block of targets at a time and every figure is gathered from
    the blocks as they come (`stream_figures`): beyond the population, memory is O(N)
    per attack plus one block, not O(targets x N).

    Parameters
    ----------
    population : Population
        K models with known memberships; each attacked target uses the other models as
        references.
    attacks : sequence of str, default=("loss", "lira", "rmia")
        Any of ``ATTACKS``.
    groups : DataFrame or GroupIndex, optional
        Protected attributes (one row per population row), or their
        `assay.groups.GroupIndex`: per-group figures and flags for every attribute and
        every intersection.
    row_ids : array-like of shape (n_rows,), optional
        Identifiers of the rows for the records (default: row index).
    fprs : sequence of float, default=(0.1, 0.01, 0.001)
        FPR levels of the TPR figures; the largest also sets the thresholds that flag
        records.
    n_targets : int, optional
        Attack only this many randomly chosen models (default: all).
    random_state : int or None, default=0
        Seed for the choice of targets and the permutation test.
    targets : sequence of int, optional
        Attack exactly these models (not with ``n_targets``).
    min_support : int, default=50
        Groups with fewer rows are reported without figures, never flagged.
    max_intersection : int, optional
        Largest intersection of attributes (default: all attributes; only with a
        DataFrame).
    n_permutations : int, default=200
        Permutations of the group test (0: p-values 1, nothing flagged).
    n_records : int, default=20
        Number of records listed per attack.
    flag_rule : FlagRule, optional
        When a group is flagged; default ``FlagRule(alpha=0.05, min_difference=0.05,
        direction="greater")``: p < 0.05 and AUC at least 0.05 above the overall AUC.
    confidence : float, default=0.95
        Level of every interval.
    lira_min_refs : int, default=32
        Fewer references per side → LiRA uses one pooled variance.
    rmia_a : "auto" or float, default="auto"
        RMIA's offline parameter; "auto" tunes it for offline RMIA on reference models,
        never on the target (`tune_rmia_a`), and records the values in the attack's
        params.
    rmia_gamma : float, default=1.0
        RMIA's pairwise likelihood-ratio threshold.
    keep_scores : bool or None, default=None
        Keep each attack's raw scores in `AttackResult.scores` (targets x rows float64).
        None: only when targets x rows is at most ``KEEP_SCORES_CELLS`` (4,194,304).
    backend : {"batched", "joblib", "dask"}, default="batched"
        Where the blocks of scores are computed (`assay.engine.backends`; "local", the
        spelling of earlier releases, is read as "batched"): "batched" and "joblib" in
        this process, "dask" on a dask.distributed cluster
        (needs ``pip install "assay[dask]"``), with futures: the per-row leave-one-out
        sums are reduced from partial sums per block of models, sent once to every
        worker, and each task gets the probabilities of its own targets and their
        complementary partners only, so no worker holds the population. A population
        on disk (``probs`` a read-only `numpy.memmap`) is read by the workers from its
        file, which they must see under the same path (a `LocalCluster`, or shared
        storage). At most two tasks per worker are in flight and blocks are read back
        in target order: the figures equal the local run's bit for bit. The choices
        made on reference models (RMIA's a, LiRA's variance) stay in this process.
    scheduler_address : str, optional
        Address of a running Dask scheduler ("tcp://host:8786"); default: a new
        `LocalCluster` with one single-threaded worker per core.
    prior : float, optional
        Share of members among an attacker's candidates for the risk statement
        (default: the audit's own, mean training rows / rows).
    risk_fpr : float, optional
        FPR of the risk statement, one of ``fprs`` (default: the smallest estimable).

    Returns
    -------
    MIAResult
    """
    check_backend(backend, scheduler_address)
    _check_population(population, False, "any")
    names = _check_attacks(attacks)
    fprs = _check_fprs(fprs)
    confidence = check_scalar(confidence, "confidence", low=0.0, high=1.0, low_open=True,
                              high_open=True)
    min_support = check_scalar(min_support, "min_support", kind=int, low=1)
    n_permutations = check_scalar(n_permutations, "n_permutations", kind=int, low=0,
                                  high=MAX_RESAMPLES)
    n_records = check_scalar(n_records, "n_records", kind=int, low=0)
    rule = check_flag_rule(flag_rule)
    if prior is not None:
        check_scalar(prior, "prior", low=0.0, high=1.0, low_open=True, high_open=True)
    if risk_fpr is not None and float(risk_fpr) not in fprs:
        raise InvalidParameterError(f"risk_fpr must be one of the measured FPRs "
                                    f"({', '.join(f'{a:g}' for a in fprs)}). Got {risk_fpr!r}.")
    if keep_scores is not None and not isinstance(keep_scores, bool | np.bool_):
        raise InvalidParameterError(f"keep_scores must be True, False or None. "
                                    f"Got {keep_scores!r}.")
    index = None if groups is None else check_group_index(groups, population.n_rows,
                                                          max_intersection)
    ids = _check_row_ids(row_ids, population.n_rows)
    chosen = _pick_targets(population, n_targets, targets, random_state)
    if keep_scores is None:
        keep_scores = chosen.size * population.n_rows <= KEEP_SCORES_CELLS
    member = population.member[chosen]
    params = {"lira_min_refs": lira_min_refs, "rmia_a": rmia_a, "rmia_gamma": rmia_gamma}
    if isinstance(rmia_a, str):
        check_option(rmia_a, "rmia_a", ("auto",))
    else:
        check_scalar(rmia_a, "rmia_a", low=0.0, high=1.0)
    results = {}
    with open_runner(backend, scheduler_address) as runner:
        scorer = _Scorer(population, runner)  # one set of per-row sums per signal
        for name in names:
            attack_params = _attack_params(population, name, params, random_state)
            scorer_params = dict(params)
            if name == "rmia_offline" and rmia_a == "auto":
                scorer_params["rmia_a"] = attack_params.pop("a_per_model")[chosen]
            if name.startswith("lira"):
                scorer_params["lira_per_example"] = \
                    attack_params.pop("per_example_per_model")[chosen]
            merged = {"lira_min_refs": LIRA_MIN_REFS, "rmia_a": "auto",
                      "rmia_gamma": RMIA_GAMMA, **scorer_params}
            blocks = _score_blocks(population, name, chosen, merged, scorer)
            results[name] = _evaluate_attack(
                name, blocks, member, chosen, fprs, confidence, index, ids,
                min_support=min_support, n_records=n_records, params=attack_params,
                keep_scores=bool(keep_scores))
    if index is not None:
        # One test for every attack (a column each) and every grouping.
        statistics = [cast(np.ndarray, r.statistic) for r in results.values()]  # all set
        tests = permutation_test(np.stack(statistics, axis=1),
                                 index, min_support=min_support,
                                 n_permutations=n_permutations, direction=rule.direction,
                                 random_state=random_state)
        for column, result in enumerate(results.values()):
            _apply_tests(result, tests, rule, column)
    config = {"attacks": list(names), "n_targets": int(chosen.size),
              "random_state": random_state, "min_support": int(min_support),
              "max_intersection": max_intersection, "n_permutations": int(n_permutations),
              "n_records": int(n_records), **params}
    risk = risk_statement(results, fprs, population.n_rows, risk_fpr, prior)
    return MIAResult(attacks=results, n_models=population.n_models, n_rows=population.n_rows,
                     fprs=fprs, confidence=float(confidence), flag_rule=rule, config=config,
                     risk=risk)


def _attack_params(population: Population, name: str, params: dict,
                   random_state: int | None) -> dict[str, Any]:
    """Settings an attack runs with, as recorded in the result (offline RMIA's tuned a
    per model rides along under ``a_per_model`` and is taken out before recording)."""
    if name.startswith("lira"):
        online = name == "lira"
        per_example, info = lira_variance_plan(population, online, "auto",
                                               params["lira_min_refs"], random_state)
        return {"online": online, **info, "min_refs": params["lira_min_refs"],
                "per_example_per_model": per_example}
    if name.startswith("rmia"):
        a = params["rmia_a"]
        if name == "rmia_offline" and a == "auto":
            a_per_model, info = tune_rmia_a(population, random_state=random_state)
            return {"online": False, "a": "tuned on reference models", "a_tuning": info,
                    "gamma": params["rmia_gamma"], "a_per_model": a_per_model}
        return {"online": name == "rmia", "a": RMIA_A if a == "auto" else float(a),
                "gamma": params["rmia_gamma"]}
    return {}


def _evaluate_attack(name: str, blocks: Iterator[tuple[np.ndarray, np.ndarray]],
                     member: np.ndarray, targets: np.ndarray,
                     fprs: tuple[float, ...], confidence: float, index: GroupIndex | None,
                     row_ids: np.ndarray, *, min_support: int, n_records: int,
                     params: dict[str, Any], keep_scores: bool = False) -> AttackResult:
    """Every figure of one attack from its blocks of scores, each target sorted once, a
    block of targets at a time as the scorer yields them (`stream_figures`: memory bounded
    by the block, not by K · N); the scores are kept only with `keep_scores`. The group
    test and flags are applied afterwards (`_apply_tests`), one test serving every
    attack."""
    n_neg = (~member).sum(axis=1)
    grid = roc_grid(float(n_neg.mean()))
    kept: list[np.ndarray] = []

    def scores_of(blocks):
        for _, block in blocks:
            if keep_scores:
                kept.append(block)
            yield block

    with ahead(blocks) as early:
        figures = stream_figures(scores_of(early), member,
                                 _levels(fprs, grid, n_neg, confidence), index=index,
                                 group_fprs=fprs, record_fpr=max(fprs))
    scores = np.concatenate(kept) if keep_scores else None
    auc, tpr, roc, per_target = _summary(figures.auc, figures.n_pos, figures.n_neg,
                                         figures.tp, fprs, grid, confidence)
    statistic = figures.statistic
    by_group = {} if index is None else figures.group_figures(
        index, fprs, min_support=min_support, confidence=confidence)
    records = figures.records(row_ids, index, n_records)
    return AttackResult(name=name, auc=auc, tpr_at_fpr=tpr, roc=roc, groups=by_group,
                        records=records, targets=targets, per_target_auc=per_target,
                        params=params, n_nonmembers=int(n_neg.min()) if n_neg.size else 0,
                        n_members=float(figures.n_pos.mean()) if n_neg.size else 0.0,
                        statistic=statistic, scores=scores)


def _apply_tests(result: AttackResult, tests, rule: FlagRule, column: int) -> None:
    """Differences, p-values and flags of every group of one attack, and its headline."""
    apply_group_tests(result.groups, tests, result.auc.value, rule, column)
    result.flagged_groups = flagged_groups(result.groups)
    result.most_exposed_group = most_exposed_group(result.groups)

