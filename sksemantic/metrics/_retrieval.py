"""How well codes preserve neighbourhoods: recall@k and distance correlation."""

import warnings
from numbers import Integral

import numpy as np
from scipy.stats import spearmanr
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from sklearn.utils.validation import check_array

from ..neighbors import pairwise_scores, prepare
from ._codes import _check_codes, _prefix_ids, _unit_scale
from ._graph import _exact_others, _sample_rows

__all__ = ["distance_correlation", "ndcg_at_k", "recall_at_k"]

_METRICS = {"cosine", "euclidean", "manhattan", "inner_product"}
# Query rows per block: keeps the (block, n_samples) work arrays near 4M entries.
_BLOCK_ENTRIES = 1 << 22


def _check_inputs(X, codes, reconstruction):
    """Validated inputs, ``X`` and ``reconstruction`` each rescaled (see :func:`_unit_scale`)."""
    X = _unit_scale(check_array(X, dtype=[np.float64, np.float32], input_name="X"))
    n = X.shape[0]
    if codes is not None:
        codes = _check_codes(codes)
        if codes.shape[0] != n:
            raise ValueError(
                f"codes has {codes.shape[0]} rows but X has {n}; they must describe the "
                "same items, one row each."
            )
    if reconstruction is not None:
        reconstruction = _unit_scale(check_array(
            reconstruction, dtype=[np.float64, np.float32], input_name="reconstruction"
        ))
        if reconstruction.shape[0] != n:
            raise ValueError(
                f"reconstruction has {reconstruction.shape[0]} rows but X has {n}; they "
                "must describe the same items, one row each."
            )
    return X, codes, reconstruction


@validate_params(
    {
        "X": ["array-like"],
        "codes": ["array-like", None],
        "reconstruction": ["array-like", None],
        "k": [Interval(Integral, 1, None, closed="left")],
        "metric": [StrOptions(_METRICS)],
        "n_queries": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def recall_at_k(
    X,
    codes=None,
    *,
    reconstruction=None,
    k=10,
    metric="euclidean",
    n_queries=1000,
    random_state=0,
):
    """Recall@k of neighbours found in code space against exact neighbours of ``X``.

    For each sampled item ``i``, ``E_i`` is the set of its ``k`` exact nearest other
    items in ``X`` under ``metric``, and ``C_i`` the ``k`` nearest other items in code
    space, ranked by

    1. the length of the common prefix of the codes, longest first (the hierarchical
       distance of semantic IDs: items sharing more leading levels are nearer), when
       ``codes`` is given;
    2. then the ``metric`` distance between the reconstructions ``r_i`` and ``r_j``,
       nearest first, when ``reconstruction`` is given;
    3. then at random among items still tied.

    Ties are not broken by index order (which would favour low indices): the score
    is the *expected* recall under a uniformly random tie order, computed exactly. If
    ``b_i`` items rank strictly inside the top ``k`` and the next ``t_i`` items are
    tied for the remaining ``k - b_i`` places::

        recall@k = mean_i ( |B_i ∩ E_i| + (k - b_i) / t_i * |T_i ∩ E_i| ) / k

    with ``B_i`` the strictly better items and ``T_i`` the tied ones. With codes
    alone, items with the same code are always tied, so a high collision rate caps
    recall. (Ties in ``X`` itself, exact duplicates at the k-th place, are taken in
    index order.)

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The embeddings: exact neighbours are found among them. For a pipeline, pass the
        data in the space you want neighbours to be judged in (see the scorers).
    codes : array-like of int of shape (n_samples, n_levels), default=None
        Codes of the same items (an encoder's ``transform(X)``).
    reconstruction : array-like of shape (n_samples, n_features_rec), default=None
        Reconstructions of the same items (an encoder's
        ``inverse_transform(codes)``); used to order items within equal prefixes, or
        alone when ``codes`` is None. At least one of ``codes`` and
        ``reconstruction`` is needed.
    k : int, default=10
        Neighbours per item; at most ``n_samples - 1``.
    metric : {"euclidean", "cosine", "manhattan", "inner_product"}, default="euclidean"
        Metric of the exact search and of the reconstruction distance. Euclidean is
        the geometry k-means quantisers minimise; on L2-normalised embeddings it ranks
        ``X`` exactly as cosine does.
    n_queries : int or None, default=1000
        Items sampled as queries (all when None or not smaller than ``n_samples``);
        the neighbours are always searched among all items.
    random_state : int, RandomState instance or None, default=0
        Seed of the query sample.

    Returns
    -------
    recall : float
        In ``[0, 1]``.

    See Also
    --------
    sksemantic.metrics.graph_recall : Recall of a neighbour graph.

    Examples
    --------
    Four points on a line and two-level codes, with ``k=1``:

    >>> import numpy as np
    >>> from sksemantic.metrics import recall_at_k
    >>> X = np.array([[0.0], [1.0], [3.0], [10.0]])
    >>> codes = np.array([[0, 0], [0, 1], [0, 0], [1, 0]])
    >>> round(recall_at_k(X, codes, k=1, n_queries=None), 4)
    0.2083

    Items 0 and 2 share their whole code and find each other, though the nearest of
    both is item 1 (0 each); item 1 shares one level with items 0 and 2, a tie for one
    place, and its nearest is 0 (1/2); item 3 shares nothing with anyone, a three-way
    tie, and its nearest is 2 (1/3): ``(0 + 1/2 + 0 + 1/3) / 4``. Reconstructions
    order the tied items: item 1 now takes 0 and item 3 takes 2,
    ``(0 + 1 + 0 + 1) / 4``:

    >>> R = np.array([[0.5], [1.0], [2.5], [10.0]])
    >>> recall_at_k(X, codes, reconstruction=R, k=1, n_queries=None)
    0.5
    """
    ahead, tied, _ = _rank_exact_neighbours(
        X, codes, reconstruction, k, metric, n_queries, random_state, "recall_at_k"
    )
    # Item j's place is uniform over [ahead, ahead + tied): P(place < k).
    return float(np.mean(np.clip(k - ahead, 0, tied) / tied))


def _rank_exact_neighbours(X, codes, reconstruction, k, metric, n_queries, random_state, name):
    """Where each exact neighbour falls in the code-space ranking.

    For every sampled query ``i`` and each of its ``k`` exact nearest other items ``j``
    (in exact order), returns ``ahead[i, r]``, the number of items ranked strictly
    before ``j`` in code space, and ``tied[i, r]``, the number of items with exactly
    ``j``'s rank key (``j`` included). The ranking is: longer common prefix first, then
    smaller reconstruction distance; the query itself is never ranked.
    """
    X, codes, reconstruction = _check_inputs(X, codes, reconstruction)
    if codes is None and reconstruction is None:
        raise ValueError(f"{name} needs codes, reconstruction or both.")
    n = X.shape[0]
    if k > n - 1:
        raise ValueError(f"k={k} exceeds the {n - 1} other items in X (n_samples={n}).")
    rows = _sample_rows(n, n_queries, random_state)
    exact = _exact_others(X, rows, k, metric)
    ids = _prefix_ids(codes) if codes is not None else np.zeros((n, 0), dtype=np.int64)
    n_levels = ids.shape[1]
    if reconstruction is not None:
        # Distances are computed to the distinct reconstructions only, so that equal
        # reconstructions get bit-for-bit equal distances (exact ties).
        uniq, inv = np.unique(reconstruction, axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        U, u_sqnorm = prepare(uniq, metric)
    ahead = np.empty(exact.shape, dtype=np.int64)
    tied = np.empty(exact.shape, dtype=np.int64)
    step = max(1, _BLOCK_ENTRIES // n)
    for s in range(0, len(rows), step):
        q = rows[s : s + step]
        b = np.arange(len(q))
        e = exact[s : s + step]
        # Common prefix length: prefixes are nested, so count the equal depths.
        P = np.zeros((len(q), n), dtype=np.int16)
        for d in range(n_levels):
            P += ids[None, :, d] == ids[q, d][:, None]
        P[b, q] = -1  # never the query itself
        counts = np.stack([(P == lvl).sum(axis=1) for lvl in range(n_levels + 1)], axis=1)
        # more[:, l] = number of items sharing more than l levels.
        more = np.cumsum(counts[:, ::-1], axis=1)[:, ::-1] - counts
        Pe = np.take_along_axis(P, e, axis=1).astype(np.int64)
        ahead[s : s + step] = np.take_along_axis(more, Pe, axis=1)
        if reconstruction is None:
            tied[s : s + step] = np.take_along_axis(counts, Pe, axis=1)
            continue
        D = -pairwise_scores(U[inv[q]], U, metric, u_sqnorm[inv[q]], u_sqnorm)[:, inv]
        De = np.take_along_axis(D, e, axis=1)
        for r in range(k):
            same = P == Pe[:, r : r + 1]
            ahead[s : s + step, r] += np.sum(same & (D < De[:, r : r + 1]), axis=1)
            tied[s : s + step, r] = np.sum(same & (D == De[:, r : r + 1]), axis=1)
    return ahead, tied, rows


@validate_params(
    {
        "X": ["array-like"],
        "codes": ["array-like", None],
        "reconstruction": ["array-like", None],
        "k": [Interval(Integral, 1, None, closed="left")],
        "metric": [StrOptions(_METRICS)],
        "n_queries": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def ndcg_at_k(
    X,
    codes=None,
    *,
    reconstruction=None,
    k=10,
    metric="euclidean",
    n_queries=1000,
    random_state=0,
):
    """NDCG@k of the code-space ranking against the exact ranking of ``X``.

    Code-space neighbours are ranked as in :func:`recall_at_k` (longest common prefix,
    then reconstruction distance, then at random). The ``r``-th exact nearest other
    item of query ``i`` (``r = 0 .. k-1``) has relevance ``k - r``, every other item
    0 (the graded relevance of semantic-id). With positions ``p = 0, 1, ...`` in the
    code-space ranking::

        DCG_i  = sum_{p < k} rel(item at p) / log2(p + 2)
        IDCG   = sum_{r < k} (k - r) / log2(r + 2)
        ndcg@k = mean_i E[DCG_i] / IDCG

    The expectation is over the random order of tied items and is computed exactly:
    an item with ``a`` items strictly ahead and ``t`` tied (itself included) is at
    each of the places ``a .. a + t - 1`` with probability ``1 / t``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The embeddings: exact neighbours are found among them.
    codes : array-like of int of shape (n_samples, n_levels), default=None
        Codes of the same items.
    reconstruction : array-like of shape (n_samples, n_features_rec), default=None
        Reconstructions of the same items, ordering items within equal prefixes (or
        alone when ``codes`` is None).
    k : int, default=10
        Length of the ranking; at most ``n_samples - 1``.
    metric : {"euclidean", "cosine", "manhattan", "inner_product"}, default="euclidean"
        Metric of the exact search and of the reconstruction distance.
    n_queries : int or None, default=1000
        Items sampled as queries (all when None).
    random_state : int, RandomState instance or None, default=0
        Seed of the query sample.

    Returns
    -------
    ndcg : float
        In ``[0, 1]``; 1 when the code-space ranking starts with the exact
        neighbours in exact order.

    Examples
    --------
    The line of :func:`recall_at_k` with ``k=1`` (relevance 1 for the nearest item,
    so NDCG@1 equals recall@1):

    >>> import numpy as np
    >>> from sksemantic.metrics import ndcg_at_k
    >>> X = np.array([[0.0], [1.0], [3.0], [10.0]])
    >>> codes = np.array([[0, 0], [0, 1], [0, 0], [1, 0]])
    >>> round(ndcg_at_k(X, codes, k=1, n_queries=None), 4)
    0.2083
    """
    ahead, tied, _ = _rank_exact_neighbours(
        X, codes, reconstruction, k, metric, n_queries, random_state, "ndcg_at_k"
    )
    discount = 1.0 / np.log2(np.arange(k) + 2.0)
    cum = np.concatenate([[0.0], np.cumsum(discount)])  # cum[p] = sum of first p places
    rel = k - np.arange(k, dtype=np.float64)
    start = np.minimum(ahead, k)
    stop = np.minimum(ahead + tied, k)
    expected = (cum[stop] - cum[start]) / tied
    idcg = float(np.sum(rel * discount))
    return float(np.mean((expected @ rel) / idcg))


#: Gathered vector entries per block of pairs in :func:`distance_correlation`
#: (float64: 16 MiB per gathered array).
_PAIR_BLOCK_ENTRIES = 1 << 21


def _pair_distances(X, i, j, metric):
    """Distances between the rows ``X[i]`` and ``X[j]``, pair by pair, in float64.

    Pairs are gathered a block at a time, so memory does not grow with the number of
    pairs beyond the output.
    """
    out = np.empty(len(i), dtype=np.float64)
    step = max(1, _PAIR_BLOCK_ENTRIES // max(1, X.shape[1]))
    for s in range(0, len(i), step):
        A = np.asarray(X[i[s : s + step]], dtype=np.float64)
        B = np.asarray(X[j[s : s + step]], dtype=np.float64)
        if metric in ("euclidean", "manhattan"):
            A -= B
            if metric == "euclidean":
                out[s : s + step] = np.sqrt(np.einsum("ij,ij->i", A, A))
            else:
                out[s : s + step] = np.abs(A, out=A).sum(axis=1)
            continue
        dots = np.einsum("ij,ij->i", A, B)
        if metric == "inner_product":
            out[s : s + step] = -dots
            continue
        norms = np.sqrt(np.einsum("ij,ij->i", A, A) * np.einsum("ij,ij->i", B, B))
        out[s : s + step] = 1.0 - np.divide(
            dots, norms, out=np.zeros_like(dots), where=norms > 0
        )
    return out


def _pair_code_distances(codes, i, j, code_metric):
    """Code distances of the pairs ``(i, j)`` (see :func:`distance_correlation`),
    a block of pairs at a time."""
    out = np.empty(len(i), dtype=np.int64)
    n_levels = codes.shape[1]
    step = max(1, _PAIR_BLOCK_ENTRIES // max(1, n_levels))
    for s in range(0, len(i), step):
        same = codes[i[s : s + step]] == codes[j[s : s + step]]
        if code_metric == "hamming":
            out[s : s + step] = n_levels - same.sum(axis=1)
        else:
            out[s : s + step] = n_levels - np.cumprod(same, axis=1).sum(axis=1)
    return out


@validate_params(
    {
        "X": ["array-like"],
        "codes": ["array-like"],
        "metric": [StrOptions(_METRICS)],
        "code_metric": [StrOptions({"hierarchical", "hamming"})],
        "n_pairs": [Interval(Integral, 2, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def distance_correlation(
    X, codes, *, metric="euclidean", code_metric="hierarchical", n_pairs=2000, random_state=0
):
    """Spearman correlation between embedding distances and code distances.

    ``n_pairs`` pairs ``(i, j)`` with ``i != j`` are drawn uniformly at random; for each,
    ``d_X`` is the ``metric`` distance between ``X[i]`` and ``X[j]`` and ``d_C`` the code
    distance:

    - ``"hierarchical"``: ``n_levels - (length of the common prefix)``, so codes that
      differ at the first level are farthest whatever follows;
    - ``"hamming"``: the number of levels at which the codes differ.

    The result is Spearman's rank correlation of ``d_X`` and ``d_C`` over the pairs
    (ties get average ranks). It is NaN when either is constant over the pairs, e.g.
    when every item has the same first code and ``code_metric="hierarchical"`` with one
    level.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Embeddings.
    codes : array-like of int of shape (n_samples, n_levels)
        Codes of the same items.
    metric : {"euclidean", "cosine", "manhattan", "inner_product"}, default="euclidean"
        Embedding distance (``inner_product``: the negated inner product).
    code_metric : {"hierarchical", "hamming"}, default="hierarchical"
        Code distance.
    n_pairs : int, default=2000
        Pairs sampled.
    random_state : int, RandomState instance or None, default=0
        Seed of the pair sample.

    Returns
    -------
    rho : float
        In ``[-1, 1]``; higher means code distances order pairs as embedding
        distances do. NaN, with a warning, when every sampled pair has the same code
        distance (or the same embedding distance): a rank correlation is then
        undefined.

    Examples
    --------
    Two tight pairs far apart, coded as two first-level groups: every near pair shares
    its first level, every far pair does not, so the rankings agree exactly:

    >>> import numpy as np
    >>> from sksemantic.metrics import distance_correlation
    >>> X = np.array([[-0.5, 0, 0], [0.5, 0, 0], [0, -0.5, 3], [0, 0.5, 3]])
    >>> codes = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    >>> distance_correlation(X, codes, n_pairs=50)
    1.0
    """
    X, codes, _ = _check_inputs(X, codes, None)
    n = X.shape[0]
    if n < 2:
        raise ValueError(f"X has {n} sample(s); distance_correlation needs at least 2.")
    rng = check_random_state(random_state)
    i = rng.randint(0, n, size=n_pairs)
    j = (i + rng.randint(1, n, size=n_pairs)) % n  # uniform over the others
    d_x = _pair_distances(X, i, j, metric)
    d_c = _pair_code_distances(codes, i, j, code_metric)
    if np.all(d_c == d_c[0]) or np.all(d_x == d_x[0]):
        which = "code" if np.all(d_c == d_c[0]) else "embedding"
        warnings.warn(
            f"Every sampled pair has the same {which} distance: the rank correlation is "
            "undefined (NaN).",
            UserWarning,
            stacklevel=2,
        )
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rho = spearmanr(d_x, d_c).statistic
    return float(rho)
