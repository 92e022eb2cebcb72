"""Choosing and building an index from an estimator's parameters."""

from ._annoy import AnnoyIndex
from ._brute import BruteIndex
from ._ivf import IVFIndex

__all__ = ["ALGORITHMS", "AUTO_BRUTE_MAX_SAMPLES", "make_index", "resolve_algorithm"]

ALGORITHMS = ("auto", "brute", "ivf", "annoy")

#: Below this many indexed points "auto" searches exactly: the all-pairs product is then
#: cheaper than building and probing lists (see benchmarks/bench_graph.py).
AUTO_BRUTE_MAX_SAMPLES = 20_000


def resolve_algorithm(algorithm, n_samples, metric):
    """The concrete algorithm ``"auto"`` stands for at this size and metric."""
    if algorithm != "auto":
        return algorithm
    if n_samples <= AUTO_BRUTE_MAX_SAMPLES or metric == "manhattan":
        # Manhattan distances are not a matrix product: lists buy little there.
        return "brute" if n_samples <= AUTO_BRUTE_MAX_SAMPLES else "annoy"
    return "ivf"


def make_index(
    algorithm,
    metric,
    n_samples,
    *,
    n_lists=None,
    n_probe=None,
    n_trees=None,
    search_k=None,
    random_state=None,
    n_jobs=None,
    verbose=0,
):
    """An unfitted index for ``algorithm`` (``"auto"`` resolved for ``n_samples``)."""
    algorithm = resolve_algorithm(algorithm, n_samples, metric)
    if algorithm == "brute":
        return BruteIndex(metric, verbose=verbose)
    if algorithm == "ivf":
        return IVFIndex(metric, n_lists=n_lists, n_probe=n_probe, random_state=random_state,
                        n_jobs=n_jobs, verbose=verbose)
    if algorithm == "annoy":
        return AnnoyIndex(metric, n_trees=n_trees, search_k=search_k,
                          random_state=random_state, n_jobs=n_jobs)
    raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}.")
