"""Where independent tasks run: this process, local worker processes, or a Dask cluster.

The Monte Carlo work of a run is a list of independent tasks (a chunk of scenarios, a
stressed re-simulation, a part of the sensitivity runs). Each task's random numbers are a
pure function of the run seed and the scenario indices (:mod:`fundmodel.sampling`), so a
task gives the same numbers wherever it runs, and the caller combines the results *in task
order*: results are bit-for-bit identical whatever the engine, the number of workers or
machines, and whether a task had to be re-run after a worker died.

Engines
-------
``serial``
    This machine: the tasks run in this process (``workers=1``) or in ``workers`` forked
    local processes (:class:`concurrent.futures.ProcessPoolExecutor`).
``dask``
    A Dask distributed cluster (:class:`DaskEngine`): the scheduler at ``scheduler``
    (``tcp://host:8786``), else the one in Dask's configuration
    (``DASK_SCHEDULER_ADDRESS``), else a :class:`distributed.LocalCluster` of ``workers``
    single-threaded worker processes started for the run. Dask re-runs the tasks of a
    worker that dies (up to ``distributed.scheduler.allowed-failures`` times, default 3).

A task function has the signature ``fn(shared, task)``: ``shared`` is sent to each worker
once per :meth:`map` call (the assumptions, the run settings), ``task`` is small (scenario
bounds). Task functions must be importable module-level functions of ``fundmodel`` (a
remote cluster needs the same fundmodel and numpy versions installed on every worker;
:class:`DaskEngine` checks this when it connects).

Process-pool policy
-------------------
Every local worker process of fundmodel is started by :func:`worker_pool` (watchdog on the
parent, one BLAS thread, killed with the run); the start method follows what the workers need:

- ``fork`` for Monte Carlo tasks (:class:`SerialEngine`): the assumptions and fitted policies
  reach the workers without pickling;
- ``spawn`` for :class:`BackgroundTask` (the fund's frontiers): HiGHS threads may already run
  in the parent and would not survive a fork;
- ``forkserver`` for memo rendering (:mod:`fundmodel.memo.render`): matplotlib and WeasyPrint
  are imported once in the server, not in a threaded parent.

Examples
--------
>>> with open_engine("serial") as engine:
...     list(engine.map(pow, 2, [1, 2, 3]))
[2, 4, 8]
"""

from __future__ import annotations

import itertools
import os
import secrets
import sys
import uuid
from collections import deque
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from .errors import UsageError

#: Engines accepted by ``--engine``.
ENGINES = ("serial", "dask")

_SHARED: dict[str, Any] = {}

#: Seconds :class:`DaskEngine` waits for a scheduler given by address to connect and answer
#: (environment variable ``FUNDMODEL_DASK_CONNECT_TIMEOUT`` to change it).
CONNECT_TIMEOUT_SECONDS = float(os.environ.get("FUNDMODEL_DASK_CONNECT_TIMEOUT", 20))
CONNECT_TIMEOUT = f"{CONNECT_TIMEOUT_SECONDS:.0f}s"

#: Seconds a cluster may take for one task's result (or a call on every worker) before the run
#: stops with exit 2: a scheduler that accepts connections but never answers, or a cluster
#: without live workers, must not hang a run for ever. A chunk takes seconds; override with
#: the environment variable ``FUNDMODEL_DASK_TASK_TIMEOUT`` (seconds) for very slow clusters.
TASK_TIMEOUT_SECONDS = float(os.environ.get("FUNDMODEL_DASK_TASK_TIMEOUT", 1800))


def probe_scheduler(address: str, timeout: float | None = None) -> None:
    """Check that a Dask scheduler answers at ``address`` within ``timeout`` seconds.

    ``timeout`` defaults to :data:`CONNECT_TIMEOUT_SECONDS`.

    Dask's client waits without limit for the handshake of a server that accepted the TCP
    connection (a wrong port, a stuck scheduler); this probe opens a connection and asks
    the scheduler for its identity, each step under a deadline.

    Raises
    ------
    UsageError
        Nothing answers, or not within ``timeout``.
    """
    import asyncio

    from distributed.comm import connect

    timeout = CONNECT_TIMEOUT_SECONDS if timeout is None else float(timeout)

    async def ask() -> dict:
        comm = await asyncio.wait_for(connect(address, timeout=f"{timeout}s"), timeout)
        try:
            await asyncio.wait_for(comm.write({"op": "identity"}), timeout)
            return await asyncio.wait_for(comm.read(), timeout)
        finally:
            comm.abort()

    try:
        answer = asyncio.run(ask())
    except (OSError, TimeoutError, asyncio.TimeoutError, ValueError, TypeError) as exc:
        raise UsageError(f"cannot reach the Dask scheduler at {address!r}: no answer within {timeout:.0f} s "
                         f"({type(exc).__name__}{': ' + str(exc) if str(exc) else ''})") from None
    if not isinstance(answer, dict) or answer.get("type") != "Scheduler":
        raise UsageError(f"{address!r} answered, but not as a Dask scheduler ({str(answer)[:80]})")

#: Dask configuration of the worker processes a :class:`DaskEngine` starts (set the same on a
#: remote cluster). Dask sets ``MALLOC_TRIM_THRESHOLD_`` in its workers, which turns off
#: glibc's adaptive mmap threshold: every array above 128 KiB is then a fresh ``mmap`` and
#: the model's chunk tasks ran about 35 % slower than in a plain process (measured); a fixed
#: 64 MiB mmap threshold restores the heap reuse (arrays of a chunk are a few MiB each).
WORKER_ENVIRONMENT = {"distributed.nanny.pre-spawn-environ.MALLOC_MMAP_THRESHOLD_": str(64 * 2**20)}


def _single_threaded_call(fn: Callable, shared: Any, task: Any) -> Any:
    """Run ``fn(shared, task)`` with one BLAS thread.

    Multi-threaded BLAS kernels may round differently from single-threaded ones, and the
    numbers must not depend on where a task ran; scenario-level parallelism uses processes.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return fn(shared, task)


def _pool_init(fn: Callable, shared: Any) -> None:
    _SHARED.update(fn=fn, shared=shared)


def _pool_call(task: Any) -> Any:
    return _single_threaded_call(_SHARED["fn"], _SHARED["shared"], task)


def spread_by_project(task: Callable, shared: Any, projects: list[str], engine=None) -> dict:
    """``task(shared, group)`` for groups of ``projects``, one group per worker of ``engine``
    (one single-threaded call without an engine); the groups' dicts merged.

    For fits that are a pure function of ``shared`` and each project's own draws (the credit and
    option policies): the grouping changes no number. ``projects`` are dealt round-robin, so list
    the costliest first.
    """
    if engine is None:
        return _single_threaded_call(task, shared, list(projects))
    w = max(int(engine.workers), 1)
    groups = [g for g in (list(projects)[k::w] for k in range(w)) if g]
    found: dict = {}
    for part in engine.map(task, shared, groups):
        found.update(part)
    return found


class PerProcessCache:
    """A few results kept per process under a key (cleared when ``size`` keys are held)."""

    def __init__(self, size: int = 8):
        self.size, self._items = size, {}

    def get_or_make(self, key: Any, make: Callable[[], Any]) -> Any:
        if key not in self._items:
            value = make()
            if len(self._items) >= self.size:
                self._items.clear()
            self._items[key] = value
        return self._items[key]


# ----------------------------------------------------------------------------- local worker processes
#: Seconds between two checks of a worker's watchdog on the processes it depends on.
WATCHDOG_SECONDS = 0.25


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - exists, owned by someone else
        return True
    return True


def _watch_parents(parent: int, run: int) -> None:
    import time

    while os.getppid() == parent and _alive(run):
        time.sleep(WATCHDOG_SECONDS)
    os._exit(1)  # noqa: SLF001 - the run has gone: stop at once, write nothing more


def _worker_setup(run_pid: int, initializer: Callable | None, initargs: tuple) -> None:
    """First thing in every local worker process: die with the run, leave signals to it.

    - ``PR_SET_PDEATHSIG`` (Linux): the kernel sends ``SIGKILL`` when the parent dies;
    - a watchdog thread (every platform, and for workers forked by a ``forkserver``, whose
      parent is not the run): exits when the parent changes or the run's process is gone;
    - ``SIGINT`` ignored (Ctrl-C reaches the whole process group; the run decides and
      stops its workers), ``SIGTERM`` back to the default (a forked worker inherits the
      run's handler, which would turn termination into an exception the pool survives).

    Workers never hold the output folder's lock: :func:`fundmodel.io.take_lock` closes
    every lock descriptor in forked children.
    """
    import signal
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover - the watchdog still works
            pass
    if os.getppid() != parent or not _alive(run_pid):  # died before the death signal was armed
        os._exit(1)  # noqa: SLF001
    threading.Thread(target=_watch_parents, args=(parent, run_pid), name="fundmodel-watchdog", daemon=True).start()
    if initializer is not None:
        initializer(*initargs)


def worker_pool(workers: int, *, method: str = "fork", initializer: Callable | None = None,
                initargs: tuple = ()):
    """A :class:`~concurrent.futures.ProcessPoolExecutor` whose workers never outlive this process.

    The one way fundmodel starts local worker processes (scenario chunks, memo rendering,
    frontiers). Use it with :func:`pool_scope`, which stops the workers at once when the
    block is left by an error, Ctrl-C or ``SIGTERM``.

    Parameters
    ----------
    workers : int
        Processes.
    method : {"fork", "forkserver", "spawn"}
        Start method (``spawn`` where the platform lacks the one asked for).
    initializer : callable, optional
        Run in each worker after :func:`_worker_setup`.
    initargs : tuple
        Its arguments.
    """
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    ctx = mp.get_context(method if method in mp.get_all_start_methods() else "spawn")
    return ProcessPoolExecutor(max(int(workers), 1), mp_context=ctx, initializer=_worker_setup,
                               initargs=(os.getpid(), initializer, initargs))


def stop_pool(pool, *, kill: bool) -> None:
    """Shut ``pool`` down; with ``kill``, kill its workers first instead of waiting for them.

    Killing a worker while it sends a result leaves a partial message in the pool's result
    pipe, and the executor's manager thread would wait for the rest for ever (the parent
    holds a write end of that pipe too). Once the workers are dead, the parent closes its
    write end: the manager thread reads end-of-file, marks the pool broken and stops.
    The executor's process table and result queue are read defensively (CPython internals,
    stable from 3.9 to 3.13; Python 3.14 has ``terminate_workers``).
    """
    if kill:
        processes = list((getattr(pool, "_processes", None) or {}).values())
        for process in processes:
            process.kill()
        for process in processes:
            process.join(5)
        writer = getattr(getattr(pool, "_result_queue", None), "_writer", None)
        if writer is not None:
            writer.close()
        manager = getattr(pool, "_executor_manager_thread", None)
        if manager is not None:  # let it fail the pending futures before they are cancelled
            manager.join(5)
    pool.shutdown(wait=True, cancel_futures=True)


def map_in_order(pool, fn: Callable[[Any], Any], tasks: Iterable[Any]) -> Iterator[Any]:
    """``fn(task)`` for every task on ``pool``, yielded in task order.

    Like ``pool.map``, but leaving the generator early does not cancel the pending
    futures: :func:`stop_pool` settles them (the executor's own ``map`` cancels them, and
    a manager thread that then fails them as broken raises ``InvalidStateError`` on
    CPython < 3.12).
    """
    futures = [pool.submit(fn, task) for task in tasks]
    for future in futures:
        yield future.result()


@contextmanager
def pool_scope(pool) -> Iterator:
    """``with pool_scope(worker_pool(...)) as pool:``: workers stopped on exit, killed on any error."""
    try:
        yield pool
    except BaseException:
        stop_pool(pool, kill=True)
        raise
    stop_pool(pool, kill=False)


class BackgroundTask:
    """``fn(job)`` in one spawned process while the caller goes on (in this process when not ``enabled``).

    Used for the fund's frontiers, traced while the main process solves the allocation and
    runs the stresses. ``spawn``, not ``fork``: the job calls HiGHS, whose thread pool may
    already exist in this process and would not survive a fork. If the worker cannot start or
    dies (e.g. the main module cannot be re-imported), the job runs here instead: the numbers
    are the same.

    Parameters
    ----------
    fn : callable
        Module-level function of one picklable argument.
    job : object
        Its argument.
    enabled : bool
        Start the process (else :meth:`get` runs ``fn(job)`` here).
    """

    def __init__(self, fn: Callable[[Any], Any], job: Any, enabled: bool):
        self.fn, self.job, self.executor, self.future = fn, job, None, None
        if enabled:
            try:
                self.executor = worker_pool(1, method="spawn")
                self.future = self.executor.submit(fn, job)
            except Exception:  # pragma: no cover - no processes available: run here later
                self.cancel()

    def get(self) -> Any:
        """The job's result (waits for the process; runs the job here if the process is gone)."""
        if self.future is None:
            return self.fn(self.job)
        from concurrent.futures.process import BrokenProcessPool

        try:
            return self.future.result()
        except BrokenProcessPool:
            return self.fn(self.job)
        finally:
            self.cancel()

    def cancel(self) -> None:
        """Stop the worker (it may be mid-solve) without waiting for it."""
        if self.executor is None:
            return
        executor, self.executor, self.future = self.executor, None, None
        stop_pool(executor, kill=True)


class SerialEngine:
    """Tasks in this process (``workers=1``) or in ``workers`` forked local processes.

    Parameters
    ----------
    workers : int
        Processes. Each :meth:`map` call with more than one task starts its own pool, so
        the shared data reaches the workers by ``fork`` (no pickling of large objects).
    """

    name = "serial"

    def __init__(self, workers: int = 1):
        self.workers = max(int(workers), 1)

    def sees_path(self, path: str | Path) -> bool:  # noqa: ARG002 - same machine
        """True: local workers share this process's file system."""
        return True

    def map(self, fn: Callable[[Any, Any], Any], shared: Any, tasks: Sequence[Any]) -> Iterator[Any]:
        """``fn(shared, task)`` for every task, yielded in task order.

        Parameters
        ----------
        fn : callable
            Module-level function ``fn(shared, task)``.
        shared : object
            Data every task needs.
        tasks : sequence
            One item per task.

        Yields
        ------
        object
            The results, in the order of ``tasks``.
        """
        tasks = list(tasks)
        workers = min(self.workers, len(tasks))
        if workers <= 1:
            for task in tasks:
                yield _single_threaded_call(fn, shared, task)
            return
        pool = worker_pool(workers, method="fork", initializer=_pool_init, initargs=(fn, shared))
        finished = False
        try:
            yield from map_in_order(pool, _pool_call, tasks)
            finished = True
        finally:  # interrupted, failed or abandoned by the consumer: the workers stop now
            stop_pool(pool, kill=not finished)

    def describe(self) -> dict:
        """Engine, worker count (recorded in the run manifest)."""
        return {"engine": self.name, "workers": self.workers}

    def close(self) -> None:
        """Nothing to release."""


def _identity(x: Any) -> Any:
    return x


def _versions() -> dict[str, str]:
    import numpy as np

    from ._version import __version__

    return {"fundmodel": __version__, "numpy": np.__version__}


def _read_token(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


class DaskEngine:
    """Tasks on a Dask distributed cluster.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``). When omitted, Dask's
        configured ``scheduler-address`` (``DASK_SCHEDULER_ADDRESS``) is used, else a
        :class:`distributed.LocalCluster` of ``workers`` processes with one thread each.
    workers : int
        Worker processes of the local cluster (ignored with a scheduler address).
    in_flight_per_worker : int
        Tasks submitted ahead per worker thread. Results are consumed in task order and
        released at once, so workers never hold more than this many finished results each.

    Notes
    -----
    The shared data of a :meth:`map` is a Dask task of its own (not scattered data), so the
    scheduler can recompute it if the worker holding it dies.
    """

    name = "dask"

    def __init__(self, scheduler: str | None = None, workers: int = 2, *, in_flight_per_worker: int = 2):
        try:
            import dask
            from distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover - dask is a dependency
            raise UsageError(f"--engine dask needs the 'distributed' package: {exc}") from None
        import logging

        self.cluster = None
        address = scheduler or dask.config.get("scheduler-address", None)
        self.in_flight_per_worker = max(int(in_flight_per_worker), 1)
        if address:
            probe_scheduler(address)
            try:
                self.client = Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
            except (OSError, TimeoutError, ValueError) as exc:
                raise UsageError(f"cannot reach the Dask scheduler at {address!r}: {exc}") from None
        else:
            # one thread per worker: the tasks are numpy-bound and hold the GIL often
            with dask.config.set(WORKER_ENVIRONMENT):
                self.cluster = LocalCluster(n_workers=max(int(workers), 1), threads_per_worker=1, processes=True,
                                            dashboard_address=None, silence_logs=logging.ERROR)
            self.client = Client(self.cluster, set_as_default=False)
        self.address = self.client.scheduler.address
        try:
            self._check_versions()
        except BaseException:
            self.close()
            raise

    def _check_versions(self) -> None:
        mine = _versions()
        theirs = self.client.run(_versions)
        wrong = {w: v for w, v in theirs.items() if v != mine}
        if wrong:
            raise UsageError(f"Dask workers run other versions than this client {mine}: {wrong}; install the "
                             "same fundmodel and numpy everywhere, results would not be reproducible")

    @property
    def workers(self) -> int:
        """Worker threads currently in the cluster (at least 1)."""
        return max(sum(self.client.nthreads().values()), 1)

    def sees_path(self, path: str | Path) -> bool:
        """True if every worker sees ``path`` (an existing folder) as this process does.

        A random token is written into the folder and read back on every worker: a shared
        file system (or a local cluster) lets workers write their results straight into
        files there; otherwise results travel back to this process.
        """
        token = secrets.token_hex(16)
        probe = Path(path) / f".probe-{token}"
        probe.write_text(token)
        try:
            seen = self.client.run(_read_token, str(probe))
        finally:
            probe.unlink(missing_ok=True)
        return bool(seen) and all(v == token for v in seen.values())

    def map(self, fn: Callable[[Any, Any], Any], shared: Any, tasks: Iterable[Any]) -> Iterator[Any]:
        """``fn(shared, task)`` for every task on the cluster, yielded in task order.

        See :meth:`SerialEngine.map`. At most ``in_flight_per_worker`` tasks per worker
        thread are submitted ahead of the one being consumed.
        """
        run = uuid.uuid4().hex[:12]
        name = getattr(fn, "__name__", "task").strip("_")
        shared_future = self.client.submit(_identity, shared, key=f"fundmodel-shared-{name}-{run}", pure=False)
        pending: deque = deque()
        numbered = enumerate(tasks)
        limit = self.in_flight_per_worker * self.workers

        def submit(batch: int) -> None:
            for k, task in itertools.islice(numbered, batch):
                pending.append(self.client.submit(_single_threaded_call, fn, shared_future, task,
                                                  key=f"fundmodel-{name}-{run}-{k}", pure=False))

        try:
            submit(limit)
            while pending:
                future = pending.popleft()
                result = self._result(future)
                future.release()
                submit(1)
                yield result
        finally:
            for future in pending:
                future.cancel()
            shared_future.cancel()

    def _result(self, future) -> Any:
        """A task's result, or exit 2 when the cluster gives none within :data:`TASK_TIMEOUT_SECONDS`."""
        from distributed import TimeoutError as DaskTimeout

        try:
            return future.result(timeout=TASK_TIMEOUT_SECONDS)
        except (TimeoutError, DaskTimeout):
            raise UsageError(f"the Dask cluster at {self.address} returned no result for {TASK_TIMEOUT_SECONDS:.0f} s "
                             f"({self.workers} worker threads); check that its workers are alive, or set "
                             "FUNDMODEL_DASK_TASK_TIMEOUT for a slower cluster") from None

    def describe(self) -> dict:
        """Engine, scheduler address (``local`` for a cluster started here) and worker count."""
        return {"engine": self.name, "scheduler": "local" if self.cluster is not None else self.address,
                "workers": self.workers}

    def close(self) -> None:
        """Disconnect; shut the local cluster down if this engine started it."""
        try:
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()


@contextmanager
def open_engine(kind: str = "serial", *, workers: int = 1, scheduler: str | None = None) -> Iterator:
    """An engine for the duration of a ``with`` block.

    Parameters
    ----------
    kind : {"serial", "dask"}
    workers : int
        Local processes (``serial``) or workers of the local Dask cluster.
    scheduler : str, optional
        Dask scheduler address (``dask`` only).

    Yields
    ------
    SerialEngine or DaskEngine
    """
    if kind not in ENGINES:
        raise UsageError(f"unknown engine {kind!r}; choose one of {', '.join(ENGINES)}")
    if scheduler and kind != "dask":
        raise UsageError("--scheduler needs --engine dask")
    engine = DaskEngine(scheduler, workers) if kind == "dask" else SerialEngine(workers)
    try:
        yield engine
    finally:
        engine.close()


def preflight(settings) -> None:
    """Check, before any output is created, that the engine of ``settings`` can be reached.

    A Dask scheduler given by address (``--scheduler`` or ``DASK_SCHEDULER_ADDRESS``) must
    answer (:func:`probe_scheduler`); a local engine needs nothing.
    """
    if getattr(settings, "engine", "serial") != "dask":
        return
    import dask

    address = getattr(settings, "scheduler", None) or dask.config.get("scheduler-address", None)
    if address:
        probe_scheduler(address)


def engine_for(settings, engine=None):
    """``engine`` if given, else a new engine from ``settings`` (a context manager either way).

    Lets library functions accept an open engine (one cluster for a whole run) and still
    work on their own.
    """
    if engine is not None:
        @contextmanager
        def borrowed():
            yield engine
        return borrowed()
    return open_engine(getattr(settings, "engine", "serial"), workers=settings.workers,
                       scheduler=getattr(settings, "scheduler", None))


__all__ = ["ENGINES", "SerialEngine", "DaskEngine", "open_engine", "engine_for", "worker_pool", "pool_scope",
           "stop_pool", "map_in_order", "preflight", "probe_scheduler"]
