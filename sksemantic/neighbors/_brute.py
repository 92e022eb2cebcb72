"""Exact search by blocked matrix products with a running-threshold partial sort.

The cost of exact search is the all-pairs matrix product; what makes naive blocked
implementations slow is the partial sort of every block row (``argpartition`` over the
whole block). Here each row keeps its current k-th best score, and a block is reduced by
one vectorised comparison against it: only the few entries that beat it are merged.
The first block of each row is the only one that is partially sorted.

Self-joins use the symmetry of the score: only the blocks on and above the diagonal are
computed, each serving its rows and, transposed, its columns, which halves the work.
No array larger than one block (``block_size`` x ``block_size``) is ever allocated.

Where the CPU multiplies bfloat16 natively (AVX512-BF16, AMX) and torch is installed, a
batch of queries is first scored in bfloat16, two to three times as fast, and each
query's best ``max(3 k, k + 12)`` candidates are re-scored in float32. A worst-case
bound on the bfloat16 error then *certifies* each query: when even the best point left
out could not beat the k-th re-scored candidate, the answer is the exact one. The few
queries it cannot certify (near-ties at the k-th place, data whose norms differ
widely) are searched in float32. The answers are exact either way.
"""

import sys

import numpy as np

from ..utils import Progress, blas_threads, effective_n_jobs, parallel_map, run_spans
from ..utils._torch import bf16_matmul_native, torch_threads
from ._base import BaseIndex, inherit_docstrings
from ._metric import gathered_scores, pairwise_scores
from ._topk import merge_candidates, sort_rows, topk_dense

__all__ = ["BruteIndex", "exact_search_cost"]

#: Unit round-off of bfloat16 (8 significant bits).
_BF16_U = 2.0**-8
#: Batches of fewer query-point pairs than this are searched in float32 only: converting
#: the data would cost more than the bfloat16 products save.
REDUCED_MIN_PAIRS = 2**24
#: While torch is not imported yet, only batches of this many pairs take the pass:
#: importing it costs about a second (and 100-200 MB), which smaller batches do not
#: repay.
REDUCED_IMPORT_PAIRS = 2**29
#: Largest k the bfloat16 pass serves (beyond, gathering the candidates dominates).
_REDUCED_MAX_K = 256
#: Indexed points converted to bfloat16 at a time, and queries scored at a time.
_REDUCED_X_BLOCK = 2**16
_REDUCED_Q_CHUNK = 512
#: Queries the pass is first tried on; when more than ``_REDUCED_MAX_MISS`` of them
#: cannot be certified, the rest of the batch is searched in float32 directly.
_REDUCED_PROBE = 256
_REDUCED_MAX_MISS = 0.25
#: Score entries per product when the queries left uncertified are searched in float32.
_FEW_ROWS_ENTRIES = 2**23

#: Scores per block of a blocked search (query rows x points): the candidates a block
#: passes to the running top-k, and so the search's working set, grow with it.
_SPAN_ENTRIES = 2**20
#: Cost of exact search with the bfloat16 pass relative to float32 exact search
#: (``benchmarks/RESULTS_recall.md``): what approximate settings must beat.
REDUCED_EXACT_COST = 0.6


def _pass_suits(metric, vectors):
    """Whether the bfloat16 pass may score these vectors: a metric scored by matrix
    products, and vectors in memory (an index on disk keeps its bounded working set,
    which the pass's candidates and fall-backs would make depend on the data)."""
    return metric != "manhattan" and not isinstance(vectors, np.memmap)


def exact_search_cost(metric, vectors=None):
    """Cost of exact search of a query batch here, relative to float32 exact search.

    :data:`REDUCED_EXACT_COST` where the bfloat16 first pass runs (torch imported, a
    CPU that multiplies bfloat16 natively, a metric scored by matrix products, vectors
    in memory), else 1. Until torch is imported, batches of usual sizes are searched
    in float32 (see :data:`REDUCED_IMPORT_PAIRS`), and so costed.

    Parameters
    ----------
    metric : str
        The index's metric.
    vectors : ndarray or np.memmap, default=None
        The index's stored vectors; a memory map is always searched in float32.

    Returns
    -------
    cost : float
    """
    if (not _pass_suits(metric, vectors) or "torch" not in sys.modules
            or not bf16_matmul_native()):
        return 1.0
    return REDUCED_EXACT_COST


def _candidates(k):
    """Candidates per query the bfloat16 pass re-scores in float32."""
    return max(3 * k, k + 12)


def _bf16_top(Q, X, x_sqnorm, m, euclidean, progress=None):
    """Each query's ``m`` best points by bfloat16 scores: (scores, ids), float32/int64.

    Euclidean scores leave out the query's own squared norm (the same for every point).
    """
    import torch

    n_q, n = len(Q), len(X)
    Qb = torch.from_numpy(np.ascontiguousarray(Q, dtype=np.float32)).to(torch.bfloat16)
    # The block's bfloat16 copy and the products are written into buffers made once:
    # arrays this large, allocated afresh for every block, are mapped and faulted in
    # page by page each time, which costs as much as the products where memory is
    # given back at once (dask's workers).
    width = min(n, _REDUCED_X_BLOCK)
    rows_max = min(n_q, _REDUCED_Q_CHUNK)
    Xb_buf = torch.empty((width, X.shape[1]), dtype=torch.bfloat16)
    S_buf = torch.empty(rows_max * width, dtype=torch.bfloat16)
    F_buf = torch.empty(rows_max * width, dtype=torch.float32) if euclidean else None
    best_s = best_i = None
    for x0 in range(0, n, _REDUCED_X_BLOCK):
        x1 = min(n, x0 + _REDUCED_X_BLOCK)
        Xb = Xb_buf[: x1 - x0]
        Xb.copy_(torch.from_numpy(np.ascontiguousarray(X[x0:x1], dtype=np.float32)))
        xs = torch.from_numpy(np.ascontiguousarray(x_sqnorm[x0:x1])) if euclidean else None
        mm = min(m, x1 - x0)
        top_s = np.empty((n_q, mm), dtype=np.float32)
        top_i = np.empty((n_q, mm), dtype=np.int64)
        for q0 in range(0, n_q, _REDUCED_Q_CHUNK):
            q1 = min(n_q, q0 + _REDUCED_Q_CHUNK)
            shape = (q1 - q0, x1 - x0)
            S = torch.matmul(Qb[q0:q1], Xb.T, out=S_buf[: shape[0] * shape[1]].view(shape))
            if euclidean:
                S = F_buf[: shape[0] * shape[1]].view(shape).copy_(S).mul_(2).sub_(xs)
            v, j = torch.topk(S, mm, dim=1)
            top_s[q0:q1], top_i[q0:q1] = v.float().numpy(), j.numpy() + x0
        if best_s is not None:  # merged block by block: memory does not grow with n
            top_s = np.concatenate([best_s, top_s], axis=1)
            top_i = np.concatenate([best_i, top_i], axis=1)
            keep = np.argpartition(-top_s, m - 1, axis=1)[:, :m]
            top_s = np.take_along_axis(top_s, keep, axis=1)
            top_i = np.take_along_axis(top_i, keep, axis=1)
        best_s, best_i = top_s, top_i
        if progress is not None:
            progress.update()
    order = np.argsort(-best_s, axis=1, kind="stable")
    return np.take_along_axis(best_s, order, axis=1), np.take_along_axis(best_i, order, axis=1)


def _certified_top(Q, q_sqnorm, X, x_sqnorm, metric, k, progress=None):
    """Exact top-k through a bfloat16 first pass, where it can be certified.

    Returns (scores, ids, certified): rows whose ``certified`` is False hold no answer.
    Every score is a float32 score of the pair; a row is certified when the largest
    score any point outside its candidates could have (its bfloat16 score plus the
    worst-case error) is below the k-th best re-scored candidate.
    """
    n_q, d = Q.shape
    n = len(X)
    m = int(min(n, _candidates(k)))
    euclidean = metric == "euclidean"
    # Worst-case error of a bfloat16 score: both inputs rounded (2u + u^2) and the
    # float32 accumulation (d 2^-24, doubled), relative to |q| |x| (Cauchy-Schwarz);
    # then the output rounded to bfloat16 (u |score|). 1% spare.
    eps = 1.01 * (2 * _BF16_U + _BF16_U**2 + d * 2.0**-23)
    x_sq_max = float(x_sqnorm.max()) if n else 0.0
    delta = eps * np.sqrt(q_sqnorm) * np.sqrt(x_sq_max)
    if euclidean:  # 2 q.x - |x|^2 - |q|^2, the squared norms in float32
        delta = 2 * delta + 2.0**-20 * (q_sqnorm + x_sq_max)
    cand_s, cand = _bf16_top(Q, X, x_sqnorm, m, euclidean, progress)
    # The largest score a point outside the candidates can have: at most the m-th
    # candidate's bfloat16 score, which was rounded (for Euclidean, 2 q.x was).
    last = cand_s[:, -1]
    if euclidean:
        rounding = 2 * _BF16_U * 1.01 * np.sqrt(q_sqnorm) * np.sqrt(x_sq_max)
        last = last - q_sqnorm
    else:
        rounding = _BF16_U * 1.01 * np.abs(last)
    scores, ids = sort_rows(gathered_scores(Q, X, cand, metric), cand)
    certified = last + rounding + delta < scores[:, k - 1]
    return scores[:, :k], ids[:, :k], certified


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
            thr = _kth_lower_bound(S, self.k, transposed)
            if thr is not None:
                # First block of these rows: every entry at or above a bound on each
                # row's k-th best (a partial sort of the whole block, transposed first
                # when the rows are its columns, cost ten times more).
                r, c, vals = _above(S, np.nextafter(thr, np.float32(-np.inf)), transposed)
                merge_candidates(
                    self.scores, self.ids, r + rows.start, vals, c + col_offset, unique=True
                )
                self.filled[rows] = np.isfinite(self.scores[rows, -1])
                return
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


def _kth_lower_bound(S, k, transposed):
    """For each row of ``S`` (its columns when ``transposed``), a score at or below the
    row's k-th largest: the k-th largest of the maxima of groups of ``_GROUP`` entries
    (k groups hold an entry at least that large). None when there are fewer than k
    whole groups."""
    g = _GROUP
    if transposed:
        n_groups = S.shape[0] // g
        if n_groups < k:
            return None
        M = S[: n_groups * g].reshape(n_groups, g, S.shape[1]).max(axis=1)
        return np.partition(M, n_groups - k, axis=0)[n_groups - k]
    n_groups = S.shape[1] // g
    if n_groups < k:
        return None
    # Strided groups, as in _above: an elementwise max of g slices.
    M = S[:, : n_groups * g].reshape(S.shape[0], g, n_groups).max(axis=1)
    return np.partition(M, n_groups - k, axis=1)[:, n_groups - k]


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
    reduced_precision : bool, default=True
        Score large query batches first in bfloat16 where the CPU does so natively,
        then re-score and certify each query's candidates in float32 (see the module
        notes). The answers are exact either way; False always scores in float32.
    """

    def __init__(self, metric="cosine", block_size=None, n_jobs=None, verbose=0,
                 reduced_precision=True):
        super().__init__(metric)
        self.block_size = block_size
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.reduced_precision = reduced_precision

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

    def _reduced_pass_applies(self, n_q, k):
        """Whether a batch of ``n_q`` queries for ``k`` points takes the bfloat16 pass."""
        return (
            getattr(self, "reduced_precision", True)  # indexes saved before it existed
            and _pass_suits(self.metric, self.X_)
            and k <= _REDUCED_MAX_K
            and _candidates(k) < self.n_samples_
            and n_q * self.n_samples_ >= (
                REDUCED_MIN_PAIRS if "torch" in sys.modules else REDUCED_IMPORT_PAIRS)
            and bf16_matmul_native()  # imports torch: only for a batch that repays it
        )

    def _query(self, Q_prep, q_sqnorm, k):
        n_q = Q_prep.shape[0]
        if not self._reduced_pass_applies(n_q, k):
            return self._query_float32(Q_prep, q_sqnorm, k)
        scores = np.empty((n_q, k), dtype=np.float32)
        ids = np.empty((n_q, k), dtype=np.int64)
        certified = np.zeros(n_q, dtype=bool)
        n_blocks = -(-self.n_samples_ // _REDUCED_X_BLOCK)
        first = min(n_q, _REDUCED_PROBE)
        spans = [(0, first), (first, n_q)] if first < n_q else [(0, n_q)]
        progress = Progress(n_blocks * len(spans), "exact search (bfloat16 pass)",
                            self.verbose)
        with torch_threads(self.n_jobs):
            for a, b in spans:
                rows = slice(a, b)
                scores[rows], ids[rows], certified[rows] = _certified_top(
                    Q_prep[rows], q_sqnorm[rows], self.X_, self.sqnorm_, self.metric, k,
                    progress,
                )
                if b == first and (~certified[:first]).mean() > _REDUCED_MAX_MISS:
                    break  # a bound this loose saves nothing: float32 for the rest
        rest = np.flatnonzero(~certified)
        if rest.size * self.n_samples_ <= 4 * _FEW_ROWS_ENTRIES:
            # Few rows left: whole-row products beat the blocked search's bookkeeping.
            scores[rest], ids[rest] = self._scored_whole(Q_prep[rest], q_sqnorm[rest], k)
        elif rest.size:
            scores[rest], ids[rest] = self._query_float32(Q_prep[rest], q_sqnorm[rest], k)
        return scores, ids

    def _scored_whole(self, Q_prep, q_sqnorm, k):
        """Top-k of a few queries by whole-row products (``_FEW_ROWS_ENTRIES`` scores at
        a time) and partial sorts; padded with -inf / -1 when fewer points than k."""
        n_q = len(Q_prep)
        kk = min(k, self.n_samples_)
        scores = np.full((n_q, k), -np.inf, dtype=np.float32)
        ids = np.full((n_q, k), -1, dtype=np.int64)
        step = max(1, _FEW_ROWS_ENTRIES // max(1, self.n_samples_))
        for a in range(0, n_q, step):
            r = slice(a, a + step)
            S = pairwise_scores(Q_prep[r], self.X_, self.metric, q_sqnorm[r], self.sqnorm_)
            scores[r, :kk], ids[r, :kk] = topk_dense(S, k)
        return scores, ids

    def _query_float32(self, Q_prep, q_sqnorm, k):
        n_q, B = Q_prep.shape[0], self._block()
        if n_q <= self._FEW_QUERIES and n_q * self.n_samples_ <= 2**25:
            # A few queries (a served search): one matrix-vector-like product over all
            # points and one partial sort. Block bookkeeping and BLAS threads on such
            # thin products cost more than the product itself.
            with blas_threads(1):
                return self._scored_whole(Q_prep, q_sqnorm, k)
        n_threads = effective_n_jobs(self.n_jobs)
        # Query blocks split evenly over the threads, each scored against B points at a
        # time in blocks of at most _SPAN_ENTRIES scores.
        n_spans = -(-n_q // max(1, min(B, _SPAN_ENTRIES // B)))
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
