"""`PopulationPlan`: which rows each of K models trains on, and with which seed."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assay._validation import (
    InvalidParameterError,
    check_scalar,
)


@dataclass(frozen=True, eq=False)
class PopulationPlan:
    """Which rows each of K models trains on, and with which seed.

    Attributes
    ----------
    member : bool array of shape (n_models, n_rows)
        member[k, i] is true when model k trains on row i.
    seeds : int64 array of shape (n_models,)
        Seed of every model (initialisation, minibatches, estimator random_state).
    params : dict
        Hyper-parameters the plan was made for (recorded in the result and the
        cache key; the learner carries the values it trains with).
    """

    member: np.ndarray
    seeds: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        member = np.asarray(self.member)
        seeds = np.asarray(self.seeds)
        if member.ndim != 2 or member.dtype != np.bool_:
            raise InvalidParameterError(
                f"member must be a 2-d boolean array. Got {member.dtype} of shape {member.shape}."
            )
        if seeds.shape != (member.shape[0],) or not np.issubdtype(seeds.dtype, np.integer):
            raise InvalidParameterError(
                f"seeds must be {member.shape[0]} integers, one per model. Got {seeds.dtype}"
                f" of shape {seeds.shape}."
            )
        member = member.copy()
        seeds = seeds.astype(np.int64)
        member.flags.writeable = False
        seeds.flags.writeable = False
        object.__setattr__(self, "member", member)
        object.__setattr__(self, "seeds", seeds)

    @property
    def n_models(self) -> int:
        return self.member.shape[0]

    @property
    def n_rows(self) -> int:
        return self.member.shape[1]

    @classmethod
    def balanced(
        cls,
        n_rows: int,
        n_models: int,
        random_state: int | np.random.Generator | None = None,
        params: dict[str, Any] | None = None,
    ) -> PopulationPlan:
        """Balanced plan of complementary pairs: every row is in exactly K/2 models.

        Model 2j trains on a random half of the rows, model 2j+1 on the other half. With
        an odd number of rows, pairs alternate which side gets the extra row.

        Parameters
        ----------
        n_rows : int
            Rows in the table (at least 2).
        n_models : int
            K, even and at least 2.
        random_state : int, Generator or None
            Seed of the membership matrix and the per-model seeds.
        params : dict, optional
            Hyper-parameters recorded with the plan.

        Examples
        --------
        >>> from assay.engine import PopulationPlan
        >>> plan = PopulationPlan.balanced(10, 4, random_state=0)
        >>> plan.member.sum(axis=0).tolist()  # every row in K/2 models
        [2, 2, 2, 2, 2, 2, 2, 2, 2, 2]
        >>> bool((plan.member[0] != plan.member[1]).all())  # a complementary pair
        True
        >>> plan.fingerprint() == PopulationPlan.balanced(10, 4, random_state=0).fingerprint()
        True
        """
        n_rows = check_scalar(n_rows, "n_rows", kind=int, low=2)
        n_models = check_scalar(n_models, "n_models", kind=int, low=2)
        if n_models % 2:
            raise InvalidParameterError(
                f"n_models must be an even integer in [2, inf). Got {n_models}."
            )
        check_population_size(n_models, n_rows, None, name="n_models")
        rng = np.random.default_rng(random_state)
        member = np.zeros((n_models, n_rows), dtype=bool)
        for pair in range(n_models // 2):
            half = (n_rows + (pair % 2)) // 2
            chosen = rng.permutation(n_rows)[:half]
            member[2 * pair, chosen] = True
            member[2 * pair + 1] = ~member[2 * pair]
        seeds = rng.integers(0, 2**31 - 1, size=n_models, dtype=np.int64)
        return cls(member=member, seeds=seeds, params=dict(params or {}))

    def fingerprint(self) -> str:
        """Hash of the membership matrix, seeds and params (part of the cache key)."""
        digest = hashlib.sha256()
        digest.update(np.packbits(self.member, axis=1).tobytes())
        digest.update(str(self.member.shape).encode())
        digest.update(self.seeds.tobytes())
        digest.update(json.dumps(self.params, sort_keys=True, default=repr).encode())
        return digest.hexdigest()[:16]


# --------------------------------------------------------------------------- size


def _gib(shape: tuple[int, ...]) -> float:
    """GiB of a float32 array of this shape."""
    return float(np.prod(shape, dtype=np.float64)) * 4 / 2**30


def machine_memory_gib() -> float:
    """GiB of physical memory of this machine (2 when it cannot be read)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
    except (AttributeError, OSError, ValueError):  # not POSIX
        return 2.0


def max_models(n_rows: int, n_classes: int | None, memory_budget: float | None = None) -> int:
    """The most models (even) a population of this table can hold in this machine's memory.

    Every model keeps a membership row in memory (``n_rows`` bools, twice: plan and
    population). Its probabilities (``n_rows * n_classes`` float32) stay in memory too
    unless a ``memory_budget`` under the machine's memory sends them to disk over it.
    ``n_classes`` None: the membership rows only.
    """
    machine = machine_memory_gib()
    per_model = 2 * n_rows
    if n_classes is not None and (memory_budget is None or memory_budget >= machine):
        per_model += 4 * n_rows * n_classes
    count = int(machine * 2**30 // max(per_model, 1))
    return count - count % 2


def check_population_size(n_models: int, n_rows: int, n_classes: int | None,
                          memory_budget: float | None = None, *,
                          name: str = "n_models", factor: int = 1,
                          spill: bool = True) -> int:
    """Check that ``n_models`` models of this table fit in memory (`max_models`); return it.

    Called before any allocation, so a huge count is one error line rather than a failed
    allocation of terabytes. ``factor``: models trained per unit of ``n_models`` (2 for
    distribution inference's two shares). ``spill``: whether the caller can write the
    probabilities to disk (it takes a ``--memory-budget``); the message says so.

    Raises
    ------
    InvalidParameterError
        Over the bound: the message names it and what to do.
    """
    most = max_models(n_rows, n_classes, memory_budget) // factor
    most -= most % 2
    if n_models <= most:
        return n_models
    machine = machine_memory_gib()
    with_probs = n_classes is not None and (memory_budget is None or memory_budget >= machine)
    what = ("their membership rows and probabilities" if with_probs else
            "their membership rows, always in memory,")
    fix = ("use fewer models, or a --memory-budget (GiB) under the machine's memory to "
           "write the probabilities to disk" if with_probs and spill else "use fewer models")
    classes = f" and {n_classes} classes" if with_probs else ""
    raise InvalidParameterError(
        f"{name} must be at most {most} for {n_rows} rows{classes} ({what} must fit this "
        f"machine's {machine:.3g} GiB of memory); {fix}. Got {n_models}.")
