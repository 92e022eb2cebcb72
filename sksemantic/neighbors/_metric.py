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
"""

import numpy as np
from scipy.spatial.distance import cdist

__all__ = ["METRICS", "prepare", "pairwise_scores", "scores_to_distances", "scores_to_similarities"]

METRICS = ("cosine", "euclidean", "manhattan", "inner_product")


def prepare(X, metric):
    """Float32, C-contiguous copy of ``X`` in the form the metric scores directly.

    For cosine the rows are L2-normalised; zero rows stay zero (similarity 0 to every
    point). Returns the prepared array and the squared norms of its rows.
    """
    Xp = np.array(X, dtype=np.float32, order="C", copy=True)
    sqnorm = np.einsum("ij,ij->i", Xp, Xp)
    if metric == "cosine":
        norms = np.sqrt(sqnorm)
        nz = norms > 0
        Xp[nz] /= norms[nz, None]
        sqnorm = nz.astype(np.float32)
    return Xp, sqnorm


def pairwise_scores(A, B, metric, a_sqnorm=None, b_sqnorm=None):
    """Scores between the rows of prepared ``A`` and ``B``; larger means nearer.

    Parameters
    ----------
    A, B : ndarray of shape (n_a, n_features), (n_b, n_features)
        Prepared float32 arrays (see :func:`prepare`).
    metric : str
        One of :data:`METRICS`.
    a_sqnorm, b_sqnorm : ndarray, default=None
        Squared row norms, needed for ``euclidean``.

    Returns
    -------
    scores : ndarray of shape (n_a, n_b), float32
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


def gathered_scores(Q, X, ids, metric, q_sqnorm=None, x_sqnorm=None, chunk=4096):
    """Scores between each query row and the indexed rows named in ``ids``.

    Used to re-score candidates found by an approximate backend, so that every backend
    reports exact distances. ``ids`` has shape (n_queries, k) and no negative entries.
    """
    out = np.empty(ids.shape, dtype=np.float32)
    for s in range(0, len(Q), chunk):
        q = Q[s : s + chunk]
        cand = X[ids[s : s + chunk]]  # (c, k, d)
        if metric == "manhattan":
            out[s : s + chunk] = -np.abs(cand - q[:, None, :]).sum(axis=2)
            continue
        dots = np.einsum("qkd,qd->qk", cand, q)
        if metric == "euclidean":
            dots = 2 * dots - q_sqnorm[s : s + chunk, None] - x_sqnorm[ids[s : s + chunk]]
            np.minimum(dots, 0, out=dots)
        out[s : s + chunk] = dots
    return out


def scores_to_distances(scores, metric, q_sqnorm=None, max_sqnorm=None):
    """Convert scores to non-negative distances (see the module table)."""
    scores = np.asarray(scores, dtype=np.float32)
    if metric == "cosine":
        d = 1.0 - scores
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
    """Convert scores to similarity weights (see the module table)."""
    scores = np.asarray(scores, dtype=np.float32)
    if metric in ("cosine", "inner_product"):
        return scores.copy()
    if metric == "euclidean":
        return 1.0 / (1.0 + np.sqrt(np.maximum(-scores, 0)))
    return 1.0 / (1.0 + np.maximum(-scores, 0))
