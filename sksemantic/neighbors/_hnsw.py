"""HNSW (hierarchical navigable small-world graph) backend, through hnswlib.

A graph index answers a query by a greedy walk over a neighbour graph: its cost per query
is a few hundred to a few thousand distance evaluations, whatever the batch size. IVF
scores each list against all the queries that probe it in one matrix product, which is
efficient only when many queries share a list: on 100,000 WordNet items, 1,000-query
batches ran at half the throughput of 10,000-query batches, and a compiled version of
the list loop changed little, the small products themselves being the cost. HNSW gives
small batches and single queries the throughput that IVF reaches only on large batches
(``benchmarks/bench_search.py``), for a longer build.

hnswlib (an optional extra, ``pip install 'sksemantic[hnsw]'``) finds the candidates;
their scores are recomputed with the shared metric code, as for annoy
(:class:`RescoredIndex`), so that every backend reports the same distance for the same
pair.
"""

import numpy as np

from ..utils import effective_n_jobs, import_optional
from ._base import RescoredIndex

__all__ = ["HNSWIndex", "default_ef_search"]

# Prepared rows (see ``_metric.prepare``): cosine rows are unit vectors, so the inner
# product ranks them; Manhattan distances have no hnswlib space.
_HNSW_SPACE = {"cosine": "ip", "inner_product": "ip", "euclidean": "l2"}


def default_ef_search(k):
    """Candidates kept during an HNSW walk when ``ef_search`` is None: ``max(32, 2 k)``.

    Parameters
    ----------
    k : int
        Neighbours asked for per query.

    Returns
    -------
    ef_search : int
        Size of the candidate list.
    """
    return int(max(32, 2 * k))


def _new_hnsw(metric, n_features):
    hnswlib = import_optional("hnswlib", purpose="algorithm='hnsw'")
    return hnswlib.Index(space=_HNSW_SPACE[metric], dim=int(n_features))


class HNSWIndex(RescoredIndex):
    """Approximate nearest neighbours with an HNSW graph (hnswlib).

    Parameters
    ----------
    metric : {"cosine", "euclidean", "inner_product"}, default="cosine"
        hnswlib has no Manhattan space.
    n_links : int, default=None
        Links per node (hnswlib's ``M``); 16 when None. More links cost memory and build
        time and raise the recall reachable at a given ``ef_search``.
    ef_search : int, default=None
        Candidates kept during a query's walk (hnswlib's ``ef``); at least ``k``;
        :func:`default_ef_search` when None. Larger is slower and more accurate.
    random_state : int or None, default=None
        Seed of the level draws (hnswlib's ``random_seed``).
    n_jobs : int, default=None
        Threads for querying (None: every core) and for building. A build with more
        than one thread inserts points in a varying order, so it is not reproducible
        even with a seed: with None the build runs on one thread (reproducible), and
        only an explicit ``n_jobs`` builds on several. Queries do not depend on it.
    """

    #: Candidates kept while inserting a point (hnswlib's ``ef_construction``).
    EF_CONSTRUCTION = 100

    def __init__(self, metric="cosine", n_links=None, ef_search=None, random_state=None,
                 n_jobs=None):
        super().__init__(metric)
        self.n_links = n_links
        self.ef_search = ef_search
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _fit_raw(self, X):
        if self.metric not in _HNSW_SPACE:
            raise ValueError(
                f"algorithm='hnsw' supports the metrics {sorted(_HNSW_SPACE)}, not "
                f"{self.metric!r}; use 'ivf' or 'annoy' for it."
            )
        return super()._fit_raw(X)

    def _build(self, X_prep, sqnorm):
        self.X_ = X_prep
        self.sqnorm_ = sqnorm
        self.n_links_ = int(self.n_links or 16)
        graph = _new_hnsw(self.metric, X_prep.shape[1])
        graph.init_index(
            max_elements=max(1, len(X_prep)), M=self.n_links_,
            ef_construction=self.EF_CONSTRUCTION,
            random_seed=0 if self.random_state is None else int(self.random_state),
        )
        graph.add_items(X_prep, np.arange(len(X_prep)), num_threads=self._build_threads())
        self._hnsw = graph

    def _add(self, X_prep, sqnorm):
        # A graph grows in place: new points are linked into it, old links are kept.
        n_old = len(self.X_)
        self.X_ = np.concatenate([self.X_, X_prep])
        self.sqnorm_ = np.concatenate([self.sqnorm_, sqnorm])
        self._hnsw.resize_index(len(self.X_))
        self._hnsw.add_items(
            X_prep, np.arange(n_old, len(self.X_)), num_threads=self._build_threads()
        )

    def _build_threads(self):
        return 1 if self.n_jobs is None else effective_n_jobs(self.n_jobs)

    def _candidates(self, Q_prep, k):
        k = min(int(k), len(self.X_))
        self._hnsw.set_ef(int(max(k, self.ef_search or default_ef_search(k))))
        try:
            labels, _ = self._hnsw.knn_query(
                Q_prep, k=k, num_threads=effective_n_jobs(self.n_jobs)
            )
        except RuntimeError:
            # hnswlib refuses the whole batch when a walk finds fewer than k points
            # (tiny graphs): every row is then answered exactly.
            return np.full((len(Q_prep), k), -1, dtype=np.int64)
        return labels.astype(np.int64)
