"""The multiplicity section on a regression model: Rashomon sets by held-out squared error.

The model under audit is the audit's target (model 0 of the regression population); its
held-out rows (those it did not train on) are held out from every candidate too. The
candidates train on random subsamples of its training rows through the audit's learner,
backend and cache (`AuditContext.fit`), spread over the ``grid`` points. The audited model
counts as one more candidate: every ε-Rashomon set holds the models (audited one included)
whose held-out MSE is within ε of the best (``tolerance``: relative or absolute).

Per person (held-out rows) and set: the **viable prediction range** (max − min of the
predictions over the set) and the **spread** (their standard deviation); with a
``decision_threshold`` (the audit's ``--decision-threshold``) the decision is
``prediction > threshold`` and **ambiguity** (share
of people whose decision some model of the set reverses against the reference) and
**discrepancy** (largest share one model reverses) follow (`regression_multiplicity`). The
reference is the audited model when it is in the set, else the best model.

Intervals: percentile intervals over resamples of the held-out people, the set fixed (a
resample of a set's models shrinks every range: a max − min over fewer distinct models; with
sampled models every range is already a lower bound).

Groups (the audit's `GroupPolicy`): each group's mean range (and ambiguity) with intervals;
a group is flagged when its per-person figure is significantly above the overall one (max-T
permutation test within the grouping) by at least ``min_gap``: relative to the overall mean
range (0.05: 5 % wider ranges), or, with a threshold, in ambiguity share.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assay._serial import Serial, meta
from assay._stats import Estimate

__all__ = ["RegressionEpsilonFigures", "RegressionGroupRow", "RegressionMultiplicityPayload",
           "regression_curve", "run_regression_multiplicity"]


@dataclass
class RegressionGroupRow(Serial):
    """One group at one ε (figures None when unsupported or not measurable)."""

    grouping: str
    label: str
    n: int
    supported: bool
    mean_vpr: Estimate | None = None
    mean_spread: Estimate | None = None
    ambiguity: Estimate | None = None
    difference: float | None = None
    p_value: float | None = None
    flagged: bool = False


@dataclass
class RegressionEpsilonFigures(Serial):
    """The figures of one ε-Rashomon set on the held-out rows.

    Attributes
    ----------
    epsilon : float
    n_models : int
        Models in the set (the audited one included when within ε).
    members : list of int
        Their indices: 0 is the audited model, k ≥ 1 candidate k − 1.
    reference : int
        The reference model's index (0: the audited model).
    target_in_set : bool
    reason : str or None
        Why the figures are null (a set of one model).
    mean_vpr, mean_spread, ambiguity, discrepancy : Estimate or None
    max_vpr : float or None
    groups : list of RegressionGroupRow
    """

    epsilon: float
    n_models: int
    members: list[int]
    reference: int
    target_in_set: bool
    reason: str | None = None
    mean_vpr: Estimate | None = None
    mean_spread: Estimate | None = None
    ambiguity: Estimate | None = None
    discrepancy: Estimate | None = None
    max_vpr: float | None = None
    groups: list[RegressionGroupRow] = field(default_factory=list)

    @property
    def measurable(self) -> bool:
        return self.reason is None


@dataclass
class RegressionMultiplicityPayload(Serial):
    """Everything the multiplicity section found on a regression model.

    Attributes
    ----------
    epsilons : list of RegressionEpsilonFigures
        Ascending ε.
    headline_epsilon : float
    tolerance : {"relative", "absolute"}
    best_loss, target_loss : float
        Held-out MSE of the best model and of the audited one.
    losses : list of float
        Held-out MSE of every model (index 0: the audited one).
    n_candidates, n_heldout : int
    decision_threshold : float or None
    flag_rule : FlagRule
    flag_on : {"mean_vpr", "ambiguity"}
        The per-person figure the groups are tested on (``min_gap`` relative to the
        overall mean range, or in ambiguity share with a threshold).
    target, candidates : dict
    vpr_histogram : dict
        ``edges`` and ``counts`` of the per-person range at the headline ε.
    records : list of dict
        The widest ranges at the headline ε: row id, groups, truth, audited prediction,
        lowest and highest prediction of the set, range (and whether a decision flips).
    min_measurable_epsilon : float or None
    task : "regression"
    """

    epsilons: list[RegressionEpsilonFigures]
    headline_epsilon: float
    tolerance: str = field(metadata=meta(schema={"enum": ["relative", "absolute"]}))
    best_loss: float
    target_loss: float
    losses: list[float]
    n_candidates: int
    n_heldout: int
    decision_threshold: float | None
    flag_rule: Any = field(metadata=meta(hint=lambda: _flag_rule_type()))
    flag_on: str = field(metadata=meta(schema={"enum": ["mean_vpr", "ambiguity"]}))
    target: dict[str, Any] = field(default_factory=dict)
    candidates: dict[str, Any] = field(default_factory=dict)
    vpr_histogram: dict[str, list[Any]] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)
    min_measurable_epsilon: float | None = None
    loss: str = field(default="mse", metadata=meta(schema={"enum": ["mse"]}))
    task: str = field(default="regression", metadata=meta(schema={"const": "regression"}))

    __json_required__ = ("target", "candidates", "vpr_histogram", "records", "loss", "task")

    @property
    def headline(self) -> RegressionEpsilonFigures:
        return next(f for f in self.epsilons if f.epsilon == self.headline_epsilon)


def _flag_rule_type() -> Any:
    from assay.groups import FlagRule

    return FlagRule


# --------------------------------------------------------------------------- figures


def _interval(draws: np.ndarray, value: float, confidence: float = 0.95) -> Estimate:
    """Percentile interval of `draws`, widened to hold `value`."""
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return Estimate(float(value), float(value), float(value))
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(draws, [tail, 100 - tail])
    return Estimate(float(value), float(min(low, value)), float(max(high, value)))


def _set_figures(preds: np.ndarray, ref: int, threshold: float | None,
                 rows: list[np.ndarray], weights: np.ndarray | None = None) -> np.ndarray:
    """(len(rows) + 1, 4): mean range, mean spread, ambiguity, discrepancy over all rows
    (first) and each block of rows, each row counted `weights` times (default once)."""
    vpr = preds.max(axis=0) - preds.min(axis=0)
    spread = preds.std(axis=0)
    w = np.ones(preds.shape[1]) if weights is None else weights
    out = np.full((len(rows) + 1, 4), np.nan)
    changed = None
    if threshold is not None:
        decided = preds > threshold
        changed = decided != decided[ref][None, :]
    for j, r in enumerate([np.arange(preds.shape[1]), *rows]):
        wr = w[r]
        total = wr.sum()
        if total <= 0:
            continue
        out[j, 0], out[j, 1] = wr @ vpr[r] / total, wr @ spread[r] / total
        if changed is not None:
            out[j, 2] = wr @ changed[:, r].any(axis=0) / total
            out[j, 3] = (changed[:, r] @ wr).max() / total
    return out


def regression_curve(preds: Any, y: Any, epsilons: Any, groups: Any = None, *,
                     tolerance: str = "relative", decision_threshold: float | None = None,
                     n_bootstrap: int = 100, flag_rule: Any = None, min_support: int = 50,
                     n_permutations: int = 200, random_state: int = 0
                     ) -> tuple[list[RegressionEpsilonFigures], dict[float, dict[str, Any]]]:
    """Figures of every ε-Rashomon set of `preds` on the held-out rows.

    Parameters
    ----------
    preds : array of shape (m, n)
        Held-out predictions; row 0 is the audited model (the reference when in the set).
    y : array of shape (n,)
    epsilons : sequence of float > 0
    groups : GroupIndex, DataFrame or None
        Protected columns of the n rows.
    tolerance, decision_threshold, n_bootstrap, flag_rule, min_support, n_permutations,
    random_state
        As the section's options and the audit's `GroupPolicy`.

    Returns
    -------
    figures : list of RegressionEpsilonFigures
    per_row : dict of ε to dict
        ``vpr``, ``low``, ``high`` (and ``flipped`` with a threshold) per held-out row.
    """
    from assay.groups import FlagRule, as_group_index, permutation_test
    from assay.multiplicity.rashomon import rashomon_sets, smallest_measurable_epsilon
    from assay.multiplicity.regression import heldout_mse, regression_multiplicity

    p = np.asarray(preds, dtype=np.float64)
    mse = heldout_mse(p, y)
    in_set, _ = rashomon_sets(mse, epsilons, tolerance=tolerance)
    min_eps = smallest_measurable_epsilon(mse, float(mse.min()), tolerance)
    rule = flag_rule if flag_rule is not None else FlagRule()
    index = None if groups is None else as_group_index(groups)
    blocks: list[tuple[str, str, int, bool, np.ndarray]] = []
    if index is not None:
        for grouping in index.groupings:
            supported = grouping.supported(min_support)
            for k, label in enumerate(grouping.labels):
                blocks.append((grouping.key, label, int(grouping.sizes[k]), bool(supported[k]),
                               np.flatnonzero(grouping.codes == k)))
    rng = np.random.default_rng(random_state)
    out, per_row = [], {}
    eps_sorted = sorted(float(e) for e in epsilons)
    for e, eps in enumerate(eps_sorted):
        members = np.flatnonzero(in_set[e])
        members = members[np.argsort(mse[members], kind="stable")]
        target_in = bool(in_set[e][0])
        ref = 0 if target_in else int(members[0])
        ref_pos = int(np.flatnonzero(members == ref)[0])
        figs = regression_multiplicity(p[members], None, reference=ref_pos,
                                       decision_threshold=decision_threshold,
                                       min_support=min_support, epsilon=eps,
                                       min_epsilon=min_eps)
        sub = p[members]
        per_row[eps] = {"vpr": figs.vpr, "low": sub.min(axis=0), "high": sub.max(axis=0),
                        "flipped": figs.flipped, "members": members}
        rows = [b[4] for b in blocks]
        groups_out: list[RegressionGroupRow] = []
        if not figs.measurable:
            for key, label, n, sup, _ in blocks:
                groups_out.append(RegressionGroupRow(key, label, n, sup))
            out.append(RegressionEpsilonFigures(
                epsilon=eps, n_models=len(members), members=[int(i) for i in members],
                reference=ref, target_in_set=target_in, reason=figs.reason,
                groups=groups_out))
            continue
        point = _set_figures(sub, ref_pos, decision_threshold, rows)
        draws = np.full((n_bootstrap, len(rows) + 1, 4), np.nan)
        n = sub.shape[1]
        for b in range(n_bootstrap):  # the people resampled, the set fixed
            weights = np.bincount(rng.integers(0, n, n), minlength=n).astype(np.float64)
            draws[b] = _set_figures(sub, ref_pos, decision_threshold, rows, weights)

        def est(j: int, c: int, point: np.ndarray = point,
                draws: np.ndarray = draws) -> Estimate | None:
            if not np.isfinite(point[j, c]):
                return None
            return _interval(draws[:, j, c], float(point[j, c]))

        flag_stat = (figs.flipped.astype(np.float64) if figs.flipped is not None
                     else figs.vpr / max(float(figs.vpr.mean()), np.finfo(float).tiny))
        tests = {} if index is None else permutation_test(
            flag_stat, index, min_support=min_support, n_permutations=n_permutations,
            direction="greater", random_state=random_state)
        position: dict[tuple[str, str], tuple[float, float]] = {}
        for key, test in tests.items():
            for k, label in enumerate(test.labels):
                position[(key, label)] = (float(test.difference[k, 0]),
                                          float(test.p_value[k, 0]))
        for j, (key, label, n, sup, _) in enumerate(blocks, start=1):
            if not sup:
                groups_out.append(RegressionGroupRow(key, label, n, sup))
                continue
            diff, pv = position.get((key, label), (float("nan"), 1.0))
            flagged = bool(n_permutations > 0 and rule.flags(diff, pv))
            groups_out.append(RegressionGroupRow(
                key, label, n, sup, mean_vpr=est(j, 0), mean_spread=est(j, 1),
                ambiguity=est(j, 2), difference=diff if np.isfinite(diff) else None,
                p_value=pv, flagged=flagged))
        out.append(RegressionEpsilonFigures(
            epsilon=eps, n_models=len(members), members=[int(i) for i in members],
            reference=ref, target_in_set=target_in, mean_vpr=est(0, 0),
            mean_spread=est(0, 1), ambiguity=est(0, 2), discrepancy=est(0, 3),
            max_vpr=float(figs.vpr.max()), groups=groups_out))
    return out, per_row


# --------------------------------------------------------------------------- run


def run_regression_multiplicity(section: Any, context: Any, options: Any):
    """The multiplicity section's result for an audit of a regression model."""
    from assay.groups import GroupIndex
    from assay.learners import get_learner
    from assay.multiplicity.rashomon import grid_points, rashomon_plan
    from assay.report.result import SectionResult

    config, dataset, target = context.config, context.dataset, context.target
    heldout = ~np.asarray(target.member, dtype=bool)
    n_rows = dataset.n_rows
    n_models = options.models or config.models
    points = grid_points(options.grid)
    learners = [get_learner(context.learner, **point) for point in points]
    counts = [n_models // len(points) + (i < n_models % len(points))
              for i in range(len(points))]
    rng = np.random.default_rng(config.seed)
    values, infos, params = [], [], []
    for point, spec, count in zip(points, learners, counts):
        plan = rashomon_plan(n_rows, count, heldout=heldout, subsample=options.subsample,
                             random_state=int(rng.integers(2**31)),
                             params={"grid_point": point})
        population = context.fit(plan, spec)
        values.append(population.values)
        params.extend([dict(point)] * count)
        infos.append({k: population.info.get(k) for k in (
            "learner", "seconds", "n_fitted", "n_loaded_from_cache", "backend")})
    candidates = np.concatenate(values)
    y = np.asarray(dataset.y, dtype=np.float64)[heldout]
    preds = np.vstack([np.asarray(target.values, dtype=np.float64)[heldout][None, :],
                       candidates[:, heldout]])
    groups = None
    if dataset.groups.shape[1]:
        groups = GroupIndex.from_frame(dataset.groups.iloc[np.flatnonzero(heldout)]
                                       .reset_index(drop=True),
                                       max_intersection=config.groups.max_intersection)
    threshold = config.decision_threshold
    policy = context.group_policy.for_section(options.min_gap, "greater")
    epsilons = sorted(set(options.epsilons) | {options.headline_epsilon})
    figures, per_row = regression_curve(
        preds, y, epsilons, groups, tolerance=options.tolerance,
        decision_threshold=threshold, n_bootstrap=options.n_bootstrap,
        flag_rule=policy.flag_rule, min_support=policy.min_support,
        n_permutations=policy.n_permutations, random_state=config.seed)
    mse = ((preds - y[None, :]) ** 2).mean(axis=1)
    head = per_row[float(options.headline_epsilon)]
    head_fig = next(f for f in figures if f.epsilon == options.headline_epsilon)
    vpr = head["vpr"]
    if head_fig.measurable and vpr.size:
        top = max(float(vpr.max()), np.finfo(float).tiny)
        counts_, edges = np.histogram(vpr, bins=20, range=(0.0, top))
        order = np.argsort(-vpr, kind="stable")[:options.n_records]
    else:
        counts_, edges = np.zeros(20, dtype=int), np.linspace(0.0, 1.0, 21)
        order = np.zeros(0, dtype=int)
    rows = np.flatnonzero(heldout)[order]
    group_values = (dataset.groups.iloc[rows].astype(str).to_dict("records")
                    if dataset.groups.shape[1] else [{} for _ in rows])
    records = []
    for j, i in enumerate(order):
        record = {"row_id": _plain(dataset.row_ids[rows[j]]), "groups": group_values[j],
                  "y": float(y[i]), "prediction": float(preds[0, i]),
                  "low": float(head["low"][i]), "high": float(head["high"][i]),
                  "vpr": float(vpr[i])}
        if head["flipped"] is not None:
            record["flipped"] = bool(head["flipped"][i])
        records.append(record)
    payload = RegressionMultiplicityPayload(
        epsilons=figures, headline_epsilon=float(options.headline_epsilon),
        tolerance=options.tolerance, best_loss=float(mse.min()), target_loss=float(mse[0]),
        losses=[float(v) for v in mse], n_candidates=int(candidates.shape[0]),
        n_heldout=int(heldout.sum()), decision_threshold=threshold,
        flag_rule=policy.flag_rule, flag_on="ambiguity" if threshold is not None
        else "mean_vpr",
        target={"source": target.source, "loss": float(mse[0]),
                "in_set": bool(head_fig.target_in_set), "n_heldout": int(heldout.sum())},
        candidates={"learner": infos[0].get("learner"),
                    "grid": {k: list(v) for k, v in options.grid.items()},
                    "subsample": options.subsample, "n_models": int(candidates.shape[0]),
                    "seconds": round(sum(i["seconds"] or 0.0 for i in infos), 4),
                    "n_fitted": sum(i["n_fitted"] or 0 for i in infos),
                    "n_loaded_from_cache": sum(i["n_loaded_from_cache"] or 0 for i in infos)},
        vpr_histogram={"edges": [float(e) for e in edges], "counts": [int(c) for c in counts_]},
        records=records, min_measurable_epsilon=_min_eps(mse, options.tolerance))
    return SectionResult(name=section.name, title=section.title,
                         summary=summary_lines(payload), metrics=gate_metrics(payload),
                         data=payload)


def _min_eps(mse: np.ndarray, tolerance: str) -> float | None:
    from assay.multiplicity.rashomon import smallest_measurable_epsilon

    return smallest_measurable_epsilon(mse, float(mse.min()), tolerance)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def describe(epsilon: float, tolerance: str) -> str:
    """ε in words: "within 1 % of the best held-out MSE"."""
    if tolerance == "relative":
        return f"within {100 * epsilon:g} % of the best held-out MSE"
    return f"within {epsilon:g} of the best held-out MSE"


def _num(value: float) -> str:
    return f"{value:,.4g}" if abs(value) < 1e5 else f"{value:,.0f}"


def _est(e: Estimate | None) -> str:
    if e is None:
        return "n/a"
    return f"{_num(e.value)} [{_num(e.ci_low)}, {_num(e.ci_high)}]"


def _share(e: Estimate) -> str:
    from assay.report.result import format_rate

    return f"{format_rate(e.value)} [{format_rate(e.ci_low)}, {format_rate(e.ci_high)}]"


def flagged(figures: RegressionEpsilonFigures) -> list[RegressionGroupRow]:
    """Flagged groups, single attributes first, then by mean range."""
    found = [g for g in figures.groups if g.flagged]
    found.sort(key=lambda g: (len(g.grouping.split(" & ")),
                              -(g.mean_vpr.value if g.mean_vpr else 0.0)))
    return found


def summary_lines(payload: RegressionMultiplicityPayload) -> list[str]:
    """Plain-language findings, the headline first."""
    head = payload.headline
    within = describe(head.epsilon, payload.tolerance)
    if not head.measurable or head.mean_vpr is None:
        lines = [f"Multiplicity at ε = {head.epsilon:g}: {head.reason}."]
        measured = [f for f in payload.epsilons if f.measurable and f.mean_vpr is not None]
        if measured:
            first = measured[0]
            lines.append("Measured at ε = " + ", ".join(f"{f.epsilon:g}" for f in measured)
                         + f"; at ε = {first.epsilon:g} ({first.n_models} models) a held-out "
                         f"person's prediction ranges over {_est(first.mean_vpr)} on average "
                         f"(up to {_num(first.max_vpr or 0.0)}).")
        return lines
    lines = [f"Across the {head.n_models} models {within}, a held-out person's prediction "
             f"ranges over {_est(head.mean_vpr)} on average (viable prediction range; up to "
             f"{_num(head.max_vpr or 0.0)}), with a spread (standard deviation) of "
             f"{_est(head.mean_spread)}."]
    if head.ambiguity is not None and head.discrepancy is not None:
        lines.append(f"With the decision 'prediction > {payload.decision_threshold:g}', an "
                     f"equally good model reverses the reference decision for "
                     f"{_share(head.ambiguity)} of the {payload.n_heldout:,} held-out people; "
                     f"the worst single model for {_share(head.discrepancy)}.")
    found = flagged(head)
    what = ("the overall share" if payload.flag_on == "ambiguity"
            else "the overall mean range (relative)")
    if found:
        top = found[0]
        more = f"; also flagged: {', '.join(g.label for g in found[1:4])}" \
            if len(found) > 1 else ""
        figure = (f"decisions reversed {_share(top.ambiguity)}"
                  if payload.flag_on == "ambiguity" and top.ambiguity is not None
                  else f"mean range {_est(top.mean_vpr)}")
        lines.append(f"Flagged: {top.label} ({figure}){more}. "
                     f"Flagged because {payload.flag_rule.describe(what)}.")
    elif any(g.supported for g in head.groups):
        lines.append(f"No group is flagged ({payload.flag_rule.describe(what)} is needed).")
    if not head.target_in_set:
        lines.append(f"The audited model is not itself {within}: its held-out MSE is "
                     f"{_num(payload.target_loss)} against {_num(payload.best_loss)} for the "
                     f"best candidate.")
    return lines


def gate_metrics(payload: RegressionMultiplicityPayload) -> dict[str, Any]:
    """Flat figures at the headline ε for ``assay gate``."""
    from assay.report.result import Metric

    head = payload.headline
    out: dict[str, Any] = {"n_models": Metric(value=float(head.n_models),
                                              label="models in the Rashomon set",
                                              higher_is_worse=False)}
    labels = {"mean_vpr": "mean viable prediction range",
              "mean_spread": "mean spread of predictions over the set",
              "ambiguity": "ambiguity (share of decisions some good model reverses)",
              "discrepancy": "discrepancy (largest share one good model reverses)"}
    for key, label in labels.items():
        e = getattr(head, key)
        if e is not None:
            out[key] = Metric(value=e.value, ci_low=e.ci_low, ci_high=e.ci_high, label=label)
    out["flagged_groups"] = Metric(value=float(len(flagged(head))),
                                   label="groups flagged as more arbitrary")
    return out


def regression_multiplicity_page(section: Any, result: Any) -> Any:
    """Cards, the ε table, groups and the widest ranges."""
    from importlib import resources

    from assay.section import Card, Page

    payload: RegressionMultiplicityPayload = section.data
    head = payload.headline
    within = describe(head.epsilon, payload.tolerance)
    cards = []
    if head.mean_vpr is not None:
        cards.append(Card("mean viable prediction range", _num(head.mean_vpr.value),
                          f"[{_num(head.mean_vpr.ci_low)}, {_num(head.mean_vpr.ci_high)}]; "
                          f"{head.n_models} models {within}", "card-vpr"))
    else:
        cards.append(Card("mean viable prediction range", "not measurable",
                          f"{head.n_models} model at ε = {head.epsilon:g}", "card-vpr"))
    if head.ambiguity is not None:
        cards.append(Card("decisions an equally good model reverses",
                          f"{100 * head.ambiguity.value:.1f} %",
                          f"threshold {payload.decision_threshold:g}", "card-ambiguity"))
    found = flagged(head)
    if head.groups:
        cards.append(Card("groups flagged as more arbitrary",
                          found[0].label if found else "none",
                          f"flagged when {payload.flag_rule.describe()}", "card-mgroup"))
    view = {"payload": payload, "headline": head, "within": within,
            "groups": [g for g in head.groups if g.supported],
            "small": [g.label for g in head.groups if not g.supported],
            "records": payload.records[:10], "num": _num}
    template = resources.files("assay.multiplicity").joinpath(
        "templates/multiplicity_regression.html.j2").read_text(encoding="utf-8")
    return Page(template=template, view=view, cards=cards)
