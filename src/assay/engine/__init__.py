"""Populations of models trained on random halves of one table.

A `PopulationPlan` says which rows each of K models trains on (a balanced membership
matrix: complementary pairs, so every row is a member of exactly K/2 models) and with
which seed. Fitting a plan gives a `Population`: every model's class probabilities on
every row. Membership-inference attacks, Rashomon sets and fairness audits all read it.

One job per module: `core` (the `Population`), `plan` (the plan and how many models fit
in memory), `cache` (fitted chunks kept on disk) and `fit` (`fit_population` on the
engine's backends); every name is imported from here.
"""

from __future__ import annotations

from assay.engine.cache import data_fingerprint_of
from assay.engine.fit import FitFn, engine_options, fit_population, population_fitter
from assay.engine.plan import (
    PopulationPlan,
    check_population_size,
    machine_memory_gib,
    max_models,
)
from assay.engine.population import Population

__all__ = [
    "FitFn",
    "Population",
    "PopulationPlan",
    "check_population_size",
    "data_fingerprint_of",
    "engine_options",
    "fit_population",
    "machine_memory_gib",
    "max_models",
    "population_fitter",
]
