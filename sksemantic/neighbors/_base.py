"""The interface every neighbour index implements.

An index is a plain object (not an estimator): estimators own one as a fitted attribute.
``fit(X)`` prepares and indexes the data, ``query(Q, k)`` returns the ``k`` best indexed
points per query as ``(scores, ids)`` sorted by score (see :mod:`._metric` for what a
score is), and ``self_join(k)`` returns the same for the indexed points themselves, each
row starting with the point itself.
"""

import weakref

import numpy as np

from ._metric import (
    data_center,
    gathered_scores,
    pairwise_scores,
    prepare,
    scores_to_distances,
    scores_to_similarities,
)
from ._topk import put_self_first, sort_rows, topk_dense

__all__ = ["BaseIndex", "RescoredIndex"]

#: Inverse permutations of indexes that store their rows reordered (see
#: ``BaseIndex._positions``), dropped with the index.
_POSITIONS = weakref.WeakKeyDictionary()


class BaseIndex:
    """Common state and conversions; subclasses implement ``_build`` and ``_query``."""

    def __init__(self, metric="cosine"):
        self.metric = metric

    # -- building -------------------------------------------------------------------
    def fit(self, X):
        self.n_samples_, self.n_features_ = X.shape
        self.center_ = data_center(X, self.metric)
        sqnorm = self._fit_raw(X)
        self.max_sqnorm_ = float(sqnorm.max()) if sqnorm.size else 0.0
        return self

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
    def query(self, Q, k):
        """Best ``k`` indexed points for each row of ``Q`` (raw, unprepared).

        Returns
        -------
        scores : ndarray of shape (n_queries, k), float32
        ids : ndarray of shape (n_queries, k), int64
        q_sqnorm : ndarray of shape (n_queries,)
            Squared norms of the prepared queries (for distance conversion).
        """
        Q_prep, q_sqnorm = prepare(Q, self.metric, self._center())
        scores, ids = self._query(Q_prep, q_sqnorm, k)
        scores, ids = self._rescored(Q_prep, scores, ids)
        return scores, ids, q_sqnorm

    def query_subset(self, Q, k, ids, *, max_block=2**24):
        """Exact best ``k`` among the indexed points ``ids`` for each row of ``Q``.

        For filtered search: when few points pass a filter, scoring just those is
        cheaper and exact, whatever the backend.

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

    @property
    def forces_self(self):
        """Whether every point is its own first neighbour: true for metrics, where
        d(x, x) = 0; not for ``inner_product``, where another point can beat x itself."""
        return self.metric != "inner_product"

    def self_join(self, k):
        """Best ``k`` indexed points for every indexed point, itself first (for metrics).

        For ``inner_product`` the rows are the plain top-k inner products, as
        ``query`` would return them.
        """
        scores, ids, q_sqnorm = self._self_join(k)
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
        """Non-negative distances for scores returned by this index."""
        return scores_to_distances(scores, self.metric, q_sqnorm, self.max_sqnorm_)

    def similarities(self, scores):
        """Similarity weights for scores returned by this index."""
        return scores_to_similarities(scores, self.metric)


class RescoredIndex(BaseIndex):
    """A backend whose library finds candidate ids (annoy, hnswlib); the rest is shared.

    The candidates are scored again with the shared metric code, so that every backend
    reports the same distance for the same pair, and rows the library could not fill
    (an id of -1: too small a search, a tiny index) are answered exactly. Subclasses
    keep the prepared rows in ``X_`` and ``sqnorm_`` and implement ``_candidates``.
    """

    def _candidates(self, Q_prep, k):  # pragma: no cover - abstract
        """Candidate ids, shape (n_queries, k); -1 where the library found too few."""
        raise NotImplementedError

    def _query(self, Q_prep, q_sqnorm, k):
        ids = self._candidates(Q_prep, k)
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

    def _self_join(self, k):
        scores, ids = self._query(self.X_, self.sqnorm_, k)
        return scores, ids, self.sqnorm_
