"""Distribution (property) inference: does a model reveal the make-up of its training data?

A data owner may be content that no single record leaks and still not want a model to
reveal, say, the share of women among the people it was trained on. Suri & Evans
("Formalizing and estimating distribution inference risks", PETS 2022; "Dissecting
distribution inference", SaTML 2023) frame it as a game: the model was trained on a
sample from a pool whose property share is either ``ratios[0]`` or ``ratios[1]``; the
attacker, who can train models of their own on data from the same distribution, guesses
which. This module plays the game with the population engine:

1. The rows are split at random into an **attacker pool** (``pool_fraction`` of them), a
   **victim pool** of the same size, and **query rows** that no model trains on.
2. For each ratio, ``n_models`` training sets of ``train_size`` rows with that exact share
   of the property are drawn, half from each pool: the attacker's shadow models and the
   victim models. All ``2 * n_models`` models are trained in **one** `fit_population`
   call (batched for the built-in learners).
3. Two attacks, trained only on the shadow models, guess the ratio of every victim model
   from its outputs on the query rows:

   * **KL** (Suri et al. 2023): for every pair (one shadow model per ratio), vote for the
     ratio whose model's predictions are closer, in mean KL divergence, to the victim's;
     the majority of the votes is the guess. Query rows are the ``n_query`` rows whose
     shadow-model outputs differ most between the ratios.
   * **meta-classifier**: a logistic regression on the victim's (standardised) log-odds on
     the same query rows.

4. **Accuracy** over the victim models (balanced between the ratios) with an exact
   (Clopper–Pearson) interval, and **n_leaked**: the number of samples an optimal ratio
   test would need for the same accuracy (below), compared with the training-set size.

``n_leaked``. Given n rows drawn from the training distribution, an attacker who only
counts how many have the property sees k/n ≈ N(α, α(1−α)/n). The best threshold test with
equal errors between α0 and α1 is right with probability
``Φ(√n |α1 − α0| / (√(α0(1−α0)) + √(α1(1−α1))))``; solving for n at the attack's accuracy
ω gives

    n_leaked = [Φ⁻¹(ω) (√(α0(1−α0)) + √(α1(1−α1))) / |α1 − α0|]²

(0 for ω ≤ ½, infinite at ω = 1): the model leaks as much about the ratio as that many
rows of its training data would.
"""

from __future__ import annotations

import builtins
import math
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from scipy import special

from assay._serial import Serial, meta
from assay._stats import Estimate, clopper_pearson
from assay._validation import DataError, InvalidParameterError, check_distinct, check_scalar

__all__ = [
    "DIST_ATTACKS",
    "DistributionAttack",
    "DistributionResult",
    "distribution_inference",
    "n_leaked",
    "parse_property",
    "property_mask",
]

#: Attacks `distribution_inference` runs.
DIST_ATTACKS = ("kl", "meta")
_EPS = 1e-6


# --------------------------------------------------------------------------- n_leaked


def n_leaked(accuracy, ratios: tuple[float, float]):
    """Samples an optimal ratio test needs to reach ``accuracy`` (Suri & Evans 2022).

    Parameters
    ----------
    accuracy : float or array-like
        Accuracy ω of distinguishing the two ratios, in [0, 1].
    ratios : (float, float)
        The two property shares α0 ≠ α1, each in (0, 1).

    Returns
    -------
    float or ndarray
        ``[Φ⁻¹(ω)(√(α0(1−α0)) + √(α1(1−α1))) / |α1 − α0|]²``; 0 where ω ≤ ½, inf at ω = 1.
    """
    a0, a1 = _check_ratios(ratios)
    if a0 == a1:
        raise InvalidParameterError(f"ratios must differ for n_leaked. Got {a0:g} twice.")
    w = np.asarray(accuracy, dtype=float)
    if np.any((w < 0) | (w > 1)):
        raise InvalidParameterError(f"accuracy must be in [0, 1]. Got {accuracy!r}.")
    spread = math.sqrt(a0 * (1 - a0)) + math.sqrt(a1 * (1 - a1))
    with np.errstate(divide="ignore"):
        z = special.ndtri(np.clip(w, 0.5, 1.0))
    out = (z * spread / abs(a1 - a0)) ** 2
    return float(out) if out.ndim == 0 else out


# --------------------------------------------------------------------------- property


def check_ratios(ratios: Any, name: str = "ratios") -> tuple[float, float]:
    """Two different shares, each in (0, 1): equal ones would compare a share with itself.

    Raises
    ------
    InvalidParameterError
        Not two numbers, one outside (0, 1), or both equal.
    """
    try:
        values = tuple(ratios)
    except TypeError:
        raise InvalidParameterError(
            f"{name} must be two shares in (0, 1), e.g. 0.3,0.5. Got {ratios!r}.") from None
    if len(values) != 2:
        raise InvalidParameterError(
            f"{name} must be two shares in (0, 1), e.g. 0.3,0.5. Got {list(values)!r}.")
    shares = [check_scalar(r, name, low=0, high=1, low_open=True, high_open=True)
              for r in values]
    return tuple(check_distinct(shares, name))


_check_ratios = check_ratios


def parse_property(text: str) -> tuple[str, str]:
    """``"sex=Female"`` → ``("sex", "Female")``.

    Raises
    ------
    InvalidParameterError
        Not of the form COL=VALUE.
    """
    if not isinstance(text, str) or "=" not in text:
        raise InvalidParameterError(f"property must be COL=VALUE, e.g. sex=Female. Got "
                                    f"{text!r}.")
    column, value = text.split("=", 1)
    if not column.strip() or not value.strip():
        raise InvalidParameterError(f"property must be COL=VALUE, e.g. sex=Female. Got "
                                    f"{text!r}.")
    return column.strip(), value.strip()


def property_mask(dataset: Any, prop: str | tuple[str, str]) -> np.ndarray:
    """Rows of ``dataset`` with the property ``COL=VALUE`` (a protected or a feature column).

    The value is compared as text with the group label (protected columns, binned as in
    the report) or with the raw column.

    Raises
    ------
    DataError
        Unknown column, or a value no row has (the message lists the values present).
    """
    column, value = parse_property(prop) if isinstance(prop, str) else prop
    if column in dataset.groups.columns:
        values = dataset.groups[column].astype(str).to_numpy()
    else:
        frame = dataset.frame
        if column not in frame.columns:
            known = list(dataset.groups.columns) + [c for c in frame.columns
                                                    if c not in dataset.groups.columns]
            raise DataError(f"property column must be a column of the table ({', '.join(known)})."
                            f" Got {column!r}.")
        values = frame[column].astype(str).to_numpy()
    mask = values == value
    if not mask.any():
        present = sorted(set(values.tolist()))
        shown = ", ".join(present[:10]) + (" ..." if len(present) > 10 else "")
        raise DataError(f"property value must occur in column {column!r} ({shown}). Got "
                        f"{value!r}.")
    if mask.all():
        raise DataError(f"property {column}={value} must not hold for every row (no share to "
                        f"vary). Got all {mask.size} rows.")
    return mask


# --------------------------------------------------------------------------- results


def _infinite(e: Any) -> Estimate | None:
    """An `Estimate` read back with its nulls (written for infinities) as infinities."""
    if e is None:
        return None
    return Estimate(*(math.inf if e[k] is None else float(e[k])
                      for k in ("value", "ci_low", "ci_high")))


@dataclass
class DistributionAttack(Serial):
    """One attack's figures over the victim models.

    Attributes
    ----------
    accuracy : Estimate
        Share of victim models whose ratio it guessed right (Clopper–Pearson interval).
    n_leaked : Estimate or None
        Samples an optimal ratio test needs for that accuracy (interval from the accuracy
        interval); None for equal ratios.
    n_correct, n_victims : int
    """

    accuracy: Estimate
    n_leaked: Estimate | None = field(metadata=meta(null_nan=True, decode=_infinite))
    n_correct: int = field(metadata=meta(schema={"minimum": 0}))
    n_victims: int = field(metadata=meta(schema={"minimum": 1}))

    __json_plain__ = True


@dataclass
class DistributionResult(Serial):
    """What `distribution_inference` found.

    Attributes
    ----------
    property : str
        ``"sex=Female"``.
    ratios : tuple of float
    n_models : int
        Models per ratio (half shadow, half victim).
    train_size : int
        Rows of every model's training set.
    attacks : dict of str to DistributionAttack
    strongest : str
        Attack with the highest accuracy.
    pools : dict
        Rows of the attacker pool, victim pool and query rows, property rows per pool,
        query rows the attacks used.
    learner : dict
        The learner's config.
    seconds : dict
        ``fit`` and ``attack`` wall time.
    """

    property: str
    ratios: tuple[float, float] = field(metadata=meta(schema={"prefixItems": [
        {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}] * 2}))
    n_models: int = field(metadata=meta(schema={"minimum": 4}))
    train_size: int = field(metadata=meta(schema={"minimum": 2}))
    attacks: dict[str, DistributionAttack]
    strongest: str
    pools: dict[str, int] = field(default_factory=dict)
    learner: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    __json_plain__ = True
    __json_required__: ClassVar[tuple[str, ...]] = ("pools",)

    @builtins.property  # the field `property` hides the builtin in this class
    def best(self) -> DistributionAttack:
        return self.attacks[self.strongest]


# --------------------------------------------------------------------------- plan


def _draw(rows: np.ndarray, k: int, n_sets: int, rng: np.random.Generator) -> np.ndarray:
    """``n_sets`` subsets of ``k`` of ``rows`` each, without replacement: (n_sets, k)."""
    keys = rng.random((n_sets, rows.size))
    return rows[np.argpartition(keys, k - 1, axis=1)[:, :k]] if k else \
        np.empty((n_sets, 0), dtype=rows.dtype)


def max_train_size(n_prop: int, n_other: int, ratios: tuple[float, float]) -> int:
    """Largest training set a pool with ``n_prop`` / ``n_other`` rows can give both ratios."""
    return int(min(math.floor(n_prop / max(ratios)) if max(ratios) > 0 else math.inf,
                   math.floor(n_other / (1 - min(ratios)))))


def check_share_counts(train_size: int, ratios: tuple[float, float],
                       name: str = "train_size") -> None:
    """The two shares must give training sets with different numbers of property rows.

    At a small ``train_size`` both round to the same count (0.3 and 0.5 of 2 rows: 1 row
    each), and the game would compare identical training sets.
    """
    counts = [int(round(r * train_size)) for r in ratios]
    if counts[0] == counts[1]:
        least = math.ceil(1 / abs(ratios[1] - ratios[0]))
        raise InvalidParameterError(
            f"{name} must be large enough that shares {ratios[0]:g} and {ratios[1]:g} give "
            f"different property counts (about {least} rows or more). Got {train_size} "
            f"({counts[0]} property rows at both).")


def _plan(has_prop: np.ndarray, ratios, n_models: int, train_size: int | None,
          pool_fraction: float, rng: np.random.Generator):
    """Membership of every model, and its side and ratio index."""
    n = has_prop.size
    order = rng.permutation(n)
    size = int(round(pool_fraction * n))
    pools = (order[:size], order[size:2 * size])
    query = order[2 * size:]
    feasible = min(max_train_size(int(has_prop[p].sum()), int((~has_prop[p]).sum()), ratios)
                   for p in pools)
    if train_size is None:
        train_size = max(feasible // 2, 2)  # half the largest: training sets differ
    if train_size > feasible or train_size < 2:
        raise InvalidParameterError(
            f"train_size must be in [2, {feasible}] (the largest training set each pool can "
            f"give at both ratios {ratios[0]:g} and {ratios[1]:g}). Got {train_size}.")
    check_share_counts(train_size, ratios)
    half = n_models // 2
    member = np.zeros((2 * n_models, n), dtype=bool)
    side = np.zeros(2 * n_models, dtype=np.int64)  # 0: attacker's shadow, 1: victim
    label = np.zeros(2 * n_models, dtype=np.int64)
    k = 0
    for r, ratio in enumerate(ratios):  # two ratios x two pools: four vectorised draws
        n_p = int(round(ratio * train_size))
        for s, pool in enumerate(pools):
            count = half if s == 0 else n_models - half
            chosen = np.concatenate([_draw(pool[has_prop[pool]], n_p, count, rng),
                                     _draw(pool[~has_prop[pool]], train_size - n_p, count, rng)],
                                    axis=1)
            block = slice(k, k + count)
            member[np.arange(k, k + count)[:, None], chosen] = True
            side[block], label[block] = s, r
            k += count
    return member, side, label, query, train_size, pools


# --------------------------------------------------------------------------- attacks


def _log_probs(probs: np.ndarray) -> np.ndarray:
    return np.log(np.clip(probs.astype(np.float64), _EPS, 1.0))


def _select_queries(features: np.ndarray, label: np.ndarray, n_query: int) -> np.ndarray:
    """Query rows whose shadow outputs differ most between the ratios.

    ``features`` (S, Q, C'): the largest |Welch t| over a row's output columns.
    """
    a, b = features[label == 0], features[label == 1]
    se = np.sqrt(a.var(axis=0, ddof=1) / len(a) + b.var(axis=0, ddof=1) / len(b)) + 1e-9
    t = (np.abs(a.mean(axis=0) - b.mean(axis=0)) / se).max(axis=1)
    return np.argsort(-t, kind="stable")[:n_query]


def _kl_attack(shadow: np.ndarray, shadow_label: np.ndarray, victim: np.ndarray
               ) -> np.ndarray:
    """Pairwise KL votes: predicted ratio index of every victim model.

    ``shadow`` (S, Q, C) and ``victim`` (V, Q, C) probabilities on the query rows.
    """
    log_s, log_v = _log_probs(shadow), _log_probs(victim)
    p_s = np.exp(log_s)
    q = shadow.shape[1]
    # Mean over query rows of KL(shadow || victim) for every (victim, shadow): (V, S).
    entropy = np.einsum("sqc,sqc->s", p_s, log_s) / q
    cross = np.einsum("sqc,vqc->vs", p_s, log_v) / q
    kl = entropy[None, :] - cross
    kl0, kl1 = kl[:, shadow_label == 0], kl[:, shadow_label == 1]
    # Vote of every pair (a from ratio 0, b from ratio 1): ratio 0 when a is closer.
    votes0 = (kl0[:, :, None] < kl1[:, None, :]).mean(axis=(1, 2))
    return (votes0 < 0.5).astype(np.int64)


def _meta_attack(train: np.ndarray, train_label: np.ndarray, test: np.ndarray,
                 random_state: int) -> np.ndarray:
    """Logistic regression on the models' standardised log-odds at the query rows."""
    from sklearn.linear_model import LogisticRegression

    mean, sd = train.mean(axis=0), train.std(axis=0) + 1e-9
    model = LogisticRegression(C=0.1, max_iter=2000, random_state=random_state)
    model.fit((train - mean) / sd, train_label)
    return model.predict((test - mean) / sd).astype(np.int64)


def _log_odds(probs: np.ndarray) -> np.ndarray:
    """Per model and query row, log p_c − mean_c log p: (M, Q, C), binary (M, Q, 1)."""
    logp = _log_probs(probs)
    centred = logp - logp.mean(axis=2, keepdims=True)
    return centred[..., 1:] * 2 if probs.shape[2] == 2 else centred  # binary: log p1 − log p0


def _figures(correct: np.ndarray, ratios, confidence: float = 0.95) -> DistributionAttack:
    k, n = int(correct.sum()), int(correct.size)
    low, high = clopper_pearson(k, n, confidence)
    acc = Estimate(k / n, float(low), float(high))
    leaked = None
    if ratios[0] != ratios[1]:
        leaked = Estimate(*(float(n_leaked(v, ratios)) for v in (acc.value, acc.ci_low,
                                                                 acc.ci_high)))
    return DistributionAttack(acc, leaked, k, n)


# --------------------------------------------------------------------------- entry


def check_game(ratios: Any, n_models: Any, pool_fraction: Any, n_query: Any, attacks: Any,
               train_size: Any) -> tuple[Any, ...]:
    """The game's settings, checked before any training (classes and regression alike):
    ``(ratios, n_models, pool_fraction, n_query, attacks, train_size)``."""
    ratios = _check_ratios(ratios)
    n_models = check_scalar(n_models, "n_models", kind=int, low=4)
    if n_models % 2:
        raise InvalidParameterError(f"n_models must be an even integer in [4, inf) (half "
                                    f"shadow, half victim models). Got {n_models}.")
    pool_fraction = check_scalar(pool_fraction, "pool_fraction", low=0, high=0.5,
                                 low_open=True, high_open=True)
    n_query = check_scalar(n_query, "n_query", kind=int, low=1)
    attacks = tuple(dict.fromkeys((attacks,) if isinstance(attacks, str) else attacks))
    if not attacks or any(a not in DIST_ATTACKS for a in attacks):
        raise InvalidParameterError(f"attacks must be among {', '.join(DIST_ATTACKS)}. Got "
                                    f"{list(attacks)!r}.")
    if train_size is not None:
        train_size = check_scalar(train_size, "train_size", kind=int, low=2)
    return ratios, n_models, pool_fraction, n_query, attacks, train_size


def check_property_rows(has_property: Any, n_rows: int) -> np.ndarray:
    """``has_property`` as a boolean mask of the ``n_rows`` rows, held by some, not all."""
    mask = np.asarray(has_property)
    if mask.dtype != np.bool_ or mask.shape != (n_rows,):
        raise DataError(f"has_property must be a boolean mask of the {n_rows} rows. Got "
                        f"{mask.dtype} of shape {mask.shape}.")
    if not mask.any() or mask.all():
        raise DataError(f"has_property must hold for some rows and not others. Got "
                        f"{int(mask.sum())} of {mask.size}.")
    return mask


def distribution_inference(
    X: Any,
    y: Any,
    has_property: Any,
    *,
    ratios: tuple[float, float] = (0.3, 0.5),
    n_models: int = 64,
    learner: Any = "logreg",
    train_size: int | None = None,
    pool_fraction: float = 0.4,
    n_query: int = 200,
    attacks: tuple[str, ...] = DIST_ATTACKS,
    property_label: str = "property",
    n_classes: int | None = None,
    backend: str = "batched",
    cache_dir: Any = None,
    data_fingerprint: str | None = None,
    progress: bool = False,
    memory_budget: float | None = None,
    scheduler_address: str | None = None,
    random_state: int = 0,
    fit: Any = None,
) -> DistributionResult:
    """Play the distribution-inference game between two property ratios.

    Parameters
    ----------
    X : array-like of shape (n_rows, n_features)
        Encoded features (``Dataset.X``).
    y : array-like of shape (n_rows,)
        Class indices.
    has_property : bool array-like of shape (n_rows,)
        Rows with the property (`property_mask`).
    ratios : (float, float), default=(0.3, 0.5)
        The two property shares of the training sets, each in (0, 1).
    n_models : int, default=64
        Models per ratio (even, at least 4): half the attacker's shadow models, half
        victims.
    learner : str, estimator or Learner, default="logreg"
        Anything `assay.learners.get_learner` accepts.
    train_size : int, optional
        Rows per training set; default half the largest both pools allow at both ratios.
    pool_fraction : float, default=0.4
        Share of the rows in each of the attacker's and the victim's pool (the rest are
        query rows), in (0, 0.5).
    n_query : int, default=200
        Query rows the attacks read (the most discriminating for the shadow models).
    attacks : tuple of str, default=("kl", "meta")
    property_label : str
        How the property is named in the result (``"sex=Female"``).
    n_classes, backend, cache_dir, data_fingerprint, progress, memory_budget, scheduler_address
        Passed to `assay.engine.fit_population` (`engine_options`): over
        `memory_budget` the probabilities are written into `cache_dir`. With `fit` given,
        only `n_classes` and `memory_budget` (the size check) are read.
    random_state : int, default=0
    fit : callable, optional
        ``fit(plan, learner, data=(X, y)) -> Population`` (`assay.engine.FitFn`): how the
        models are trained; inside an audit `AuditContext.fit`. Default: the engine's
        entry (`assay.engine.population_fitter`) with the settings above.

    Returns
    -------
    DistributionResult

    Raises
    ------
    InvalidParameterError
        A ratio outside (0, 1), a bad model count, attack name, pool fraction or
        training-set size (all checked before any training).
    DataError
        ``has_property`` not a boolean mask of the rows, or a property held by no row.
    """
    from assay.engine import (
        PopulationPlan,
        check_population_size,
        engine_options,
        population_fitter,
    )
    from assay.learners import get_learner

    ratios, n_models, pool_fraction, n_query, attacks, train_size = check_game(
        ratios, n_models, pool_fraction, n_query, attacks, train_size)
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    mask = check_property_rows(has_property, X.shape[0])
    engine = engine_options(backend, cache_dir, progress, memory_budget, scheduler_address)
    if fit is None:
        fit = population_fitter(X, y, n_classes=n_classes, data_fingerprint=data_fingerprint,
                                **engine)
        data = None
    else:  # another fitter's own data may differ: these exact features and labels
        data = (X, y)
    check_population_size(n_models, X.shape[0], n_classes or len(np.unique(y)),
                          memory_budget, name="n_models", factor=2)
    spec = get_learner(learner)
    rng = np.random.default_rng(random_state)
    member, side, label, query, train_size, pools = _plan(mask, ratios, n_models, train_size,
                                                          pool_fraction, rng)
    if query.size < 1:
        raise InvalidParameterError(f"pool_fraction must leave query rows. Got "
                                    f"{pool_fraction:g} of {mask.size} rows.")
    plan = PopulationPlan(member=member, seeds=rng.integers(0, 2**31 - 1, size=member.shape[0]),
                          params={"distribution": property_label, "ratios": list(ratios),
                                  "train_size": train_size})
    started = time.perf_counter()
    population = fit(plan, spec, data=data)
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    probs = population.probs[:, query]  # (2K, Q, C): no model trained on these rows
    shadow, victim = side == 0, side == 1
    features = _log_odds(probs)
    chosen = _select_queries(features[shadow], label[shadow], min(n_query, query.size))
    guesses: dict[str, np.ndarray] = {}
    if "kl" in attacks:
        guesses["kl"] = _kl_attack(probs[shadow][:, chosen], label[shadow],
                                   probs[victim][:, chosen])
    if "meta" in attacks:
        cols = features[:, chosen].reshape(features.shape[0], -1)
        guesses["meta"] = _meta_attack(cols[shadow], label[shadow], cols[victim], random_state)
    results = {name: _figures(g == label[victim], ratios) for name, g in guesses.items()}
    strongest = max(results, key=lambda a: results[a].accuracy.value)
    return DistributionResult(
        property=property_label, ratios=ratios, n_models=n_models, train_size=train_size,
        attacks=results, strongest=strongest,
        pools={"attacker_rows": int(pools[0].size), "victim_rows": int(pools[1].size),
               "attacker_property_rows": int(mask[pools[0]].sum()),
               "victim_property_rows": int(mask[pools[1]].sum()),
               "query_rows": int(query.size), "query_rows_used": int(len(chosen))},
        learner=spec.get_config(),
        seconds={"fit": round(fit_seconds, 3),
                 "attack": round(time.perf_counter() - started, 3)})
