"""`Population`: every model's class probabilities on every row, with its memberships."""

from __future__ import annotations

import contextlib
import mmap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Probabilities are clipped away from 0 and 1 before logs: float32 softmax saturates.
_EPS = 1e-7
_TINY = float(np.finfo(np.float32).tiny)  # floor of LiRA's logs
# (model, row) cells per block of the whole-population figures: a few tens of MB.
_BLOCK_CELLS = 1 << 22


@dataclass(frozen=True)
class Population:
    """Per-model, per-row outputs of a fitted population.

    Attributes
    ----------
    probs : float32 array of shape (n_models, n_rows, n_classes)
        Class probabilities of every model on every row: in memory, or a read-only
        `numpy.memmap` of a ``.npy`` file when `fit_population` put it on disk
        (``info["store"]``); read it a block of models at a time (`model_blocks`).
    member : bool array of shape (n_models, n_rows)
        member[k, i] is true when row i was in model k's training set.
    y : int64 array of shape (n_rows,)
        True class index of every row.
    info : dict
        Learner config, plan seeds, data fingerprint, backend and timings.

    Examples
    --------
    Two models, two rows, each model trained on one row:

    >>> import numpy as np
    >>> from assay.engine import Population
    >>> pop = Population(probs=np.array([[[0.9, 0.1], [0.2, 0.8]],
    ...                                  [[0.6, 0.4], [0.7, 0.3]]], dtype=np.float32),
    ...                  member=np.array([[True, False], [False, True]]), y=np.array([0, 1]))
    >>> pop.true_prob().astype(float).round(2).tolist()  # each model's probability of y
    [[0.9, 0.8], [0.6, 0.3]]
    >>> pop.accuracy(members=True).tolist(), pop.accuracy(members=False).tolist()
    ([1.0, 0.0], [1.0, 1.0])
    """

    probs: np.ndarray
    member: np.ndarray
    y: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_models(self) -> int:
        return self.probs.shape[0]

    @property
    def n_rows(self) -> int:
        return self.probs.shape[1]

    @property
    def n_classes(self) -> int:
        return self.probs.shape[2]

    @property
    def on_disk(self) -> bool:
        """Whether `probs` is a memory-mapped file (`fit_population` over its budget)."""
        return isinstance(self.probs, np.memmap)

    def model_blocks(self, cells: int | None = None) -> list[slice]:
        """Consecutive blocks of models, each about `cells` (model, row) cells.

        Whole-population figures are computed block by block, so a population on disk
        is read a block at a time and no temporary grows with K * N.
        """
        cells = _BLOCK_CELLS if cells is None else cells
        step = max(1, cells // max(self.n_rows, 1))
        return [slice(a, min(a + step, self.n_models)) for a in range(0, self.n_models, step)]

    def read_models(self, models: Any) -> np.ndarray:
        """``probs[models]``, to read (not to write into).

        For a population on disk, a copy in memory, and the file's pages are released
        from this process once copied: resident memory stays one block, however many
        blocks are read (the pages stay in the OS cache, so reading them again is cheap).
        """
        if not self.on_disk:
            return self.probs[models]
        block = np.array(self.probs[models])
        _release_pages(self.probs)
        return block

    def _per_model(self, fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
        """(n_models, n_rows) array of `fn(probs_block, y)`, filled block by block."""
        out: np.ndarray | None = None
        for ks in self.model_blocks():
            block = fn(self.read_models(ks), self.y)
            if out is None:
                out = np.empty((self.n_models, self.n_rows), dtype=block.dtype)
            out[ks] = block
        if out is None:
            raise ValueError("a population has at least one model")
        return out

    def true_prob(self) -> np.ndarray:
        """Probability of the true label, shape (n_models, n_rows)."""
        return self._per_model(_true_prob)

    def loss(self) -> np.ndarray:
        """Cross-entropy loss of the true label, shape (n_models, n_rows)."""
        return self._per_model(lambda p, y: -np.log(np.clip(_true_prob(p, y), _EPS, 1.0)))

    def logit(self) -> np.ndarray:
        """LiRA's scaled confidence log(p_y) - log(sum of the other classes' p).

        Computed in the stable form (no 1 - p_y cancellation), shape (n_models, n_rows).
        The class probabilities are summed as they are; only the two logs' arguments are
        floored (at float32's smallest normal number), so confident predictions keep
        their scores: flooring each class at 1e-7 first capped the score near 16 and
        tied the most confident members.
        """
        return self._per_model(_logit)

    def predictions(self) -> np.ndarray:
        """Predicted class of every model on every row, shape (n_models, n_rows)."""
        return self._per_model(lambda p, y: p.argmax(axis=2))

    def accuracy(self, members: bool) -> np.ndarray:
        """Per-model accuracy on its training rows (members=True) or held-out rows."""
        hits = np.zeros(self.n_models, dtype=np.int64)
        totals = np.zeros(self.n_models, dtype=np.int64)
        for ks in self.model_blocks():
            mask = self.member[ks] if members else ~self.member[ks]
            hits[ks] = ((self.read_models(ks).argmax(axis=2) == self.y[None, :])
                        & mask).sum(axis=1)
            totals[ks] = mask.sum(axis=1)
        return hits / np.maximum(totals, 1)


def _release_pages(array: np.ndarray) -> None:
    """Drop a memory map's pages from this process (no-op where that is not possible).

    Only for a read-only or flushed map: the data stay in the file and the OS cache.
    """
    mapped = getattr(array, "_mmap", None)
    if mapped is not None and hasattr(mapped, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
        with contextlib.suppress(OSError, ValueError):
            mapped.madvise(mmap.MADV_DONTNEED)


def _true_prob(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.take_along_axis(probs, y[None, :, None], axis=2)[..., 0]


def _logit(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    p_true = _true_prob(probs, y).astype(np.float64)
    # Summed, not 1 - p_y: no cancellation.
    if probs.shape[2] == 2:
        others = np.take_along_axis(probs, 1 - y[None, :, None], axis=2)[..., 0]
        others = others.astype(np.float64)
    else:
        is_true = np.arange(probs.shape[2])[None, None, :] == y[None, :, None]
        others = np.asarray(np.sum(probs, axis=2, where=~is_true, dtype=np.float64))
    return np.log(np.maximum(p_true, _TINY)) - np.log(np.maximum(others, _TINY))
