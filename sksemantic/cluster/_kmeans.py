"""The k-means kernel shared by the IVF neighbour index and the residual quantisers.

Lloyd's algorithm with every distance computed as one large BLAS matrix product per
chunk of rows (``|c|^2 - 2 X C^T``), centroid updates as a sparse one-hot product, and
k-means++ seeding (scikit-learn's ``kmeans_plusplus``) on a subsample. Nothing loops over
samples in Python; the loop is over iterations and row chunks only.
"""

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_random_state

from ..utils import Progress, run_spans

__all__ = ["kmeans", "nearest_centroid", "centroid_sums", "init_centers"]


def _row_chunks(n_rows, n_cols, budget_bytes=256 * 2**20):
    """Row-chunk size so that a float32 (chunk, n_cols) block stays within the budget."""
    return int(max(256, min(n_rows, budget_bytes // max(4 * n_cols, 1))))


def nearest_centroid(X, centers, *, centers_sqnorm=None, chunk_size=None, n_jobs=None):
    """Index of, and squared distance to, the nearest centre for every row of ``X``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Points, float32 or float64.
    centers : ndarray of shape (n_clusters, n_features)
        Centres, same dtype as ``X``.
    centers_sqnorm : ndarray of shape (n_clusters,), default=None
        Precomputed squared norms of ``centers``.
    chunk_size : int, default=None
        Rows per matrix product; chosen to bound memory when None.
    n_jobs : int, default=None
        Threads (None: every core). The result does not depend on it.

    Returns
    -------
    labels : ndarray of shape (n_samples,), dtype int64
    sq_dist : ndarray of shape (n_samples,)
        Squared Euclidean distance to the chosen centre (clipped at 0).
    """
    n, k = X.shape[0], centers.shape[0]
    if centers_sqnorm is None:
        centers_sqnorm = np.einsum("ij,ij->i", centers, centers)
    chunk = chunk_size or min(_row_chunks(n, k, 32 * 2**20), max(256, -(-n // 2)))
    labels = np.empty(n, dtype=np.int64)
    sq_dist = np.empty(n, dtype=X.dtype)

    def work(start, stop):
        block = X[start:stop]
        d = block @ centers.T
        d *= -2
        d += centers_sqnorm
        lab = np.argmin(d, axis=1)
        labels[start:stop] = lab
        sq_dist[start:stop] = d[np.arange(len(lab)), lab] + np.einsum("ij,ij->i", block, block)

    run_spans(work, n, chunk, n_jobs)
    np.maximum(sq_dist, 0, out=sq_dist)
    return labels, sq_dist


def centroid_sums(X, labels, n_clusters):
    """Per-cluster sums and counts of ``X`` by ``labels`` (a sparse one-hot product)."""
    n = X.shape[0]
    onehot = sp.csr_matrix(
        (np.ones(n, dtype=X.dtype), (labels, np.arange(n))), shape=(n_clusters, n)
    )
    sums = np.asarray(onehot @ X)
    counts = np.bincount(labels, minlength=n_clusters)
    return sums, counts


def _kmeans_plusplus(X, n_clusters, rng, n_local_trials=None):
    """Greedy k-means++ (as scikit-learn's ``kmeans_plusplus``), one small GEMM per step.

    scikit-learn's version spends most of its time in per-step overhead at hundreds of
    centres on wide data (about a minute for 256 centres on 10,000 x 768 here); this one
    computes each step's candidate distances as one matrix product and updates the
    closest-distance array in place, about 100 times faster.
    """
    n = X.shape[0]
    if n_local_trials is None:
        n_local_trials = 2 + int(np.log(n_clusters))
    x_sq = np.einsum("ij,ij->i", X, X)
    centers = np.empty((n_clusters, X.shape[1]), dtype=X.dtype)
    first = rng.randint(n)
    centers[0] = X[first]
    closest = np.maximum(x_sq - 2 * (X @ X[first]) + x_sq[first], 0)
    for c in range(1, n_clusters):
        cum = np.cumsum(closest, dtype=np.float64)
        total = cum[-1]
        if total <= 0:  # fewer distinct points than centres: any point will do
            cand = rng.randint(n, size=n_local_trials)
        else:
            cand = np.searchsorted(cum, rng.uniform(size=n_local_trials) * total)
            cand = np.minimum(cand, n - 1)
        d = X[cand] @ X.T
        d *= -2
        d += x_sq
        d += x_sq[cand, None]
        np.maximum(d, 0, out=d)
        np.minimum(d, closest, out=d)
        best = int(np.argmin(d.sum(axis=1, dtype=np.float64)))
        closest = d[best]
        centers[c] = X[cand[best]]
    return centers


def _split_large(centers, small, counts, sq_dist, labels, rng):
    """Move the ``small`` centres next to large ones: ``c + delta`` and ``c - delta``."""
    weights = counts.astype(np.float64)
    weights[small] = 0
    parents = rng.choice(len(counts), size=small.size, p=weights / weights.sum())
    n_features = centers.shape[1]
    spread = np.bincount(labels, weights=sq_dist, minlength=len(counts)) / np.maximum(counts, 1)
    scale = 1e-2 * np.sqrt(spread[parents] / n_features)
    delta = rng.standard_normal((small.size, n_features)) * scale[:, None]
    # A parent chosen several times gets several different steps; it keeps its own
    # centre, and the new centres surround it, so its points split between them.
    centers[small] = centers[parents] + delta.astype(centers.dtype)


def init_centers(X, n_clusters, *, init="k-means++", init_size=None, random_state=None):
    """Initial centres: k-means++ or random rows of a subsample, or a given array.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Data.
    n_clusters : int
        Number of centres.
    init : {"k-means++", "random"} or ndarray, default="k-means++"
        Seeding method, or the centres themselves.
    init_size : int, default=None
        Rows used for seeding; ``min(n_samples, max(40 * n_clusters, 10_000))`` when None.
    random_state : int, RandomState instance or None, default=None
        Seed for the subsample and the seeding.

    Returns
    -------
    centers : ndarray of shape (n_clusters, n_features), dtype of ``X``
    """
    rng = check_random_state(random_state)
    n = X.shape[0]
    if isinstance(init, np.ndarray):
        return np.array(init, dtype=X.dtype, copy=True)
    size = init_size or min(n, max(40 * n_clusters, 10_000))
    sample = X if size >= n else X[np.sort(rng.choice(n, size, replace=False))]
    if init == "k-means++":
        return _kmeans_plusplus(sample, n_clusters, rng).astype(X.dtype, copy=False)
    if init == "random":
        return sample[rng.choice(sample.shape[0], n_clusters, replace=False)].copy()
    raise ValueError(f"init must be 'k-means++', 'random' or an array, got {init!r}.")


def kmeans(
    X,
    n_clusters,
    *,
    max_iter=20,
    tol=1e-4,
    init="k-means++",
    init_size=None,
    random_state=None,
    chunk_size=None,
    verbose=0,
    label="k-means",
    split_small=None,
):
    """Lloyd's k-means with BLAS distance computations.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Data, float32 or float64 (float32 is about twice as fast).
    n_clusters : int
        Number of clusters; must not exceed the number of samples.
    max_iter : int, default=20
        Maximum number of Lloyd iterations.
    tol : float, default=1e-4
        Stop when the summed squared centre shift falls below ``tol`` times the mean
        per-feature variance of ``X`` (scikit-learn's criterion).
    init : {"k-means++", "random"} or ndarray, default="k-means++"
        Seeding. k-means++ runs on a subsample of ``init_size`` rows.
    init_size : int, default=None
        Rows used for seeding; ``min(n_samples, max(40 * n_clusters, 10_000))`` when None.
    random_state : int, RandomState instance or None, default=None
        Seed for the subsample and the seeding.
    chunk_size : int, default=None
        Rows per matrix product.
    verbose : int, default=0
        Print progress when > 0.
    label : str, default="k-means"
        Name used in progress lines.
    split_small : float, default=None
        When None, empty clusters are re-seeded at the points farthest from their
        centres. When a fraction ``f``, every cluster with fewer than ``f * n / k``
        points (and at least the empty ones) is re-seeded by splitting a large cluster,
        chosen with probability proportional to its size, into two centres a small
        random step apart (as faiss does). On high-dimensional, nearly isotropic data
        (the deep levels of a residual quantiser) Lloyd's iterations otherwise let one
        small-norm centroid absorb almost every point.

    Returns
    -------
    centers : ndarray of shape (n_clusters, n_features)
    labels : ndarray of shape (n_samples,)
    inertia : float
        Sum of squared distances to the nearest centre.
    n_iter : int
        Lloyd iterations run.

    Examples
    --------
    >>> import numpy as np
    >>> from sksemantic.cluster import kmeans
    >>> X = np.r_[np.zeros((5, 2)), np.ones((5, 2))].astype(np.float32)
    >>> centers, labels, inertia, n_iter = kmeans(X, 2, random_state=0)
    >>> sorted(centers.sum(axis=1).round(3).tolist())
    [0.0, 2.0]
    """
    rng = check_random_state(random_state)
    n = X.shape[0]
    if n_clusters > n:
        raise ValueError(f"n_clusters={n_clusters} must not exceed n_samples={n}.")
    centers = init_centers(X, n_clusters, init=init, init_size=init_size, random_state=rng)
    variance = float(np.mean(np.var(X, axis=0))) if n > 1 else 0.0
    threshold = tol * variance
    progress = Progress(max_iter, label, verbose)
    labels = None
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 (used after the loop)
        labels, sq_dist = nearest_centroid(X, centers, chunk_size=chunk_size)
        sums, counts = centroid_sums(X, labels, n_clusters)
        new_centers = centers.copy()
        nonempty = counts > 0
        new_centers[nonempty] = sums[nonempty] / counts[nonempty, None]
        if split_small is None:
            empty = np.flatnonzero(~nonempty)
            if empty.size:
                # Re-seed empty clusters at the points farthest from their centres.
                far = np.argpartition(sq_dist, -empty.size)[-empty.size :]
                new_centers[empty] = X[far]
        else:
            empty = np.flatnonzero(counts < max(1.0, split_small * n / n_clusters))
            if empty.size and empty.size < n_clusters:
                _split_large(new_centers, empty, counts, sq_dist, labels, rng)
        shift = float(np.sum((new_centers - centers) ** 2))
        centers = new_centers
        progress.update()
        if shift <= threshold and not empty.size:
            break
    labels, sq_dist = nearest_centroid(X, centers, chunk_size=chunk_size)
    return centers, labels, float(sq_dist.sum(dtype=np.float64)), n_iter
