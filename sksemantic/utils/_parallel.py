"""Parallel loops through joblib, for kernels that release the GIL.

numpy's matrix products, partial sorts, comparisons and fancy indexing release the GIL,
so tasks run truly in parallel in threads: joblib's threading backend is the default.
An active ``joblib.parallel_config`` (or ``parallel_backend``) is honoured, as for
scikit-learn's ``n_jobs``: its backend runs the tasks (loky, dask, ...) and its
``n_jobs`` applies when an estimator's ``n_jobs`` is None.

Tasks either return their results, combined by the caller (they may then run in other
processes), or share memory with the caller (``shared=True``: they write into its
arrays, or read state that other tasks update); shared tasks always run in threads of
this process, whatever the backend (joblib's ``require="sharedmem"``).

BLAS is limited to one thread around threaded work, so that the threads do not
oversubscribe the cores (process-based backends limit their workers' BLAS themselves).
Inside a dask worker, ``n_jobs=None`` takes the worker's share of its threads rather
than every core.
"""

import functools
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import joblib
from joblib.parallel import SequentialBackend, ThreadingBackend, get_active_backend
from threadpoolctl import ThreadpoolController

__all__ = ["ParallelPool", "blas_threads", "effective_n_jobs", "parallel_map", "run_spans"]

_CONTROLLER = None


def blas_threads(n_threads):
    """Context manager limiting BLAS to ``n_threads`` threads.

    Uses one cached ``ThreadpoolController``: ``threadpool_limits`` re-scans the loaded
    libraries on every call (several milliseconds), which dominated small queries.
    """
    global _CONTROLLER
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=int(n_threads), user_api="blas")


def _allowed_cpus():
    # The cores this process may run on (CPU affinity, cgroup quotas, joblib's
    # LOKY_MAX_CPU_COUNT), unlike os.cpu_count(), which counts the machine's.
    return _cpus(os.environ.get("LOKY_MAX_CPU_COUNT"))


@functools.lru_cache(maxsize=8)
def _cpus(_limit):
    # Read once per limit: joblib reads the cgroup files on every call, a tenth of a
    # millisecond that every parallel loop paid.
    return max(1, int(joblib.cpu_count()))


def _dask_worker_share():
    """Threads for a task running in a dask worker (None outside one).

    The worker's ``nthreads`` are the cores dask gave it, shared by the tasks it runs
    at once: a task gets ``nthreads // tasks running`` (1 for a one-thread worker).
    Looked up only if ``distributed`` is already imported: nothing is imported here.
    """
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return None
    try:
        worker = distributed.get_worker()
    except (ValueError, AttributeError):
        return None
    state = getattr(worker, "state", worker)
    nthreads = int(getattr(state, "nthreads", 1) or 1)
    running = int(getattr(state, "executing_count", 1) or 1)
    return max(1, nthreads // running)


def effective_n_jobs(n_jobs=None, *, local=False):
    """Workers a parallel loop uses for ``n_jobs``.

    Parameters
    ----------
    n_jobs : int or None, default=None
        Positive: that many workers. Negative: ``-1`` every core, ``-2`` all but one,
        and so on. None: the ``n_jobs`` of an active ``joblib.parallel_config`` if it
        sets one; else, inside a dask worker, its share of the worker's threads;
        else every core this process may use.
    local : bool, default=False
        Count threads of this process (native threads, shared-memory tasks): negative
        values count this machine's cores even when a distributed backend is active.

    Returns
    -------
    n_workers : int
        At least 1; 1 under joblib's sequential backend.
    """
    # The backend that would run threads-preferring tasks, and the context's n_jobs as
    # set (asking with prefer="threads" would report 1 outside any context).
    backend, _ = get_active_backend(prefer="threads")
    _, context_n_jobs = get_active_backend()
    if isinstance(backend, SequentialBackend):
        return 1
    if n_jobs is None:
        if context_n_jobs is None:
            share = _dask_worker_share()
            cpus = _allowed_cpus()
            return cpus if share is None else min(share, cpus)
        n_jobs = context_n_jobs
    n_jobs = int(n_jobs)
    if n_jobs >= 0:
        return max(1, n_jobs)  # 0 runs on one, as it always has
    if local or getattr(backend, "uses_threads", False):
        return max(1, _allowed_cpus() + 1 + n_jobs)
    # The backend counts its own workers (a dask cluster's threads, for instance).
    return max(1, int(backend.effective_n_jobs(n_jobs)))


class ParallelPool:
    """Workers for several parallel loops in a row (one pool, started once).

    Parameters
    ----------
    n_jobs : int or None
        As for :func:`effective_n_jobs`.
    shared : bool, default=False
        The tasks share memory with the caller (they write into its arrays, or read
        state that other tasks update): they run in threads of this process whatever
        backend is active (joblib's ``require="sharedmem"``). Otherwise a task must
        return its result; the active backend may run it in another process.
    max_workers : int, default=None
        Upper bound on the workers (the number of tasks per loop, say).

    Use as a context manager; :meth:`map` runs one loop. With one worker the tasks run
    in the calling thread and BLAS keeps its own threading.
    """

    def __init__(self, n_jobs, *, shared=False, max_workers=None):
        n = effective_n_jobs(n_jobs, local=shared)
        self.n_workers = n if max_workers is None else max(1, min(n, int(max_workers)))
        self.shared = shared
        self._stack = None
        self._run = None

    def __enter__(self):
        self._stack = ExitStack()
        if self.n_workers <= 1:
            self._run = _sequential
            return self
        require = "sharedmem" if self.shared else None
        backend, _ = get_active_backend(prefer="threads", require=require)
        self._stack.enter_context(blas_threads(1))
        if type(backend) is ThreadingBackend:
            # joblib's threading backend (the default, or chosen by the context), run
            # in a plain thread pool: joblib.Parallel polls its results every 10 ms,
            # which would dominate the small loops (a search of a few hundred queries).
            pool = self._stack.enter_context(ThreadPoolExecutor(self.n_workers))
            self._run = lambda fn, tasks: pool.map(lambda args: fn(*args), tasks)
        else:
            parallel = self._stack.enter_context(joblib.Parallel(
                n_jobs=self.n_workers, prefer="threads", require=require,
                return_as="generator",
            ))
            self._run = lambda fn, tasks: parallel(joblib.delayed(fn)(*t) for t in tasks)
        return self

    def __exit__(self, *exc):
        self._stack.close()
        self._stack = self._run = None

    def map(self, fn, tasks, on_result=None):
        """``[fn(*task) for task in tasks]``, the tasks run by the pool's workers.

        Results come back in task order. With ``on_result``, each is instead handed to
        ``on_result(task, result)`` in the calling thread as soon as it (and every
        earlier one) is done, and not kept: the caller stores it where it belongs
        (no second copy of the whole output) and reports progress.
        """
        tasks = [tuple(t) for t in tasks]
        results = self._run(fn, tasks)
        if on_result is None:
            return list(results)
        for task, result in zip(tasks, results, strict=True):
            on_result(task, result)
        return None


def _sequential(fn, tasks):
    return (fn(*t) for t in tasks)


def parallel_map(fn, tasks, n_jobs, *, shared=False, on_result=None):
    """One parallel loop: ``[fn(*task) for task in tasks]`` (see :class:`ParallelPool`).

    With one task, or one worker, the tasks run in the calling thread, at no cost.
    """
    tasks = [tuple(t) for t in tasks]
    with ParallelPool(n_jobs, shared=shared, max_workers=len(tasks)) as pool:
        return pool.map(fn, tasks, on_result)


def run_spans(fn, n_items, step, n_jobs, *, shared=False, on_result=None):
    """``fn(start, stop)`` for consecutive spans of ``step`` items (see
    :func:`parallel_map`); results in span order."""
    spans = [(s, min(s + step, n_items)) for s in range(0, n_items, step)]
    return parallel_map(fn, spans, n_jobs, shared=shared, on_result=on_result)
