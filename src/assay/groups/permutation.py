"""One gap test (`permutation_test`): standardised group-mean differences of any per-row
statistic, max-T adjusted within each grouping, every grouping and column from one
shared set of permutations and one matrix product."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from assay._validation import (
    MAX_RESAMPLES,
    DataError,
    InvalidParameterError,
    check_option,
    check_scalar,
)
from assay.groups.index import GroupIndex, Grouping, _intersect
from assay.groups.policy import DIRECTIONS

# Up to this many rows every permutation is drawn uniformly from all of them; above it,
# from the cyclic group of a random relabelling (see `permutation_test`): as exact, and
# P window copies instead of P shuffles (which alone cost more than the test on Adult).
FULL_PERMUTATION_ROWS = 5000
# Memory bound (bytes) of one chunk of permuted values.
_CHUNK_BYTES = 200 * 2**20
# Near-ties between the observed statistic (float64) and a permuted one (float32 sums of
# standardised values, error ~1e-5 in z) count as ties: the conservative side.
_TIE_TOL = 1e-4


@dataclass
class GroupTest:
    """Permutation test of the group means of a per-row statistic, for one grouping.

    Attributes
    ----------
    grouping_key : str
        Key of the grouping (``"sex & race"``).
    statistic : ndarray of shape (n_groups, m)
        Standardised mean difference z (NaN for unsupported groups).
    difference : ndarray of shape (n_groups, m)
        Group mean minus the mean of all rows of supported groups (NaN for groups
        without rows).
    p_value : ndarray of shape (n_groups, m)
        Single-step max-T p-values, family-wise over the groups of the grouping, per
        column (1.0 for unsupported groups).
    p_unadjusted : ndarray of shape (n_groups, m)
        The same permutations, each group on its own (1.0 for unsupported groups).
    labels : list of str
        `group_label` of every group.
    support : ndarray of int64, shape (n_groups,)
        Rows of each group that entered the test (finite values).
    supported : ndarray of bool, shape (n_groups,)
        ``support >= min_support``.
    n_permutations : int
    direction : str
    """

    grouping_key: str
    statistic: np.ndarray
    difference: np.ndarray
    p_value: np.ndarray
    p_unadjusted: np.ndarray | None = None
    labels: list[str] = field(default_factory=list)
    support: np.ndarray | None = None
    supported: np.ndarray | None = None
    n_permutations: int = 0
    direction: str = "greater"

    def to_frame(self, column: int = 0) -> pd.DataFrame:
        """One column of the test as a table indexed by group label."""
        return pd.DataFrame({
            "difference": self.difference[:, column], "statistic": self.statistic[:, column],
            "p_value": self.p_value[:, column],
            "p_unadjusted": (self.p_unadjusted[:, column] if self.p_unadjusted is not None
                             else np.nan),
            "n": self.support, "supported": self.supported,
        }, index=pd.Index(self.labels, name="group"))


def _cells(codes: list[np.ndarray], sizes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Finest partition of several groupings: row cell codes (n,) and, per cell, each
    grouping's group code (C, H)."""
    if len(codes) == 1:
        return codes[0], np.arange(sizes[0])[:, None]
    return _intersect(codes, sizes)


def _member_matrix(codes: list[np.ndarray], sizes: list[int]
                   ) -> tuple[np.ndarray, np.ndarray | None]:
    """0/1 float32 indicator (n, K) of the rows' cells, and the 0/1 map (K, sum(sizes))
    from cells to the groups of every grouping (None when K is the groups themselves).

    The finest cells (e.g. sex x race: 10) are fewer than the groups of all groupings
    (sex, race, sex & race: 17), so the one large product has fewer columns.
    """
    n = codes[0].shape[0]
    offsets = np.concatenate([[0], np.cumsum(sizes)])[:-1]
    total = int(np.sum(sizes))
    cell_codes, cell_groups = _cells(codes, sizes)
    n_cells = cell_groups.shape[0]
    if n_cells <= total:
        member = np.zeros((n, n_cells), dtype=np.float32)
        member[np.arange(n), cell_codes] = 1
        gather = np.zeros((n_cells, total))
        gather[np.arange(n_cells)[:, None], offsets[None, :] + cell_groups] = 1
        return member, gather
    member = np.zeros((n, total), dtype=np.float32)
    member[np.arange(n)[:, None], offsets[None, :] + np.stack(codes, axis=1)] = 1
    return member, None


def _permuted_sums(slots: np.ndarray, member: np.ndarray, shifts: np.ndarray | None,
                   perms: np.ndarray | None) -> np.ndarray:
    """Column sums of permuted values per permutation: (P, K, m) float64.

    `slots` (m, n) float32 values in slot order and `member` (n, K) the slots' cells.
    Either `shifts` (P,): slot i receives the value of slot (i + shift) % n, one
    contiguous window of the doubled column; or `perms` (P, n): slot i receives the value
    of slot perms[p, i].
    """
    m, n = slots.shape
    if shifts is not None:
        n_perm = len(shifts)
    elif perms is not None:
        n_perm = perms.shape[0]
    else:
        raise ValueError("shifts or perms must be given")
    if shifts is not None:
        doubled = np.concatenate([slots, slots[:, :-1]], axis=1)
        windows = [sliding_window_view(doubled[j], n) for j in range(m)]  # views (n, n)
    out = np.empty((n_perm, member.shape[1], m))
    chunk = max(1, _CHUNK_BYTES // (4 * n))
    for start in range(0, n_perm, chunk):  # bounded memory, not a loop per permutation
        part = slice(start, min(start + chunk, n_perm))
        for j in range(m):  # per value column: (c, n) permuted copies @ (n, K)
            block = (windows[j][shifts[part]] if shifts is not None
                     else slots[j][cast(np.ndarray, perms)[part]])
            out[part, :, j] = block @ member
    return out


def permutation_test(values, index: GroupIndex, *, min_support: int = 1,
                     n_permutations: int = 200, direction: str = "greater",
                     random_state=0) -> dict[str, GroupTest]:
    """Permutation test of the group means of a per-row statistic, for every grouping.

    For each group g of a grouping, the statistic is the standardised mean difference

        z_g = (mean_g - mean_all) / sqrt(var_all / n_g * (N - n_g) / (N - 1)),

    over the N rows of the grouping's supported groups (``var_all`` with ddof=0: this is
    the exact permutation variance of a group mean, so large and small groups are on one
    scale). Null hypothesis: group labels are exchangeable among those rows. p-values are
    single-step max-T over the supported groups of one grouping (family-wise error
    controlled within the grouping), per column, in the given direction, computed as
    ``(1 + #{permutations with max >= observed}) / (1 + P)`` (the observed arrangement
    counts, so never 0).

    Permutations. One random set serves every grouping. Up to `FULL_PERMUTATION_ROWS`
    rows (while the P permutations fit in 200 MiB) they are P independent uniform
    permutations. Above, they are P uniform random elements of a permutation group: the
    cyclic shifts of the rows laid out in one uniformly random order. Random elements of
    a group, with the identity counted, give an exact test (Hemerik & Goeman 2018,
    "Exact testing with random permutations", TEST 27:811), and the group has N
    elements, far more than P. The permuted values of a shift are one contiguous window
    of the relabelled column, so the P permutations cost P memory copies instead of P
    random shuffles and gathers (on Adult the shuffles alone take longer than this whole
    test). Group sums of all permutations and groupings come from one matrix product
    with the 0/1 indicator of the finest cells (the intersection of the groupings),
    then summed up to each grouping's groups. A grouping whose unsupported groups leave
    rows out is tested among its own rows, with the shared permutations restricted to
    them (still uniform on them).

    Parameters
    ----------
    values : array-like of shape (n_rows,) or (n_rows, m)
        Per-row statistic (loss, attack score, error indicator, ...); m columns are tested
        at once. Rows with a NaN in any column are left out of the test.
    index : GroupIndex
        Groupings of the rows (`GroupIndex.from_frame`).
    min_support : int, default=1
        Groups with fewer (non-NaN) rows are not tested: statistic NaN, p-value 1.0, and
        their rows are left out of their grouping's test.
    n_permutations : int, default=200
        P; 0 skips the test (p-values 1.0).
    direction : {"greater", "less", "both"}, default="greater"
        Alternative: group mean above ("greater"), below ("less") or away from ("both")
        the mean of all rows.
    random_state : int, Generator or None, default=0

    Returns
    -------
    dict of str to GroupTest
        By grouping key, in the index's order. Arrays are (n_groups, m); m=1 for 1-D
        `values`.

    Raises
    ------
    DataError
        `values` of the wrong length or shape, or with infinite entries.
    InvalidParameterError
        Bad `min_support`, `n_permutations`, `direction`, or `index` not a GroupIndex.

    Examples
    --------
    A group whose mean is one standard deviation higher: the smallest p-value that 99
    permutations can give, 1 / (1 + 99).

    >>> import numpy as np
    >>> import pandas as pd
    >>> from assay.groups import GroupIndex, permutation_test
    >>> sex = pd.Series(np.repeat(["F", "M"], 100), name="sex")
    >>> values = np.random.default_rng(0).normal(size=200) + (sex == "F").to_numpy()
    >>> test = permutation_test(values, GroupIndex.from_frame(sex), n_permutations=99)
    >>> test["sex"].p_value.ravel().tolist()
    [0.01, 1.0]
    >>> bool(np.isclose(test["sex"].difference[0, 0], values[:100].mean() - values.mean()))
    True
    """
    if not isinstance(index, GroupIndex):
        raise InvalidParameterError(
            f"index must be a GroupIndex. Got {type(index).__name__}.")
    min_support = check_scalar(min_support, "min_support", kind=int, low=1)
    n_perm = check_scalar(n_permutations, "n_permutations", kind=int, low=0, high=MAX_RESAMPLES)
    check_option(direction, "direction", DIRECTIONS)
    try:
        vals = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError("values must be numeric. Got a non-numeric array.") from None
    if vals.ndim == 1:
        vals = vals[:, None]
    if vals.ndim != 2 or vals.shape[0] != index.n_rows:
        raise DataError(f"values must have shape (n_rows,) or (n_rows, m) with n_rows = "
                        f"{index.n_rows}. Got shape {np.shape(values)}.")
    if np.isinf(vals).any():
        raise DataError(f"values must be finite or NaN. Got {int(np.isinf(vals).sum())} "
                        "infinite entries.")
    columns = np.ascontiguousarray(vals.T)  # (m, n_rows): column-wise work is contiguous
    valid = ~np.isnan(columns).any(axis=0)
    columns = columns[:, valid] if not valid.all() else columns
    n_valid = columns.shape[1]

    # The one shared set of permutations, drawn on the valid rows.
    rng = np.random.default_rng(random_state)
    order = rng.permutation(n_valid)
    unit_shifts = rng.random(n_perm)
    small = n_valid <= FULL_PERMUTATION_ROWS and 8 * n_perm * n_valid <= _CHUNK_BYTES
    full = (rng.permuted(np.tile(np.arange(n_valid), (n_perm, 1)), axis=1)
            if small and n_perm else None)

    # Per grouping (a handful; never a loop over rows or groups): codes of the valid
    # rows, support, supported groups and the rows they cover.
    per = []
    for g in index.groupings:
        codes = g.codes[valid] if n_valid < index.n_rows else g.codes
        support = np.bincount(codes, minlength=g.n_groups).astype(np.int64)
        ok = support >= min_support
        per.append((codes, support, ok, ok[codes]))
    # Groupings that test the same rows share one product (usually all of them).
    buckets: dict[bytes, list[int]] = {}
    for h, item in enumerate(per):
        buckets.setdefault(np.packbits(item[3]).tobytes(), []).append(h)

    results: dict[str, GroupTest] = {}
    for members in buckets.values():
        rows = per[members[0]][3]
        n = int(rows.sum())
        x = columns[:, rows] if n < n_valid else columns
        reference = x.mean(axis=1) if n else np.full(columns.shape[0], np.nan)
        centred = x - reference[:, None]
        sd = centred.std(axis=1) if n else np.zeros(columns.shape[0])
        # Standardised so that float32 sums keep z to ~1e-5 (constant columns: 0).
        std = np.divide(centred, sd[:, None], out=np.zeros_like(centred),
                        where=sd[:, None] > 0)
        sub_codes = [per[h][0][rows] if n < n_valid else per[h][0] for h in members]
        sizes = [index.groupings[h].n_groups for h in members]
        sums = None
        if n_perm and n > 1:
            member, gather = _member_matrix(sub_codes, sizes)
            position = np.cumsum(rows) - 1  # valid row -> position among the bucket's rows
            if full is not None:
                perms = full if n == n_valid else position[full[rows[full]].reshape(n_perm, n)]
                sums = _permuted_sums(std.astype(np.float32), member, None, perms)
            else:
                b_order = order if n == n_valid else position[order[rows[order]]]
                shifts = np.minimum((unit_shifts * n).astype(np.int64), n - 1)
                sums = _permuted_sums(std[:, b_order].astype(np.float32), member[b_order],
                                      shifts, None)
            if gather is not None:
                sums = np.einsum("pcm,cg->pgm", sums, gather)
        start = 0
        for i, h in enumerate(members):
            g = index.groupings[h]
            codes, support, ok, _ = per[h]
            perm_sums = None if sums is None else sums[:, start:start + g.n_groups]
            start += g.n_groups
            results[g.key] = _group_result(g, columns, codes, support, ok, reference, std,
                                           sub_codes[i], n, n_perm, direction, perm_sums)
    return {g.key: results[g.key] for g in index.groupings}


def _group_result(g: Grouping, columns, codes, support, ok, reference, std, sub_codes, n,
                  n_perm, direction, perm_sums) -> GroupTest:
    m = columns.shape[0]
    # Observed figures in float64 from bincounts over all valid rows.
    totals = np.stack([np.bincount(codes, weights=columns[j], minlength=g.n_groups)
                       for j in range(m)], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        difference = totals / support[:, None] - reference[None, :]
    difference[support == 0] = np.nan

    # z_g = (sum of standardised values of g) / sqrt(n_g (N - n_g) / (N - 1)).
    scale = np.zeros(g.n_groups)
    if n > 1:
        spread = support * (n - support) / (n - 1)
        np.divide(1.0, np.sqrt(spread), out=scale, where=ok & (spread > 0))
    std_sums = np.stack([np.bincount(sub_codes, weights=std[j], minlength=g.n_groups)
                         for j in range(m)], axis=1)
    statistic = std_sums * scale[:, None]
    statistic[~ok] = np.nan
    p_value = np.ones((g.n_groups, m))
    p_unadjusted = np.ones((g.n_groups, m))
    if perm_sums is not None and ok.any():
        signed = {"greater": np.positive, "less": np.negative, "both": np.abs}[direction]
        observed = signed(statistic[ok])[None] - _TIE_TOL  # (1, G_ok, m)
        null = signed(perm_sums[:, ok] * scale[ok][None, :, None])  # (P, G_ok, m)
        peak = null.max(axis=1, keepdims=True)  # (P, 1, m): max-T over the groups
        p_value[ok] = (1 + (peak >= observed).sum(axis=0)) / (1 + n_perm)
        p_unadjusted[ok] = (1 + (null >= observed).sum(axis=0)) / (1 + n_perm)
    return GroupTest(grouping_key=g.key, statistic=statistic, difference=difference,
                     p_value=p_value, p_unadjusted=p_unadjusted, labels=list(g.labels),
                     support=support, supported=ok, n_permutations=n_perm,
                     direction=direction)


