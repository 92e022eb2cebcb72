"""HNSW (hierarchical navigable small-world graph) backend, through hnswlib.

A graph index answers a query by a greedy walk over a neighbour graph: its cost per query
is a few hundred to a few thousand distance evaluations, whatever the batch size. IVF
scores each list against all the queries that probe it in one matrix product, which is
efficient only when many queries share a list; HNSW gives small batches and single
queries the throughput that IVF reaches only on large batches, for a longer build
(measured in ``benchmarks/bench_search.py`` and the search guide).

hnswlib (an optional extra, ``pip install 'sksemantic[hnsw]'``) finds the candidates;
their scores are recomputed with the shared metric code, as for annoy
(:class:`RescoredIndex`), so that every backend reports the same distance for the same
pair.
"""

import threading
import weakref
from contextlib import contextmanager
from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import Interval, validate_params

from ..utils import effective_n_jobs, import_optional
from ._base import RescoredIndex, inherit_docstrings

__all__ = ["HNSWIndex", "default_ef_search"]

# Prepared rows (see ``_metric.prepare``): cosine rows are unit vectors, so the inner
# product ranks them; Manhattan distances have no hnswlib space.
_HNSW_SPACE = {"cosine": "ip", "inner_product": "ip", "euclidean": "l2"}


@validate_params({"k": [Interval(Integral, 1, None, closed="left")]},
                 prefer_skip_nested_validation=True)
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
    return _default_ef_search(k)


def _default_ef_search(k):
    return int(max(32, 2 * k))


def _duplicate_of(X, h):
    """For each row of ``X``, the first row (lowest id) holding the same vector.

    ``h`` is a hash of each row (a projection): rows are compared only within equal
    hashes, so finding duplicates costs one sort, not a sort of the rows themselves.
    """
    n = len(X)
    first = np.arange(n)
    if n < 2:
        return first
    order = np.argsort(h, kind="stable")
    hs = h[order]
    tied = np.flatnonzero(hs[1:] == hs[:-1]) + 1  # sorted positions with an equal hash before
    if not tied.size:
        return first
    new_hash = np.ones(n, dtype=bool)
    new_hash[tied] = False
    group_start = np.maximum.accumulate(np.where(new_hash, np.arange(n), 0))
    rows, heads = order[tied], order[group_start[tied]]
    step = max(1, 2**20 // max(1, X.shape[1]))
    for a in range(0, len(rows), step):
        r, f = rows[a : a + step], heads[a : a + step]
        same = (X[r] == X[f]).all(axis=1)
        first[r[same]] = f[same]
    return first


def _new_hnsw(metric, n_features):
    hnswlib = import_optional("hnswlib", purpose="algorithm='hnsw'")
    return hnswlib.Index(space=_HNSW_SPACE[metric], dim=int(n_features))


def _reseeded(graph, seed, max_elements):
    """A copy of ``graph`` whose level draws restart from ``seed``, with room for
    ``max_elements`` points.

    hnswlib draws each new point's level from a generator that a pickle does not
    record (an unpickled graph restarts it from its seed). Restarting it from a seed
    that depends only on what is saved makes adding to a loaded graph build the same
    graph as adding to the one in memory. The graph is held twice while it is copied.
    """
    (params,) = graph.__getstate__()
    params["seed"] = int(seed)
    params["max_elements"] = int(max_elements)
    copy = type(graph).__new__(type(graph))
    copy.__setstate__((params,))
    return copy


class _EfGate:
    """Serialises changes of a graph's ``ef`` against the queries that use it.

    hnswlib keeps one ``ef`` per graph, read by every walk. Queries needing the same
    ``ef`` run together; one needing another waits until they have finished, and
    queries arriving while one waits queue behind it, so that it is not starved.
    """

    def __init__(self):
        self._cond = threading.Condition()
        self._ef = None  # the ef of the running group of queries
        self._active = 0  # queries running in it
        self._group = 0  # groups started so far
        self._waiting = 0

    @contextmanager
    def ef(self, graph, ef):
        with self._cond:
            if self._active and (self._ef != ef or self._waiting):
                seen = self._group
                self._waiting += 1
                while self._active and (self._ef != ef or self._group == seen):
                    self._cond.wait()
                self._waiting -= 1
            if not self._active:
                if graph.ef != ef:
                    graph.set_ef(ef)
                self._ef = ef
                self._group += 1
                self._cond.notify_all()  # waiters needing this ef may join
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                if not self._active:
                    self._cond.notify_all()


# One gate per index, outside its state, so that pickles and saves never see it.
_GATES = weakref.WeakKeyDictionary()
_GATES_LOCK = threading.Lock()


def _gate(index):
    with _GATES_LOCK:
        gate = _GATES.get(index)
        if gate is None:
            gate = _GATES[index] = _EfGate()
    return gate


@inherit_docstrings
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
        hnswlib's threads for querying (None: every core, counted as joblib's
        ``n_jobs``, see :func:`sksemantic.utils.effective_n_jobs`) and for building. A build with more
        than one thread inserts points in a varying order, so it is not reproducible
        even with a seed: with None the build runs on one thread (reproducible), and
        only an explicit ``n_jobs`` builds on several. Queries do not depend on it.
    """

    #: Candidates kept while inserting a point (hnswlib's ``ef_construction``).
    EF_CONSTRUCTION = 100

    KNOB = "ef_search"
    HOLDOUT_UNSEARCHED = True

    #: Cost of one distance in a graph walk relative to one point of exact search's
    #: blocked products (single-vector distances and scattered reads), and the fixed
    #: cost of a walk (the descent through the upper layers, the call) in the same
    #: units, for the cost model that decides when exact search is cheaper than the
    #: walk a target needs. Set above the ratios measured against exact search, so
    #: that the model errs towards exact search.
    VISIT_COST = 10.0
    WALK_COST = 5000.0

    def knob_values(self, k):
        grid = np.array([16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536,
                         2048, 3072, 4096])
        return np.unique(np.clip(np.concatenate([[k], grid]), k, max(k, self.n_samples_)))

    def default_knob(self, k):
        return int(max(k, self.ef_search or _default_ef_search(k)))

    def relative_cost(self, values, k, *, Q=None, self_rows=None, reverse=False):
        # A walk evaluates about ef_search x (2 n_links) distances at the bottom layer.
        values = np.asarray(values, dtype=np.float64)
        visits = self.VISIT_COST * values * 2 * self.n_links_ + self.WALK_COST
        return visits / max(self.n_samples_, 1)

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
        nodes = self._group_duplicates(0)
        graph = _new_hnsw(self.metric, X_prep.shape[1])
        graph.init_index(
            max_elements=max(1, len(nodes)), M=self.n_links_,
            ef_construction=self.EF_CONSTRUCTION,
            random_seed=0 if self.random_state is None else int(self.random_state),
        )
        if self._holdout is not None:  # linked in by insert_holdout
            nodes = np.setdiff1d(nodes, self._holdout, assume_unique=True)
        vectors = X_prep if len(nodes) == len(X_prep) else X_prep[nodes]  # no copy without duplicates
        graph.add_items(vectors, nodes, num_threads=self._build_threads())
        self._hnsw = graph

    def _insert_holdout(self, rows):
        heads = np.unique(self.group_head_)
        rows = rows[np.isin(rows, heads)]  # the others are found through their group
        if rows.size:
            self._hnsw.add_items(self.X_[rows], rows, num_threads=self._build_threads())

    def _group_duplicates(self, n_old):
        """Group equal vectors; returns the ids of rows from ``n_old`` on that start
        a group (the graph's new nodes).

        Only one vector of each group enters the graph: many equal vectors (all-zero
        rows, repeated items) link only to each other, a clique that walks enter and
        cannot leave, which cost recall. A found node stands for its whole group.
        """
        X = self.X_
        rng = np.random.default_rng(0)
        probe = rng.standard_normal(X.shape[1]).astype(np.float32)
        old = getattr(self, "row_hash_", None)  # None: saved before duplicates were grouped
        old = X[:n_old] @ probe if old is None else old[:n_old]
        self.row_hash_ = np.concatenate([old, X[n_old:] @ probe])
        first = _duplicate_of(X, self.row_hash_)
        self.group_order_ = np.argsort(first, kind="stable")  # rows, group after group
        self.group_head_ = first[self.group_order_]
        self.n_nodes_ = int(np.count_nonzero(first == np.arange(len(X))))
        new = np.arange(n_old, len(X))
        return new[first[n_old:] == new]

    def _expand_groups(self, labels, k):
        """Graph nodes -> the first ``k`` rows of their groups, in node order; -1 where
        there are fewer than ``k``."""
        order = getattr(self, "group_order_", None)
        if order is None or self.n_nodes_ == len(order):  # no duplicates (or an old pickle)
            return labels
        head = self.group_head_
        lo = np.searchsorted(head, labels, "left")
        size = np.minimum(np.searchsorted(head, labels, "right") - lo, k)
        sz = size.ravel()
        tot = int(sz.sum())
        within = np.arange(tot) - np.repeat(np.cumsum(sz) - sz, sz)
        member = order[np.repeat(lo.ravel(), sz) + within]
        row_len = size.sum(axis=1)
        row = np.repeat(np.arange(len(labels)), row_len)
        slot = np.arange(tot) - np.repeat(np.cumsum(row_len) - row_len, row_len)
        keep = slot < k
        out = np.full((len(labels), k), -1, dtype=np.int64)
        out[row[keep], slot[keep]] = member[keep]
        return out

    def _add(self, X_prep, sqnorm):
        # A graph grows: new points are linked into it, old points and links are kept.
        # The level draws restart from a seed fixed by the random state and the
        # graph's size (see ``_reseeded``), whether the graph was loaded or not.
        n_old = len(self.X_)
        self.X_ = np.concatenate([self.X_, X_prep])
        self.sqnorm_ = np.concatenate([self.sqnorm_, sqnorm])
        nodes = self._group_duplicates(n_old)
        if nodes.size:
            seed = np.random.SeedSequence(
                [0 if self.random_state is None else int(self.random_state), n_old]
            ).generate_state(1)[0]
            self._hnsw = _reseeded(self._hnsw, seed, self._hnsw.get_current_count() + len(nodes))
            self._hnsw.add_items(self.X_[nodes], nodes, num_threads=self._build_threads())

    # hnswlib runs its own native threads (no Python tasks to hand to joblib): their
    # count follows the same rules (an active joblib n_jobs, dask worker shares).
    def _build_threads(self):
        return 1 if self.n_jobs is None else effective_n_jobs(self.n_jobs, local=True)

    def _candidates(self, Q_prep, k, knob=None):
        k = min(int(k), len(self.X_))
        k_nodes = min(k, self._hnsw.get_current_count())
        ef = int(max(k, knob or self.ef_search or _default_ef_search(k)))
        try:
            # The graph's ef is shared: threads querying with another k must not
            # change it under a running query.
            with _gate(self).ef(self._hnsw, ef):
                labels, _ = self._hnsw.knn_query(
                    Q_prep, k=k_nodes, num_threads=effective_n_jobs(self.n_jobs, local=True)
                )
        except RuntimeError:
            # hnswlib refuses the whole batch when a walk finds fewer than k points
            # (tiny graphs): every row is then answered exactly.
            return np.full((len(Q_prep), k), -1, dtype=np.int64)
        return self._expand_groups(labels.astype(np.int64), k)
