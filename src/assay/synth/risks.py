"""Singling out, linkability and inference risk of a synthetic table (anonymeter's definitions).

Each attack uses only the synthetic table, is run against rows of the generator's training
table (REAL) and, identically, against rows it never saw (HOLDOUT, the control). What the
release gives away is the attack's success beyond the control's::

    risk = (attack rate - control rate) / (1 - control rate)

with the rates' Wilson intervals carried through to the risk (first-order propagation,
each side on its own), as anonymeter defines them (Giomi et al. 2023, "A Unified Framework
for Quantifying Privacy Risk in Synthetic Data"; Article 29 Working Party, Opinion 05/2014).

* **singling out**: predicates built from the synthetic table that hold for exactly one of
  its rows (univariate: a rare value or an extreme; multivariate: ``n_cols`` attributes of
  a synthetic row, numbers as ``>=`` / ``<=`` against the median); one succeeds when it
  holds for exactly one real (control) row. All predicates are evaluated together as
  boolean matrices.
* **linkability**: an attacker holds two parts of a person's columns; each part's nearest
  synthetic rows are found, and the person is linked when the two searches share one.
* **inference**: the secret column of a person is guessed as that of the nearest synthetic
  row on every other column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special

from assay._serial import Serial
from assay._stats import Estimate, two_proportion_test, wilson_interval
from assay._validation import InvalidParameterError, check_scalar
from assay.groups import group_label
from assay.synth.encoding import MAX_DISCRETE_VALUES, Tables, distance_blocks, nearest

__all__ = [
    "GroupRisk",
    "RiskFigures",
    "inference_risk",
    "linkability_risk",
    "residual_risk",
    "singling_out_risk",
]

_EQ, _LE, _GE, _NULL = 0, 1, 2, 3
#: Every SCREEN-th synthetic row screens multivariate predicates before the full count.
_SCREEN = 5
#: Relative tolerance of a correct guess of a continuous secret (anonymeter's).
REGRESSION_TOLERANCE = 0.05


@dataclass
class RiskFigures(Serial):
    """An attack against the real rows and its control against the holdout rows.

    Attributes
    ----------
    risk : Estimate
        ``(attack - control) / (1 - control)`` in [0, 1] with its interval.
    attack, control : Estimate
        Success rates with Wilson intervals.
    n_attacks : int
        Attacks made on each side (the rate's denominator).
    n_success, n_control_success : float
        Successful attacks (an expected count where the tables' sizes were matched).
    """

    risk: Estimate
    attack: Estimate
    control: Estimate
    n_attacks: int
    n_success: float
    n_control_success: float


@dataclass
class GroupRisk(Serial):
    """One protected group's risk (targets of the group on both sides).

    ``figures`` is None when either side has fewer than ``min_support`` targets of the
    group (listed, not measured). ``flagged``: its risk exceeds the overall one by at least
    the flag gap and its attack success is significantly above the other targets'.
    """

    label: str
    n_targets: int
    n_control_targets: int
    figures: RiskFigures | None = None
    p_value: float | None = None
    flagged: bool = False

    __json_required__ = ("figures", "p_value", "flagged")


def residual_risk(k_attack: float, n_attack: int, k_control: float, n_control: int,
                  confidence: float = 0.95) -> RiskFigures:
    """Risk from successes of the attack and of the control, with intervals.

    Parameters
    ----------
    k_attack, k_control : float
        Successes (may be expected, non-integer counts).
    n_attack, n_control : int
        Attacks made on each side.
    confidence : float, default=0.95

    Returns
    -------
    RiskFigures
        The risk's interval propagates each rate's Wilson half-width to first order
        (its low end from the attack's low and the control's high side); value and
        bounds are clipped to [0, 1]. A control that always succeeds leaves no room for a
        risk: the risk is NaN with the vacuous interval [0, 1].
    """
    a = k_attack / n_attack if n_attack else float("nan")
    c = k_control / n_control if n_control else float("nan")
    a_lo, a_hi = (float(x) for x in wilson_interval(k_attack, n_attack, confidence))
    c_lo, c_hi = (float(x) for x in wilson_interval(k_control, n_control, confidence))
    attack = Estimate(a, a_lo, a_hi)
    control = Estimate(c, c_lo, c_hi)
    if not (np.isfinite(a) and np.isfinite(c)) or c >= 1:
        risk = Estimate(float("nan"), 0.0, 1.0)
    else:
        value = (a - c) / (1 - c)
        d_attack = 1 / (1 - c)
        d_control = (1 - a) / (1 - c) ** 2
        low = value - np.hypot((a - a_lo) * d_attack, (c_hi - c) * d_control)
        high = value + np.hypot((a_hi - a) * d_attack, (c - c_lo) * d_control)
        risk = Estimate(*(float(np.clip(x, 0.0, 1.0)) for x in (value, low, high)))
    return RiskFigures(risk=risk, attack=attack, control=control, n_attacks=int(n_attack),
                       n_success=float(k_attack), n_control_success=float(k_control))


# --------------------------------------------------------------------------- singling out


def _unique_rows(values: np.ndarray) -> np.ndarray:
    """Distinct rows, first occurrence order (missing values equal to each other)."""
    import pandas as pd

    return values[~pd.DataFrame(values).duplicated().to_numpy()]


class RankCodes:
    """Each column's values as their rank among the three tables' values (order kept).

    Predicates compare ranks instead of values: ``==``, ``<=`` and ``>=`` give the same
    rows, and small unsigned codes laid out one column per row make the predicate
    matrices several times cheaper to build. A missing value gets the largest code.
    """

    def __init__(self, tables: Sequence[np.ndarray]) -> None:
        d = tables[0].shape[1]
        self.uniques = [np.unique(np.concatenate([t[:, j][np.isfinite(t[:, j])]
                                                  for t in tables])) for j in range(d)]
        widest = max((u.size for u in self.uniques), default=0)
        self.dtype = np.uint16 if widest < np.iinfo(np.uint16).max else np.uint32
        self.missing = int(np.iinfo(self.dtype).max)

    def code(self, table: np.ndarray) -> np.ndarray:
        """Codes of an (n, d) table, as (d, n)."""
        out = np.empty((table.shape[1], table.shape[0]), dtype=self.dtype)
        for j, u in enumerate(self.uniques):
            x = table[:, j]
            out[j] = np.where(np.isnan(x), self.missing,
                              np.searchsorted(u, np.nan_to_num(x)))
        return out

    def code_values(self, cols: np.ndarray, vals: np.ndarray) -> np.ndarray:
        """Codes of predicate values (values of the tables, or missing)."""
        out = np.full(vals.shape, self.missing, dtype=np.int64)
        for j in np.unique(cols):
            at = (cols == j) & ~np.isnan(vals)
            out[at] = np.searchsorted(self.uniques[j], vals[at])
        return out


def query_counts(coded: np.ndarray, cols: np.ndarray, ops: np.ndarray, vals: np.ndarray,
                 missing: int, max_cells: int = 8_000_000) -> np.ndarray:
    """How many rows each conjunctive predicate holds for.

    Parameters
    ----------
    coded : ndarray of shape (n_columns, n_rows)
        The table's `RankCodes`.
    cols, ops, vals : ndarray of shape (n_queries, n_terms)
        Column, operator (``==``, ``<=``, ``>=``, is missing) and value code of every term.
    missing : int
        The code of a missing value.
    max_cells : int
        Queries x rows evaluated at once (memory bound).

    Returns
    -------
    ndarray of int, shape (n_queries,)
    """
    n, q = coded.shape[1], cols.shape[0]
    if cols.shape[1] == 1:
        return _single_term_counts(coded, cols[:, 0], ops[:, 0], vals[:, 0], missing)
    out = np.zeros(q, dtype=np.int64)
    step = max(1, max_cells // max(n, 1))
    for s in range(0, q, step):
        c, o, v = cols[s:s + step], ops[s:s + step], vals[s:s + step]
        hit = np.ones((c.shape[0], n), dtype=bool)
        for j in range(c.shape[1]):
            x = coded[c[:, j]]
            vj, oj = v[:, j, None].astype(coded.dtype), o[:, j]
            term = np.empty_like(hit)
            for code in (_EQ, _LE, _GE, _NULL):
                sel = oj == code
                if not sel.any():
                    continue
                xs = x[sel]
                if code == _EQ:
                    term[sel] = xs == vj[sel]
                elif code == _LE:
                    term[sel] = xs <= vj[sel]  # the missing code is the largest: excluded
                elif code == _GE:
                    term[sel] = (xs >= vj[sel]) & (xs != missing)
                else:
                    term[sel] = xs == missing
            term[(v[:, j] == missing) & (oj != _NULL)] = False  # compared with a missing value
            hit &= term
        out[s:s + step] = hit.sum(axis=1)
    return out


def _single_term_counts(coded: np.ndarray, cols: np.ndarray, ops: np.ndarray,
                        vals: np.ndarray, missing: int) -> np.ndarray:
    """`query_counts` of one-term predicates by binary search in each sorted column."""
    out = np.zeros(cols.shape[0], dtype=np.int64)
    for j in np.unique(cols):
        at = cols == j
        x = coded[j]
        absent = x == missing
        present = np.sort(x[~absent])
        v, o = vals[at], ops[at]
        left = np.searchsorted(present, v, side="left")
        right = np.searchsorted(present, v, side="right")
        counts = np.select([o == _EQ, o == _LE, o == _GE],
                           [right - left, right, present.size - left],
                           default=absent.sum())
        # A missing value in a comparison matches no row.
        out[at] = np.where((v == missing) & (o != _NULL), 0, counts)
    return out


class _QuerySet:
    """Predicates that single out in the synthetic table, each kept once, in order."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.seen: set[bytes] = set()
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def __len__(self) -> int:
        return len(self.seen)

    def add(self, cols, ops, vals, counts) -> None:
        for i in np.flatnonzero(counts == 1):
            if len(self) >= self.limit:
                return
            order = np.argsort(cols[i], kind="stable")
            key = (cols[i][order].tobytes() + ops[i][order].tobytes()
                   + vals[i][order].tobytes())
            if key not in self.seen:
                self.seen.add(key)
                self.parts.append((cols[i][order], ops[i][order], vals[i][order]))

    def arrays(self, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not self.parts:
            return (np.zeros((0, width), int), np.zeros((0, width), np.int8),
                    np.zeros((0, width), np.int64))
        cols, ops, vals = zip(*self.parts)
        return np.array(cols), np.array(ops), np.array(vals)


def _univariate_candidates(synth: np.ndarray, numeric: np.ndarray):
    cols, ops, vals = [], [], []
    for j in range(synth.shape[1]):
        x = synth[:, j]
        missing = np.isnan(x)
        if missing.sum() == 1:
            cols.append(j)
            ops.append(_NULL)
            vals.append(np.nan)
        present = x[~missing]
        if numeric[j] and present.size:
            cols += [j, j]
            ops += [_LE, _GE]
            vals += [present.min(), present.max()]
        values, counts = np.unique(present, return_counts=True)
        rare = values[counts == 1]
        cols += [j] * rare.size
        ops += [_EQ] * rare.size
        vals += list(rare)
    return (np.array(cols, dtype=int)[:, None], np.array(ops, dtype=np.int8)[:, None],
            np.array(vals, dtype=float)[:, None])


def _hypergeometric_one(counts: np.ndarray, n: int, m: int) -> np.ndarray:
    """P(exactly one of ``counts`` matching rows among ``m`` drawn from ``n``) per query."""
    c = np.asarray(counts, dtype=float)
    if m >= n:
        return (c == 1).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_p = (np.log(c) + special.gammaln(n - c + 1) - special.gammaln(m)
                 - special.gammaln(n - c - m + 2) - special.gammaln(n + 1)
                 + special.gammaln(m + 1) + special.gammaln(n - m + 1))
    ok = (c >= 1) & (n - c >= m - 1)
    return np.where(ok, np.exp(np.where(ok, log_p, 0.0)), 0.0)


def singling_out_risk(tables: Tables, *, mode: str = "multivariate", n_attacks: int = 500,
                      n_cols: int = 3, max_attempts: int = 10_000_000,
                      random_state: int | None = 0, confidence: float = 0.95
                      ) -> tuple[RiskFigures, int]:
    """Singling-out risk of the synthetic table.

    Rows of each table are made distinct first (a predicate singles out a record, and
    identical records are one record to it). Where the real and holdout tables differ in
    size, both sides are measured at the smaller size: a predicate matching ``c`` of ``n``
    rows singles out in a random ``m`` of them with the hypergeometric probability, so the
    counts become expected counts (anonymeter extrapolates the control with a fitted
    curve instead).

    Parameters
    ----------
    tables : Tables
    mode : {"univariate", "multivariate"}
    n_attacks : int, default=500
        Predicates sought; a predicate not found counts as a failed attack.
    n_cols : int, default=3
        Attributes per multivariate predicate.
    max_attempts : int, default=10_000_000
        Multivariate predicates tried at most (anonymeter's cap). A smaller cap stops the
        search early on tables where few predicates single out (many binary columns), and
        the predicates not found count as failed attacks: the risk is understated.
    random_state : int or None
    confidence : float

    Returns
    -------
    figures : RiskFigures
    n_queries : int
        Predicates found (at most ``n_attacks``).
    """
    if mode not in ("univariate", "multivariate"):
        raise InvalidParameterError(
            f"mode must be one of 'univariate', 'multivariate'. Got {mode!r}.")
    n_attacks = check_scalar(n_attacks, "n_attacks", kind=int, low=1)
    d = len(tables.columns)
    n_cols = check_scalar(n_cols, "n_cols", kind=int, low=1, high=d)
    rng = np.random.default_rng(random_state)
    synth = _unique_rows(tables.values["synth"])
    real = _unique_rows(tables.values["real"])
    control = _unique_rows(tables.values["holdout"])
    codes = RankCodes([synth, real, control])
    coded = {name: codes.code(t) for name, t in
             (("synth", synth), ("real", real), ("control", control))}

    def counts(table: str, cols, ops, vals) -> np.ndarray:
        return query_counts(coded[table], cols, ops, vals, codes.missing)

    found = _QuerySet(n_attacks)
    if mode == "univariate":
        cols, ops, vals = _univariate_candidates(synth, tables.numeric)
        order = rng.permutation(cols.shape[0])
        cols, ops, vals = cols[order], ops[order], codes.code_values(cols[order], vals[order])
        found.add(cols, ops, vals, counts("synth", cols, ops, vals))
        width = 1
    else:
        width = n_cols
        medians = np.array([np.nanmedian(synth[:, j]) if tables.numeric[j]
                            and np.isfinite(synth[:, j]).any() else np.nan
                            for j in range(d)])
        # Most predicates match many rows: one that matches another row among every
        # SCREEN-th is out without a look at the rest (the same predicates are kept).
        screen = coded["synth"][:, ::_SCREEN] if synth.shape[0] > 4 * _SCREEN ** 2 else None

        def singles(rows, cols, ops, vals) -> np.ndarray:
            if screen is None:
                return counts("synth", cols, ops, vals)
            others = (query_counts(screen, cols, ops, vals, codes.missing)
                      - (rows % _SCREEN == 0))  # the predicate's own row always matches
            out = np.full(rows.size, 2, dtype=np.int64)
            left = others == 0
            out[left] = counts("synth", cols[left], ops[left], vals[left])
            return out

        attempts = 0
        while len(found) < n_attacks and attempts < max_attempts:
            batch = min(1000, max_attempts - attempts)
            rows = rng.integers(0, synth.shape[0], size=batch)
            cols = np.argsort(rng.random((batch, d)), axis=1)[:, :n_cols]
            vals = synth[rows[:, None], cols]
            is_num = tables.numeric[cols]
            ops = np.where(np.isnan(vals), _NULL,
                           np.where(~is_num, _EQ,
                                    np.where(vals > medians[cols], _GE, _LE))).astype(np.int8)
            vals = codes.code_values(cols, vals)
            found.add(cols, ops, vals, singles(rows, cols, ops, vals))
            attempts += batch
    cols, ops, vals = found.arrays(width)
    m = min(real.shape[0], control.shape[0])
    k_real = _hypergeometric_one(counts("real", cols, ops, vals), real.shape[0], m).sum()
    k_ctrl = _hypergeometric_one(counts("control", cols, ops, vals), control.shape[0], m).sum()
    return residual_risk(k_real, n_attacks, k_ctrl, n_attacks, confidence), len(found)


# --------------------------------------------------------------------------- group figures


def _group_figures(hit: np.ndarray, ctrl_hit: np.ndarray, groups: Mapping[str, Any],
                   overall: RiskFigures, *, min_support: int, min_gap: float, alpha: float,
                   confidence: float) -> list[GroupRisk]:
    """Risk of each protected value among the attacked rows (``groups``: attribute → (real
    labels of the targets, holdout labels of the control targets)).

    The significance level is shared by the groups measured (Bonferroni): with many
    groups and secrets, some would otherwise pass by chance alone.
    """
    out = []
    for attribute, (labels, ctrl_labels) in groups.items():
        for value in sorted(set(labels) | set(ctrl_labels), key=str):
            inside, ctrl_inside = labels == value, ctrl_labels == value
            g = GroupRisk(label=group_label((attribute,), (str(value),)),
                          n_targets=int(inside.sum()), n_control_targets=int(ctrl_inside.sum()))
            if min(g.n_targets, g.n_control_targets) >= min_support:
                g.figures = residual_risk(hit[inside].sum(), g.n_targets,
                                          ctrl_hit[ctrl_inside].sum(), g.n_control_targets,
                                          confidence)
                outside = ~inside
                g.p_value = two_proportion_test(hit[inside].sum(), g.n_targets,
                                                hit[outside].sum(), outside.sum())
                above = hit[inside].mean() > (hit[outside].mean() if outside.any() else 1.0)
                gap = g.figures.risk.value - overall.risk.value
                g.flagged = bool(np.isfinite(gap) and gap >= min_gap and above
                                 and g.p_value < alpha)
            out.append(g)
    tested = [g for g in out if g.p_value is not None]
    for g in tested:
        p = g.p_value
        g.flagged = g.flagged and p is not None and p < alpha / len(tested)
    return out


def _targets(n_rows: int, n_attacks: int, rng: np.random.Generator) -> np.ndarray:
    return rng.choice(n_rows, size=min(n_attacks, n_rows), replace=False)


def _labels(groups: Mapping[str, tuple[np.ndarray, np.ndarray]] | None, t_real, t_ctrl):
    return {a: (np.asarray(r, dtype=object)[t_real], np.asarray(h, dtype=object)[t_ctrl])
            for a, (r, h) in (groups or {}).items()}


# --------------------------------------------------------------------------- linkability


@dataclass
class LinkabilityFigures(Serial):
    """Linkability risk, the two parts of the attacker's columns and the groups' risks.

    ``with_ties``: the same attack counting a link when the two parts share any synthetic
    row as near as their ``n_neighbors``-th, every tie included. The headline keeps
    anonymeter's rule (the ``n_neighbors`` nearest rows, ties broken by row order), which
    misses links wherever a part's values repeat in the release.
    """

    figures: RiskFigures
    aux_columns: tuple[list[str], list[str]]
    n_neighbors: int
    groups: list[GroupRisk] = field(default_factory=list)
    with_ties: RiskFigures | None = None

    __json_layout__ = (("risk", lambda s: s.figures.risk), "figures", "aux_columns",
                       "n_neighbors", "with_ties", "groups")
    __json_required__ = ("groups",)


def default_link_columns(columns: Sequence[str]) -> tuple[list[str], list[str]]:
    """The attacker's two parts when none are given: the columns' first and second half."""
    half = (len(columns) + 1) // 2
    return list(columns[:half]), list(columns[half:])


def linkability_risk(tables: Tables, aux_columns: tuple[Sequence[str], Sequence[str]],
                     *, n_attacks: int = 500, n_neighbors: int = 1,
                     groups: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
                     random_state: int | None = 0, confidence: float = 0.95,
                     min_support: int = 30, min_gap: float = 0.05, alpha: float = 0.05
                     ) -> LinkabilityFigures:
    """Linkability risk: targets re-linked through their nearest synthetic rows.

    Parameters
    ----------
    tables : Tables
    aux_columns : (list of str, list of str)
        The columns each of the attacker's two tables holds.
    n_attacks : int, default=500
        Targets drawn (without replacement) from the real rows and, separately, from the
        holdout rows (at most each table's size).
    n_neighbors : int, default=1
        A target is linked when its two parts share one of this many nearest synthetic rows.
    groups : mapping, optional
        Protected attribute → (labels of the real rows, labels of the holdout rows).
    random_state, confidence, min_support, min_gap, alpha
        Seed, interval level and the group rule (support and flag).
    """
    rng = np.random.default_rng(random_state)
    parts = [tables.index(p) for p in aux_columns]
    n_neighbors = check_scalar(n_neighbors, "n_neighbors", kind=int, low=1,
                               high=tables.values["synth"].shape[0])
    picks = {side: _targets(tables.values[side].shape[0], n_attacks, rng)
             for side in ("real", "holdout")}
    found, reach, searched = [], [], []
    for cols in parts:  # one search of both sides' targets per part
        queries = np.vstack([tables.features(side, cols)[t] for side, t in picks.items()])
        candidates, dims = tables.features("synth", cols), tables.numeric_dims(cols)
        dist, idx = nearest(candidates, queries, n_neighbors, numeric_dims=dims)
        found.append(idx)
        reach.append(dist[:, -1])
        searched.append((candidates, queries, dims))
    linked = (found[0][:, :, None] == found[1][:, None, :]).any(axis=(1, 2))
    n_real = picks["real"].size
    hits = {"real": linked[:n_real], "holdout": linked[n_real:]}
    overall = residual_risk(hits["real"].sum(), hits["real"].size, hits["holdout"].sum(),
                            hits["holdout"].size, confidence)
    tie_linked = linked | _linked_with_ties(searched, reach)
    with_ties = residual_risk(tie_linked[:n_real].sum(), n_real, tie_linked[n_real:].sum(),
                              tie_linked.size - n_real, confidence)
    by_group = _group_figures(hits["real"], hits["holdout"],
                              _labels(groups, picks["real"], picks["holdout"]), overall,
                              min_support=min_support, min_gap=min_gap, alpha=alpha,
                              confidence=confidence)
    return LinkabilityFigures(figures=overall,
                              aux_columns=(list(aux_columns[0]), list(aux_columns[1])),
                              n_neighbors=n_neighbors, groups=by_group, with_ties=with_ties)


def _linked_with_ties(searched, reach, tol: float = 1e-4) -> np.ndarray:
    """Whether the two parts of each target share a synthetic row within their own
    ``n_neighbors``-th nearest distance (every tied row counted)."""
    (cand_a, q_a, dims_a), (cand_b, q_b, dims_b) = searched
    out = np.zeros(q_a.shape[0], dtype=bool)
    for (start, d_a), (_, d_b) in zip(distance_blocks(cand_a, q_a, dims_a),
                                      distance_blocks(cand_b, q_b, dims_b), strict=True):
        stop = start + d_a.shape[0]
        out[start:stop] = ((d_a <= reach[0][start:stop, None] + tol)
                           & (d_b <= reach[1][start:stop, None] + tol)).any(axis=1)
    return out


# --------------------------------------------------------------------------- inference


@dataclass
class SecretFigures(Serial):
    """Inference risk of one secret column."""

    secret: str
    regression: bool
    figures: RiskFigures
    groups: list[GroupRisk] = field(default_factory=list)

    __json_layout__ = ("secret", "regression", ("risk", lambda s: s.figures.risk), "figures",
                       "groups")
    __json_required__ = ("groups",)


def is_regression(tables: Tables, secret: str) -> bool:
    """A numeric secret with more than `MAX_DISCRETE_VALUES` values is guessed within 5 %."""
    j = tables.index([secret])[0]
    if not tables.numeric[j]:
        return False
    x = tables.values["synth"][:, j]
    return np.unique(x[np.isfinite(x)]).size > MAX_DISCRETE_VALUES


def correct_guesses(guess: np.ndarray, truth: np.ndarray, regression: bool) -> np.ndarray:
    """Exact match (missing matches missing), or within 5 % of the guess for a continuous
    secret."""
    both_missing = np.isnan(guess) & np.isnan(truth)
    with np.errstate(invalid="ignore", divide="ignore"):
        if regression:
            match = np.abs(guess - truth) <= REGRESSION_TOLERANCE * np.abs(guess) + 1e-12
        else:
            match = guess == truth
    return both_missing | match


def inference_risk(tables: Tables, secret: str, *, aux_columns: Sequence[str] | None = None,
                   n_attacks: int = 500, regression: bool | None = None,
                   groups: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
                   random_state: int | None = 0, confidence: float = 0.95,
                   min_support: int = 30, min_gap: float = 0.05, alpha: float = 0.05
                   ) -> SecretFigures:
    """Inference risk of ``secret``: guessed as the nearest synthetic row's on the others.

    Parameters
    ----------
    tables : Tables
    secret : str
    aux_columns : sequence of str, optional
        What the attacker knows (default: every other column).
    n_attacks : int, default=500
    regression : bool, optional
        Guesses within 5 % count (default: `is_regression`).
    groups, random_state, confidence, min_support, min_gap, alpha
        As in `linkability_risk`.
    """
    rng = np.random.default_rng(random_state)
    aux = [c for c in tables.columns if c != secret] if aux_columns is None else list(aux_columns)
    cols, (j,) = tables.index(aux), tables.index([secret])
    regression = is_regression(tables, secret) if regression is None else bool(regression)
    synth_secret = tables.values["synth"][:, j]
    picks = {side: _targets(tables.values[side].shape[0], n_attacks, rng)
             for side in ("real", "holdout")}
    queries = np.vstack([tables.features(side, cols)[t] for side, t in picks.items()])
    _, idx = nearest(tables.features("synth", cols), queries, 1,
                     numeric_dims=tables.numeric_dims(cols))
    truth = np.concatenate([tables.values[side][t, j] for side, t in picks.items()])
    correct = correct_guesses(synth_secret[idx[:, 0]], truth, regression)
    n_real = picks["real"].size
    hits = {"real": correct[:n_real], "holdout": correct[n_real:]}
    overall = residual_risk(hits["real"].sum(), hits["real"].size, hits["holdout"].sum(),
                            hits["holdout"].size, confidence)
    by_group = _group_figures(hits["real"], hits["holdout"],
                              _labels(groups, picks["real"], picks["holdout"]), overall,
                              min_support=min_support, min_gap=min_gap, alpha=alpha,
                              confidence=confidence)
    return SecretFigures(secret=secret, regression=regression, figures=overall, groups=by_group)
