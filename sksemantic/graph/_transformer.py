"""SemanticGraphTransformer: embeddings to sparse nearest-neighbour similarity graphs."""

import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ..base import VersionedPickleMixin
from ..neighbors import (
    INDEX_PARAMETER_CONSTRAINTS,
    METRICS,
    index_seed,
    make_index,
    resolve_algorithm,
)
from ..utils import check_n_neighbors

__all__ = ["SemanticGraphTransformer"]


class SemanticGraphTransformer(
    VersionedPickleMixin,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    BaseEstimator,
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
    algorithm : {"auto", "brute", "ivf", "annoy", "hnsw"}, default="auto"
        ``"brute"``: exact search by blocked matrix products. ``"ivf"``: approximate,
        k-means inverted lists scanned by matrix products. ``"annoy"``: approximate,
        annoy's random-projection forest. ``"hnsw"``: approximate, hnswlib's navigable
        small-world graph (the ``hnsw`` extra). ``"auto"``: ``"brute"`` up to 20,000 indexed
        points and ``"ivf"`` beyond (``"annoy"`` for ``"manhattan"`` beyond).
    n_lists : int, default=None
        IVF lists; ``round(4 * sqrt(n_samples))`` when None.
    n_probe : int, default=None
        IVF lists scanned per query (more is slower and more accurate);
        ``round(sqrt(n_lists)) + 2`` when None.
    n_trees : int, default=None
        Annoy trees; ``max(10, n_features // 8)`` when None.
    search_k : int, default=None
        Annoy nodes inspected per query; annoy's default when None.
    n_links : int, default=None
        HNSW links per node (hnswlib's ``M``); 16 when None.
    ef_search : int, default=None
        HNSW candidates kept per query walk (more is slower and more accurate);
        ``max(32, 2 * k)`` for ``k`` results when None (see
        :func:`sksemantic.neighbors.default_ef_search`).
    n_jobs : int, default=None
        Threads for the search loops. None and -1 use every core, as the matrix
        products already do; results never depend on it, except for annoy and HNSW
        builds with more than one thread (they run on one unless ``n_jobs`` is given).
    random_state : int, RandomState instance or None, default=None
        Seeds the IVF k-means, the annoy forest and the HNSW graph. Exact search does
        not use it.
    verbose : int, default=0
        Print progress of long searches to stderr.

    Attributes
    ----------
    index_ : BaseIndex
        The fitted neighbour index (see :mod:`sksemantic.neighbors`).
    algorithm_ : str
        The algorithm used, with ``"auto"`` resolved.
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
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "mode": [StrOptions({"distance", "connectivity", "similarity"})],
        "metric": [StrOptions(set(METRICS))],
        "max_distance": [Interval(Real, 0, None, closed="left"), None],
        "min_similarity": [Real, None],
        **INDEX_PARAMETER_CONSTRAINTS,
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
        n_lists=None,
        n_probe=None,
        n_trees=None,
        search_k=None,
        n_links=None,
        ef_search=None,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.n_neighbors = n_neighbors
        self.mode = mode
        self.metric = metric
        self.max_distance = max_distance
        self.min_similarity = min_similarity
        self.algorithm = algorithm
        self.n_lists = n_lists
        self.n_probe = n_probe
        self.n_trees = n_trees
        self.search_k = search_k
        self.n_links = n_links
        self.ef_search = ef_search
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

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
        return self

    def _fit(self, X):
        if self.max_distance is not None and self.min_similarity is not None:
            raise ValueError(
                "Give at most one of max_distance and min_similarity: they are two ways "
                "of stating the same cut-off."
            )
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        n = X.shape[0]
        check_n_neighbors(self.n_neighbors, n)
        if self.metric == "cosine":
            n_zero = int(np.count_nonzero(~np.any(X, axis=1)))
            if n_zero:
                warnings.warn(
                    f"X contains {n_zero} all-zero row(s); under metric='cosine' they have "
                    "similarity 0 (distance 1) to every other point.",
                    UserWarning,
                    stacklevel=3,
                )
        seed = index_seed(self.random_state)
        self.algorithm_ = resolve_algorithm(self.algorithm, n, self.metric)
        self.index_ = make_index(
            self.algorithm_,
            self.metric,
            n,
            n_lists=self.n_lists,
            n_probe=self.n_probe,
            n_trees=self.n_trees,
            search_k=self.search_k,
            n_links=self.n_links,
            ef_search=self.ef_search,
            random_state=seed,
            n_jobs=self.n_jobs,
            verbose=self.verbose,
        ).fit(X)
        self.n_samples_fit_ = n
        self._n_features_out = n
        return X

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
        scores, ids, q_sqnorm = self.index_.query(X, self._k())
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
        scores, ids, q_sqnorm = self.index_.self_join(self._k())
        return self._to_csr(scores, ids, q_sqnorm, X.dtype)

    def _to_csr(self, scores, ids, q_sqnorm, dtype):
        n_q, k = ids.shape
        dist = self.index_.distances(scores, q_sqnorm)
        keep = np.ones(ids.shape, dtype=bool)
        if self.max_distance is not None:
            keep &= dist <= self.max_distance
        if self.min_similarity is not None:
            keep &= self.index_.similarities(scores) >= self.min_similarity
        if self.mode != "connectivity":
            # The point itself always stays (explicit diagonal), when it is indexed.
            keep[:, 0] |= dist[:, 0] == 0
        if self.mode == "distance":
            values = dist
        elif self.mode == "similarity":
            values = self.index_.similarities(scores)
        else:
            values = np.ones(ids.shape, dtype=np.float32)
        indptr = np.concatenate([[0], np.cumsum(keep.sum(axis=1))])
        index_dtype = np.int32 if max(self.n_samples_fit_, ids.size) < 2**31 else np.int64
        return sp.csr_matrix(
            (
                values[keep].astype(dtype, copy=False),
                ids[keep].astype(index_dtype, copy=False),
                indptr.astype(index_dtype, copy=False),
            ),
            shape=(n_q, self.n_samples_fit_),
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.sparse = False
        return tags
