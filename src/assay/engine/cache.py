"""The population cache: fitted chunks of models kept on disk, keyed by data, plan and
learner, read back only when their checksums hold."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from assay.engine import population as core
from assay.engine.population import _release_pages
from assay.learners.base import is_sparse

# 2: chunk checksums moved from the chunk files into the manifest.
_CACHE_FORMAT = 2


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

    def load(self, start: int, stop: int, shape: tuple[int, ...],
             dtype: Any = np.float32) -> np.ndarray | None:
        """Cached probabilities (or a regression's float64 values, `dtype`), None when
        absent; raises `_CorruptEntry` when damaged."""
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
        if probs.shape != shape or probs.dtype != dtype:
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
        step = max(1, core._BLOCK_CELLS // max(self.shape[1], 1))
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
