"""The multiplicity section's work and findings: its payload, the run, summary and gate.

`assay.multiplicity.section` declares the section (options, flags, checks) and
`assay.multiplicity.page` draws it; both read the payload defined here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from assay._serial import Serial, meta

__all__ = ["MultiplicityPayload", "build_payload", "describe_epsilon", "flagged_groups",
           "gate_metrics", "run_multiplicity", "summary_lines"]


def describe_epsilon(epsilon: float, tolerance: str, loss: str) -> str:
    """ε in words: "within 1 % of the best held-out log-loss"."""
    what = "log-loss" if loss == "log_loss" else "error rate"
    if tolerance == "relative":
        return f"within {100 * epsilon:g} % of the best held-out {what}"
    return f"within {epsilon:g} of the best held-out {what}"


def _regression_type() -> type:
    from assay.multiplicity.regression_audit import RegressionMultiplicityPayload

    return RegressionMultiplicityPayload


@dataclass
class MultiplicityPayload(Serial):
    """Everything the multiplicity section found (``SectionResult.data``).

    Attributes
    ----------
    epsilons : list of EpsilonFigures
        Figures of every ε-Rashomon set, ascending ε.
    headline_epsilon : float
    loss, tolerance : str
    best_loss, target_loss : float
    n_candidates, n_heldout : int
    flag_rule : FlagRule
    target : dict
        The audited model: source, whether it is within ε, its held-out loss.
    candidates : dict
        How the candidates were trained (learner, grid, subsample, seconds, cache).
    capacity_histogram : dict
        ``edges`` and ``counts`` of the per-person capacity at the headline ε.
    records : list of dict
        The most arbitrary decisions (highest capacity, then widest range).
    churn : ChurnResult or None
        Churn against another model version, when one was given.
    min_measurable_epsilon : float or None
        The smallest ε whose set holds two models (below it: no figures).
    """

    epsilons: list[Any] = field(metadata=meta(hint=lambda: _late_types()["epsilons"]))
    headline_epsilon: float
    loss: str = field(metadata=meta(schema={"enum": ["log_loss", "error"]}))
    tolerance: str = field(metadata=meta(schema={"enum": ["relative", "absolute"]}))
    best_loss: float
    target_loss: float
    n_candidates: int
    n_heldout: int
    flag_rule: Any = field(metadata=meta(hint=lambda: _late_types()["flag_rule"]))
    target: dict[str, Any] = field(default_factory=dict, metadata=meta(
        schema={"required": ["source", "in_set"]}))
    candidates: dict[str, Any] = field(default_factory=dict, metadata=meta(
        schema={"required": ["n_models"]}))
    capacity_histogram: dict[str, list[Any]] = field(default_factory=dict, metadata=meta(
        schema={"required": ["edges", "counts"]}))
    records: list[dict[str, Any]] = field(default_factory=list, metadata=meta(schema={
        "items": {"type": "object", "required": ["row_id", "groups", "decision",
                                                 "reversal_share", "capacity"]}}))
    churn: Any = field(default=None, metadata=meta(hint=lambda: _late_types()["churn"]))
    min_measurable_epsilon: float | None = None

    __json_required__ = ("target", "candidates", "capacity_histogram", "records")
    # A regression model's payload (``task``) reads as its own type.
    __json_variants__ = ("task", {"regression": _regression_type})

    @property
    def headline(self):
        """Figures at the headline ε."""
        return next(f for f in self.epsilons if f.epsilon == self.headline_epsilon)


def _late_types() -> dict[str, Any]:
    """Types of the fields annotated Any: their modules import heavier ones, loaded on use."""
    from assay.groups import FlagRule
    from assay.multiplicity.churn import ChurnResult
    from assay.multiplicity.rashomon import EpsilonFigures

    return {"epsilons": list[EpsilonFigures], "flag_rule": FlagRule,
            "churn": ChurnResult | None}


# --------------------------------------------------------------------------- run


def run_multiplicity(section: Any, context: Any, options: Any, *,
                     compare: Any = None):
    """The multiplicity section's result for one audit (`compare`: another version's
    predictions for the churn table)."""
    from assay.multiplicity.rashomon import fit_candidates, multiplicity_curve
    from assay.report.result import SectionResult

    config = context.config
    dataset = context.dataset
    # With a holdout no model is audited: the candidates hold out that share of the rows.
    target = None if options.holdout is not None else context.target
    heldout = None if target is None else ~target.member
    candidates = fit_candidates(
        dataset.X, dataset.y, context.learner, n_models=options.models or config.models,
        grid=options.grid, heldout=heldout, holdout=options.holdout or 0.3,
        subsample=options.subsample, random_state=config.seed,
        fit=lambda plan, spec: context.fit(plan, spec))
    policy = context.group_policy.for_section(options.min_gap, "greater")
    curve = multiplicity_curve(
        candidates, options.epsilons, target=target, loss=options.loss,
        tolerance=options.tolerance, headline_epsilon=options.headline_epsilon,
        groups=context.groups, row_ids=dataset.row_ids, n_bootstrap=options.n_bootstrap,
        **policy.test_options(), random_state=config.seed)
    payload = build_payload(curve, candidates, dataset, target, options)
    if compare is None and options.compare is not None:
        from assay.multiplicity.churn import compare_predictions

        compare = compare_predictions(context, options)
    if compare is not None:
        from assay.multiplicity.churn import predictive_churn

        payload.churn = predictive_churn(target, compare, y=dataset.y, groups=context.groups,
                                         row_ids=dataset.row_ids,
                                         min_support=policy.min_support)
    return SectionResult(name=section.name, title=section.title,
                         summary=summary_lines(payload), metrics=gate_metrics(payload),
                         data=payload)


def build_payload(curve: Any, candidates: Any, dataset: Any, target: Any,
                  options: Any) -> MultiplicityPayload:
    """The payload from a `MultiplicityCurve` (records and histogram at the headline ε)."""
    import numpy as np

    capacity = curve.capacity
    top = max(2.0, float(np.ceil(capacity.max())) if capacity.size else 2.0)
    head = curve.headline
    if head.measurable:
        counts, edges = np.histogram(capacity, bins=20, range=(1.0, top))
        # The same rows the set's figures count: reversed ones first (most models
        # reversing, then capacity), then unreversed ones whose scores still spread.
        share = curve.reversal_share
        keep = np.flatnonzero((share > 0) | (capacity > 1.0))
        order = keep[np.lexsort((-curve.vpr[keep], -capacity[keep], -share[keep]))]
        order = order[:options.n_records]
    else:  # no set of two models: no per-person figure either
        counts, edges = np.zeros(20, dtype=int), np.linspace(1.0, 2.0, 21)
        order = np.zeros(0, dtype=int)
    rows = np.flatnonzero(candidates.heldout)[order]
    classes = [str(c) for c in dataset.classes]
    group_values = dataset.groups.iloc[rows].astype(str).to_dict("records") \
        if dataset.groups.shape[1] else [{} for _ in rows]
    records = [
        {"row_id": _plain(curve.row_ids[i]), "groups": group_values[j],
         "decision": classes[int(curve.decision[i])],
         "reversal_share": float(curve.reversal_share[i]),
         "capacity": float(capacity[i]), "vpr": float(curve.vpr[i]),
         "score_low": _finite(curve.score_low[i]), "score_high": _finite(curve.score_high[i])}
        for j, i in enumerate(order)]
    info = candidates.info
    return MultiplicityPayload(
        epsilons=curve.epsilons, headline_epsilon=curve.headline_epsilon, loss=curve.loss,
        tolerance=curve.tolerance, best_loss=curve.best_loss, target_loss=curve.target_loss,
        n_candidates=curve.n_candidates, n_heldout=curve.n_heldout, flag_rule=curve.flag_rule,
        target={"source": getattr(target, "source", "the best candidate"),
                "loss": curve.target_loss, "in_set": bool(head.target_in_set),
                "n_heldout": curve.n_heldout},
        candidates={"learner": (info.get("populations") or [{}])[0].get("learner"),
                    "grid": info.get("grid", {}), "subsample": info.get("subsample"),
                    "n_models": candidates.n_models, "seconds": info.get("seconds"),
                    "n_fitted": info.get("n_fitted"),
                    "n_loaded_from_cache": info.get("n_loaded_from_cache"),
                    "losses": [float(x) for x in curve.losses]},
        capacity_histogram={"edges": [float(e) for e in edges],
                            "counts": [int(c) for c in counts]},
        records=records, min_measurable_epsilon=curve.min_measurable_epsilon)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _finite(value: float) -> float | None:
    import math

    return float(value) if math.isfinite(value) else None


def flagged_groups(figures: Any) -> list[Any]:
    """Flagged groups at one ε, broadest first (single attributes before intersections),
    then by ambiguity."""
    found = [(len(key.split(" & ")), g) for key, groups in figures.groups.items()
             for g in groups.values() if g.flagged]
    found.sort(key=lambda t: (t[0], -(t[1].ambiguity.value if t[1].ambiguity else 0.0)))
    return [g for _, g in found]


def _rate(e: Any) -> str:
    from assay.report.result import format_rate

    return f"{format_rate(e.value)} [{format_rate(e.ci_low)}, {format_rate(e.ci_high)}]"


def summary_lines(payload: MultiplicityPayload) -> list[str]:
    """Plain-language findings, the headline first."""
    from assay.report.result import format_rate

    head = payload.headline
    within = describe_epsilon(head.epsilon, payload.tolerance, payload.loss)
    if not head.measurable or head.ambiguity is None:
        lines = [f"Multiplicity at ε = {head.epsilon:g}: {head.reason or head.note}."]
        measured = [f for f in payload.epsilons if f.measurable and f.ambiguity is not None]
        if measured:
            lines.append("Measured at ε = " + ", ".join(f"{f.epsilon:g}" for f in measured)
                         + " (see the table).")
        if not head.target_in_set and hasattr(payload, "target_loss"):
            lines.append(_outside_line(payload, within))
        return lines
    lines = [f"For {_rate(head.ambiguity)} of the {payload.n_heldout:,} held-out people "
             f"({head.n_reversed:,} decisions) an equally good model ({within}) reverses the "
             f"decision of the audited model ({head.n_models} models in the set)."]
    flagged = flagged_groups(head)
    if flagged:
        top = flagged[0]
        more = (f"; also flagged: {', '.join(g.label for g in flagged[1:4])}"
                if len(flagged) > 1 else "")
        lines.append(f"For {top.label} it is {_rate(top.ambiguity)} ({top.n_reversed:,} of "
                     f"{top.n_rows:,} people){more}. Flagged because "
                     f"{payload.flag_rule.describe('the overall share')}.")
    elif head.groups:
        supported = [g for groups in head.groups.values() for g in groups.values()
                     if g.supported and g.ambiguity is not None]
        if supported:
            worst = max(supported, key=lambda g: g.ambiguity.value)
            lines.append(f"Highest in {worst.label}: {format_rate(worst.ambiguity.value)}; no "
                         f"group is flagged ({payload.flag_rule.describe('the overall share')}"
                         f" is needed).")
    lines.append(f"Mean Rashomon capacity {head.mean_capacity.value:.3f} (1 = every model of "
                 f"the set gives the same scores); the worst single model disagrees with the "
                 f"audited one on {format_rate(head.discrepancy.value)} of decisions, a model "
                 f"update drawn from the set on {format_rate(head.churn.value)} on average.")
    if not head.target_in_set:
        lines.append(_outside_line(payload, within))
    return lines


def _outside_line(payload: MultiplicityPayload, within: str) -> str:
    return (f"The audited model is not itself {within}: its held-out {payload.loss} is "
            f"{payload.target_loss:.4f} against {payload.best_loss:.4f} for the best "
            f"candidate.")


def gate_metrics(payload: MultiplicityPayload) -> dict[str, Any]:
    """Flat figures at the headline ε for ``assay gate``."""
    from assay.report.result import Metric

    head = payload.headline
    out: dict[str, Any] = {"n_models": Metric(value=float(head.n_models),
                                              label="models in the Rashomon set",
                                              higher_is_worse=False)}
    labels = {"ambiguity": "ambiguity (share of decisions some good model reverses)",
              "discrepancy": "discrepancy (largest share one good model reverses)",
              "mean_capacity": "mean Rashomon capacity", "mean_vpr":
              "mean viable prediction range", "churn": "expected churn of a model update"}
    for key, label in labels.items():
        e = getattr(head, key)
        if e is not None:
            out[key] = Metric.of(e, label)
    out["flagged_groups"] = Metric(value=float(len(flagged_groups(head))),
                                   label="groups flagged as more arbitrary")
    return out
