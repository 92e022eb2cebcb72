"""SemanticDeduplicator: near-duplicate groups as connected components of a thresholded graph."""

from numbers import Integral, Real

import numpy as np
from scipy.sparse.csgraph import connected_components
from sklearn.base import ClusterMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import validate_data

from ..neighbors import METRICS, BaseIndexedEstimator, fill_index_doc
from ..utils import check_n_neighbors
from ._transformer import SemanticGraphTransformer, check_min_similarity

__all__ = ["SemanticDeduplicator"]


@fill_index_doc
class SemanticDeduplicator(ClusterMixin, BaseIndexedEstimator):
    """Group near-duplicate embeddings and pick one representative per group.

    Two items are linked when one is among the other's ``n_neighbors`` nearest
    neighbours and their similarity is at least ``min_similarity`` (or their distance
    at most ``max_distance``); groups are the connected components of these links
    (:func:`scipy.sparse.csgraph.connected_components`), so duplicates chain: if A
    duplicates B and B duplicates C, all three form one group. Items with no link are
    groups of their own.

    Parameters
    ----------
    min_similarity : float, default=0.9
        Link threshold on the similarity (cosine similarity for ``"cosine"``; see
        :class:`SemanticGraphTransformer` for the other metrics). Ignored when
        ``max_distance`` is given.
    max_distance : float, default=None
        Link threshold on the distance instead of the similarity.
    n_neighbors : int, default=10
        Candidate links searched per item; at most ``n_samples - 1`` (the same rule
        as :class:`SemanticGraphTransformer`). A group of exact duplicates needs only
        ``n_neighbors >= 1`` to be connected (chains suffice); larger values catch
        more near-duplicates of crowded items.
    metric : {"cosine", "euclidean", "manhattan", "inner_product"}, default="cosine"
        How closeness is measured, as in :class:`SemanticGraphTransformer`.
    <index parameters>

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Group of each item, numbered ``0 .. n_groups_ - 1`` in order of first
        appearance.
    n_groups_ : int
        Number of groups (distinct items after deduplication).
    representatives_ : ndarray of shape (n_groups_,)
        For each group, the index of its representative: the member with the most
        links inside the group (the lowest index among ties).
    graph_ : scipy.sparse.csr_matrix of shape (n_samples, n_samples)
        The thresholded similarity graph the groups come from.
    calibration_ : RecallCalibration or None
        For approximate search: the setting of the graph's search and the recall of
        its candidate links, measured on a sample of items (None for exact search).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    SemanticGraphTransformer : The graph the groups are read from.

    Examples
    --------
    >>> import numpy as np
    >>> from sksemantic.graph import SemanticDeduplicator
    >>> X = np.array([[1.0, 0.0], [0.99, 0.01], [0.0, 1.0], [0.7, 0.7]])
    >>> dedup = SemanticDeduplicator(min_similarity=0.95, n_neighbors=2).fit(X)
    >>> dedup.labels_.tolist()
    [0, 0, 1, 2]
    >>> dedup.representatives_.tolist()
    [0, 2, 3]
    """

    _parameter_constraints: dict = {
        **BaseIndexedEstimator._parameter_constraints,
        "min_similarity": [Real],
        "max_distance": [Interval(Real, 0, None, closed="left"), None],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "metric": [StrOptions(set(METRICS))],
    }

    def __init__(
        self,
        *,
        min_similarity=0.9,
        max_distance=None,
        n_neighbors=10,
        metric="cosine",
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
        self.min_similarity = min_similarity
        self.max_distance = max_distance
        self.n_neighbors = n_neighbors
        self.metric = metric

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Find the near-duplicate groups of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings, at least 2 rows.
        y : None
            Ignored.

        Returns
        -------
        self : SemanticDeduplicator
        """
        if self.max_distance is None:
            check_min_similarity(self.min_similarity, self.metric)
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        check_n_neighbors(self.n_neighbors, X.shape[0])
        graph_maker = SemanticGraphTransformer(
            n_neighbors=self.n_neighbors,
            mode="similarity",
            metric=self.metric,
            min_similarity=None if self.max_distance is not None else self.min_similarity,
            max_distance=self.max_distance,
            **self._index_params(),
        )
        graph = graph_maker.fit_transform(X)
        self.calibration_ = graph_maker.self_join_calibration_
        n_groups, raw = connected_components(graph, directed=True, connection="weak")
        # Number groups by first appearance, so labels do not depend on scipy's order.
        _, first = np.unique(raw, return_index=True)
        rank = np.empty(n_groups, dtype=np.int64)
        rank[np.argsort(first, kind="stable")] = np.arange(n_groups)
        labels = rank[raw]
        # Links inside the group, per item (both directions; self excluded).
        coo = graph.tocoo()
        off = coo.row != coo.col
        degree = np.bincount(coo.row[off], minlength=len(labels)) + np.bincount(
            coo.col[off], minlength=len(labels)
        )
        order = np.lexsort((np.arange(len(labels)), -degree, labels))
        starts = np.searchsorted(labels[order], np.arange(n_groups))
        self.labels_ = labels
        self.n_groups_ = int(n_groups)
        self.representatives_ = order[starts]
        self.graph_ = graph
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags
