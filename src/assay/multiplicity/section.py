"""The multiplicity section of ``assay audit``: options, flags, checks, run, schema and page.

Declared through the ``assay.sections`` entry point. Light to import (the CLI builds its
flags from it): numpy and the work (`assay.multiplicity.rashomon`) are imported inside
the functions.

The model under audit is the audit's target: the user's model (predictions file) or
model 0 of the population. Its held-out rows (those it did not train on) are held out
from every candidate too; the candidates train on random subsamples of its training rows
through the audit's learner, backend and cache (`AuditContext.fit`), so their losses and
its loss are measured on the same unseen rows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from typing import Any

from assay._validation import InvalidParameterError, check_option, check_scalar
from assay.section import Flag, Options

__all__ = ["MultiplicityOptions", "MultiplicityPayload", "MultiplicitySection", "SECTION",
           "describe_epsilon"]

DEFAULT_EPSILONS = (0.005, 0.01, 0.02, 0.05)


@dataclass(frozen=True)
class MultiplicityOptions(Options):
    """Options of the multiplicity section (``[multiplicity]`` in ``audit.toml``).

    Parameters
    ----------
    epsilons : tuple of float, default=(0.005, 0.01, 0.02, 0.05)
        Loss tolerances of the Rashomon sets (each > 0).
    headline_epsilon : float, default=0.01
        The ε of the headline, the per-person figures and the flags (added to
        `epsilons` when missing).
    tolerance : {"relative", "absolute"}, default="relative"
        A model is in the set when its held-out loss is at most best·(1 + ε)
        ("relative": ε = 0.01 is "within 1 % of the best loss") or best + ε.
    loss : {"log_loss", "error"}, default="log_loss"
        Held-out loss that ranks the models.
    models : int or None, default=None
        Candidate models (default: the audit's ``models``); at least 2.
    grid : dict, default={}
        Hyper-parameter values of the candidates, e.g. ``{C = [0.1, 1.0, 10.0]}``
        (``[multiplicity.grid]``); the candidates are spread over its combinations.
    subsample : float in (0, 1], default=0.8
        Share of the audited model's training rows each candidate trains on.
    n_bootstrap : int, default=100
        Resamples of the set's models behind every interval (0: none).
    min_gap : float, default=0.05
        Smallest excess of a group's ambiguity over the overall one that is flagged.
    n_records : int, default=20
        Most arbitrary decisions listed.
    """

    epsilons: tuple[float, ...] = DEFAULT_EPSILONS
    headline_epsilon: float = 0.01
    tolerance: str = "relative"
    loss: str = "log_loss"
    models: int | None = None
    grid: Mapping[str, Any] = field(default_factory=dict)
    subsample: float = 0.8
    n_bootstrap: int = 100
    min_gap: float = 0.05
    n_records: int = 20

    def __post_init__(self) -> None:
        eps = (self.epsilons,) if isinstance(self.epsilons, int | float) else self.epsilons
        if not isinstance(eps, tuple | list) or not eps:
            raise InvalidParameterError(
                f"multiplicity.epsilons must hold at least one number > 0. Got {eps!r}.")
        eps = tuple(sorted({check_scalar(e, "multiplicity.epsilons", low=0, low_open=True)
                            for e in eps}))
        object.__setattr__(self, "epsilons", eps)
        object.__setattr__(self, "headline_epsilon", check_scalar(
            self.headline_epsilon, "multiplicity.headline_epsilon", low=0, low_open=True))
        check_option(self.tolerance, "multiplicity.tolerance", ("relative", "absolute"))
        check_option(self.loss, "multiplicity.loss", ("log_loss", "error"))
        if self.models is not None:
            check_scalar(self.models, "multiplicity.models", kind=int, low=2)
        if not isinstance(self.grid, Mapping):
            raise InvalidParameterError(
                f"multiplicity.grid must be a table of hyper-parameter lists, e.g. "
                f"{{C = [0.1, 1.0]}}. Got {self.grid!r}.")
        grid = {}
        for key, values in self.grid.items():
            values = list(values) if isinstance(values, list | tuple) else [values]
            if not isinstance(key, str) or not values:
                raise InvalidParameterError(
                    f"multiplicity.grid must map names to non-empty lists. Got {key!r} = "
                    f"{values!r}.")
            grid[key] = tuple(values)
        object.__setattr__(self, "grid", grid)
        check_scalar(self.subsample, "multiplicity.subsample", low=0, high=1, low_open=True)
        check_scalar(self.n_bootstrap, "multiplicity.n_bootstrap", kind=int, low=0)
        check_scalar(self.min_gap, "multiplicity.min_gap", low=0, high=1)
        check_scalar(self.n_records, "multiplicity.n_records", kind=int, low=0)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["grid"] = {k: list(v) for k, v in self.grid.items()}
        return out


def describe_epsilon(epsilon: float, tolerance: str, loss: str) -> str:
    """ε in words: "within 1 % of the best held-out log-loss"."""
    what = "log-loss" if loss == "log_loss" else "error rate"
    if tolerance == "relative":
        return f"within {100 * epsilon:g} % of the best held-out {what}"
    return f"within {epsilon:g} of the best held-out {what}"


@dataclass
class MultiplicityPayload:
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
    """

    epsilons: list[Any]
    headline_epsilon: float
    loss: str
    tolerance: str
    best_loss: float
    target_loss: float
    n_candidates: int
    n_heldout: int
    flag_rule: Any
    target: dict[str, Any] = field(default_factory=dict)
    candidates: dict[str, Any] = field(default_factory=dict)
    capacity_histogram: dict[str, list[float]] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)
    churn: Any = None

    @property
    def headline(self):
        """Figures at the headline ε."""
        return next(f for f in self.epsilons if f.epsilon == self.headline_epsilon)

    def to_dict(self) -> dict[str, Any]:
        return {"epsilons": [f.to_dict() for f in self.epsilons],
                "headline_epsilon": self.headline_epsilon, "loss": self.loss,
                "tolerance": self.tolerance, "best_loss": self.best_loss,
                "target_loss": self.target_loss, "n_candidates": self.n_candidates,
                "n_heldout": self.n_heldout, "flag_rule": self.flag_rule.to_dict(),
                "target": dict(self.target), "candidates": dict(self.candidates),
                "capacity_histogram": dict(self.capacity_histogram),
                "records": list(self.records),
                "churn": None if self.churn is None else self.churn.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MultiplicityPayload:
        from assay.groups import FlagRule
        from assay.multiplicity.churn import ChurnResult
        from assay.multiplicity.rashomon import EpsilonFigures

        return cls(epsilons=[EpsilonFigures.from_dict(f) for f in d["epsilons"]],
                   headline_epsilon=float(d["headline_epsilon"]), loss=d["loss"],
                   tolerance=d["tolerance"], best_loss=float(d["best_loss"]),
                   target_loss=float(d["target_loss"]), n_candidates=int(d["n_candidates"]),
                   n_heldout=int(d["n_heldout"]), flag_rule=FlagRule.from_dict(d["flag_rule"]),
                   target=dict(d.get("target", {})), candidates=dict(d.get("candidates", {})),
                   capacity_histogram=dict(d.get("capacity_histogram", {})),
                   records=list(d.get("records", [])),
                   churn=None if d.get("churn") is None else ChurnResult.from_dict(d["churn"]))


class MultiplicitySection:
    """Arbitrariness: decisions an equally good model reverses, per person and group."""

    name = "multiplicity"
    title = "Arbitrariness: predictive multiplicity"
    options_type = MultiplicityOptions
    flags = (
        Flag("epsilons", "Loss tolerances of the Rashomon sets, e.g. 0.005,0.01,0.05.",
             kind="list", name="--rashomon-epsilon"),
        Flag("tolerance", "relative (ε = 0.01: within 1 % of the best loss) or absolute.",
             name="--rashomon-tolerance"),
        Flag("models", "Candidate models of the Rashomon set (default: --models).",
             kind="int", name="--rashomon-models"),
        Flag("min_gap", "Smallest group ambiguity excess over the overall that is flagged.",
             kind="float", name="--rashomon-min-gap"),
    )

    @property
    def payload_type(self):
        return MultiplicityPayload

    @cached_property
    def payload_schema(self) -> dict[str, Any]:
        text = resources.files("assay.multiplicity").joinpath("schema.json").read_text("utf-8")
        return json.loads(text)

    def check(self, context: Any, options: MultiplicityOptions) -> None:
        """Grid values the learner refuses fail here, before any model is trained."""
        from assay.learners import get_learner
        from assay.multiplicity.rashomon import grid_points

        models = options.models or context.config.models
        points = grid_points(options.grid)
        if models < len(points):
            raise InvalidParameterError(
                f"multiplicity.models must be at least the {len(points)} grid points. "
                f"Got {models}.")
        for point in points:
            get_learner(context.learner or context.config.make_learner(), **point)

    def applies(self, context: Any, options: MultiplicityOptions) -> bool:
        return context.target is not None

    def run(self, context: Any, options: MultiplicityOptions):
        return run_multiplicity(self, context, options)

    def page(self, section: Any, result: Any):
        from assay.multiplicity.page import multiplicity_page

        return multiplicity_page(section, result)


SECTION = MultiplicitySection()


# --------------------------------------------------------------------------- run


def run_multiplicity(section: Any, context: Any, options: MultiplicityOptions, *,
                     compare: Any = None):
    """The multiplicity section's result for one audit (`compare`: another version's
    predictions for the churn table)."""
    from assay.groups import FlagRule
    from assay.multiplicity.rashomon import fit_candidates, multiplicity_curve
    from assay.report.result import SectionResult

    config = context.config
    dataset = context.dataset
    target = context.target
    candidates = fit_candidates(
        dataset.X, dataset.y, context.learner, n_models=options.models or config.models,
        grid=options.grid, heldout=~target.member, subsample=options.subsample,
        random_state=config.seed, fit=lambda plan, spec: context.fit(plan, spec))
    rule = FlagRule(alpha=config.groups.alpha, min_difference=options.min_gap,
                    direction="greater")
    curve = multiplicity_curve(
        candidates, options.epsilons, target=target, loss=options.loss,
        tolerance=options.tolerance, headline_epsilon=options.headline_epsilon,
        groups=context.groups, row_ids=dataset.row_ids, n_bootstrap=options.n_bootstrap,
        flag_rule=rule, min_support=config.groups.min_support,
        n_permutations=config.groups.n_permutations, random_state=config.seed)
    payload = build_payload(curve, candidates, dataset, target, options)
    if compare is not None:
        from assay.multiplicity.churn import predictive_churn

        payload.churn = predictive_churn(target, compare, y=dataset.y, groups=context.groups,
                                         row_ids=dataset.row_ids,
                                         min_support=config.groups.min_support)
    return SectionResult(name=section.name, title=section.title,
                         summary=summary_lines(payload), metrics=gate_metrics(payload),
                         data=payload)


def build_payload(curve: Any, candidates: Any, dataset: Any, target: Any,
                  options: MultiplicityOptions) -> MultiplicityPayload:
    """The payload from a `MultiplicityCurve` (records and histogram at the headline ε)."""
    import numpy as np

    capacity = curve.capacity
    top = max(2.0, float(np.ceil(capacity.max())) if capacity.size else 2.0)
    counts, edges = np.histogram(capacity, bins=20, range=(1.0, top))
    order = np.lexsort((-curve.vpr, -capacity))[:options.n_records]
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
        for j, i in enumerate(order) if curve.reversal_share[i] > 0 or capacity[i] > 1.0]
    head = curve.headline
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
        records=records)


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
    if head.ambiguity is None:
        return [f"No Rashomon set to compare at ε = {head.epsilon:g}: {head.note}."]
    lines = [f"For {_rate(head.ambiguity)} of the {payload.n_heldout:,} held-out people an "
             f"equally good model ({within}) reverses the decision of the audited model "
             f"({head.n_models} models in the set)."]
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
        lines.append(f"The audited model is not itself {within}: its held-out "
                     f"{payload.loss} is {payload.target_loss:.4f} against "
                     f"{payload.best_loss:.4f} for the best candidate.")
    return lines


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
            out[key] = Metric(value=e.value, ci_low=e.ci_low, ci_high=e.ci_high, label=label)
    out["flagged_groups"] = Metric(value=float(len(flagged_groups(head))),
                                   label="groups flagged as more arbitrary")
    return out
