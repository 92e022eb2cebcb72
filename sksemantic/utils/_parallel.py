"""Thread-parallel loops over row spans for kernels that release the GIL.

numpy's matrix products, partial sorts, comparisons and fancy indexing release the GIL,
so spans of rows run truly in parallel in threads. BLAS is limited to one thread inside
the parallel region so that the threads do not oversubscribe the cores.
"""

import os
from concurrent.futures import ThreadPoolExecutor

from threadpoolctl import threadpool_limits

__all__ = ["effective_n_jobs", "run_spans"]


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
    with threadpool_limits(limits=1, user_api="blas"):
        with ThreadPoolExecutor(n_threads) as pool:
            return list(pool.map(lambda ab: fn(*ab), spans))
