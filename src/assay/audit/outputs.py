"""The folder a run writes into: checked before any work, and owned by that run.

A command that writes into a folder (``assay audit --out``, ``assay fair --export``,
``assay train-dp --out``) owns the names it writes there (its `RunLayout`). When it
starts, once that folder and those names are checked, whatever an earlier run left
under them is moved, all together, into ``previous/`` in the same folder (replacing an
older ``previous/``). So nothing stale stands beside the new run's files, a run that
fails leaves none of them (no ``result.json`` for a gate to pass), and the run before
is kept whole for comparison. Files the run does not own are not touched; folders it
keeps across runs (the audit's content-keyed ``cache/``) stay where they are.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assay._validation import InvalidParameterError, check_output_folder

#: Where the earlier run's files go, inside the run's folder.
PREVIOUS = "previous"


@dataclass(frozen=True)
class RunLayout:
    """What one run writes into its folder.

    Attributes
    ----------
    files : tuple of str
        Regular files the run writes (``result.json``); an earlier one is moved aside.
    folders : tuple of str
        Folders the run writes as a whole (``fairness``); an earlier one is moved aside.
    kept : tuple of str
        Folders that stay across runs (``cache``); only checked to be folders.
    legacy : tuple of str
        Names older versions of assay wrote there; moved aside with the rest.
    """

    files: tuple[str, ...]
    folders: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()
    legacy: tuple[str, ...] = ()

    @property
    def owned(self) -> tuple[str, ...]:
        """Every name moved aside when a run starts."""
        return self.files + self.folders + self.legacy


def check_run_folder(path: Any, name: str, layout: RunLayout) -> Path:
    """Check that a run can write its `layout` into folder `path`; return the folder.

    The folder must exist or be makeable, and be writable; each file the run writes must
    be absent or a regular file (a folder named ``result.json`` is refused, not moved),
    and each folder it writes, keeps or sets aside into must be absent or a folder.

    Raises
    ------
    InvalidParameterError
        One line naming the path and what is wrong with it.
    """
    folder = Path(check_output_folder(path, name))
    for entry in layout.files:
        target = folder / entry
        if target.exists() and not target.is_file():
            kind = "a folder" if target.is_dir() else "not a regular file"
            raise InvalidParameterError(
                f"{name} must be a folder where {entry} can be written. Got {folder}, whose "
                f"{entry} is {kind}: move it away or choose another {name}.")
    for entry in (*layout.folders, *layout.kept, PREVIOUS):
        target = folder / entry
        if target.exists() and not target.is_dir():
            raise InvalidParameterError(
                f"{name} must be a folder where {entry}/ can be made. Got {folder}, whose "
                f"{entry} is a file: move it away or choose another {name}.")
    return folder


def set_aside_previous(folder: str | Path, layout: RunLayout) -> Path | None:
    """Move the earlier run's files in `folder` into ``folder/previous/``; return it.

    Only the names of `layout` are moved, together, and only when one of them is there:
    a run that found nothing (the earlier run failed, or none ran) keeps the older
    ``previous/``. Call `check_run_folder` first.

    Returns
    -------
    Path or None
        The new ``previous/`` folder, or None when there was nothing to move.
    """
    folder = Path(folder)
    present = [n for n in layout.owned if (folder / n).exists() or (folder / n).is_symlink()]
    if not present:
        return None
    # Gathered in a fresh (private) folder, then swapped in: a crash half-way leaves the
    # files under a hidden name in `folder`, never mixed into the older previous/.
    staging = Path(tempfile.mkdtemp(dir=folder, prefix=f".{PREVIOUS}-"))
    for entry in present:
        os.replace(folder / entry, staging / entry)
    previous = folder / PREVIOUS
    if previous.is_dir() and not previous.is_symlink():
        older = Path(tempfile.mkdtemp(dir=folder, prefix=f".{PREVIOUS}-old-"))
        os.replace(previous, older / PREVIOUS)
        os.replace(staging, previous)
        shutil.rmtree(older, ignore_errors=True)
    else:
        if previous.is_symlink():
            previous.unlink()
        os.replace(staging, previous)
    return previous


def begin_run(path: Any, name: str, layout: RunLayout) -> Path:
    """`check_run_folder`, then `set_aside_previous`; return the folder.

    A folder that does not exist yet is not made here (the run makes it when it writes):
    a run refused later on leaves nothing behind.
    """
    folder = check_run_folder(path, name, layout)
    if folder.is_dir():
        set_aside_previous(folder, layout)
    return folder
