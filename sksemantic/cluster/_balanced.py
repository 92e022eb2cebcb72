"""Balanced assignment: log-domain Sinkhorn potentials and a balanced k-means built on them.

Entropic optimal transport between ``n`` points (mass ``1/n`` each) and ``k`` clusters
(mass ``1/k`` each, or given weights) under the squared-distance cost has the plan
``P_ij = exp((f_i + g_j - C_ij) / eps)``. Its largest entry in a row is the column that
minimises ``C_ij - g_j``: a *balanced* assignment is the nearest centre after subtracting
a per-cluster offset ``g``. The offsets are all that has to be learned and stored, so new
points are assigned the same way (the partition is a power diagram) and a GPU and a CPU
assign identically. Iterations are in the log domain, so small ``eps`` never underflows.

Sinkhorn runs on a random subsample of rows (a few hundred points per cluster estimate
the offsets well); each sweep is then cheap compared with the distance products.
"""

from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, validate_params

from ..utils import ParallelPool
from ._kmeans import KMEANS_CONSTRAINTS, _nearest_centroid, _Run, _seed, check_kmeans_input
from ._lloyd import LloydOptions, lloyd, make_backend

__all__ = ["BalanceOptions", "sinkhorn_potentials", "balanced_assign", "balanced_kmeans"]


def _logsumexp(a, axis):
    """Stable log-sum-exp along ``axis`` without the copies of scipy's version."""
    amax = np.max(a, axis=axis, keepdims=True)
    out = np.exp(a - amax)
    out = np.log(np.sum(out, axis=axis, keepdims=True))
    out += amax
    return np.squeeze(out, axis=axis)


def sinkhorn_potentials(
    cost, *, eps, n_iter=50, tol=1e-3, row_weights=None, col_weights=None, g_init=None,
    n_jobs=None,
):
    """Column potentials of entropic optimal transport, by log-domain Sinkhorn.

    Parameters
    ----------
    cost : ndarray of shape (n_rows, n_cols)
        Transport cost (e.g. squared distances of points to centres). Any per-row
        constant may be dropped: it does not change the column potentials.
    eps : float
        Entropic regularisation, in the units of ``cost``. Smaller is closer to the
        unregularised (hard) assignment and needs more iterations.
    n_iter : int, default=50
        Maximum number of Sinkhorn sweeps (one row and one column update each).
    tol : float, default=1e-3
        Stop when the largest relative deviation of the column masses from their
        targets falls below ``tol``.
    row_weights : ndarray of shape (n_rows,), default=None
        Row masses (normalised to sum 1); uniform when None. A row of zero cost with
        the surplus mass turns an assignment with spare capacity into a balanced one.
    col_weights : ndarray of shape (n_cols,), default=None
        Target column masses (normalised to sum 1); uniform when None.
    g_init : ndarray of shape (n_cols,), default=None
        Warm start for the column potentials.
    n_jobs : int, default=None
        Threads for the row blocks (None: every core), through joblib; the result
        does not depend on it.

    Returns
    -------
    g : ndarray of shape (n_cols,)
        Column potentials, in the units of ``cost``, centred to mean 0. The balanced
        assignment of a row is ``argmin_j(cost_ij - g_j)`` (see :func:`balanced_assign`).

    Examples
    --------
    >>> import numpy as np
    >>> from sksemantic.cluster._balanced import balanced_assign, sinkhorn_potentials
    >>> cost = np.array([[0.0, 1.0], [0.0, 1.5], [0.0, 2.0], [1.0, 0.0]])
    >>> np.bincount(cost.argmin(axis=1)).tolist()   # nearest: 3 and 1
    [3, 1]
    >>> g = sinkhorn_potentials(cost, eps=0.1)
    >>> balanced_assign(cost, g).tolist()   # balanced: the cheapest move is row 0's
    [1, 0, 0, 1]
    """
    cost = np.asarray(cost)
    dtype = cost.dtype if cost.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    n, k = cost.shape
    if eps <= 0:
        raise ValueError(f"eps must be > 0, got {eps}.")
    log_b = (
        np.full(k, -np.log(k), dtype=dtype)
        if col_weights is None
        else np.log(np.asarray(col_weights, dtype=dtype) / np.sum(col_weights))
    )
    log_a = (
        dtype.type(-np.log(n))
        if row_weights is None
        else np.log(np.asarray(row_weights, dtype=dtype) / np.sum(row_weights))
    )
    scaled = np.asarray(cost, dtype=dtype) * dtype.type(-1.0 / eps)  # -C / eps
    g = np.zeros(k, dtype=dtype)
    if g_init is not None:
        g = np.asarray(g_init, dtype=dtype) / dtype.type(eps)
    a = np.exp(log_a) * np.ones(n, dtype=dtype)
    target = np.exp(log_b)
    work = np.empty_like(scaled)
    # Rows are independent within a sweep: a fixed number of row blocks (so the sum of
    # their column masses, and the result, does not depend on the thread count) run
    # in threads, as numpy's element-wise kernels release the GIL.
    n_blocks = int(min(8, max(1, n * k // 2**18)))
    bounds = np.linspace(0, n, n_blocks + 1).astype(int)
    blocks = list(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True))

    def sweep(lo, hi):
        # One exponential per sweep: rows are stabilised by their maximum (log domain),
        # the row update is a row sum and the column masses one matrix-vector product.
        w = work[lo:hi]
        np.add(scaled[lo:hi], g, out=w)
        w -= np.max(w, axis=1, keepdims=True)
        np.exp(w, out=w)
        return (a[lo:hi] / w.sum(axis=1)) @ w

    # One pool for every sweep; the blocks work in ``work`` in place: threads of this
    # process (shared memory).
    with ParallelPool(n_jobs, shared=True, max_workers=n_blocks) as pool:
        for _ in range(n_iter):
            parts = pool.map(sweep, blocks)
            mass = parts[0]
            for part in parts[1:]:
                mass = mass + part  # column masses of the plan after the row update
            if np.max(np.abs(mass / target - 1.0)) < tol:
                break
            g = g + log_b - np.log(np.maximum(mass, np.finfo(dtype).tiny))
    g = g - g.mean()
    return g * dtype.type(eps)


def balanced_assign(cost, g):
    """Balanced labels from Sinkhorn column potentials: ``argmin_j(cost_ij - g_j)``."""
    return np.argmin(np.asarray(cost) - g, axis=1)


@dataclass(frozen=True)
class BalanceOptions:
    """Options of the Sinkhorn balancing in :func:`balanced_kmeans`.

    Parameters
    ----------
    reg : float, default=0.02
        Entropic regularisation relative to the spread of the point-to-centre costs.
    sinkhorn_iter : int, default=20
        Sinkhorn sweeps per Lloyd iteration (per annealing stage from a cold start).
    sinkhorn_size : int or None, default=None
        Rows that estimate the offsets; ``min(n_samples, max(4096, 64 * n_clusters))``.
    final_factor : int, default=5
        The final offsets get ``final_factor`` times as many sweeps.
    slack : float, default=0.5
        The final offsets are re-annealed from cold when some cluster of the sample
        gets less than ``1 - slack`` or more than ``1 + slack`` of its share.
    """

    reg: float = 0.02
    sinkhorn_iter: int = 20
    sinkhorn_size: int | None = None
    final_factor: int = 5
    slack: float = 0.5


class _SinkhornBalancer:
    """The offsets of the balanced passes of :func:`sksemantic.cluster._lloyd.lloyd`,
    estimated on a fixed row sample (on the host, whatever the backend)."""

    def __init__(self, X, n_clusters, options, rng, n_jobs=None):
        n = X.shape[0]
        size = options.sinkhorn_size or min(n, max(4096, 64 * n_clusters))
        self.sample = X if size >= n else X[np.sort(rng.choice(n, size, replace=False))]
        self.options = options
        self.n_jobs = n_jobs

    def offsets(self, centers, warm):
        """Offsets for one pass, warm-started from the previous pass's."""
        o = self.options
        return _fit_offsets(self.sample, centers, warm, o.reg, o.sinkhorn_iter, self.n_jobs)

    def final(self, centers, warm):
        """The returned offsets: more sweeps, re-annealed from cold when the warm start
        is stuck far from what the final centres need (a centre that moved away from
        its points needs a large offset)."""
        o = self.options
        n_iter = o.final_factor * o.sinkhorn_iter
        offsets = _fit_offsets(self.sample, centers, warm, o.reg, n_iter, self.n_jobs)
        if not _near_balanced(self.sample, centers, offsets, o.slack, self.n_jobs):
            offsets = _fit_offsets(self.sample, centers, None, o.reg, n_iter, self.n_jobs)
        return offsets


def _balanced_kmeans(X, n_clusters, options, balance, *, rng, n_init=1, init="k-means++",
                     init_size=None, run=None):
    """:func:`balanced_kmeans` without the checks: seeding as plain k-means (empty
    clusters re-seeded at far points), then the balanced passes."""
    run = run or _Run()
    centers, _ = _seed(
        X, n_clusters, options.replace(split_small=None), rng=rng, n_init=n_init, init=init,
        init_size=init_size, run=run,
    )
    balancer = _SinkhornBalancer(X, n_clusters, balance, rng, run.n_jobs)
    return lloyd(run.make(X), centers, options, rng=rng, balancer=balancer,
                 progress=run.progress(options.max_iter))


@validate_params(
    {
        **KMEANS_CONSTRAINTS,
        "reg": [Interval(Real, 0, None, closed="neither")],
        "sinkhorn_iter": [Interval(Integral, 1, None, closed="left")],
        "sinkhorn_size": [Interval(Integral, 1, None, closed="left"), None],
    },
    prefer_skip_nested_validation=True,
)
def balanced_kmeans(
    X,
    n_clusters,
    *,
    max_iter=20,
    tol=1e-4,
    init="k-means++",
    init_size=None,
    n_init=1,
    reg=0.02,
    sinkhorn_iter=20,
    sinkhorn_size=None,
    random_state=None,
    chunk_size=None,
    verbose=0,
    label="balanced k-means",
    backend="numpy",
    device="cpu",
    n_jobs=None,
):
    """k-means whose clusters have near-equal sizes, by Sinkhorn-balanced assignment.

    Each Lloyd iteration assigns every point to ``argmin_j(|x - c_j|^2 - g_j)`` with
    offsets ``g`` from log-domain Sinkhorn (warm-started across iterations) on a row
    subsample, then moves each centre to the mean of its points. The cost per iteration
    is one distance product, as in plain k-means, plus a few cheap Sinkhorn sweeps.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Data, float32 or float64.
    n_clusters : int
        Number of clusters; must not exceed the number of samples.
    max_iter : int, default=20
        Lloyd iterations.
    tol : float, default=1e-4
        Stop when an iteration lowers the inertia (to the assigned centres) by less
        than ``tol`` times its value (a rise, from the offsets moving, does not stop).
    init : {"k-means++", "random"} or array-like of shape (n_clusters, n_features), \
default="k-means++"
        Seeding (see :func:`init_centers`).
    init_size : int, default=None
        Rows used for seeding.
    n_init : int, default=1
        Seedings tried (see :func:`kmeans`); the best plain k-means on the seeding
        subsample starts the balanced iterations.
    reg : float, default=0.02
        Entropic regularisation relative to the spread of the point-to-centre squared
        distances. Smaller balances the hard assignment more tightly and needs more
        Sinkhorn sweeps.
    sinkhorn_iter : int, default=20
        Sinkhorn sweeps per Lloyd iteration (per annealing stage in the first, five
        times as many for the final offsets).
    sinkhorn_size : int, default=None
        Rows used to estimate the offsets; ``min(n_samples, 64 * n_clusters)`` when
        None (at least 4,096).
    random_state : int, RandomState instance or None, default=None
        Seed for seeding and the Sinkhorn subsample.
    chunk_size : int, default=None
        Rows per matrix product.
    verbose : int, default=0
        Print progress when > 0.
    label : str, default="balanced k-means"
        Name used in progress lines.
    backend : {"numpy", "torch"}, default="numpy"
        What computes the assignment passes (see :func:`kmeans`); the offsets are
        estimated on the host either way.
    device : str, default="cpu"
        Torch device of ``backend="torch"``.
    n_jobs : int, default=None
        Threads for the numpy passes and the restarts (None: every core), through
        joblib; an active joblib backend is honoured.

    Returns
    -------
    result : BalancedKMeansResult
        A named tuple ``(centers, labels, inertia, n_iter, offsets)``: the centres,
        the balanced labels, the sum of squared distances to the assigned centres, the
        Lloyd iterations run, and the offsets ``g`` (assign new points with
        ``argmin_j(|x - c_j|^2 - g_j)``).

    Examples
    --------
    >>> import numpy as np
    >>> from sksemantic.cluster import balanced_kmeans
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(0, 1, (300, 2)), rng.normal(8, 1, (100, 2))]
    >>> centers, labels, inertia, n_iter, offsets = balanced_kmeans(X, 4, random_state=0)
    >>> bool(np.bincount(labels).min() >= 80)
    True
    """
    X, init = check_kmeans_input(X, n_clusters, init)
    make_backend(X[:1], backend, device=device)  # a clear error before any work
    run = _Run(backend, device, chunk_size, n_jobs, verbose, label)
    options = LloydOptions(max_iter=max_iter, tol=tol)
    balance = BalanceOptions(reg=reg, sinkhorn_iter=sinkhorn_iter, sinkhorn_size=sinkhorn_size)
    return _balanced_kmeans(
        X, n_clusters, options, balance, rng=check_random_state(random_state), n_init=n_init,
        init=init, init_size=init_size, run=run,
    )


def _near_balanced(sample, centers, offsets, slack=0.5, n_jobs=None):
    """Whether every cluster gets between ``1 - slack`` and ``1 + slack`` of its share."""
    labels, _ = _nearest_centroid(sample, centers, offsets=offsets, n_jobs=n_jobs)
    counts = np.bincount(labels, minlength=centers.shape[0])
    share = sample.shape[0] / centers.shape[0]
    return bool(counts.min() >= (1 - slack) * share and counts.max() <= (1 + slack) * share)


def _fit_offsets(sample, centers, g_init, reg, n_iter, n_jobs=None, tol=1e-2):
    """Sinkhorn offsets for ``centers`` estimated on the rows ``sample``.

    Sinkhorn needs about ``cost range / eps`` sweeps from a cold start, so a cold start
    anneals ``eps`` from the cost spread down to ``reg`` times it (eps-scaling), each
    stage warm-starting the next; a warm start (the previous Lloyd iteration's offsets)
    only refines at the final ``eps``.
    """
    cost = sample @ centers.T
    cost *= -2
    cost += np.einsum("ij,ij->i", centers, centers)
    # The regularisation is relative to how much the costs of one row differ.
    spread = float(np.mean(np.std(cost, axis=1, dtype=np.float64)))
    spread = spread if spread > 0 else 1.0
    schedule = [reg]
    if g_init is None:
        schedule = [r for r in (1.0, 0.3, 0.1, 0.03) if r > reg] + [reg]
    g = g_init
    for r in schedule:
        g = sinkhorn_potentials(cost, eps=r * spread, n_iter=n_iter, tol=tol, g_init=g,
                                n_jobs=n_jobs)
    return g.astype(sample.dtype, copy=False)
