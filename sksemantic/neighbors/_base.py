"""The interface every neighbour index implements.

An index is a plain object (not an estimator): estimators own one as a fitted attribute.
``fit(X)`` prepares and indexes the data, ``query(Q, k)`` returns the ``k`` best indexed
points per query as ``(scores, ids)`` sorted by score (see :mod:`._metric` for what a
score is), and ``self_join(k)`` returns the same for the indexed points themselves, each
row starting with the point itself.
"""

import weakref
from numbers import Integral

import numpy as np
from sklearn.utils import check_array

from ..utils import check_mapped
from ._metric import (
    METRICS,
    data_center,
    gathered_scores,
    pairwise_scores,
    prepare,
    scores_to_distances,
    scores_to_similarities,
)
from ._topk import put_self_first, sort_rows, topk_dense

__all__ = ["BaseIndex", "RescoredIndex"]

#: How many times faster the exact self-join (each pair scored once, but each block
#: selected both ways round) runs than exact search of every indexed point: the unit of
#: a self-join's :meth:`BaseIndex.relative_cost`. The larger of the measured ratios
#: (``benchmarks/RESULTS_recall.md``), so that the model errs towards exact search.
EXACT_SELF_JOIN_SPEEDUP = 1.5

#: Inverse permutations of indexes that store their rows reordered (see
#: ``BaseIndex._positions``), dropped with the index.
_POSITIONS = weakref.WeakKeyDictionary()


class BaseIndex:
    """Common state and conversions; subclasses implement ``_build`` and ``_query``.

    Approximate backends name their search-effort parameter in ``KNOB`` (``"n_probe"``,
    ``"ef_search"``, ``"search_k"``): :meth:`query` takes a value for it per call, so
    that a calibration (:mod:`sksemantic.neighbors._calibrate`) can try several values
    on one fitted index without changing its state. Exact indexes have ``KNOB = None``.
    """

    #: Name of the search-effort parameter (None: exact search, nothing to tune).
    KNOB = None

    #: Whether :meth:`recall_curve` searches at every value (its cost grows with the
    #: values asked for), rather than deriving the curve from the index's structure.
    RECALL_CURVE_SEARCHES = True

    #: Whether rows held out by :meth:`fit` stay out of searches until
    #: :meth:`insert_holdout` (a graph links them in only then). Exact answers leave
    #: them out too meanwhile, so that a calibration measures what the index can find.
    HOLDOUT_UNSEARCHED = False

    def __init__(self, metric="cosine"):
        self.metric = metric

    # -- building -------------------------------------------------------------------
    def fit(self, X, *, holdout=None):
        """Index the points ``X``; their ids are their row numbers.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            The points, raw (normalised here for ``"cosine"``).
        holdout : array-like of int, default=None
            Rows (by position in ``X``) that must not shape the index until
            :meth:`insert_holdout`: a calibration queries the index with them as if
            they were new queries. IVF leaves them out of its k-means training; HNSW
            links them into its graph only at :meth:`insert_holdout`. They are indexed
            (and found) by every backend once :meth:`insert_holdout` has run.

        Returns
        -------
        self : object
            The fitted index.
        """
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {self.metric!r}.")
        X = check_mapped(check_array, X, dtype=[np.float32, np.float64], input_name="X")
        self.n_samples_, self.n_features_ = X.shape
        self._holdout = None if holdout is None else np.unique(np.asarray(holdout, np.int64))
        self.center_ = data_center(X, self.metric)
        sqnorm = self._fit_raw(X)
        self.max_sqnorm_ = float(sqnorm.max()) if sqnorm.size else 0.0
        return self

    def insert_holdout(self):
        """Make the rows held out by :meth:`fit` part of the index (a no-op when none).

        Returns
        -------
        self : object
            The index, holding every row.
        """
        if getattr(self, "_holdout", None) is not None:
            self._insert_holdout(self._holdout)
        self._holdout = None
        return self

    def _insert_holdout(self, rows):
        """Backends that keep held-out rows out of their structure link them in here."""

    def _fit_raw(self, X):
        """Prepare ``X`` and build; returns the prepared rows' squared norms.

        Backends that reorder the data override this to prepare it chunk by chunk
        straight into its final layout, so that no second full copy is ever held.
        """
        X_prep, sqnorm = prepare(X, self.metric, self.center_)
        self._build(X_prep, sqnorm)
        return sqnorm

    def _build(self, X_prep, sqnorm):  # pragma: no cover - abstract
        raise NotImplementedError

    def add(self, X):
        """Index more points; they get ids ``n_samples_, n_samples_ + 1, ...``.

        Exact and IVF indexes append without rebuilding (IVF puts each point in the list
        of its nearest centre; the centres are not retrained). Annoy cannot add to a
        built forest: it is rebuilt over all points with the same parameters.

        Parameters
        ----------
        X : ndarray of shape (n_new, n_features)
            The new points, raw.

        Returns
        -------
        self : object
            The index, grown.
        """
        if np.ndim(X) != 2 or np.shape(X)[1] != self.n_features_:
            raise ValueError(
                f"X has {np.shape(X)[-1]} features, but the index holds {self.n_features_}."
            )
        # The centre stays the one of fit: every stored vector must share it.
        X_prep, sqnorm = prepare(X, self.metric, self._center())
        if X_prep.shape[0] == 0:
            return self
        self._add(X_prep, sqnorm)
        self.n_samples_ += X_prep.shape[0]
        self.max_sqnorm_ = max(self.max_sqnorm_, float(sqnorm.max()))
        return self

    def _add(self, X_prep, sqnorm):  # pragma: no cover - abstract
        raise NotImplementedError

    # -- querying -------------------------------------------------------------------
    def query(self, Q, k, *, knob=None):
        """Best ``k`` indexed points for each row of ``Q`` (raw, unprepared).

        Parameters
        ----------
        Q : ndarray of shape (n_queries, n_features)
            The queries.
        k : int
            Points returned per query.
        knob : int, default=None
            Search effort for this call (the parameter named by ``KNOB``); the index's
            own setting when None. Ignored by exact indexes.

        Returns
        -------
        scores : ndarray of shape (n_queries, k), float32
        ids : ndarray of shape (n_queries, k), int64
        q_sqnorm : ndarray of shape (n_queries,)
            Squared norms of the prepared queries (for distance conversion).
        """
        Q = self._check_queries(Q, k)
        Q_prep, q_sqnorm = prepare(Q, self.metric, self._center())
        if knob is None or self.KNOB is None:
            scores, ids = self._query(Q_prep, q_sqnorm, k)
        else:
            scores, ids = self._query(Q_prep, q_sqnorm, k, knob=int(knob))
        scores, ids = self._rescored(Q_prep, scores, ids)
        return scores, ids, q_sqnorm

    def query_subset(self, Q, k, ids, *, max_block=2**24):
        """Exact best ``k`` among the indexed points ``ids`` for each row of ``Q``.

        For filtered search: when few points pass a filter, scoring just those is
        cheaper and exact, whatever the backend.

        Parameters
        ----------
        Q : ndarray of shape (n_queries, n_features)
            The queries.
        k : int
            Points returned per query.
        ids : array-like of int
            The indexed points to search among.
        max_block : int, default=2**24
            Largest score block computed at once (queries times ``ids``), to bound memory.

        Returns
        -------
        scores, ids : ndarray of shape (n_queries, min(k, len(ids)))
            Sorted by score; ids index the whole index.
        q_sqnorm : ndarray of shape (n_queries,)
        """
        ids = np.asarray(ids, dtype=np.int64)
        Q_prep, q_sqnorm = prepare(Q, self.metric, self._center())
        Xs, sqs = self._rows(ids)
        kk = min(int(k), len(ids))
        out_s = np.empty((len(Q_prep), kk), dtype=np.float32)
        out_i = np.empty((len(Q_prep), kk), dtype=np.int64)
        step = int(max(1, max_block // max(1, len(ids))))
        for a in range(0, len(Q_prep), step):
            b = min(a + step, len(Q_prep))
            S = pairwise_scores(Q_prep[a:b], Xs, self.metric, q_sqnorm[a:b], sqs)
            s, i = topk_dense(S, kk)
            out_s[a:b], out_i[a:b] = s, ids[i]
        out_s, out_i = self._rescored(Q_prep, out_s, out_i)
        return out_s, out_i, q_sqnorm

    def _check_queries(self, Q, k):
        """Queries as a finite float array of the indexed width; ``k`` a positive int."""
        if isinstance(k, bool) or not isinstance(k, Integral) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}.")
        Q = check_array(Q, dtype=[np.float32, np.float64], input_name="Q")
        if Q.shape[1] != self.n_features_:
            raise ValueError(
                f"Q has {Q.shape[1]} features, but the index holds {self.n_features_}."
            )
        return Q

    def _center(self):
        """The centre subtracted from every vector (None: not centred; indexes saved
        before centring existed have none)."""
        return getattr(self, "center_", None)

    def _rescored(self, Q_prep, scores, ids):
        """Euclidean scores of the final candidates recomputed from differences.

        Candidates are ranked by ``|q|^2 - 2 q.x + |x|^2`` (a matrix product), which in
        float32 loses the digits of near pairs; the ``k`` found per query are scored
        again from ``q - x`` and re-sorted, so that reported distances are accurate.
        ``Q_prep`` None means the queries are the indexed points (a self-join).
        """
        if self.metric != "euclidean" or ids.size == 0:
            return scores, ids
        found = ids >= 0
        exact = np.empty(ids.shape, dtype=np.float32)
        step = 2**16
        for a in range(0, len(ids), step):
            rows = slice(a, a + step)
            pos = self._positions(np.where(found[rows], ids[rows], 0))
            if Q_prep is not None:
                q = Q_prep[rows]
            else:
                q = self.X_[self._positions(np.arange(a, min(a + step, len(ids))))]
            exact[rows] = gathered_scores(q, self.X_, pos, self.metric)
        return sort_rows(np.where(found, exact, scores), ids)

    def _positions(self, ids):
        """Where the points ``ids`` sit in ``X_`` (IVF stores them list by list, its
        ``perm_`` giving the id at each position). The inverse permutation is cached
        per index outside its state, so that it is neither pickled nor saved."""
        perm = getattr(self, "perm_", None)
        if perm is None:
            return ids
        cached = _POSITIONS.get(self)
        if cached is None or cached[0] is not perm:
            inv = np.empty_like(perm)
            inv[perm] = np.arange(len(perm))
            cached = _POSITIONS[self] = (perm, inv)
        return cached[1][ids]

    def _rows(self, ids):
        """Prepared vectors and squared norms of the indexed points ``ids``."""
        return self.X_[ids], self.sqnorm_[ids]

    # -- public reads (for calibration, metrics and other layers) --------------------
    def vectors(self, ids=None):
        """The indexed points as the index scores them, in fit order.

        These are the prepared rows (L2-normalised for cosine), in the coordinates
        of the data given to :meth:`fit`: they rank exactly as the original rows do
        under the index's metric, for queries given as they are.

        Parameters
        ----------
        ids : array-like of int, default=None
            Which points; all of them when None.

        Returns
        -------
        X : ndarray of shape (n_ids, n_features), float32
        """
        if ids is None:
            ids = np.arange(self.n_samples_)
        X = self._rows(np.asarray(ids, dtype=np.int64))[0]
        center = self._center()
        return X if center is None else X + center

    @property
    def train_rows(self):
        """Indexed points (fit order) that trained the index's structure, or None.

        A check of new queries' recall must not use them as queries: a structure
        fitted to a point does not treat it as a new point (its recall can differ
        either way). A self-join's check counts them in their share.
        """
        return getattr(self, "train_rows_", None)

    def _exact_view(self):
        """An exact index over this index's stored vectors (no copy), and the map from
        its ids to fit order (None: the same order)."""
        from ._brute import BruteIndex

        view = BruteIndex(self.metric, n_jobs=getattr(self, "n_jobs", None))
        view.n_samples_, view.n_features_ = self.n_samples_, self.n_features_
        view.max_sqnorm_, view.center_ = self.max_sqnorm_, self._center()
        view.X_, view.sqnorm_ = self.X_, self.sqnorm_
        held = getattr(self, "_holdout", None) if self.HOLDOUT_UNSEARCHED else None
        if held is not None and held.size:
            # Rows the index cannot find yet: out of the exact answers too (a copy of
            # the others, for the calibration before insert_holdout only).
            ids = np.setdiff1d(np.arange(self.n_samples_), held, assume_unique=True)
            pos = self._positions(ids)
            view.X_, view.sqnorm_ = self.X_[pos], self.sqnorm_[pos]
            view.n_samples_ = len(ids)
            return view, ids
        return view, getattr(self, "perm_", None)

    def exact_query(self, Q, k):
        """Exact best ``k`` indexed points for each row of ``Q``, whatever the backend.

        Parameters
        ----------
        Q : array-like of shape (n_queries, n_features)
            The queries, raw.
        k : int
            Points returned per query.

        Returns
        -------
        scores, ids : ndarray of shape (n_queries, k)
            As :meth:`query` returns them (ids in fit order).
        q_sqnorm : ndarray of shape (n_queries,)
            Squared norms of the prepared queries.
        """
        view, perm = self._exact_view()
        scores, ids, q_sqnorm = view.query(Q, k)
        if perm is not None:
            ids = np.where(ids >= 0, perm[np.maximum(ids, 0)], -1)
        return scores, ids, q_sqnorm

    def neighbors(self, rows, k, *, knob=None):
        """Best ``k`` other indexed points of the indexed points ``rows``, as
        :meth:`query` finds them (each point left out of its own answers).

        Parameters
        ----------
        rows : array-like of int
            Indexed points (fit order) used as queries.
        k : int
            Points returned per row.
        knob : int, default=None
            Search effort, as for :meth:`query`.

        Returns
        -------
        scores, ids : ndarray of shape (len(rows), k)
        """
        rows = np.asarray(rows, dtype=np.int64)
        Xs, sqs = self._rows(rows)
        if knob is None or self.KNOB is None:
            s, i = self._query(Xs, sqs, k + 1)
        else:
            s, i = self._query(Xs, sqs, k + 1, knob=int(knob))
        return drop_rows_self(s, i, rows)

    def exact_neighbors(self, rows, k):
        """Exact :meth:`neighbors`, whatever the backend.

        Parameters
        ----------
        rows : array-like of int
            Indexed points (fit order) used as queries.
        k : int
            Points returned per row.

        Returns
        -------
        scores, ids : ndarray of shape (len(rows), k)
        """
        rows = np.asarray(rows, dtype=np.int64)
        Xs, sqs = self._rows(rows)
        view, perm = self._exact_view()
        s, i = view._query(Xs, sqs, k + 1)
        if perm is not None:
            i = np.where(i >= 0, perm[np.maximum(i, 0)], -1)
        return drop_rows_self(s, i, rows)

    def exact_self_join(self, k):
        """Exact :meth:`self_join`, whatever the backend (rows and ids in fit order).

        Parameters
        ----------
        k : int
            Points returned per indexed point, itself included.

        Returns
        -------
        scores, ids : ndarray of shape (n_samples_, k)
        q_sqnorm : ndarray of shape (n_samples_,)
        """
        view, perm = self._exact_view()
        scores, ids, sq = view.self_join(k)
        if perm is None:
            return scores, ids, sq
        out_s, out_i, out_sq = np.empty_like(scores), np.empty_like(ids), np.empty_like(sq)
        out_s[perm], out_i[perm], out_sq[perm] = scores, perm[ids], sq
        return out_s, out_i, out_sq

    # -- search effort ------------------------------------------------------------------
    def knob_values(self, k):
        """Ascending values of ``KNOB`` worth trying.

        Parameters
        ----------
        k : int
            Points returned per query.

        Returns
        -------
        values : ndarray of int
            Empty for exact indexes.
        """
        return np.array([], dtype=np.int64)

    def default_knob(self, k):
        """The value of ``KNOB`` a query uses when none is given.

        Parameters
        ----------
        k : int
            Points returned per query.

        Returns
        -------
        value : int or None
            None for exact indexes.
        """
        return None

    def relative_cost(self, values, k, *, Q=None, self_rows=None, reverse=False):
        """Estimated cost of a search at each of ``values`` relative to exact search.

        Exact search is the blocked matrix product over every indexed point (for a
        self-join, the symmetric one, which computes each pair once). Estimates come
        from a deterministic model of the work done, not from timings, so that the
        choice they drive does not depend on the machine's load.

        Parameters
        ----------
        values : array-like of int
            Values of ``KNOB``.
        k : int
            Points returned per query.
        Q : array-like of shape (n_queries, n_features), default=None
            Sample queries, for backends whose cost depends on them.
        self_rows : array-like of int, default=None
            Indexed points used as sample queries instead.
        reverse : bool, default=False
            Estimate the cost of :meth:`self_join` rather than of :meth:`query`.

        Returns
        -------
        cost : ndarray of shape (len(values),)
        """
        return np.ones(len(values))

    def recall_curve(self, k, exact_scores, exact_ids, values, *, Q=None, self_rows=None,
                     reverse=False):
        """Per-query recall@k at each of ``values`` of ``KNOB``, against exact answers.

        Recall is tie-aware: a found point counts when its score is at least the exact
        k-th best (less a float32 tolerance), so exact duplicates are all right answers.

        Parameters
        ----------
        k : int
            Points returned per query.
        exact_scores, exact_ids : ndarray of shape (n_queries, k)
            The exact answers (fit-order ids), without the point itself for self rows.
        values : array-like of int
            Values of ``KNOB`` to evaluate.
        Q : array-like of shape (n_queries, n_features), default=None
            Queries (raw). Give either ``Q`` or ``self_rows``.
        self_rows : ndarray of int, default=None
            Indexed points used as queries; each is left out of its own answers.
        reverse : bool, default=False
            With ``self_rows``: the recall of :meth:`self_join` rather than of
            :meth:`query` (they differ for backends whose self-join does more).

        Returns
        -------
        recall : ndarray of shape (n_queries, len(values))
        """
        kth = exact_scores[:, k - 1]
        out = np.empty((len(exact_ids), len(values)))
        for c, v in enumerate(values):
            if self_rows is None:
                s, i, _ = self.query(Q, k, knob=int(v))
            else:
                s, i = self.neighbors(self_rows, k, knob=int(v))
            out[:, c] = tie_aware_hits(s, i, kth) / k
        return out

    @property
    def forces_self(self):
        """Whether every point is its own first neighbour: true for metrics, where
        d(x, x) = 0; not for ``inner_product``, where another point can beat x itself."""
        return self.metric != "inner_product"

    def self_join(self, k, *, knob=None):
        """Best ``k`` indexed points for every indexed point, itself first (for metrics).

        For ``inner_product`` the rows are the plain top-k inner products, as
        ``query`` would return them.

        Parameters
        ----------
        k : int
            Points returned per indexed point, itself included.
        knob : int, default=None
            Search effort, as for :meth:`query`.

        Returns
        -------
        scores : ndarray of shape (n_samples_, k), float32
        ids : ndarray of shape (n_samples_, k), int64
        q_sqnorm : ndarray of shape (n_samples_,)
            Squared norms of the prepared points (for distance conversion).
        """
        if knob is None or self.KNOB is None:
            scores, ids, q_sqnorm = self._self_join(k)
        else:
            scores, ids, q_sqnorm = self._self_join(k, knob=int(knob))
        scores, ids = self._rescored(None, scores, ids)
        if not self.forces_self:
            return scores, ids, q_sqnorm
        self_score = self._self_score(q_sqnorm)
        scores, ids = put_self_first(scores, ids, np.arange(self.n_samples_), self_score)
        return scores, ids, q_sqnorm

    def _self_score(self, q_sqnorm):
        """The score a point has with itself (distance exactly 0)."""
        if self.metric == "cosine":
            return np.ones_like(q_sqnorm, dtype=np.float32)
        return np.zeros_like(q_sqnorm, dtype=np.float32)

    def _self_join(self, k):
        raise NotImplementedError  # pragma: no cover - abstract

    # -- conversions ----------------------------------------------------------------
    def distances(self, scores, q_sqnorm):
        """Non-negative distances for scores returned by this index.

        Parameters
        ----------
        scores : ndarray
            Scores from :meth:`query`, :meth:`query_subset` or :meth:`self_join`.
        q_sqnorm : ndarray of shape (n_queries,)
            The squared norms returned with them.

        Returns
        -------
        distances : ndarray of the shape of ``scores``
            The metric's distances.
        """
        return scores_to_distances(scores, self.metric, q_sqnorm, self.max_sqnorm_)

    def similarities(self, scores):
        """Similarity weights for scores returned by this index.

        Parameters
        ----------
        scores : ndarray
            Scores from :meth:`query`, :meth:`query_subset` or :meth:`self_join`.

        Returns
        -------
        similarities : ndarray of the shape of ``scores``
            Larger means closer (cosine similarity for ``"cosine"``).
        """
        return scores_to_similarities(scores, self.metric)


class RescoredIndex(BaseIndex):
    """A backend whose library finds candidate ids (annoy, hnswlib); the rest is shared.

    The candidates are scored again with the shared metric code, so that every backend
    reports the same distance for the same pair, and rows the library could not fill
    (an id of -1: too small a search, a tiny index) are answered exactly. Subclasses
    keep the prepared rows in ``X_`` and ``sqnorm_`` and implement ``_candidates``.
    """

    def _candidates(self, Q_prep, k, knob=None):  # pragma: no cover - abstract
        """Candidate ids, shape (n_queries, k); -1 where the library found too few."""
        raise NotImplementedError

    def _query(self, Q_prep, q_sqnorm, k, knob=None):
        ids = self._candidates(Q_prep, k, knob)
        k = ids.shape[1]
        bad = np.flatnonzero((ids < 0).any(axis=1))
        good = np.setdiff1d(np.arange(len(ids)), bad)
        scores = np.empty(ids.shape, dtype=np.float32)
        scores[good] = gathered_scores(
            Q_prep[good], self.X_, ids[good], self.metric, q_sqnorm[good], self.sqnorm_
        )
        if bad.size:
            S = pairwise_scores(Q_prep[bad], self.X_, self.metric, q_sqnorm[bad], self.sqnorm_)
            scores[bad], ids[bad] = topk_dense(S, k)
        return sort_rows(scores, ids)

    def _self_join(self, k, knob=None):
        scores, ids = self._query(self.X_, self.sqnorm_, k, knob)
        return scores, ids, self.sqnorm_


def inherit_docstrings(cls):
    """Give the methods a subclass overrides without a docstring their base's one
    (numpydoc reads each method's own ``__doc__``)."""
    for name, member in vars(cls).items():
        if callable(member) and not name.startswith("_") and member.__doc__ is None:
            for base in cls.__mro__[1:]:
                doc = getattr(getattr(base, name, None), "__doc__", None)
                if doc:
                    member.__doc__ = doc
                    break
    return cls


def drop_rows_self(scores, ids, self_ids):
    """Remove each row's own point from index answers: k columns become k - 1.

    The first occurrence of ``self_ids[r]`` leaves row ``r``; a row that does not hold
    it loses its last (worst) entry instead, so that every row keeps the same width.
    This is how a self-join answers "neighbours other than the point itself".

    Parameters
    ----------
    scores : ndarray of shape (n_rows, k)
        Scores sorted per row, as :meth:`BaseIndex.query` returns them.
    ids : ndarray of shape (n_rows, k)
        The matching ids.
    self_ids : array-like of shape (n_rows,)
        The id of the point each row queried for.

    Returns
    -------
    scores : ndarray of shape (n_rows, k - 1)
        The scores left, in their order.
    ids : ndarray of shape (n_rows, k - 1)
        The ids left, in their order.

    Examples
    --------
    >>> import numpy as np
    >>> from sksemantic.neighbors import drop_rows_self
    >>> scores = np.array([[1.0, 0.9, 0.5], [0.8, 0.7, 0.6]])
    >>> ids = np.array([[0, 2, 1], [0, 2, 3]])
    >>> drop_rows_self(scores, ids, [0, 1])[1]  # row 1 lacks point 1: its last goes
    array([[2, 1],
           [0, 2]])
    """
    n, k = ids.shape
    is_self = ids == np.asarray(self_ids)[:, None]
    is_self[~is_self.any(axis=1), -1] = True
    first = np.zeros_like(is_self)  # only the first occurrence is the point itself
    first[np.arange(n), is_self.argmax(axis=1)] = True
    return scores[~first].reshape(n, k - 1), ids[~first].reshape(n, k - 1)


def tie_aware_hits(scores, ids, kth, rtol=1e-5):
    """Per row, how many found points (ids >= 0) score at least the exact ``kth``.

    The hits of a tie-aware recall@k: a point tied with the exact k-th neighbour is as
    good an answer as it, whichever of the tied ids exact search happened to return.
    Counts are capped at the number of columns. The relative tolerance absorbs the
    float32 differences between the blocked and the gathered computations of the same
    score.

    Parameters
    ----------
    scores : ndarray of shape (n_rows, k)
        Scores of the answers to check.
    ids : ndarray of shape (n_rows, k)
        Their ids; negative where no point was found.
    kth : ndarray of shape (n_rows,)
        Each row's exact k-th best score.
    rtol : float, default=1e-5
        Relative tolerance on ``kth`` (relative to ``max(1, |kth|)``).

    Returns
    -------
    hits : ndarray of shape (n_rows,), int
        Found points scoring at least ``kth`` per row; divide by k for recall@k.

    Examples
    --------
    >>> import numpy as np
    >>> from sksemantic.neighbors import tie_aware_hits
    >>> scores = np.array([[0.9, 0.8, -np.inf], [0.9, 0.7, 0.6]])
    >>> ids = np.array([[3, 1, -1], [2, 5, 4]])
    >>> tie_aware_hits(scores, ids, kth=np.array([0.8, 0.6]))
    array([2, 3])
    """
    tol = rtol * np.maximum(1.0, np.abs(kth))
    ok = (ids >= 0) & (scores >= (kth - tol)[:, None])
    return np.minimum(ok.sum(axis=1), scores.shape[1])
