"""Membership inference against a model assay did not train.

The model under audit arrives as a :class:`~assay.engine.predictions.TargetPredictions` (its
probabilities on every row and the rows it trained on). assay trains K *reference*
models itself on random subsets of the same size (:func:`~assay.engine.predictions.reference_plan`
and the population engine), then stacks the target after them as model K of one
population and attacks model K only. Every reference is a reference of the target: it
has no complementary partner to leave out, so LiRA and RMIA see all K.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from assay._stats import Estimate
from assay._validation import DataError, InvalidParameterError
from assay.engine import Population, PopulationPlan
from assay.engine.predictions import TargetPredictions
from assay.privacy.membership.attacks import DEFAULT_FPRS, LIRA_MIN_REFS
from assay.privacy.membership.mia import _check_attacks, run_mia
from assay.privacy.membership.results import MIAResult, risk_statement
from assay.privacy.membership.scoring import complement_partners

__all__ = ["LIRA_REFS_PER_SIDE", "REFERENCE_DRAWS", "applicable_attacks", "attack_target",
           "reference_note"]

#: Bootstrap draws of the reference models behind a single audited model's TPR intervals:
#: with one target there is no spread across targets to show how much the figure owes to
#: the particular references drawn, so the references are resampled instead.
REFERENCE_DRAWS = 20

#: Fewest IN (online) and OUT references per row for LiRA: a Gaussian per row needs a
#: mean over more than one model, else the audit measures one reference's noise.
LIRA_REFS_PER_SIDE = 2


def _check_pair(references: Population, target: TargetPredictions) -> None:
    if not isinstance(references, Population):
        raise InvalidParameterError(f"references must be an assay.engine.Population. "
                                    f"Got {type(references).__name__}.")
    if not isinstance(target, TargetPredictions):
        raise InvalidParameterError("target must be an assay.engine.predictions.TargetPredictions. "
                                    f"Got {type(target).__name__}.")
    if (references.n_rows, references.n_classes) != (target.n_rows, target.n_classes):
        raise DataError(
            f"references must cover the target's {target.n_rows} rows and {target.n_classes} "
            f"classes. Got {references.n_rows} rows and {references.n_classes} classes; train "
            "them on the same dataset.")


def _side_counts(references: Population) -> tuple[np.ndarray, np.ndarray]:
    n_in = references.member.sum(axis=0)
    return n_in, references.n_models - n_in


def applicable_attacks(references: Population, target: TargetPredictions
                       ) -> dict[str, dict[str, Any]]:
    """Which attacks these references support against this target, and why not.

    Parameters
    ----------
    references : Population
        The reference models (all K serve the target).
    target : TargetPredictions

    Returns
    -------
    dict
        For every name in ``ATTACKS``: ``{"applies": bool, "reason": str}``; the reason
        says what is missing, or how the attack will run (e.g. LiRA's pooled variance).
    """
    _check_pair(references, target)
    n_in, n_out = _side_counts(references)
    fewest_in, fewest_out = int(n_in.min()), int(n_out.min())
    k = references.n_models
    need = LIRA_REFS_PER_SIDE

    def lira_mode(fewest: int) -> str:
        if fewest >= LIRA_MIN_REFS:
            return f"per-row variances (at least {LIRA_MIN_REFS} references per side)"
        return (f"one variance pooled over all rows (fewer than {LIRA_MIN_REFS} references "
                "per side)")

    def verdict(ok: bool, why_not: str, how: str) -> dict[str, Any]:
        return {"applies": bool(ok), "reason": how if ok else why_not}

    sides = f"every row has {fewest_in}+ IN and {fewest_out}+ OUT of the {k} references"
    return {
        "loss": verdict(True, "", "needs only the audited model's predictions"),
        "lira": verdict(
            fewest_in >= need and fewest_out >= need,
            f"online LiRA needs at least {need} IN and {need} OUT references on every row. "
            f"Got rows with {fewest_in} IN and {fewest_out} OUT; train more references or "
            "use lira_offline",
            f"{sides}; {lira_mode(min(fewest_in, fewest_out))}"),
        "lira_offline": verdict(
            fewest_out >= need,
            f"offline LiRA needs at least {need} OUT references on every row. Got rows with "
            f"{fewest_out}; train more references",
            f"every row has {fewest_out}+ OUT references; {lira_mode(fewest_out)}"),
        "rmia": verdict(
            fewest_in >= 1 and fewest_out >= 1,
            f"online RMIA needs at least one IN and one OUT reference on every row. Got rows "
            f"with {fewest_in} IN and {fewest_out} OUT; train more references or use "
            "rmia_offline",
            sides),
        "rmia_offline": verdict(
            fewest_out >= 1,
            "offline RMIA needs at least one OUT reference on every row. Got rows with none; "
            "train more references",
            f"every row has {fewest_out}+ OUT references"),
    }


def reference_note(plan: PopulationPlan | Population) -> str:
    """Plain-language account of how the reference models' IN/OUT rows were drawn.

    Parameters
    ----------
    plan : PopulationPlan or Population
        The reference plan (e.g. from `assay.engine.predictions.reference_plan`) or the
        population fitted from it.

    Returns
    -------
    str
        One paragraph for the result and the report.
    """
    if not isinstance(plan, PopulationPlan | Population):
        raise InvalidParameterError(f"plan must be a PopulationPlan or a Population. "
                                    f"Got {type(plan).__name__}.")
    member = np.asarray(plan.member)
    k, n = member.shape
    params = plan.params if isinstance(plan, PopulationPlan) else plan.info.get("plan_params",
                                                                               {})
    sizes = member.sum(axis=1)
    per_row = member.sum(axis=0)
    size_text = (f"a random {int(sizes[0]):,} of the {n:,} rows" if sizes.min() == sizes.max()
                 else f"a random {int(sizes.min()):,} to {int(sizes.max()):,} of the {n:,} rows")
    mimic = (" (as many as the audited model's training set)"
             if params.get("reference_for") == "predictions" else "")
    low, high = int(per_row.min()), int(per_row.max())
    if low == high:
        balance = f"every row is IN for {low} references and OUT for {k - low}"
    else:
        balance = (f"every row is IN for {low} to {high} references and OUT for the other "
                   f"{k - high} to {k - low}")
    partners = complement_partners(member)
    if k >= 2 and np.all(partners >= 0):
        balance += " (complementary pairs: each reference's OUT rows are another's IN rows)"
    return (f"{k} reference models trained by assay, each on {size_text}{mimic}, with the "
            f"same learner; {balance}. For each row, the attack compares the audited model's "
            "output with the references that trained on the row (IN) and those that did not "
            "(OUT).")


def attack_target(
    references: Population,
    target: TargetPredictions,
    *,
    attacks: Sequence[str] = ("loss", "lira", "rmia"),
    groups: Any = None,
    row_ids: Any = None,
    fprs: Sequence[float] = DEFAULT_FPRS,
    reference_draws: int = REFERENCE_DRAWS,
    **run_mia_kwargs: Any,
) -> MIAResult:
    """Attack the model under audit with assay's reference models.

    The target's probabilities and membership become model K after the K references of
    one population, and `run_mia` attacks model K only (all K models are its references).
    Each TPR interval then covers the rows (as `run_mia`'s) *and* the reference draw: the
    K references are resampled with replacement `reference_draws` times, the attack is
    rerun on each draw, and half the central range of the draws' TPRs is added to each
    side of the row interval in quadrature (`widen_by_reference_draws`).

    Parameters
    ----------
    references : Population
        Reference models fitted on the same dataset, e.g. from
        ``population_fitter(dataset.X, dataset.y)(reference_plan(target, K), learner)``.
    target : TargetPredictions
        The model under audit.
    attacks : sequence of str, default=("loss", "lira", "rmia")
        Any of ``ATTACKS``; each must apply (see `applicable_attacks`).
    groups : DataFrame, optional
        Protected attributes for per-group vulnerability.
    row_ids : array-like, optional
        Row identifiers of the most exposed records.
    fprs : sequence of float, default=(0.1, 0.01, 0.001)
    reference_draws : int, default=REFERENCE_DRAWS
        Bootstrap draws of the references (0: row-level intervals only).
    **run_mia_kwargs
        Other options of `run_mia` (``min_support``, ``n_permutations``, ``confidence``,
        ``lira_min_refs``, ...); not ``targets`` nor ``n_targets``.

    Returns
    -------
    MIAResult
        ``n_models`` counts the references and the target; ``config`` adds ``target``
        (its summary), ``n_references``, ``references`` (`reference_note`) and
        ``reference_draws`` (draws run and, per attack and FPR, the half-range added).

    Raises
    ------
    DataError
        References for another table, or an attack these references cannot support.
    """
    _check_pair(references, target)
    names = _check_attacks(attacks)
    from assay._validation import check_scalar

    reference_draws = check_scalar(reference_draws, "reference_draws", kind=int, low=0,
                                   high=10_000)
    for key in ("targets", "n_targets"):
        if key in run_mia_kwargs:
            raise InvalidParameterError(f"{key} must not be given: the audited model is the "
                                        f"only target. Got {key}={run_mia_kwargs[key]!r}.")
    verdicts = applicable_attacks(references, target)
    for name in names:
        if not verdicts[name]["applies"]:
            raise DataError(f"attacks must apply to these references: {verdicts[name]['reason']}.")
    k = references.n_models
    population = Population(
        probs=np.concatenate([references.probs,
                              target.probs[None].astype(references.probs.dtype)]),
        member=np.concatenate([references.member, target.member[None]]),
        y=references.y,
        info={**references.info, "target": target.summary()},
    )
    result = run_mia(population, attacks=names, groups=groups, row_ids=row_ids, fprs=fprs,
                     targets=[k], **run_mia_kwargs)
    result.config.update({"target": target.summary(), "n_references": int(k),
                          "references": reference_note(references)})
    if reference_draws:
        widen_by_reference_draws(result, population, names, reference_draws, run_mia_kwargs)
    return result


def widen_by_reference_draws(result: MIAResult, population: Population,
                             names: Sequence[str], draws: int,
                             run_mia_kwargs: dict[str, Any]) -> None:
    """Add the reference draw's variation to `result`'s TPR intervals, in place.

    `population` is the references followed by the target (model K). Each draw resamples
    the K references with replacement and reruns the attacks on the target alone (no
    groups, no tests); a draw an attack cannot run on (too few references on a side for
    some row) is left out for that attack. For every estimable TPR, half the central
    ``confidence`` range of the draws' TPRs is added in quadrature to each side of the
    row interval, and the risk statement is restated from the widened figures.
    """
    from assay._validation import DataError

    k = population.n_models - 1
    keep = {key: run_mia_kwargs[key] for key in
            ("confidence", "lira_min_refs", "rmia_a", "rmia_gamma", "random_state")
            if key in run_mia_kwargs}
    confidence = float(run_mia_kwargs.get("confidence", result.confidence))
    rng = np.random.default_rng(run_mia_kwargs.get("random_state", 0))
    tprs: dict[str, list[list[float]]] = {name: [] for name in names}
    for _ in range(draws):
        pick = np.r_[np.sort(rng.integers(0, k, k)), k]
        drawn = Population(probs=population.probs[pick], member=population.member[pick],
                           y=population.y, info=population.info)
        for name in names:
            try:
                again = run_mia(drawn, attacks=[name], fprs=result.fprs, targets=[k],
                                n_permutations=0, n_records=0, **keep)
            except DataError:
                continue
            tprs[name].append([again.attacks[name].tpr_at_fpr[a].value for a in result.fprs])
    spread: dict[str, dict[str, float | None]] = {}
    q = [(1 - confidence) / 2, (1 + confidence) / 2]
    for name in names:
        attack, values = result.attacks[name], np.asarray(tprs[name], dtype=float)
        spread[name] = {}
        for i, a in enumerate(result.fprs):
            e = attack.tpr_at_fpr[a]
            column = values[:, i][np.isfinite(values[:, i])] if values.size else values
            if not np.isfinite(e.value) or column.size < 2:
                spread[name][f"{a:g}"] = None
                continue
            lo, hi = np.quantile(column, q)
            half = float(hi - lo) / 2
            spread[name][f"{a:g}"] = half
            attack.tpr_at_fpr[a] = Estimate(
                e.value, max(0.0, e.value - float(np.hypot(e.value - e.ci_low, half))),
                min(1.0, e.value + float(np.hypot(e.ci_high - e.value, half))))
    result.config["reference_draws"] = {"draws": int(draws), "tpr_half_range": spread}
    result.risk = risk_statement(result.attacks, result.fprs, result.n_rows,
                                 run_mia_kwargs.get("risk_fpr"), run_mia_kwargs.get("prior"))
