"""Inverted-file (IVF) search: k-means lists, probed by matrix products.

The indexed points are clustered into ``n_lists`` lists with the shared k-means kernel and
stored list by list. A query scores the list centres, keeps its ``n_probe`` best lists,
and is scored exactly against their members. Queries are grouped by list, so each
(list, queries-probing-it) pair is one BLAS product; the only Python loop is over lists.
Self-joins add every found edge in reverse (if j is among i's neighbours, i is offered to
j), which recovers most neighbours that sit across a list boundary.
"""

import math

import numpy as np
from sklearn.utils import check_random_state

from ..cluster import kmeans, nearest_centroid
from ..utils import Progress, run_spans
from ._base import BaseIndex
from ._metric import pairwise_scores
from ._topk import merge_candidates, topk_dense

__all__ = ["IVFIndex", "default_n_lists", "default_n_probe"]


def default_n_lists(n_samples):
    """``4 * sqrt(n)`` lists (about ``sqrt(n) / 4`` points each), at least 1."""
    return int(max(1, min(n_samples, round(4 * math.sqrt(n_samples)))))


def default_n_probe(n_lists):
    """Lists probed per query when ``n_probe`` is None: ``round(1.1 * sqrt(n_lists)) + 2``.

    Growing with the square root keeps the scanned share of the data falling as the
    data grows (about 3% at 100,000 points, 1% at 1,000,000), where a fixed share would
    make the search quadratic.
    """
    return int(max(1, min(n_lists, round(1.1 * math.sqrt(n_lists)) + 2)))


class IVFIndex(BaseIndex):
    """Approximate nearest neighbours by an inverted file of k-means lists.

    Parameters
    ----------
    metric : str, default="cosine"
    n_lists : int, default=None
        Number of k-means lists; :func:`default_n_lists` when None.
    n_probe : int, default=None
        Lists scanned per query; :func:`default_n_probe` when None. Larger is slower and
        more accurate; ``n_probe == n_lists`` is exact.
    random_state : int, RandomState instance or None, default=None
    n_jobs : int, default=None
        Threads for searching; None uses every core (see
        :func:`sksemantic.utils.effective_n_jobs`). Results do not depend on it.
    verbose : int, default=0
    """

    def __init__(
        self, metric="cosine", n_lists=None, n_probe=None, random_state=None, n_jobs=None, verbose=0
    ):
        super().__init__(metric)
        self.n_jobs = n_jobs
        self.n_lists = n_lists
        self.n_probe = n_probe
        self.random_state = random_state
        self.verbose = verbose

    def _build(self, X_prep, sqnorm):
        n = X_prep.shape[0]
        rng = check_random_state(self.random_state)
        n_lists = int(min(self.n_lists or default_n_lists(n), n))
        train_size = min(n, 20 * n_lists)
        train = X_prep if train_size >= n else X_prep[np.sort(rng.choice(n, train_size, replace=False))]
        centers, _, _, _ = kmeans(
            train, n_lists, max_iter=8, init="random", random_state=rng,
            verbose=self.verbose, label="IVF lists (k-means)",
        )
        labels, _ = nearest_centroid(X_prep, centers)
        perm = np.argsort(labels, kind="stable")
        self.centers_ = centers
        self.centers_sqnorm_ = np.einsum("ij,ij->i", centers, centers)
        self.X_ = X_prep[perm]
        self.sqnorm_ = sqnorm[perm]
        self.perm_ = perm
        self.offsets_ = np.searchsorted(labels[perm], np.arange(n_lists + 1)).astype(np.int64)
        self.n_lists_ = n_lists

    # -- probing ---------------------------------------------------------------------
    def _probe(self, Q_prep, n_probe):
        """The ``n_probe`` best lists for each query; column 0 holds the very best."""
        C, csq = self.centers_, self.centers_sqnorm_
        G = Q_prep @ C.T
        if self.metric != "inner_product":
            G *= 2
            G -= csq  # ranks as -|q - c|^2
        if n_probe < self.n_lists_:
            probes = np.argpartition(G, self.n_lists_ - n_probe, axis=1)[:, self.n_lists_ - n_probe :]
        else:
            probes = np.broadcast_to(np.arange(self.n_lists_), G.shape)
        best = np.take_along_axis(G, probes, axis=1).argmax(axis=1)
        probes = np.array(probes)
        first = probes[:, 0].copy()
        rows = np.arange(len(probes))
        probes[:, 0] = probes[rows, best]
        probes[rows, best] = first
        return probes

    def _resolved_n_probe(self):
        return int(min(self.n_probe or default_n_probe(self.n_lists_), self.n_lists_))

    def _group_by_list(self, lists):
        """(list, positions) for each list named in ``lists``, positions into ``lists``."""
        order = np.argsort(lists, kind="stable")
        bounds = np.searchsorted(lists[order], np.arange(self.n_lists_ + 1))
        for lst in np.flatnonzero(np.diff(bounds)):
            if self.offsets_[lst + 1] > self.offsets_[lst]:
                yield lst, order[bounds[lst] : bounds[lst + 1]]

    def _search_chunk(self, Qc, qsq, k, n_probe):
        """Top-k of one chunk of queries over the stored (list-ordered) points.

        Each query is first scored against its nearest list, whose k-th best score is
        then a threshold: in the other probed lists only the entries above it are kept
        (one vectorised comparison instead of a partial sort per list).
        """
        c, off, X, sq = len(Qc), self.offsets_, self.X_, self.sqnorm_
        probes = self._probe(Qc, n_probe)
        best_s = np.full((c, k), -np.inf, dtype=np.float32)
        best_i = np.full((c, k), -1, dtype=np.int64)
        for lst, qs in self._group_by_list(probes[:, 0]):
            lo, hi = off[lst], off[lst + 1]
            S = pairwise_scores(Qc[qs], X[lo:hi], self.metric, qsq[qs], sq[lo:hi])
            s_, i_ = topk_dense(S, k, offset=lo)
            best_s[qs, : s_.shape[1]] = s_
            best_i[qs, : s_.shape[1]] = i_
        thr = best_s[:, -1]
        rows, cand_s, cand_i = [], [], []
        if n_probe > 1:
            rest = probes[:, 1:].ravel()
            for lst, pos in self._group_by_list(rest):
                qs = pos // (n_probe - 1)
                lo, hi = off[lst], off[lst + 1]
                S = pairwise_scores(Qc[qs], X[lo:hi], self.metric, qsq[qs], sq[lo:hi])
                r, col = np.nonzero(S > thr[qs, None])
                rows.append(qs[r])
                cand_s.append(S[r, col])
                cand_i.append(col + lo)
        if rows:
            merge_candidates(
                best_s, best_i, np.concatenate(rows), np.concatenate(cand_s),
                np.concatenate(cand_i), unique=True,  # every point lies in one list
            )
        return best_s, best_i

    def _query_sorted(self, Q_prep, q_sqnorm, k):
        """Top-k over the stored (list-ordered) points; ids index ``self.X_``."""
        n_q = len(Q_prep)
        n_probe = self._resolved_n_probe()
        # Chunks small enough for cache-friendly candidate buffers (~32 MiB each).
        chunk = int(max(256, min(n_q, (32 * 2**20) // (8 * n_probe * k))))
        progress = Progress(-(-n_q // chunk), "IVF search", self.verbose)

        def work(a, b):
            out = self._search_chunk(Q_prep[a:b], q_sqnorm[a:b], k, n_probe)
            progress.update()
            return out

        parts = run_spans(work, n_q, chunk, self.n_jobs)
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def _fill_missing(self, Q_prep, q_sqnorm, scores, ids):
        """Rows that found fewer than k points (tiny lists) are answered exactly."""
        bad = np.flatnonzero((ids < 0).any(axis=1))
        if bad.size:
            k = ids.shape[1]
            S = pairwise_scores(Q_prep[bad], self.X_, self.metric, q_sqnorm[bad], self.sqnorm_)
            scores[bad], ids[bad] = topk_dense(S, k)
        return scores, ids

    def _query(self, Q_prep, q_sqnorm, k):
        scores, ids = self._query_sorted(Q_prep, q_sqnorm, k)
        scores, ids = self._fill_missing(Q_prep, q_sqnorm, scores, ids)
        return scores, self.perm_[ids]

    def _self_join(self, k):
        n = self.n_samples_
        # Query in list order: consecutive queries probe the same lists.
        scores, ids = self._query_sorted(self.X_, self.sqnorm_, k)
        scores, ids = self._fill_missing(self.X_, self.sqnorm_, scores, ids)
        # Offer every edge in reverse; self edges are already present and ignored.
        rows = ids.ravel().copy()
        merge_candidates(scores, ids, rows, scores.ravel().copy(), np.repeat(np.arange(n), k))
        out_s = np.empty_like(scores)
        out_i = np.empty_like(ids)
        out_s[self.perm_] = scores
        out_i[self.perm_] = self.perm_[ids]
        sq = np.empty_like(self.sqnorm_)
        sq[self.perm_] = self.sqnorm_
        return out_s, out_i, sq
