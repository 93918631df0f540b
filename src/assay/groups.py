"""The group layer: every pillar disaggregates its figures through this one module.

Privacy, fairness and multiplicity all report per protected group and per intersection of
protected attributes. This module holds what they share, so that each figure is labelled,
supported and flagged the same way everywhere:

- **One label format** (`group_label`): ``"sex=Female & race=Black"``, unambiguous even
  when a value contains the separator (see `group_label` for the quoting rule).
- **One index of groups** (`GroupIndex`, `Grouping`): integer group codes per row for every
  single attribute and every intersection, built from integer codes (never row-wise
  string joins). Only observed combinations appear; groups are sorted by their values.
- **One minimum-support rule** (`Grouping.supported`): groups with fewer rows are kept and
  marked, never silently dropped.
- **One flagging rule** (`FlagRule`): a group is flagged when its difference from the
  reference is significant *and* at least a stated minimum in the harmful direction.
- **One gap test** (`permutation_test`): standardised group-mean differences of any
  per-row statistic, max-T adjusted within each grouping, every grouping and column from
  one shared set of permutations and one matrix product.
- **Rates per group** (`GroupFrame`): fairlearn-style selection rate, TPR, FPR, ... per
  group and intersection, each with a Wilson interval, from one bincount per grouping.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, cast

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from assay._stats import wilson_interval
from assay._validation import (
    MAX_RESAMPLES,
    DataError,
    InvalidParameterError,
    check_option,
    check_scalar,
)

__all__ = [
    "LABEL_SEP",
    "RATE_METRICS",
    "group_label",
    "parse_group_label",
    "Grouping",
    "GroupIndex",
    "as_group_index",
    "FlagRule",
    "GroupTest",
    "permutation_test",
    "FULL_PERMUTATION_ROWS",
    "GroupFrame",
]

LABEL_SEP = " & "

# Characters that would make a bare name or value ambiguous inside a label.
_SPECIAL = ("=", "&", '"', "\\")


def _label_part(text: str) -> str:
    """`text` bare when it cannot be misread, else as a JSON string (double-quoted)."""
    if (text == "" or text != text.strip() or not text.isprintable()
            or any(c in text for c in _SPECIAL)):
        return json.dumps(text, ensure_ascii=False)
    return text


def group_label(attributes: Sequence[str], values: Sequence[str]) -> str:
    """The one label format used in JSON, CLI and report.

    ``"sex=Female & race=Black"`` for an intersection, ``"sex=Female"`` for a single
    attribute.

    Quoting rule (keeps every label unambiguous and parseable by `parse_group_label`): a
    name or value is written bare unless it is empty, has leading or trailing whitespace,
    contains a non-printable character or any of ``= & " \\``; then it is written as a
    JSON string, e.g. ``'dept="R&D" & role="a=b"'``.

    Parameters
    ----------
    attributes : sequence of str
        Attribute (column) names, in order.
    values : sequence of str
        The group's value for each attribute.

    Returns
    -------
    str
    """
    if len(attributes) != len(values):
        raise InvalidParameterError(
            f"values must have one entry per attribute ({len(attributes)}). "
            f"Got {len(values)}.")
    return LABEL_SEP.join(f"{_label_part(str(a))}={_label_part(str(v))}"
                          for a, v in zip(attributes, values))


def _read_part(label: str, pos: int) -> tuple[str, int]:
    if label.startswith('"', pos):
        text, end = json.JSONDecoder().raw_decode(label, pos)
        return text, end
    end = pos
    while end < len(label) and label[end] not in "=&":
        end += 1
    if label[end - 1:end] == " " and label[end:end + 1] == "&":
        end -= 1  # the space belongs to the separator
    if end == pos:
        raise ValueError
    return label[pos:end], end


def parse_group_label(label: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Inverse of `group_label`: ``(attributes, values)`` of a label.

    Raises
    ------
    InvalidParameterError
        If `label` is not in the format written by `group_label`.
    """
    attributes, values = [], []
    pos = 0
    try:
        while True:
            name, pos = _read_part(label, pos)
            if not label.startswith("=", pos):
                raise ValueError
            value, pos = _read_part(label, pos + 1)
            attributes.append(name)
            values.append(value)
            if pos == len(label):
                break
            if not label.startswith(LABEL_SEP, pos):
                raise ValueError
            pos += len(LABEL_SEP)
    except (ValueError, IndexError):
        raise InvalidParameterError(
            f"label must be 'name=value' parts joined by {LABEL_SEP!r}. Got {label!r}."
        ) from None
    return tuple(attributes), tuple(values)


def _readonly(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class Grouping:
    """One attribute or one intersection of attributes.

    Attributes
    ----------
    attributes : tuple of str
        ``("sex",)`` or ``("sex", "race")``.
    codes : ndarray of int64, shape (n_rows,)
        Group index of every row, in ``0 .. n_groups - 1``.
    values : tuple of tuple of str
        Per group index, the attribute values (sorted order).
    sizes : ndarray of int64, shape (n_groups,)
        Rows per group (all positive: only observed groups appear).
    """

    attributes: tuple[str, ...]
    codes: np.ndarray
    values: tuple[tuple[str, ...], ...]
    sizes: np.ndarray

    @property
    def key(self) -> str:
        """The attributes joined by `LABEL_SEP`, e.g. ``"sex & race"``."""
        return LABEL_SEP.join(self.attributes)

    @cached_property
    def labels(self) -> list[str]:
        """`group_label` of every group, in group order."""
        return [group_label(self.attributes, v) for v in self.values]

    @property
    def n_groups(self) -> int:
        """Number of (observed) groups."""
        return len(self.values)

    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return int(self.codes.shape[0])

    def supported(self, min_support: int) -> np.ndarray:
        """Boolean mask (n_groups,): groups with at least `min_support` rows."""
        min_support = check_scalar(min_support, "min_support", kind=int, low=1)
        return self.sizes >= min_support

    def index(self) -> pd.MultiIndex:
        """MultiIndex of the group values, level names = attributes."""
        return pd.MultiIndex.from_tuples(list(self.values), names=list(self.attributes))

    def one_hot(self, dtype=np.float32) -> np.ndarray:
        """Dense indicator matrix (n_rows, n_groups) of the rows' groups."""
        out = np.zeros((self.n_rows, self.n_groups), dtype=dtype)
        out[np.arange(self.n_rows), self.codes] = 1
        return out

    def __repr__(self) -> str:
        return f"Grouping({self.key!r}, n_groups={self.n_groups}, n_rows={self.n_rows})"


def _column_codes(column: pd.Series, name: str) -> tuple[np.ndarray, list[str]]:
    """Integer codes (sorted by value) and the str value of each code of one column."""
    n_missing = int(column.isna().sum())
    if n_missing:
        raise DataError(f"groups column {name!r} must have no missing values. "
                        f"Got {n_missing} missing.")
    if isinstance(column.dtype, pd.CategoricalDtype):
        column = column.cat.remove_unused_categories()
        names = [str(c) for c in column.cat.categories]
        if len(set(names)) == len(names):  # declared order is the value order
            return column.cat.codes.to_numpy(dtype=np.int64), names
        column = column.astype(str)
    elif not (pd.api.types.is_numeric_dtype(column.dtype)
              or pd.api.types.is_bool_dtype(column.dtype)):
        column = column.astype(str)
    # Numbers sort as numbers; everything else by its str form.
    codes, uniques = pd.factorize(column, sort=True)
    names = [str(u) for u in uniques]
    if len(set(names)) != len(names):  # e.g. 1 and 1.0 in an object column
        codes, uniques = pd.factorize(column.astype(str), sort=True)
        names = list(uniques)
    return codes.astype(np.int64, copy=False), names


def _intersect(codes: list[np.ndarray], cards: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Group codes of the combinations present, and each group's per-attribute codes.

    Returns ``(row_codes (n,), group_parts (G, len(codes)))``; groups sorted
    lexicographically by the per-attribute codes.
    """
    n = codes[0].shape[0]
    space = 1
    for k in cards:
        space *= k
    if space < 2**62:
        flat = np.ravel_multi_index(tuple(codes), tuple(cards))
        if space <= max(4 * n, 1 << 16):
            present = np.bincount(flat, minlength=space) > 0
            observed = np.flatnonzero(present)
            lookup = np.cumsum(present) - 1
            row_codes = lookup[flat]
        else:
            observed, row_codes = np.unique(flat, return_inverse=True)
        parts = np.stack(np.unravel_index(observed, tuple(cards)), axis=1)
        return row_codes.astype(np.int64, copy=False), parts
    stacked = np.stack(codes, axis=1)
    parts, row_codes = np.unique(stacked, axis=0, return_inverse=True)
    return row_codes.reshape(-1).astype(np.int64, copy=False), parts


@dataclass(frozen=True, eq=False)
class GroupIndex:
    """Every single protected attribute, then every intersection, as `Grouping` s.

    Build it with `GroupIndex.from_frame`. Index it by key (``index["sex & race"]``) or by
    attributes (``index["sex", "race"]``, any order).

    Attributes
    ----------
    groupings : tuple of Grouping
        Single attributes first (column order), then intersections by size.
    n_rows : int
    """

    groupings: tuple[Grouping, ...]
    n_rows: int

    @classmethod
    def from_frame(cls, groups: pd.DataFrame | pd.Series,
                   max_intersection: int | None = None) -> GroupIndex:
        """Index the protected columns of a table.

        Parameters
        ----------
        groups : pandas.DataFrame of shape (n_rows, n_attributes) or Series
            Protected columns. Values are labelled by their str form; numeric columns
            sort numerically, categorical ones in their declared order, others as text.
        max_intersection : int or None, default=None
            Largest number of attributes intersected (1: single attributes only);
            None: all of them.

        Returns
        -------
        GroupIndex

        Raises
        ------
        InvalidParameterError
            `groups` not a DataFrame/Series, bad `max_intersection`.
        DataError
            No columns or rows, duplicate column names, names containing `LABEL_SEP`,
            missing values.
        """
        if isinstance(groups, pd.Series):
            groups = groups.to_frame(name="group" if groups.name is None else groups.name)
        if not isinstance(groups, pd.DataFrame):
            raise InvalidParameterError(
                f"groups must be a pandas DataFrame or Series. Got {type(groups).__name__}.")
        if groups.shape[1] == 0:
            raise DataError("groups must have at least one column. Got 0 columns.")
        if groups.shape[0] == 0:
            raise DataError("groups must have at least one row. Got 0 rows.")
        names = [str(c) for c in groups.columns]
        if len(set(names)) != len(names):
            raise DataError(f"groups columns must have distinct names. Got {names}.")
        bad = [c for c in names if LABEL_SEP in c]
        if bad:
            raise DataError(f"groups column names must not contain {LABEL_SEP!r}. Got {bad}.")
        n_attr = len(names)
        if max_intersection is None:
            max_intersection = n_attr
        max_intersection = min(
            check_scalar(max_intersection, "max_intersection", kind=int, low=1), n_attr)

        columns = [_column_codes(groups.iloc[:, j], names[j]) for j in range(n_attr)]
        codes = [c for c, _ in columns]
        uniques = [u for _, u in columns]
        groupings = []
        for size in range(1, max_intersection + 1):
            for combo in itertools.combinations(range(n_attr), size):
                if size == 1:
                    j = combo[0]
                    row_codes = codes[j]
                    parts = np.arange(len(uniques[j]))[:, None]
                else:
                    row_codes, parts = _intersect([codes[j] for j in combo],
                                                  [len(uniques[j]) for j in combo])
                values = tuple(zip(*(np.asarray(uniques[j], dtype=object)[parts[:, i]]
                                     for i, j in enumerate(combo))))
                sizes = np.bincount(row_codes, minlength=parts.shape[0]).astype(np.int64)
                groupings.append(Grouping(
                    attributes=tuple(names[j] for j in combo),
                    codes=_readonly(np.ascontiguousarray(row_codes, dtype=np.int64)),
                    values=tuple(tuple(str(x) for x in v) for v in values),
                    sizes=_readonly(sizes)))
        return cls(groupings=tuple(groupings), n_rows=int(groups.shape[0]))

    @cached_property
    def _by_key(self) -> dict[str, Grouping]:
        return {g.key: g for g in self.groupings}

    @property
    def attributes(self) -> tuple[str, ...]:
        """The single attributes, in column order."""
        return tuple(g.attributes[0] for g in self.groupings if len(g.attributes) == 1)

    @property
    def keys(self) -> list[str]:
        """Keys of every grouping, in order."""
        return [g.key for g in self.groupings]

    def _resolve(self, key: Any) -> str | None:
        if isinstance(key, str):
            return key if key in self._by_key else None
        if isinstance(key, (tuple, list)) and all(isinstance(a, str) for a in key):
            order = {a: i for i, a in enumerate(self.attributes)}
            if len(set(key)) != len(key) or any(a not in order for a in key):
                return None
            joined = LABEL_SEP.join(sorted(key, key=order.__getitem__))
            return joined if joined in self._by_key else None
        return None

    def __getitem__(self, key: str | tuple[str, ...]) -> Grouping:
        resolved = self._resolve(key)
        if resolved is None:
            keys = ", ".join(repr(k) for k in self._by_key)
            raise InvalidParameterError(f"grouping must be one of {keys}. Got {key!r}.")
        return self._by_key[resolved]

    def __contains__(self, key: object) -> bool:
        return self._resolve(key) is not None

    def __iter__(self):
        return iter(self.groupings)

    def __len__(self) -> int:
        return len(self.groupings)

    @property
    def n_columns(self) -> int:
        """Total number of groups over all groupings (columns of `one_hot`)."""
        return int(sum(g.n_groups for g in self.groupings))

    def __repr__(self) -> str:
        return f"GroupIndex(keys={self.keys}, n_rows={self.n_rows})"


def as_group_index(groups: GroupIndex | pd.DataFrame | pd.Series,
                   max_intersection: int | None = None) -> GroupIndex:
    """`groups` itself if it is a `GroupIndex`, else `GroupIndex.from_frame(groups, ...)`."""
    if isinstance(groups, GroupIndex):
        if max_intersection is not None:
            raise InvalidParameterError(
                "max_intersection must be None when groups is a GroupIndex (it is fixed "
                f"when the index is built). Got {max_intersection!r}.")
        return groups
    return GroupIndex.from_frame(groups, max_intersection)


# --------------------------------------------------------------------------- flagging

DIRECTIONS = ("greater", "less", "both")

_DIRECTION_WORDS = {"greater": "above", "less": "below", "both": "away from"}


@dataclass(frozen=True)
class FlagRule:
    """When a group is flagged: the one rule of every pillar.

    A group is flagged when its difference from the reference is significant at `alpha`
    AND at least `min_difference` in the harmful direction ("significant is not
    important": a tiny gap in a huge group is significant, a large gap in a tiny group
    may be noise; neither alone is a finding).

    Parameters
    ----------
    alpha : float, default=0.05
        Significance level, in (0, 1); flagged when ``p_value < alpha``.
    min_difference : float, default=0.05
        Smallest difference that matters, >= 0, in the units of the figure.
    direction : {"greater", "less", "both"}, default="greater"
        Harmful direction: "greater" when higher is worse (attack success, error rate),
        "less" when lower is worse (accuracy, selection rate), "both" for either.
    """

    alpha: float = 0.05
    min_difference: float = 0.05
    direction: str = "greater"

    def __post_init__(self) -> None:
        object.__setattr__(self, "alpha", check_scalar(
            self.alpha, "alpha", low=0.0, high=1.0, low_open=True, high_open=True))
        object.__setattr__(self, "min_difference", check_scalar(
            self.min_difference, "min_difference", low=0.0))
        check_option(self.direction, "direction", DIRECTIONS)

    def harmful(self, difference):
        """The difference signed so that positive is harmful (``|d|`` for "both")."""
        d = np.asarray(difference, dtype=float)
        return {"greater": d, "less": -d, "both": np.abs(d)}[self.direction]

    def flags(self, difference, p_value):
        """Whether a group (or each group, for arrays) is flagged.

        Parameters
        ----------
        difference : float or array-like
            Group figure minus the reference figure.
        p_value : float or array-like
            p-value of that difference (broadcast with `difference`).

        Returns
        -------
        bool or ndarray of bool
            ``p_value < alpha`` and the harmful part of `difference` is positive and at
            least `min_difference`. NaN anywhere gives False.
        """
        harm = self.harmful(difference)
        p = np.asarray(p_value, dtype=float)
        with np.errstate(invalid="ignore"):
            out = (p < self.alpha) & (harm > 0) & (harm >= self.min_difference)
        return bool(out) if out.ndim == 0 else out

    def describe(self, reference: str = "the overall value") -> str:
        """The rule in plain words, e.g. ``"p < 0.05 and at least 0.05 above the overall
        value"``."""
        return (f"p < {self.alpha:g} and at least {self.min_difference:g} "
                f"{_DIRECTION_WORDS[self.direction]} {reference}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-clean form, read back by `from_dict`."""
        return {"alpha": self.alpha, "min_difference": self.min_difference,
                "direction": self.direction}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FlagRule:
        """Rule from `to_dict` output (missing keys take their defaults)."""
        if not isinstance(d, Mapping):
            raise InvalidParameterError(
                f"flag rule must be a mapping. Got {type(d).__name__}.")
        unknown = sorted(set(d) - {"alpha", "min_difference", "direction"})
        if unknown:
            raise InvalidParameterError(
                "flag rule keys must be among 'alpha', 'min_difference', 'direction'. "
                f"Got {unknown}.")
        return cls(**dict(d))


# --------------------------------------------------------------------------- permutation test

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


# --------------------------------------------------------------------------- GroupFrame

RATE_METRICS = ("selection_rate", "tpr", "fpr", "fnr", "ppv", "accuracy")

# Every rate is a count ratio over the confusion cells (tn, fp, fn, tp):
# name -> (numerator cells, denominator cells).
_TN, _FP, _FN, _TP = 0, 1, 2, 3
_RATES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "selection_rate": ((_FP, _TP), (_TN, _FP, _FN, _TP)),
    "tpr": ((_TP,), (_FN, _TP)),
    "fpr": ((_FP,), (_TN, _FP)),
    "fnr": ((_FN,), (_FN, _TP)),
    "tnr": ((_TN,), (_TN, _FP)),
    "ppv": ((_TP,), (_FP, _TP)),
    "npv": ((_TN,), (_TN, _FN)),
    "accuracy": ((_TN, _TP), (_TN, _FP, _FN, _TP)),
    "error_rate": ((_FP, _FN), (_TN, _FP, _FN, _TP)),
    "base_rate": ((_FN, _TP), (_TN, _FP, _FN, _TP)),
}


def _binary(y, name: str, n_rows: int) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1 or arr.shape[0] != n_rows:
        raise DataError(f"{name} must be a 1-D array of {n_rows} entries (one per row of "
                        f"groups). Got shape {arr.shape}.")
    if arr.dtype == bool:
        return arr
    try:
        numeric = arr.astype(np.float64)
    except (TypeError, ValueError):
        numeric = None
    if numeric is None or not np.isin(numeric, (0.0, 1.0)).all():
        seen = pd.unique(arr[:50].ravel()) if arr.size else arr
        raise DataError(f"{name} must hold binary labels 0/1 (1 = positive). "
                        f"Got values such as {list(seen[:5])}.")
    return numeric == 1.0


class GroupFrame:
    """Classification rates per protected group and intersection, with intervals.

    The fairlearn ``MetricFrame`` shape for the rates every fairness audit uses, computed
    for every grouping of a `GroupIndex` at once. Each metric is a ratio of confusion
    counts (e.g. TPR = TP / (TP + FN)), so every group's figure carries a Wilson
    interval, and all counts come from one ``np.bincount`` per grouping.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_rows,)
        Binary labels and predictions, 0/1 or bool (1 = the positive outcome).
    groups : DataFrame, Series or GroupIndex
        Protected columns (indexed with `GroupIndex.from_frame`) or a ready index.
    metrics : sequence of str, default=RATE_METRICS
        Among "selection_rate", "tpr", "fpr", "fnr", "tnr", "ppv", "npv", "accuracy",
        "error_rate", "base_rate".
    min_support : int, default=1
        Groups with fewer rows are kept and marked ``supported=False``; differences and
        ratios use supported groups only.
    max_intersection : int or None, default=None
        Passed to `GroupIndex.from_frame` (must be None with a GroupIndex).
    confidence : float, default=0.95
        Two-sided level of the Wilson intervals.

    Attributes
    ----------
    index : GroupIndex
    metrics : tuple of str
    overall : DataFrame
        Index: metrics; columns ``value, ci_low, ci_high, n`` (n: the denominator count).
    counts : dict of str to ndarray
        Per grouping key, confusion counts (n_groups, 4) in the order tn, fp, fn, tp.
    """

    def __init__(self, y_true, y_pred, groups, *, metrics: Sequence[str] = RATE_METRICS,
                 min_support: int = 1, max_intersection: int | None = None,
                 confidence: float = 0.95) -> None:
        self.index = as_group_index(groups, max_intersection)
        if isinstance(metrics, str):
            metrics = (metrics,)
        metrics = tuple(metrics)
        if not metrics:
            raise InvalidParameterError("metrics must name at least one metric. Got none.")
        for name in metrics:
            check_option(name, "metric", _RATES)
        if len(set(metrics)) != len(metrics):
            raise InvalidParameterError(f"metrics must be distinct. Got {list(metrics)}.")
        self.metrics = metrics
        self.min_support = check_scalar(min_support, "min_support", kind=int, low=1)
        self.confidence = check_scalar(confidence, "confidence", low=0.0, high=1.0,
                                       low_open=True, high_open=True)
        n = self.index.n_rows
        truth = _binary(y_true, "y_true", n)
        pred = _binary(y_pred, "y_pred", n)
        cell = 2 * truth.astype(np.int64) + pred.astype(np.int64)  # tn fp fn tp = 0 1 2 3
        self.counts = {
            g.key: np.bincount(g.codes * 4 + cell, minlength=4 * g.n_groups).reshape(-1, 4)
            for g in self.index.groupings}
        self._overall_counts = np.bincount(cell, minlength=4)
        value, low, high, den = self._rates(self._overall_counts[None, :])
        self.overall = pd.DataFrame({"value": value[0], "ci_low": low[0], "ci_high": high[0],
                                     "n": den[0]}, index=pd.Index(metrics, name="metric"))

    def _rates(self, counts: np.ndarray):
        """value, ci_low, ci_high, denominator: each (G, n_metrics), from (G, 4) counts."""
        num = np.stack([counts[:, list(_RATES[m][0])].sum(axis=1) for m in self.metrics], 1)
        den = np.stack([counts[:, list(_RATES[m][1])].sum(axis=1) for m in self.metrics], 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            value = np.where(den > 0, num / np.maximum(den, 1), np.nan)
        low, high = wilson_interval(num, den, self.confidence)
        return value, low, high, den.astype(np.int64)

    def _grouping(self, attributes) -> Grouping:
        if attributes is None:
            return self.index.groupings[0]
        if isinstance(attributes, list):
            attributes = tuple(attributes)
        return self.index[attributes]

    def by_group(self, attributes: str | Sequence[str] | None = None) -> pd.DataFrame:
        """Per-group metric values for one grouping.

        Parameters
        ----------
        attributes : str, sequence of str or None
            The grouping (key or attributes); default the first single attribute.

        Returns
        -------
        DataFrame
            Indexed by the attribute values (level names = attributes), one column per
            metric: the shape of fairlearn's ``MetricFrame(...).by_group`` for
            ``sensitive_features`` = those columns (a plain Index for one attribute, a
            MultiIndex for several). Unsupported groups are included; see `table`.
        """
        g = self._grouping(attributes)
        value = self._rates(self.counts[g.key])[0]
        index = g.index()
        if len(g.attributes) == 1:
            index = index.get_level_values(0)
        return pd.DataFrame(value, index=index, columns=list(self.metrics))

    def table(self) -> pd.DataFrame:
        """Long table over every grouping.

        Returns
        -------
        DataFrame
            MultiIndex (``grouping`` key, ``group`` label); per metric the columns
            ``<metric>``, ``<metric>_ci_low``, ``<metric>_ci_high``; then ``n`` (rows of
            the group) and ``supported``.
        """
        frames = []
        for g in self.index.groupings:
            value, low, high, _ = self._rates(self.counts[g.key])
            data: dict[str, Any] = {}
            for j, m in enumerate(self.metrics):
                data[m] = value[:, j]
                data[f"{m}_ci_low"] = low[:, j]
                data[f"{m}_ci_high"] = high[:, j]
            data["n"] = g.sizes
            data["supported"] = g.supported(self.min_support)
            frames.append(pd.DataFrame(data, index=pd.MultiIndex.from_arrays(
                [[g.key] * g.n_groups, g.labels], names=["grouping", "group"])))
        return pd.concat(frames)

    def _supported_values(self, g: Grouping) -> np.ndarray:
        value = self._rates(self.counts[g.key])[0]
        return value[g.supported(self.min_support)]

    def _summary(self, method: str, kind: str) -> pd.DataFrame:
        check_option(method, "method", ("between_groups", "to_overall"))
        overall = self.overall["value"].to_numpy()
        rows = []
        for g in self.index.groupings:
            v = self._supported_values(g)  # (G_supported, n_metrics)
            with np.errstate(invalid="ignore", divide="ignore"):
                if method == "between_groups":
                    enough = np.sum(~np.isnan(v), axis=0) >= 2
                    top = _nan_reduce(np.nanmax, v)
                    bottom = _nan_reduce(np.nanmin, v)
                    out = top - bottom if kind == "difference" else bottom / top
                    out = np.where(enough, out, np.nan)
                elif kind == "difference":
                    out = _nan_reduce(np.nanmax, np.abs(v - overall))
                else:
                    out = _nan_reduce(np.nanmin, np.minimum(v / overall, overall / v))
            rows.append(out)
        return pd.DataFrame(np.array(rows, dtype=float).reshape(len(rows), -1),
                            index=pd.Index(self.index.keys, name="grouping"),
                            columns=list(self.metrics))

    def difference(self, method: str = "between_groups") -> pd.DataFrame:
        """Largest gap per grouping and metric, over supported groups.

        Parameters
        ----------
        method : {"between_groups", "to_overall"}
            "between_groups": max minus min of the group values (NaN with fewer than two
            supported groups); "to_overall": largest ``|group - overall|`` (fairlearn's
            definitions).

        Returns
        -------
        DataFrame
            Index: grouping keys; columns: metrics.
        """
        return self._summary(method, "difference")

    def ratio(self, method: str = "between_groups") -> pd.DataFrame:
        """Smallest ratio per grouping and metric, over supported groups.

        "between_groups": min / max of the group values; "to_overall": smallest of
        ``min(group / overall, overall / group)`` (fairlearn's definitions).
        """
        return self._summary(method, "ratio")

    def __repr__(self) -> str:
        return (f"GroupFrame(metrics={list(self.metrics)}, groupings={self.index.keys}, "
                f"n_rows={self.index.n_rows})")


def _nan_reduce(func, v: np.ndarray) -> np.ndarray:
    """`func` (nanmax/nanmin) over axis 0 with all-NaN columns giving NaN quietly."""
    if v.shape[0] == 0:
        return np.full(v.shape[1:], np.nan)
    all_nan = np.isnan(v).all(axis=0)
    filled = np.where(all_nan[None, :], 0.0, v)
    return np.where(all_nan, np.nan, func(filled, axis=0))
