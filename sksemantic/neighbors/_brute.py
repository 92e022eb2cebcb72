"""Exact search by blocked matrix products with a running-threshold partial sort.

The cost of exact search is the all-pairs matrix product; what makes naive blocked
implementations slow is the partial sort of every block row (``argpartition`` over the
whole block). Here each row keeps its current k-th best score, and a block is reduced by
one vectorised comparison against it: only the few entries that beat it are merged.
The first block of each row is the only one that is partially sorted.

Self-joins use the symmetry of the score: only the blocks on and above the diagonal are
computed, each serving its rows and, transposed, its columns, which halves the work.
No array larger than one block (``block_size`` x ``block_size``) is ever allocated.
"""

import numpy as np

from ..utils import Progress, blas_threads, effective_n_jobs, parallel_map, run_spans
from ._base import BaseIndex, inherit_docstrings
from ._metric import pairwise_scores
from ._topk import merge_candidates, topk_dense

__all__ = ["BruteIndex"]


class _RunningTopK:
    """Per-row running top-k over a stream of score blocks."""

    def __init__(self, n_rows, k):
        self.scores = np.full((n_rows, k), -np.inf, dtype=np.float32)
        self.ids = np.full((n_rows, k), -1, dtype=np.int64)
        self.filled = np.zeros(n_rows, dtype=bool)
        self.k = k

    def push(self, rows, S, col_offset, transposed=False):
        """Offer a block of scores for the rows ``rows`` (a slice).

        ``S`` holds those rows' scores against the columns starting at ``col_offset``,
        or, with ``transposed=True``, is laid out the other way round (``S.T`` is the
        block); the transposed case reads the block in place, without a copy.
        """
        if not self.filled[rows.start]:
            # First block of these rows: a partial sort, which fills the state.
            block = np.ascontiguousarray(S.T) if transposed else S
            s, i = topk_dense(block, self.k, offset=col_offset)
            kk = s.shape[1]
            if kk == self.k:
                self.scores[rows], self.ids[rows] = s, i
                self.filled[rows] = True
                return
            r = np.repeat(np.arange(rows.start, rows.stop), kk)
            merge_candidates(self.scores, self.ids, r, s.ravel(), i.ravel())
            self.filled[rows] = np.isfinite(self.scores[rows, -1])
            return
        thr = self.scores[rows, -1]
        r, c, vals = _above(S, thr, transposed)
        if r.size:
            merge_candidates(
                self.scores, self.ids, r + rows.start, vals, c + col_offset, unique=True
            )


_GROUP = 64


def _above(S, thr, transposed):
    """Entries of ``S`` above their row's threshold, as (row, column, value).

    Rows are ``S``'s rows, or its columns when ``transposed``. Most entries fail, so
    groups of 64 entries are screened first by their maximum (a cheap vectorised
    reduction) and only the groups whose maximum passes are compared entry by entry.
    """
    g = _GROUP
    b, m = S.shape
    steps = np.arange(g)
    if transposed:
        if b % g:
            c, r = np.nonzero(S > thr[None, :])
            return r, c, S[c, r]
        gi, cj = np.nonzero(S.reshape(b // g, g, m).max(axis=1) > thr[None, :])
        rows_in_s = gi[:, None] * g + steps
        vals = S[rows_in_s, cj[:, None]]
        a, e = np.nonzero(vals > thr[cj][:, None])
        return cj[a], rows_in_s[a, e], vals[a, e]
    if m % g:
        r, c = np.nonzero(S > thr[:, None])
        return r, c, S[r, c]
    # Strided groups (columns j, j + m/g, j + 2m/g, ...): an elementwise max of g
    # slices, which vectorises far better than a reduction over 64 adjacent entries.
    w = m // g
    ri, gj = np.nonzero(S.reshape(b, g, w).max(axis=1) > thr[:, None])
    cols = gj[:, None] + steps * w
    vals = S[ri[:, None], cols]
    a, e = np.nonzero(vals > thr[ri][:, None])
    return ri[a], cols[a, e], vals[a, e]


@inherit_docstrings
class BruteIndex(BaseIndex):
    """Exact nearest neighbours by blocked BLAS products.

    Parameters
    ----------
    metric : str, default="cosine"
        See :mod:`sksemantic.neighbors._metric`.
    block_size : int, default=None
        Rows per block; chosen from the data size when None.
    n_jobs : int, default=None
        Threads for query batches, through joblib; an active joblib backend is
        honoured. Each scores and selects its own queries with one BLAS thread (the
        selection then runs in parallel too); None uses every core this process may
        use (see :func:`sksemantic.utils.effective_n_jobs`). Results never depend on it.
    verbose : int, default=0
        Print progress over blocks.
    """

    def __init__(self, metric="cosine", block_size=None, n_jobs=None, verbose=0):
        super().__init__(metric)
        self.block_size = block_size
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _build(self, X_prep, sqnorm):
        self.X_ = X_prep
        self.sqnorm_ = sqnorm

    def _add(self, X_prep, sqnorm):
        self.X_ = np.concatenate([self.X_, X_prep])
        self.sqnorm_ = np.concatenate([self.sqnorm_, sqnorm])

    def _block(self):
        if self.block_size:
            return int(self.block_size)
        # Square blocks of at most 4096 (64 MiB of float32 scores).
        return int(min(4096, max(self.n_samples_, 1)))

    #: Batches up to this size are scored in one product (see :meth:`_query`).
    _FEW_QUERIES = 8

    def _query(self, Q_prep, q_sqnorm, k):
        n_q, B = Q_prep.shape[0], self._block()
        if n_q <= self._FEW_QUERIES and n_q * self.n_samples_ <= 2**25:
            # A few queries (a served search): one matrix-vector-like product over all
            # points and one partial sort. Block bookkeeping and BLAS threads on such
            # thin products cost more than the product itself.
            with blas_threads(1):
                S = pairwise_scores(Q_prep, self.X_, self.metric, q_sqnorm, self.sqnorm_)
                s, i = topk_dense(S, k)
            if s.shape[1] < k:  # fewer points than k: pad as the blocked path does
                pad = k - s.shape[1]
                s = np.pad(s, ((0, 0), (0, pad)), constant_values=-np.inf)
                i = np.pad(i, ((0, 0), (0, pad)), constant_values=-1)
            return s, i
        n_threads = effective_n_jobs(self.n_jobs)
        # Query blocks split evenly over the threads, at most B rows each.
        n_spans = -(-n_q // B)
        if n_threads > 1 and n_q >= 2 * self._FEW_QUERIES:
            n_spans = -(-max(n_spans, n_threads) // n_threads) * n_threads
        step = -(-n_q // n_spans)
        progress = Progress(n_spans, "exact search", self.verbose)

        def span(q0, q1):
            top = _RunningTopK(q1 - q0, k)
            rows = slice(0, q1 - q0)
            for xs in range(0, self.n_samples_, B):
                rx = slice(xs, min(xs + B, self.n_samples_))
                S = pairwise_scores(
                    Q_prep[q0:q1], self.X_[rx], self.metric, q_sqnorm[q0:q1], self.sqnorm_[rx]
                )
                top.push(rows, S, xs)
            return top.scores, top.ids

        scores = np.empty((n_q, k), dtype=np.float32)
        ids = np.empty((n_q, k), dtype=np.int64)

        def store(q, part):
            scores[q[0] : q[1]], ids[q[0] : q[1]] = part
            progress.update()

        run_spans(span, n_q, step, self.n_jobs, on_result=store)
        return scores, ids

    def _self_join(self, k):
        n, B, X, sq = self.n_samples_, self._block(), self.X_, self.sqnorm_
        # For metrics: the k - 1 best other points, self prepended below.
        k_other = k - 1 if self.forces_self else k
        top = _RunningTopK(n, k_other)
        if k_other == 0:
            starts = []
        else:
            starts = list(range(0, n, B))
        progress = Progress(len(starts) * (len(starts) + 1) // 2, "exact self-join", self.verbose)
        for bi, i0 in enumerate(starts):
            ri = slice(i0, min(i0 + B, n))
            for j0 in starts[bi:]:
                rj = slice(j0, min(j0 + B, n))
                S = pairwise_scores(X[ri], X[rj], self.metric, sq[ri], sq[rj])
                if j0 == i0:
                    if self.forces_self:
                        # Self is prepended below; keep it out of the race.
                        np.fill_diagonal(S, -np.inf)
                    top.push(ri, S, j0)
                else:
                    # The two halves touch different rows of ``top``, updated in
                    # place: selected in parallel, in threads (shared memory).
                    parallel_map(top.push, [(rj, S, i0, True), (ri, S, j0)], self.n_jobs,
                                 shared=True)
                progress.update()
        if not self.forces_self:
            return top.scores, top.ids, sq
        self_col = self._self_score(sq)[:, None]
        scores = np.concatenate([self_col, top.scores], axis=1)
        ids = np.concatenate([np.arange(n)[:, None], top.ids], axis=1)
        return scores, ids, sq
