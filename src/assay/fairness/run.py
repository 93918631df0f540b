"""The fairness section's work: measure the model under audit, then the front and the fix.

1. **Measure** the model under audit (`AuditContext.target`: the user's predictions, or
   model 0 of the population) on the rows it did not train on: rates per group and
   intersection with intervals, gaps with bootstrap intervals, flags by the group
   layer's rule (`assay.fairness.metrics`).
2. **Spread**: with a population of models trained by assay, each gap's signed value on
   every model's held-out rows; a gap whose sign flips across equally good models is
   reported as such, not as a finding.
3. **Mitigate** (`assay.fairness.pareto`): fair boosting is fitted on the rows the model
   under audit trained on; the post-processors (group thresholds, score transformer)
   read its scores and are fitted on one half of its held-out rows; every candidate is
   scored on the other half. The front's models and model cards are written under
   ``<out>/fairness/`` (skops, no pickle) and the page links them relatively.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assay._serial import Serial, meta
from assay._validation import DataError, InvalidParameterError
from assay.fairness.metrics import GAP_NAMES, FairnessReport, GapSpread
from assay.groups import FlagRule
from assay.report.result import Metric, SectionResult, format_figure

__all__ = ["FairnessPayload", "check_fairness", "run_fairness", "plain_lines"]

#: Folder of the exported models, relative to the audit's out folder.
EXPORT_DIR = "fairness"

_RATE_WORDS = {
    "selection_rate": ("selected", "", "selection rate"),
    "tpr": ("selected", " among qualified applicants", "true positive rate"),
    "fpr": ("wrongly selected", " among unqualified applicants", "false positive rate"),
    "ppv": ("right when selected", "", "precision"),
}


def _regression_type() -> type:
    from assay.fairness.regression_audit import RegressionFairnessPayload

    return RegressionFairnessPayload


@dataclass
class FairnessPayload(Serial):
    """Everything the fairness section found (``SectionResult.data``).

    Attributes
    ----------
    report : FairnessReport
        The model under audit on its held-out rows.
    constraint : str
    flag_rule : FlagRule
    target : dict
        Which model was measured, on how many rows.
    spread : list of GapSpread
        Each gap over the population's models (empty with a model of the user's own).
    front : FrontResult or None
    exports : dict of str to dict
        Candidate index -> ``{"model": path, "card": path}`` relative to the out folder.
    no_front : str
        Why no mitigation front was built though one was asked for ("" otherwise).
    """

    report: FairnessReport
    constraint: str = field(metadata=meta(schema={"enum": ["dp", "eo", "eodds"]}))
    flag_rule: FlagRule
    target: dict[str, Any] = field(default_factory=dict,
                                   metadata=meta(schema={"required": ["source"]}))
    spread: list[GapSpread] = field(default_factory=list)
    front: Any = field(default=None, metadata=meta(hint=lambda: _front_type()))
    exports: dict[str, dict[str, str]] = field(default_factory=dict)
    no_front: str = ""
    pending: Any = field(default=None, repr=False, compare=False, metadata=meta(skip=True))

    __json_required__ = ("target", "spread", "front", "exports")
    # A regression model's payload (``task``) reads as its own type.
    __json_variants__ = ("task", {"regression": _regression_type})


def _front_type() -> Any:
    from assay.fairness.pareto import FrontResult  # it imports the metrics this module does

    return FrontResult | None


# --------------------------------------------------------------------------- checks


def check_fairness(context: Any, options: Any) -> None:
    """Before training: the optional reductions backend must be importable, a
    gradient-boosting baseline is not asked of a model of the user's own, and the
    regression front's options are left out."""
    changed = [name for name in ("regression_methods", "regression_gap", "regression_error")
               if getattr(options, name) != getattr(type(options)(), name)]
    if changed:
        raise InvalidParameterError(
            f"fairness.{changed[0]} must be left out for a classifier (it sets a regression "
            f"model's mitigation front). Got {getattr(options, changed[0])!r}.")
    if options.baseline == "gradient_boosting" and context.brings_own_model:
        raise InvalidParameterError(
            "fairness.baseline must be 'target' with a model of your own (it is the "
            "unmitigated model). Got 'gradient_boosting'.")
    if "reductions" in options.methods:
        try:
            import fairlearn.reductions  # noqa: F401
        except ImportError:
            raise InvalidParameterError(
                "fairness.methods must not include 'reductions' without fairlearn "
                "installed (pip install fairlearn). Got 'reductions'.") from None


# --------------------------------------------------------------------------- run


def _halves(rows: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified halves of `rows` (calibration, test)."""
    from sklearn.model_selection import train_test_split

    strat = y[rows] if np.bincount(y[rows], minlength=2).min() >= 2 else None
    cal, test = train_test_split(rows, test_size=0.5, random_state=seed, stratify=strat)
    return np.sort(cal), np.sort(test)


def run_fairness(section: Any, context: Any, options: Any) -> SectionResult:
    """The fairness section's result for one audit."""
    from assay.fairness.metrics import fairness_metrics, gap_spread

    config = context.config
    dataset = context.dataset
    y = dataset.y.astype(np.int64)
    if options.baseline == "gradient_boosting":
        return _run_on_gradient_boosting(section, context, options, y)
    score = np.asarray(context.target.probs[:, 1], dtype=np.float64)
    member = np.asarray(context.target.member, dtype=bool)
    held = np.flatnonzero(~member)
    policy = context.group_policy.for_section(options.min_gap, "less")
    rule = policy.flag_rule
    groups_held = dataset.groups.iloc[held].reset_index(drop=True)
    report = fairness_metrics(
        y[held], (score[held] >= 0.5).astype(np.int64), groups_held, scores=score[held],
        min_count=options.min_count, n_bootstrap=options.n_bootstrap,
        **policy.test_options(), random_state=config.seed)
    target = {**context.target.summary(), "rows_measured": int(len(held))}
    payload = FairnessPayload(report=report, constraint=options.constraint, flag_rule=rule,
                              target=target)
    population = context.population
    if population is not None and not context.brings_own_model and population.n_models > 1:
        decisions = population.probs[:, :, 1] >= 0.5
        payload.spread = gap_spread(report, y, decisions, ~population.member, context.groups)
    if options.methods:
        _mitigate(payload, context, options, y, score, member)
    return SectionResult(name=section.name, title=section.title,
                         summary=plain_lines(payload), metrics=_metrics(payload),
                         data=payload)


#: The unmitigated model of ``baseline = "gradient_boosting"``.
GRADIENT_BOOSTING = ("gradient boosting (unmitigated, scikit-learn "
                     "HistGradientBoostingClassifier)")


def table_split(y: np.ndarray, test_size: float, seed: int):
    """(train, calibration, test) row positions of a stratified split of the table: the
    test share held out, a quarter of the rest calibrating."""
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(y))
    train, test = train_test_split(rows, test_size=test_size, random_state=seed, stratify=y)
    fit, cal = train_test_split(train, test_size=0.25, random_state=seed, stratify=y[train])
    return np.sort(fit), np.sort(cal), np.sort(test)


def _run_on_gradient_boosting(section: Any, context: Any, options: Any, y) -> SectionResult:
    """The front around gradient boosting fitted on a split of the table (no model under
    audit); the report measures that model on the rows it did not train on."""
    from assay.fairness.metrics import fairness_metrics
    from assay.fairness.pareto import build_front

    config = context.config
    dataset = context.dataset
    X = dataset.dense_X("the fairness section's mitigation front")
    train, cal, test = table_split(y, options.test_size, config.seed)
    front = build_front(
        X, y, dataset.groups, train=train, calibration=cal, test=test,
        constraint=options.constraint, methods=options.methods,
        baseline_name=GRADIENT_BOOSTING, prefer=options.prefer,
        min_support=context.group_policy.min_support, min_count=options.fix_min_count,
        n_bootstrap=min(options.n_bootstrap, 200), n_rounds=options.n_rounds,
        min_reduction=options.min_reduction, max_cost=options.max_cost,
        confirm_by=options.confirm_by, random_state=config.seed, n_jobs=options.n_jobs)
    held = np.sort(np.concatenate([cal, test]))
    score = front.baseline_candidate.model.predict_proba(X[held])[:, 1]
    policy = context.group_policy.for_section(options.min_gap, "less")
    report = fairness_metrics(
        y[held], (score >= 0.5).astype(np.int64),
        dataset.groups.iloc[held].reset_index(drop=True), scores=score,
        min_count=options.min_count, n_bootstrap=options.n_bootstrap,
        **policy.test_options(), random_state=config.seed)
    payload = FairnessPayload(report=report, constraint=options.constraint,
                              flag_rule=policy.flag_rule,
                              target={"source": GRADIENT_BOOSTING,
                                      "rows_measured": int(held.size)},
                              front=front)
    if options.export:
        payload.exports = plan_exports(front)
        payload.pending = (Path(context.out_dir), _dataset_info(context), dataset.n_features)
    return SectionResult(name=section.name, title=section.title,
                         summary=plain_lines(payload), metrics=_metrics(payload),
                         data=payload)


def _mitigate(payload: FairnessPayload, context: Any, options: Any, y, score, member) -> None:
    from assay.fairness.pareto import build_front

    config = context.config
    held = np.flatnonzero(~member)
    cal, test = _halves(held, y, config.seed)
    try:
        X = context.dataset.dense_X("the fairness section's mitigation front")
    except DataError as exc:
        # The audited model's rates and gaps need no features: keep them, say why no front.
        payload.no_front = str(exc)
        return
    front = build_front(
        X, y, context.dataset.groups,
        train=np.flatnonzero(member),
        calibration=cal, test=test, constraint=options.constraint,
        methods=options.methods, base_scores=score,
        baseline_name=context.target.source, prefer=options.prefer,
        min_support=context.group_policy.min_support, min_count=options.fix_min_count,
        n_bootstrap=min(options.n_bootstrap, 200), n_rounds=options.n_rounds,
        min_reduction=options.min_reduction, max_cost=options.max_cost,
        confirm_by=options.confirm_by, random_state=config.seed, n_jobs=options.n_jobs)
    payload.front = front
    if options.export:
        # Written with the report (`write_pending_exports`, from the page), not here:
        # an audit run with write=False leaves nothing on disk.
        payload.exports = plan_exports(front)
        payload.pending = (Path(context.out_dir), _dataset_info(context),
                           context.dataset.n_features)


def _dataset_info(context: Any) -> dict[str, Any]:
    d = context.dataset
    return {"name": d.name, "fingerprint": d.fingerprint, "target": d.target,
            "protected": list(d.protected), "n_rows": d.n_rows}


def plan_exports(front: Any) -> dict[str, dict[str, str]]:
    """Where the model (skops) and card of the chosen model (only a confirmed fix), the
    baseline and every front candidate go, relative to the out folder."""
    exports: dict[str, dict[str, str]] = {}
    wanted = {c.index for c in front.front} | {front.preferred, front.baseline}
    if front.chosen is not None:
        wanted.add(front.chosen)
    for cand in front.candidates:
        if cand.index not in wanted:
            continue
        chosen = cand.index == front.chosen
        stem = "model" if chosen else f"candidate-{cand.index}"
        entry = {"card": f"{EXPORT_DIR}/{'model_card' if chosen else stem}.md"}
        if cand.model is not None:
            entry["model"] = f"{EXPORT_DIR}/{stem}.skops"
        exports[str(cand.index)] = entry
    return exports


def write_exports(front: Any, exports: dict[str, dict[str, str]], out_dir: Path,
                  dataset: dict[str, Any], n_features: int) -> None:
    """Write the planned models and cards under `out_dir` (models still in memory only)."""
    from assay.fairness.export import export_model, model_card

    out_dir = Path(out_dir)
    (out_dir / EXPORT_DIR).mkdir(parents=True, exist_ok=True)
    for key, entry in exports.items():
        cand = front.candidates[int(key)]
        info = None
        if "model" in entry and cand.model is not None:
            info = export_model(cand.model, out_dir / entry["model"], n_features=n_features)
        card = model_card(cand, front, dataset=dataset, export=info, inputs=_inputs(cand))
        (out_dir / entry["card"]).write_text(card, encoding="utf-8")


def write_pending_exports(payload: FairnessPayload) -> None:
    """Write the exports of a payload fresh from `run_fairness` (once; no-op otherwise)."""
    if payload.pending is None or payload.front is None:
        return
    out_dir, dataset, n_features = payload.pending
    payload.pending = None
    write_exports(payload.front, payload.exports, out_dir, dataset, n_features)


def _inputs(cand: Any) -> str:
    if cand.model is None:
        return "the audited model itself (not exported by assay)"
    if getattr(cand.model, "estimator", "absent") is None:
        return ("the audited model's score (probability of the favourable class) as X, "
                "and the protected columns as sensitive_features")
    if cand.method == "fair_boost":
        return "assay's encoded feature matrix (see the data notes of the audit)"
    return ("assay's encoded feature matrix, and the protected columns as "
            "sensitive_features")


# --------------------------------------------------------------------------- words


def pair_line(report: FairnessReport, name: str) -> str | None:
    """"Black women are selected 9.1 points [6.3, 11.8] less often than white men among
    qualified applicants", for the largest `name` gap whose pair is known.

    The figure is the gap's own `Gap.difference` (the same value as the pair's), so the
    sentence, the card, the gap table and ``metrics`` show one estimate with one interval.
    """
    gap = report.worst(name)
    if gap is None or gap.pair is None or gap.best is None:
        return None
    verb, among, _ = _RATE_WORDS[gap.rate]
    return (f"{gap.worst} are {verb} {format_figure(gap.difference, 'gap')} less often "
            f"than {gap.best}{among} ({GAP_NAMES[name]} gap on {gap.grouping}).")


def plain_lines(payload: FairnessPayload) -> list[str]:
    """Plain-language findings, the headline first."""
    report = payload.report
    lines = []
    line = pair_line(report, payload.constraint)
    if line:
        lines.append(line)
    gap = report.worst(payload.constraint)
    if gap is not None:
        d = gap.difference
        lines.append(
            f"Largest {GAP_NAMES[payload.constraint]} gap: {format_figure(d, 'gap')} on "
            f"{gap.grouping} "
            f"({gap.n_groups} groups with at least {report.min_support} rows and "
            f"{report.min_count} in the rate's denominator).")
    flagged = report.flagged()
    if flagged:
        names = ", ".join(f"{g.label} ({', '.join(g.flags)})" for g in flagged[:4])
        more = f" and {len(flagged) - 4} more" if len(flagged) > 4 else ""
        lines.append(f"Flagged groups: {names}{more}. Flagged because "
                     f"{payload.flag_rule.describe('the overall rate')}.")
    elif report.flag_rule is not None:
        lines.append(f"No group is flagged ({payload.flag_rule.describe('the overall rate')} "
                     f"is needed).")
    flips = [s for s in payload.spread if s.name == payload.constraint and s.sign_flips]
    if flips:
        lines.append(f"Across the population's {len(flips[0].values)} equally trained models "
                     f"the {payload.constraint} gap between {flips[0].best} and "
                     f"{flips[0].worst} changes sign: not a finding about the groups.")
    if payload.no_front:
        lines.append(f"No mitigation front was built: {payload.no_front}")
    front = payload.front
    if front is not None:
        # The verdict first: it is what a reader acts on.
        lines.append(front.verdict_text())
        lines.append(f"{len(front.candidates)} candidates scored on "
                     f"{front.rows.get('test')} held-out rows: {len(front.front)} on the "
                     f"front, {len(front.rejected)} rejected.")
    return lines


def _metrics(payload: FairnessPayload) -> dict[str, Metric]:
    report = payload.report
    out: dict[str, Metric] = {}
    for name, title in GAP_NAMES.items():
        gap = report.worst(name)
        if gap is not None:
            out[f"{name}_gap"] = Metric.of(gap.difference, f"largest {title} gap")
    out["flagged_groups"] = Metric(value=float(len(report.flagged())),
                                   label="groups flagged as treated worse")
    out["balanced_accuracy"] = Metric.of(report.overall["balanced_accuracy"],
                                       "balanced accuracy (held-out)")
    out["balanced_accuracy"].higher_is_worse = False
    front = payload.front
    comp = None if front is None or front.verdict is None else front.verdict.comparison
    if front is not None and front.chosen is not None and comp is not None:
        # Only a confirmed fix has figures, and those of the confirmation rows.
        c = front.confirmation["candidate"]
        out["chosen.balanced_accuracy"] = Metric.of(
            c.balanced_accuracy, "chosen fair model: balanced accuracy (confirmation rows)")
        out["chosen.balanced_accuracy"].higher_is_worse = False
        out[f"chosen.{payload.constraint}_gap"] = Metric.of(
            comp.gap, f"chosen fair model: largest {payload.constraint} gap (confirmation "
            f"rows)")
        out[f"chosen.{payload.constraint}_gap_difference"] = Metric.of(
            comp.difference, f"chosen fair model: {payload.constraint} gap minus the "
            f"unmitigated model's (confirmation rows, paired)")
    return out
