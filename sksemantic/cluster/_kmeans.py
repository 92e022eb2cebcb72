"""The k-means kernels shared by the IVF neighbour index and the residual quantisers.

Seeding (k-means++ as scikit-learn's ``kmeans_plusplus``, on a subsample), restarts,
the projected start and the public :func:`kmeans`; Lloyd's iterations themselves are
the one driver of :mod:`._lloyd`, on numpy/BLAS or torch. Distances are one large
matrix product per chunk of rows (``|c|^2 - 2 X C^T``) and centroid updates a sparse
one-hot product; nothing loops over samples in Python.
"""

import dataclasses
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import scipy.linalg
from sklearn.utils import check_array, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from ..utils import ParallelPool, Progress, effective_n_jobs, parallel_map, run_spans
from ._lloyd import (
    KMeansResult,
    LloydOptions,
    NumpyBackend,
    _cache_rows,
    add_in_order,
    assign_blocks,
    lloyd,
    make_backend,
    onehot_sums,
)

__all__ = [
    "KMeansResult",
    "auto_pca_components",
    "centroid_sums",
    "init_centers",
    "kmeans",
    "nearest_centroid",
    "principal_directions",
]


def nearest_centroid(X, centers, *, offsets=None, n_jobs=None):
    """Index of, and squared distance to, the nearest centre for every row of ``X``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Points.
    centers : array-like of shape (n_clusters, n_features)
        Centres.
    offsets : array-like of shape (n_clusters,), default=None
        Per-centre offsets subtracted before the choice: the label is
        ``argmin_j(|x - c_j|^2 - offsets_j)`` (balanced assignments); the distance
        returned is still the true one to the chosen centre.
    n_jobs : int, default=None
        Threads through joblib; an active joblib backend is honoured (None: every
        core). The result does not depend on it.

    Returns
    -------
    labels : ndarray of shape (n_samples,)
        The nearest centre of each row.
    sqdist : ndarray of shape (n_samples,)
        Squared Euclidean distance to it.

    Examples
    --------
    >>> from sksemantic.cluster import nearest_centroid
    >>> labels, sqdist = nearest_centroid([[0.0, 0.1], [2.0, 2.0]], [[0.0, 0.0], [2.0, 2.1]])
    >>> labels.tolist(), sqdist.round(2).tolist()
    ([0, 1], [0.01, 0.01])
    """
    X = check_array(X, dtype=[np.float64, np.float32], order="C", input_name="X")
    centers = check_array(centers, dtype=X.dtype, order="C", input_name="centers")
    if centers.shape[1] != X.shape[1]:
        raise ValueError(
            f"centers has {centers.shape[1]} features but X has {X.shape[1]}: they must match."
        )
    if offsets is not None:
        offsets = check_array(offsets, dtype=X.dtype, ensure_2d=False, input_name="offsets")
        if offsets.shape != (len(centers),):
            raise ValueError(
                f"offsets must have shape (n_clusters,) = ({len(centers)},), got {offsets.shape}."
            )
    return _nearest_centroid(X, centers, offsets=offsets, n_jobs=n_jobs)


def _nearest_centroid(
    X, centers, *, centers_sqnorm=None, X_sqnorm=None, chunk_size=None, n_jobs=None,
    with_sums=False, offsets=None, n_best=0,
):
    """Index of, and squared distance to, the nearest centre for every row of ``X``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Points, float32 or float64.
    centers : ndarray of shape (n_clusters, n_features)
        Centres, same dtype as ``X``.
    centers_sqnorm : ndarray of shape (n_clusters,), default=None
        Precomputed squared norms of ``centers``.
    X_sqnorm : ndarray of shape (n_samples,), default=None
        Precomputed squared norms of the rows of ``X`` (Lloyd's iterations reuse them).
    chunk_size : int, default=None
        Rows per matrix product; chosen to bound memory when None.
    n_jobs : int, default=None
        Threads through joblib; an active joblib backend is honoured (None: every
        core). The result does not depend on it.
    with_sums : bool, default=False
        Also return the per-cluster sums and counts of the rows (the k-means update),
        computed block by block while each block is still in cache, instead of in a
        second pass over ``X``.
    offsets : ndarray of shape (n_clusters,), default=None
        Per-centre offsets subtracted before the choice: the label is
        ``argmin_j(|x - c_j|^2 - offsets_j)`` (balanced assignments); the distance
        returned is still the true one to the chosen centre.

    n_best : int, default=0
        Also return each row's ``n_best`` nearest centres, nearest first (from the
        same product; an IVF index's probes).

    Returns
    -------
    labels : ndarray of shape (n_samples,), dtype int64
        Rows whose two best centres are within float rounding of each other are
        decided exactly, in float64 (as every k-means pass does).
    sq_dist : ndarray of shape (n_samples,)
        Squared Euclidean distance to the chosen centre (clipped at 0).
    sums, counts : ndarray of shape (n_clusters, n_features) and (n_clusters,)
        Only with ``with_sums=True``.
    near : ndarray of shape (n_samples, n_best), int32
        Only with ``n_best`` (and not ``with_sums``).
    """
    k = centers.shape[0]
    shift = None
    if centers_sqnorm is not None:
        shift = centers_sqnorm if offsets is None else centers_sqnorm - offsets
        shift = np.asarray(shift, dtype=X.dtype)
    out = assign_blocks(
        X, centers, offsets=offsets, x_sq=X_sqnorm, shift=shift, chunk_size=chunk_size,
        n_jobs=n_jobs, with_dist=True, with_sums=with_sums, n_best=0 if with_sums else n_best,
    )
    if not with_sums:
        return out
    labels, sq_dist, sums = out
    return labels, sq_dist, sums, np.bincount(labels, minlength=k)


def centroid_sums(X, labels, n_clusters, *, n_jobs=None):
    """Per-cluster sums and counts of ``X`` by ``labels`` (sparse one-hot products).

    Rows are taken in fixed spans, one product each, shared among ``n_jobs`` threads;
    the partial sums are added in span order, so the result does not depend on
    ``n_jobs``.
    """
    n = X.shape[0]
    step = _cache_rows(X.shape[1])
    parts = run_spans(
        lambda a, b: onehot_sums(X[a:b], labels[a:b], n_clusters), n, step,
        n_jobs if n * X.shape[1] >= 2**22 else 1,
    )
    return add_in_order(parts), np.bincount(labels, minlength=n_clusters)


#: Centres that one pass of k-means++ over the rows samples candidates for (see
#: :func:`_kmeans_plusplus`), and the most bytes of candidate distances a pass holds.
SEEDING_BATCH = 32
_SEEDING_BYTES = 2**28


def _kmeans_plusplus(X, n_clusters, rng, n_local_trials=None, n_jobs=None,
                     batch=SEEDING_BATCH):
    """Greedy k-means++, ``batch`` centres per pass over the rows.

    Greedy k-means++ (scikit-learn's ``kmeans_plusplus``) draws ``n_local_trials``
    candidates with probability proportional to the squared distance to the closest
    centre so far and keeps the one that lowers the potential (the sum of those
    distances) most. One centre per pass makes it a sequence of thin matrix products,
    each reading all of ``X``: memory-bound. Here each pass draws the candidates of
    up to ``batch`` centres at once (never more than it has already chosen, so the
    first passes add 1, 1, 2, 4, ... centres), from the distances at the start of the
    pass, and scores them all in one matrix product; the centres are then chosen one after
    another, each from its own candidates by the potential updated with the centres
    chosen before it. A candidate is kept with probability (its distance now / its
    distance at the start of the pass), so the kept ones are drawn as from the
    distances now (rejection sampling) and the seeding is that of one centre per pass;
    a centre whose candidates are all rejected draws again. The rows are split between
    threads, each running single-threaded BLAS on its span; the result does not depend
    on them.
    """
    n = X.shape[0]
    if n_local_trials is None:
        n_local_trials = 2 + int(np.log(n_clusters))
    itemsize = np.dtype(X.dtype).itemsize
    batch = int(max(1, min(batch, _SEEDING_BYTES // (itemsize * 2 * n_local_trials * n))))
    x_sq = np.einsum("ij,ij->i", X, X)
    n_threads = min(effective_n_jobs(n_jobs, local=True), max(1, n // 4096))
    bounds = np.linspace(0, n, n_threads + 1).astype(int)
    spans = list(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True))

    def sq_distances(rows, pool):
        """Squared distances, shape (len(rows), n), from rows ``rows`` of X to all."""
        C = X[rows]
        c_sq = x_sq[rows, None]
        out = np.empty((len(rows), n), dtype=X.dtype)

        def work(a, b):
            block = out[:, a:b]
            np.matmul(C, X[a:b].T, out=block)
            block *= -2
            block += x_sq[a:b]
            block += c_sq
            np.maximum(block, 0, out=block)

        pool.map(work, spans)
        return out

    chosen = np.empty(n_clusters, dtype=np.int64)
    # One pool for every pass; the spans are written into ``out`` in place: threads of
    # this process (shared memory).
    with ParallelPool(n_threads, shared=True) as pool:
        chosen[0] = rng.randint(n)
        closest = sq_distances(chosen[:1], pool)[0]
        trial = np.empty((n_local_trials, n), dtype=X.dtype)

        def draw(size):
            cum = np.cumsum(closest, dtype=np.float64)
            if cum[-1] <= 0:  # fewer distinct points than centres: any point will do
                return rng.randint(n, size=size)
            cand = np.searchsorted(cum, rng.uniform(size=size) * cum[-1])
            return np.minimum(cand, n - 1)

        done, rejected = 1, 1.0
        while done < n_clusters:
            m = min(batch, done, n_clusters - done)
            # Spare candidates for the rejections below: a share of the trials no larger
            # than the share of centres the pass adds (by which the potential can fall
            # within it), nor than twice the share the previous pass rejected.
            spare = n_local_trials * min((m - 1) / done, 2 * rejected)
            per = n_local_trials + int(np.ceil(spare))
            cand = draw(m * per)
            tried = kept_total = 0
            d = sq_distances(cand, pool)
            start = closest.copy()  # the distances the candidates were drawn from
            for g in range(m):
                rows = slice(g * per, g * per + n_local_trials)
                if g:
                    # Drawn in proportion to the distances at the start of the pass, a
                    # candidate is kept with probability (distance now / distance then):
                    # the kept ones are drawn as from the distances now, as k-means++
                    # one centre per pass would (rejection sampling). The first
                    # ``n_local_trials`` kept are this centre's candidates.
                    own = cand[g * per : (g + 1) * per]
                    kept = rng.uniform(size=per) * start[own] < closest[own]
                    tried, kept_total = tried + per, kept_total + int(kept.sum())
                    rows = np.flatnonzero(kept)[:n_local_trials] + g * per
                own = cand[rows]
                if own.size == 0:
                    # Every candidate fell near a centre chosen earlier in this pass:
                    # draw this centre's candidates again, from the distances now.
                    own = draw(n_local_trials)
                    part = trial
                    np.minimum(sq_distances(own, pool), closest, out=part)
                else:
                    part = trial[: own.size]
                    np.minimum(d[rows], closest, out=part)
                potentials = part.sum(axis=1, dtype=np.float64)
                best = int(np.argmin(potentials))
                closest = part[best].copy()
                chosen[done] = own[best]
                done += 1
            rejected = 1.0 - kept_total / tried if tried else rejected
    return X[chosen]


#: Rows per cluster that k-means++ seeds from (at least 10,000 rows in all): the
#: rows per codeword :class:`~sksemantic.quantization.RQKMeansEncoder` trains on. Fewer
#: left levels about 0.5% above scikit-learn's (whose seeding sees every row) on blobs
#: with several per codeword (benchmarks/RESULTS_rqkmeans.md).
SEEDING_ROWS_PER_CLUSTER = 512


def seeding_size(n_samples, n_clusters):
    """Rows that k-means++ seeds from by default: ``min(n_samples, max(512 *
    n_clusters, 10_000))``."""
    return int(min(n_samples, max(SEEDING_ROWS_PER_CLUSTER * n_clusters, 10_000)))


def init_centers(
    X, n_clusters, *, init="k-means++", init_size=None, random_state=None, n_jobs=None
):
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
        Rows used for seeding; ``min(n_samples, max(512 * n_clusters, 10_000))`` when
        None.
    random_state : int, RandomState instance or None, default=None
        Seed for the subsample and the seeding.
    n_jobs : int, default=None
        Threads for k-means++ (None: every core), through joblib; an active joblib
        backend is honoured. The result does not depend on it.

    Returns
    -------
    centers : ndarray of shape (n_clusters, n_features), dtype of ``X``
    """
    rng = check_random_state(random_state)
    n = X.shape[0]
    if isinstance(init, np.ndarray):
        return np.array(init, dtype=X.dtype, copy=True)
    size = init_size or seeding_size(n, n_clusters)
    sample = X if size >= n else X[np.sort(rng.choice(n, size, replace=False))]
    if init == "k-means++":
        return _kmeans_plusplus(sample, n_clusters, rng, n_jobs=n_jobs).astype(
            X.dtype, copy=False
        )
    if init == "random":
        return sample[rng.choice(sample.shape[0], n_clusters, replace=False)].copy()
    raise ValueError(f"init must be 'k-means++', 'random' or an array, got {init!r}.")


class SampleMoments:
    """First and second moments of a fixed random sample of rows, kept up to date as
    the rows are quantised away: the principal directions of residuals, level by level.

    The moments are accumulated in float64 from one BLAS product. :meth:`subtract`
    updates them exactly for ``X - centers[labels]`` from the cluster sums of the
    sample rows (``R'^T R' = R^T R - S^T C - C^T S + C^T diag(n) C``), which costs a
    sparse product over the sample instead of a new covariance product.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Rows.
    sample_size : int, default=32768
        Most rows in the sample (a random subset beyond that).
    random_state : int, RandomState instance or None, default=None
        Seed for the subset.
    """

    def __init__(self, X, *, sample_size=2**15, random_state=None):
        rng = check_random_state(random_state)
        n = X.shape[0]
        self.rows = None if n <= sample_size else np.sort(rng.choice(n, sample_size, replace=False))
        sample = X if self.rows is None else X[self.rows]
        self.n = sample.shape[0]
        self.sum = (np.ones(self.n, dtype=X.dtype) @ sample).astype(np.float64)
        self.second = (sample.T @ sample).astype(np.float64)

    def covariance(self):
        """The (biased) covariance of the sample rows, float64."""
        mean = self.sum / self.n
        return self.second / self.n - np.outer(mean, mean)

    def directions(self, n_components, dtype=np.float64):
        """The top ``n_components`` eigenvectors of the covariance, as columns."""
        cov = self.covariance()
        d = cov.shape[0]
        if not 1 <= int(n_components) <= d:
            raise ValueError(
                f"n_components={n_components} must be between 1 and n_features={d}."
            )
        _, vectors = scipy.linalg.eigh(cov, subset_by_index=[d - n_components, d - 1])
        return np.ascontiguousarray(vectors[:, ::-1], dtype=dtype)

    def subtract(self, X, centers, labels, n_jobs=None):
        """Update for ``X - centers[labels]``; ``X`` is the matrix the sample was drawn
        from, before the subtraction. ``n_jobs`` threads sum the sample's clusters."""
        sample = X if self.rows is None else X[self.rows]
        sample_labels = labels if self.rows is None else labels[self.rows]
        sums, counts = centroid_sums(sample, sample_labels, centers.shape[0], n_jobs=n_jobs)
        C = centers.astype(np.float64)
        cross = sums.astype(np.float64).T @ C
        self.second += (C.T * counts) @ C - cross - cross.T
        self.sum -= counts @ C


@validate_params(
    {
        "X": ["array-like"],
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "sample_size": [Interval(Integral, 2, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def principal_directions(X, n_components, *, sample_size=2**15, random_state=None):
    """The top principal directions of the rows of ``X``.

    Eigenvectors of the covariance of at most ``sample_size`` random rows: one BLAS
    product and scipy's ``eigh`` for the top eigenvalues only. This is what
    scikit-learn's ``PCA(svd_solver="covariance_eigh")`` computes, without a float64
    copy of the rows.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Data, float32 or float64.
    n_components : int
        Directions to return, at most ``n_features``.
    sample_size : int, default=32768
        Most rows used for the covariance (a random subset beyond that).
    random_state : int, RandomState instance or None, default=None
        Seed for the subset.

    Returns
    -------
    directions : ndarray of shape (n_features, n_components)
        Orthonormal columns in the dtype of ``X``, largest variance first.

    Examples
    --------
    >>> import numpy as np
    >>> from sksemantic.cluster import principal_directions
    >>> X = np.random.default_rng(0).normal(size=(500, 3)) * [5.0, 1.0, 0.1]
    >>> np.abs(principal_directions(X, 1)[:, 0]).round(2).tolist()
    [1.0, 0.0, 0.0]
    """
    X = check_array(X, dtype=[np.float64, np.float32], ensure_min_samples=2, input_name="X")
    moments = SampleMoments(X, sample_size=sample_size, random_state=random_state)
    return moments.directions(n_components, X.dtype)


@validate_params(
    {
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "n_features": [Interval(Integral, 1, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def auto_pca_components(n_clusters, n_features):
    """Principal directions for a projected k-means start (``pca_components="auto"``).

    ``max(4 * n_clusters, n_features // 6)``: 128 of 768 features at 10 or 32
    clusters, 64 of 384. None (no projection) when that is more than a third of
    ``n_features``: Lloyd's passes in the projection would then cost too large a share
    of full ones to pay for the polish that follows (at 256 clusters on 768 features).

    Parameters
    ----------
    n_clusters : int
        Clusters of the k-means.
    n_features : int
        Features of the data.

    Returns
    -------
    n_components : int or None

    Examples
    --------
    >>> from sksemantic.cluster import auto_pca_components
    >>> auto_pca_components(10, 768), auto_pca_components(256, 768)
    (128, None)
    """
    m = max(4 * int(n_clusters), int(n_features) // 6)
    return m if 3 * m <= n_features else None


def _projects(pca_components, n_features):
    """Whether ``pca_components`` (None, an int or a basis) asks for a projection."""
    if isinstance(pca_components, np.ndarray):
        if pca_components.ndim != 2 or pca_components.shape[0] != n_features:
            raise ValueError(
                f"pca_components as an array must have shape (n_features={n_features}, "
                f"n_components), got {pca_components.shape}."
            )
        return True
    return pca_components is not None and int(pca_components) < n_features


@dataclass(frozen=True)
class _Run:
    """Where and how a k-means runs: the backend, its device, block size and threads,
    and the progress reporting (everything but the algorithm's own options)."""

    backend: str = "numpy"
    device: str = "cpu"
    chunk_size: int | None = None
    n_jobs: int | None = None
    verbose: int = 0
    label: str = "k-means"

    def make(self, X):
        return make_backend(
            X, self.backend, device=self.device, chunk_size=self.chunk_size, n_jobs=self.n_jobs
        )

    def progress(self, max_iter, suffix=""):
        return Progress(max_iter, self.label + suffix, self.verbose)


def _projected_start(X, n_clusters, basis, options, *, rng, n_init, init, init_size, run):
    """Centres from k-means run to convergence (``tol / 10``) on ``X`` projected onto
    ``basis`` (an int: that many top principal directions), as the means of the rows of
    ``X`` by the labels found there."""
    if not isinstance(basis, np.ndarray):
        basis = principal_directions(X, int(basis), random_state=rng)
    basis = basis.astype(X.dtype, copy=False)
    Z = X @ basis
    z_init = init @ basis if isinstance(init, np.ndarray) else init
    z_run = dataclasses.replace(run, label=f"{run.label} (top {basis.shape[1]} principal directions)")
    z_centers, labels, _, _ = _kmeans(
        Z, n_clusters, options.replace(tol=options.tol / 10), rng=rng, n_init=n_init,
        init=z_init, init_size=init_size, run=z_run,
    )
    sums, counts = centroid_sums(X, labels, n_clusters, n_jobs=run.n_jobs)
    centers = (z_centers @ basis.T).astype(X.dtype)  # kept only by empty clusters
    filled = counts > 0
    centers[filled] = sums[filled] / counts[filled, None]
    return centers


def _seed(X, n_clusters, options, *, rng, n_init=1, init="k-means++", init_size=None,
          pca_components=None, run=None):
    """Starting centres: the best of ``n_init`` seedings, each refined by Lloyd on one
    subsample of ``X`` (see ``n_init`` in :func:`kmeans`), or a projected start.

    The candidates run on the host (numpy backend), side by side, one per thread with
    single-threaded BLAS: on a subsample their products are too small for BLAS to use
    several cores well. Each draws from its own seed, taken from ``rng`` before any
    starts, so the result does not depend on the threads. When the subsample is not all
    of ``X``, they stop at ``10 * tol`` (the winner is refined on every row anyway).

    Returns ``(centers, result)``: ``result`` is the winner's :class:`KMeansResult` on
    all of ``X`` when the subsample is all of ``X`` (nothing left to refine), else None.
    """
    run = run or _Run()
    n = X.shape[0]
    if _projects(pca_components, X.shape[1]):
        centers = _projected_start(
            X, n_clusters, pca_components, options, rng=rng, n_init=n_init, init=init,
            init_size=init_size, run=run,
        )
        return centers, None
    if n_init <= 1 or isinstance(init, np.ndarray):
        centers = init_centers(X, n_clusters, init=init, init_size=init_size, random_state=rng,
                               n_jobs=run.n_jobs)
        return centers, None
    size = init_size or seeding_size(n, n_clusters)
    whole = size >= n
    sample = X if whole else X[np.sort(rng.choice(n, size, replace=False))]
    seeds = rng.randint(np.iinfo(np.int32).max, size=n_init)
    # Candidates that the full data will refine only need ranking: a looser tol (10x)
    # ranks them alike at a fraction of the iterations.
    rank_options = options if whole else options.replace(tol=10 * options.tol)

    def candidate(i):
        cand_rng = np.random.RandomState(seeds[i])
        start = init_centers(
            sample, n_clusters, init=init, init_size=size, random_state=cand_rng, n_jobs=1
        )
        backend = NumpyBackend(sample, chunk_size=run.chunk_size, n_jobs=1)
        progress = run.progress(options.max_iter, f" (seeding {i + 1}/{n_init})")
        return lloyd(backend, start, rank_options, rng=cand_rng, progress=progress)

    results = parallel_map(candidate, [(i,) for i in range(n_init)], run.n_jobs)
    best = min(range(n_init), key=lambda i: (results[i].inertia, i))
    return results[best].centers, (results[best] if whole else None)


def _kmeans(X, n_clusters, options, *, rng, n_init=1, init="k-means++", init_size=None,
            pca_components=None, run=None):
    """:func:`kmeans` without the checks: ``X`` is a C-contiguous float array."""
    run = run or _Run()
    centers, done = _seed(
        X, n_clusters, options, rng=rng, n_init=n_init, init=init, init_size=init_size,
        pca_components=pca_components, run=run,
    )
    if done is not None:
        return done
    return lloyd(run.make(X), centers, options, rng=rng, progress=run.progress(options.max_iter))


def check_kmeans_input(X, n_clusters, init):
    """``X`` as a C-contiguous float32/float64 array, checked against ``n_clusters`` and
    a given ``init`` array (shared by :func:`kmeans` and ``balanced_kmeans``)."""
    X = check_array(X, dtype=[np.float64, np.float32], order="C", input_name="X")
    n = X.shape[0]
    if n_clusters > n:
        raise ValueError(f"n_clusters={n_clusters} must not exceed n_samples={n}.")
    if not isinstance(init, str):
        init = check_array(init, dtype=X.dtype, order="C", input_name="init")
        if init.shape != (n_clusters, X.shape[1]):
            raise ValueError(
                f"init as an array must have shape (n_clusters={n_clusters}, "
                f"n_features={X.shape[1]}), got {init.shape}."
            )
    return X, init


KMEANS_CONSTRAINTS = {
    "X": ["array-like"],
    "n_clusters": [Interval(Integral, 1, None, closed="left")],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    "tol": [Interval(Real, 0, None, closed="left")],
    "init": [StrOptions({"k-means++", "random"}), "array-like"],
    "init_size": [Interval(Integral, 1, None, closed="left"), None],
    "n_init": [Interval(Integral, 1, None, closed="left")],
    "random_state": ["random_state"],
    "chunk_size": [Interval(Integral, 1, None, closed="left"), None],
    "verbose": ["verbose"],
    "label": [str],
    "backend": [StrOptions({"numpy", "torch"})],
    "device": [str],
    "n_jobs": [Integral, None],
}


@validate_params(
    {
        **KMEANS_CONSTRAINTS,
        "split_small": [Interval(Real, 0, 1, closed="both"), None],
        "pca_components": [Interval(Integral, 1, None, closed="left"), np.ndarray, None],
    },
    prefer_skip_nested_validation=True,
)
def kmeans(
    X,
    n_clusters,
    *,
    max_iter=20,
    tol=1e-4,
    init="k-means++",
    init_size=None,
    n_init=1,
    random_state=None,
    chunk_size=None,
    verbose=0,
    label="k-means",
    split_small=None,
    pca_components=None,
    backend="numpy",
    device="cpu",
    n_jobs=None,
):
    """Lloyd's k-means with BLAS (or torch) distance computations.

    The updates are over-relaxed: after an update that lowered the inertia, the next
    moves the centres up to 4 times as far as Lloyd's own update would, and a step that
    raises the inertia is undone (so the inertia of the accepted centres never rises).
    Where clusters explain little and the centres drift slowly, as on the deep levels
    of a residual quantiser, this reaches a given inertia in fewer passes.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Data, float32 or float64 (float32 is about twice as fast).
    n_clusters : int
        Number of clusters; must not exceed the number of samples.
    max_iter : int, default=20
        Maximum number of Lloyd iterations.
    tol : float, default=1e-4
        Stop when an iteration lowers the inertia by less than ``tol`` times its value
        and by less than ``10 * tol`` times the sum of squares explained so far (the
        total sum of squares about the mean minus the inertia). Both are relative, so
        independent of the scale of ``X``, and free to check: every assignment pass
        yields the inertia. The second test keeps going where few clusters explain
        little of the variance (few codewords, deep residual levels): there the inertia
        hardly moves relative to its size while the clustering still improves.
        Lloyd's last passes lower the inertia slowly but for long, so ``1e-4`` stops a
        few tenths of a percent above the converged inertia; ``1e-5`` (the default of
        :class:`~sksemantic.quantization.RQKMeansEncoder`) gets there in about twice
        the passes. ``tol=0`` runs until the inertia stops falling, or ``max_iter``.
    init : {"k-means++", "random"} or array-like of shape (n_clusters, n_features), \
default="k-means++"
        Seeding. k-means++ runs on a subsample of ``init_size`` rows.
    init_size : int, default=None
        Rows used for seeding; ``min(n_samples, max(512 * n_clusters, 10_000))`` when
        None.
    n_init : int, default=1
        Seedings tried. With more than one, each is seeded and run to convergence on
        the same ``init_size`` rows and the lowest inertia there wins; the winner is
        then refined on all rows (when ``init_size`` covers every row, this is
        scikit-learn's ``n_init``: the best of full runs). Restarts pay off most with
        few clusters, where one poor seeding leaves a whole region badly served.
    random_state : int, RandomState instance or None, default=None
        Seed for the subsample and the seeding.
    chunk_size : int, default=None
        Rows per matrix product.
    verbose : int, default=0
        Print progress when > 0.
    label : str, default="k-means"
        Name used in progress lines.
    split_small : float in [0, 1], default=None
        When None, empty clusters are re-seeded at the points farthest from their
        centres. When a fraction ``f``, the empty clusters and every cluster with fewer
        than ``f * n / k`` points that serves them little (its points gain less than
        the mean squared error per point from having their own centre) are re-seeded
        by splitting a large cluster, chosen with probability proportional to its size,
        into two centres a small random step apart (as faiss does). On
        high-dimensional, nearly isotropic data (the deep levels of a residual
        quantiser) Lloyd's iterations otherwise let one small-norm centroid absorb
        almost every point; small clusters of outliers (heavy tails) are kept.
    pca_components : int, ndarray of shape (n_features, m) or None, default=None
        When set (and below ``n_features``), the seeding, the restarts and Lloyd's
        iterations first run on the rows projected onto their top ``pca_components``
        principal directions (or onto the columns of the given array), to a 100 times
        smaller ``tol`` (at most ``max_iter`` iterations there too); the means of the rows
        of ``X`` by the labels found there then start the iterations on ``X`` itself,
        which only polish. Where clusters explain little of the variance (few clusters
        on wide data), Lloyd needs many passes to converge and a pass over a few
        directions costs a fraction of a full one. See :func:`auto_pca_components`.
    backend : {"numpy", "torch"}, default="numpy"
        What computes the assignment passes over all rows: numpy/BLAS on the host, or
        torch on ``device``. Seeding and restarts on the seeding subsample run in numpy
        either way. On the CPU both give the same result for the same seed.
    device : str, default="cpu"
        Torch device of ``backend="torch"`` (``"cpu"``, ``"cuda"``, ``"cuda:N"``,
        ``"mps"``); must be ``"cpu"`` with ``backend="numpy"``.
    n_jobs : int, default=None
        Threads for the numpy passes and the restarts (None: every core), through
        joblib; an active joblib backend is honoured. The result does not depend on it.

    Returns
    -------
    result : KMeansResult
        A named tuple ``(centers, labels, inertia, n_iter)``: the centres, of shape
        (n_clusters, n_features); the label of every row; the sum of squared
        distances to the nearest centre; the Lloyd iterations run on all rows (the
        polish, with ``pca_components``). Every iteration is one assignment pass over
        ``X`` (an undone over-relaxed step counts as one).

    Examples
    --------
    >>> import numpy as np
    >>> from sksemantic.cluster import kmeans
    >>> X = np.r_[np.zeros((5, 2)), np.ones((5, 2))].astype(np.float32)
    >>> centers, labels, inertia, n_iter = kmeans(X, 2, random_state=0)
    >>> sorted(centers.sum(axis=1).round(3).tolist())
    [0.0, 2.0]
    """
    X, init = check_kmeans_input(X, n_clusters, init)
    run = _Run(backend, device, chunk_size, n_jobs, verbose, label)
    make_backend(X[:1], backend, device=device)  # a clear error before any work
    options = LloydOptions(max_iter=max_iter, tol=tol, split_small=split_small)
    return _kmeans(
        X, n_clusters, options, rng=check_random_state(random_state), n_init=n_init,
        init=init, init_size=init_size, pca_components=pca_components, run=run,
    )
