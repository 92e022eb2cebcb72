"""Retrieval quality of ranked search results against relevance labels."""

import numpy as np
import scipy.sparse as sp

__all__ = ["retrieval_ndcg_at_k", "retrieval_recall_at_k"]


def _relevance_matrix(relevant, n_queries, n_items):
    """Relevance labels as a CSR matrix of non-negative gains, (n_queries, >= n_items)."""
    if sp.issparse(relevant) or (
        isinstance(relevant, np.ndarray) and relevant.ndim == 2 and relevant.dtype.kind in "biuf"
    ):
        # Graded gains per (query, item).
        R = sp.csr_matrix(relevant, dtype=np.float64)
        if R.nnz and (np.any(R.data < 0) or not np.all(np.isfinite(R.data))):
            raise ValueError("relevant gains must be finite and non-negative.")
    else:
        if relevant is None or isinstance(relevant, (str, bytes)) or not hasattr(
            relevant, "__iter__"
        ):
            raise TypeError(
                "relevant must be the relevant corpus id(s) of each query, got "
                f"{type(relevant).__name__}."
            )
        items = list(relevant)
        if all(np.ndim(r) == 0 for r in items):
            # One relevant id per query (known-item search).
            lists = list(_check_ids(items, "relevant").reshape(-1, 1))
        else:
            lists = [_check_ids(r, f"relevant[{q}]") for q, r in enumerate(items)]
        sizes = [len(r) for r in lists]
        rows = np.repeat(np.arange(len(lists)), sizes)
        cols = np.concatenate(lists) if lists else np.empty(0, dtype=np.int64)
        if cols.size and cols.min() < 0:
            raise ValueError("relevant ids must be non-negative.")
        width = max(n_items, int(cols.max()) + 1 if cols.size else 0)
        R = sp.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(len(lists), width))
        R.sum_duplicates()
        R.data[:] = 1.0
    if R.shape[0] != n_queries:
        raise ValueError(f"relevant has {R.shape[0]} queries but retrieved has {n_queries}.")
    R.eliminate_zeros()
    return R


def _check_ids(ids, name):
    """Corpus ids as a 1-D int64 array; float, bool or str ids are refused, not cast."""
    if isinstance(ids, (str, bytes)) or not hasattr(ids, "__iter__"):
        raise TypeError(f"{name} must be a collection of corpus ids, got {type(ids).__name__}.")
    arr = np.asarray(list(ids))
    if arr.size and arr.dtype.kind not in "iu":
        raise TypeError(
            f"{name} must hold integer corpus ids, got dtype {arr.dtype} "
            f"(e.g. {arr.ravel()[0].item()!r})."
        )
    return arr.astype(np.int64).ravel()


def _check_retrieved(retrieved, k):
    retrieved = np.asarray(retrieved)
    if retrieved.ndim != 2 or retrieved.dtype.kind not in "iu":
        raise ValueError(
            "retrieved must be a 2-d integer array of ranked ids (n_queries, n_results), "
            f"got shape {retrieved.shape} and dtype {retrieved.dtype}."
        )
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}.")
    return retrieved[:, :k].astype(np.int64)


def _gains(R, top):
    """Gain of each retrieved id (0 for padding ids < 0 or beyond the matrix)."""
    n_q, k = top.shape
    valid = (top >= 0) & (top < R.shape[1])
    rows = np.repeat(np.arange(n_q), k)[valid.ravel()]
    g = np.zeros(top.shape)
    g[valid] = np.asarray(R[rows, top[valid]]).ravel()
    return g


def retrieval_recall_at_k(relevant, retrieved, *, k=10):
    """Mean fraction of each query's relevant items found in its top ``k`` results.

    ``recall@k = |relevant ∩ top_k| / |relevant|`` per query, averaged over the
    queries that have at least one relevant item. For known-item search (one
    relevant item per query) this is the hit rate at ``k``.

    Parameters
    ----------
    relevant : array-like
        Relevance labels, one of: an int array of shape (n_queries,), the single
        relevant corpus id of each query; a sequence of collections of relevant ids;
        or an array / sparse matrix of shape (n_queries, n_items) whose non-zero
        entries mark relevant items. Ids must be integers: float, bool or str ids
        are an error, not rounded.
    retrieved : array-like of shape (n_queries, n_results)
        Ranked corpus ids per query, best first (e.g. from
        :meth:`sksemantic.search.SemanticSearch.kneighbors`); negative ids are
        padding and never relevant.
    k : int, default=10
        Cut-off; results beyond column ``k`` are ignored.

    Returns
    -------
    recall : float
        In [0, 1].

    See Also
    --------
    retrieval_ndcg_at_k : Rank-aware quality with graded relevance.

    Examples
    --------
    >>> from sksemantic.metrics import retrieval_recall_at_k
    >>> retrieved = [[3, 1, 2], [0, 4, 5]]
    >>> retrieval_recall_at_k([1, 5], retrieved, k=2)  # query 0 finds 1 in its top 2
    0.5
    >>> retrieval_recall_at_k([[1, 2], [9]], retrieved, k=3)
    0.5
    """
    top = _check_retrieved(retrieved, k)
    R = _relevance_matrix(relevant, top.shape[0], int(top.max(initial=-1)) + 1)
    n_rel = np.diff(R.indptr)
    has = n_rel > 0
    if not np.any(has):
        raise ValueError("No query has a relevant item: recall is undefined.")
    hits = (_gains(R, top) > 0).sum(axis=1)
    return float(np.mean(hits[has] / n_rel[has]))


def retrieval_ndcg_at_k(relevant, retrieved, *, k=10):
    """Mean normalised discounted cumulative gain of the top ``k`` results.

    ``DCG@k = sum_{r=1..k} gain(r) / log2(r + 1)`` with linear gains; nDCG divides it
    by the DCG of the ideal ranking of the query's relevant items. Queries with no
    relevant item are left out of the mean.

    Parameters
    ----------
    relevant : array-like
        As in :func:`retrieval_recall_at_k`; a dense or sparse (n_queries, n_items)
        array gives graded gains (non-negative), other forms give gain 1.
    retrieved : array-like of shape (n_queries, n_results)
        Ranked corpus ids per query, best first; negative ids are padding.
    k : int, default=10
        Cut-off.

    Returns
    -------
    ndcg : float
        In [0, 1].

    See Also
    --------
    retrieval_recall_at_k : Fraction of relevant items found.
    sklearn.metrics.ndcg_score : The same measure from dense score matrices.

    Examples
    --------
    >>> from sksemantic.metrics import retrieval_ndcg_at_k
    >>> retrieval_ndcg_at_k([0], [[0, 1, 2]], k=3)  # the known item ranked first
    1.0
    >>> round(retrieval_ndcg_at_k([2], [[0, 1, 2]], k=3), 4)  # ranked third: 1 / log2(4)
    0.5
    """
    top = _check_retrieved(retrieved, k)
    R = _relevance_matrix(relevant, top.shape[0], int(top.max(initial=-1)) + 1)
    kk = top.shape[1]
    discount = 1.0 / np.log2(np.arange(2, kk + 2))
    dcg = _gains(R, top) @ discount
    # The ideal ranking: each query's gains sorted descending, cut at k.
    rows = np.repeat(np.arange(R.shape[0]), np.diff(R.indptr))
    order = np.lexsort((-R.data, rows))
    rank = np.arange(len(order)) - R.indptr[rows[order]]
    keep = rank < kk
    ideal = np.zeros((top.shape[0], kk))
    ideal[rows[order][keep], rank[keep]] = R.data[order][keep]
    idcg = ideal @ discount
    has = idcg > 0
    if not np.any(has):
        raise ValueError("No query has a relevant item: nDCG is undefined.")
    return float(np.mean(dcg[has] / idcg[has]))
