"""One encoding of the real, synthetic and holdout tables for every synthetic-data attack.

Distances are anonymeter's mixed-type (Gower-like) distance: the L1 norm over numeric
columns divided by their range (so any two values of a column are at most 1 apart), plus
1 for every categorical column whose values differ. Encoding each categorical column as
a one-hot block scaled by 1/2 makes that distance exactly the L1 (manhattan) distance of
the encoded rows: `nearest` searches it in blocks of queries, the one-hot mismatches from
one matrix product (or, for any L1 table, with scikit-learn's `NearestNeighbors`).

Categorical columns also get integer codes shared by all three tables (the predicates of
the singling-out attack compare them); a missing value is a category of its own.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from assay._validation import DataError

__all__ = ["Tables", "encode_tables", "nearest"]

#: Numeric columns with at most this many distinct values are still compared by value in
#: the inference attack (a count, a rating); above it a guess within 5 % is correct.
MAX_DISCRETE_VALUES = 20


@dataclass
class Tables:
    """The three tables on one encoding.

    Attributes
    ----------
    columns : list of str
        Attack columns, in the real table's order.
    numeric : ndarray of bool, shape (n_columns,)
        Which columns are numeric (compared by order and distance).
    values : dict of str to ndarray of shape (n_rows, n_columns)
        ``"real"``, ``"synth"``, ``"holdout"``: numeric columns as float (NaN where
        missing), categorical columns as their shared integer codes.
    categories : list
        For each column, its categories (codes index them); None for numeric ones.
    scale : ndarray of shape (n_columns,)
        Range of each numeric column over the three tables (1 where constant).
    """

    columns: list[str]
    numeric: np.ndarray
    values: dict[str, np.ndarray]
    categories: list[list[str] | None]
    scale: np.ndarray

    def index(self, names: Sequence[str]) -> np.ndarray:
        """Positions of ``names`` among the columns."""
        where = {c: i for i, c in enumerate(self.columns)}
        return np.array([where[n] for n in names], dtype=int)

    def numeric_dims(self, cols: np.ndarray | None = None) -> np.ndarray:
        """Which dimensions of `features` are numeric (the others are one-hot halves)."""
        cols = np.arange(len(self.columns)) if cols is None else np.asarray(cols)
        return np.concatenate([[True] if self.numeric[j] else
                               np.zeros(len(self.categories[j] or ()), dtype=bool)
                               for j in cols]
                              ) if len(cols) else np.zeros(0, dtype=bool)

    def features(self, table: str, cols: np.ndarray | None = None) -> np.ndarray:
        """Rows of ``table`` encoded so that L1 distance is the mixed-type distance.

        Parameters
        ----------
        table : {"real", "synth", "holdout"}
        cols : ndarray of int, optional
            Columns used (default: all).
        """
        cols = np.arange(len(self.columns)) if cols is None else np.asarray(cols)
        v = self.values[table]
        blocks = []
        for j in cols:
            if self.numeric[j]:
                x = v[:, j] / self.scale[j]
                # Missing numbers sit one range below the smallest value: at least 1 from
                # every observed value, 0 from another missing one.
                low = np.nanmin(np.concatenate([self.values[t][:, j] for t in self.values]))
                low = (low if np.isfinite(low) else 0.0) / self.scale[j] - 1.0
                blocks.append(np.where(np.isnan(x), low, x)[:, None])
            else:
                k = len(self.categories[j] or ())  # a text column always has its list
                onehot = np.zeros((v.shape[0], k), dtype=np.float64)
                onehot[np.arange(v.shape[0]), v[:, j].astype(int)] = 0.5
                blocks.append(onehot)
        return np.hstack(blocks) if blocks else np.zeros((v.shape[0], 0))


def _is_numeric(series: pd.Series) -> bool:
    return (pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series))


def encode_tables(real: pd.DataFrame, synth: pd.DataFrame, holdout: pd.DataFrame,
                  columns: Sequence[str] | None = None) -> Tables:
    """Encode the three tables on the columns they share with the real one.

    Parameters
    ----------
    real, synth, holdout : pandas.DataFrame
        The generator's training rows, the release and rows it never saw.
    columns : sequence of str, optional
        Attack columns (default: every column of ``real``).

    Raises
    ------
    DataError
        A column missing from a table, or numeric in one table and not in another.
    """
    columns = list(real.columns if columns is None else columns)
    frames = {"real": real, "synth": synth, "holdout": holdout}
    for name, frame in frames.items():
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise DataError(f"{name} table must have the columns {', '.join(map(str, missing))}"
                            f" (as the real table). Got columns "
                            f"{', '.join(map(str, frame.columns))}.")
    is_numeric: list[bool] = []
    for c in columns:
        kinds = {name: _is_numeric(frame[c]) for name, frame in frames.items()}
        if len(set(kinds.values())) > 1:
            # A numeric column read as text in one table (a stray "?") would compare
            # nothing; the user must fix the table rather than get silent zeros.
            raise DataError(f"column {c} must be numeric in every table or in none. Got "
                            + ", ".join(f"{n}: {'numeric' if k else 'text'}"
                                        for n, k in kinds.items()) + ".")
        is_numeric.append(kinds["real"])
    numeric = np.array(is_numeric, dtype=bool)
    values = {name: np.empty((len(frame), len(columns)), dtype=np.float64)
              for name, frame in frames.items()}
    categories: list[list[str] | None] = []
    scale = np.ones(len(columns))
    for j, c in enumerate(columns):
        if numeric[j]:
            for name, frame in frames.items():
                values[name][:, j] = pd.to_numeric(frame[c], errors="coerce").to_numpy(float)
            allv = np.concatenate([values[n][:, j] for n in frames])
            span = np.nanmax(allv) - np.nanmin(allv) if np.isfinite(allv).any() else 0.0
            scale[j] = span if span > 0 else 1.0
            categories.append(None)
        else:
            # One factorisation of the three columns together: codes shared by the tables.
            joined = pd.concat([frame[c] for frame in frames.values()], ignore_index=True)
            text = joined.astype(str).where(joined.notna(), None)
            cats = sorted(text.dropna().unique().tolist())
            codes = pd.Categorical(text, categories=cats).codes.astype(np.float64)
            if (codes < 0).any():  # missing: a category of its own, last
                codes[codes < 0] = len(cats)
                cats.append(None)
            start = 0
            for name, frame in frames.items():
                values[name][:, j] = codes[start:start + len(frame)]
                start += len(frame)
            categories.append(cats)
    return Tables(columns=columns, numeric=numeric, values=values, categories=categories,
                  scale=scale)


class _Candidates:
    """Candidates prepared once for the blockwise search (float32, one-hot part transposed)."""

    def __init__(self, candidates: np.ndarray, numeric_dims: np.ndarray) -> None:
        self.cat = ~numeric_dims
        self.num = np.flatnonzero(numeric_dims)
        self.cat_t = np.ascontiguousarray(candidates[:, self.cat].T, dtype=np.float32)
        self.numeric = [np.ascontiguousarray(candidates[:, j], dtype=np.float32)
                        for j in self.num]

    def distances(self, queries: np.ndarray) -> np.ndarray:
        """L1 distances of encoded rows: numeric dimensions directly, one-hot blocks through
        one matrix product (each block of halves adds 1 - 4 x its dot product)."""
        q_cat = queries[:, self.cat].astype(np.float32)
        n_blocks = 2.0 * q_cat.sum(axis=1)  # categorical columns (each row has 1/2 once)
        out = q_cat @ self.cat_t
        out *= -4.0
        out += n_blocks[:, None]
        # float32 and one scratch array: the numeric columns cost a few passes over memory.
        tmp = np.empty_like(out)
        for j, column in zip(self.num, self.numeric):
            np.subtract(queries[:, j, None].astype(np.float32), column[None, :], out=tmp)
            np.abs(tmp, out=tmp)
            out += tmp
        return np.maximum(out, 0.0, out=out)


def distance_blocks(candidates: np.ndarray, queries: np.ndarray, numeric_dims: np.ndarray,
                    max_cells: int = 4_000_000):
    """L1 distances of every query to every candidate, a block of queries at a time: yields
    ``(start, distances)`` with ``distances`` of shape (block, n), float32."""
    prepared = _Candidates(candidates, numeric_dims)
    step = max(1, max_cells // max(candidates.shape[0], 1))
    for start in range(0, queries.shape[0], step):
        yield start, prepared.distances(queries[start:start + step])


def nearest(candidates: np.ndarray, queries: np.ndarray, k: int = 1,
            exclude_self: bool = False, numeric_dims: np.ndarray | None = None,
            max_cells: int = 4_000_000, own: np.ndarray | None = None
            ) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest candidates of every query in L1 distance.

    Parameters
    ----------
    candidates : ndarray of shape (n, d)
    queries : ndarray of shape (m, d)
    k : int, default=1
        Neighbours returned (at most ``n``, or ``n - 1`` when a row is left out).
    exclude_self : bool, default=False
        Queries are the candidates themselves (same order): each row's own index is left
        out (leave-one-out), though an identical other row is kept.
    numeric_dims : ndarray of bool, optional
        `Tables.numeric_dims`: then the search is exact blockwise numpy (the one-hot
        blocks' mismatches from one matrix product, several times faster than a generic
        L1 search), blocks on threads; without it, scikit-learn's `NearestNeighbors`
        (manhattan).
    max_cells : int
        Queries x candidates held at once (per thread).
    own : ndarray of int, optional
        The candidate index of each query, left out (leave-one-out for a subset of the
        candidates as queries; `exclude_self` is ``own = arange(m)``).

    Returns
    -------
    distances, indices : ndarray of shape (m, k)
    """
    n, m = candidates.shape[0], queries.shape[0]
    if exclude_self:
        own = np.arange(m)
    exclude = own is not None
    k_eff = min(k + int(exclude), n)
    if numeric_dims is None:
        from sklearn.neighbors import NearestNeighbors

        nn = NearestNeighbors(n_neighbors=k_eff, metric="manhattan")
        dist, idx = nn.fit(candidates).kneighbors(queries)
    else:
        prepared = _Candidates(candidates, numeric_dims)
        dist = np.empty((m, k_eff))
        idx = np.empty((m, k_eff), dtype=np.int64)
        step = max(1, max_cells // max(n, 1))

        def block(s: int) -> None:
            d = prepared.distances(queries[s:s + step])
            if own is not None:  # the row itself sorts first among equal distances
                rows = np.arange(d.shape[0])
                d[rows, own[s:s + step]] = -1.0
            if k_eff == 1:
                part = d.argmin(axis=1)[:, None]
            elif k_eff < n:
                part = np.argpartition(d, k_eff - 1, axis=1)[:, :k_eff]
            else:
                part = np.tile(np.arange(n), (d.shape[0], 1))
            pd_ = np.take_along_axis(d, part, axis=1)
            order = np.argsort(pd_, axis=1, kind="stable")
            idx[s:s + step] = np.take_along_axis(part, order, axis=1)
            dist[s:s + step] = np.take_along_axis(pd_, order, axis=1)

        starts = range(0, m, step)
        if len(starts) > 1:
            # numpy releases the GIL in the products, comparisons and partitions.
            from concurrent.futures import ThreadPoolExecutor

            workers = min(len(starts), len(os.sched_getaffinity(0)) if hasattr(
                os, "sched_getaffinity") else (os.cpu_count() or 1))
            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(block, starts))
        else:
            block(0)
        dist = np.maximum(dist, 0.0)
    if exclude:
        own = idx == np.asarray(own)[:, None]
        # Drop the row's own index where it was found, else the farthest neighbour.
        drop = np.where(own.any(axis=1), own.argmax(axis=1), k_eff - 1)
        keep = np.ones_like(idx, dtype=bool)
        keep[np.arange(idx.shape[0]), drop] = False
        dist = dist[keep].reshape(idx.shape[0], k_eff - 1)
        idx = idx[keep].reshape(idx.shape[0], k_eff - 1)
    return dist, idx
