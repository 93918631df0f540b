"""The web app's files: private folders and writes, and the job files it serves (only
regular files of a known kind inside a job's folder, opened without following links)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from assay._validation import InvalidParameterError

#: An upload or job id: 32 hex digits (uuid4().hex).
_ID = re.compile(r"^[0-9a-f]{32}$")


#: Files of an audit's output folder served by ``/jobs/{id}/files/...``, with their type.
SAFE_SUFFIXES = {
    ".md": "text/markdown; charset=utf-8",
    ".json": "application/json",
    ".csv": "text/csv; charset=utf-8",
    ".skops": "application/octet-stream",
    ".onnx": "application/octet-stream",
    ".npz": "application/octet-stream",
    ".safetensors": "application/octet-stream",
}


# Internal to the audit (the population cache), never listed or served.
_PRIVATE_PARTS = ("cache",)


def _private_dir(path: Path) -> Path:
    """Create `path` (0700) or make an existing one private; refuse a link."""
    if path.is_symlink():
        raise InvalidParameterError(f"workdir must not hold a link at {path.name}. Got {path}.")
    path.mkdir(mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def _private_workdir(folder: Path) -> Path:
    """A workdir the user named, made (0700) or made private; refused unless ours.

    Made private rather than refused: the user named it for this app and ``--workdir``
    promises 0700. Refused when another user owns it (we could not chmod it, and whoever
    can write to it could swap ``uploads/`` for a folder of theirs).
    """
    if folder.exists() and not folder.is_dir():
        raise InvalidParameterError(f"workdir must be a folder. Got the file {folder}.")
    if not folder.exists():
        folder.mkdir(parents=True, mode=0o700)
    owner, me = folder.stat().st_uid, getattr(os, "geteuid", lambda: None)()
    if me is not None and owner != me:
        raise InvalidParameterError(
            f"workdir must be a folder you own (it is made private, 0700). Got {folder}, "
            f"owned by user id {owner}; name a folder of your own, or leave it out for a "
            f"temporary one.")
    os.chmod(folder, 0o700)
    return folder


def _write_private(path: Path, payload: bytes) -> None:
    """Write a new file readable by its owner only (0600), never through a link."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(payload)


def _make_private(root: Path) -> None:
    """Folders 0700 and files 0600 under `root` (links are left alone, not followed)."""
    if not root.is_dir() or root.is_symlink():
        return
    os.chmod(root, 0o700)
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            with contextlib.suppress(OSError):
                mode = os.lstat(path).st_mode
                if stat.S_ISDIR(mode):
                    os.chmod(path, 0o700)
                elif stat.S_ISREG(mode):
                    os.chmod(path, 0o600)


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path, ignore_errors=True)


def _entries(folder: Path) -> list[Path]:
    try:
        return [entry for entry in folder.iterdir() if _ID.match(entry.name)]
    except OSError:
        return []


def _mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except OSError:
        return 0.0


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _servable_files(root: Path) -> list[tuple[str, int]]:
    """(relative path, size) of every file `_open_job_file` would serve under `root`."""
    found: list[tuple[str, int]] = []
    if not root.is_dir() or root.is_symlink():
        return found
    for folder, dirs, files in os.walk(root):  # os.walk does not follow links to folders
        rel_folder = Path(folder).relative_to(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and not (rel_folder == Path(".") and d in _PRIVATE_PARTS))
        for name in sorted(files):
            path = Path(folder) / name
            if name.startswith(".") or path.suffix.lower() not in SAFE_SUFFIXES:
                continue
            with contextlib.suppress(OSError):
                info = path.lstat()
                if stat.S_ISREG(info.st_mode):
                    found.append(((rel_folder / name).as_posix(), info.st_size))
    return sorted(found)


def _open_job_file(root: Path, rel: str) -> tuple[int, os.stat_result, str]:
    """Open `rel` under `root` for reading: (fd, stat, media type); `_Refused` otherwise.

    Only a regular file inside `root`, reached without any link, with a safe suffix,
    outside the audit's cache and not hidden.
    """
    parts = rel.split("/")
    if (not rel or "\\" in rel or "\x00" in rel or any(p in ("", ".", "..") for p in parts)
            or any(p.startswith(".") for p in parts) or parts[0] in _PRIVATE_PARTS):
        raise _Refused(404, "no such file in this audit's output.")
    suffix = PurePosixPath(rel).suffix.lower()
    if suffix not in SAFE_SUFFIXES:
        raise _Refused(403, f"files of type {suffix or '(none)'} are not served; served: "
                            f"{', '.join(sorted(SAFE_SUFFIXES))}.")
    base = root.resolve()
    path = base
    try:
        if root.is_symlink():
            raise FileNotFoundError(root)
        for part in parts:
            path = path / part
            if stat.S_ISLNK(os.lstat(path).st_mode):  # no link anywhere on the way
                raise FileNotFoundError(path)
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        raise _Refused(404, "no such file in this audit's output.") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or not Path(os.path.realpath(path)).is_relative_to(base):
        os.close(fd)
        raise _Refused(404, "no such file in this audit's output.")
    return fd, info, SAFE_SUFFIXES[suffix]


def _read_fd(fd: int, chunk: int = 1 << 20) -> Iterator[bytes]:
    try:
        while block := os.read(fd, chunk):
            yield block
    finally:
        os.close(fd)
