"""Thread-parallel loops over row spans for kernels that release the GIL.

numpy's matrix products, partial sorts, comparisons and fancy indexing release the GIL,
so spans of rows run truly in parallel in threads. BLAS is limited to one thread inside
the parallel region so that the threads do not oversubscribe the cores.
"""

import os
from concurrent.futures import ThreadPoolExecutor

from threadpoolctl import ThreadpoolController

__all__ = ["blas_threads", "effective_n_jobs", "run_spans"]

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


def effective_n_jobs(n_jobs):
    """Threads to use: None or -1 mean every core, -2 all but one, and so on."""
    n_cpu = os.cpu_count() or 1
    if n_jobs is None:
        return n_cpu
    n_jobs = int(n_jobs)
    if n_jobs < 0:
        return max(1, n_cpu + 1 + n_jobs)
    return max(1, n_jobs)


def run_spans(fn, n_items, step, n_jobs):
    """Call ``fn(start, stop)`` for consecutive spans of ``step`` items, in threads.

    Results are returned in span order. With one thread (or one span) the calls run in
    the calling thread and BLAS keeps its own threading.
    """
    spans = [(s, min(s + step, n_items)) for s in range(0, n_items, step)]
    n_threads = min(effective_n_jobs(n_jobs), len(spans))
    if n_threads <= 1:
        return [fn(a, b) for a, b in spans]
    with blas_threads(1):
        with ThreadPoolExecutor(n_threads) as pool:
            return list(pool.map(lambda ab: fn(*ab), spans))
