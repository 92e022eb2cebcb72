"""Choosing and building an index from an estimator's parameters."""

import importlib.util
import os
from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from ._annoy import AnnoyIndex
from ._brute import BruteIndex
from ._hnsw import HNSWIndex
from ._ivf import IVFIndex
from ._ivf_rq import IVFRQIndex
from ._metric import METRICS

__all__ = [
    "ALGORITHMS",
    "AUTO_BRUTE_MAX_SAMPLES",
    "AUTO_HNSW_MAX_SAMPLES",
    "INDEX_PARAMETER_CONSTRAINTS",
    "index_seed",
    "make_index",
    "resolve_algorithm",
]

ALGORITHMS = ("auto", "brute", "ivf", "ivf_rq", "annoy", "hnsw")

#: Below this many indexed points "auto" searches exactly: the all-pairs product is then
#: cheaper than building and probing lists (see benchmarks/bench_graph.py).
AUTO_BRUTE_MAX_SAMPLES = 20_000

#: Up to this many points, "auto" gives a search (not a graph) an HNSW graph when
#: hnswlib is installed: its walks answer batches of any size 4-11x faster than exact
#: search, where IVF's lists need large batches, for a build about eight times as long
#: (benchmarks/RESULTS_recall.md). Beyond, the single-threaded build (tens of minutes)
#: outweighs it, and IVF's lists can be built from disk.
AUTO_HNSW_MAX_SAMPLES = 2_000_000


#: Constraints of the index parameters every estimator over this layer exposes
#: (merged into each estimator's ``_parameter_constraints``).
INDEX_PARAMETER_CONSTRAINTS = {
    "algorithm": [StrOptions(set(ALGORITHMS))],
    "n_lists": [Interval(Integral, 1, None, closed="left"), None],
    "n_probe": [Interval(Integral, 1, None, closed="left"), None],
    "n_trees": [Interval(Integral, 1, None, closed="left"), None],
    "search_k": [Interval(Integral, 1, None, closed="left"), None],
    "n_links": [Interval(Integral, 2, None, closed="left"), None],
    "ef_search": [Interval(Integral, 1, None, closed="left"), None],
    "storage": [str, os.PathLike, None],
    "n_jobs": [Integral, None],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
}


def index_seed(random_state):
    """An int seed (or None) for an index from an estimator's ``random_state``.

    Annoy's ``set_seed`` takes an int; a RandomState instance gives one draw from it.
    """
    if random_state is None:
        return None
    if isinstance(random_state, Integral):
        return int(random_state)
    return int(random_state.randint(np.iinfo(np.int32).max))


@validate_params(
    {
        "algorithm": [StrOptions(set(ALGORITHMS))],
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "metric": [StrOptions(set(METRICS))],
        "search": ["boolean"],
        "storage": [str, os.PathLike, None],
    },
    prefer_skip_nested_validation=True,
)
def resolve_algorithm(algorithm, n_samples, metric, *, search=False, storage=None):
    """The concrete algorithm ``"auto"`` stands for at this size and metric.

    Parameters
    ----------
    algorithm : str
        One of :data:`ALGORITHMS`; anything but ``"auto"`` is returned as is.
    n_samples : int
        Points to be indexed.
    metric : str
        One of ``METRICS``.
    search : bool, default=False
        For an index that answers queries (a search) rather than a self-join (a graph).
    storage : str, path-like or None, default=None
        Where the index writes its vectors; only IVF builds from disk.

    Returns
    -------
    algorithm : str
        ``"brute"`` up to :data:`AUTO_BRUTE_MAX_SAMPLES` points; beyond, for a search
        held in memory, ``"hnsw"`` up to :data:`AUTO_HNSW_MAX_SAMPLES` when hnswlib is
        installed; else ``"ivf"`` (``"annoy"`` for ``"manhattan"``).

    Examples
    --------
    >>> from sksemantic.neighbors import resolve_algorithm
    >>> resolve_algorithm("auto", 5_000, "cosine"), resolve_algorithm("auto", 50_000, "cosine")
    ('brute', 'ivf')
    """
    if algorithm != "auto":
        return algorithm
    if n_samples <= AUTO_BRUTE_MAX_SAMPLES or metric == "manhattan":
        # Manhattan distances are not a matrix product: lists buy little there.
        return "brute" if n_samples <= AUTO_BRUTE_MAX_SAMPLES else "annoy"
    if (search and storage is None and n_samples <= AUTO_HNSW_MAX_SAMPLES
            and importlib.util.find_spec("hnswlib") is not None):
        return "hnsw"
    return "ivf"


@validate_params(
    {
        "algorithm": [StrOptions(set(ALGORITHMS))],
        "metric": [StrOptions(set(METRICS))],
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        **{name: INDEX_PARAMETER_CONSTRAINTS[name] for name in (
            "n_lists", "n_probe", "n_trees", "search_k", "n_links", "ef_search", "storage",
            "n_jobs", "verbose")},
        "random_state": [Interval(Integral, 0, None, closed="left"), None],
    },
    prefer_skip_nested_validation=True,
)
def make_index(
    algorithm,
    metric,
    n_samples,
    *,
    n_lists=None,
    n_probe=None,
    n_trees=None,
    search_k=None,
    n_links=None,
    ef_search=None,
    storage=None,
    random_state=None,
    n_jobs=None,
    verbose=0,
):
    """An unfitted index for ``algorithm`` (``"auto"`` resolved for ``n_samples``).

    Parameters
    ----------
    algorithm : {"auto", "brute", "ivf", "ivf_rq", "annoy", "hnsw"}
        The index; ``"auto"`` picks exact search for small data and IVF lists beyond
        (never ``"ivf_rq"``, which trades build time for memory).
    metric : {"cosine", "euclidean", "manhattan", "inner_product"}
        Distance the neighbours are ranked by.
    n_samples : int
        Number of points to be indexed (resolves ``"auto"``).
    n_lists, n_probe : int, default=None
        :class:`IVFIndex` and :class:`IVFRQIndex` parameters.
    n_trees, search_k : int, default=None
        :class:`AnnoyIndex` parameters.
    n_links, ef_search : int, default=None
        :class:`HNSWIndex` parameters.
    storage : str, path-like or None, default=None
        Directory of the vectors of :class:`IVFIndex` and :class:`IVFRQIndex`.
    random_state : int, RandomState instance or None, default=None
        Seeds the approximate indexes.
    n_jobs : int, default=None
        Threads for building and searching, through joblib; an active joblib
        backend is honoured.
    verbose : int, default=0
        Progress messages when positive.

    Returns
    -------
    index : BaseIndex
        The unfitted index; parameters of other algorithms are ignored.
    """
    algorithm = resolve_algorithm(algorithm, n_samples, metric)
    if algorithm == "brute":
        return BruteIndex(metric, n_jobs=n_jobs, verbose=verbose)
    if algorithm == "ivf":
        return IVFIndex(metric, n_lists=n_lists, n_probe=n_probe, random_state=random_state,
                        n_jobs=n_jobs, verbose=verbose, storage=storage)
    if algorithm == "ivf_rq":
        return IVFRQIndex(metric, n_lists=n_lists, n_probe=n_probe, random_state=random_state,
                          n_jobs=n_jobs, verbose=verbose, storage=storage)
    if algorithm == "annoy":
        return AnnoyIndex(metric, n_trees=n_trees, search_k=search_k,
                          random_state=random_state, n_jobs=n_jobs)
    if algorithm == "hnsw":
        return HNSWIndex(metric, n_links=n_links, ef_search=ef_search,
                         random_state=random_state, n_jobs=n_jobs)
    raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}.")
