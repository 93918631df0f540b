"""One index of groups (`GroupIndex`, `Grouping`): integer group codes per row for every
single attribute and every intersection, built from integer codes (never row-wise
string joins), with one minimum-support rule (`Grouping.supported`)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from assay._validation import (
    DataError,
    InvalidParameterError,
    check_scalar,
)
from assay.groups.labels import LABEL_SEP, group_label


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

        Examples
        --------
        >>> import pandas as pd
        >>> from assay.groups import GroupIndex
        >>> index = GroupIndex.from_frame(pd.DataFrame(
        ...     {"sex": ["F", "M", "F", "M"], "age": ["old", "young", "young", "old"]}))
        >>> index.keys
        ['sex', 'age', 'sex & age']
        >>> both = index["age", "sex"]  # by attributes, in any order
        >>> both.key, both.labels[0], both.sizes.tolist()
        ('sex & age', 'sex=F & age=old', [1, 1, 1, 1])
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


