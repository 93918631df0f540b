"""Where blocks of attack scores are computed: this process, or a dask.distributed
cluster; and a helper that computes the next block while the caller uses this one.

A runner's ``map`` yields results in submission order, so the figures do not depend on
which task finished first, and ``put`` sends a value every task reads once. The
attacks (`assay.privacy.membership.attacks`) cut the work into blocks; this module only runs them.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from typing import Any

import numpy as np

from assay.engine.backends import check_backend_name, on_cluster

# Task inputs up to this size ride inside the task (below Dask's large-graph warning);
# larger ones are scattered first.
_INLINE_BYTES = 1 << 23


class LocalRunner:
    """Blocks computed in this process, one at a time, as the caller consumes them."""

    n_workers = 1
    local = True

    def put(self, value: Any) -> Any:
        return value

    def map(self, fn: Callable[..., Any], tasks: Iterator[tuple]) -> Iterator[Any]:
        return (fn(*args) for args in tasks)

    def share(self, key: Hashable, make: Callable[[], Any]) -> Any:
        """Here there is nothing to send: the value itself (`DaskRunner.share`)."""
        return make()

    def share_result(self, key: Hashable, fn: Callable[..., Any], *args: Any) -> Any:
        """Here there is nothing to keep on a worker: the result itself."""
        return fn(*args)

    def close(self) -> None:
        pass


class DaskRunner:
    """Blocks computed on a dask.distributed cluster with futures.

    At most two tasks per worker are in flight (submitted or finished and not yet read),
    and results come back in submission order, so the caller's memory stays bounded and
    its figures do not depend on which task finished first. Arrays of more than
    `_INLINE_BYTES` in a task's arguments (also inside its lists and tuples) go to the
    cluster with `Client.scatter` first, not inside the task; `share` sends a value the
    run's tasks read again and again once.
    """

    local = False

    def __init__(self, address: str | None) -> None:
        from assay.engine.cluster import dask_client

        self._stack = contextlib.ExitStack()
        try:
            self.client = self._stack.enter_context(dask_client(address))
            self.n_workers = max(1, len(self.client.scheduler_info().get("workers", {})))
            self._shared: dict[Hashable, Any] = {}
        except BaseException:
            self._stack.close()
            raise

    def put(self, value: Any) -> Any:
        """`value` on every worker (scattered once, broadcast)."""
        return self.client.scatter(value, broadcast=True, hash=False)

    def share(self, key: Hashable, make: Callable[[], Any]) -> Any:
        """``make()`` on the cluster for the rest of the run, sent from here once: every
        later call with `key` returns the same future (a worker that needs it fetches it
        from the worker that holds it)."""
        if key not in self._shared:
            self._shared[key] = self.client.scatter(make(), hash=False)
        return self._shared[key]

    def share_result(self, key: Hashable, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` computed on the cluster once for the rest of the run and kept
        there: every later call with `key` returns the same future."""
        if key not in self._shared:
            self._shared[key] = self.client.submit(fn, *map(self._ship, args), pure=False)
        return self._shared[key]

    def _ship(self, value: Any) -> Any:
        if isinstance(value, np.ndarray) and value.nbytes > _INLINE_BYTES:
            return self.client.scatter(value, hash=False)
        if isinstance(value, list | tuple):  # Dask resolves futures nested in these
            return type(value)(self._ship(v) for v in value)
        return value

    def map(self, fn: Callable[..., Any], tasks: Iterator[tuple]) -> Iterator[Any]:
        tasks = iter(tasks)
        pending: deque = deque()

        def submit() -> None:
            args = next(tasks, None)
            if args is not None:
                pending.append(self.client.submit(fn, *map(self._ship, args), pure=False))

        try:
            for _ in range(2 * self.n_workers):
                submit()
            while pending:
                future = pending.popleft()
                result = future.result()
                future.release()
                submit()
                yield result
        finally:
            for future in pending:
                future.cancel()

    def close(self) -> None:
        self._shared.clear()
        self._stack.close()


def check_backend(backend: str, scheduler_address: str | None) -> None:
    """The scoring backend and address, before any work (the connection is tried when
    the cluster is opened, also before any work). Scoring reads the engine's vocabulary
    (`assay.engine.backends`): "dask" scores on the cluster, the others in this process."""
    from assay.engine.cluster import check_scheduler, require_dask

    backend = check_backend_name(backend)
    check_scheduler(backend, scheduler_address)
    if backend == "dask":
        require_dask()


@contextlib.contextmanager
def open_runner(backend: str, scheduler_address: str | None
                ) -> Iterator[LocalRunner | DaskRunner]:
    """The place score blocks are computed for the length of one call."""
    runner = DaskRunner(scheduler_address) if on_cluster(backend) else LocalRunner()
    try:
        yield runner
    finally:
        runner.close()


@contextlib.contextmanager
def ahead(items: Iterator[Any]) -> Iterator[Iterator[Any]]:
    """`items` in order, the next one computed on a second thread while the caller works
    on this one: the scorer's next block of targets overlaps the figures of the last
    (numpy releases the GIL in its loops, so two cores share the work). One item ahead
    at most: memory grows by one block. Errors reach the caller at the item that raised;
    leaving early stops the thread after its current item."""
    if (os.cpu_count() or 1) < 2:
        yield items
        return
    import queue
    import threading

    done, stop = object(), threading.Event()
    q: queue.Queue = queue.Queue(maxsize=1)

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put((done, None))
        except BaseException as error:  # handed to the consumer, raised there
            q.put((done, error))

    def consume() -> Iterator[Any]:
        while True:
            item, error = q.get()
            if error is not None:
                raise error
            if item is done:
                return
            yield item

    thread = threading.Thread(target=produce, name="assay-scores-ahead", daemon=True)
    thread.start()
    try:
        yield consume()
    finally:
        stop.set()
        while thread.is_alive():  # free a producer blocked on a full queue
            with contextlib.suppress(queue.Empty):
                q.get(timeout=0.1)
        thread.join()
