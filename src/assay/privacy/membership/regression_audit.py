"""The privacy section on a regression model: membership inference on residuals.

Every model of the audit's regression population is attacked in turn, the others (its
complementary partner left out: the two are coupled through the split) as references
(with a model of the user's own, from a predictions file, that model alone is attacked,
every population model a reference):
LOSS on the squared error, LiRA online and offline on the residual, RMIA with a Gaussian
predictive likelihood (`assay.privacy.membership.regression`). Each attack's AUC and its
TPR at every ``fprs`` level are the mean over targets with the classification attacks'
interval (the hull of the Student-t interval across targets and one target's row-level
interval: Hanley-McNeil for AUC, Clopper-Pearson for TPR); a TPR the non-members cannot
resolve is not estimable, and says why.

Groups (the audit's `GroupPolicy`): for the strongest attack, each group's AUC (its own
members against its own non-members, mean over targets, with the same interval), and a
per-person exposure ``c``: for a target that trained on the row, the share of its
non-members the row outscores; for one that did not, the share of its members that do not
outscore it (ties half), averaged over targets. Its mean over everyone is the AUC; a group
is flagged when its mean exposure is significantly above everyone's (max-T permutation
test within the grouping) by at least ``min_gap`` (AUC units).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assay._serial import Serial, meta
from assay._stats import Estimate

__all__ = ["REGRESSION_ATTACKS", "RegressionAttack", "RegressionExposure",
           "RegressionPrivacyPayload", "attack_population", "attack_target", "exposure",
           "run_regression_privacy"]

#: Attacks on residuals, by the section's ``attacks`` names.
REGRESSION_ATTACKS = ("loss", "lira", "lira_offline", "rmia")
CONFIDENCE = 0.95
INTERVAL = ("mean over targets; the hull of the Student-t interval across targets and one "
            "target's row-level interval (Hanley-McNeil for AUC, Clopper-Pearson for TPR)")


@dataclass
class RegressionAttack(Serial):
    """One attack's figures over every target of the population.

    Attributes
    ----------
    name : str
    auc : Estimate
    auc_per_target : list of float
    tpr : dict of float to Estimate or None
        TPR at each FPR level (None: not estimable, `tpr_notes` says why).
    tpr_notes : dict of float to str
    n_members, n_nonmembers : int
        Per target (mean).
    roc_fpr, roc_tpr, roc_low, roc_high : list of float
        ROC averaged over targets on a log-spaced FPR grid, with its pointwise interval
        (`assay.privacy.membership.results.summarise_scores`), for the figure.
    """

    name: str
    auc: Estimate
    auc_per_target: list[float]
    tpr: dict[float, Estimate | None]
    tpr_notes: dict[float, str] = field(default_factory=dict)
    n_members: int = 0
    n_nonmembers: int = 0
    roc_fpr: list[float] = field(default_factory=list, metadata=meta(key=("roc", "fpr")))
    roc_tpr: list[float] = field(default_factory=list, metadata=meta(key=("roc", "tpr")))
    roc_low: list[float] = field(default_factory=list, metadata=meta(key=("roc", "tpr_low")))
    roc_high: list[float] = field(default_factory=list,
                                  metadata=meta(key=("roc", "tpr_high")))


@dataclass
class RegressionExposure(Serial):
    """One group's exposure to the strongest attack (None when unsupported)."""

    grouping: str
    label: str
    n: int
    supported: bool
    auc: Estimate | None = None
    exposure: float | None = None
    difference: float | None = None
    p_value: float | None = None
    flagged: bool = False


@dataclass
class RegressionPrivacyPayload(Serial):
    """Everything the privacy section found on a regression model.

    Attributes
    ----------
    attacks : list of RegressionAttack
    strongest : str
        The attack with the highest mean AUC.
    fprs : list of float
    mse : dict
        Mean squared error on the members and the non-members (mean over models).
    n_targets : int
    flag_rule : FlagRule
    groups : list of RegressionExposure
    records : list of dict
        The most exposed people: row id, groups, truth, mean prediction as a member and
        as a non-member, exposure.
    interval : str
    error : "squared"
    task : "regression"
    theory : BoundCurve or None
        A claimed DP guarantee's f-DP bound on the strongest attack's ROC grid (the
        section's ``dp_*`` options), and the FPR levels where the attack beats it.
    """

    attacks: list[RegressionAttack]
    strongest: str
    fprs: list[float]
    mse: dict[str, float]
    n_targets: int
    flag_rule: Any = field(metadata=meta(hint=lambda: _flag_rule_type()))
    groups: list[RegressionExposure] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    interval: str = INTERVAL
    error: str = field(default="squared", metadata=meta(schema={"enum": ["squared"]}))
    task: str = field(default="regression", metadata=meta(schema={"const": "regression"}))
    theory: Any = field(default=None, metadata=meta(hint=lambda: _bound_type() | None))

    __json_required__ = ("groups", "records", "task")

    def attack(self, name: str) -> RegressionAttack:
        return next(a for a in self.attacks if a.name == name)


def _flag_rule_type() -> Any:
    from assay.groups import FlagRule

    return FlagRule


def _bound_type() -> Any:
    from assay.privacy.theory.guarantee import BoundCurve

    return BoundCurve


# --------------------------------------------------------------------------- attacks


def _scores(name: str, values: np.ndarray, member: np.ndarray, y: np.ndarray, k: int,
            refs: np.ndarray) -> np.ndarray:
    from assay.privacy.membership import regression as reg

    if name == "loss":
        return reg.loss_scores(values[k], y)
    if name in ("lira", "lira_offline"):
        return reg.lira_scores(values[refs], member[refs], values[k], y,
                               online=name == "lira")
    return reg.rmia_scores(values[refs], member[refs], values[k], member[k], y)


def attack_population(values: Any, member: Any, y: Any, name: str) -> np.ndarray:
    """Scores (K, N) of attack `name` against every model in turn, the other models (its
    complementary partner left out) as references."""
    from assay.privacy.membership.scoring import complement_partners

    values = np.asarray(values, dtype=np.float64)
    member = np.asarray(member, dtype=bool)
    y = np.asarray(y, dtype=np.float64)
    partner = complement_partners(member)
    out = np.empty(values.shape)
    for k in range(values.shape[0]):
        refs = np.array([j for j in range(values.shape[0]) if j != k and j != partner[k]])
        out[k] = _scores(name, values, member, y, k, refs)
    return out


def attack_target(target_values: Any, target_member: Any, values: Any, member: Any,
                  y: Any, name: str) -> np.ndarray:
    """Scores (1, N) of attack `name` against a model of the user's own (its predictions
    and training rows), every population model a reference (none of them is coupled to
    it through a split)."""
    values = np.vstack([np.asarray(target_values, dtype=np.float64)[None, :],
                        np.asarray(values, dtype=np.float64)])
    member = np.vstack([np.asarray(target_member, dtype=bool)[None, :],
                        np.asarray(member, dtype=bool)])
    refs = np.arange(1, values.shape[0])
    return _scores(name, values, member, np.asarray(y, dtype=np.float64), 0, refs)[None, :]


def _figures(name: str, scores: np.ndarray, member: np.ndarray,
             fprs: list[float]) -> RegressionAttack:
    from assay.privacy.membership.estimates import auc_estimate, rate_estimate
    from assay.privacy.membership.regression import evaluate_scores
    from assay.privacy.membership.results import summarise_scores

    per = [[evaluate_scores(scores[k], member[k], f, CONFIDENCE) for f in fprs]
           for k in range(scores.shape[0])]
    aucs = np.array([p[0].auc.value for p in per])
    n_pos = np.array([p[0].n_members for p in per], dtype=float)
    n_neg = np.array([p[0].n_nonmembers for p in per], dtype=float)
    tpr: dict[float, Estimate | None] = {}
    notes: dict[float, str] = {}
    for j, f in enumerate(fprs):
        found = [p[j].tpr for p in per]
        if all(t is not None for t in found):
            hits = np.round(np.array([t.value for t in found if t is not None]) * n_pos)
            tpr[f] = rate_estimate(hits, n_pos, CONFIDENCE)
        else:
            tpr[f] = None
            notes[f] = str(next(p[j].tpr_note for p in per if p[j].tpr is None))
    _, _, roc, _ = summarise_scores(scores, member, fprs, CONFIDENCE)
    return RegressionAttack(name=name, auc=auc_estimate(aucs, n_pos, n_neg, CONFIDENCE),
                            auc_per_target=[float(a) for a in aucs], tpr=tpr,
                            tpr_notes=notes, n_members=int(n_pos.mean()),
                            n_nonmembers=int(n_neg.mean()),
                            roc_fpr=np.asarray(roc.fpr, dtype=float).tolist(),
                            roc_tpr=np.nan_to_num(roc.tpr).tolist(),
                            roc_low=np.nan_to_num(roc.tpr_low).tolist(),
                            roc_high=np.nan_to_num(roc.tpr_high, nan=1.0).tolist())


def guarantee_bound(guarantee: Any, attack: RegressionAttack, fprs: list[float]) -> Any:
    """A claimed guarantee's f-DP bound on the attack's ROC grid (`BoundCurve`), with the
    FPR levels where the lower end of the attack's TPR interval rises above it."""
    from assay.privacy.theory.guarantee import BoundCurve

    curve = guarantee.tradeoff()
    grid = np.asarray(attack.roc_fpr, dtype=float)
    at = {float(f): float(curve.tpr(f)) for f in fprs}
    exceeded = [f for f in at if (e := attack.tpr.get(f)) is not None
                and e.ci_low > at[f] + 1e-12]
    return BoundCurve(description=guarantee.describe(), guarantee=guarantee,
                      fpr=grid.tolist(), tpr=np.asarray(curve.tpr(grid), dtype=float).tolist(),
                      tpr_at_fpr=at, advantage=float(curve.advantage()), exceeded_at=exceeded)


def _below(sorted_values: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Share of `sorted_values` below each x, ties counted half."""
    lo = np.searchsorted(sorted_values, x, side="left")
    hi = np.searchsorted(sorted_values, x, side="right")
    return (lo + 0.5 * (hi - lo)) / max(sorted_values.size, 1)


def exposure(scores: Any, member: Any) -> np.ndarray:
    """Per-person exposure (N,): mean over targets of the share of the target's
    non-members a member row outscores, or of its members a non-member row does not
    (ties half). Its mean over a target's members, or its non-members, is the AUC."""
    scores = np.asarray(scores, dtype=np.float64)
    member = np.asarray(member, dtype=bool)
    total = np.zeros(scores.shape[1])
    for k in range(scores.shape[0]):
        s, m = scores[k], member[k]
        out_sorted, in_sorted = np.sort(s[~m]), np.sort(s[m])
        total += np.where(m, _below(out_sorted, s), 1.0 - _below(in_sorted, s))
    return total / scores.shape[0]


def _auc(s: np.ndarray, m: np.ndarray) -> float:
    """AUC of scores `s` for members `m` (ties half); NaN without both kinds."""
    n_pos, n_neg = int(m.sum()), int((~m).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    return float(_below(np.sort(s[~m]), s[m]).mean())


def _group_exposure(scores: np.ndarray, member: np.ndarray, c: np.ndarray, index: Any,
                    policy: Any, seed: int) -> list[RegressionExposure]:
    from assay.groups import permutation_test
    from assay.privacy.membership.estimates import auc_estimate

    tests = permutation_test(c, index, min_support=policy.min_support,
                             n_permutations=policy.n_permutations, direction="greater",
                             random_state=seed)
    rule = policy.flag_rule
    out = []
    for grouping in index.groupings:
        test = tests[grouping.key]
        supported = grouping.supported(policy.min_support)
        for k, label in enumerate(grouping.labels):
            if not supported[k]:
                out.append(RegressionExposure(grouping.key, label, int(grouping.sizes[k]),
                                              False))
                continue
            rows = grouping.codes == k
            aucs = np.array([_auc(scores[t, rows], member[t, rows])
                             for t in range(scores.shape[0])])
            n_pos = member[:, rows].sum(axis=1).astype(float)
            n_neg = (~member[:, rows]).sum(axis=1).astype(float)
            diff = float(test.difference[k, 0])
            p = float(test.p_value[k, 0])
            out.append(RegressionExposure(
                grouping.key, label, int(grouping.sizes[k]), True,
                auc=auc_estimate(aucs, n_pos, n_neg, CONFIDENCE),
                exposure=float(c[rows].mean()), difference=diff if np.isfinite(diff) else None,
                p_value=p, flagged=bool(policy.n_permutations > 0 and rule.flags(diff, p))))
    return out


# --------------------------------------------------------------------------- run


def run_regression_privacy(section: Any, context: Any, options: Any):
    """The privacy section's result for an audit of a regression model."""
    from assay.report.result import SectionResult

    population, dataset = context.population, context.dataset
    values, member = population.values, population.member
    y = np.asarray(population.y, dtype=np.float64)
    fprs = [float(f) for f in options.fprs]
    if context.brings_own_model:  # the user's model attacked, the population its references
        target = context.target
        scores = {name: attack_target(target.values, target.member, values, member, y, name)
                  for name in options.attacks}
        values = np.asarray(target.values, dtype=np.float64)[None, :]
        member = np.asarray(target.member, dtype=bool)[None, :]
    else:
        scores = {name: attack_population(values, member, y, name)
                  for name in options.attacks}
    attacks = [_figures(name, s, member, fprs) for name, s in scores.items()]
    strongest = max(attacks, key=lambda a: a.auc.value).name
    c = exposure(scores[strongest], member)
    policy = context.group_policy.for_section(options.min_gap, "greater")
    groups = ([] if context.groups is None else
              _group_exposure(scores[strongest], member, c, context.groups, policy,
                              context.config.seed))
    order = np.argsort(-c, kind="stable")[:options.n_records]
    group_values = (dataset.groups.iloc[order].astype(str).to_dict("records")
                    if dataset.groups.shape[1] else [{} for _ in order])
    with np.errstate(invalid="ignore", divide="ignore"):
        as_member = np.where(member, values, 0.0).sum(axis=0) / member.sum(axis=0)
        as_other = np.where(~member, values, 0.0).sum(axis=0) / (~member).sum(axis=0)
    records = [{"row_id": _plain(dataset.row_ids[i]), "groups": group_values[j],
                "y": float(y[i]), "prediction_as_member": _finite(as_member[i]),
                "prediction_as_nonmember": _finite(as_other[i]), "exposure": float(c[i])}
               for j, i in enumerate(order)]
    sq = np.square(values - y[None, :])
    with np.errstate(invalid="ignore", divide="ignore"):
        mse = {"members": float(np.mean(np.where(member, sq, 0).sum(1) / member.sum(1))),
               "nonmembers": float(np.mean(np.where(~member, sq, 0).sum(1)
                                           / (~member).sum(1)))}
    payload = RegressionPrivacyPayload(
        attacks=attacks, strongest=strongest, fprs=fprs, mse=mse,
        n_targets=int(values.shape[0]), flag_rule=policy.flag_rule, groups=groups,
        records=records)
    if options.guarantee is not None:  # drawn beside the ROC, as for a classifier
        payload.theory = guarantee_bound(options.guarantee, payload.attack(strongest), fprs)
    return SectionResult(name=section.name, title=section.title,
                         summary=summary_lines(payload), metrics=gate_metrics(payload),
                         data=payload)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _pct(e: Estimate) -> str:
    return f"{100 * e.value:.2f} % [{100 * e.ci_low:.2f} %, {100 * e.ci_high:.2f} %]"


def _e(e: Estimate) -> str:
    return f"{e.value:.3f} [{e.ci_low:.3f}, {e.ci_high:.3f}]"


def flagged(payload: RegressionPrivacyPayload) -> list[RegressionExposure]:
    """Flagged groups, single attributes first, then by exposure."""
    found = [g for g in payload.groups if g.flagged]
    found.sort(key=lambda g: (len(g.grouping.split(" & ")), -(g.exposure or 0.0)))
    return found


def summary_lines(payload: RegressionPrivacyPayload) -> list[str]:
    """Plain-language findings, the headline first."""
    from assay.report.result import format_amount

    best = payload.attack(payload.strongest)
    fpr = min(payload.fprs)
    lines = [f"The strongest membership attack on the regression model's residuals "
             f"({best.name}) reaches AUC {_e(best.auc)} over {payload.n_targets} "
             f"model{'s' if payload.n_targets != 1 else ''} "
             f"(0.5: no better than guessing)."]
    tpr = best.tpr.get(fpr)
    if tpr is not None:
        lines.append(f"At FPR {fpr:g} it finds {_pct(tpr)} of the training people.")
    else:
        lines.append(f"Its TPR at FPR {fpr:g} is not estimable: {best.tpr_notes.get(fpr)}.")
        resolved = sorted(f for f, t in best.tpr.items() if t is not None)
        if resolved:
            low = best.tpr[resolved[0]]
            if low is not None:
                lines.append(f"At FPR {resolved[0]:g} it finds {_pct(low)} of the training "
                             f"people.")
    lines.append(f"Mean squared error {format_amount(payload.mse['members'])} on training rows "
                 f"against {format_amount(payload.mse['nonmembers'])} on unseen rows.")
    theory = payload.theory
    if theory is not None:
        bound = theory.tpr_at_fpr[fpr]
        if theory.exceeded_at:
            lines.append(f"The attack beats the claimed guarantee ({theory.description}) at "
                         f"FPR {', '.join(f'{f:g}' for f in theory.exceeded_at)}: the "
                         f"guarantee does not hold for this model.")
        else:
            lines.append(f"The claimed guarantee ({theory.description}) bounds any attacker "
                         f"at TPR {100 * bound:.2f} % at FPR {fpr:g}; the attacks stay under "
                         f"it.")
    found = flagged(payload)
    if found:
        top = found[0]
        more = f"; also flagged: {', '.join(g.label for g in found[1:4])}" \
            if len(found) > 1 else ""
        auc = f" (group AUC {_e(top.auc)})" if top.auc is not None else ""
        lines.append(f"More exposed: {top.label}{auc}{more}. Flagged because "
                     f"{payload.flag_rule.describe('the overall exposure (AUC units)')}.")
    elif payload.groups:
        lines.append(f"No group is flagged as more exposed "
                     f"({payload.flag_rule.describe('the overall exposure')} is needed).")
    return lines


def gate_metrics(payload: RegressionPrivacyPayload) -> dict[str, Any]:
    """Per-attack figures (``lira.auc``), the strongest attack's (``auc``), flags."""
    from assay.report.result import Metric

    def metric(e: Estimate | None, label: str) -> Any:
        if e is None:
            return Metric(value=None, label=label)
        return Metric.of(e, label)

    out: dict[str, Any] = {}
    for attack in payload.attacks:
        out[f"{attack.name}.auc"] = metric(attack.auc, f"{attack.name}: attack AUC")
        for f in payload.fprs:
            out[f"{attack.name}.tpr@{f:g}"] = metric(attack.tpr.get(f),
                                                     f"{attack.name}: TPR at FPR {f:g}")
    best = payload.attack(payload.strongest)
    out["auc"] = metric(best.auc, f"attack AUC, strongest attack ({best.name})")
    for f in payload.fprs:
        out[f"tpr@{f:g}"] = metric(best.tpr.get(f),
                                   f"TPR at FPR {f:g}, strongest attack ({best.name})")
    out["flagged_groups"] = Metric(value=float(len(flagged(payload))),
                                   label="groups flagged as more exposed")
    if payload.theory is not None:  # as the classification section names them
        for f, bound in payload.theory.tpr_at_fpr.items():
            out[f"dp.tpr@{f:g}"] = Metric(value=bound, label=f"DP bound on TPR at FPR {f:g}")
        out["dp.advantage"] = Metric(value=payload.theory.advantage,
                                     label="DP bound on advantage")
    return out


def regression_privacy_page(section: Any, result: Any) -> Any:
    """Cards, the attack table, groups and the most exposed people."""
    from importlib import resources

    from assay.privacy.plots import Curve, roc_plot
    from assay.section import Card, Page

    payload: RegressionPrivacyPayload = section.data
    best = payload.attack(payload.strongest)
    fpr = min(payload.fprs)
    tpr = best.tpr.get(fpr)
    cards = [Card("membership attack AUC", f"{best.auc.value:.3f}",
                  f"[{best.auc.ci_low:.3f}, {best.auc.ci_high:.3f}] ({best.name})", "card-auc"),
             Card(f"TPR at FPR {fpr:g}", "not estimable" if tpr is None else
                  f"{100 * tpr.value:.2f} %", "" if tpr is None else
                  f"[{100 * tpr.ci_low:.2f} %, {100 * tpr.ci_high:.2f} %]", "card-tpr")]
    found = flagged(payload)
    if payload.groups:
        cards.append(Card("groups flagged as more exposed", found[0].label if found else "none",
                          f"flagged when {payload.flag_rule.describe()}", "card-pgroup"))
    view = {"payload": payload, "groups": [g for g in payload.groups if g.supported],
            "small": [g.label for g in payload.groups if not g.supported],
            "records": payload.records[:10]}
    theory = payload.theory
    figures = {}
    if best.roc_fpr:  # payloads written before the ROC was kept have none
        figures["roc"] = roc_plot(
            [Curve(label=f"{a.name.upper()} (AUC {a.auc.value:.3f})", fpr=a.roc_fpr,
                   tpr=a.roc_tpr, low=a.roc_low, high=a.roc_high, bold=a.name == best.name)
             for a in payload.attacks],
            bound=None if theory is None else Curve(f"DP bound: {theory.description}",
                                                    theory.fpr, theory.tpr),
            title="Membership inference on residuals: ROC (log-log)")
    template = resources.files("assay.privacy.membership").joinpath(
        "templates/privacy_regression.html.j2").read_text(encoding="utf-8")
    return Page(template=template, view=view, figures=figures, cards=cards)
