"""Inverted-file (IVF) search: k-means lists, probed by matrix products.

The indexed points are clustered into ``n_lists`` lists with the shared k-means kernel and
stored list by list. A query scores the list centres, keeps its ``n_probe`` best lists,
and is scored exactly against their members. Queries are grouped by list, so each
(list, queries-probing-it) pair is one BLAS product; the only Python loop is over lists.
Self-joins offer every pair they score to both of its points, so a pair is found when
either point probes the other's list: most neighbours that sit across a list boundary are.

With ``storage`` set, the list-sorted vectors go to a file the index creates there and
are mapped back read-only: a build reads its input (an ``np.memmap``, say) chunk by
chunk and holds in memory only per-point bookkeeping (list order, norms) and chunks of
a size proportional to the data's, whatever the data's size.
"""

import dataclasses
import math
import os
import secrets
import threading
import weakref
from functools import partial
from numbers import Integral
from pathlib import Path

import numpy as np
from sklearn.utils import check_array, check_random_state
from sklearn.utils._param_validation import Interval, validate_params

from ..cluster import kmeans
from ..cluster._kmeans import _nearest_centroid
from ..cluster._lloyd import smallest_columns
from ..utils import (
    Progress,
    blas_threads,
    check_mapped,
    effective_n_jobs,
    release_pages,
    run_spans,
    small_pages,
    take_rows,
)
from ._base import EXACT_SELF_JOIN_SPEEDUP, BaseIndex, inherit_docstrings
from ._metric import METRICS, data_center, pairwise_scores, prepare
from ._topk import merge_candidates, topk_dense

__all__ = ["IVFIndex", "JoinPart", "default_n_lists", "default_n_probe"]


@validate_params({"n_samples": [Interval(Integral, 1, None, closed="left")]},
                 prefer_skip_nested_validation=True)
def default_n_lists(n_samples, *, search=False):
    """``2 * sqrt(n)`` lists for a self-join (about ``sqrt(n) / 2`` points each), at least 1.

    A self-join (a graph, deduplication) probes every point: fewer lists make its
    k-means and its probes cheaper, and the longer lists are scanned in larger products.
    A search (``search=True``) gets lists of at least :data:`SEARCH_LIST_SIZE` points,
    between ``2 * sqrt(n)`` and ``4 * sqrt(n)`` lists: its probes are paid per query,
    and finer lists let a query scan fewer points.

    Parameters
    ----------
    n_samples : int
        Number of indexed points.
    search : bool, default=False
        Whether the index serves searches rather than a self-join.

    Returns
    -------
    n_lists : int
        Number of k-means lists.
    """
    return _default_n_lists(n_samples, search=search)


#: The shortest default list of a search index (see :func:`default_n_lists`).
SEARCH_LIST_SIZE = 80


def _default_n_lists(n_samples, *, search=False):
    root = math.sqrt(n_samples)
    n_lists = min(4 * root, max(2 * root, n_samples / SEARCH_LIST_SIZE)) if search else 2 * root
    return int(max(1, min(n_samples, round(n_lists))))


@validate_params(
    {"n_lists": [Interval(Integral, 1, None, closed="left")], "search": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def default_n_probe(n_lists, *, search=False):
    """Lists probed per query when ``n_probe`` is None.

    For a self-join (a neighbour graph): ``round(sqrt(n_lists)) + 2``. Growing with the
    square root keeps the scanned share of the data falling as the data grows, where a
    fixed share would make the join quadratic. For a search (``search=True``):
    ``round(1.5 * sqrt(n_lists)) + 2``. A self-join finds a pair from either of its
    points, which recovers neighbours across list boundaries; a search has no such
    second chance, so it probes more lists for a similar recall.

    Parameters
    ----------
    n_lists : int
        Number of lists in the index.
    search : bool, default=False
        Whether the queries are a search rather than the indexed points themselves.

    Returns
    -------
    n_probe : int
        Lists scanned per query.
    """
    return _default_n_probe(n_lists, search=search)


def _default_n_probe(n_lists, *, search=False):
    factor = 1.5 if search else 1.0
    return int(max(1, min(n_lists, round(factor * math.sqrt(n_lists)) + 2)))


#: Candidates per query (times k) from one product above which the product's own k-th
#: best is taken as a threshold (see ``IVFIndex._self_join``).
_MANY = 4


def _kth_largest(S, k, axis):
    """The k-th largest entry of each column (``axis=0``) or row (``axis=1``) of ``S``;
    -inf where there are fewer than k."""
    m = S.shape[axis]
    if m < k:
        return np.full(S.shape[1 - axis], -np.inf, dtype=S.dtype)
    return np.take(np.partition(S, m - k, axis=axis), m - k, axis=axis)


#: Score entries per product of a self-join (a list's points by its queries): a long
#: list probed by many queries is scored a block of queries at a time.
_PRODUCT_ENTRIES = 2**22


def _column_blocks(queries, n_points):
    """``queries`` in blocks of at most ``_PRODUCT_ENTRIES // n_points``."""
    step = max(1, _PRODUCT_ENTRIES // max(1, n_points))
    return [queries[a : a + step] for a in range(0, len(queries), step)]


def _best_entries(S, thr, k):
    """``_at_least(S, thr)``, but when more than ``_MANY * k`` entries of a column pass
    on average (ties: duplicated points all score alike), each column's k best only,
    ties broken arbitrarily."""
    rows, cols = _at_least(S, thr)
    m, c = S.shape
    if rows.size <= _MANY * k * c or m <= k:
        return rows, cols
    top = np.argpartition(S, m - k, axis=0)[m - k :]
    keep = np.take_along_axis(S, top, axis=0) >= thr
    return top[keep], np.broadcast_to(np.arange(c), top.shape)[keep]


def _first_list(S, k):
    """A query's first list (its product ``S``, points by queries): each column's k-th
    best (its first threshold; -inf with fewer than k points) and the entries at or
    above it, as ``(kth, rows, columns)``."""
    kth = _kth_largest(S, k, axis=0)
    rows, cols = _best_entries(S, kth, k)
    return kth, rows, cols


def _at_least(S, thr):
    """``np.nonzero(S >= thr)`` (a threshold per column): the columns whose maximum
    passes are found first, and only they are compared entry by entry (after the first
    list, most queries find nothing in most lists)."""
    hit = np.flatnonzero(S.max(axis=0) >= thr)
    if 2 * hit.size >= S.shape[1]:
        return np.nonzero(S >= thr)
    col, r = np.nonzero(S[:, hit] >= thr[hit])
    return col, hit[r]


#: Rows merged at a time when candidates are flushed (see ``_CandidateBuffer``).
_MERGE_ROWS = 2**15


class _CandidateBuffer:
    """Candidates above each query's threshold, merged whenever they pile up.

    On data without cluster structure the first list's k-th best is a weak threshold and
    most entries pass it; merging every ``limit`` candidates tightens the thresholds
    (``thr`` is updated in place) and bounds the memory held.
    """

    def __init__(self, best_s, best_i, thr, limit, n_jobs=1):
        self.best_s, self.best_i, self.thr, self.limit = best_s, best_i, thr, limit
        self.n_jobs = n_jobs
        self.parts, self.size = [], 0

    def add(self, rows, scores, ids):
        if rows.size:
            self.parts.append((rows, scores, ids))
            self.size += rows.size
            if self.size >= self.limit:
                self.flush()

    def flush(self):
        if not self.parts:
            return
        rows, scores, ids = (np.concatenate(p) for p in zip(*self.parts, strict=True))
        self.parts, self.size = [], 0
        # Rows are independent: they are merged a range of _MERGE_ROWS rows at a time
        # (the merge's buffers hold each touched row's k entries: a range bounds them),
        # the ranges shared among threads. Each candidate is offered once: a search
        # scans each list once for a query, a self-join offers a pair from one side.
        order = np.argsort(rows, kind="stable")
        rows, scores, ids = rows[order], scores[order], ids[order]
        del order
        n_rows = len(self.best_s)
        n_threads = min(effective_n_jobs(self.n_jobs, local=True), max(1, rows.size // 2**15))
        span = max(1, min(_MERGE_ROWS, -(-n_rows // n_threads)))
        cuts = np.searchsorted(rows, np.arange(0, n_rows, span))
        cuts = np.unique(np.concatenate([[0], cuts, [rows.size]]))

        def work(a, b):
            for lo, hi in zip(cuts[a:b].tolist(), cuts[a + 1 : b + 1].tolist(), strict=True):
                merge_candidates(self.best_s, self.best_i, rows[lo:hi], scores[lo:hi],
                                 ids[lo:hi], unique=True)

        # Merged into best_s/best_i in place: threads of this process (shared memory).
        n_ranges = len(cuts) - 1
        run_spans(work, n_ranges, -(-n_ranges // n_threads), n_threads, shared=True)
        # Never lowered: a threshold given from outside (another part of a
        # distributed self-join) can be above a row's k-th best found here.
        np.maximum(self.thr, self.best_s[:, -1], out=self.thr)


@inherit_docstrings
class IVFIndex(BaseIndex):
    """Approximate nearest neighbours by an inverted file of k-means lists.

    Parameters
    ----------
    metric : {"cosine", "euclidean", "manhattan", "inner_product"}, default="cosine"
        Distance the neighbours are ranked by.
    n_lists : int, default=None
        Number of k-means lists; :func:`default_n_lists` when None.
    n_probe : int, default=None
        Lists scanned per query; :func:`default_n_probe` when None. Larger is slower and
        more accurate; ``n_probe == n_lists`` is exact.
    random_state : int, RandomState instance or None, default=None
        Seeds the sample that trains the list centres and their k-means.
    n_jobs : int, default=None
        Threads for searching, through joblib; an active joblib backend is honoured.
        None uses every core (see :func:`sksemantic.utils.effective_n_jobs`). Results
        do not depend on it.
    verbose : int, default=0
        Progress messages while the lists are built when positive.
    storage : str, path-like or None, default=None
        Directory for the list-sorted vectors: :meth:`fit` and :meth:`add` write them
        to a new file there (``sksemantic-ivf-*.npy``, never an existing name) and map
        it read-only, so that an index larger than memory can be built from an
        ``np.memmap`` with a working set that does not grow with the data. The file
        belongs to the index: it is removed once no array maps it any more (after a
        refit or an add, or when the index is dropped); :func:`save_index` copies it
        into the save. None keeps the vectors in memory. Results do not depend on it.

    Attributes
    ----------
    X_ : ndarray or np.memmap of shape (n_samples, n_features)
        The prepared vectors, list after list.
    perm_ : ndarray of shape (n_samples,)
        The id (fit order) of the point at each position of ``X_``.
    offsets_ : ndarray of shape (``n_lists_`` + 1,)
        List ``l`` holds the positions ``offsets_[l]:offsets_[l + 1]``.
    centers_ : ndarray of shape (n_lists_, n_features)
        The list centres.

    Examples
    --------
    >>> import numpy as np
    >>> from sksemantic.neighbors import IVFIndex
    >>> X = np.random.default_rng(0).normal(size=(500, 8)).astype(np.float32)
    >>> index = IVFIndex(n_lists=10, n_probe=10, random_state=0).fit(X)
    >>> index.query(X[:2], 1)[1].tolist()
    [[0], [1]]
    """

    def __init__(
        self, metric="cosine", n_lists=None, n_probe=None, random_state=None, n_jobs=None,
        verbose=0, storage=None,
    ):
        super().__init__(metric)
        self.n_jobs = n_jobs
        self.n_lists = n_lists
        self.n_probe = n_probe
        self.random_state = random_state
        self.verbose = verbose
        self.storage = storage

    KNOB = "n_probe"

    #: Cost of scoring one stored point in IVF's per-list products, relative to one
    #: point of exact search's large blocked products (smaller products, gathers,
    #: candidate merging), and the fixed cost of a search (grouping queries by list,
    #: the first pass), as a share of exact search. With the probe, the cost model that
    #: decides when exact search is cheaper than the probes a recall target needs; both
    #: are set above the ratios measured against exact search (``BruteIndex``) so that
    #: the model errs towards exact search.
    SCAN_COST = 2.5
    FIXED_COST = 0.05
    #: Most calibration queries whose probe orders the cost model averages.
    _COST_QUERIES = 500

    #: Rows per list that train the list centres: twenty keep the build cheap (more
    #: make the lists more even; see ``benchmarks/investigations/ivf_design_checks.py``).
    _TRAIN_PER_LIST = 20

    #: Rows per k-means distance block: ``2**20 / n_lists`` (4 MiB of float32
    #: distances), at least 256. Fixed, so that in-memory and on-disk builds add the
    #: same partial sums and find the same centres.
    _KMEANS_BLOCK = 2**20

    def _chunk_rows(self, n, d):
        """Rows per chunk of the passes over the data: about 32 MiB of float32 blocks in
        memory; with ``storage``, 1/64 of the data's size (1 to 32 MiB), so that the
        working set stays a fixed fraction of the data. Chunking changes no result."""
        budget = 2**25
        if self.storage is not None:
            budget = int(min(2**25, max(2**20, 4 * n * d // 64)))
        return max(1024, budget // (4 * max(d, self.n_lists_)))

    def _check_storage(self):
        if self.storage is not None and not isinstance(self.storage, (str, os.PathLike)):
            raise ValueError(
                f"storage must be a directory (str or path-like) or None, got {self.storage!r}."
            )

    def fit(self, X, *, holdout=None, labels=None):
        """Index the points ``X``; their ids are their row numbers.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            The points, raw (normalised here for ``"cosine"``).
        holdout : array-like of int, default=None
            Rows left out of the k-means training until :meth:`insert_holdout` (they
            are indexed and found all the same): a calibration queries the index with
            them as if they were new queries.
        labels : array-like of int of shape (n_samples,), default=None
            Each row's list, from :meth:`assign` of this index trained by :meth:`train`
            on the same ``X`` and ``holdout``: the build then neither trains nor
            assigns (a distributed build trains once and assigns row blocks on several
            workers). None trains and assigns here.

        Returns
        -------
        self : IVFIndex
            The fitted index.
        """
        if labels is not None:
            if getattr(self, "centers_", None) is None:
                raise ValueError("labels were given, but the index was not trained: "
                                 "call train(X) first, and assign(X) for the labels.")
            labels = np.asarray(labels)
            if labels.shape != (np.shape(X)[0],) or not np.issubdtype(labels.dtype, np.integer):
                raise ValueError(f"labels must be one integer list per row of X "
                                 f"({np.shape(X)[0]}), got shape {labels.shape} and dtype "
                                 f"{labels.dtype}.")
            if labels.size and (labels.min() < 0 or labels.max() >= self.n_lists_):
                raise ValueError(f"labels must lie in [0, {self.n_lists_}), the trained "
                                 "lists.")
        self._given_labels = labels
        try:
            return super().fit(X, holdout=holdout)
        finally:
            del self._given_labels

    def train(self, X, *, holdout=None):
        """Learn the list centres from ``X``: the first step of :meth:`fit`.

        The centres are those :meth:`fit` with the same ``random_state`` finds.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            The points, raw.
        holdout : array-like of int, default=None
            Rows left out of the training, as for :meth:`fit`.

        Returns
        -------
        self : IVFIndex
            The index, with ``centers_`` (not yet holding any point).

        Examples
        --------
        A build in three steps, as a distributed one runs them: train once, assign row
        blocks apart, index the rows by their labels. It is the index :meth:`fit` makes.

        >>> import numpy as np
        >>> from sksemantic.neighbors import IVFIndex
        >>> X = np.random.default_rng(0).normal(size=(1000, 8)).astype(np.float32)
        >>> index = IVFIndex(n_lists=10, random_state=0).train(X)
        >>> labels = np.concatenate([index.assign(X[:500]), index.assign(X[500:])])
        >>> index = index.fit(X, labels=labels)
        >>> bool((index.perm_ == IVFIndex(n_lists=10, random_state=0).fit(X).perm_).all())
        True
        """
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {self.metric!r}.")
        X = check_mapped(check_array, X, dtype=[np.float32, np.float64], input_name="X")
        self.center_ = data_center(X, self.metric)
        self._holdout = None if holdout is None else np.unique(np.asarray(holdout, np.int64))
        self._check_storage()
        self._train(X)
        return self

    def assign(self, X, n_probe=0):
        """The list of each row of ``X``: its nearest centre, as :meth:`fit` assigns.

        Parameters
        ----------
        X : ndarray of shape (n_rows, n_features)
            Points, raw.
        n_probe : int, default=0
            Also return the ``n_probe`` lists each row probes, nearest first (for
            a self-join, see :meth:`join_first`), from the same products.

        Returns
        -------
        labels : ndarray of shape (n_rows,), int64
        probes : ndarray of shape (n_rows, n_probe), int32
            Only with ``n_probe``.
        """
        if getattr(self, "centers_", None) is None:
            raise ValueError("The index is not trained: call train(X) or fit(X) first.")
        n, d = np.shape(X)
        n_probe = int(min(n_probe, self.n_lists_))
        step = self._chunk_rows(n, d)
        labels = np.empty(n, dtype=np.int64)
        probes = np.empty((n, n_probe), dtype=np.int32)
        for s in range(0, n, step):
            chunk, _ = prepare(X[s : s + step], self.metric, self.center_)
            # The nearest centres are the first probes, but for the inner product,
            # which probes by the largest product (a second product).
            near = n_probe if self.metric != "inner_product" else 0
            out = _nearest_centroid(chunk, self.centers_, n_best=near, n_jobs=self.n_jobs)
            labels[s : s + step] = out[0]
            if near:
                probes[s : s + step] = out[2]
            elif n_probe:
                probes[s : s + step] = self._probe(chunk, n_probe, self.n_jobs)
        return (labels, probes) if n_probe else labels

    def training_rows(self, n_samples, holdout=None):
        """The rows :meth:`train` (and :meth:`fit`) train the lists on, for an integer
        ``random_state``: a distributed build can gather just those.

        Parameters
        ----------
        n_samples : int
            Rows of the data.
        holdout : array-like of int, default=None
            Rows left out of the training, as for :meth:`fit`.

        Returns
        -------
        rows : ndarray of int64
            Increasing.
        """
        holdout = None if holdout is None else np.unique(np.asarray(holdout, np.int64))
        return self._draw_rows(int(n_samples), holdout, check_random_state(self.random_state))

    def _draw_rows(self, n, holdout, rng):
        n_lists = int(min(self.n_lists or _default_n_lists(n), n))
        train_size = min(n, self._TRAIN_PER_LIST * n_lists)
        pool = np.arange(n)
        if holdout is not None and n - holdout.size >= n_lists:
            pool = np.setdiff1d(pool, holdout, assume_unique=True)
        train_size = min(train_size, pool.size)
        return pool if train_size >= pool.size else np.sort(rng.choice(pool, train_size, replace=False))

    def _train(self, X):
        """Sample the training rows (not the held-out ones) and fit the list centres."""
        n, d = X.shape
        rng = check_random_state(self.random_state)
        n_lists = int(min(self.n_lists or _default_n_lists(n), n))
        self.n_lists_ = n_lists
        rows = self._draw_rows(n, self._holdout, rng)
        # Which rows fitted the list centres (None: all of them). A recall check must
        # not use them as queries: the lists fit them, so their recall is overstated.
        self.train_rows_ = None if rows.size >= n else rows
        # A memory-mapped X stays on disk, not in this process: its pages are released
        # as the passes go.
        train, _ = prepare(take_rows(X, rows), self.metric, self.center_)
        centers, train_labels, _, _ = kmeans(
            train, n_lists, max_iter=8, init="random", random_state=rng,
            chunk_size=max(256, self._KMEANS_BLOCK // n_lists), n_jobs=self.n_jobs,
            verbose=self.verbose, label="IVF lists (k-means)",
        )
        self.centers_ = centers
        self.centers_sqnorm_ = np.einsum("ij,ij->i", centers, centers)
        self._train_codes(X, rows, train, train_labels, rng)

    def _fit_raw(self, X):
        # Prepared chunk by chunk, straight into list order: peak memory is one
        # prepared copy of X (none with storage), not two (the prepared array and its
        # sorted copy).
        self._check_storage()
        n, d = X.shape
        given = getattr(self, "_given_labels", None)
        if given is None:
            self._train(X)
        step = self._chunk_rows(n, d)
        labels = np.empty(n, dtype=np.int64) if given is None else given
        sqnorm = np.empty(n, dtype=np.float32)
        if given is None:  # given labels: the norms come with the sorted copy below
            for s in range(0, n, step):
                chunk, sqnorm[s : s + step] = prepare(X[s : s + step], self.metric, self.center_)
                labels[s : s + step] = _nearest_centroid(chunk, self.centers_, n_jobs=self.n_jobs)[0]
                release_pages(X[s : s + step])
            release_pages(X)
        n_lists = self.n_lists_
        perm = np.argsort(labels, kind="stable")
        offsets = np.zeros(n_lists + 1, dtype=np.int64)
        np.cumsum(np.bincount(labels, minlength=n_lists), out=offsets[1:])
        del labels
        self.offsets_ = offsets
        path, X_sorted = self._new_store((n, d))
        try:
            extras = {}
            for s in range(0, n, step):
                block, sq = prepare(X[perm[s : s + step]], self.metric, self.center_)
                if given is not None:
                    sqnorm[perm[s : s + step]] = sq
                X_sorted[s : s + step] = block
                release_pages(X_sorted[s : s + step])
                release_pages(X)  # the gather touched pages all over X
                lists = np.searchsorted(offsets, np.arange(s, s + len(block)), side="right") - 1
                for name, values in self._encode_rows(block, lists).items():
                    if name not in extras:
                        extras[name] = np.empty((n, *values.shape[1:]), dtype=values.dtype)
                    extras[name][s : s + step] = values
            release_pages(X)
            self.X_ = self._seal(path, X_sorted)
        except BaseException:
            _discard(path)
            raise
        for name, values in extras.items():
            setattr(self, name, values)
        self.sqnorm_ = sqnorm[perm]
        self.perm_ = perm
        return sqnorm

    def _train_codes(self, X, rows, train, labels, rng):
        """Compressed subclasses learn their codes: ``X`` raw, ``rows`` the rows that
        trained the centres, ``train`` those rows prepared, ``labels`` their lists."""

    #: Per-point arrays a compressed subclass stores besides the vectors (in ``X_``
    #: order), from :meth:`_encode_rows`.
    _PER_POINT_EXTRAS = ()

    def _encode_rows(self, block, lists):
        """``{name: per-point array}`` of prepared rows in the lists ``lists``, one
        entry per name of ``_PER_POINT_EXTRAS``."""
        return {}

    def _new_store(self, shape):
        """``(path, array)`` to write the list-sorted vectors into: a new file in
        ``storage`` (mapped for writing), or ``(None, array in memory)``."""
        if self.storage is None:
            return None, small_pages(np.empty(shape, dtype=np.float32))
        directory = Path(self.storage)
        directory.mkdir(parents=True, exist_ok=True)
        while True:  # a name nobody else holds, created exclusively: nothing is overwritten
            path = directory / f"sksemantic-ivf-{secrets.token_hex(8)}.npy"
            try:
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
                break
            except FileExistsError:  # pragma: no cover - a 64-bit name collision
                continue
        try:
            return path, np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
        except BaseException:
            _discard(path)
            raise

    @staticmethod
    def _seal(path, array):
        """The written store, read-only: the file mapped again (it is removed once no
        array maps it any more), or the in-memory array itself."""
        if path is None:
            return array
        array.flush()
        del array
        mapped = np.load(path, mmap_mode="r")
        weakref.finalize(mapped, _discard, path)
        return mapped

    def _add(self, X_prep, sqnorm):
        # Each new point joins the list of its nearest centre; lists stay contiguous,
        # the old points of a list before the new ones. Positions are computed, not
        # sorted: the old points keep their order, so they are copied in slabs and
        # nothing the size of the index is held but per-point bookkeeping.
        n_old, d = self.X_.shape
        n = n_old + len(X_prep)
        step = self._chunk_rows(n, d)
        new_labels, _ = _nearest_centroid(X_prep, self.centers_, chunk_size=step,
                                          n_jobs=self.n_jobs)
        sizes = np.diff(self.offsets_)
        counts = np.bincount(new_labels, minlength=self.n_lists_)
        before = np.zeros(self.n_lists_, dtype=np.int64)  # new points in earlier lists
        np.cumsum(counts[:-1], out=before[1:])
        offsets = self.offsets_ + np.concatenate([[0], np.cumsum(counts)])
        order = np.argsort(new_labels, kind="stable")
        rank = np.arange(len(order)) - (before[new_labels[order]])
        new_pos = np.empty(len(order), dtype=np.int64)
        new_pos[order] = offsets[new_labels[order]] + sizes[new_labels[order]] + rank
        old_shift = np.repeat(before, sizes)
        old_pos = np.arange(n_old, dtype=np.int64)
        old_pos += old_shift
        del old_shift
        perm = np.empty(n, dtype=self.perm_.dtype)
        perm[old_pos] = self.perm_
        perm[new_pos] = np.arange(n_old, n)
        sq = np.empty(n, dtype=self.sqnorm_.dtype)
        sq[old_pos] = self.sqnorm_
        sq[new_pos] = sqnorm
        extras = {}
        for name, values in self._encode_rows(X_prep, new_labels).items():
            old = getattr(self, name)
            extras[name] = np.empty((n, *old.shape[1:]), dtype=old.dtype)
            extras[name][old_pos] = old
            extras[name][new_pos] = values
        path, X = self._new_store((n, d))
        try:
            for s in range(0, n_old, step):
                X[old_pos[s : s + step]] = self.X_[s : s + step]
                release_pages(self.X_[s : s + step])
                release_pages(X)
            X[new_pos] = X_prep
            release_pages(X)
            X = self._seal(path, X)
        except BaseException:
            _discard(path)
            raise
        self.X_, self.sqnorm_, self.perm_, self.offsets_ = X, sq, perm, offsets
        for name, values in extras.items():
            setattr(self, name, values)

    def resident_bytes_per_vector(self):
        """Bytes per indexed point the index holds in memory.

        Counts the per-point arrays (ids, norms, codes, the cached inverse of the
        order) and the vectors unless they are memory-mapped from a file, whose pages
        the operating system reads on demand and may drop.

        Returns
        -------
        n_bytes : float
        """
        total = 0
        for name in ("X_", "sqnorm_", "perm_", *self._PER_POINT_EXTRAS):
            a = getattr(self, name, None)
            if a is not None and not isinstance(a, np.memmap):
                total += a.nbytes
        total += self.perm_.itemsize * self.n_samples_  # the inverse order (_positions)
        return total / max(1, self.n_samples_)

    # -- search effort -----------------------------------------------------------------
    def knob_values(self, k):
        return np.arange(1, self.n_lists_ + 1)

    def default_knob(self, k):
        return self._resolved_n_probe()

    def _list_scores(self, Q_prep):
        """How near each list's centre is to each query (larger: probed earlier)."""
        G = Q_prep @ self.centers_.T
        if self.metric != "inner_product":
            G *= 2
            G -= self.centers_sqnorm_
        return G

    def _list_ranks(self, Q_prep):
        """Rank of every list in each query's probe order (0: probed first)."""
        order = np.argsort(-self._list_scores(Q_prep), axis=1, kind="stable")
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.arange(self.n_lists_)[None, :], axis=1)
        return rank

    def _ranks_of(self, Q_prep, lists):
        """Rank of ``lists[q, j]`` in query ``q``'s probe order: what
        :meth:`_list_ranks` gives for those lists, by counting, without sorting every
        list of every query."""
        out = np.empty(lists.shape, dtype=np.int64)
        cols = np.arange(self.n_lists_)
        step = max(1, 2**24 // max(1, lists.shape[1] * self.n_lists_))
        for a in range(0, len(lists), step):
            G = self._list_scores(Q_prep[a : a + step])
            L = lists[a : a + step]
            t = np.take_along_axis(G, L, axis=1)[:, :, None]
            # Nearer lists, and equally near ones of lower number (a stable sort's order).
            ahead = (G[:, None, :] > t) | ((G[:, None, :] == t) & (cols < L[:, :, None]))
            out[a : a + step] = ahead.sum(axis=2)
        return out

    def _fit_order_lists(self):
        """The list of every indexed point, in fit order."""
        lists = np.empty(self.n_samples_, dtype=np.int64)
        lists[self.perm_] = np.repeat(np.arange(self.n_lists_), np.diff(self.offsets_))
        return lists

    def _sample_prepared(self, Q, self_rows):
        if self_rows is not None:
            return self._rows(np.asarray(self_rows, dtype=np.int64))
        return prepare(Q, self.metric, self.center_)

    def relative_cost(self, values, k, *, Q=None, self_rows=None, reverse=False):
        # Points scanned at each n_probe, averaged over the sample's probe orders.
        Q_prep, _ = self._sample_prepared(Q, self_rows)
        if len(Q_prep) > self._COST_QUERIES:  # a mean: an even spread of them will do
            Q_prep = Q_prep[np.linspace(0, len(Q_prep) - 1, self._COST_QUERIES).astype(np.int64)]
        rank = self._list_ranks(Q_prep)
        sizes = np.diff(self.offsets_)
        scanned = np.zeros(self.n_lists_)
        for r in range(0, len(rank), 256):  # the sizes of the lists in probe order
            by_rank = np.empty((len(rank[r : r + 256]), self.n_lists_))
            np.put_along_axis(by_rank, rank[r : r + 256], sizes[None, :], axis=1)
            scanned += np.cumsum(by_rank, axis=1).sum(axis=0)
        frac = scanned / (len(rank) * self.n_samples_)
        values = np.asarray(values, dtype=np.int64)
        cost = self.SCAN_COST * frac[np.clip(values, 1, self.n_lists_) - 1]
        cost += self.FIXED_COST + self.n_lists_ / self.n_samples_  # and the probe itself
        return EXACT_SELF_JOIN_SPEEDUP * cost if (self_rows is not None and reverse) else cost

    #: The curve comes from the ranks of the lists holding each exact neighbour.
    RECALL_CURVE_SEARCHES = False

    def recall_curve(self, k, exact_scores, exact_ids, values, *, Q=None, self_rows=None,
                     reverse=False):
        # Recall at every n_probe from one pass: IVF scans probed lists exactly, so an
        # exact neighbour is found exactly when its list is probed, that is when the
        # list's rank in the query's probe order is below n_probe. A self-join
        # (reverse=True) scores every probed pair for both ends: i also finds j when
        # j's probes reach i's list.
        Q_prep, _ = self._sample_prepared(Q, self_rows)
        lists = self._fit_order_lists()
        m = len(exact_ids)
        valid = exact_ids >= 0
        ids = np.maximum(exact_ids, 0)
        need = self._ranks_of(Q_prep, lists[ids]) + 1  # the n_probe that finds it
        if self_rows is not None and reverse:
            self_rows = np.asarray(self_rows, dtype=np.int64)
            Xj, _ = self._rows(ids.ravel())
            need_rev = self._ranks_of(Xj, np.repeat(lists[self_rows], k)[:, None])[:, 0] + 1
            need = np.minimum(need, need_rev.reshape(m, k))
        values = np.asarray(values, dtype=np.int64)
        out = np.empty((m, len(values)))
        for c in range(0, len(values), 64):  # bounded (m, k, 64) comparisons
            v = values[c : c + 64]
            out[:, c : c + 64] = ((need[:, :, None] <= v) & valid[:, :, None]).sum(axis=1)
        return out / k

    def _rows(self, ids):
        pos = self._positions(ids)
        return self.X_[pos], self.sqnorm_[pos]

    # -- probing ---------------------------------------------------------------------
    def _probe(self, Q_prep, n_probe, n_jobs=1):
        """The ``n_probe`` best lists for each query; column 0 holds the very best.

        Scored at most 1,024 queries at a time (a partial sort returns an int64 index
        for every entry), the blocks shared among ``n_jobs`` threads.
        """
        out = np.empty((len(Q_prep), n_probe), dtype=np.int64)

        def work(a, b):
            out[a:b] = self._probe_block(Q_prep[a:b], n_probe)

        n = len(Q_prep)
        step = min(1024, max(128, -(-n // effective_n_jobs(n_jobs, local=True))))
        run_spans(work, n, step, n_jobs, shared=True)  # written in place: threads
        return out

    #: Up to this many probes, they are found by one argmax each (nearest first).
    _ARGMAX_PROBES = 32

    def _probe_block(self, Q_prep, n_probe):
        C, csq = self.centers_, self.centers_sqnorm_
        n_lists = self.n_lists_
        G = Q_prep @ C.T
        if self.metric != "inner_product":
            G *= 2
            G -= csq  # ranks as -|q - c|^2
        rows = np.arange(len(G))
        if n_probe <= self._ARGMAX_PROBES and n_probe < n_lists:
            # A few probes: one argmax per probe, the found list masked out of the
            # scratch scores. A partial sort of every row costs as much as 80 of them.
            return smallest_columns(np.negative(G, out=G), n_probe)
        if n_probe < n_lists:
            # One partition point (two cost half as much again); the best of the
            # n_probe is then found among them and moved to column 0.
            probes = np.argpartition(G, n_lists - n_probe, axis=1)[:, n_lists - n_probe :]
            best = np.take_along_axis(G, probes, axis=1).argmax(axis=1)
        else:
            probes = np.tile(np.arange(n_lists), (len(G), 1))
            best = G.argmax(axis=1)
        first = probes[rows, best]
        probes[rows, best] = probes[:, 0]
        probes[:, 0] = first
        return probes

    def _resolved_n_probe(self, n_probe=None):
        n_probe = n_probe or self.n_probe or _default_n_probe(self.n_lists_)
        return int(max(1, min(n_probe, self.n_lists_)))

    def _list_groups(self, lists, per_query=1, queries=None):
        """``(lo, hi, queries)`` for every non-empty list named in ``lists``.

        ``lists`` holds ``per_query`` list ids per query, query after query (or, with
        ``queries``, the query of each entry); ``lo:hi`` are the list's rows in ``X_``
        (Python ints) and ``queries`` the queries that name it. Everything is computed
        here in a few array operations, so that the loop over lists does nothing per
        list but its product and threshold (with two threads sharing the lists, any
        per-list Python work holds the GIL).
        """
        order = np.argsort(lists, kind="stable")
        counts = np.bincount(lists, minlength=self.n_lists_)
        ends = np.cumsum(counts)
        starts = ends - counts
        off = self.offsets_
        used = np.flatnonzero((counts > 0) & (off[1:] > off[:-1]))
        if queries is not None:
            queries = queries[order]
        else:
            queries = order // per_query if per_query > 1 else order
        return [
            (lo, hi, queries[a:b])
            for lo, hi, a, b in zip(
                off[used].tolist(), off[used + 1].tolist(),
                starts[used].tolist(), ends[used].tolist(), strict=True,
            )
        ]

    def _list_scorer(self, Qc, qsq):
        """``score(lo, hi, qs)``: scores of rows ``lo:hi`` (rows) against queries
        ``Qc[qs]`` (columns). Points-by-queries: BLAS runs this orientation of the
        small products faster."""
        X = self.X_
        if self.metric in ("euclidean", "manhattan"):
            sq = self.sqnorm_

            def score(lo, hi, qs):
                return pairwise_scores(X[lo:hi], Qc.take(qs, axis=0), self.metric, sq[lo:hi], qsq[qs])
        else:  # prepared rows: the score is the inner product

            def score(lo, hi, qs):
                return X[lo:hi] @ Qc.take(qs, axis=0).T

        return score

    def _search_chunk(self, Qc, qsq, k, n_probe, n_jobs=None):
        """Top-k of one chunk of queries over the stored (list-ordered) points.

        Pass 1 scores each query against its nearest list; a partial sort of each
        list's product gives its queries a threshold, their k-th best score there
        (one dense block of all queries by the widest list cost more to sort than the
        products did). Pass 2 scores the other probed lists and
        keeps only the entries at or above the threshold (one comparison per product,
        no sort), merged whenever they pile up. Both passes loop over lists, each list
        scored against all the chunk's queries that probe it in one product; the lists
        are shared among ``n_jobs`` threads (BLAS releases the GIL).
        """
        c = len(Qc)
        probes = self._probe(Qc, n_probe, n_jobs)
        groups = self._list_groups(probes[:, 0])
        score = self._list_scorer(Qc, qsq)
        thr = np.full(c, -np.inf, dtype=np.float32)
        best_s = np.full((c, k), -np.inf, dtype=np.float32)
        best_i = np.full((c, k), -1, dtype=np.int64)
        buf = _CandidateBuffer(best_s, best_i, thr, limit=max(1 << 18, 32 * c), n_jobs=n_jobs)
        lock = threading.Lock()

        def pass1(a, b):
            # Each query's threshold is the k-th best of its nearest list, found by a
            # partial sort of that list's product alone (each query has one nearest
            # list, so no two groups write the same thresholds).
            for lo, hi, qs in groups[a:b]:
                S = score(lo, hi, qs)
                thr[qs], col, r = _first_list(S, k)
                with lock:
                    buf.add(qs[r], S[col, r], col + lo)

        self._run_groups(pass1, len(groups), n_jobs)
        buf.flush()  # every threshold is then the k-th best found so far
        if n_probe > 1:
            groups = self._list_groups(probes[:, 1:].ravel(), n_probe - 1)

            def pass2(a, b):
                for lo, hi, qs in groups[a:b]:
                    S = score(lo, hi, qs)
                    # Reading thr while another thread tightens it is safe: an older
                    # (lower) threshold only lets through extra, still valid, candidates.
                    col, r = _at_least(S, thr[qs])
                    if r.size:
                        with lock:
                            buf.add(qs[r], S[col, r], col + lo)

            self._run_groups(pass2, len(groups), n_jobs)
        buf.flush()
        return best_s, best_i

    def _run_groups(self, fn, n_groups, n_jobs):
        """``fn(a, b)`` over spans of list groups, in threads (several spans per thread
        so that uneven lists even out). ``fn`` writes into the chunk's buffers in
        place: threads of this process (shared memory)."""
        n_threads = effective_n_jobs(n_jobs, local=True)
        run_spans(fn, n_groups, max(1, -(-n_groups // (4 * n_threads))), n_jobs, shared=True)

    #: Batches up to this size take the per-query path (:meth:`_search_few`).
    _FEW_QUERIES = 8

    def _search_few(self, Qc, qsq, k, n_probe):
        """Top-k of a few queries, one at a time: one matrix-vector product per probed
        list straight into a score buffer, then one partial sort.

        The grouped path pays for sorting queries by list and for one general product
        per list; for single queries (a served search) that overhead dominated.
        """
        off, X, sq = self.offsets_, self.X_, self.sqnorm_
        probes = self._probe(Qc, n_probe)
        best_s = np.full((len(Qc), k), -np.inf, dtype=np.float32)
        best_i = np.full((len(Qc), k), -1, dtype=np.int64)
        for r in range(len(Qc)):
            lo, hi = off[probes[r]], off[probes[r] + 1]
            lens = hi - lo
            total = int(lens.sum())
            if total == 0:
                continue
            # Positions of the probed lists' points, list after list.
            starts = np.cumsum(lens) - lens
            ids = np.repeat(lo - starts, lens) + np.arange(total)
            if self.metric == "manhattan":
                S = pairwise_scores(Qc[r : r + 1], X[ids], self.metric)[0]
            else:
                S = np.empty(total, dtype=np.float32)
                q = Qc[r]
                for a, b, p in zip(lo.tolist(), hi.tolist(), starts.tolist(), strict=True):
                    if b > a:
                        np.dot(X[a:b], q, out=S[p : p + b - a])
                if self.metric == "euclidean":
                    S *= 2
                    S -= qsq[r]
                    S -= sq[ids]
                    np.minimum(S, 0, out=S)
            s_, i_ = topk_dense(S[None, :], k)
            best_s[r, : s_.shape[1]] = s_[0]
            best_i[r, : s_.shape[1]] = ids[i_[0]]
        return best_s, best_i

    def _query_sorted(self, Q_prep, q_sqnorm, k, n_probe=None):
        """Top-k over the stored (list-ordered) points; ids index ``self.X_``."""
        n_q = len(Q_prep)
        n_probe = self._resolved_n_probe(n_probe)
        if n_q <= self._FEW_QUERIES:
            with blas_threads(1):
                return self._search_few(Q_prep, q_sqnorm, k, n_probe)
        # Chunks as large as a ~32 MiB budget for the per-chunk buffers allows (the
        # probes, pass 1's dense block, the candidates), evened out: every list is
        # scored against all the chunk's queries that probe it in one product, so
        # larger chunks make fewer, larger products. The size does not depend on n_jobs,
        # so neither do the results.
        max_list = int(np.diff(self.offsets_).max())
        budget = min(2**25 // (8 * n_probe * k), 2**25 // (4 * max(max_list, k)))
        n_chunks = -(-n_q // max(256, budget))
        chunk = -(-n_q // n_chunks)
        progress = Progress(n_chunks, "IVF search", self.verbose)
        scores = np.empty((n_q, k), dtype=np.float32)
        ids = np.empty((n_q, k), dtype=np.int64)
        # The per-list products are small (a list holds about sqrt(n) / 2 points): BLAS
        # threads cost more than they bring there. Threads take whole chunks when there
        # are at least as many chunks as threads (a self-join, a large batch), and share
        # each chunk's lists otherwise (threads that share lists wait on each other for
        # the GIL between products).
        by_chunk = n_chunks >= effective_n_jobs(self.n_jobs)
        per_chunk_jobs = 1 if by_chunk else self.n_jobs

        def work(a, b):
            return self._search_chunk(Q_prep[a:b], q_sqnorm[a:b], k, n_probe, per_chunk_jobs)

        def store(span, part):
            # Stored as each chunk arrives: concatenating all the parts at the end
            # doubled the peak memory.
            scores[span[0] : span[1]], ids[span[0] : span[1]] = part
            progress.update()

        with blas_threads(1):
            run_spans(work, n_q, chunk, self.n_jobs if by_chunk else 1, on_result=store)
        return scores, ids

    def _fill_missing(self, Q_prep, q_sqnorm, scores, ids):
        """Rows that found fewer than k points (tiny lists) are answered exactly, by
        blocked exact search (their number depends on the data: one product of them
        all with every point held as much memory as they are rows times points)."""
        bad = np.flatnonzero((ids < 0).any(axis=1))
        if bad.size:
            view, _ = self._exact_view()  # over X_ as stored: ids are positions in it
            scores[bad], ids[bad] = view._query(Q_prep[bad], q_sqnorm[bad], ids.shape[1])
        return scores, ids

    def _query(self, Q_prep, q_sqnorm, k, knob=None):
        scores, ids = self._query_sorted(Q_prep, q_sqnorm, k, knob)
        scores, ids = self._fill_missing(Q_prep, q_sqnorm, scores, ids)
        return scores, self.perm_[ids]

    def _self_join(self, k, knob=None):
        """Every point's top k among the points, each pair scored once from either side.

        Pass 1 scores every list against itself: each point's k-th best among its
        list-mates is its first threshold. Pass 2 scores each point's other probed
        lists; every product of a list's points with the queries that probe it is
        offered both ways: to the queries (above their thresholds) and to the list's
        points, which are queries too (above theirs). So a pair is found when either
        end probes the other's list (see :meth:`recall_curve`). The two passes are
        :meth:`join_first` and :meth:`join_second`, which a distributed self-join runs
        for parts of the lists on different workers.
        """
        part = self.join_first(k, knob)
        scores, ids = self.join_second(k, part, part.thresholds, part.probes)
        del part
        scores, ids = self.join_fill(scores, ids)
        return self.join_fit_order(scores, ids)

    def join_lists(self, n_parts):
        """Split the lists into ``n_parts`` ranges of about equal numbers of points.

        Parameters
        ----------
        n_parts : int
            Number of ranges.

        Returns
        -------
        bounds : list of (int, int)
            ``(first list, end list)`` of each range, in order, covering every list.
        """
        n_parts = int(max(1, min(n_parts, self.n_lists_)))
        targets = np.arange(1, n_parts) * self.n_samples_ / n_parts
        cuts = np.searchsorted(self.offsets_, targets)
        cuts = np.unique(np.clip(np.concatenate([[0], cuts, [self.n_lists_]]), 0, self.n_lists_))
        return list(zip(cuts[:-1].tolist(), cuts[1:].tolist(), strict=True))

    def join_first(self, k, n_probe, lists=None, *, probes=None):
        """Pass 1 of :meth:`self_join` for the points of some lists, and their probes.

        Parameters
        ----------
        k : int
            Points kept per indexed point.
        n_probe : int or None
            Lists the second pass will probe per point; the index's own when None.
        lists : (int, int), default=None
            ``(first list, end list)``: the lists whose points are joined (see
            :meth:`join_lists`); all when None.
        probes : ndarray of shape (n_points, >= n_probe), default=None
            The points' nearest lists, nearest first, in ``X_``'s order (from
            :meth:`assign`); computed here when None.

        Returns
        -------
        part : JoinPart
            The points' top ``k`` among their list-mates (positions in ``X_``), their
            k-th best scores, and their ``n_probe`` probed lists.

        Examples
        --------
        The self-join in two parts (on two workers, say), merged per point:

        >>> import numpy as np
        >>> from sksemantic.neighbors import IVFIndex
        >>> X = np.random.default_rng(0).normal(size=(1000, 8)).astype(np.float32)
        >>> index = IVFIndex(n_lists=10, random_state=0).fit(X)
        >>> parts = [index.join_first(5, 3, lists) for lists in index.join_lists(2)]
        >>> thresholds = np.concatenate([p.thresholds for p in parts])
        >>> probes = np.concatenate([p.probes for p in parts])
        >>> found = [index.join_second(5, p, thresholds, probes) for p in parts]
        >>> S = np.concatenate([f[0] for f in found], axis=1)
        >>> ids = np.concatenate([f[1] for f in found], axis=1)
        >>> best = np.lexsort((ids, -S), axis=1)[:, :5]
        >>> S, ids = np.take_along_axis(S, best, 1), np.take_along_axis(ids, best, 1)
        >>> scores, ids, _ = index.join_fit_order(*index.join_fill(S, ids))
        >>> bool((ids == index.self_join(5, knob=3)[1]).all())
        True
        """
        n, off = self.n_samples_, self.offsets_
        l0, l1 = (0, self.n_lists_) if lists is None else (int(lists[0]), int(lists[1]))
        a, b = int(off[l0]), int(off[l1])
        score = self._list_scorer(self.X_, self.sqnorm_)
        best_s, best_i = _empty_answers(b - a, k)
        thr = np.full(b - a, -np.inf, dtype=np.float32)
        buf = _CandidateBuffer(best_s, best_i, thr, limit=1 << 19, n_jobs=self.n_jobs)
        lock = threading.Lock()
        lists = l0 + np.flatnonzero(np.diff(off[l0 : l1 + 1]) > 0)

        def pass1(u, v):
            for lst in lists[u:v].tolist():
                lo, hi = int(off[lst]), int(off[lst + 1])
                for qs in _column_blocks(np.arange(lo, hi), hi - lo):
                    S = score(lo, hi, qs)  # list-mates (rows) by some of them (columns)
                    thr[qs - a], col, r = _first_list(S, k)
                    with lock:
                        buf.add(qs[r] - a, S[col, r], col + lo)

        given, probes = probes, None
        if given is not None and len(given) != b - a:
            raise ValueError(f"probes must have one row per point of the lists ({b - a}), "
                             f"got {len(given)}.")
        with blas_threads(1):
            self._run_groups(pass1, len(lists), self.n_jobs)
            buf.flush()
            n_probe = self._resolved_n_probe(n_probe)
            if n_probe > 1 and given is not None and given.shape[1] >= n_probe:
                probes = np.ascontiguousarray(given[:, :n_probe], dtype=np.int32)
            elif n_probe > 1:
                probes = np.empty((b - a, n_probe), dtype=np.int32)
                step = max(1024, 2**23 // (8 * n_probe))
                for c0 in range(a, b, step):
                    c1 = min(b, c0 + step)
                    probes[c0 - a : c1 - a] = self._probe(self.X_[c0:c1], n_probe, self.n_jobs)
        return JoinPart(a, b, best_s, best_i, thr, probes, n)

    def join_second(self, k, part, thresholds, probes):
        """Pass 2 of :meth:`self_join` for the points of ``part``.

        Each point of ``part`` is scored against its other probed lists, and every
        scored pair is offered to both of its points, unless the other point probes
        this one's list (then it offers the pair itself, from its own part). The
        points of other parts keep only pairs at or above their ``thresholds``.

        Parameters
        ----------
        k : int
            Points kept per indexed point.
        part : JoinPart
            The points' pass 1, from :meth:`join_first`.
        thresholds : ndarray of shape (n_samples_,)
            Every point's k-th best score after pass 1 (the parts' thresholds, in
            order).
        probes : ndarray of shape (n_samples_, n_probe) or None
            Every point's probed lists (the parts' probes, in order); None when
            ``n_probe`` is 1 (pass 1 is the whole join).

        Returns
        -------
        scores : ndarray of shape (n_samples_, k), float32
        ids : ndarray of shape (n_samples_, k)
            Candidates found by this part for every point (positions in ``X_``,
            -1 for none), best first; the parts' candidates merged (each pair is
            offered to a point by one part only) give :meth:`self_join`'s answer.
        """
        n, off = self.n_samples_, self.offsets_
        a, b = part.start, part.stop
        if a == 0 and b == n:
            best_s, best_i = part.scores, part.ids
        else:
            best_s, best_i = _empty_answers(n, k)
            best_s[a:b], best_i[a:b] = part.scores, part.ids
        if probes is None or probes.shape[1] <= 1:
            return best_s, best_i
        n_probe = probes.shape[1]
        thr = np.array(thresholds, dtype=np.float32)
        buf = _CandidateBuffer(best_s, best_i, thr, limit=1 << 19, n_jobs=self.n_jobs)
        lock = threading.Lock()
        score = self._list_scorer(self.X_, self.sqnorm_)
        own = np.repeat(np.arange(self.n_lists_), np.diff(off)).astype(np.int32)

        def pass2(groups, u, v):
            for lo, hi, group in groups[u:v]:
                for qs in _column_blocks(group, hi - lo):
                    pass2_product(lo, hi, qs)

        def pass2_product(lo, hi, qs):
            S = score(lo, hi, qs)
            # Stale thresholds (another thread may be tightening them) only let
            # through extra, still valid, candidates.
            col, r = _at_least(S, thr[qs])  # for the queries
            if r.size > _MANY * k * S.shape[1]:
                # Weak thresholds (on wide noisy data, a list's k-th best is no
                # nearer than the rest): the product's own k-th best per query
                # bounds each query's final k-th best, and holds the candidates.
                thr[qs] = t = np.maximum(thr[qs], _kth_largest(S, k, axis=0))
                col, r = _best_entries(S, t, k)
            q, p = _at_least(S.T, thr[lo:hi])  # for the list's points
            if q.size > _MANY * k * S.shape[0]:
                thr[lo:hi] = t = np.maximum(thr[lo:hi], _kth_largest(S, k, axis=1))
                q, p = _best_entries(S.T, t, k)
            # A point that probes the query's list offers itself that pair from
            # its own search: offered once, the merges need no de-duplication.
            mine = (probes[p + lo] == own[qs[q], None]).any(axis=1)
            q, p = q[~mine], p[~mine]
            with lock:
                buf.add(qs[r], S[col, r], col + lo)
                buf.add(p + lo, S[p, q], qs[q])

        with blas_threads(1):
            step = max(1024, 2**23 // (8 * n_probe))  # a chunk's pairs: 8 MiB
            for c0 in range(a, b, step):
                c1 = min(b, c0 + step)
                # The point's own list was pass 1's (its probe 0, but for ties).
                other = probes[c0:c1] != own[c0:c1, None]
                q, _ = np.nonzero(other)
                groups = self._list_groups(probes[c0:c1][other], queries=q + c0)
                self._run_groups(partial(pass2, groups), len(groups), self.n_jobs)
            buf.flush()
        return best_s, best_i

    def join_fill(self, scores, ids, start=0):
        """Rows of a self-join that found fewer than ``k`` points, answered exactly.

        Parameters
        ----------
        scores, ids : ndarray of shape (n_rows, k)
            Merged candidates of the points at positions ``start:start + n_rows`` of
            ``X_``; filled in place.
        start : int, default=0
            Position of the first row.

        Returns
        -------
        scores, ids : ndarray of shape (n_rows, k)
        """
        stop = start + len(scores)
        return self._fill_missing(self.X_[start:stop], self.sqnorm_[start:stop], scores, ids)

    def join_rows(self, scores, ids, start=0, *, rescore=False):
        """Answers of a self-join for a range of ``X_``, in the points' fit order.

        Parameters
        ----------
        scores, ids : ndarray of shape (n_rows, k)
            Merged candidates of the points at positions ``start:start + n_rows`` of
            ``X_`` (ids are positions).
        start : int, default=0
            Position of the first row.
        rescore : bool, default=False
            Euclidean scores computed again from differences, as :meth:`self_join`
            reports them (the rows of a distributed join; :meth:`self_join` rescores
            its whole answer itself).

        Returns
        -------
        rows : ndarray of shape (n_rows,)
            The points' ids (fit order).
        scores : ndarray of shape (n_rows, k), float32
        ids : ndarray of shape (n_rows, k)
            Their neighbours' ids: int32 when they fit (half the memory), else int64.
        q_sqnorm : ndarray of shape (n_rows,)
        """
        stop = start + len(scores)
        perm = self.perm_
        ids = (perm.astype(np.int32) if self.n_samples_ < 2**31 else perm)[ids]
        if rescore:
            scores, ids = self._rescored(self.X_[start:stop], scores, ids)
        return perm[start:stop], scores, ids, self.sqnorm_[start:stop]

    def join_fit_order(self, scores, ids):
        """A whole self-join's answers, from ``X_``'s positions to the fit order.

        Parameters
        ----------
        scores, ids : ndarray of shape (n_samples_, k)
            Rows and ids are positions in ``X_``; consumed (their memory is reused).

        Returns
        -------
        scores : ndarray of shape (n_samples_, k), float32
        ids : ndarray of shape (n_samples_, k)
            int32 when the ids fit, else int64.
        q_sqnorm : ndarray of shape (n_samples_,)
        """
        rows, scores, ids, sq = self.join_rows(scores, ids)
        out_s = np.empty_like(scores)
        out_s[rows] = scores
        del scores
        out_i = np.empty_like(ids)
        out_i[rows] = ids
        del ids
        out_sq = np.empty_like(sq)
        out_sq[rows] = sq
        return out_s, out_i, out_sq


def _empty_answers(n, k):
    """``(scores, ids)`` of shape (n, k) holding nothing yet (-inf, -1), on ordinary
    pages (see :func:`~sksemantic.utils.small_pages`: a fresh answer array of a few
    hundred megabytes stalled on huge-page compaction as long as the join's pass)."""
    scores = small_pages(np.empty((n, k), dtype=np.float32))
    ids = small_pages(np.empty((n, k), dtype=np.int64))
    scores.fill(-np.inf)
    ids.fill(-1)
    return scores, ids


@dataclasses.dataclass
class JoinPart:
    """Pass 1 of a self-join for the points at positions ``start:stop`` of ``X_``.

    Attributes
    ----------
    start, stop : int
        The points' positions in the index's list order.
    scores, ids : ndarray of shape (stop - start, k)
        Their best ``k`` among their list-mates (ids are positions), best first.
    thresholds : ndarray of shape (stop - start,)
        Their k-th best scores so far.
    probes : ndarray of shape (stop - start, n_probe) or None
        Their probed lists (None for one probe).
    n_samples : int
        Points in the index.
    """

    start: int
    stop: int
    scores: np.ndarray
    ids: np.ndarray
    thresholds: np.ndarray
    probes: np.ndarray | None
    n_samples: int


def _discard(path):
    """Remove a file the index created (gone already is fine)."""
    if path is None:
        return
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
