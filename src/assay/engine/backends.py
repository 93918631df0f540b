"""The one vocabulary of where the work of an audit runs.

Every place that takes a ``backend`` (fitting a population, scoring the attacks, the CLI's
``--backend``, ``audit.toml``) reads these names:

- ``"batched"``: this process; models are fitted in chunks, one after another, and the
  attack scores are computed here block by block;
- ``"joblib"``: fits fan out to local processes; scoring stays in this process;
- ``"dask"``: fits and score blocks run on a dask.distributed cluster (a local one, or the
  scheduler at ``scheduler_address``).

Earlier releases called this process ``"local"`` in the attack scoring (`run_mia`); that
spelling is still read, as ``"batched"`` (`ALIASES`).
"""

from __future__ import annotations

from assay._validation import check_option

__all__ = ["ALIASES", "BACKENDS", "DEFAULT_BACKEND", "check_backend_name", "on_cluster"]

#: Where the work runs (see the module docstring).
BACKENDS = ("batched", "joblib", "dask")
#: The backend used when none is named.
DEFAULT_BACKEND = "batched"
#: Spellings of earlier releases, read as the backend they name.
ALIASES = {"local": "batched"}


def check_backend_name(backend: str, name: str = "backend") -> str:
    """The backend `backend` names (an alias read as its backend), or a one-line error.

    Parameters
    ----------
    backend : str
        One of `BACKENDS`, or an alias in `ALIASES`.
    name : str, default="backend"
        How the option is called in the message (``"--backend"``).

    Returns
    -------
    str
        One of `BACKENDS`.

    Examples
    --------
    >>> check_backend_name("dask")
    'dask'
    >>> check_backend_name("local")
    'batched'
    """
    if isinstance(backend, str) and backend in ALIASES:
        return ALIASES[backend]
    return check_option(backend, name, BACKENDS)


def on_cluster(backend: str) -> bool:
    """Whether `backend` runs its work on a Dask cluster.

    Examples
    --------
    >>> from assay.engine.backends import on_cluster
    >>> on_cluster("dask"), on_cluster("joblib"), on_cluster("local")
    (True, False, False)
    """
    return check_backend_name(backend) == "dask"
