"""SemanticGraphTransformer: embeddings to sparse nearest-neighbour similarity graphs."""

import warnings
from functools import partial
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ..neighbors import (
    METRICS,
    BaseIndexedEstimator,
    drop_rows_self,
    fill_index_doc,
    scores_to_distances,
    scores_to_similarities,
    tie_aware_hits,
)
from ..utils import check_mapped, check_n_neighbors, row_scan

__all__ = ["SemanticGraphTransformer", "check_min_similarity", "neighbors_to_csr"]

#: Cut-offs are compared with this relative slack: scores are float32, so equal vectors
#: can come out at a cosine similarity of 0.9999999 and must still pass 1.0.
_ROUNDING = 2e-6


@fill_index_doc
class SemanticGraphTransformer(
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    BaseIndexedEstimator,
    auto_wrap_output_keys=None,  # the output is sparse: there is no pandas form of it
):
    """Turn embeddings into a sparse k-nearest-neighbour similarity graph.

    ``fit(X)`` indexes the embeddings; ``transform(Q)`` returns, for each query, its
    nearest indexed points as one row of a CSR matrix of shape
    ``(n_queries, n_samples_fit)``; ``fit_transform(X)`` is the graph of ``X`` over
    itself. The output follows :class:`sklearn.neighbors.KNeighborsTransformer`
    exactly, so it feeds any estimator that takes ``metric="precomputed"``:

    - each indexed point is its own first neighbour, stored explicitly (distance 0);
    - ``mode="distance"`` stores ``n_neighbors + 1`` entries per row (the point itself
      and its ``n_neighbors`` nearest others), ``mode="connectivity"`` stores
      ``n_neighbors`` ones (the point itself included);
    - distances are non-negative and every row is sorted by increasing distance.

    Parameters
    ----------
    n_neighbors : int, default=10
        Neighbours per point besides the point itself (semnet's ``top_k``).
    mode : {"distance", "connectivity", "similarity"}, default="distance"
        What the stored values are. ``"distance"``: the metric's distance (for
        ``metric="precomputed"`` consumers). ``"connectivity"``: ones.
        ``"similarity"``: similarity weights for graph algorithms, larger meaning
        closer (cosine similarity for ``"cosine"``, the inner product for
        ``"inner_product"``, ``1 / (1 + distance)`` otherwise); this is *not* a
        distance and must not be passed to ``metric="precomputed"`` estimators.
        Rows have the same entries as in ``"distance"`` mode.
    metric : {"cosine", "euclidean", "manhattan", "inner_product"}, default="cosine"
        How closeness is measured. The cosine distance is ``1 - cosine similarity``.
        For ``"inner_product"`` the distance is
        ``sqrt(M**2 + |q|**2 - 2 q.x)`` with ``M`` the largest indexed norm: the
        Euclidean distance after the standard augmentation that turns maximum inner
        product search into nearest-neighbour search, so it is non-negative and ranks
        exactly as the inner product does.
    max_distance : float, default=None
        Drop edges whose distance exceeds this value (the point itself is kept).
        Mutually exclusive with ``min_similarity``.
    min_similarity : float, default=None
        Drop edges whose similarity (as in ``mode="similarity"``) is below this value
        (the point itself is kept). For cosine, ``min_similarity=0.8`` keeps exactly
        the edges with ``max_distance=0.2``. See the worked example below.
    <index parameters>

    Attributes
    ----------
    index_ : BaseIndex
        The fitted neighbour index (see :mod:`sksemantic.neighbors`).
    algorithm_ : str
        The index built, with ``"auto"`` resolved.
    calibration_ : RecallCalibration
        How :meth:`transform` searches and the recall@k it expects for new queries:
        the setting chosen for ``target_recall``, the estimate and its sample size,
        measured on indexed points held out of the index while it was built (see
        :class:`sksemantic.neighbors.RecallCalibration`).
    self_join_calibration_ : RecallCalibration or None
        Set by :meth:`fit_transform`: the setting of the graph's own search and its
        recall, measured on the graph itself for a sample of points.
    batch_calibration_ : RecallCalibration or None
        The calibration made for the last large :meth:`transform` batch whose
        queries differed from the calibration queries, or exact search for a batch
        that calibrating could not speed up.
    n_samples_fit_ : int
        Number of indexed points.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    sklearn.neighbors.KNeighborsTransformer : Exact graphs with the same conventions.
    SemanticDeduplicator : Groups near-duplicates by components of the thresholded graph.
    sksemantic.metrics.graph_recall : Recall of a graph against exact neighbours.

    Notes
    -----
    Beyond 20,000 points ``algorithm="auto"`` searches approximately; the recall it
    reaches is measured, kept at ``target_recall`` and reported in ``calibration_``
    and ``self_join_calibration_`` (``verbose=1`` prints them).

    ``transform`` works query block by query block and never holds an
    ``n_queries x n_samples_fit`` dense array. Zero vectors under ``"cosine"`` have
    similarity 0 (distance 1) to every other point. Exact duplicates are at distance 0
    from each other; in ``fit_transform`` each point is still listed first in its own
    row. Among points at bit-for-bit equal distance the lower index comes first.

    Examples
    --------
    >>> import numpy as np
    >>> from sksemantic.graph import SemanticGraphTransformer
    >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> graph = SemanticGraphTransformer(n_neighbors=1).fit_transform(X)
    >>> graph.shape
    (4, 4)
    >>> graph[0].indices.tolist()  # itself, then its nearest other point
    [0, 1]

    A cut-off on similarity: points 0 and 1 have cosine similarity 0.994, points 0 and
    3 have 0.110. With ``min_similarity=0.5`` (equivalently ``max_distance=0.5``) only
    the close pair is linked:

    >>> sim = SemanticGraphTransformer(
    ...     n_neighbors=3, mode="similarity", min_similarity=0.5
    ... ).fit_transform(X)
    >>> sim[0].indices.tolist(), sim[0].data.round(3).tolist()
    ([0, 1], [1.0, 0.994])
    """

    _parameter_constraints: dict = {
        **BaseIndexedEstimator._parameter_constraints,
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "mode": [StrOptions({"distance", "connectivity", "similarity"})],
        "metric": [StrOptions(set(METRICS))],
        "max_distance": [Interval(Real, 0, None, closed="left"), None],
        "min_similarity": [Real, None],
    }

    def __init__(
        self,
        *,
        n_neighbors=10,
        mode="distance",
        metric="cosine",
        max_distance=None,
        min_similarity=None,
        algorithm="auto",
        target_recall=0.95,
        n_lists=None,
        n_probe=None,
        n_trees=None,
        search_k=None,
        n_links=None,
        ef_search=None,
        storage=None,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        super().__init__(
            algorithm=algorithm, target_recall=target_recall, n_lists=n_lists,
            n_probe=n_probe, n_trees=n_trees, search_k=search_k, n_links=n_links,
            ef_search=ef_search, storage=storage, n_jobs=n_jobs, random_state=random_state,
            verbose=verbose,
        )
        self.n_neighbors = n_neighbors
        self.mode = mode
        self.metric = metric
        self.max_distance = max_distance
        self.min_similarity = min_similarity

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Index the embeddings ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings, at least 2 rows; dense, finite, numeric.
        y : None
            Ignored.

        Returns
        -------
        self : SemanticGraphTransformer
            The fitted transformer.
        """
        self._fit(X)
        self.__dict__.pop("_fit_exact", None)
        return self

    def _fit(self, X):
        if self.max_distance is not None and self.min_similarity is not None:
            raise ValueError(
                "Give at most one of max_distance and min_similarity: they are two ways "
                "of stating the same cut-off."
            )
        check_min_similarity(self.min_similarity, self.metric)
        X = check_mapped(partial(validate_data, self), X, dtype=[np.float64, np.float32],
                         ensure_min_samples=2)
        n = X.shape[0]
        check_n_neighbors(self.n_neighbors, n)
        if self.metric == "cosine":
            n_zero = sum(row_scan(lambda b: int(np.count_nonzero(~np.any(b, axis=1))), X))
            if n_zero:
                warnings.warn(
                    f"X contains {n_zero} all-zero row(s); under metric='cosine' they have "
                    "similarity 0 (distance 1) to every other point.",
                    UserWarning,
                    stacklevel=3,
                )
        self._fit_exact = self._fit_index(X, self._k())
        self.self_join_calibration_ = None
        self.n_samples_fit_ = n
        self._n_features_out = n
        return X

    def calibrate(self, X):
        """Calibrate :meth:`transform`'s search on representative queries ``X``.

        The queries are searched exactly and the index's search effort is set to the
        cheapest that reaches ``target_recall`` on them (see ``calibration_``).

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Queries like those :meth:`transform` will see (a few hundred suffice).

        Returns
        -------
        self : SemanticGraphTransformer
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return self._calibrate_queries(X, self._k())

    def _k(self):
        return self.n_neighbors if self.mode == "connectivity" else self.n_neighbors + 1

    def transform(self, X):
        """Graph of each row of ``X`` to its nearest indexed points.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Query embeddings.

        Returns
        -------
        graph : scipy.sparse.csr_matrix of shape (n_queries, n_samples_fit_)
            Rows sorted by increasing distance; values as set by ``mode``.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        check_n_neighbors(self.n_neighbors, self.n_samples_fit_)
        scores, ids, q_sqnorm = self._search_index(X, self._k())
        return self._to_csr(scores, ids, q_sqnorm, X.dtype)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None):
        """Fit to ``X`` and return the graph of ``X`` over itself.

        Equal to ``fit(X).transform(X)``, computed faster: exact search uses the
        symmetry of the distance and computes each pair once.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings.
        y : None
            Ignored.

        Returns
        -------
        graph : scipy.sparse.csr_matrix of shape (n_samples, n_samples)
        """
        X = self._fit(X)
        scores, ids, q_sqnorm = self._self_join()
        return self._to_csr(scores, ids, q_sqnorm, X.dtype)

    def _self_join(self):
        """The graph's own search under the recall contract.

        The setting comes from a calibration of the self-join itself (a point's
        neighbours are also found from their side), and the recall reached is then
        measured on the graph for the calibration points; if its lower bound misses
        ``target_recall``, the join runs again with the setting that meets the target
        from the points' own searches alone, or exactly.
        """
        index, k = self.index_, self._k()
        rows = self._calibration_rows
        k_other = k - 1 if index.forces_self else k
        if index.KNOB is None or rows is None or k_other < 1 or len(rows) < 2:
            self.__dict__.pop("_fit_exact", None)
            return index.self_join(k)
        exact = self.__dict__.pop("_fit_exact", None)
        if exact is None:
            exact = index.exact_neighbors(rows, k_other)
        exact = (exact[0][:, :k_other], exact[1][:, :k_other])
        rows, exact = self._with_training_rows(rows, exact, k_other)
        tries = [("self-join", True)]
        if self.target_recall is not None and self._explicit_knob() is None:
            tries.append(("self-join", False))
        for source, reverse in tries:
            cal = self._calibrate(k_other, self_rows=rows, reverse=reverse, source=source,
                                  exact=exact)
            if cal.exact:
                out = index.exact_self_join(k)
            else:
                out = index.self_join(k, knob=cal.value)
            measure_self_join(cal, out[0], out[1], rows, exact, k_other)
            self._log(f"graph: {cal.describe()}")
            if cal.exact or cal.target is None or cal.recall_low >= cal.target:
                break
        self.self_join_calibration_ = cal
        return out

    def _with_training_rows(self, rows, exact, k):
        """The calibration rows, with the index's training rows in their share of the
        graph's rows added (and their exact answers).

        The calibration rows were held out of the index's training, as new queries
        are; but a graph's rows include the training rows, whose recall can differ
        either way (k-means lists are means of them: on wide, noisy data the training
        rows found fewer of their neighbours).
        """
        extra = training_share(rows, self.index_.train_rows, self.n_samples_fit_,
                               self.random_state)
        if extra.size == 0:
            return rows, exact
        s, i = self.index_.exact_neighbors(extra, k)
        return (np.concatenate([rows, extra]),
                (np.concatenate([exact[0], s[:, :k]]), np.concatenate([exact[1], i[:, :k]])))

    def _to_csr(self, scores, ids, q_sqnorm, dtype):
        return neighbors_to_csr(
            scores, ids, q_sqnorm, metric=self.index_.metric,
            max_sqnorm=self.index_.max_sqnorm_, n_samples_fit=self.n_samples_fit_,
            mode=self.mode, max_distance=self.max_distance,
            min_similarity=self.min_similarity, dtype=dtype,
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.sparse = False
        return tags


def training_share(rows, train, n_samples, random_state):
    """Training rows to add to the calibration ``rows`` so that they stand for a graph's
    rows: as many as the training rows' share of the ``n_samples`` rows (the rows
    held out for calibration are not among them), drawn with ``random_state``.

    Parameters
    ----------
    rows : ndarray of int
        The calibration rows (held out of the training).
    train : ndarray of int or None
        The rows the index trained on; None for all of them.
    n_samples : int
        Rows of the graph.
    random_state : int, RandomState instance or None
        Seeds the draw.

    Returns
    -------
    extra : ndarray of int64
        Sorted; empty when the index trained on every row or on none.

    Examples
    --------
    >>> import numpy as np
    >>> from sksemantic.graph import training_share
    >>> training_share(np.arange(100), np.arange(100, 300), 1000, random_state=0).size
    25
    """
    if train is None or len(train) == 0 or len(train) >= n_samples:
        return np.array([], dtype=np.int64)
    n_extra = min(len(train), round(len(rows) * len(train) / (n_samples - len(train))))
    if n_extra == 0:
        return np.array([], dtype=np.int64)
    rng = check_random_state(random_state)
    return np.sort(rng.choice(train, n_extra, replace=False)).astype(np.int64)


def measure_self_join(cal, scores, ids, rows, exact, k):
    """Set ``cal``'s recall to what a self-join's answers reached on the sample ``rows``.

    Parameters
    ----------
    cal : RecallCalibration
        The join's calibration; its ``recall`` and ``recall_low`` are replaced.
    scores, ids : ndarray of shape (n_samples, >= k + 1)
        The join's answers (fit order), each row's own point among them.
    rows : ndarray of int
        The sample's rows.
    exact : tuple of ndarray
        Their exact ``(scores, ids)`` among the other points, ``k`` per row.
    k : int
        Neighbours other than the point itself.

    Returns
    -------
    cal : RecallCalibration

    Examples
    --------
    >>> import numpy as np
    >>> from sksemantic.graph import measure_self_join
    >>> from sksemantic.neighbors import RecallCalibration
    >>> cal = RecallCalibration.exact_search(0, 1, 0.9, "self-join")
    >>> ids = np.array([[0, 1], [1, 0], [2, 0]])  # row 2's neighbour should be 1
    >>> scores = np.array([[1.0, 0.9], [1.0, 0.9], [1.0, 0.5]], dtype=np.float32)
    >>> exact = (np.array([[0.9], [0.9], [0.8]], np.float32), np.array([[1], [0], [1]]))
    >>> round(measure_self_join(cal, scores, ids, np.arange(3), exact, 1).recall, 3)
    0.667
    """
    s, i = drop_rows_self(scores[rows], ids[rows], rows)
    return cal.measure(tie_aware_hits(s[:, :k], i[:, :k], exact[0][:, -1]) / k)


def check_min_similarity(min_similarity, metric, name="min_similarity"):
    """Check a similarity threshold against the range of the metric's similarities.

    A threshold outside that range (cosine similarities lie in [-1, 1], euclidean and
    manhattan ones in (0, 1]) would keep every edge or none, silently; inner_product
    similarities are unbounded, so any finite value passes.

    Parameters
    ----------
    min_similarity : float or None
        The threshold; None (no threshold) always passes.
    metric : str
        The metric the similarities come from.
    name : str, default="min_similarity"
        The parameter named in the error message.

    Raises
    ------
    ValueError
        If the threshold is not finite or lies outside the metric's range.

    Examples
    --------
    >>> from sksemantic.graph import check_min_similarity
    >>> check_min_similarity(0.8, "cosine")
    >>> check_min_similarity(2.0, "cosine")
    Traceback (most recent call last):
    ...
    ValueError: min_similarity=2.0 is outside [-1, 1], the range of similarities under metric='cosine'.
    """
    if min_similarity is None:
        return
    if not np.isfinite(min_similarity):
        raise ValueError(f"{name} must be a finite number, got {min_similarity}.")
    bounds = {"cosine": (-1.0, 1.0), "euclidean": (0.0, 1.0), "manhattan": (0.0, 1.0)}
    if metric in bounds:
        lo, hi = bounds[metric]
        if not lo <= min_similarity <= hi:
            raise ValueError(
                f"{name}={min_similarity} is outside [{lo:g}, {hi:g}], the range of "
                f"similarities under metric={metric!r}."
            )


def neighbors_to_csr(scores, ids, q_sqnorm, *, metric, max_sqnorm, n_samples_fit, mode,
                     max_distance=None, min_similarity=None, dtype=np.float64):
    """The graph rows of index answers, in :class:`SemanticGraphTransformer`'s format.

    One place for the output conventions (values by ``mode``, cut-offs, the point
    itself kept, index dtype), so that graphs computed elsewhere (shard by shard in
    :mod:`sksemantic.dask`) are the same matrices.

    Parameters
    ----------
    scores, ids : ndarray of shape (n_queries, k)
        Index answers sorted by score, as :meth:`~sksemantic.neighbors.BaseIndex.query`
        returns them; for self rows the point itself first.
    q_sqnorm : ndarray of shape (n_queries,)
        The prepared queries' squared norms returned with them.
    metric : str
        The index's metric.
    max_sqnorm : float
        The largest squared norm among the indexed points (``inner_product`` distances).
    n_samples_fit : int
        Number of indexed points: the number of columns.
    mode, max_distance, min_similarity
        As for :class:`SemanticGraphTransformer`.
    dtype : dtype, default=np.float64
        Dtype of the stored values.

    Returns
    -------
    graph : scipy.sparse.csr_matrix of shape (n_queries, n_samples_fit)
        Row ``r`` holds the kept answers of query ``r``, valued by ``mode``.

    Examples
    --------
    >>> import numpy as np
    >>> from sksemantic.graph import neighbors_to_csr
    >>> from sksemantic.neighbors import BruteIndex
    >>> X = np.array([[0.0], [1.0], [3.0]])
    >>> index = BruteIndex(metric="euclidean").fit(X)
    >>> scores, ids, q_sqnorm = index.query(X, 2)
    >>> graph = neighbors_to_csr(
    ...     scores, ids, q_sqnorm, metric="euclidean", max_sqnorm=index.max_sqnorm_,
    ...     n_samples_fit=3, mode="distance",
    ... )
    >>> graph.toarray()
    array([[0., 1., 0.],
           [1., 0., 0.],
           [0., 2., 0.]])
    """
    n_q, k = ids.shape
    dist = scores_to_distances(scores, metric, q_sqnorm, max_sqnorm)
    keep = np.ones(ids.shape, dtype=bool)
    if max_distance is not None:
        keep &= dist <= max_distance + _ROUNDING * max(1.0, max_distance)
    if min_similarity is not None:
        tol = _ROUNDING * max(1.0, abs(min_similarity))
        keep &= scores_to_similarities(scores, metric) >= min_similarity - tol
    if mode != "connectivity":
        # The point itself always stays (explicit diagonal), when it is indexed.
        keep[:, 0] |= dist[:, 0] == 0
    if mode == "distance":
        values = dist
    elif mode == "similarity":
        values = scores_to_similarities(scores, metric)
    else:
        values = np.ones(ids.shape, dtype=np.float32)
    indptr = np.concatenate([[0], np.cumsum(keep.sum(axis=1))])
    index_dtype = np.int32 if max(n_samples_fit, ids.size) < 2**31 else np.int64
    return sp.csr_matrix(
        (
            values[keep].astype(dtype, copy=False),
            ids[keep].astype(index_dtype, copy=False),
            indptr.astype(index_dtype, copy=False),
        ),
        shape=(n_q, n_samples_fit),
    )
