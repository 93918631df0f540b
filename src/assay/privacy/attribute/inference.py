"""Attribute inference against an imputation baseline: what the model itself gives away.

Can an attacker who knows everything about a person except a sensitive attribute (health
status, ethnicity), and their label, learn that attribute from the model? Jayaraman &
Evans ("Are attribute inference attacks just imputation?", CCS 2022) show that black-box
attacks mostly do what an attacker *without* the model could: impute the attribute from
the other columns. So the figure this module reports is the **model's own contribution**

    contribution = (attack − imputation) on members − (attack − imputation) on non-members

in accuracy: what the attack gains over imputation on the people the model was trained
on, beyond what it gains on people it never saw (that part is a property of the
population, learnable by anyone, not a leak of the training data).

Attacks (all given the same auxiliary data as the baseline):

* ``loss`` (Yeom et al. 2018): query the model with every candidate value of the
  attribute, guess the one with the smallest loss on the known label;
* ``confidence`` (Fredrikson et al. 2014): the same, weighted by the attribute's prior:
  guess argmax_v p(y | x, v) π(v);
* ``model``: a black-box attack model (multinomial logistic regression) on the other
  columns, the label and the model's outputs (for every candidate value when the model
  takes the attribute as input);
* the **imputation** baseline: the same logistic regression on the other columns and the
  label only.

``loss`` and ``confidence`` need the model to take the attribute as an input and to be
queried with altered rows: the module trains its own population on the table stacked
once per candidate value (the altered copies are never trained on), so every model is
queried with every value in the same batched fit. With predictions alone only ``model``
runs.

Evaluation. The attack and imputation models are cross-fitted: the rows are split in two
halves; models trained on one half (the attacker's auxiliary data, with known attribute)
guess the other. Candidates of every target model are equal numbers of its members and
non-members (the larger side subsampled). Figures per attack and for the baseline, on
members and non-members: accuracy, MCC, TPR at low FPR and PPV among the top-k of the
positive value (the attribute's rarest value unless named). Intervals: Poisson bootstrap
over rows (every row keeps its outcomes under all targets, so correlation between
targets is respected), for the overall and every group's contribution at once (one
matrix product per grouping). Groups are tested with the group layer's max-T permutation
test of a per-row contribution and flagged by `FlagRule`.

Theory beside it: under an f-DP guarantee, no attacker whose success without the output
is κ succeeds with probability above 1 − f(κ) (`assay.privacy.theory.risk.success_bound`); κ is
the measured imputation accuracy on members, so bound and attack share one baseline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assay._serial import Serial, meta
from assay._stats import Estimate, clopper_pearson
from assay._validation import MAX_RESAMPLES, DataError, InvalidParameterError, check_scalar

__all__ = [
    "ATTRIBUTE_ATTACKS",
    "AttackFigures",
    "AttributeResult",
    "GroupContribution",
    "attribute_inference",
    "check_sensitive",
    "sensitive_values",
]

#: Attacks `attribute_inference` can run ("imputation" is the baseline, always run).
ATTRIBUTE_ATTACKS = ("loss", "confidence", "model")
#: Most distinct values a sensitive attribute may have.
MAX_VALUES = 20
_EPS = 1e-7


# --------------------------------------------------------------------------- inputs


def sensitive_values(dataset: Any, sensitive: str) -> np.ndarray:
    """The sensitive attribute of every row, as text (group labels for protected columns)."""
    if sensitive in dataset.groups.columns:
        return dataset.groups[sensitive].astype(str).to_numpy()
    frame = dataset.frame
    if sensitive not in frame.columns:
        known = sorted(set(dataset.groups.columns) | set(frame.columns))
        raise DataError(f"sensitive must be a column of the table ({', '.join(known)}). "
                        f"Got {sensitive!r}.")
    return frame[sensitive].astype(str).to_numpy()


def check_sensitive(dataset: Any, sensitive: Any, positive: str | None = None) -> np.ndarray:
    """Validate the sensitive column (before any training) and return its values.

    Raises
    ------
    InvalidParameterError
        Not a column name, or the target itself.
    DataError
        Unknown column, one value, more than `MAX_VALUES` values, a positive value no row
        has.
    """
    if not isinstance(sensitive, str) or not sensitive:
        raise InvalidParameterError(f"sensitive must be a column name. Got {sensitive!r}.")
    if sensitive == dataset.target:
        raise InvalidParameterError(
            f"sensitive must be a column other than the target {dataset.target!r} (the "
            f"attacker knows the label). Got {sensitive!r}.")
    values = sensitive_values(dataset, sensitive)
    levels = np.unique(values)
    if levels.size < 2 or levels.size > MAX_VALUES:
        raise DataError(f"sensitive column {sensitive!r} must have 2 to {MAX_VALUES} distinct "
                        f"values. Got {levels.size}.")
    if positive is not None and positive not in set(levels.tolist()):
        raise DataError(f"positive must be a value of {sensitive!r} ({', '.join(levels)}). "
                        f"Got {positive!r}.")
    return values


def _feature_columns(dataset: Any, sensitive: str) -> np.ndarray:
    """Positions in ``X`` of the sensitive column's encoded features."""
    names = dataset.feature_names
    return np.array([j for j, n in enumerate(names)
                     if n == sensitive or n.startswith(f"{sensitive}=")], dtype=np.int64)


def _substitution(dataset: Any, sensitive: str, levels: np.ndarray) -> np.ndarray | None:
    """Encoded values of the sensitive features for every level: (V, n_cols), or None.

    None when the model does not take the attribute as input, or when its values cannot
    be written back into the encoding (a numeric column read through bins).
    """
    cols = _feature_columns(dataset, sensitive)
    if cols.size == 0:
        return None
    names = [dataset.feature_names[j] for j in cols]
    enc = dataset.encoding
    if sensitive in enc["categorical"]:
        known = [n.split("=", 1)[1] for n in names]
        return (np.asarray(known)[None, :] == levels[:, None]).astype(np.float32)
    if sensitive in enc["numeric"]:
        try:
            raw = levels.astype(float)
        except ValueError:
            return None  # binned labels such as "25-39"
        i = list(enc["numeric"]).index(sensitive)
        if sensitive in enc["indicators"]:
            return raw[:, None].astype(np.float32)
        return ((raw - float(enc["means"][i])) / float(enc["scales"][i]))[:, None] \
            .astype(np.float32)
    return None


# --------------------------------------------------------------------------- results


@dataclass
class SideFigures(Serial):
    """An attack's (or the baseline's) figures on one side (members or non-members)."""

    accuracy: Estimate
    mcc: float
    tpr_at_fpr: dict[float, float]
    ppv_at_top: dict[float, Estimate]

    __json_plain__ = True


@dataclass
class AttackFigures(Serial):
    """One attack (or the baseline) on members and non-members, and its contribution."""

    members: SideFigures
    nonmembers: SideFigures
    contribution: Estimate | None = None

    __json_plain__ = True
    __json_required__ = ("contribution",)


@dataclass
class GroupContribution(Serial):
    """The strongest attack's contribution inside one group."""

    grouping: str
    label: str
    n_rows: int
    supported: bool
    contribution: Estimate | None = None
    difference: float | None = None
    p_value: float | None = None
    flagged: bool = False

    __json_plain__ = True
    __json_required__ = ("flagged",)


@dataclass
class AttributeResult(Serial):
    """What `attribute_inference` found.

    Attributes
    ----------
    sensitive : str
    values : list of str
        The attribute's values; ``positive`` is the one TPR and PPV are about.
    positive : str
    attacks : dict of str to AttackFigures
        Every attack that ran, and ``"imputation"`` (the baseline, no contribution).
    strongest : str or None
        Among the attacks that beat guessing (`compare_to_guessing`), the one with the
        largest contribution; None when none does.
    strongest_reason : str or None
        Why no attack is named strongest ("no attack beats guessing: ...").
    majority_accuracy : float
        Accuracy on the member candidates of always guessing the most common value.
    comparison : dict of str to dict
        Per attack: its accuracy's lower bound on members, the better baseline it must
        exceed, and whether it does.
    not_run : dict of str to str
        Attacks that could not run, and why.
    groups : list of GroupContribution
        The strongest attack's contribution per group (protected columns other than the
        sensitive one).
    flag_rule : dict
    n_targets : int
    n_candidates : int
        Candidate rows per side and target (equal members and non-members).
    fprs, top : tuple of float
    prior : float
        Share of the most common value (the baseline of an attacker with nothing).
    seconds : dict
    """

    sensitive: str
    values: list[str]
    positive: str
    attacks: dict[str, AttackFigures] = field(metadata=meta(schema={
        "required": ["imputation"]}))
    strongest: str | None
    strongest_reason: str | None = None
    majority_accuracy: float | None = None
    comparison: dict[str, dict[str, Any]] = field(default_factory=dict, metadata=meta(
        schema={"additionalProperties": {"type": "object", "required": [
            "lower_bound", "reference", "beats"]}}))
    not_run: dict[str, str] = field(default_factory=dict)
    groups: list[GroupContribution] = field(default_factory=list)
    flag_rule: dict[str, Any] = field(default_factory=dict)
    n_targets: int = field(default=0, metadata=meta(schema={"minimum": 1}))
    n_candidates: int = field(default=0, metadata=meta(schema={"minimum": 1}))
    fprs: tuple[float, ...] = ()
    top: tuple[float, ...] = ()
    prior: float = 0.0
    source: str = ""
    seconds: dict[str, float] = field(default_factory=dict)

    __json_plain__ = True
    __json_required__ = ("not_run", "groups", "flag_rule", "n_targets", "n_candidates")

    @property
    def best(self) -> AttackFigures | None:
        """The strongest attack's figures (None when no attack beats guessing)."""
        return None if self.strongest is None else self.attacks[self.strongest]

    @property
    def leading(self) -> str:
        """The attack with the highest accuracy on members, whether it beats guessing or
        not (what a bound is checked against)."""
        ran = [n for n in self.attacks if n != "imputation"] or ["imputation"]
        return self.strongest or max(
            ran, key=lambda n: self.attacks[n].members.accuracy.value)

    @property
    def baseline(self) -> AttackFigures:
        return self.attacks["imputation"]

    @property
    def flagged_groups(self) -> list[GroupContribution]:
        return [g for g in self.groups if g.flagged]


# --------------------------------------------------------------------------- metrics


def _mcc(truth: np.ndarray, guess: np.ndarray, n_values: int) -> float:
    """Multiclass Matthews correlation from the confusion matrix (Gorodkin 2004)."""
    if truth.size == 0:
        return float("nan")
    conf = np.bincount(truth * n_values + guess, minlength=n_values ** 2) \
        .reshape(n_values, n_values).astype(float)
    t, p = conf.sum(axis=1), conf.sum(axis=0)
    n, c = conf.sum(), np.trace(conf)
    denom = np.sqrt((n ** 2 - p @ p) * (n ** 2 - t @ t))
    return float((c * n - t @ p) / denom) if denom > 0 else 0.0


def _tpr_at(score: np.ndarray, is_pos: np.ndarray, fpr: float) -> float:
    """TPR at the threshold whose empirical FPR does not exceed ``fpr``."""
    neg = np.sort(score[~is_pos])[::-1]
    if neg.size == 0 or is_pos.sum() == 0:
        return float("nan")
    k = int(np.floor(fpr * neg.size))
    threshold = neg[k] if k < neg.size else -np.inf
    return float(np.mean(score[is_pos] > threshold))


def _ppv_at(score: np.ndarray, is_pos: np.ndarray, top: float) -> Estimate:
    k = max(1, int(round(top * score.size)))
    chosen = np.argpartition(-score, k - 1)[:k]
    hits = int(is_pos[chosen].sum())
    low, high = clopper_pearson(hits, k)
    return Estimate(hits / k, float(low), float(high))


def _side(truth, guess, score, positive: int, n_values: int, fprs, top, weights_acc
          ) -> SideFigures:
    is_pos = truth == positive
    return SideFigures(accuracy=weights_acc, mcc=_mcc(truth, guess, n_values),
                       tpr_at_fpr={f: _tpr_at(score, is_pos, f) for f in fprs},
                       ppv_at_top={t: _ppv_at(score, is_pos, t) for t in top})


# --------------------------------------------------------------------------- models


def _fit_predict_lr(train_x, train_y, test_x, n_values: int, random_state: int) -> np.ndarray:
    """Posterior over the attribute's values from a standardised logistic regression."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    mean, sd = train_x.mean(axis=0), train_x.std(axis=0) + 1e-6
    model = LogisticRegression(C=1.0, max_iter=300, tol=1e-3, random_state=random_state)
    # Small problems: one BLAS thread is faster than several fighting for the cores.
    with threadpool_limits(1):
        model.fit((train_x - mean) / sd, train_y)
        out = np.zeros((test_x.shape[0], n_values))
        out[:, model.classes_] = model.predict_proba((test_x - mean) / sd)
    return out


# --------------------------------------------------------------------------- entry


def attribute_inference(
    dataset: Any,
    sensitive: str,
    *,
    learner: Any = "logreg",
    n_models: int = 8,
    population: Any = None,
    target: Any = None,
    n_targets: int | None = None,
    attacks: tuple[str, ...] = ATTRIBUTE_ATTACKS,
    positive: str | None = None,
    fprs: tuple[float, ...] = (0.1, 0.01),
    top: tuple[float, ...] = (0.01, 0.1),
    groups: Any = None,
    flag_rule: Any = None,
    min_support: int = 50,
    n_permutations: int = 200,
    n_bootstrap: int = 300,
    backend: str = "batched",
    cache_dir: Any = None,
    progress: bool = False,
    memory_budget: float | None = None,
    scheduler_address: str | None = None,
    random_state: int = 0,
    fit: Any = None,
) -> AttributeResult:
    """Attribute-inference attacks and the imputation baseline on a population's targets.

    Parameters
    ----------
    dataset : Dataset
    sensitive : str
        The attribute to infer: a protected or feature column with 2 to 20 values, not
        the target.
    learner : str, estimator or Learner, default="logreg"
        Learner of the population trained here (when the model takes the attribute as
        input, or when no `population` is given).
    n_models : int, default=8
        Models of that population (even).
    population : Population, optional
        Models already trained on ``dataset.X`` (an audit's); used when the model does not
        take the attribute as input (then only the ``model`` attack applies).
    target : TargetPredictions, optional
        A model the user trained: attacked alone (``model`` attack only).
    n_targets : int, optional
        Target models attacked (default all).
    attacks : tuple of str, default=("loss", "confidence", "model")
    positive : str, optional
        The value TPR and PPV are about (default: the rarest).
    fprs, top : tuple of float
        FPR levels of the TPR figures; top shares of the PPV figures.
    groups : GroupIndex, optional
        Groups to break the contribution down by (default: the protected columns other
        than `sensitive`).
    flag_rule : FlagRule, optional
        Default ``FlagRule(min_difference=0.05, direction="greater")``.
    min_support, n_permutations, n_bootstrap : int
    backend, cache_dir, progress, memory_budget, scheduler_address
        Passed to `assay.engine.fit_population` (`engine_options`): over
        `memory_budget` the probabilities are written into `cache_dir`. Ignored when
        `fit` is given.
    random_state : int, default=0
    fit : callable, optional
        ``fit(plan, learner, data=(X, y)) -> Population`` (`assay.engine.FitFn`): how the
        models are trained; inside an audit `AuditContext.fit`. Default: the engine's
        entry (`assay.engine.population_fitter`) with the settings above.

    Returns
    -------
    AttributeResult

    Raises
    ------
    InvalidParameterError, DataError
        Every option and the sensitive column are checked before any training.
    """
    from assay.engine import PopulationPlan, engine_options, population_fitter
    from assay.groups import FlagRule, GroupIndex

    started = time.perf_counter()
    values = check_sensitive(dataset, sensitive, positive)
    attacks = tuple(dict.fromkeys((attacks,) if isinstance(attacks, str) else attacks))
    if not attacks or any(a not in ATTRIBUTE_ATTACKS for a in attacks):
        raise InvalidParameterError(f"attacks must be among {', '.join(ATTRIBUTE_ATTACKS)}. "
                                    f"Got {list(attacks)!r}.")
    fprs = tuple(check_scalar(f, "fprs", low=0, high=1, low_open=True, high_open=True)
                 for f in fprs)
    top = tuple(check_scalar(t, "top", low=0, high=1, low_open=True) for t in top)
    n_models = check_scalar(n_models, "n_models", kind=int, low=2)
    if n_models % 2:
        raise InvalidParameterError(f"n_models must be an even integer in [2, inf). "
                                    f"Got {n_models}.")
    n_bootstrap = check_scalar(n_bootstrap, "n_bootstrap", kind=int, low=10, high=MAX_RESAMPLES)
    rule = flag_rule or FlagRule(min_difference=0.05, direction="greater")
    levels, codes = np.unique(values, return_inverse=True)
    n_values = levels.size
    counts = np.bincount(codes, minlength=n_values)
    pos = int(np.argmin(counts)) if positive is None else int(np.flatnonzero(levels ==
                                                                              positive)[0])
    rng = np.random.default_rng(random_state)
    cols = _feature_columns(dataset, sensitive)
    sub = None if target is not None else _substitution(dataset, sensitive, levels)
    not_run: dict[str, str] = {}
    if sub is None:
        why = ("only the model's predictions on the real rows are known" if target is not None
               else f"the model does not take {sensitive!r} as an input (or its values "
                    "cannot be written into the encoding)")
        for a in attacks:
            if a in ("loss", "confidence"):
                not_run[a] = f"needs the model queried with altered values of {sensitive}: {why}."
        attacks = tuple(a for a in attacks if a not in not_run)
    if not attacks:
        raise InvalidParameterError(f"attacks must include 'model' here "
                                    f"({'; '.join(not_run.values())}). Got {list(not_run)}.")
    X, y, n = dataset.dense_X("attribute inference"), dataset.y, dataset.n_rows
    n_classes = dataset.n_classes
    if fit is None:
        fit = population_fitter(X, y, n_classes=n_classes, **engine_options(
            backend, cache_dir, progress, memory_budget, scheduler_address))

    # Outputs of every target on every row under every candidate value: (T, N, V', C).
    if target is not None:
        outputs = np.asarray(target.probs, dtype=np.float32)[None, :, None, :]
        member = np.asarray(target.member)[None, :]
        source = target.source
    elif sub is not None:
        stacked = np.repeat(X[None], n_values, axis=0)
        stacked[:, :, cols] = sub[:, None, :]
        plan = PopulationPlan.balanced(n, n_models, random_state)
        # A model trains on a real row only: the copy holding its true value.
        aug_member = plan.member[:, None, :] & (codes[None, None, :] ==
                                                np.arange(n_values)[None, :, None])
        aug = PopulationPlan(member=aug_member.reshape(n_models, -1), seeds=plan.seeds,
                             params={"attribute": sensitive})
        pop = fit(aug, learner, data=(stacked.reshape(n_values * n, -1),
                                      np.tile(y, n_values)))
        outputs = pop.probs.reshape(n_models, n_values, n, n_classes).transpose(0, 2, 1, 3)
        member = plan.member
        name = pop.info.get("learner", {}).get("name", "")
        source = f"{n_models} models trained by assay ({name})"
    else:
        if population is None:
            plan = PopulationPlan.balanced(n, n_models, random_state)
            population = fit(plan, learner, data=(X, y))
        outputs = population.probs[:, :, None, :]
        member = population.member
        source = f"{population.n_models} models of the population"
    if n_targets is not None:
        n_targets = check_scalar(n_targets, "n_targets", kind=int, low=1)
        outputs, member = outputs[:n_targets], member[:n_targets]
    n_t = outputs.shape[0]
    fit_seconds = time.perf_counter() - started

    # Equal member and non-member candidates per target (the larger side subsampled).
    n_side = int(min(member.sum(axis=1).min(), (~member).sum(axis=1).min()))
    if n_side < 2:
        raise DataError("the target models must each have at least 2 members and 2 "
                        f"non-members. Got {n_side}.")
    keys = rng.random(member.shape)
    cand = np.zeros_like(member)
    for side in (member, ~member):  # two vectorised draws, not a loop over targets
        rank = np.argsort(np.where(side, keys, 2.0), axis=1)[:, :n_side]
        np.put_along_axis(cand, rank, True, axis=1)

    # Cross-fitting folds: the attacker's auxiliary rows and the guessed rows.
    fold = rng.permutation(n) % 2
    aux_cols = np.setdiff1d(np.arange(X.shape[1]), cols)
    y_hot = np.eye(n_classes, dtype=np.float32)[y]
    base_x = np.concatenate([X[:, aux_cols], y_hot], axis=1)
    prior = counts / counts.sum()
    posterior: dict[str, np.ndarray] = {}  # (T, N, V)
    imputed = np.zeros((n, n_values))
    for f in (0, 1):
        train, test = fold == f, fold != f
        imputed[test] = _fit_predict_lr(base_x[train], codes[train], base_x[test], n_values,
                                        random_state)
    posterior["imputation"] = np.broadcast_to(imputed, (n_t, n, n_values))
    logp = np.log(np.clip(outputs.astype(np.float64), _EPS, 1.0))  # (T, N, V', C)
    true_logp = np.take_along_axis(logp, y[None, :, None, None], axis=3)[..., 0]  # (T,N,V')
    if "loss" in attacks or "confidence" in attacks:
        if "loss" in attacks:
            # Ties (equal loss) broken by the prior: a tiny tilt, not a second attack.
            posterior["loss"] = _softmax(true_logp * 1e6 + np.log(prior)[None, None, :])
        if "confidence" in attacks:
            posterior["confidence"] = _softmax(true_logp + np.log(prior)[None, None, :])
    if "model" in attacks:
        post = np.zeros((n_t, n, n_values))
        for t in range(n_t):  # one attack model per target and fold
            # The label's log-probability under each value: what the loss attack reads,
            # in a form a linear attack model can use.
            feats = np.concatenate([base_x, logp[t].reshape(n, -1), true_logp[t]], axis=1)
            for f in (0, 1):
                train, test = fold == f, fold != f
                post[t, test] = _fit_predict_lr(feats[train], codes[train], feats[test],
                                                n_values, random_state + t)
        posterior["model"] = post

    # Per row and side: correct guesses summed over targets, and candidate counts.
    in_m, in_n = cand & member, cand & ~member
    cnt_m, cnt_n = in_m.sum(axis=0).astype(float), in_n.sum(axis=0).astype(float)
    weights = rng.poisson(1.0, size=(n_bootstrap, n)).astype(np.float32)
    correct = {a: (p.argmax(axis=2) == codes[None, :]) for a, p in posterior.items()}
    sums = {a: ((c & in_m).sum(axis=0).astype(float), (c & in_n).sum(axis=0).astype(float))
            for a, c in correct.items()}
    base_m, base_n = sums["imputation"]
    results: dict[str, AttackFigures] = {}
    row_contrib: dict[str, np.ndarray] = {}
    for a, p in posterior.items():
        s_m, s_n = sums[a]
        acc_m = _boot_ratio(s_m, cnt_m, weights)
        acc_n = _boot_ratio(s_n, cnt_n, weights)
        figures = []
        for mask, acc in ((in_m, acc_m), (in_n, acc_n)):
            truth = np.broadcast_to(codes, mask.shape)[mask]
            guess = p.argmax(axis=2)[mask]
            score = p[..., pos][mask]
            figures.append(_side(truth, guess, score, pos, n_values, fprs, top, acc))
        contribution = None
        if a != "imputation":
            contribution = _boot_contrast(s_m - base_m, cnt_m, s_n - base_n, cnt_n, weights)
            with np.errstate(invalid="ignore", divide="ignore"):
                row_contrib[a] = (np.where(cnt_m > 0, (s_m - base_m) / np.maximum(cnt_m, 1), 0)
                                  - np.where(cnt_n > 0, (s_n - base_n) / np.maximum(cnt_n, 1),
                                             0))
        results[a] = AttackFigures(figures[0], figures[1], contribution)
    # Guessing the table's most common value, on the same member candidates.
    majority = float(((codes == int(np.argmax(counts)))[None, :] & in_m).sum() / in_m.sum())
    comparison, strongest, reason = compare_to_guessing(results, majority)

    # Groups: the strongest attack's contribution per group, bootstrap and permutation test.
    if groups is None:
        others = [c for c in dataset.groups.columns if c != sensitive]
        groups = GroupIndex.from_frame(dataset.groups[others]) if others else None
    group_rows: list[GroupContribution] = []
    if groups is not None and strongest is not None:
        s_m, s_n = sums[strongest]
        group_rows = _group_contributions(groups, s_m - base_m, cnt_m, s_n - base_n, cnt_n,
                                          weights, row_contrib[strongest], rule, min_support,
                                          n_permutations, random_state)
    return AttributeResult(
        sensitive=sensitive, values=[str(v) for v in levels], positive=str(levels[pos]),
        attacks=results, strongest=strongest, strongest_reason=reason,
        majority_accuracy=majority, comparison=comparison, not_run=not_run, groups=group_rows,
        flag_rule=rule.to_dict(), n_targets=n_t, n_candidates=n_side, fprs=fprs, top=top,
        prior=float(prior.max()), source=source,
        seconds={"fit": round(fit_seconds, 3),
                 "attack": round(time.perf_counter() - started - fit_seconds, 3)})


def _contribution(figures: AttackFigures) -> float:
    """The model's contribution of an attack other than the imputation baseline."""
    if figures.contribution is None:
        raise ValueError("only the imputation baseline has no contribution")
    return figures.contribution.value


def compare_to_guessing(attacks: dict[str, AttackFigures], majority: float
                        ) -> tuple[dict[str, dict[str, Any]], str | None, str | None]:
    """Which attacks beat both baselines, the strongest of them, and why none, if none.

    An attack beats guessing when the lower end of its members' accuracy interval lies
    above the better of the imputation accuracy on members and the accuracy of always
    guessing the most common value. Among those, the strongest is the one with the largest
    contribution of the model.

    Returns
    -------
    comparison : dict of attack to dict
        ``lower_bound``, ``reference`` (the better baseline), ``reference_name`` and
        ``beats`` for every attack but the baseline.
    strongest : str or None
    reason : str or None
        Why no attack is named (None when one is).
    """
    imputation = float(attacks["imputation"].members.accuracy.value)
    reference = max(imputation, majority)
    reference_name = "imputation" if imputation >= majority else "the majority guess"
    comparison: dict[str, dict[str, Any]] = {}
    for name, a in attacks.items():
        if name == "imputation":
            continue
        low = float(a.members.accuracy.ci_low)
        comparison[name] = {"lower_bound": low, "reference": reference,
                            "reference_name": reference_name, "beats": bool(low > reference)}
    winners = [n for n, c in comparison.items() if c["beats"]]
    if winners:
        return comparison, max(winners, key=lambda n: _contribution(attacks[n])), None
    if not comparison:
        return comparison, None, "no attack beats guessing: no attack ran"
    top = max(comparison, key=lambda n: comparison[n]["lower_bound"])
    return comparison, None, (
        f"no attack beats guessing: the best lower 95 % bound of an attack's accuracy on "
        f"members ({top}, {comparison[top]['lower_bound']:.3f}) is not above "
        f"{reference:.3f} ({reference_name}; imputation {imputation:.3f}, always guessing "
        f"the most common value {majority:.3f})")


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _interval(point: float, boot: np.ndarray) -> Estimate:
    boot = boot[np.isfinite(boot)]
    if boot.size == 0:
        return Estimate(point, float("nan"), float("nan"))
    lo, hi = np.quantile(boot, [0.025, 0.975])
    return Estimate(float(point), float(lo), float(hi))


def _boot_ratio(s: np.ndarray, c: np.ndarray, w: np.ndarray) -> Estimate:
    """sum(s)/sum(c) with a Poisson-bootstrap interval over rows."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return _interval(s.sum() / max(c.sum(), 1), (w @ s) / (w @ c))


def _boot_contrast(s_m, c_m, s_n, c_n, w) -> Estimate:
    """sum(s_m)/sum(c_m) − sum(s_n)/sum(c_n), bootstrap over rows."""
    with np.errstate(invalid="ignore", divide="ignore"):
        point = s_m.sum() / max(c_m.sum(), 1) - s_n.sum() / max(c_n.sum(), 1)
        boot = (w @ s_m) / (w @ c_m) - (w @ s_n) / (w @ c_n)
    return _interval(point, boot)


def _group_contributions(groups, d_m, c_m, d_n, c_n, w, per_row, rule, min_support,
                         n_permutations, random_state) -> list[GroupContribution]:
    from assay.groups import permutation_test

    tests = permutation_test(per_row, groups, min_support=min_support,
                             n_permutations=n_permutations, direction=rule.direction,
                             random_state=random_state)
    out = []
    for g in groups.groupings:
        hot = g.one_hot(np.float64)  # (N, G): every group's sums in one product
        with np.errstate(invalid="ignore", divide="ignore"):
            point = (d_m @ hot) / (c_m @ hot) - (d_n @ hot) / (c_n @ hot)
            boot = ((w @ (d_m[:, None] * hot)) / (w @ (c_m[:, None] * hot))
                    - (w @ (d_n[:, None] * hot)) / (w @ (c_n[:, None] * hot)))
        test = tests[g.key]
        ok = g.supported(min_support)
        flags = rule.flags(test.difference[:, 0], test.p_value[:, 0])
        for j, label in enumerate(g.labels):
            row = GroupContribution(g.key, label, int(g.sizes[j]), bool(ok[j]))
            if ok[j]:
                row.contribution = _interval(float(point[j]), boot[:, j])
                row.difference = float(test.difference[j, 0])
                row.p_value = float(test.p_value[j, 0])
                row.flagged = bool(flags[j])
            out.append(row)
    return out
