"""The fairness section on a regression model: errors, residuals and distributions by group.

The model under audit (model 0 of the regression population) is measured on the rows it
did not train on (`regression_fairness_metrics`): per group and intersection MAE, RMSE,
mean residual (prediction − truth: over- or under-prediction), MSE (bounded group loss),
Kolmogorov-Smirnov and Wasserstein-1 distance between the group's predictions and everyone
else's, and calibration (slope, intercept), each with a bootstrap interval; gaps (largest
minus smallest supported group) with intervals.

With a ``decision_threshold`` (the audit's ``--decision-threshold``) the decision the
prediction feeds, ``prediction > threshold`` against ``truth > threshold``, is measured as
a classifier's is (`fairness_metrics`: selection rate, TPR, FPR per group with intervals,
demographic parity, equal opportunity and equalized odds gaps, groups flagged whose rate
falls short of the overall one).

Flags (the audit's `GroupPolicy`): a group is flagged when its error is significantly above
everyone's (max-T permutation test within the grouping of the per-person absolute error
over the overall MAE) by at least ``min_gap`` (0.05: a 5 % higher MAE), or its mean
residual is significantly away from everyone's (either direction) by at least ``min_gap``
times the overall MAE.

The mitigation front (`assay.fairness.regression_front`: Wasserstein-barycenter
post-processing and fairlearn's bounded group loss, fitted on the rows the model trained on,
chosen on half of its held-out rows and confirmed on the other half, or cross-fitted over
all of them where half lacks group support) says whether a model whose groups' prediction
distributions are closer is a fix, or why not. A confirmed barycenter fix is written under
``<out>/fairness/`` (``model.skops``, reading the audited model's prediction and the groups
from X by name, and ``model_card.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assay._serial import Serial, meta
from assay._stats import Estimate
from assay._validation import InvalidParameterError

__all__ = ["RegressionFairnessPayload", "RegressionFlag", "regression_flags",
           "run_regression_fairness"]

#: Folder of the exported fix, relative to the audit's out folder (as a classifier's).
EXPORT_DIR = "fairness"
#: Why no front is built when no method is asked for.
NO_FRONT = "no mitigation method was asked for (fairness.regression_methods is empty)"
#: Gaps shown (KS and Wasserstein-1 are each group's distance from the rest: with two
#: groups both are equal, so their largest value is shown instead of a gap).
GAP_FIGURES = ("mae", "rmse", "mean_residual", "calibration_slope")
#: Words of the overall figures.
OVERALL_WORDS = {"mae": "MAE", "rmse": "RMSE", "mean_residual": "mean residual", "mse": "MSE",
                 "calibration_slope": "calibration slope",
                 "calibration_intercept": "calibration intercept"}
#: Figures shown per group, with their words.
FIGURES = {"mae": "MAE", "rmse": "RMSE", "mean_residual": "mean residual", "ks": "KS",
           "wasserstein": "Wasserstein-1", "calibration_slope": "calibration slope"}


@dataclass
class RegressionFlag(Serial):
    """The group test of one figure of one group.

    Attributes
    ----------
    grouping, label : str
    metric : {"mae", "mean_residual"}
    difference : float or None
        Group minus everyone, in units of the overall MAE (0.05: 5 % of it).
    p_value : float
    flagged : bool
    """

    grouping: str
    label: str
    metric: str = field(metadata=meta(schema={"enum": ["mae", "mean_residual"]}))
    difference: float | None
    p_value: float
    flagged: bool


@dataclass
class RegressionFairnessPayload(Serial):
    """Everything the fairness section found on a regression model.

    Attributes
    ----------
    report : RegressionFairnessReport
        The model under audit on its held-out rows.
    flag_rule : FlagRule
        The error rule (direction "greater"); the mean residual is tested in both
        directions with the same level and smallest difference.
    flags : list of RegressionFlag
        Every supported group's tests.
    target : dict
        Which model was measured, on how many rows.
    front : RegressionFront or None
        The mitigation front and its verdict.
    no_front : str
        Why no mitigation front was built ("" when it was).
    decision_threshold : float or None
    decision : FairnessReport or None
        The decision ``prediction > decision_threshold`` measured as a classifier's.
    decision_note : str
        Why the decision was not measured though a threshold was given ("" otherwise).
    exports : dict of str to str
        The confirmed fix's ``model`` (skops) and ``card`` paths relative to the out
        folder (``fairness.export``); empty without a confirmed fix.
    task : "regression"
    """

    report: Any = field(metadata=meta(hint=lambda: _late()["report"]))
    flag_rule: Any = field(metadata=meta(hint=lambda: _late()["flag_rule"]))
    flags: list[RegressionFlag] = field(default_factory=list)
    target: dict[str, Any] = field(default_factory=dict,
                                   metadata=meta(schema={"required": ["source"]}))
    front: Any = field(default=None, metadata=meta(hint=lambda: _late()["front"]))
    no_front: str = NO_FRONT
    decision_threshold: float | None = None
    decision: Any = field(default=None, metadata=meta(hint=lambda: _late()["decision"]))
    decision_note: str = ""
    exports: dict[str, str] = field(default_factory=dict)
    task: str = field(default="regression", metadata=meta(schema={"const": "regression"}))
    # In memory only: what a confirmed fix is exported with (`_plan_fix`).
    pending: Any = field(default=None, repr=False, compare=False, metadata=meta(skip=True))

    __json_required__ = ("flags", "target", "front", "no_front", "exports", "task")

    def flagged(self) -> list[RegressionFlag]:
        """Flagged tests, single attributes first, then by size of the difference."""
        found = [f for f in self.flags if f.flagged]
        found.sort(key=lambda f: (len(f.grouping.split(" & ")), -abs(f.difference or 0.0)))
        return found


def _late() -> dict[str, Any]:
    from assay.fairness.metrics import FairnessReport
    from assay.fairness.regression import RegressionFairnessReport
    from assay.fairness.regression_front import RegressionFront
    from assay.groups import FlagRule

    return {"report": RegressionFairnessReport, "flag_rule": FlagRule,
            "decision": FairnessReport | None, "front": RegressionFront | None}


def _fairlearn_missing() -> bool:
    try:
        import fairlearn.reductions  # noqa: F401
    except ImportError:
        return True
    return False


def check_regression_fairness(context: Any, options: Any) -> None:
    """Before training: bounded group loss needs fairlearn."""
    if "bounded_group_loss" in options.regression_methods and _fairlearn_missing():
        raise InvalidParameterError(
            "fairness.regression_methods must not include 'bounded_group_loss' without "
            "fairlearn installed (pip install fairlearn). Got 'bounded_group_loss'.")


def regression_flags(y: Any, pred: Any, index: Any, policy: Any,
                     random_state: int = 0) -> list[RegressionFlag]:
    """Group tests of the absolute error (greater) and the residual (both directions),
    both over the overall MAE, by `policy` (the section's `GroupPolicy`)."""
    from dataclasses import replace

    from assay.groups import permutation_test

    r = np.asarray(pred, dtype=np.float64) - np.asarray(y, dtype=np.float64)
    scale = max(float(np.abs(r).mean()), np.finfo(float).tiny)
    out = []
    for metric, stat, direction in (("mae", np.abs(r) / scale, "greater"),
                                    ("mean_residual", r / scale, "both")):
        rule = replace(policy.flag_rule, direction=direction)
        tests = permutation_test(stat, index, min_support=policy.min_support,
                                 n_permutations=policy.n_permutations, direction=direction,
                                 random_state=random_state)
        for grouping in index.groupings:
            test = tests[grouping.key]
            supported = grouping.supported(policy.min_support)
            for k, label in enumerate(grouping.labels):
                if not supported[k]:
                    continue
                diff, p = float(test.difference[k, 0]), float(test.p_value[k, 0])
                out.append(RegressionFlag(
                    grouping.key, label, metric, diff if np.isfinite(diff) else None, p,
                    bool(policy.n_permutations > 0 and rule.flags(diff, p))))
    return out


def run_regression_fairness(section: Any, context: Any, options: Any):
    """The fairness section's result for an audit of a regression model."""
    from assay.fairness.regression import regression_fairness_metrics
    from assay.groups import GroupIndex
    from assay.report.result import SectionResult

    config, dataset, target = context.config, context.dataset, context.target
    rows = np.flatnonzero(~np.asarray(target.member, dtype=bool))
    y = np.asarray(dataset.y, dtype=np.float64)[rows]
    pred = np.asarray(target.values, dtype=np.float64)[rows]
    index = GroupIndex.from_frame(dataset.groups.iloc[rows].reset_index(drop=True),
                                  max_intersection=config.groups.max_intersection)
    policy = context.group_policy.for_section(options.min_gap, "greater")
    report = regression_fairness_metrics(y, pred, index, min_support=policy.min_support,
                                         n_bootstrap=options.n_bootstrap,
                                         random_state=config.seed)
    payload = RegressionFairnessPayload(
        report=report, flag_rule=policy.flag_rule,
        flags=regression_flags(y, pred, index, policy, config.seed),
        target={"source": target.source, "n_rows": int(rows.size),
                "rows": "the model's held-out rows (not trained on)"},
        decision_threshold=config.decision_threshold)
    if config.decision_threshold is not None:
        payload.decision, payload.decision_note = decision_report(
            y, pred, index, config.decision_threshold, context.group_policy, options,
            config.seed)
    if options.regression_methods:
        payload.front, payload.no_front = _front(context, options), ""
        if payload.front.fixed and payload.front.preferred_candidate.model is not None:
            _plan_fix(payload, context, options)
    return SectionResult(name=section.name, title=section.title,
                         summary=summary_lines(payload), metrics=gate_metrics(payload),
                         data=payload)


def _front(context: Any, options: Any) -> Any:
    """The mitigation front around the model under audit (`build_regression_front`)."""
    from assay.fairness.regression_front import build_regression_front

    config, dataset, target = context.config, context.dataset, context.target
    member = np.asarray(target.member, dtype=bool)
    methods = list(options.regression_methods)
    X = (dataset.dense_X("the regression fairness front's bounded group loss")
         if "bounded_group_loss" in methods else None)
    front = build_regression_front(
        dataset.y, target.values, dataset.groups, train=np.flatnonzero(member),
        held=np.flatnonzero(~member), X=X, methods=methods,
        distance=options.regression_gap, error=options.regression_error,
        min_rows=options.fix_min_count, max_cost=options.max_cost,
        min_reduction=options.min_reduction, n_bootstrap=min(options.n_bootstrap, 200),
        max_intersection=config.groups.max_intersection, confirm_by=options.confirm_by,
        random_state=config.seed)
    return front


def _plan_fix(payload: RegressionFairnessPayload, context: Any, options: Any) -> None:
    """What the confirmed fix is exported with (in memory: ``assay fair --export`` reads
    it too) and, with ``fairness.export``, where the audit writes it."""
    from assay.fairness.regression_export import (
        CARD_FILE,
        MODEL_FILE,
        audited_base,
        group_columns,
    )

    d = context.dataset
    base = audited_base(context)
    features = list(d.feature_names) if base is not None else None
    payload.pending = {
        "out_dir": Path(context.out_dir), "estimator": base, "features": features,
        "groups": group_columns(d.protected, features or ["prediction"]),
        "dataset": {"name": d.name, "fingerprint": d.fingerprint, "target": d.target,
                    "protected": list(d.protected), "n_rows": d.n_rows},
        "write": bool(options.export)}
    if options.export:
        # Written with the report (`write_pending_fix`, from the page), not here: an
        # audit run with write=False leaves nothing on disk.
        payload.exports = {"model": f"{EXPORT_DIR}/{MODEL_FILE}",
                           "card": f"{EXPORT_DIR}/{CARD_FILE}"}


def write_fix(payload: RegressionFairnessPayload, folder: Path) -> dict[str, str]:
    """Write the payload's confirmed fix into `folder` (``model.skops``, ``model_card.md``):
    the audited model as its base where assay trained it as a scikit-learn estimator
    (population ridge), else the post-processor reading the audited model's prediction
    from X's ``prediction`` column."""
    from assay.fairness.regression_export import deployable_fix, write_regression_fix

    plan = payload.pending
    if plan is None:
        deployable_fix(payload.front)  # raises: no confirmed fix, or not a deployable one
        raise InvalidParameterError(f"export must follow an audit run. Got {payload!r:.60}")
    return write_regression_fix(payload.front, folder, dataset=plan["dataset"],
                                estimator=plan["estimator"], features=plan["features"],
                                groups=plan["groups"])


def write_pending_fix(payload: RegressionFairnessPayload) -> None:
    """Write the confirmed fix of a payload fresh from `run_regression_fairness` under
    the audit's out folder (once; no-op without ``fairness.export`` or a fix)."""
    plan = payload.pending
    if plan is None or not plan["write"] or not payload.exports:
        return
    write_fix(payload, plan["out_dir"] / EXPORT_DIR)
    plan["write"] = False


def decision_report(y: Any, pred: Any, index: Any, threshold: float, group_policy: Any,
                    options: Any, seed: int = 0) -> tuple[Any, str]:
    """The decision ``pred > threshold`` against ``y > threshold`` measured as a
    classifier's (rates, gaps and flags by `group_policy` with the section's ``min_gap``),
    and "" ; or None and why not (every truth on one side of the threshold)."""
    from assay.fairness.metrics import fairness_metrics

    truth = (np.asarray(y) > threshold).astype(np.int64)
    decided = (np.asarray(pred) > threshold).astype(np.int64)
    if truth.min() == truth.max():
        side = "above" if truth[0] else "at or below"
        return None, (f"every held-out truth is {side} the threshold {threshold:g}: the "
                      f"decision's rates need both outcomes")
    policy = group_policy.for_section(options.min_gap, "less")
    report = fairness_metrics(truth, decided, index, min_count=options.min_count,
                              n_bootstrap=options.n_bootstrap, **policy.test_options(),
                              random_state=seed)
    return report, ""


def _num(value: float | None) -> str:
    from assay.report.result import format_amount

    return format_amount(value)  # 14,903 rather than 1.49e+04


def _est(e: Estimate | None, signed: bool = False) -> str:
    if e is None:
        return "n/a"
    sign = "+" if signed and e.value > 0 else ""
    return f"{sign}{_num(e.value)} [{_num(e.ci_low)}, {_num(e.ci_high)}]"


def _largest_gap(payload: RegressionFairnessPayload, metric: str) -> Any:
    gaps = [g for g in payload.report.gaps.get(metric, {}).values()
            if g.n_groups >= 2 and np.isfinite(g.difference.value)]
    return max(gaps, key=lambda g: g.difference.value) if gaps else None


def flag_words(payload: RegressionFairnessPayload) -> str:
    """The flag rule in words, for both tests."""
    rule = payload.flag_rule
    return (f"p < {rule.alpha:g} and a difference from everyone of at least "
            f"{rule.min_difference:g} times the overall MAE (MAE: above; mean residual: "
            f"either way)")


def summary_lines(payload: RegressionFairnessPayload) -> list[str]:
    """Plain-language findings, the headline first."""
    report = payload.report
    o = report.overall
    residual = o["mean_residual"].value
    lean = "over-predicts" if residual > 0 else "under-predicts"
    lines = [f"On its {report.n_rows:,} held-out rows the model's MAE is {_est(o['mae'])} "
             f"and RMSE {_est(o['rmse'])}; on average it {lean} by "
             f"{_est(o['mean_residual'], signed=True)}."]
    gap = _largest_gap(payload, "mae")
    if gap is not None:
        lines.append(f"Largest MAE gap: {_est(gap.difference)} on {gap.grouping} "
                     f"({gap.highest} highest, {gap.lowest} lowest).")
    gap = _largest_gap(payload, "mean_residual")
    if gap is not None:
        lines.append(f"Largest gap in mean residual: {_est(gap.difference)} on "
                     f"{gap.grouping} ({gap.highest} most over-predicted, {gap.lowest} "
                     f"most under-predicted).")
    found = payload.flagged()
    if found:
        words = {"mae": "larger errors", "mean_residual": "a shifted mean residual"}
        listed = "; ".join(f"{f.label} ({words[f.metric]}, {f.difference:+.3f} of the "
                           f"overall MAE)" for f in found[:4])
        if len(found) > 4:  # the summary names four; the groups table shows every flag
            listed += f"; and {len(found) - 4} more in the groups table"
        lines.append(f"Flagged groups: {listed}. Flagged because {flag_words(payload)}.")
    else:
        lines.append(f"No group is flagged ({flag_words(payload)} is needed).")
    lines.extend(_decision_lines(payload))
    if payload.front is not None:
        lines.append(payload.front.verdict.reason)
    else:
        lines.append(f"No fix proposed: {payload.no_front}.")
    return lines


def _decision_gaps(payload: RegressionFairnessPayload) -> list[Any]:
    """The decision's largest gap of each kind (demographic parity, equal opportunity,
    equalized odds), over attributes."""
    if payload.decision is None:
        return []
    out = []
    for by in payload.decision.gaps.values():
        found = [g for g in by.values() if g.n_groups >= 2 and np.isfinite(g.difference.value)]
        if found:
            out.append(max(found, key=lambda g: g.difference.value))
    return out


def _decision_lines(payload: RegressionFairnessPayload) -> list[str]:
    from assay.fairness.metrics import GAP_NAMES
    from assay.report.result import format_rate

    t = payload.decision_threshold
    if t is None:
        return []
    if payload.decision is None:
        return [f"The decision 'prediction > {t:g}' is not measured: {payload.decision_note}."]
    lines = []
    for gap in _decision_gaps(payload):
        e = gap.difference
        words = GAP_NAMES.get(gap.name, gap.name)
        lines.append(f"The decision 'prediction > {t:g}': largest {words} gap"
                     f" {format_rate(e.value)} [{format_rate(e.ci_low)}, "
                     f"{format_rate(e.ci_high)}] on {gap.grouping} ({gap.best} vs {gap.worst}).")
    flagged = [g.label for g in payload.decision.groups if g.flags]
    if flagged:
        lines.append(f"Groups flagged on the decision's rates: {', '.join(flagged[:4])}.")
    return lines


def gate_metrics(payload: RegressionFairnessPayload) -> dict[str, Any]:
    """Overall figures, the largest gaps and bounded group loss, for ``assay gate``."""
    from assay.report.result import Metric

    o = payload.report.overall
    out: dict[str, Any] = {"mae": Metric.of(o["mae"], "MAE on held-out rows"),
                           "rmse": Metric.of(o["rmse"], "RMSE on held-out rows"),
                           "mean_residual": Metric.of(o["mean_residual"],
                                                   "mean residual (prediction − truth)")}
    for name in ("mae", "rmse", "mean_residual"):
        gap = _largest_gap(payload, name)
        if gap is not None:
            out[f"{name}_gap"] = Metric.of(gap.difference, f"largest {FIGURES[name]} gap "
                                                        f"({gap.grouping})")
    for name in ("ks", "wasserstein"):  # a distance to the rest: the largest group's
        values = [(g.metrics[name], g.label) for g in payload.report.groups
                  if g.supported and name in g.metrics and np.isfinite(g.metrics[name].value)]
        if values:
            e, label = max(values, key=lambda t: t[0].value)
            out[f"{name}_max"] = Metric.of(e, f"largest {FIGURES[name]} distance of a group's "
                                           f"predictions from the rest ({label})")
    losses = [g for g in payload.report.bounded_group_loss.values()
              if np.isfinite(g.value.value)]
    if losses:
        worst = max(losses, key=lambda g: g.value.value)
        out["bounded_group_loss"] = Metric.of(worst.value, f"largest group MSE ({worst.group})")
    out["flagged_groups"] = Metric(value=float(len({(f.grouping, f.label)
                                                    for f in payload.flagged()})),
                                   label="groups flagged")
    comp = None if payload.front is None else payload.front.verdict.comparison
    if comp is not None and payload.front.fixed:
        # Only a confirmed fix has figures, and those of the confirmation rows.
        word = FIGURES[payload.front.distance]
        out[f"chosen.{payload.front.distance}_gap"] = Metric.of(
            comp.gap, f"chosen fair model: largest {word} gap (confirmation rows)")
        out[f"chosen.{payload.front.distance}_gap_difference"] = Metric.of(
            comp.difference, f"chosen fair model: {word} gap minus the unmitigated "
                             f"model's (confirmation rows, paired)")
        out[f"chosen.{payload.front.error}_cost"] = Metric.of(
            comp.cost, f"chosen fair model: relative {payload.front.error.upper()} increase "
                       f"(confirmation rows, paired)")
    for gap in _decision_gaps(payload):
        out[f"decision.{gap.name}_gap"] = Metric.of(
            gap.difference, f"largest {gap.name} gap of the decision prediction > "
                            f"{payload.decision_threshold:g} ({gap.grouping})")
    return out


def _front_view(payload: RegressionFairnessPayload) -> dict[str, Any]:
    """The front's figure, candidates and confirmation, in the page's words."""
    from assay.fairness.regression_front import (
        _DISTANCE_WORDS,
        _distance_estimate,
        _relative_estimate,
        front_plot,
    )

    front = payload.front
    if front is None:
        return {"front": None}
    rows = [{"c": c, "gap": _distance_estimate(c.gap), "error": _num(c.error.value),
             "error_ci": f"[{_num(c.error.ci_low)}, {_num(c.error.ci_high)}]",
             "cost": _relative_estimate(c.cost, signed=True)}
            for c in front.candidates]
    comp = front.verdict.comparison
    confirmation = None if comp is None else {
        "gap": _distance_estimate(comp.gap), "base": _distance_estimate(comp.baseline_gap),
        "difference": _distance_estimate(comp.difference, signed=True),
        "cost": _relative_estimate(comp.cost, signed=True)}
    return {"front": front, "front_svg": front_plot(front), "front_rows": rows,
            "gap_word": _DISTANCE_WORDS[front.distance], "confirmation": confirmation}


def regression_fairness_page(section: Any, result: Any) -> Any:
    """Cards, overall figures, gaps and the per-group table."""
    from importlib import resources

    from assay.section import Card, Page

    payload: RegressionFairnessPayload = section.data
    write_pending_fix(payload)
    o = payload.report.overall
    cards = [Card("MAE on held-out rows", _num(o["mae"].value),
                  f"[{_num(o['mae'].ci_low)}, {_num(o['mae'].ci_high)}]", "card-mae")]
    gap = _largest_gap(payload, "mae")
    if gap is not None:
        cards.append(Card("largest MAE gap", _num(gap.difference.value),
                          f"{gap.grouping}: {gap.highest} vs {gap.lowest}", "card-mae-gap"))
    found = payload.flagged()
    cards.append(Card("groups flagged", found[0].label if found else "none",
                      f"flagged when {flag_words(payload)}", "card-fgroup"))
    flags: dict[tuple[str, str], list[RegressionFlag]] = {}
    for f in payload.flags:
        flags.setdefault((f.grouping, f.label), []).append(f)
    groups = [{"g": g, "flags": {f.metric: f for f in flags.get((g.grouping, g.label), [])}}
              for g in payload.report.groups if g.supported]
    gaps = [(name, g) for name in GAP_FIGURES
            for g in payload.report.gaps.get(name, {}).values() if g.n_groups >= 2]
    view = {"payload": payload, "overall": o, "groups": groups, "gaps": gaps,
            "rule": flag_words(payload), "words": OVERALL_WORDS,
            "decision_gaps": _decision_gaps(payload),
            "decision_groups": [] if payload.decision is None else
            [g for g in payload.decision.groups if g.supported],
            "figures": FIGURES, "small": [g.label for g in payload.report.groups
                                          if not g.supported], "num": _num,
            **_front_view(payload)}
    if payload.front is not None:
        cards.append(Card("fix", "found" if payload.front.fixed else "none",
                          payload.front.preferred_candidate.name if payload.front.fixed
                          else "see the verdict", "card-fix"))
    template = resources.files("assay.fairness").joinpath(
        "templates/fairness_regression.html.j2").read_text(encoding="utf-8")
    return Page(template=template, view=view, cards=cards)
