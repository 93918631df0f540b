"""Populations of models trained on random halves of one table.

A `PopulationPlan` says which rows each of K models trains on (a balanced membership
matrix: complementary pairs, so every row is a member of exactly K/2 models) and with
which seed. Fitting a plan gives a `Population`: every model's class probabilities on
every row. Membership-inference attacks, Rashomon sets and fairness audits all read it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import mmap
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assay._validation import (
    DataError,
    InvalidParameterError,
    check_option,
    check_output_folder,
    check_scalar,
)
from assay.cluster import check_scheduler, dask_client
from assay.learners.base import Learner, check_features, compute_threads, is_sparse

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


# --------------------------------------------------------------------------- plans


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


# --------------------------------------------------------------------------- cache


class _ChunkCache:
    """One `.npz` file per finished chunk, and a manifest that holds every chunk's SHA-256.

    Layout of ``root/<key>/``: ``manifest.json`` (the key's fields, their full SHA-256 and
    ``{"chunks": {file name: sha256 of the file's bytes}}``) and ``models-SSSSS-EEEEE.npz``
    (probabilities and model indices, no pickle). The checksum of a chunk lives only in the
    manifest, so an edit of a chunk file (even one that recomputes a checksum inside it)
    no longer matches and the chunk is refit. A chunk file the manifest does not list, one
    whose bytes differ from the manifest, that cannot be read or has the wrong shape, is
    reported as damaged and refit. A manifest written for other key fields (a truncated-key
    collision, a hand-copied folder) makes every chunk of the folder untrusted.

    Trust model: the manifest guards against corruption, torn or stale writes and edited
    or swapped chunk files; it is not a signature. Anyone who can write the cache folder
    can rewrite the manifest too, so the folder is created private (0700, files 0600):
    the cache is as trustworthy as the account that owns it, and a cache shared with
    people you do not trust is not made safe by these checks.
    """

    def __init__(self, root: Path, key: str, fields: dict[str, Any]) -> None:
        if not root.exists():
            root.mkdir(parents=True, mode=0o700, exist_ok=True)
        self.folder = root / key
        self.folder.mkdir(mode=0o700, exist_ok=True)
        self.manifest_path = self.folder / "manifest.json"
        self.fields = json.loads(json.dumps(fields, sort_keys=True))
        self.digest = hashlib.sha256(json.dumps(self.fields, sort_keys=True).encode()).hexdigest()
        chunks = self._read_manifest()
        self.chunks: dict[str, str] = {} if chunks is None else chunks
        if chunks is None:
            self._write_manifest()

    def _read_manifest(self) -> dict[str, str] | None:
        """The manifest's chunk checksums; None when it is absent or not this key's."""
        try:
            manifest = json.loads(self.manifest_path.read_bytes())
        except (OSError, ValueError):
            return None
        if (not isinstance(manifest, dict) or manifest.get("format") != _CACHE_FORMAT
                or manifest.get("key") != self.digest or manifest.get("fields") != self.fields
                or not isinstance(manifest.get("chunks"), dict)):
            return None
        return {str(k): str(v) for k, v in manifest["chunks"].items()}

    def _write_manifest(self) -> None:
        manifest = {"format": _CACHE_FORMAT, "key": self.digest, "fields": self.fields,
                    "chunks": dict(sorted(self.chunks.items()))}
        _atomic_write_bytes(self.manifest_path, json.dumps(manifest, indent=1).encode())

    def path(self, start: int, stop: int) -> Path:
        return self.folder / f"models-{start:05d}-{stop:05d}.npz"

    def load(self, start: int, stop: int, shape: tuple[int, ...]) -> np.ndarray | None:
        """Cached probabilities, None when absent; raises `_CorruptEntry` when damaged."""
        path = self.path(start, stop)
        if not path.exists():
            return None
        expected = self.chunks.get(path.name)
        if expected is None:
            raise _CorruptEntry(f"{path.name}: not listed in the cache manifest")
        try:
            payload = path.read_bytes()
        except OSError as exc:
            raise _CorruptEntry(f"{path.name}: {exc}") from None
        # The bytes checked are the bytes parsed: no window for a swap in between.
        if _sha256(payload) != expected:
            raise _CorruptEntry(f"{path.name}: checksum does not match the cache manifest")
        try:
            with np.load(io.BytesIO(payload), allow_pickle=False) as data:
                probs = data["probs"]
                models = data["models"]
        except Exception as exc:  # any unreadable file is a damaged entry
            raise _CorruptEntry(f"{path.name}: {exc}") from None
        if probs.shape != shape or probs.dtype != np.float32:
            raise _CorruptEntry(f"{path.name}: shape {probs.shape}, expected {shape}")
        if not np.array_equal(models, np.arange(start, stop)):
            raise _CorruptEntry(f"{path.name}: wrong model indices")
        return probs

    def store(self, start: int, stop: int, probs: np.ndarray) -> None:
        """Record the chunk's checksum in the manifest, then write the chunk.

        In this order a run killed in between leaves a listed chunk that is absent or
        does not match (refit), never an unlisted one that was trusted.
        """
        buffer = io.BytesIO()
        np.savez(buffer, probs=probs, models=np.arange(start, stop))
        payload = buffer.getvalue()
        path = self.path(start, stop)
        # Keep entries another process sharing this folder added since we read it.
        self.chunks = {**(self._read_manifest() or {}), **self.chunks,
                       path.name: _sha256(payload)}
        self._write_manifest()
        _atomic_write_bytes(path, payload)


class _CorruptEntry(Exception):
    pass


def _sha256(payload: bytes | memoryview) -> str:
    return hashlib.sha256(payload).hexdigest()


def _atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write to a private temporary file beside `path` (0600), fsync, rename over it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class _DiskStore:
    """A population's probabilities as one ``.npy`` file, written chunk by chunk.

    Lives in the chunk cache's key folder: ``probs.npy`` (opened as a memory map, the
    population `fit_population` returns when it is over its memory budget) and
    ``probs.json``, the manifest of the chunks finished in it with each slice's SHA-256.
    It is the resumable store of a population on disk (no `.npz` copy of its chunks).

    A chunk is written into its slice and flushed before it is listed, and unlisted
    before a damaged slice is rewritten, so a run killed at any point leaves only listed
    chunks whose bytes match (reused) or unlisted ones (refit). The trust model is the
    chunk cache's: a guard against torn writes and edits, not a signature.
    """

    def __init__(self, folder: Path, digest: str, fields: dict[str, Any],
                 shape: tuple[int, int, int], create: bool = True) -> None:
        self.path = folder / "probs.npy"
        self.manifest_path = folder / "probs.json"
        self.digest, self.fields, self.shape = digest, fields, tuple(shape)
        self.array: np.memmap | None = None
        self.chunks: dict[str, str] = {}
        if self.path.exists():
            with contextlib.suppress(Exception):  # any unreadable file is started afresh
                array = np.load(self.path, mmap_mode="r+" if create else "r")
                if array.shape == self.shape and array.dtype == np.float32 \
                        and array.flags.c_contiguous:
                    self.array = array
                    self.chunks = self._read_manifest()
        if self.array is None and create:
            self.chunks = {}
            self._write_manifest()  # empty before the file is (re)made: nothing trusted
            self.array = np.lib.format.open_memmap(self.path, mode="w+", dtype=np.float32,
                                                   shape=self.shape)
            os.chmod(self.path, 0o600)

    @classmethod
    def existing(cls, folder: Path, digest: str, fields: dict[str, Any],
                 shape: tuple[int, int, int]) -> _DiskStore | None:
        """The store in `folder`, read-only; None when there is none for this key."""
        if not (folder / "probs.npy").exists():
            return None
        store = cls(folder, digest, fields, shape, create=False)
        return store if store.array is not None else None

    @staticmethod
    def name(start: int, stop: int) -> str:
        return f"models-{start:05d}-{stop:05d}"

    def opened(self) -> np.memmap:
        """The writable map (until `read_only`)."""
        if self.array is None:
            raise RuntimeError(f"{self.path} is not open for writing")
        return self.array

    def _read_manifest(self) -> dict[str, str]:
        try:
            manifest = json.loads(self.manifest_path.read_bytes())
        except (OSError, ValueError):
            return {}
        if (not isinstance(manifest, dict) or manifest.get("format") != _CACHE_FORMAT
                or manifest.get("key") != self.digest or manifest.get("fields") != self.fields
                or manifest.get("shape") != list(self.shape)
                or not isinstance(manifest.get("chunks"), dict)):
            return {}
        return {str(k): str(v) for k, v in manifest["chunks"].items()}

    def _write_manifest(self) -> None:
        manifest = {"format": _CACHE_FORMAT, "key": self.digest, "fields": self.fields,
                    "shape": list(self.shape), "chunks": dict(sorted(self.chunks.items()))}
        _atomic_write_bytes(self.manifest_path, json.dumps(manifest, indent=1).encode())

    def load(self, start: int, stop: int) -> np.ndarray | None:
        """The chunk's slice when it is listed; raises `_CorruptEntry` when damaged."""
        expected = self.chunks.get(self.name(start, stop))
        if expected is None:
            return None
        array = self.opened()
        block = array[start:stop]
        digest = _sha256(block.data)
        _release_pages(array)  # checked: not kept resident
        if digest != expected:
            raise _CorruptEntry(f"{self.path.name}[{start}:{stop}]: checksum does not match"
                                " its manifest")
        return block

    def store(self, start: int, stop: int, probs: np.ndarray) -> None:
        """Write the chunk into its slice, flush it, then list it with its checksum."""
        name = self.name(start, stop)
        if name in self.chunks:  # a damaged slice is unlisted before it is rewritten
            del self.chunks[name]
            self._write_manifest()
        probs = np.ascontiguousarray(probs, dtype=np.float32)
        # A few models at a time, each flushed and released: the pages written are never
        # resident beside the whole chunk.
        step = max(1, _BLOCK_CELLS // max(self.shape[1], 1))
        array = self.opened()
        for a in range(start, stop, step):
            b = min(a + step, stop)
            array[a:b] = probs[a - start:b - start]
            array.flush()
            _release_pages(array)
        # Keep entries another process sharing this folder added since we read it.
        self.chunks = {**self._read_manifest(), **self.chunks, name: _sha256(probs.data)}
        self._write_manifest()

    def read_only(self) -> np.memmap:
        """The finished population, memory-mapped read-only."""
        self.opened().flush()
        self.array = None
        return np.load(self.path, mmap_mode="r")


def data_fingerprint_of(X: Any, y: np.ndarray) -> str:
    """SHA-256 (16 hex digits) of the feature matrix and labels as fitted."""
    digest = hashlib.sha256()
    parts = ((X.data, X.indices, X.indptr, np.asarray(X.shape)) if is_sparse(X) else (X,))
    for array in (*parts, y):
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


# --------------------------------------------------------------------------- fitting


def _fit_chunk(
    learner: Learner,
    X: np.ndarray,
    y: np.ndarray,
    member: np.ndarray,
    seeds: np.ndarray,
    n_classes: int,
    n_threads: int | None,
) -> tuple[np.ndarray, float]:
    """Fit one chunk of models (runs in the worker for joblib and Dask)."""
    start = time.perf_counter()
    # One process per core: BLAS's and torch's own pools would oversubscribe the machine.
    with compute_threads(n_threads, torch=getattr(learner, "uses_torch", False)):
        probs = learner.fit_predict(X, y, member, seeds, n_classes)
    probs = np.asarray(probs, dtype=np.float32)
    expected = (len(seeds), X.shape[0], n_classes)
    if probs.shape != expected:
        raise RuntimeError(
            f"{type(learner).__name__}.fit_predict returned shape {probs.shape},"
            f" expected {expected}."
        )
    return probs, time.perf_counter() - start


def _chunks(n_models: int, size: int) -> list[tuple[int, int]]:
    return [(start, min(start + size, n_models)) for start in range(0, n_models, size)]


def _check_inputs(X: Any, y: Any, plan: PopulationPlan, n_classes: int | None):
    X = check_features(X)  # float32, dense or CSR (never densified)
    y = np.asarray(y)
    if y.shape != (X.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise DataError(
            f"y must be {X.shape[0]} integer class indices. Got {y.dtype} of shape {y.shape}."
        )
    y = y.astype(np.int64)
    if plan.n_rows != X.shape[0]:
        raise InvalidParameterError(
            f"plan must cover the {X.shape[0]} rows of X. Got a plan for {plan.n_rows} rows."
        )
    if n_classes is None:
        n_classes = int(y.max()) + 1
    n_classes = check_scalar(n_classes, "n_classes", kind=int, low=2)
    if y.min() < 0 or y.max() >= n_classes:
        raise DataError(
            f"y must hold class indices in [0, {n_classes - 1}]. Got"
            f" [{int(y.min())}, {int(y.max())}]."
        )
    return X, y, n_classes


def _progress(enabled: bool):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
        transient=False,
    )


def fit_population(
    X: Any,
    y: Any,
    learner: Any,
    plan: PopulationPlan,
    *,
    n_classes: int | None = None,
    backend: str = "batched",
    n_jobs: int | None = None,
    scheduler_address: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    data_fingerprint: str | None = None,
    progress: bool = True,
    on_chunk: Callable[[int, int], None] | None = None,
    memory_budget: float | None = None,
    store: str = "auto",
) -> Population:
    """Fit every model of `plan` and keep its class probabilities on every row.

    Parameters
    ----------
    X : array-like of shape (n_rows, n_features)
        Numeric features (converted to float32).
    y : array-like of shape (n_rows,)
        Integer class indices.
    learner : str, scikit-learn estimator or Learner
        Anything `assay.learners.get_learner` accepts.
    plan : PopulationPlan
        Membership matrix and seeds, e.g. `PopulationPlan.balanced`.
    n_classes : int, optional
        Number of classes; default ``y.max() + 1``.
    backend : {"batched", "joblib", "dask"}, default="batched"
        "batched" fits chunks of `learner.preferred_chunk` models one after another in
        this process; "joblib" fans chunks out to local processes; "dask" submits them
        to a `dask.distributed` cluster (a new `LocalCluster` unless
        `scheduler_address` is given).
    n_jobs : int, optional
        Processes (joblib) or local Dask workers (default: all cores); for "batched",
        torch threads overriding the learner's own `n_threads`.
    scheduler_address : str, optional
        Address of a running Dask scheduler (backend "dask" only).
    cache_dir : path, optional
        Folder of the on-disk cache. Finished chunks are written atomically and
        reused by a later call with the same data, learner and plan, so an
        interrupted run resumes; damaged entries are detected and refit.
    data_fingerprint : str, optional
        Identifies the data in the cache key; default: a hash of X and y.
    progress : bool, default=True
        Show a rich progress bar.
    on_chunk : callable(done, total), optional
        Called in this process after each finished chunk with the number of models
        done so far. An exception it raises stops the run (finished chunks stay in the
        cache): how a caller cancels between chunks.
    memory_budget : float > 0, optional
        GiB the probabilities (K * N * C float32) may take in memory; None: no limit.
        A population over it is written to disk as it is fitted (``store="auto"``).
    store : {"auto", "memory", "disk"}, default="auto"
        Where `probs` lives. "disk": one ``probs.npy`` in the cache folder, each chunk
        written into its slice as it finishes, returned as a read-only `numpy.memmap`
        (requires `cache_dir`); that file and its manifest of finished chunks are the
        resumable store (no ``.npz`` copy of its chunks). "auto": disk when the
        population is over `memory_budget`, memory otherwise.

    Returns
    -------
    Population
        `info` holds the learner config, backend, seeds, timings, cache counts
        (``n_loaded_from_cache``, ``n_fitted``, ``n_corrupt``) and where `probs` lives
        (``store``, ``store_reason``, ``probs_path``, ``probs_gib``).
    """
    from assay.learners import get_learner

    if not isinstance(plan, PopulationPlan):
        raise InvalidParameterError(f"plan must be a PopulationPlan. Got {type(plan).__name__}.")
    check_option(backend, "backend", _BACKENDS)
    if n_jobs is not None:
        n_jobs = check_scalar(n_jobs, "n_jobs", kind=int, low=1)
    check_scheduler(backend, scheduler_address)
    if memory_budget is not None:
        memory_budget = check_scalar(memory_budget, "memory_budget", low=0, low_open=True)
    check_option(store, "store", _STORES)
    if cache_dir is not None:  # a file or a read-only folder fails here, not after a fit
        check_output_folder(cache_dir, "cache_dir")
    learner = get_learner(learner)
    X, y, n_classes = _check_inputs(X, y, plan, n_classes)
    if store == "auto":
        check_population_size(plan.n_models, X.shape[0], n_classes, memory_budget)
    else:  # "memory": all of it against this machine; "disk": the membership only
        check_population_size(plan.n_models, X.shape[0],
                              n_classes if store == "memory" else None)
    on_disk, reason = _where(plan.n_models, X.shape[0], n_classes, memory_budget, store)
    if on_disk and cache_dir is None:
        raise InvalidParameterError(
            f"cache_dir must be a folder to write the population to ({reason}). Got None.")
    started = time.perf_counter()
    fingerprint = data_fingerprint or data_fingerprint_of(X, y)
    config = learner.get_config()
    chunks = _chunks(plan.n_models, check_scalar(learner.preferred_chunk, "preferred_chunk",
                                                 kind=int, low=1))
    shape = (plan.n_models, X.shape[0], n_classes)
    stats: dict[str, Any] = {"n_loaded_from_cache": 0, "n_fitted": 0, "n_corrupt": 0,
                             "chunk_seconds": []}

    cache = disk = None
    if cache_dir is not None:
        key_fields = {
            "data": fingerprint,
            "learner": config,
            "plan": plan.fingerprint(),
            "n_classes": n_classes,
            "shape": list(X.shape),
            "format": _CACHE_FORMAT,
        }
        key = _cache_key(key_fields)
        cache = _ChunkCache(Path(cache_dir), key, key_fields)
        # On disk: the store is written. In memory: a store left by an earlier run on
        # disk is read too.
        disk = (_DiskStore(cache.folder, cache.digest, cache.fields, shape) if on_disk
                else _DiskStore.existing(cache.folder, cache.digest, cache.fields, shape))
    probs: np.ndarray = disk.opened() if on_disk and disk is not None else np.empty(
        shape, dtype=np.float32)
    todo = _load_cached(cache, disk if on_disk else None, disk, chunks, probs, stats)

    done = [plan.n_models - sum(b - a for a, b in todo)]

    def finish(start: int, stop: int, chunk_probs: np.ndarray, seconds: float) -> None:
        stats["n_fitted"] += stop - start
        stats["chunk_seconds"].append(round(seconds, 4))
        if on_disk and disk is not None:
            disk.store(start, stop, chunk_probs)
        else:
            probs[start:stop] = chunk_probs
            if cache is not None:
                cache.store(start, stop, chunk_probs)
        done[0] += stop - start
        if on_chunk is not None:
            on_chunk(done[0], plan.n_models)

    with _progress(progress) as bar:
        task = bar.add_task(f"fitting {config['name']}", total=plan.n_models,
                            completed=plan.n_models - sum(b - a for a, b in todo))
        run = {"batched": _run_batched, "joblib": _run_joblib, "dask": _run_dask}[backend]
        def done_chunk(a: int, b: int, p: np.ndarray, s: float) -> None:
            finish(a, b, p, s)
            bar.advance(task, b - a)

        workers = run(learner, X, y, plan, n_classes, todo, n_jobs, scheduler_address,
                      done_chunk)

    info = {
        "learner": config,
        "backend": backend,
        "n_workers": workers,
        "n_classes": n_classes,
        "seeds": plan.seeds.tolist(),
        "plan_params": dict(plan.params),
        "plan_fingerprint": plan.fingerprint(),
        "data_fingerprint": fingerprint,
        "cache_dir": None if cache is None else str(cache.folder),
        "chunk_size": chunks[0][1] - chunks[0][0],
        "seconds": round(time.perf_counter() - started, 4),
        "store": "disk" if on_disk else "memory",
        "store_reason": reason,
        "probs_path": str(disk.path) if on_disk and disk is not None else None,
        "probs_gib": _gib(shape),
        "memory_budget": memory_budget,
        **stats,
    }
    if on_disk and disk is not None:
        probs = disk.read_only()
    return Population(probs=probs, member=np.array(plan.member), y=y, info=info)


def _gib(shape: tuple[int, ...]) -> float:
    """GiB of a float32 array of this shape."""
    return float(np.prod(shape, dtype=np.float64)) * 4 / 2**30


def _where(n_models: int, n_rows: int, n_classes: int, budget: float | None,
           store: str) -> tuple[bool, str]:
    """Whether the population goes to disk, and why (recorded in `info`)."""
    size = (f"{n_models} x {n_rows} x {n_classes} float32 probabilities take "
            f"{_gib((n_models, n_rows, n_classes)):.3g} GiB")
    if store != "auto":
        return store == "disk", f"store={store!r}; {size}"
    if budget is None:
        return False, f"{size}; no memory_budget"
    over = _gib((n_models, n_rows, n_classes)) > budget
    return over, f"{size}, {'over' if over else 'within'} memory_budget {budget:g} GiB"


def machine_memory_gib() -> float:
    """GiB of physical memory of this machine (2 when it cannot be read)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
    except (AttributeError, OSError, ValueError):  # not POSIX
        return 2.0


def engine_options(backend: str = "batched", cache_dir: Any = None, progress: bool = False,
                   memory_budget: float | None = None,
                   scheduler_address: str | None = None) -> dict[str, Any]:
    """The engine settings every fit of an audit passes to `fit_population`, checked.

    One place for them, so a section that fits its own models (on other rows or
    features) still runs on the audit's cluster and writes to disk over its budget.

    Returns
    -------
    dict
        Keyword arguments of `fit_population`: ``backend``, ``cache_dir``, ``progress``,
        ``memory_budget``, ``scheduler_address``.

    Examples
    --------
    >>> from assay.population import engine_options
    >>> engine_options("dask", scheduler_address="tcp://10.0.0.5:8786")["scheduler_address"]
    'tcp://10.0.0.5:8786'
    >>> engine_options("batched", scheduler_address="tcp://10.0.0.5:8786")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    assay._validation.InvalidParameterError: scheduler_address must be None unless backend ...
    """
    check_option(backend, "backend", _BACKENDS)
    check_scheduler(backend, scheduler_address)
    if memory_budget is not None:
        memory_budget = check_scalar(memory_budget, "memory_budget", low=0, low_open=True)
    return {"backend": backend, "cache_dir": cache_dir, "progress": progress,
            "memory_budget": memory_budget, "scheduler_address": scheduler_address}


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


def _cache_key(fields: dict[str, Any]) -> str:
    """Folder name of a cache entry: 20 hex digits of the fields' SHA-256.

    The manifest keeps the full digest and the fields, so a truncated-key collision is
    caught on load rather than served.
    """
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:20]


def _load_cached(cache, written, other, chunks, probs, stats) -> list[tuple[int, int]]:
    """Fill `probs` from the caches; return the chunks still to fit (absent or damaged).

    `written` is the disk store `probs` belongs to (None in memory): a chunk listed
    there is already in place, one found in another cache is copied into it. `other`
    is a disk store read as one more cache.
    """
    todo = []
    for start, stop in chunks:
        if written is not None and _try(written.load, start, stop, stats) is not None:
            stats["n_loaded_from_cache"] += stop - start
            continue
        cached = None
        if cache is not None:
            cached = _try(cache.load, start, stop, stats, (stop - start, *probs.shape[1:]))
        if cached is None and other is not None and other is not written:
            cached = _try(other.load, start, stop, stats)
        if cached is None:
            todo.append((start, stop))
            continue
        if written is not None:
            written.store(start, stop, cached)
        else:
            probs[start:stop] = cached
        stats["n_loaded_from_cache"] += stop - start
    return todo


def _try(load, start, stop, stats, *args):
    """A cache's chunk, or None when absent or damaged (warned and counted)."""
    try:
        return load(start, stop, *args)
    except _CorruptEntry as exc:
        warnings.warn(f"damaged cache entry refit: {exc}", RuntimeWarning, stacklevel=4)
        stats["n_corrupt"] += stop - start
        return None


def _run_batched(learner, X, y, plan, n_classes, todo, n_jobs, address, done) -> int:
    for start, stop in todo:
        chunk_probs, seconds = _fit_chunk(
            learner, X, y, plan.member[start:stop], plan.seeds[start:stop], n_classes, n_jobs
        )
        done(start, stop, chunk_probs, seconds)
    return 1


def _run_joblib(learner, X, y, plan, n_classes, todo, n_jobs, address, done) -> int:
    from joblib import Parallel, delayed

    n_jobs = n_jobs or os.cpu_count() or 1
    threads = max(1, (os.cpu_count() or 1) // n_jobs)
    tasks = (
        delayed(_fit_one)(start, stop, learner, X, y, plan.member[start:stop],
                          plan.seeds[start:stop], n_classes, threads)
        for start, stop in todo
    )
    # Unordered: every finished chunk is cached at once, whatever its position.
    for start, stop, chunk_probs, seconds in Parallel(
        n_jobs=n_jobs, return_as="generator_unordered"
    )(tasks):
        done(start, stop, chunk_probs, seconds)
    return n_jobs


def _fit_one(start, stop, *args):
    return (start, stop, *_fit_chunk(*args))


def _run_dask(learner, X, y, plan, n_classes, todo, n_jobs, address, done) -> int:
    from distributed import as_completed

    with dask_client(address, n_workers=n_jobs) as client:
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        X_remote, y_remote = client.scatter([X, y], broadcast=True)
        futures = [
            client.submit(_fit_one, start, stop, learner, X_remote, y_remote,
                          plan.member[start:stop], plan.seeds[start:stop], n_classes, 1,
                          pure=False)
            for start, stop in todo
        ]
        for future in as_completed(futures):
            done(*future.result())
    return n_workers


_BACKENDS = ("batched", "joblib", "dask")
_STORES = ("auto", "memory", "disk")
# 2: chunk checksums moved from the chunk files into the manifest.
_CACHE_FORMAT = 2
