"""Measures of a set of discrete codes: collisions, codebook usage, reconstruction error.

A *code* is one row of an integer array of shape ``(n_samples, n_levels)``, as returned by
the ``transform`` of a residual encoder; its *prefix of depth d* is its first ``d``
columns. Two items *collide* at depth ``d`` when their prefixes of depth ``d`` are equal.
"""

from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import Interval, validate_params
from sklearn.utils.validation import check_array

from ..utils import check_int_codes

__all__ = [
    "codebook_usage",
    "collision_rate",
    "collision_rate_per_level",
    "find_similar",
    "hierarchical_distance",
    "prefix_ids",
    "quantization_mse",
    "reconstruction_cosine",
    "shared_code_fraction",
    "shared_code_fraction_per_level",
]


def _check_codes(codes, name="codes"):
    """Integer codes of shape (n_samples, n_levels) with at least one row."""
    arr = np.asarray(codes)
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D of shape (n_samples, n_levels); got shape {arr.shape}. "
            "Use codes.reshape(-1, 1) for codes of a single level."
        )
    return check_int_codes(arr, name=name)


def _check_depth(depth, n_levels):
    if depth is None:
        return n_levels
    if depth > n_levels:
        raise ValueError(f"depth={depth} exceeds the {n_levels} levels of the codes.")
    return int(depth)


def prefix_ids(codes):
    """Number every distinct code prefix, at every depth.

    Parameters
    ----------
    codes : array-like of int of shape (n_samples, n_levels)
        Codes, one row per item.

    Returns
    -------
    ids : ndarray of shape (n_samples, n_levels), dtype int64
        ``ids[i, d - 1] == ids[j, d - 1]`` exactly when items ``i`` and ``j`` have equal
        prefixes of depth ``d`` (equal first ``d`` columns). At each depth the ids are
        ``0 .. n_distinct - 1`` in the lexicographic order of the prefixes.

    Examples
    --------
    >>> from sksemantic.metrics import prefix_ids
    >>> prefix_ids([[0, 1], [0, 2], [1, 1], [0, 1]]).tolist()
    [[0, 0], [0, 1], [1, 2], [0, 0]]
    """
    codes = _check_codes(codes)
    return _prefix_ids(codes)


def _prefix_ids(codes):
    n, n_levels = codes.shape
    out = np.empty((n, n_levels), dtype=np.int64)
    gid = np.zeros(n, dtype=np.int64)
    for d in range(n_levels):
        _, col = np.unique(codes[:, d], return_inverse=True)
        col = col.reshape(-1)
        # gid < n and col < n, so the combined key fits int64 for any realistic n.
        key = gid * (int(col.max()) + 1) + col
        _, gid = np.unique(key, return_inverse=True)
        gid = gid.reshape(-1)
        out[:, d] = gid
    return out


def _group_sizes(gid):
    """Size of each item's group, for group ids numbered 0 .. m-1."""
    return np.bincount(gid)[gid]


@validate_params(
    {"codes": ["array-like"], "depth": [Interval(Integral, 1, None, closed="left"), None]},
    prefer_skip_nested_validation=True,
)
def collision_rate(codes, *, depth=None):
    """Collision rate: one minus the share of distinct codes among the items.

    With ``n`` items and ``u`` distinct codes (prefixes of depth ``depth``)::

        collision_rate = 1 - u / n

    the definition of semantic-id and LC-Rec. It is 0 when every item has its own code
    and ``1 - 1/n`` when all share one. It counts the items that would need a
    disambiguating suffix: a code shared by ``m`` items adds ``m - 1``.

    Parameters
    ----------
    codes : array-like of int of shape (n_samples, n_levels)
        Codes, one row per item.
    depth : int, default=None
        Compare prefixes of this many levels; all levels when None.

    Returns
    -------
    rate : float
        In ``[0, 1 - 1/n]``.

    See Also
    --------
    shared_code_fraction : The fraction of items whose code is not their own.
    collision_rate_per_level : The rate at every prefix depth.

    Examples
    --------
    >>> from sksemantic.metrics import collision_rate
    >>> codes = [[0, 1], [0, 1], [0, 2], [1, 1]]
    >>> collision_rate(codes)  # 3 distinct codes among 4 items
    0.25
    >>> collision_rate(codes, depth=1)  # 2 distinct first levels among 4 items
    0.5
    """
    codes = _check_codes(codes)
    depth = _check_depth(depth, codes.shape[1])
    gid = _prefix_ids(codes[:, :depth])[:, -1]
    return float(1.0 - (gid.max() + 1) / codes.shape[0])


@validate_params(
    {"codes": ["array-like"], "depth": [Interval(Integral, 1, None, closed="left"), None]},
    prefer_skip_nested_validation=True,
)
def shared_code_fraction(codes, *, depth=None):
    """Fraction of items that share their code with at least one other item.

    With ``n`` items and ``s`` items whose code (prefix of depth ``depth``) occurs only
    once::

        shared_code_fraction = (n - s) / n

    It is never smaller than :func:`collision_rate`: a code shared by ``m`` items adds
    ``m`` here and ``m - 1`` there.

    Parameters
    ----------
    codes : array-like of int of shape (n_samples, n_levels)
        Codes, one row per item.
    depth : int, default=None
        Compare prefixes of this many levels; all levels when None.

    Returns
    -------
    fraction : float
        In ``[0, 1]``.

    Examples
    --------
    >>> from sksemantic.metrics import shared_code_fraction
    >>> shared_code_fraction([[0, 1], [0, 1], [0, 2], [1, 1]])  # items 0 and 1
    0.5
    """
    codes = _check_codes(codes)
    depth = _check_depth(depth, codes.shape[1])
    gid = _prefix_ids(codes[:, :depth])[:, -1]
    return float(np.mean(_group_sizes(gid) > 1))


@validate_params({"codes": ["array-like"]}, prefer_skip_nested_validation=True)
def collision_rate_per_level(codes):
    """:func:`collision_rate` at every prefix depth, 1 to ``n_levels``.

    Parameters
    ----------
    codes : array-like of int of shape (n_samples, n_levels)
        Codes, one row per item.

    Returns
    -------
    rates : ndarray of shape (n_levels,)
        ``rates[d - 1] = 1 - (distinct prefixes of depth d) / n``; non-increasing in ``d``.

    Examples
    --------
    >>> from sksemantic.metrics import collision_rate_per_level
    >>> collision_rate_per_level([[0, 1], [0, 1], [0, 2], [1, 1]]).tolist()
    [0.5, 0.25]
    """
    codes = _check_codes(codes)
    ids = _prefix_ids(codes)
    return 1.0 - (ids.max(axis=0) + 1) / codes.shape[0]


@validate_params({"codes": ["array-like"]}, prefer_skip_nested_validation=True)
def shared_code_fraction_per_level(codes):
    """:func:`shared_code_fraction` at every prefix depth, 1 to ``n_levels``.

    Parameters
    ----------
    codes : array-like of int of shape (n_samples, n_levels)
        Codes, one row per item.

    Returns
    -------
    fractions : ndarray of shape (n_levels,)
        Fraction of items whose prefix of depth ``d`` occurs more than once.

    Examples
    --------
    >>> from sksemantic.metrics import shared_code_fraction_per_level
    >>> shared_code_fraction_per_level([[0, 1], [0, 1], [0, 2], [1, 1]]).tolist()
    [0.75, 0.5]
    """
    codes = _check_codes(codes)
    ids = _prefix_ids(codes)
    return np.array([np.mean(_group_sizes(ids[:, d]) > 1) for d in range(ids.shape[1])])


@validate_params(
    {"codes": ["array-like"], "n_clusters": ["array-like", Integral, None]},
    prefer_skip_nested_validation=True,
)
def codebook_usage(codes, *, n_clusters=None):
    """How each level's codebook is used.

    At level ``l`` (one column of ``codes``, not a prefix), let ``p_c`` be the fraction
    of items with code ``c`` and ``K_l`` the codebook size. Then, per level:

    - ``n_used``: the number of codes with ``p_c > 0``;
    - ``used_fraction = n_used / K_l``;
    - ``entropy = -sum_c p_c log p_c`` (natural log, in nats);
    - ``perplexity = exp(entropy)``: the number of equally used codes with the same
      entropy, between 1 and ``n_used``;
    - ``largest_bucket = max_c p_c``: the share of items in the most used code.

    Parameters
    ----------
    codes : array-like of int of shape (n_samples, n_levels)
        Codes, one row per item; at level ``l`` they must lie in ``[0, K_l)``.
    n_clusters : int or array-like of int of shape (n_levels,), default=None
        Codebook size ``K_l`` of each level (an encoder's ``n_clusters_``); the same
        for every level when an int. When None, ``K_l`` is taken as the largest code
        seen at level ``l`` plus one, which overstates ``used_fraction`` when the top
        codes are unused.

    Returns
    -------
    usage : dict of ndarray of shape (n_levels,)
        Keys ``"n_clusters"``, ``"n_used"``, ``"used_fraction"``, ``"entropy"``,
        ``"perplexity"``, ``"largest_bucket"``.

    Examples
    --------
    >>> from sksemantic.metrics import codebook_usage
    >>> usage = codebook_usage([[0, 1], [0, 1], [1, 0], [1, 1]], n_clusters=4)
    >>> usage["used_fraction"].tolist(), usage["largest_bucket"].tolist()
    ([0.5, 0.5], [0.5, 0.75])
    >>> usage["perplexity"].round(3).tolist()  # level 0: two codes used equally
    [2.0, 1.755]
    """
    codes = _check_codes(codes)
    n, n_levels = codes.shape
    if n_clusters is None:
        sizes = codes.max(axis=0) + 1
    else:
        sizes = np.asarray(n_clusters)
        if sizes.ndim == 0:
            sizes = np.full(n_levels, sizes)
        if sizes.shape != (n_levels,) or sizes.dtype.kind not in "iu":
            raise ValueError(
                f"n_clusters must be an int or {n_levels} ints (one per level); got {n_clusters!r}."
            )
    sizes = sizes.astype(np.int64)
    low, high = codes.min(axis=0), codes.max(axis=0)
    bad = np.flatnonzero((low < 0) | (high >= sizes))
    if bad.size:
        lvl = int(bad[0])
        raise ValueError(
            f"codes at level {lvl} range over [{low[lvl]}, {high[lvl]}], outside the "
            f"codebook [0, {sizes[lvl]}) given by n_clusters."
        )
    out = {k: np.empty(n_levels) for k in ("n_used", "entropy", "largest_bucket")}
    for lvl in range(n_levels):
        counts = np.bincount(codes[:, lvl], minlength=sizes[lvl])
        p = counts[counts > 0] / n
        out["n_used"][lvl] = p.size
        out["entropy"][lvl] = float(-np.sum(p * np.log(p)))
        out["largest_bucket"][lvl] = p.max()
    return {
        "n_clusters": sizes,
        "n_used": out["n_used"].astype(np.int64),
        "used_fraction": out["n_used"] / sizes,
        "entropy": out["entropy"],
        "perplexity": np.exp(out["entropy"]),
        "largest_bucket": out["largest_bucket"],
    }


def _scale_exponent(A, axis=None):
    """Exponents ``e`` with ``max|A| / 2**e`` in ``[0.5, 1)`` (0 where ``A`` is 0), over
    ``axis``: dividing by ``2**e`` changes no digit and keeps every square finite."""
    top = np.maximum(np.max(A, axis=axis), -np.min(A, axis=axis))
    return np.frexp(top)[1]


def _unit_scale(A):
    """``A`` divided by the power of two that brings its largest absolute value into
    ``[0.5, 1)``, when it is far from there (a copy then; ``A`` itself otherwise).

    Rankings and rank correlations are unchanged by a positive scale, and a power of
    two changes no digit: values around 1e20, whose squares overflow float32, are then
    computed as exactly as values around 1.
    """
    if A.size == 0:
        return A
    e = int(_scale_exponent(A))
    if abs(e) <= 16:
        return A
    return np.ldexp(A, -e).astype(A.dtype, copy=False)


def _check_pair(X, reconstruction, name="reconstruction"):
    X = check_array(X, dtype=[np.float64, np.float32], input_name="X")
    R = check_array(reconstruction, dtype=[np.float64, np.float32], input_name=name)
    if R.shape != X.shape:
        raise ValueError(
            f"{name} has shape {R.shape} but X has shape {X.shape}; they must match "
            "(one reconstructed row per row of X)."
        )
    return X, R


@validate_params(
    {"X": ["array-like"], "reconstruction": ["array-like"]}, prefer_skip_nested_validation=True
)
def quantization_mse(X, reconstruction):
    """Mean squared error of a reconstruction, over every entry.

    ::

        quantization_mse = 1 / (n * d) * sum_ij (X_ij - R_ij) ** 2

    for ``X`` of shape ``(n, d)`` and its reconstruction ``R`` (an encoder's
    ``inverse_transform(transform(X))``), the definition of semantic-id. Multiply by
    ``d`` for the mean squared residual norm per row.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Embeddings.
    reconstruction : array-like of shape (n_samples, n_features)
        Their reconstruction.

    Returns
    -------
    mse : float

    See Also
    --------
    sksemantic.metrics.get_semantic_scorer : ``get_semantic_scorer("neg_quantization_mse")(encoder, X)``
        computes it for any fitted encoder with ``inverse_transform``.

    Examples
    --------
    >>> from sksemantic.metrics import quantization_mse
    >>> quantization_mse([[0.0, 0.0], [1.0, 1.0]], [[0.0, 1.0], [1.0, 1.0]])
    0.25
    """
    X, R = _check_pair(X, reconstruction)
    diff = X.astype(np.float64) - R
    if diff.size == 0:
        return float("nan")
    # Squared after scaling by a power of two: no square overflows on the way.
    e = int(_scale_exponent(diff))
    diff = np.ldexp(diff, -e)
    with np.errstate(over="ignore"):
        mse = float(np.ldexp(np.einsum("ij,ij->", diff, diff) / diff.size, 2 * e))
    if not np.isfinite(mse):
        raise ValueError(
            f"X and reconstruction differ by up to {np.ldexp(1.0, e):.2g}: their mean "
            "squared difference is beyond float64's range; rescale both."
        )
    return mse


@validate_params(
    {"X": ["array-like"], "reconstruction": ["array-like"]}, prefer_skip_nested_validation=True
)
def reconstruction_cosine(X, reconstruction):
    """Mean cosine similarity between each row and its reconstruction.

    ::

        reconstruction_cosine = 1/n * sum_i (x_i . r_i) / (|x_i| |r_i|)

    A row where ``x_i`` or ``r_i`` is all zeros contributes 0 (its direction is
    undefined). It is 1 for a perfect reconstruction and scale-free, unlike
    :func:`quantization_mse`.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Embeddings.
    reconstruction : array-like of shape (n_samples, n_features)
        Their reconstruction.

    Returns
    -------
    cosine : float
        In ``[-1, 1]``.

    See Also
    --------
    sksemantic.metrics.get_semantic_scorer : ``get_semantic_scorer("reconstruction_cosine")(encoder, X)``
        computes it for any fitted encoder with ``inverse_transform``.

    Examples
    --------
    >>> from sksemantic.metrics import reconstruction_cosine
    >>> round(reconstruction_cosine([[1.0, 0.0], [0.0, 2.0]], [[2.0, 0.0], [1.0, 1.0]]), 4)
    0.8536
    """
    X, R = _check_pair(X, reconstruction)
    # Rows divided by a power of two near their largest value: the cosine is unchanged
    # and no square overflows, whatever the scale.
    X = np.ldexp(X.astype(np.float64), -_scale_exponent(X, axis=1)[:, None])
    R = np.ldexp(R.astype(np.float64), -_scale_exponent(R, axis=1)[:, None])
    dots = np.einsum("ij,ij->i", X, R)
    norms = np.sqrt(np.einsum("ij,ij->i", X, X) * np.einsum("ij,ij->i", R, R))
    cos = np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)
    return float(np.mean(cos))


def _check_code_rows(codes, name):
    """Integer codes of shape (L,) or (n, L), as a 2-D array (empty batches allowed)."""
    arr = np.asarray(codes)
    if arr.ndim not in (1, 2):
        raise ValueError(
            f"{name} must be one code of shape (n_levels,) or codes of shape "
            f"(n_samples, n_levels); got shape {arr.shape}."
        )
    if arr.dtype.kind == "b":
        raise TypeError(f"{name} must hold integer codes, got booleans.")
    return check_int_codes(np.atleast_2d(arr), name=name, ensure_min_samples=0)


def _hierarchical_distance(A, B):
    """Distances between the rows of validated codes, broadcasting single rows."""
    eq = A == B
    n_levels = eq.shape[1]
    common = np.where(eq.all(axis=1), n_levels, np.argmin(eq, axis=1))
    return n_levels - common


@validate_params(
    {"codes_a": ["array-like"], "codes_b": ["array-like"]}, prefer_skip_nested_validation=True
)
def hierarchical_distance(codes_a, codes_b):
    """Prefix distance of semantic IDs: the number of levels minus the common prefix.

    ::

        hierarchical_distance(a, b) = n_levels - (length of the common prefix of a and b)

    Codes that differ at the first level are farthest (``n_levels``), whatever their
    later levels, since an ID names a path down a tree of clusters; unlike the
    Hamming distance, agreeing at a deeper level after a difference counts for
    nothing. It is the code distance of :func:`distance_correlation` (with
    ``code_metric="hierarchical"``) and of :func:`find_similar`.

    Parameters
    ----------
    codes_a : array-like of int of shape (n_levels,) or (n_samples, n_levels)
        One code or a batch of codes.
    codes_b : array-like of int of shape (n_levels,) or (n_samples, n_levels)
        Codes with the same number of levels. Rows are compared pairwise; a single
        code (1-D, or one row) is compared with every row of the other.

    Returns
    -------
    distance : int or ndarray of shape (n_samples,), dtype int64
        In ``[0, n_levels]``; an int when both arguments are single 1-D codes.

    See Also
    --------
    find_similar : The codes nearest to one code under this distance.

    Examples
    --------
    >>> from sksemantic.metrics import hierarchical_distance
    >>> hierarchical_distance([1, 2, 3], [1, 2, 9])  # the last level differs
    1
    >>> hierarchical_distance([1, 2, 3], [0, 2, 3])  # the first level differs
    3
    >>> codes = [[1, 2, 3], [1, 2, 0], [1, 0, 0], [0, 0, 0]]
    >>> hierarchical_distance([[1, 2, 3]], codes).tolist()  # one query, every code
    [0, 1, 2, 3]
    """
    single = np.ndim(codes_a) == 1 and np.ndim(codes_b) == 1
    A = _check_code_rows(codes_a, "codes_a")
    B = _check_code_rows(codes_b, "codes_b")
    if A.shape[1] != B.shape[1]:
        raise ValueError(
            f"codes_a has {A.shape[1]} levels but codes_b has {B.shape[1]}; codes compared "
            "must have the same number of levels."
        )
    if A.shape[0] != B.shape[0] and 1 not in (A.shape[0], B.shape[0]):
        raise ValueError(
            f"codes_a has {A.shape[0]} rows but codes_b has {B.shape[0]}: rows are compared "
            "pairwise, so their numbers must match unless one side is a single code."
        )
    out = _hierarchical_distance(A, B)
    return int(out[0]) if single else out


@validate_params(
    {
        "codes": ["array-like"],
        "query": ["array-like", Integral],
        "k": [Interval(Integral, 1, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def find_similar(codes, query, k=10):
    """The ``k`` codes nearest to a query under :func:`hierarchical_distance`.

    Items are ranked by their distance to the query, nearest first; items at equal
    distance (sharing the same prefix length with the query) come in row order, so
    the result is deterministic.

    Parameters
    ----------
    codes : array-like of int of shape (n_samples, n_levels)
        Codes of all items.
    query : int or array-like of int of shape (n_levels,)
        A row index into ``codes`` (that item is left out of its own results) or a
        code, which need not be one of ``codes``.
    k : int, default=10
        Number of items returned; at most ``n_samples - 1`` for a row index and
        ``n_samples`` for a code (fewer come back when fewer exist).

    Returns
    -------
    indices : ndarray of shape (k,), dtype int64
        Rows of ``codes``, nearest first.
    distances : ndarray of shape (k,), dtype int64
        Their hierarchical distances to the query, non-decreasing.

    Examples
    --------
    >>> from sksemantic.metrics import find_similar
    >>> codes = [[1, 2, 3], [1, 2, 0], [0, 0, 0], [1, 0, 0], [1, 2, 3]]
    >>> idx, dist = find_similar(codes, 0, k=3)  # neighbours of item 0
    >>> idx.tolist(), dist.tolist()
    ([4, 1, 3], [0, 1, 2])
    >>> idx, dist = find_similar(codes, [0, 0, 7], k=2)  # a code not in the set
    >>> idx.tolist(), dist.tolist()
    ([2, 0], [1, 3])
    """
    codes = _check_codes(codes)
    n, n_levels = codes.shape
    if np.ndim(query) == 0:
        query = query.item() if isinstance(query, np.ndarray) else query
        if isinstance(query, (bool, np.bool_)) or not isinstance(query, Integral):
            raise TypeError(
                f"query must be a row index (int) or a code of {n_levels} ints, got "
                f"{type(query).__name__} {query!r}."
            )
        row = int(query)
        if not 0 <= row < n:
            raise ValueError(f"query={row} is not a row of codes: rows are 0 .. {n - 1}.")
        q = codes[row : row + 1]
        k = min(k, n - 1)
    else:
        row = None
        if np.ndim(query) != 1:
            raise ValueError(
                f"query must be a row index or one code of shape ({n_levels},); got shape "
                f"{np.shape(query)}."
            )
        q = _check_code_rows(query, "query")
        if q.shape[1] != n_levels:
            raise ValueError(f"query has {q.shape[1]} levels but codes have {n_levels}.")
        k = min(k, n)
    dist = _hierarchical_distance(q, codes)
    # Distance first, then row: one int64 key per item, unique, so the order is total.
    key = dist * n + np.arange(n)
    if row is not None:
        key[row] = np.iinfo(np.int64).max
    if k == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    top = np.argpartition(key, k - 1)[:k] if k < n else np.arange(n)
    top = top[np.argsort(key[top])]
    return top.astype(np.int64), dist[top].astype(np.int64)
