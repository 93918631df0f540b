"""Dask clusters: one place that checks addresses, connects and starts local clusters.

Fitting a population and running the attacks with ``backend="dask"`` each open a client
here (a new `LocalCluster` when given no scheduler address); a command that does both
starts one cluster with `shared_cluster` and hands its address to both (a cluster costs
seconds to start).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from assay._validation import InvalidParameterError

#: Seconds to reach a scheduler before its address is called wrong.
CONNECT_TIMEOUT = 10


def check_scheduler(backend: str, address: Any, flag: str = "scheduler_address",
                    backend_flag: str = "backend") -> None:
    """An address only makes sense with the Dask backend, and holds no spaces."""
    if address is None:
        return
    if backend != "dask":
        raise InvalidParameterError(f"{flag} must be None unless {backend_flag} is 'dask'. "
                                    f"Got {backend_flag} {backend!r}.")
    if not isinstance(address, str) or not address.strip() \
            or any(c.isspace() for c in address):
        raise InvalidParameterError(f"{flag} must be a Dask scheduler address such as "
                                    f"'tcp://10.0.0.5:8786'. Got {address!r}.")


def require_dask(backend_flag: str = "backend") -> None:
    """The Dask backend needs dask.distributed (the ``dask`` extra)."""
    import importlib.util

    if importlib.util.find_spec("distributed") is None:
        raise InvalidParameterError(
            f"{backend_flag} must not be 'dask' when dask.distributed is not installed "
            "(install it with: pip install \"assay[dask]\"). Got 'dask'.")


def _local_cluster(n_workers: int | None = None):
    """A cluster on this machine: one single-threaded worker process per core (or
    `n_workers`)."""
    from distributed import LocalCluster

    return LocalCluster(n_workers=n_workers or os.cpu_count() or 1, threads_per_worker=1,
                        processes=True, dashboard_address=":0")


@contextmanager
def dask_client(address: str | None, n_workers: int | None = None,
                flag: str = "scheduler_address") -> Iterator[Any]:
    """A `distributed.Client` of the scheduler at `address`, or of a new local cluster
    (closed on exit). A scheduler that does not answer, or has no worker, within
    ``CONNECT_TIMEOUT`` seconds is a one-line error, not a traceback or a run that waits
    forever."""
    from distributed import Client

    with ExitStack() as stack:
        if address is None:
            client = stack.enter_context(Client(stack.enter_context(_local_cluster(n_workers))))
        else:
            try:
                client = stack.enter_context(Client(address, timeout=CONNECT_TIMEOUT))
            except (OSError, TimeoutError, ValueError) as exc:
                reason = " ".join(str(exc).split()) or type(exc).__name__
                raise InvalidParameterError(
                    f"{flag} must be the address of a running Dask scheduler. Got "
                    f"{address!r} (could not connect: {reason}).") from None
            try:  # tasks sent to a scheduler without workers would wait forever
                client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
            except TimeoutError:
                raise InvalidParameterError(
                    f"{flag} must be the address of a Dask scheduler with at least one "
                    f"worker. Got {address!r} (no worker joined within {CONNECT_TIMEOUT} "
                    "s).") from None
        yield client


@contextmanager
def shared_cluster(backend: str, address: str | None,
                   flag: str = "scheduler_address") -> Iterator[str | None]:
    """The scheduler address fitting and scoring should use: `address` as given (reached
    once first, before any work), a new local cluster's when the backend is Dask and no
    address is given, or None for the other backends."""
    if backend != "dask":
        yield address
        return
    require_dask()
    if address is not None:
        with dask_client(address, flag=flag):
            pass
        yield address
        return
    with _local_cluster() as cluster:
        yield cluster.scheduler_address
