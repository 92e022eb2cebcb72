"""Quality of neighbour graphs: recall against exact neighbours."""

from numbers import Integral

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from sklearn.utils.validation import check_array

__all__ = ["graph_recall"]


@validate_params(
    {
        "graph": ["sparse matrix"],
        "X": ["array-like"],
        "n_neighbors": [Interval(Integral, 1, None, closed="left"), None],
        "metric": [StrOptions({"cosine", "euclidean", "manhattan", "inner_product"})],
        "n_samples": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def graph_recall(graph, X, *, n_neighbors=None, metric="cosine", n_samples=1000, random_state=0):
    """Recall@k of a neighbour graph of ``X`` against exact nearest neighbours.

    For each sampled row ``i`` the graph's neighbours ``G_i`` (the row's stored columns
    other than ``i`` itself, the ``k`` nearest by stored distance) are compared with the
    exact ``k`` nearest other points ``E_i``::

        recall@k = mean_i |G_i ∩ E_i| / k

    Parameters
    ----------
    graph : sparse matrix of shape (n_samples_X, n_samples_X)
        A graph of ``X`` over itself in distance form (rows with the smallest values
        nearest), such as ``SemanticGraphTransformer(mode="distance").fit_transform(X)``
        or a ``KNeighborsTransformer`` output.
    X : array-like of shape (n_samples_X, n_features)
        The embeddings the graph was built from.
    n_neighbors : int, default=None
        ``k``; the smallest number of non-self neighbours stored in a sampled row
        when None.
    metric : {"cosine", "euclidean", "manhattan", "inner_product"}, default="cosine"
        Metric of the exact search.
    n_samples : int or None, default=1000
        Rows sampled (all rows when None or larger than the data).
    random_state : int, RandomState instance or None, default=0
        Seed of the row sample.

    Returns
    -------
    recall : float
        In [0, 1]; 1 means every sampled row holds its exact neighbours.

    Examples
    --------
    >>> import numpy as np
    >>> from sksemantic.graph import SemanticGraphTransformer
    >>> from sksemantic.metrics import graph_recall
    >>> X = np.random.default_rng(0).normal(size=(200, 8))
    >>> G = SemanticGraphTransformer(n_neighbors=5, algorithm="brute").fit_transform(X)
    >>> graph_recall(G, X)
    1.0
    """
    from ..neighbors import BruteIndex

    X = check_array(X, dtype=[np.float64, np.float32], input_name="X")
    graph = sp.csr_matrix(graph)
    n = X.shape[0]
    if graph.shape != (n, n):
        raise ValueError(
            f"graph has shape {graph.shape}; a graph of X over itself must be ({n}, {n})."
        )
    rng = check_random_state(random_state)
    rows = np.arange(n) if n_samples is None or n_samples >= n else np.sort(
        rng.choice(n, n_samples, replace=False)
    )
    sub = graph[rows]
    m = len(rows)
    r = np.repeat(np.arange(m), np.diff(sub.indptr))
    other = sub.indices != rows[r]
    r, cols, vals = r[other], sub.indices[other], sub.data[other]
    order = np.lexsort((cols, vals, r))
    r, cols = r[order], cols[order]
    sizes = np.bincount(r, minlength=m)
    k = int(n_neighbors) if n_neighbors is not None else int(sizes.min())
    if k < 1:
        raise ValueError("The sampled graph rows hold no neighbours besides the point itself.")
    if k > n - 1:
        raise ValueError(f"n_neighbors={k} exceeds the {n - 1} other points in X.")
    rank = np.arange(r.size) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    found = r[rank < k] * n + cols[rank < k]
    index = BruteIndex(metric).fit(X)
    _, exact, _ = index.query(X[rows], k + 1)
    # The exact k nearest others: drop the query itself (or the last one if absent).
    is_self = exact == rows[:, None]
    drop = np.where(is_self.any(axis=1), is_self.argmax(axis=1), k)
    keep = np.arange(k + 1)[None, :] != drop[:, None]
    exact_keys = (np.arange(m)[:, None] * n + exact)[keep]
    hits = np.intersect1d(found, exact_keys).size
    return float(hits / (k * len(rows)))
