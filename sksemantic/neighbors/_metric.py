"""Metrics as scores (larger is nearer) computed by matrix products, and their conversions.

Every index in :mod:`sksemantic.neighbors` ranks by a *score* that is symmetric in its two
arguments, so that one block of a self-join serves both its rows and its columns:

=================  ==================================  ===========================  =================
metric             score(a, b)                         distance (>= 0)              similarity
=================  ==================================  ===========================  =================
``cosine``         ``a.b / (|a| |b|)``                 ``1 - score``                ``score``
``euclidean``      ``-|a - b|^2``                      ``sqrt(-score)``             ``1 / (1 + d)``
``manhattan``      ``-sum|a - b|``                     ``-score``                   ``1 / (1 + d)``
``inner_product``  ``a.b``                             ``sqrt(M^2 + |a|^2 - 2 a.b)``  ``score``
=================  ==================================  ===========================  =================

For ``inner_product`` (maximum inner product search) the distance is the Euclidean
distance after the standard augmentation ``x -> [x, sqrt(M^2 - |x|^2)]``,
``q -> [q, 0]``, where ``M`` is the largest norm among the indexed points: it is
non-negative, a true metric in the augmented space, and ranks exactly as ``-a.b`` does
for each query.

Scores are computed on *prepared* vectors (:func:`prepare`): unit vectors for
``cosine``; for ``euclidean`` and ``manhattan``, vectors minus the index's centre
(:func:`data_center`), which changes no distance and keeps float32 products accurate on
data far from the origin.
"""

import numpy as np
from scipy.spatial.distance import cdist

from ..utils._pages import row_scan, small_pages
from ..utils._validation import check_value_range

__all__ = ["METRICS", "data_center", "prepare", "gathered_scores", "pairwise_scores", "scores_to_distances", "scores_to_similarities"]

METRICS = ("cosine", "euclidean", "manhattan", "inner_product")


#: Metrics that do not change when every point is shifted by the same vector.
TRANSLATION_INVARIANT = ("euclidean", "manhattan")


def data_center(X, metric):
    """The centre an index subtracts from every vector, or None (no centring).

    Float32 squared distances computed as ``|a|^2 - 2 a.b + |b|^2`` lose every digit
    when the points sit far from the origin (features offset by 1e4); centring the data
    first keeps the norms on the scale of the distances, as scikit-learn's
    ``euclidean_distances`` does. Only the translation-invariant metrics (see
    :data:`TRANSLATION_INVARIANT`) are centred.

    The centre is the float64 column mean rounded to a multiple of a power of two near
    a quarter of the data's spread: it centres about as well as the mean, and subtracting it
    from float32 values near it is exact, so that exactly tied distances stay tied.
    Data centred near the origin gets a centre of zeros.

    Examples
    --------
    >>> import numpy as np
    >>> from sksemantic.neighbors._metric import data_center
    >>> data_center(np.array([[1e4, 0.0], [1e4 + 2, 1.0]]), "euclidean")
    array([1.0001e+04, 5.0000e-01])
    >>> data_center(np.array([[1.0, 0.0]]), "cosine") is None
    True
    """
    if metric not in TRANSLATION_INVARIANT:
        return None
    X = np.asarray(X)
    n, d = X.shape
    if n == 0:
        return np.zeros(d, dtype=np.float64)
    # Accumulated in float64 through numpy's buffered cast: no float64 copy of X (nor,
    # for a memory map, all of it mapped at once).
    mean = sum(row_scan(lambda b: b.sum(axis=0, dtype=np.float64), X)) / n
    sample = np.asarray(X[np.linspace(0, n - 1, min(n, 2048)).astype(np.int64)], dtype=np.float64)
    spread = np.sqrt(np.mean((sample - mean) ** 2))
    if not spread > 0:
        # All (sampled) rows equal: the float32 value of one of them centres exactly.
        return sample[0].astype(np.float32).astype(np.float64)
    step = 2.0 ** np.floor(np.log2(spread / 4))
    return np.round(mean / step) * step


def prepare(X, metric, center=None, *, name="X"):
    """Float32, C-contiguous copy of ``X`` in the form the metric scores directly.

    For cosine the rows are L2-normalised (after dividing each by its largest absolute
    value, so that no square overflows or underflows, whatever the scale); zero rows
    stay zero (similarity 0 to every point). For the translation-invariant metrics,
    ``center`` (see :func:`data_center`) is subtracted in float64 before the cast.
    Values that would overflow float32 for the metric raise a ValueError naming
    ``name``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The vectors, raw.
    metric : str
        One of ``METRICS``.
    center : ndarray of shape (n_features,), default=None
        What to subtract for ``euclidean`` and ``manhattan``: an index's ``center_``.
        None (and any other metric) subtracts nothing.
    name : str, default="X"
        The parameter named in error messages.

    Returns
    -------
    X_prep : ndarray of shape (n_samples, n_features), float32
        The prepared vectors, C-contiguous.
    sqnorm : ndarray of shape (n_samples,), float32
        Squared norms of the prepared rows (1, or 0 for zero rows, under cosine).

    Examples
    --------
    >>> import numpy as np
    >>> from sksemantic.neighbors import prepare
    >>> X_prep, sqnorm = prepare(np.array([[3.0, 4.0], [0.0, 0.0]]), "cosine")
    >>> X_prep
    array([[0.6, 0.8],
           [0. , 0. ]], dtype=float32)
    >>> sqnorm
    array([1., 0.], dtype=float32)
    """
    X = np.asarray(X)
    Xp = small_pages(np.empty(X.shape, dtype=np.float32))
    if metric == "cosine":
        scale = np.ones(X.shape[0], dtype=np.float64)
        if X.size:
            # Row max-abs by two reductions (np.abs would copy X).
            top = np.maximum(X.max(axis=1), -X.min(axis=1)).astype(np.float64)
            scale[top > 0] = top[top > 0]
        np.divide(X, scale[:, None], out=Xp, casting="same_kind")
        sqnorm = np.einsum("ij,ij->i", Xp, Xp)
        inv = np.zeros_like(sqnorm)
        nz = sqnorm > 0
        inv[nz] = 1.0 / np.sqrt(sqnorm[nz])
        Xp *= inv[:, None]
        return Xp, nz.astype(np.float32)
    if metric not in TRANSLATION_INVARIANT:
        center = None
    check_value_range(
        X, name=name, norm=1 if metric == "manhattan" else 2, center=center,
        purpose=f"the {metric} metric",
    )
    if center is None:
        Xp[...] = X
    else:
        np.subtract(X, center, out=Xp, casting="same_kind")
    sqnorm = np.einsum("ij,ij->i", Xp, Xp)
    return Xp, sqnorm


def pairwise_scores(A, B, metric, a_sqnorm=None, b_sqnorm=None):
    """Scores between the rows of prepared ``A`` and ``B``; larger means nearer.

    The score of the module table, by matrix products (``manhattan``: by
    :func:`scipy.spatial.distance.cdist`). Euclidean scores are clipped at 0 from
    above, as round-off can push the scores of identical points past it.

    Parameters
    ----------
    A, B : ndarray of shape (n_a, n_features), (n_b, n_features)
        Prepared float32 arrays (see :func:`prepare`).
    metric : str
        One of ``METRICS``.
    a_sqnorm, b_sqnorm : ndarray, default=None
        Squared row norms, needed for ``euclidean``.

    Returns
    -------
    scores : ndarray of shape (n_a, n_b), float32
        ``scores[i, j]`` scores ``A[i]`` against ``B[j]``.

    Examples
    --------
    >>> import numpy as np
    >>> from sksemantic.neighbors import pairwise_scores, prepare
    >>> X, sqnorm = prepare(np.array([[0.0, 0.0], [3.0, 4.0]]), "euclidean")
    >>> pairwise_scores(X, X, "euclidean", sqnorm, sqnorm)  # minus squared distances
    array([[  0., -25.],
           [-25.,   0.]], dtype=float32)
    """
    if metric == "manhattan":
        return -cdist(A, B, "cityblock").astype(np.float32)
    S = A @ B.T
    if metric == "euclidean":
        S *= 2
        S -= a_sqnorm[:, None]
        S -= b_sqnorm[None, :]
        np.minimum(S, 0, out=S)
    return S


def gathered_scores(Q, X, ids, metric, q_sqnorm=None, x_sqnorm=None, max_entries=2**22):
    """Scores between each query row and the indexed rows named in ``ids``.

    Used to re-score candidates, so that every backend reports exact distances.
    ``ids`` has shape (n_queries, k) and no negative entries. Euclidean scores are
    computed from the differences ``q - x``, not from the expansion the matrix products
    use, which loses digits on near pairs. At most ``max_entries`` gathered vector
    entries are held at a time.
    """
    out = np.empty(ids.shape, dtype=np.float32)
    chunk = max(1, max_entries // max(1, ids.shape[1] * Q.shape[1]))
    for s in range(0, len(Q), chunk):
        q = Q[s : s + chunk]
        cand = X[ids[s : s + chunk]]  # (c, k, d)
        if metric in TRANSLATION_INVARIANT:
            cand -= q[:, None, :]
            if metric == "manhattan":
                out[s : s + chunk] = -np.abs(cand).sum(axis=2)
            else:
                out[s : s + chunk] = -np.einsum("qkd,qkd->qk", cand, cand)
            continue
        out[s : s + chunk] = np.einsum("qkd,qd->qk", cand, q)
    return out


def _clip_cosine(scores):
    """Cosine scores clipped to [-1, 1] (round-off puts some just outside); the
    ``-inf`` that marks a missing neighbour is kept."""
    out = np.minimum(scores, 1.0)
    np.maximum(out, -1.0, out=out, where=out > -np.inf)
    return out


def scores_to_distances(scores, metric, q_sqnorm=None, max_sqnorm=None):
    """Convert scores to non-negative distances.

    ``1 - score`` for cosine, ``sqrt(-score)`` for euclidean, ``-score`` for manhattan,
    and for inner_product the Euclidean distance after the augmentation that turns
    maximum inner product search into nearest-neighbour search
    (``sqrt(M^2 + |q|^2 - 2 q.x)``, ``M^2`` the largest squared norm indexed). A
    missing neighbour (score ``-inf``) gets an infinite distance.

    Parameters
    ----------
    scores : array-like of shape (n_queries, k)
        Scores, as an index returns them.
    metric : str
        The index's metric, one of ``METRICS``.
    q_sqnorm : ndarray of shape (n_queries,), default=None
        The prepared queries' squared norms, returned with the scores; needed for
        ``inner_product`` only.
    max_sqnorm : float, default=None
        The largest squared norm among the indexed points (an index's
        ``max_sqnorm_``); needed for ``inner_product`` only.

    Returns
    -------
    distances : ndarray of shape (n_queries, k), float32
        Non-negative distances, in the order of ``scores``.

    Examples
    --------
    >>> from sksemantic.neighbors import scores_to_distances
    >>> scores_to_distances([[-0.0, -4.0, -9.0]], "euclidean")
    array([[0., 2., 3.]], dtype=float32)
    >>> scores_to_distances([[1.0, 0.5]], "cosine")
    array([[0. , 0.5]], dtype=float32)
    """
    scores = np.asarray(scores, dtype=np.float32)
    if metric == "cosine":
        d = 1.0 - _clip_cosine(scores)
    elif metric == "euclidean":
        d = np.sqrt(np.maximum(-scores, 0))
    elif metric == "manhattan":
        d = -scores
    elif metric == "inner_product":
        d = np.sqrt(np.maximum(max_sqnorm + q_sqnorm[:, None] - 2.0 * scores, 0))
    else:  # pragma: no cover - guarded by parameter validation
        raise ValueError(f"Unknown metric {metric!r}.")
    return np.maximum(d, 0, out=d).astype(np.float32, copy=False)


def scores_to_similarities(scores, metric):
    """Convert scores to similarity weights (larger is more similar).

    The score itself for cosine (clipped to [-1, 1]) and inner_product;
    ``1 / (1 + distance)`` for euclidean and manhattan, in (0, 1].

    Parameters
    ----------
    scores : array-like of shape (n_queries, k)
        Scores, as an index returns them.
    metric : str
        The index's metric, one of ``METRICS``.

    Returns
    -------
    similarities : ndarray of shape (n_queries, k), float32
        Similarities, in the order of ``scores``.

    Examples
    --------
    >>> from sksemantic.neighbors import scores_to_similarities
    >>> scores_to_similarities([[-0.0, -1.0, -9.0]], "euclidean")
    array([[1.  , 0.5 , 0.25]], dtype=float32)
    """
    scores = np.asarray(scores, dtype=np.float32)
    if metric == "cosine":
        return _clip_cosine(scores)
    if metric == "inner_product":
        return scores.copy()
    if metric == "euclidean":
        return 1.0 / (1.0 + np.sqrt(np.maximum(-scores, 0)))
    return 1.0 / (1.0 + np.maximum(-scores, 0))
