"""Compressed IVF: lists scanned through residual-quantisation codes, best re-scored.

Each indexed point is stored twice: as ``code_size`` bytes, the residual codes of its
offset from its list centre (:class:`~sksemantic.quantization.RQKMeansEncoder`, one
byte of 256 codewords per level), held in memory; and as its full vector, which with
``storage`` stays in a memory-mapped file. A query scores the points of its probed
lists from the codes alone (asymmetric distance: the query against every codeword once,
then one table look-up per code byte), keeps the best ``n_rescore`` and scores those
exactly from their full vectors, so that the distances it reports are exact.
"""

from numbers import Integral

import numpy as np
from sklearn.utils import check_random_state

from ..quantization import RQKMeansEncoder
from ..utils import take_rows
from ._base import EXACT_SELF_JOIN_SPEEDUP, BaseIndex, inherit_docstrings
from ._ivf import IVFIndex
from ._metric import gathered_scores, prepare
from ._topk import topk_dense

__all__ = ["IVFRQIndex"]


@inherit_docstrings
class IVFRQIndex(IVFIndex):
    """Approximate nearest neighbours by IVF lists of residual codes, re-scored exactly.

    A subclass of :class:`IVFIndex` rather than an option of it: it shares the lists,
    the probe, the storage and the recall knob (``n_probe``), and changes only how a
    list is scored (from codes) and that the best candidates are scored again exactly.

    Parameters
    ----------
    metric : {"cosine", "euclidean", "inner_product"}, default="cosine"
        Distance the neighbours are ranked by (codes approximate inner products, so
        ``"manhattan"`` is not supported).
    n_lists : int, default=None
        Number of k-means lists; :func:`default_n_lists` when None.
    n_probe : int, default=None
        Lists scanned per query; :func:`default_n_probe` when None.
    code_size : int, default=32
        Bytes of codes per point: residual levels of 256 codewords each. More bytes
        rank the candidates better, so fewer need re-scoring for the same recall, but
        each scanned point costs a look-up per byte. With ``storage``, 32 bytes make
        56 bytes per point in memory.
    n_rescore : int, default=None
        Candidates per query (the best by their codes) scored exactly from the full
        vectors; ``max(32 * k, 1024)`` when None. At least ``k`` are always
        re-scored. Too few caps the recall that any ``n_probe`` reaches.
    random_state : int, RandomState instance or None, default=None
        Seeds the list centres' and the codebooks' k-means.
    n_jobs : int, default=None
        Threads for searching; None uses every core. Results do not depend on it.
    verbose : int, default=0
        Progress messages while the index is built when positive.
    storage : str, path-like or None, default=None
        Directory for the full vectors, written to a file the index creates there and
        mapped read-only (see :class:`IVFIndex`); None keeps them in memory. With it,
        memory holds :meth:`resident_bytes_per_vector` bytes per point.

    Attributes
    ----------
    codes_ : ndarray of shape (n_samples, code_size), uint8
        The residual codes, list after list (the order of ``X_``).
    code_sqnorm_ : ndarray of shape (n_samples,), float32
        Squared norms of the coded points (list centre plus decoded residual), for
        ``"euclidean"`` scores from the codes.
    encoder_ : RQKMeansEncoder
        The residual quantiser of the offsets from the list centres.
    codewords_ : ndarray of shape (code_size * 256, n_features)
        Every level's codewords, level after level (the look-up tables' rows).

    Examples
    --------
    >>> import numpy as np
    >>> from sksemantic.neighbors import IVFRQIndex
    >>> X = np.random.default_rng(0).normal(size=(600, 8)).astype(np.float32)
    >>> index = IVFRQIndex(n_lists=6, n_probe=6, code_size=4, random_state=0).fit(X)
    >>> index.codes_.shape, index.codes_.dtype.name
    ((600, 4), 'uint8')
    >>> index.query(X[:2], 1)[1].tolist()
    [[0], [1]]
    """

    ALGORITHM = "ivf_rq"

    #: Cost of scoring one point from one code byte (a table look-up and an add, as
    #: numpy gathers) relative to one point of exact search's large BLAS products.
    #: Measured (``benchmarks/RESULTS_scale.md``), rounded up: at 32 bytes a point
    #: costs about ten points of exact search, so in memory exact search is often the
    #: cheaper one; the index pays off in memory, its full vectors staying on disk.
    BYTE_COST = 0.3

    #: Cost of one exactly re-scored candidate (its selection among the scanned
    #: points, and a gathered full vector, read from the file when it is not cached)
    #: relative to one point of exact search.
    RESCORE_COST = 120.0

    #: Rows that train the codebooks: 256 per codeword.
    _CODE_TRAIN = 65536

    #: Queries always take the grouped path (the per-query one reads full vectors).
    _FEW_QUERIES = 0

    @property
    def SCAN_COST(self):
        """Cost of scoring one point from its codes, relative to exact search's."""
        return self.BYTE_COST * int(self.code_size)

    def __init__(
        self, metric="cosine", n_lists=None, n_probe=None, code_size=32, n_rescore=None,
        random_state=None, n_jobs=None, verbose=0, storage=None,
    ):
        super().__init__(metric, n_lists=n_lists, n_probe=n_probe, random_state=random_state,
                         n_jobs=n_jobs, verbose=verbose, storage=storage)
        self.code_size = code_size
        self.n_rescore = n_rescore

    # -- building ----------------------------------------------------------------------
    def _fit_raw(self, X):
        self._check_codes()
        return super()._fit_raw(X)

    def _train(self, X):
        self._check_codes()  # train() alone, before a fit with the labels
        super()._train(X)

    def _check_codes(self):
        if self.metric == "manhattan":
            raise ValueError(
                "IVFRQIndex does not support metric='manhattan': its codes score inner "
                "products. Use 'cosine', 'euclidean' or 'inner_product'."
            )
        for name in ("code_size", "n_rescore"):
            value = getattr(self, name)
            if not (value is None and name == "n_rescore") and (
                isinstance(value, bool) or not isinstance(value, Integral) or value < 1
            ):
                raise ValueError(f"{name} must be a positive int, got {value!r}.")

    def _train_codes(self, X, rows, train, labels, rng):
        # The codebooks quantise offsets from the list centres. They are learnt on rows
        # the centres did not fit: a centre is the mean of a few dozen training rows, so
        # their offsets are smaller than every other row's, and codebooks learnt on
        # them quantise the other rows coarsely. The held-out rows are left out too.
        n = X.shape[0]
        pool = np.ones(n, dtype=bool)
        pool[rows] = False
        if self._holdout is not None:
            pool[self._holdout[self._holdout < n]] = False
        pool = np.flatnonzero(pool)
        if pool.size >= 4 * 256:
            if pool.size > self._CODE_TRAIN:
                pool = np.sort(rng.choice(pool, self._CODE_TRAIN, replace=False))
            raw = take_rows(X, pool)
            lists = self.assign(raw)
            block, _ = prepare(raw, self.metric, self.center_)
        else:  # small data: (part of) the training rows
            pick = np.arange(len(train))
            if pick.size > self._CODE_TRAIN:
                pick = np.sort(rng.choice(pick.size, self._CODE_TRAIN, replace=False))
            block, lists = train[pick], labels[pick]
        residual = block - self.centers_[lists]
        encoder = RQKMeansEncoder(
            n_levels=int(self.code_size), n_clusters=int(min(256, len(residual))), max_iter=20,
            n_init=1, refine_iter=1, max_samples=None, n_jobs=self.n_jobs,
            random_state=int(check_random_state(rng).randint(np.iinfo(np.int32).max)),
            verbose=max(0, int(self.verbose) - 1),
        )
        self.encoder_ = encoder.fit(residual)
        self.codewords_ = np.ascontiguousarray(
            np.concatenate(encoder.codebooks_), dtype=np.float32
        )

    _PER_POINT_EXTRAS = ("codes_", "code_sqnorm_")

    def _encode_rows(self, block, lists):
        codes = self.encoder_.transform(block - self.centers_[lists])
        coded = self.encoder_.inverse_transform(codes)
        coded += self.centers_[lists]
        return {"codes_": codes.astype(np.uint8),
                "code_sqnorm_": np.einsum("ij,ij->i", coded, coded)}

    # -- searching ---------------------------------------------------------------------
    def _resolved_n_rescore(self, k):
        n = self.n_rescore if self.n_rescore is not None else max(32 * k, 1024)
        return int(max(k, min(n, self.n_samples_)))

    def _list_scorer(self, Qc, qsq):
        """Scores of a list's points against queries from their codes: the query's
        product with the list centre plus, per level, its product with the point's
        codeword, read from a table of the queries' products with every codeword."""
        # Queries by codewords: a list's queries are gathered as whole rows (gathering
        # columns of the transposed table cost several times the scoring itself).
        lut = Qc @ self.codewords_.T  # (n_queries, code_size * 256)
        center_scores = self.centers_ @ Qc.T  # (n_lists, n_queries)
        codes, sq, off = self.codes_, self.code_sqnorm_, self.offsets_
        n_levels = codes.shape[1]
        level_start = (np.arange(n_levels) * (len(self.codewords_) // n_levels)).astype(np.intp)
        euclidean = self.metric == "euclidean"

        def score(lo, hi, qs):
            table = lut[qs]
            idx = codes[lo:hi].astype(np.intp)
            idx += level_start
            S = np.take(table, idx[:, 0], axis=1)  # queries by points
            for level in range(1, n_levels):
                S += np.take(table, idx[:, level], axis=1)
            lst = int(np.searchsorted(off, lo, side="right")) - 1  # the non-empty list at lo
            S += center_scores[lst, qs][:, None]
            if euclidean:  # -|q - x'|^2 for the coded point x'
                S *= 2
                S -= qsq[qs][:, None]
                S -= sq[lo:hi]
            return S.T

        return score

    def _query(self, Q_prep, q_sqnorm, k, knob=None):
        # The best n_rescore by their codes, then the best k of those scored exactly.
        _, pos = self._query_sorted(Q_prep, q_sqnorm, self._resolved_n_rescore(k), knob)
        found = pos >= 0
        S = gathered_scores(Q_prep, self.X_, np.where(found, pos, 0), self.metric, q_sqnorm,
                            self.sqnorm_)
        S[~found] = -np.inf
        scores, cols = topk_dense(S, k)
        pos = np.take_along_axis(pos, cols, axis=1)
        pos[scores == -np.inf] = -1
        scores, pos = self._fill_missing(Q_prep, q_sqnorm, scores, pos)
        return scores, self.perm_[pos]

    def _self_join(self, k, knob=None):
        # Queried in list order (consecutive queries probe the same lists), in slabs.
        n, perm = self.n_samples_, self.perm_
        scores = np.empty((n, k), dtype=np.float32)
        ids = np.empty((n, k), dtype=np.int64)
        step = 16384
        for a in range(0, n, step):
            s, i = self._query(np.asarray(self.X_[a : a + step]), self.sqnorm_[a : a + step],
                               k, knob)
            scores[perm[a : a + step]], ids[perm[a : a + step]] = s, i
        sq = np.empty_like(self.sqnorm_)
        sq[perm] = self.sqnorm_
        return scores, ids, sq

    # -- search effort -------------------------------------------------------------------
    def knob_values(self, k):
        # A geometric grid: each value is a full search of the calibration queries
        # (the codes' ranking has no one-pass shortcut like IVF's), up to the probes
        # whose scan alone costs about 1.5 times as much as exact search.
        top = int(min(self.n_lists_, max(1, np.ceil(1.5 * self.n_lists_ / self.SCAN_COST))))
        return np.unique(np.round(np.geomspace(1, top, 24)).astype(np.int64))

    def relative_cost(self, values, k, *, Q=None, self_rows=None, reverse=False):
        # IVF's scanning model (a table look-up per code byte in place of a product per
        # feature), plus the look-up table (a product per codeword) and the candidates
        # re-scored from their full vectors.
        cost = super().relative_cost(values, k, Q=Q, self_rows=self_rows)
        table = len(self.codewords_) / self.n_samples_
        cost = cost + table + self.RESCORE_COST * self._resolved_n_rescore(k) / self.n_samples_
        return EXACT_SELF_JOIN_SPEEDUP * cost if (self_rows is not None and reverse) else cost

    RECALL_CURVE_SEARCHES = True

    def recall_curve(self, k, exact_scores, exact_ids, values, *, Q=None, self_rows=None,
                     reverse=False):
        # Measured by searching at each value, in ascending order, until every query
        # has all its neighbours; larger values are taken to keep them.
        values = np.asarray(values, dtype=np.int64)
        order = np.argsort(values, kind="stable")
        out = np.empty((len(exact_ids), len(values)))
        done = None
        for c in order:
            if done is not None:
                out[:, c] = done
                continue
            out[:, c] = BaseIndex.recall_curve(self, k, exact_scores, exact_ids, values[c:c + 1],
                                               Q=Q, self_rows=self_rows)[:, 0]
            if out[:, c].min() >= 1.0:
                done = out[:, c]
        return out
