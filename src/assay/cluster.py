"""One Dask cluster for a whole command: fitting and scoring share it.

``fit_population(backend="dask")`` and ``run_mia(backend="dask")`` each start a
`LocalCluster` of their own when given no scheduler address; a command that does both
starts one here instead and hands its address to both (a cluster costs seconds to start).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from assay._validation import InvalidParameterError

#: Seconds to reach a scheduler before its address is called wrong.
CONNECT_TIMEOUT = 10


def check_scheduler(backend: str, address: str | None, flag: str = "scheduler_address",
                    backend_flag: str = "backend") -> None:
    """An address only makes sense with the Dask backend."""
    if address is None:
        return
    if backend != "dask":
        raise InvalidParameterError(f"{flag} must be None unless {backend_flag} is 'dask'. "
                                    f"Got {backend_flag} {backend!r}.")
    if not isinstance(address, str) or not address.strip() or " " in address.strip():
        raise InvalidParameterError(f"{flag} must be a scheduler address such as "
                                    f"'tcp://10.0.0.5:8786'. Got {address!r}.")


@contextmanager
def shared_cluster(backend: str, address: str | None,
                   flag: str = "scheduler_address") -> Iterator[str | None]:
    """The scheduler address fitting and scoring should use: `address` as given, a new
    local cluster's (one single-threaded worker process per core) when the backend is
    Dask and no address is given, or None for the other backends."""
    if backend != "dask":
        yield address
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise InvalidParameterError(
            "backend must not be 'dask' when dask.distributed is not installed (install it "
            "with: pip install \"assay[dask]\"). Got 'dask'.") from None
    if address is not None:
        # Reached once, before any work: a wrong address is one line, not a timeout
        # traceback after the data are loaded.
        try:
            Client(address, timeout=CONNECT_TIMEOUT).close()
        except (OSError, TimeoutError, ValueError) as error:
            raise InvalidParameterError(
                f"{flag} must be the address of a running Dask scheduler. Got "
                f"{address!r} (could not connect: {str(error).splitlines()[0]}).") from None
        yield address
        return
    with LocalCluster(n_workers=os.cpu_count() or 1, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster:
        yield cluster.scheduler_address
