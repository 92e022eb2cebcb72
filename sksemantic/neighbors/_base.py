"""The interface every neighbour index implements.

An index is a plain object (not an estimator): estimators own one as a fitted attribute.
``fit(X)`` prepares and indexes the data, ``query(Q, k)`` returns the ``k`` best indexed
points per query as ``(scores, ids)`` sorted by score (see :mod:`._metric` for what a
score is), and ``self_join(k)`` returns the same for the indexed points themselves, each
row starting with the point itself.
"""

import numpy as np

from ._metric import (
    gathered_scores,
    pairwise_scores,
    prepare,
    scores_to_distances,
    scores_to_similarities,
)
from ._topk import put_self_first, sort_rows, topk_dense

__all__ = ["BaseIndex", "RescoredIndex"]


class BaseIndex:
    """Common state and conversions; subclasses implement ``_build`` and ``_query``."""

    def __init__(self, metric="cosine"):
        self.metric = metric

    # -- building -------------------------------------------------------------------
    def fit(self, X):
        """Index the points ``X``; their ids are their row numbers.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            The points, raw (normalised here for ``"cosine"``).

        Returns
        -------
        self : object
            The fitted index.
        """
        self.n_samples_, self.n_features_ = X.shape
        sqnorm = self._fit_raw(X)
        self.max_sqnorm_ = float(sqnorm.max()) if sqnorm.size else 0.0
        return self

    def _fit_raw(self, X):
        """Prepare ``X`` and build; returns the prepared rows' squared norms.

        Backends that reorder the data override this to prepare it chunk by chunk
        straight into its final layout, so that no second full copy is ever held.
        """
        X_prep, sqnorm = prepare(X, self.metric)
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
        X_prep, sqnorm = prepare(X, self.metric)
        if X_prep.ndim != 2 or X_prep.shape[1] != self.n_features_:
            raise ValueError(
                f"X has {X_prep.shape[-1]} features, but the index holds {self.n_features_}."
            )
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

        Parameters
        ----------
        Q : ndarray of shape (n_queries, n_features)
            The queries.
        k : int
            Points returned per query.

        Returns
        -------
        scores : ndarray of shape (n_queries, k), float32
        ids : ndarray of shape (n_queries, k), int64
        q_sqnorm : ndarray of shape (n_queries,)
            Squared norms of the prepared queries (for distance conversion).
        """
        Q_prep, q_sqnorm = prepare(Q, self.metric)
        scores, ids = self._query(Q_prep, q_sqnorm, k)
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
        Q_prep, q_sqnorm = prepare(Q, self.metric)
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
        return out_s, out_i, q_sqnorm

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

        Parameters
        ----------
        k : int
            Points returned per indexed point, itself included.

        Returns
        -------
        scores : ndarray of shape (n_samples_, k), float32
        ids : ndarray of shape (n_samples_, k), int64
        q_sqnorm : ndarray of shape (n_samples_,)
            Squared norms of the prepared points (for distance conversion).
        """
        scores, ids, q_sqnorm = self._self_join(k)
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
