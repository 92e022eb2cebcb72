"""Quality of neighbour graphs: recall against exact neighbours."""

from numbers import Integral

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from sklearn.utils.validation import check_array

__all__ = ["graph_recall"]


def _sample_rows(n, n_samples, random_state):
    """Sorted row sample: all rows when ``n_samples`` is None or not smaller than ``n``."""
    if n_samples is None or n_samples >= n:
        return np.arange(n)
    rng = check_random_state(random_state)
    return np.sort(rng.choice(n, n_samples, replace=False))


def _exact_others(X, rows, k, metric):
    """Exact ``k`` nearest points of ``X`` to each ``X[rows]``, the row itself excluded.

    Returns an int64 array of shape (len(rows), k). When the search does not return the
    row itself among its ``k + 1`` best (only possible for ``inner_product`` or exact
    duplicates), the last of them is dropped instead.
    """
    from ..neighbors import BruteIndex

    _, exact, _ = BruteIndex(metric).fit(X).query(X[rows], k + 1)
    is_self = exact == rows[:, None]
    drop = np.where(is_self.any(axis=1), is_self.argmax(axis=1), k)
    keep = np.arange(k + 1)[None, :] != drop[:, None]
    return exact[keep].reshape(len(rows), k)


def _indexed_vectors(index):
    """The points a fitted :class:`~sksemantic.neighbors.BaseIndex` holds, in fit order.

    They are the prepared rows (L2-normalised for cosine), which rank exactly as the
    original rows do under the index's metric; rows the index centred (see
    ``BaseIndex.center_``) are shifted back, to rank queries given as they were.
    """
    X = index.X_
    perm = getattr(index, "perm_", None)  # IVF stores its rows grouped by list
    if perm is not None:
        out = np.empty_like(X)
        out[perm] = X
        X = out
    center = getattr(index, "center_", None)
    return X if center is None else X + center


@validate_params(
    {
        "graph": ["sparse matrix"],
        "X": ["array-like"],
        "X_fit": ["array-like", None],
        "n_neighbors": [Interval(Integral, 1, None, closed="left"), None],
        "metric": [StrOptions({"cosine", "euclidean", "manhattan", "inner_product"})],
        "n_samples": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def graph_recall(
    graph, X, *, X_fit=None, n_neighbors=None, metric="cosine", n_samples=1000, random_state=0
):
    """Recall@k of a neighbour graph of ``X`` against exact nearest neighbours.

    For each sampled row ``i`` the graph's neighbours ``G_i`` (the row's stored columns
    other than ``i`` itself, the ``k`` nearest by stored distance) are compared with the
    exact ``k`` nearest other points ``E_i``::

        recall@k = mean_i |G_i ∩ E_i| / k

    With ``X_fit`` the graph is one of queries ``X`` against indexed points ``X_fit``
    (a ``transform`` output of shape ``(n_queries, n_fit)``): ``G_i`` is the ``k``
    nearest stored columns of row ``i`` and ``E_i`` the exact ``k`` nearest rows of
    ``X_fit`` to ``X[i]``; no point is excluded as "itself".

    Parameters
    ----------
    graph : sparse matrix of shape (n_samples_X, n_samples_X) or (n_samples_X, n_fit)
        A graph of ``X`` over itself in distance form (rows with the smallest values
        nearest), such as ``SemanticGraphTransformer(mode="distance").fit_transform(X)``
        or a ``KNeighborsTransformer`` output; or, with ``X_fit``, a graph of the
        queries ``X`` against ``X_fit``.
    X : array-like of shape (n_samples_X, n_features)
        The embeddings the graph was built from (the queries, with ``X_fit``).
    X_fit : array-like of shape (n_fit, n_features), default=None
        The indexed embeddings the graph's columns refer to, when they are not ``X``.
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

    Held-out queries against a fitted index:

    >>> Q = np.random.default_rng(1).normal(size=(50, 8))
    >>> est = SemanticGraphTransformer(n_neighbors=5, algorithm="brute").fit(X)
    >>> graph_recall(est.transform(Q), Q, X_fit=X, n_neighbors=5)
    1.0
    """
    X = check_array(X, dtype=[np.float64, np.float32], input_name="X")
    graph = sp.csr_matrix(graph)
    n = X.shape[0]
    if X_fit is None:
        n_fit = n
        if graph.shape != (n, n):
            raise ValueError(
                f"graph has shape {graph.shape}; a graph of X over itself must be ({n}, {n})."
            )
    else:
        X_fit = check_array(X_fit, dtype=[np.float64, np.float32], input_name="X_fit")
        n_fit = X_fit.shape[0]
        if X_fit.shape[1] != X.shape[1]:
            raise ValueError(
                f"X has {X.shape[1]} features but X_fit has {X_fit.shape[1]}; they must match."
            )
        if graph.shape != (n, n_fit):
            raise ValueError(
                f"graph has shape {graph.shape}; a graph of the {n} rows of X against the "
                f"{n_fit} rows of X_fit must be ({n}, {n_fit})."
            )
    rows = _sample_rows(n, n_samples, random_state)
    sub = graph[rows]
    m = len(rows)
    r = np.repeat(np.arange(m), np.diff(sub.indptr))
    cols, vals = sub.indices, sub.data
    if X_fit is None:
        other = cols != rows[r]
        r, cols, vals = r[other], cols[other], vals[other]
    order = np.lexsort((cols, vals, r))
    r, cols = r[order], cols[order]
    sizes = np.bincount(r, minlength=m)
    k = int(n_neighbors) if n_neighbors is not None else int(sizes.min())
    if k < 1:
        raise ValueError("The sampled graph rows hold no neighbours besides the point itself.")
    limit = n - 1 if X_fit is None else n_fit
    if k > limit:
        raise ValueError(
            f"n_neighbors={k} exceeds the {limit} "
            + ("other points in X." if X_fit is None else "points in X_fit.")
        )
    rank = np.arange(r.size) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    found = r[rank < k] * n_fit + cols[rank < k]
    if X_fit is None:
        exact = _exact_others(X, rows, k, metric)
    else:
        from ..neighbors import BruteIndex

        _, exact, _ = BruteIndex(metric).fit(X_fit).query(X[rows], k)
    exact_keys = (np.arange(m)[:, None] * n_fit + exact).ravel()
    hits = np.intersect1d(found, exact_keys).size
    return float(hits / (k * len(rows)))
