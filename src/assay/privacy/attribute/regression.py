"""Attribute inference on a regression model's outputs, against the imputation baseline.

The attacker knows a person's other columns and what the model says about them, and
guesses a sensitive attribute (`assay.privacy.attribute.inference` asks the same of a
classifier). Two attackers, each compared with the imputation that knows the same
columns *without* the model's output, so the difference is what the output adds:

* ``prediction``: the other columns and the model's predicted value ŷ; baseline: the
  other columns alone;
* ``residual``: the other columns, the true target y and ŷ, so the residual y − ŷ, its
  square and its log magnitude (how closely the model fits the person, the signal
  membership attacks read); baseline: the other columns and y.

Both are a multinomial logistic regression, cross-fitted on two halves of the rows as the
classification attack model is (`_fit_predict_lr`), one per target model and half.
Candidates per target are equal numbers of its members and non-members.

Figures per attack, on members and non-members: accuracy (Poisson bootstrap over rows),
MCC, TPR at low FPR and PPV among the top of the positive value, for the attack and for
its baseline, and

    advantage    = attack − baseline accuracy on members
    contribution = advantage on members − advantage on non-members

The advantage is what the released output lets anyone infer beyond imputation; the
contribution is the part that concerns the training people only (a model that fits its
members closer than others gives their attribute away more). An attack *beats guessing*
by the classification section's rule (`compare_to_guessing`): the lower end of its
members' accuracy interval lies above the better of its baseline and the majority
guess. Groups (protected columns other than the sensitive one): the leading attack's
advantage inside each group with its bootstrap interval, flagged by the audit's
`FlagRule` from the group layer's max-T permutation test of a per-row advantage.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np

from assay._serial import Serial, meta
from assay._stats import Estimate
from assay._validation import MAX_RESAMPLES, DataError, InvalidParameterError, check_scalar
from assay.privacy.attribute.inference import (
    AttackFigures,
    _boot_contrast,
    _boot_ratio,
    _feature_columns,
    _fit_predict_lr,
    _interval,
    _side,
    check_sensitive,
    compare_to_guessing,
)

__all__ = ["REGRESSION_ATTRIBUTE_ATTACKS", "RegressionAttributeAttack",
           "RegressionAttributePayload", "RegressionGroupAdvantage",
           "regression_attribute_inference", "run_regression_attribute"]

#: The attackers, by what they know beside the other columns.
REGRESSION_ATTRIBUTE_ATTACKS = ("prediction", "residual")
_KNOWS = {"prediction": "the other columns and the model's predicted value",
          "residual": "the other columns, the true target and the model's predicted value "
                      "(so its residual)"}
_BASELINE_KNOWS = {"prediction": "the other columns",
                   "residual": "the other columns and the true target"}


# --------------------------------------------------------------------------- results


@dataclass
class RegressionAttributeAttack(Serial):
    """One attacker and its imputation baseline (the same columns without the output).

    Attributes
    ----------
    name : {"prediction", "residual"}
    knows, baseline_knows : str
        What the attacker, and the baseline, hold about a person.
    attack, baseline : AttackFigures
        Members' and non-members' figures; the attack's ``contribution`` is the model's
        own (advantage on members − on non-members), the baseline has none.
    advantage : Estimate
        Attack − baseline accuracy on members.
    advantage_nonmembers : Estimate
        The same on non-members.
    lower_bound, reference : float
        The attack's lower accuracy bound on members, and the better of the baseline and
        the majority guess it must exceed (``reference_name``).
    beats : bool
    """

    name: str = field(metadata=meta(schema={"enum": list(REGRESSION_ATTRIBUTE_ATTACKS)}))
    knows: str
    baseline_knows: str
    attack: AttackFigures
    baseline: AttackFigures
    advantage: Estimate
    advantage_nonmembers: Estimate
    lower_bound: float
    reference: float
    reference_name: str
    beats: bool

    @property
    def contribution(self) -> Estimate:
        if self.attack.contribution is None:
            raise ValueError("an attack always has its contribution")
        return self.attack.contribution


@dataclass
class RegressionGroupAdvantage(Serial):
    """The leading attack's advantage over its baseline inside one group (members)."""

    grouping: str
    label: str
    n_rows: int
    supported: bool
    advantage: Estimate | None = None
    attack_accuracy: float | None = None
    baseline_accuracy: float | None = None
    difference: float | None = None
    p_value: float | None = None
    flagged: bool = False

    __json_required__ = ("flagged",)


@dataclass
class RegressionAttributePayload(Serial):
    """What attribute inference found on a regression model (the section's payload).

    Attributes
    ----------
    sensitive : str
    values : list of str
    positive : str
        The value TPR and PPV are about.
    attacks : list of RegressionAttributeAttack
    strongest : str or None
        Among the attacks that beat guessing, the one with the largest advantage.
    strongest_reason : str or None
        Why none is named.
    majority_accuracy : float
        Accuracy on the member candidates of always guessing the most common value.
    group_attack : str or None
        The attack the groups are read for: the strongest, else the largest advantage.
    groups : list of RegressionGroupAdvantage
    flag_rule : dict
    n_targets, n_candidates : int
        Target models attacked; candidates per side and target.
    fprs, top : list of float
    prior : float
        Share of the most common value.
    source : str
    seconds : dict
    task : "regression"
    """

    sensitive: str
    values: list[str]
    positive: str
    attacks: list[RegressionAttributeAttack]
    strongest: str | None
    strongest_reason: str | None
    majority_accuracy: float
    group_attack: str | None
    groups: list[RegressionGroupAdvantage] = field(default_factory=list)
    flag_rule: dict[str, Any] = field(default_factory=dict)
    n_targets: int = field(default=0, metadata=meta(schema={"minimum": 1}))
    n_candidates: int = field(default=0, metadata=meta(schema={"minimum": 1}))
    fprs: list[float] = field(default_factory=list)
    top: list[float] = field(default_factory=list)
    prior: float = 0.0
    source: str = ""
    seconds: dict[str, float] = field(default_factory=dict)
    task: str = field(default="regression", metadata=meta(schema={"const": "regression"}))

    __json_required__ = ("groups", "flag_rule", "n_targets", "n_candidates", "task")

    def attack(self, name: str) -> RegressionAttributeAttack:
        return next(a for a in self.attacks if a.name == name)

    @property
    def best(self) -> RegressionAttributeAttack | None:
        return None if self.strongest is None else self.attack(self.strongest)

    @property
    def flagged_groups(self) -> list[RegressionGroupAdvantage]:
        return [g for g in self.groups if g.flagged]


# --------------------------------------------------------------------------- entry


def _features(aux: np.ndarray, y: np.ndarray, predicted: np.ndarray | None, attack: str
              ) -> np.ndarray:
    """Columns of an attacker (`predicted` given) or of its baseline (None)."""
    if attack == "prediction":
        return aux if predicted is None else np.column_stack([aux, predicted])
    if predicted is None:
        return np.column_stack([aux, y])
    residual = y - predicted
    # How closely the model fits the person: squared (a Gaussian likelihood) and on a log
    # scale (a memorised row's residual is ~0, far below any other's); a model that fits
    # a group closer tells its members apart.
    floor = 1e-3 * (float(np.std(y)) or 1.0)
    return np.column_stack([aux, y, predicted, residual, residual ** 2,
                            np.log(np.abs(residual) + floor)])


def regression_attribute_inference(
    dataset: Any,
    sensitive: str,
    predictions: Any,
    member: Any,
    *,
    source: str = "",
    positive: str | None = None,
    n_targets: int | None = None,
    fprs: tuple[float, ...] = (0.1, 0.01),
    top: tuple[float, ...] = (0.01, 0.1),
    groups: Any = None,
    flag_rule: Any = None,
    min_support: int = 50,
    n_permutations: int = 200,
    n_bootstrap: int = 300,
    random_state: int = 0,
) -> RegressionAttributePayload:
    """Attribute inference from regression models' predicted values, against imputation.

    Parameters
    ----------
    dataset : Dataset
        A regression table (``dataset.y`` the continuous target).
    sensitive : str
        The attribute to infer: a protected or feature column with 2 to 20 values.
    predictions : array of shape (n_targets, n_rows) or (n_rows,)
        Every target model's predicted value on every row (a population's ``values``).
    member : bool array of the same shape
        The rows each target was trained on.
    source : str
        Where the targets came from, for the report.
    positive : str, optional
        The value TPR and PPV are about (default: the rarest).
    n_targets : int, optional
        Targets attacked (default all).
    fprs, top : tuple of float
        FPR levels of the TPR figures; top shares of the PPV figures.
    groups : GroupIndex, optional
        Default: the protected columns other than `sensitive`.
    flag_rule : FlagRule, optional
        Default ``FlagRule(min_difference=0.05, direction="greater")``.
    min_support, n_permutations, n_bootstrap : int
    random_state : int

    Returns
    -------
    RegressionAttributePayload

    Raises
    ------
    InvalidParameterError, DataError
        Bad options, predictions of the wrong shape or not finite, targets without two
        members and two non-members: all before any attack model is fitted.
    """
    from assay.groups import FlagRule, GroupIndex

    started = time.perf_counter()
    values = check_sensitive(dataset, sensitive, positive)
    fprs = tuple(check_scalar(f, "fprs", low=0, high=1, low_open=True, high_open=True)
                 for f in fprs)
    top = tuple(check_scalar(t, "top", low=0, high=1, low_open=True) for t in top)
    n_bootstrap = check_scalar(n_bootstrap, "n_bootstrap", kind=int, low=10, high=MAX_RESAMPLES)
    n = dataset.n_rows
    predicted = np.atleast_2d(np.asarray(predictions, dtype=np.float64))
    member = np.atleast_2d(np.asarray(member, dtype=bool))
    if predicted.shape != member.shape or predicted.shape[1] != n:
        raise InvalidParameterError(
            f"predictions and member must both have shape (n_targets, {n}). Got "
            f"{predicted.shape} and {member.shape}.")
    if not np.isfinite(predicted).all():
        raise DataError("predictions must be finite numbers. Got NaN or infinite values.")
    if n_targets is not None:
        n_targets = check_scalar(n_targets, "n_targets", kind=int, low=1)
        predicted, member = predicted[:n_targets], member[:n_targets]
    n_side = int(min(member.sum(axis=1).min(), (~member).sum(axis=1).min()))
    if n_side < 2:
        raise DataError("the target models must each have at least 2 members and 2 "
                        f"non-members. Got {n_side}.")
    rule = flag_rule or FlagRule(min_difference=0.05, direction="greater")
    levels, codes = np.unique(values, return_inverse=True)
    n_values = levels.size
    counts = np.bincount(codes, minlength=n_values)
    pos = int(np.argmin(counts)) if positive is None else int(np.flatnonzero(levels ==
                                                                              positive)[0])
    rng = np.random.default_rng(random_state)
    X = dataset.dense_X("attribute inference")
    aux = np.delete(np.asarray(X, dtype=np.float64), _feature_columns(dataset, sensitive),
                    axis=1)
    y = np.asarray(dataset.y, dtype=np.float64)
    n_t = predicted.shape[0]

    # Equal member and non-member candidates per target (the larger side subsampled).
    keys = rng.random(member.shape)
    cand = np.zeros_like(member)
    for side in (member, ~member):
        rank = np.argsort(np.where(side, keys, 2.0), axis=1)[:, :n_side]
        np.put_along_axis(cand, rank, True, axis=1)
    in_m, in_n = cand & member, cand & ~member
    cnt_m, cnt_n = in_m.sum(axis=0).astype(float), in_n.sum(axis=0).astype(float)

    # Cross-fitting halves: the attacker's auxiliary rows (attribute known) and the guessed.
    fold = rng.permutation(n) % 2

    def cross_fit(features: np.ndarray, seed: int) -> np.ndarray:
        out = np.zeros((n, n_values))
        for f in (0, 1):
            train, test = fold == f, fold != f
            out[test] = _fit_predict_lr(features[train], codes[train], features[test],
                                        n_values, seed)
        return out

    posteriors: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # (baseline (N, V), (T, N, V))
    for name in REGRESSION_ATTRIBUTE_ATTACKS:
        base = cross_fit(_features(aux, y, None, name), random_state)
        attack = np.stack([cross_fit(_features(aux, y, predicted[t], name), random_state + t)
                           for t in range(n_t)])
        posteriors[name] = (base, attack)
    fit_seconds = time.perf_counter() - started

    weights = rng.poisson(1.0, size=(n_bootstrap, n)).astype(np.float32)
    majority = float(((codes == int(np.argmax(counts)))[None, :] & in_m).sum() / in_m.sum())
    truth = np.broadcast_to(codes, member.shape)
    attacks: list[RegressionAttributeAttack] = []
    per_row: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    reasons: dict[str, str | None] = {}
    for name, (base_post, post) in posteriors.items():
        base_post = np.broadcast_to(base_post, post.shape)
        correct = post.argmax(axis=2) == codes[None, :]
        base_correct = base_post.argmax(axis=2) == codes[None, :]
        s_m, s_n = (correct & in_m).sum(axis=0).astype(float), \
            (correct & in_n).sum(axis=0).astype(float)
        b_m, b_n = (base_correct & in_m).sum(axis=0).astype(float), \
            (base_correct & in_n).sum(axis=0).astype(float)
        per_row[name] = (s_m, b_m, s_m - b_m)
        sides = []
        for p, s_mem, s_non in ((post, s_m, s_n), (base_post, b_m, b_n)):
            figures = []
            for mask, s, c in ((in_m, s_mem, cnt_m), (in_n, s_non, cnt_n)):
                figures.append(_side(truth[mask], p.argmax(axis=2)[mask], p[..., pos][mask],
                                     pos, n_values, fprs, top, _boot_ratio(s, c, weights)))
            sides.append(figures)
        contribution = _boot_contrast(s_m - b_m, cnt_m, s_n - b_n, cnt_n, weights)
        attack_figures = AttackFigures(sides[0][0], sides[0][1], contribution)
        base_figures = AttackFigures(sides[1][0], sides[1][1])
        comparison, _, reason = compare_to_guessing(
            {"imputation": base_figures, name: attack_figures}, majority)
        reasons[name] = reason
        c = comparison[name]
        attacks.append(RegressionAttributeAttack(
            name=name, knows=_KNOWS[name], baseline_knows=_BASELINE_KNOWS[name],
            attack=attack_figures, baseline=base_figures,
            advantage=_boot_ratio(s_m - b_m, cnt_m, weights),
            advantage_nonmembers=_boot_ratio(s_n - b_n, cnt_n, weights),
            lower_bound=c["lower_bound"], reference=c["reference"],
            reference_name=c["reference_name"], beats=c["beats"]))

    winners = [a for a in attacks if a.beats]
    strongest = max(winners, key=lambda a: a.advantage.value).name if winners else None
    reason = None
    if strongest is None:
        closest = max(attacks, key=lambda a: a.lower_bound - a.reference)
        reason = reasons[closest.name]
    leading = strongest or max(attacks, key=lambda a: a.advantage.value).name
    if groups is None:
        others = [c for c in dataset.groups.columns if c != sensitive]
        groups = GroupIndex.from_frame(dataset.groups[others]) if others else None
    group_rows: list[RegressionGroupAdvantage] = []
    if groups is not None:
        group_rows = _group_advantages(groups, *per_row[leading], cnt_m, weights, rule,
                                       min_support, n_permutations, random_state)
    return RegressionAttributePayload(
        sensitive=sensitive, values=[str(v) for v in levels], positive=str(levels[pos]),
        attacks=attacks, strongest=strongest, strongest_reason=reason,
        majority_accuracy=majority, group_attack=leading, groups=group_rows,
        flag_rule=rule.to_dict(), n_targets=n_t, n_candidates=n_side, fprs=list(fprs),
        top=list(top), prior=float(counts.max() / counts.sum()), source=source,
        seconds={"fit": round(fit_seconds, 3),
                 "attack": round(time.perf_counter() - started - fit_seconds, 3)})


def _group_advantages(groups: Any, s_m: np.ndarray, b_m: np.ndarray, d_m: np.ndarray,
                      c_m: np.ndarray, w: np.ndarray, rule: Any, min_support: int,
                      n_permutations: int, random_state: int) -> list[RegressionGroupAdvantage]:
    """Each group's advantage on its member candidates, bootstrap interval, flag."""
    from assay.groups import permutation_test

    # Rows never a member candidate carry no advantage: left out of the test (NaN).
    with np.errstate(invalid="ignore", divide="ignore"):
        row_advantage = np.where(c_m > 0, d_m / np.maximum(c_m, 1), np.nan)
    tests = permutation_test(row_advantage, groups, min_support=min_support,
                             n_permutations=n_permutations, direction=rule.direction,
                             random_state=random_state)
    out = []
    for g in groups.groupings:
        hot = g.one_hot(np.float64)  # (N, G): every group's sums in one product
        with np.errstate(invalid="ignore", divide="ignore"):
            rows = c_m @ hot
            point = (d_m @ hot) / rows
            boot = (w @ (d_m[:, None] * hot)) / (w @ (c_m[:, None] * hot))
            attack, base = (s_m @ hot) / rows, (b_m @ hot) / rows
        test = tests[g.key]
        ok = g.supported(min_support)
        flags = rule.flags(test.difference[:, 0], test.p_value[:, 0])
        for j, label in enumerate(g.labels):
            row = RegressionGroupAdvantage(g.key, label, int(g.sizes[j]), bool(ok[j]))
            if ok[j] and rows[j] > 0:
                row.advantage = _interval(float(point[j]), boot[:, j])
                row.attack_accuracy, row.baseline_accuracy = float(attack[j]), float(base[j])
                row.difference = float(test.difference[j, 0])
                row.p_value = float(test.p_value[j, 0])
                row.flagged = bool(n_permutations > 0 and flags[j])
            out.append(row)
    return out


# --------------------------------------------------------------------------- section


def run_regression_attribute(section: Any, context: Any, options: Any) -> Any:
    """The attribute section's result for an audit of a regression model: the model of
    the user's own alone, else every model of the audit's population as a target."""
    from assay.report.result import SectionResult

    if context.brings_own_model:
        predictions, member = context.target.values[None, :], context.target.member[None, :]
        source = context.target.source
    else:
        population = context.population
        predictions, member = population.values, population.member
        source = f"{population.n_models} models of the population"
    policy = context.group_policy.for_section(options.min_gap, "greater")
    payload = regression_attribute_inference(
        context.dataset, options.sensitive, predictions, member, source=source,
        positive=options.positive, n_targets=options.targets, **policy.test_options(),
        random_state=context.config.seed)
    return SectionResult(name=section.name, title=section.title, summary=summary(payload),
                         metrics=metrics(payload), data=payload)


def _points(e: Estimate) -> str:
    return f"{100 * e.value:+.1f} points [{100 * e.ci_low:+.1f}, {100 * e.ci_high:+.1f}]"


def summary(payload: RegressionAttributePayload) -> list[str]:
    """Plain-language findings, the headline first."""
    from assay.report.result import format_rate

    r, best = payload, payload.best
    if best is None:
        lines = [f"Inferring {r.sensitive} from the regression model's output: "
                 f"{r.strongest_reason or 'no attack beats guessing'}. No attack is named "
                 f"strongest and no leak of the model is claimed."]
        lines += [f"The {a.name} attack (knowing {a.knows}) is {_points(a.advantage)} from "
                  f"imputation on members." for a in r.attacks]
    else:
        acc, c = best.attack.members.accuracy, best.contribution
        lines = [
            f"Inferring {r.sensitive} from the regression model's output: the {best.name} "
            f"attack (knowing {best.knows}) is right for {format_rate(acc.value)} "
            f"[{format_rate(acc.ci_low)}, {format_rate(acc.ci_high)}] of members, "
            f"{_points(best.advantage)} above imputation from {best.baseline_knows} without "
            f"the model ({format_rate(best.baseline.members.accuracy.value)}); its lower "
            f"bound is above {best.reference_name} ({format_rate(best.reference)}).",
            f"The model's own contribution (advantage on members minus on non-members) is "
            f"{c.value:+.3f} [{c.ci_low:+.3f}, {c.ci_high:+.3f}]: "
            + ("the model gives the attribute of the people it was trained on away more than "
               "anyone else's." if c.ci_low > 0 else
               "its output tells as much about people it never saw (an inference about the "
               "population, not a leak of its training rows)."),
        ]
    flagged = r.flagged_groups
    if flagged:
        lines.append(f"Groups where the {r.group_attack} attack's advantage is larger: "
                     f"{', '.join(g.label for g in flagged[:4])} (flagged when "
                     f"p < {r.flag_rule['alpha']:g} and at least "
                     f"{r.flag_rule['min_difference']:g} above the overall advantage).")
    return lines


def metrics(payload: RegressionAttributePayload) -> dict[str, Any]:
    from assay.report.result import Metric

    def metric(e: Estimate, label: str) -> Metric:
        return Metric(e.value, e.ci_low, e.ci_high, label=label)

    out: dict[str, Any] = {}
    best = payload.best
    if best is not None:
        out["advantage"] = metric(best.advantage, f"advantage of attribute inference over "
                                                  f"imputation, members ({best.name})")
        out["contribution"] = metric(best.contribution, f"model's contribution to attribute "
                                                        f"inference ({best.name})")
    out["beats_guessing"] = Metric(float(best is not None),
                                   label="an attack beats imputation and the majority guess")
    for a in payload.attacks:
        out[f"{a.name}.accuracy"] = metric(a.attack.members.accuracy,
                                           f"{a.name}: accuracy on members")
        out[f"{a.name}.advantage"] = metric(a.advantage, f"{a.name}: advantage over "
                                                         "imputation on members")
        out[f"{a.name}.contribution"] = metric(a.contribution,
                                               f"{a.name}: model's contribution")
    out["flagged_groups"] = Metric(float(len(payload.flagged_groups)),
                                   label="groups flagged as leaking more")
    return out


def regression_attribute_page(section: Any, result: Any) -> Any:
    """Cards, the attack-and-baseline table, the groups' advantages."""
    from assay.report.result import format_rate
    from assay.section import Card, Page

    r: RegressionAttributePayload = section.data
    lead = r.attack(r.group_attack) if r.group_attack else r.attacks[0]
    best = r.best
    if best is None:
        cards = [Card("strongest attribute-inference attack", "no attack beats guessing",
                      f"largest advantage: {lead.name}, {_points(lead.advantage)}",
                      "card-attr-advantage")]
    else:
        acc = best.attack.members.accuracy
        cards = [Card("advantage over imputation", _points(best.advantage).split(" [")[0],
                      f"[{100 * best.advantage.ci_low:+.1f}, "
                      f"{100 * best.advantage.ci_high:+.1f}] ({best.name})",
                      "card-attr-advantage"),
                 Card(f"{r.sensitive} inferred for members ({best.name})",
                      format_rate(acc.value),
                      f"[{format_rate(acc.ci_low)}, {format_rate(acc.ci_high)}]; imputation "
                      f"{format_rate(best.baseline.members.accuracy.value)}",
                      "card-attr-accuracy")]
    groups = [g for g in r.groups if g.advantage is not None]
    groups.sort(key=lambda g: -g.advantage.value if g.advantage else 0.0)
    figures = {"groups": advantage_plot(groups, lead)} if groups else {}
    view = {"r": r, "groups": groups,
            "small": [g.label for g in r.groups if g.advantage is None]}
    template = resources.files("assay.privacy.attribute").joinpath(
        "templates/attribute_regression.html.j2").read_text(encoding="utf-8")
    return Page(template=template, view=view, figures=figures, cards=cards)


def advantage_plot(groups: list[RegressionGroupAdvantage], lead: RegressionAttributeAttack,
                   max_groups: int = 14) -> str:
    """Each group's advantage over imputation (points, 95 % CI) beside the overall one;
    flagged groups in orange."""
    from assay.report.plots import COLORS, GREY, THEORY, figure, plain, svg_text

    shown = [g for g in groups if g.advantage is not None][:max_groups]
    fig, ax = figure(5.6, 0.9 + 0.3 * max(len(shown), 1))
    y = np.arange(len(shown))[::-1]
    value = np.array([100 * g.advantage.value for g in shown if g.advantage])
    low = np.array([100 * g.advantage.ci_low for g in shown if g.advantage])
    high = np.array([100 * g.advantage.ci_high for g in shown if g.advantage])
    ax.barh(y, value, color=[COLORS[1] if g.flagged else COLORS[0] for g in shown],
            alpha=0.85, height=0.62)
    ax.errorbar(value, y, xerr=[value - low, high - value], fmt="none", ecolor="#333333",
                capsize=2.5, lw=1)
    ax.set_yticks(y, [plain(f"{g.label}  (n={g.n_rows})") for g in shown])
    ax.axvline(0.0, color=GREY, lw=1, ls=":")
    overall = 100 * lead.advantage.value
    ax.axvline(overall, color=THEORY, lw=1, ls="--", label=f"overall {overall:+.1f}")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_xlabel("attack − imputation accuracy on members (points)")
    ax.set_title(f"Advantage by group ({lead.name}, 95 % CI)", loc="left")
    ax.grid(axis="y", visible=False)
    return svg_text(fig)
