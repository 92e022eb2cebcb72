"""A compressed exhaustive scan with exact re-scoring: a first pass that does not care
where the queries come from.

Lists and graphs find the neighbours of queries that look like the indexed points; a
query from elsewhere (another corpus, short keyword queries against documents) falls
between them, and they must scan much of the data to find its neighbours. An
exhaustive scan in a few principal directions costs a fraction of exact search for
*any* query: the indexed points are centred and projected on their top principal
directions, every point is scored there, and the best ``n_candidates`` are re-scored
exactly. A query's score with a point is its score with the point's projection plus a
term orthogonal to the directions, which is small because the points have little
variance there, whatever the query. How many candidates reach a recall target is
measured like any other search effort (:mod:`._calibrate`).
"""

import numpy as np
from scipy.linalg import eigh

from ._metric import gathered_scores
from ._topk import topk_dense

__all__ = ["CompressedScan"]


class CompressedScan:
    """The reduced copy of an index's prepared points and the scan over it.

    Built from the index's stored rows (``X_``, in its storage order); answers carry
    storage positions, which the index maps to fit order.

    Parameters
    ----------
    metric : str
        ``"cosine"``, ``"inner_product"`` or ``"euclidean"``.
    n_components : int
        Principal directions kept.
    """

    #: Cost of the reduced scan per kept direction, relative to a direction of exact
    #: search (the products and the candidates' selection), and of re-scoring one
    #: candidate relative to one point of exact search (a gather and a short product).
    SCAN_COST = 1.3
    RESCORE_COST = 40.0

    #: Rows that estimate the covariance.
    PCA_SAMPLE = 20_000

    def __init__(self, metric, n_components):
        self.metric = metric
        self.n_components = n_components

    def fit(self, X, sqnorm, random_state=None):
        self.random_state = random_state
        n, d = X.shape
        rng = np.random.default_rng(random_state)
        rows = np.sort(rng.choice(n, min(n, self.PCA_SAMPLE), replace=False))
        S = X[rows].astype(np.float64)
        self.mean_ = S.mean(axis=0)
        S -= self.mean_
        cov = S.T @ S / max(len(S) - 1, 1)
        c = int(min(self.n_components, d))
        _, vecs = eigh(cov, subset_by_index=[d - c, d - 1])
        self.components_ = np.ascontiguousarray(vecs[:, ::-1], dtype=np.float32)
        extra = 1 if self.metric == "euclidean" else 0
        Z = np.empty((n, c + extra), dtype=np.float32)
        mean32 = self.mean_.astype(np.float32)
        for a in range(0, n, 65536):
            Z[a : a + 65536, :c] = (X[a : a + 65536] - mean32) @ self.components_
        if extra:  # 2 q.x - |x|^2 as one product: [2 qP, 1] . [(x - m)P, -|x|^2 / 2]
            Z[:, c] = -0.5 * sqnorm
        self.Z_ = Z
        return self

    def _reduced_queries(self, Q):
        Zq = Q @ self.components_
        if self.metric == "euclidean":
            Zq = np.concatenate([2 * Zq, np.full((len(Q), 1), 1.0, np.float32)], axis=1)
        return np.ascontiguousarray(Zq, dtype=np.float32)

    def candidates(self, Q, n_candidates):
        """Storage positions of each query's ``n_candidates`` best reduced scores."""
        from ._brute import BruteIndex

        view = BruteIndex("inner_product")
        view.n_samples_, view.n_features_ = self.Z_.shape
        view.X_, view.sqnorm_, view.max_sqnorm_ = self.Z_, np.zeros(len(self.Z_), np.float32), 0.0
        Zq = self._reduced_queries(Q)
        return view._query(Zq, np.zeros(len(Zq), np.float32), int(n_candidates))[1]

    def query(self, Q, q_sqnorm, X, sqnorm, k, n_candidates, chunk=256):
        """Top-k (scores, storage positions) of prepared queries ``Q``: the reduced
        scan's candidates re-scored exactly against the stored rows ``X``."""
        n_candidates = int(max(k, min(n_candidates, len(X))))
        cand = self.candidates(Q, n_candidates)
        out_s = np.empty((len(Q), k), dtype=np.float32)
        out_i = np.empty((len(Q), k), dtype=np.int64)
        for a in range(0, len(Q), chunk):
            c = cand[a : a + chunk]
            S = gathered_scores(Q[a : a + chunk], X, np.maximum(c, 0), self.metric,
                                q_sqnorm[a : a + chunk], sqnorm)
            S[c < 0] = -np.inf
            s, j = topk_dense(S, k)
            out_s[a : a + chunk], out_i[a : a + chunk] = s, np.take_along_axis(c, j, axis=1)
        return out_s, out_i

    def ranks(self, Q, positions):
        """For each query, the rank of each of its ``positions`` in the reduced order
        (0: best): the candidates that a scan needs to keep to find it."""
        Zq = self._reduced_queries(Q)
        out = np.empty(positions.shape, dtype=np.int64)
        for a in range(0, len(Q), 64):
            S = Zq[a : a + 64] @ self.Z_.T
            mine = np.take_along_axis(S, positions[a : a + 64], axis=1)
            out[a : a + 64] = (S[:, None, :] > mine[:, :, None]).sum(axis=2)
        return out

    def relative_cost(self, n_candidates, n_samples, n_features):
        values = np.asarray(n_candidates, dtype=np.float64)
        return (self.SCAN_COST * self.Z_.shape[1] / n_features
                + self.RESCORE_COST * values / max(n_samples, 1))
