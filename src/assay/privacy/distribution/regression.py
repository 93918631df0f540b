"""Distribution inference on a regression model: does its predicted number reveal the
make-up of its training data?

The game of `assay.privacy.distribution.inference`, played with regressors: the same
pools, training sets of the same exact property shares (`_plan`), all ``2 * n_models``
models trained in one fit through the engine's regression population
(`assay.engine.regression`: ``ridge``, ``mlp-regressor`` or a scikit-learn regressor), and
the same two attacks, trained on the shadow models only, reading each victim's predicted
values on query rows no model trained on:

* **KL** (pairwise votes): a regression model's predictive distribution is taken as
  N(ŷ, σ²) with one σ for every model, so the mean KL divergence between two models over
  the query rows is their mean squared difference of predictions over 2σ²; every pair
  (one shadow model per share) votes for the share whose model is closer to the victim,
  and σ cancels out of the vote.
* **meta-classifier**: the logistic regression of the classification game on the
  victim's predicted values at the query rows (standardised by the shadow models').

Query rows are the ``n_query`` whose shadow predictions differ most between the shares
(largest Welch |t|). Accuracy over the victims with its exact interval, ``n_leaked``, the
strongest attack and the report's words are the classification game's; ``mean_shift``
adds what the share does to the regression function: the mean difference, in the target's
units, between the shadow models' predictions at the second share and at the first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np

from assay._serial import Serial, meta
from assay._validation import DataError
from assay.privacy.distribution.inference import (
    DistributionResult,
    _figures,
    _meta_attack,
    _plan,
    _select_queries,
    check_game,
    check_property_rows,
)

__all__ = ["NAMES", "RegressionDistributionPayload", "RegressionDistributionResult",
           "regression_distribution_inference", "regression_distribution_page", "shift_line"]

#: How the report names each attack on a regression model.
NAMES = {"kl": "KL divergence of Gaussian predictions (pairwise votes)",
         "meta": "meta-classifier on predicted values"}


@dataclass
class RegressionDistributionResult(DistributionResult):
    """What `regression_distribution_inference` found: the classification game's figures,
    and ``mean_shift``, the shadow models' mean prediction at ``ratios[1]`` minus at
    ``ratios[0]`` over every query row (the target's units); ``task`` is "regression"."""

    mean_shift: float = 0.0
    target: str = ""
    task: str = field(default="regression", metadata=meta(schema={"const": "regression"}))

    __json_required__ = ("pools", "mean_shift", "target", "task")


@dataclass
class RegressionDistributionPayload(Serial):
    """The distribution section's payload on a regression model (the result, unwrapped)."""

    result: RegressionDistributionResult

    __json_unwrap__ = "result"


def _kl_votes(shadow: np.ndarray, shadow_label: np.ndarray, victim: np.ndarray
              ) -> np.ndarray:
    """Pairwise votes by mean squared distance: the predicted share index of every victim.

    ``shadow`` (S, Q) and ``victim`` (V, Q) predicted values on the query rows.
    """
    # Mean squared difference of every (victim, shadow) pair: (V, S), without a (V, S, Q)
    # array: |v|² + |s|² − 2 v·s.
    q = shadow.shape[1]
    dist = ((victim ** 2).sum(axis=1)[:, None] + (shadow ** 2).sum(axis=1)[None, :]
            - 2 * victim @ shadow.T) / q
    d0, d1 = dist[:, shadow_label == 0], dist[:, shadow_label == 1]
    votes0 = (d0[:, :, None] < d1[:, None, :]).mean(axis=(1, 2))
    return (votes0 < 0.5).astype(np.int64)


def regression_distribution_inference(
    X: Any,
    y: Any,
    has_property: Any,
    *,
    ratios: tuple[float, float] = (0.3, 0.5),
    n_models: int = 64,
    learner: Any = "ridge",
    train_size: int | None = None,
    pool_fraction: float = 0.4,
    n_query: int = 200,
    attacks: tuple[str, ...] = ("kl", "meta"),
    property_label: str = "property",
    target_label: str = "target",
    backend: str = "batched",
    cache_dir: Any = None,
    progress: bool = False,
    scheduler_address: str | None = None,
    random_state: int = 0,
    fit: Any = None,
) -> RegressionDistributionResult:
    """Play the distribution-inference game between two property shares with regressors.

    Parameters
    ----------
    X : array-like of shape (n_rows, n_features)
    y : array-like of shape (n_rows,)
        The continuous target (finite numbers).
    has_property : bool array-like of shape (n_rows,)
        Rows with the property (`assay.privacy.distribution.inference.property_mask`).
    ratios, n_models, train_size, pool_fraction, n_query, attacks, property_label
        As `assay.privacy.distribution.inference.distribution_inference`.
    learner : str or learner, default="ridge"
        A learner that predicts a number (``ridge``, ``mlp-regressor``, a scikit-learn
        regressor).
    target_label : str
        How the target is named in the result.
    backend, cache_dir, progress, scheduler_address
        Passed to `assay.engine.regression.fit_regression_population` when `fit` is None.
    random_state : int, default=0
    fit : callable, optional
        ``fit(plan, learner, data=(X, y)) -> RegressionPopulation``; inside an audit
        `AuditContext.fit`.

    Returns
    -------
    RegressionDistributionResult

    Raises
    ------
    InvalidParameterError
        A bad share, model count, attack, pool fraction or training-set size, or a
        learner that does not predict a number (all before any training).
    DataError
        A target that is not finite numbers, or a mask that is not one of the rows.
    """
    from assay.engine import PopulationPlan, check_population_size
    from assay.engine.regression import _check_values_learner, regression_fitter

    ratios, n_models, pool_fraction, n_query, attacks, train_size = check_game(
        ratios, n_models, pool_fraction, n_query, attacks, train_size)
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y, dtype=np.float64)
    if y.shape != (X.shape[0],) or not np.isfinite(y).all():
        raise DataError(f"y must be {X.shape[0]} finite numbers (a continuous target). Got "
                        f"shape {y.shape}.")
    mask = check_property_rows(has_property, X.shape[0])
    spec = _check_values_learner(learner)
    # float64 values: as much memory per model as two float32 class probabilities.
    check_population_size(n_models, X.shape[0], 2, name="n_models", factor=2, spill=False)
    if fit is None:
        fit = regression_fitter(X, y, backend=backend, cache_dir=cache_dir, progress=progress,
                                scheduler_address=scheduler_address)
    rng = np.random.default_rng(random_state)
    member, side, label, query, train_size, pools = _plan(mask, ratios, n_models, train_size,
                                                          pool_fraction, rng)
    if query.size < 1:
        raise DataError(f"pool_fraction must leave query rows. Got {pool_fraction:g} of "
                        f"{mask.size} rows.")
    plan = PopulationPlan(member=member, seeds=rng.integers(0, 2**31 - 1, size=member.shape[0]),
                          params={"distribution": property_label, "ratios": list(ratios),
                                  "train_size": train_size})
    started = time.perf_counter()
    population = fit(plan, spec, data=(X, y))
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    values = np.asarray(population.values, dtype=np.float64)[:, query]  # (2K, Q)
    shadow, victim = side == 0, side == 1
    chosen = _select_queries(values[shadow][..., None], label[shadow],
                             min(n_query, query.size))
    guesses: dict[str, np.ndarray] = {}
    if "kl" in attacks:
        guesses["kl"] = _kl_votes(values[shadow][:, chosen], label[shadow],
                                  values[victim][:, chosen])
    if "meta" in attacks:
        guesses["meta"] = _meta_attack(values[shadow][:, chosen], label[shadow],
                                       values[victim][:, chosen], random_state)
    results = {name: _figures(g == label[victim], ratios) for name, g in guesses.items()}
    strongest = max(results, key=lambda a: results[a].accuracy.value)
    by_share = [values[shadow & (label == r)].mean(axis=0) for r in (0, 1)]
    return RegressionDistributionResult(
        property=property_label, ratios=ratios, n_models=n_models, train_size=train_size,
        attacks=results, strongest=strongest,
        pools={"attacker_rows": int(pools[0].size), "victim_rows": int(pools[1].size),
               "attacker_property_rows": int(mask[pools[0]].sum()),
               "victim_property_rows": int(mask[pools[1]].sum()),
               "query_rows": int(query.size), "query_rows_used": int(len(chosen))},
        learner=spec.get_config(),
        seconds={"fit": round(fit_seconds, 3),
                 "attack": round(time.perf_counter() - started, 3)},
        mean_shift=float(np.mean(by_share[1] - by_share[0])), target=target_label)


def shift_line(r: RegressionDistributionResult) -> str:
    """The summary's line on what the share does to the predictions."""
    return (f"Trained at share {r.ratios[1]:g} rather than {r.ratios[0]:g}, the attacker's "
            f"models predict {r.target} {r.mean_shift:+.4g} on average over the query rows "
            f"(what the share does to the regression function).")


def regression_distribution_page(section: Any, result: Any) -> Any:
    """Cards and the attack table, as for a classifier, with the regression attacks'
    names and the shift of the predictions between the shares."""
    from assay.report.result import format_rate
    from assay.section import Card, Page

    r: RegressionDistributionResult = section.data.result
    best = r.best
    cards = [Card(f"share of {r.property} guessed right", format_rate(best.accuracy.value),
                  f"[{format_rate(best.accuracy.ci_low)}, {format_rate(best.accuracy.ci_high)}]",
                  "card-dist-accuracy")]
    if best.n_leaked is not None:
        cards.append(Card("n_leaked", f"{best.n_leaked.value:.1f}",
                          f"of {r.train_size} training rows", "card-dist-leaked"))
    cards.append(Card(f"mean shift of predicted {r.target}", f"{r.mean_shift:+.4g}",
                      f"share {r.ratios[1]:g} vs {r.ratios[0]:g}", "card-dist-shift"))
    template = resources.files("assay.privacy.distribution").joinpath(
        "templates/distribution_regression.html.j2").read_text(encoding="utf-8")
    return Page(template=template, view={"r": r, "names": NAMES}, cards=cards)
