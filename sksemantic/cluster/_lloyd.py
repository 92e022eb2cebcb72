"""One Lloyd driver for every device: plain, over-relaxed and balanced k-means.

The driver (:func:`lloyd`) owns everything but the distance products: the stopping
rule, the over-relaxed steps, the re-seeding of empty or tiny clusters, the balancing
offsets' schedule. A *backend* does the one expensive thing, per pass over the rows:
assign every row to its nearest centre (after optional per-centre offsets) and return
the labels with the per-cluster sums and counts. :class:`NumpyBackend` uses BLAS on the
host; :class:`TorchBackend` uses torch on any device (CPU, CUDA, MPS).

Both backends give the same labels for the same centres: a row whose best and second
best centres are closer than float rounding can tell apart is re-decided exactly, in
float64 from the differences (:func:`refine_choice`), and the driver computes the
inertia in float64 from the labels, sums and counts (never from the backend's
rounded distances), so the two runs take the same decisions, pass after pass.
"""

import contextlib
import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from ..utils import (
    ParallelPool,
    Progress,
    blas_threads,
    import_optional,
)

__all__ = [
    "BalancedKMeansResult",
    "KMeansResult",
    "LloydOptions",
    "NumpyBackend",
    "TorchBackend",
    "lloyd",
    "make_backend",
]


@dataclass(frozen=True)
class LloydOptions:
    """Options of Lloyd's iterations (see :func:`sksemantic.cluster.kmeans`).

    Parameters
    ----------
    max_iter : int, default=20
        Most assignment passes (an undone over-relaxed step counts as one).
    tol : float, default=1e-4
        Relative inertia decrease under which plain iterations stop (see ``kmeans``);
        balanced ones stop when the decrease is between 0 and ``tol`` times the inertia.
    split_small : float or None, default=None
        None re-seeds empty clusters at the rows farthest from their centres; a fraction
        ``f`` re-seeds, by splitting a large one, every empty cluster and every cluster
        under ``f * n / k`` rows whose rows gain less than the mean squared error per
        row from having their own centre (small clusters of outliers are kept).
    step_growth : float, default=1.5
        Over-relaxation: factor by which the step grows after an update that lowered
        the inertia (1.0: plain Lloyd updates).
    max_step : float, default=4.0
        Largest over-relaxed step, in units of Lloyd's own update.
    """

    max_iter: int = 20
    tol: float = 1e-4
    split_small: float | None = None
    step_growth: float = 1.5
    max_step: float = 4.0

    def replace(self, **changes):
        """A copy with some options changed."""
        return dataclasses.replace(self, **changes)


class KMeansResult(NamedTuple):
    """What a k-means returns; unpacks as ``centers, labels, inertia, n_iter``.

    Parameters
    ----------
    centers : ndarray of shape (n_clusters, n_features)
        The cluster centres.
    labels : ndarray of shape (n_samples,)
        The centre of each row.
    inertia : float
        Sum of squared distances of the rows to their centres.
    n_iter : int
        Lloyd passes run.
    """

    centers: np.ndarray
    labels: np.ndarray
    inertia: float
    n_iter: int


class BalancedKMeansResult(NamedTuple):
    """What a balanced k-means returns: a :class:`KMeansResult` and the offsets.

    Parameters
    ----------
    centers : ndarray of shape (n_clusters, n_features)
        The cluster centres.
    labels : ndarray of shape (n_samples,)
        The centre of each row.
    inertia : float
        Sum of squared distances of the rows to their centres.
    n_iter : int
        Lloyd passes run.
    offsets : ndarray of shape (n_clusters,)
        The balancing offsets, subtracted from each centre's squared distance.
    """

    centers: np.ndarray
    labels: np.ndarray
    inertia: float
    n_iter: int
    offsets: np.ndarray


class Assignment(NamedTuple):
    """One pass of a backend: labels, per-cluster float64 sums and int64 counts."""

    labels: np.ndarray
    sums: np.ndarray
    counts: np.ndarray


# ----------------------------------------------------------------- exact near-ties
def tie_tolerance(dtype, n_features):
    """Relative gap under which two centres count as tied in a ``dtype`` product."""
    return 16.0 * np.sqrt(n_features) * float(np.finfo(dtype).eps)


def centre_scales(centers, shift):
    """Per-centre scale of the rounding of ``|c|^2 - offset - 2 x.c`` (float64):
    ``max(|c|^2, |shift|)``. The product's rounding grows with ``|x| |c|``, at most
    ``(|x|^2 + |c|^2) / 2``, so each centre is judged by its own norm: one far centre
    (a codeword of outliers) must not widen every row's tie test."""
    sq = np.einsum("ij,ij->i", centers, centers, dtype=np.float64)
    return np.maximum(sq, np.abs(np.asarray(shift, dtype=np.float64)))


def level_shift(centers, offsets=None):
    """``|c|^2 - offset`` per centre, the row-independent part of the distance (float64
    accumulation, cast to the centres' dtype: every backend uses the same values)."""
    shift = np.einsum("ij,ij->i", centers, centers, dtype=np.float64)
    if offsets is not None:
        shift = shift - np.asarray(offsets, dtype=np.float64)
    return shift.astype(centers.dtype)


# Up to this many centres, and from this many rows per centre, the two smallest values
# per row are found column by column on the transposed distances (a few vector
# operations over all rows per centre), which beats numpy's per-row reductions over so
# short rows; fewer rows do not pay for the operations' own cost.
_FEW_CENTRES = 16
_COLUMN_ROWS_PER_CENTRE = 256


def pick_with_ties(d, row_scale, tol, *, shift=None, col_scale=None, with_value=False):
    """Best column per row of ``v = d + shift`` (``d`` may be modified in place), a mask
    of the rows where another column may truly be as good, and (``with_value``) the
    best value. The first best column wins exact ties, as with ``np.argmin``.

    Each value is taken to be off by at most ``tol / 2 * (row_scale + col_scale[j])``;
    a row is tied when some column ``j`` other than the best ``b`` has
    ``v_j - v_b <= tol / 2 * (2 * row_scale + col_scale[j] + col_scale[b])``. Without
    ``col_scale``: when ``v_j - v_b <= tol * row_scale`` for the runner-up.
    """
    k = d.shape[1]
    if 2 <= k <= _FEW_CENTRES and d.shape[0] >= _COLUMN_ROWS_PER_CENTRE * k:
        if col_scale is not None:
            # The column loop keeps only the two smallest values: judge every column by
            # the largest scale (a wider, still valid test).
            row_scale = row_scale + np.asarray(np.max(col_scale), dtype=d.dtype)
        best, first, second = _two_smallest_by_columns(d, shift)
        tied = (second - first) <= tol * row_scale
        return (best, tied, first) if with_value else (best, tied)
    if shift is not None:
        d += shift
    best = np.argmin(d, axis=1)
    rows = np.arange(d.shape[0])
    first = d[rows, best].copy()
    if k < 2:
        tied = np.zeros(d.shape[0], dtype=bool)
    else:
        bar = first
        if col_scale is not None:
            half = np.asarray(col_scale * (tol / 2), dtype=d.dtype)
            d -= half
            bar = first + half[best]
        d[rows, best] = np.inf
        second = d[rows, np.argmin(d, axis=1)]  # argmin is faster than min in numpy
        tied = (second - bar) <= tol * row_scale
    return (best, tied, first) if with_value else (best, tied)


def pick_with_ties_torch(d, row_scale, tol, col_scale):
    """:func:`pick_with_ties` on a torch tensor ``d`` of the values ``v`` (overwritten),
    with ``col_scale`` a tensor on its device: the best column and the tied mask, as
    tensors. Which of exactly equal columns it returns is unspecified: such rows are
    tied, and re-decided exactly by the caller."""
    first, best = d.min(dim=1)
    if d.shape[1] < 2:
        return best, best.new_zeros(best.shape, dtype=bool)
    half = col_scale * (tol / 2)
    d -= half
    d.scatter_(1, best[:, None], float("inf"))
    tied = (d.min(dim=1).values - (first + half[best])) <= tol * row_scale
    return best, tied


def settle_ties(best, tied, X, centers, offsets=None):
    """Re-decide exactly (:func:`refine_choice`) the rows of ``X`` that ``tied`` flags,
    writing their centres into ``best``; returns those rows' indices."""
    rows = np.flatnonzero(tied)
    if rows.size:
        best[rows] = refine_choice(X, centers, offsets, rows)
    return rows


def settle_ties_torch(best, tied, X, centers, offsets=None):
    """:func:`settle_ties` for torch tensors ``best`` and ``tied``: ``X`` is the host
    array of the rows or their tensor, of which only the tied rows reach the host."""
    import torch  # already loaded: the caller holds torch tensors

    idx = torch.nonzero(tied).flatten()
    if idx.numel():
        host = X[idx.cpu().numpy()] if isinstance(X, np.ndarray) else X[idx].cpu().numpy()
        fixed = refine_choice(host, centers, offsets, np.arange(host.shape[0]))
        best[idx] = torch.from_numpy(fixed).to(best.device)


def _two_smallest_by_columns(d, shift=None):
    """First best column, smallest and second smallest value of every row of
    ``d + shift`` (the same sums as ``d += shift``), from the transposed distances."""
    dT = np.add(d.T, shift[:, None]) if shift is not None else np.ascontiguousarray(d.T)
    first = dT[0].copy()
    second = np.full_like(first, np.inf)
    larger = np.empty_like(first)
    for column in dT[1:]:
        np.maximum(first, column, out=larger)
        np.minimum(second, larger, out=second)
        np.minimum(first, column, out=first)
    # The first column holding each row's minimum, found from the last column back:
    # numpy's argmin over the short axis cost twice the loop above.
    best = np.full(first.shape, dT.shape[0] - 1, dtype=np.int64)
    at_min = np.empty(first.shape, dtype=bool)
    for j in range(dT.shape[0] - 2, -1, -1):
        np.equal(dT[j], first, out=at_min)
        np.copyto(best, j, where=at_min)
    return best, first, second


def refine_choice(X, centers, offsets, rows):
    """Exact choice (float64, from the differences) of centre for ``rows`` of ``X``.

    A float64 product narrows each row to the centres within a relative 1e-10 of its
    best (far above that product's rounding, far below the float32 ties being settled);
    only those are compared exactly, by the squared differences, and the first best
    column wins exact ties. Comparing every centre by differences cost a
    ``(rows, k, d)`` array and dominated passes over heavy-tailed data.
    """
    rows = np.asarray(rows, dtype=np.int64)
    out = np.empty(len(rows), dtype=np.int64)
    c64 = centers.astype(np.float64)
    off = np.zeros(len(c64)) if offsets is None else np.asarray(offsets, dtype=np.float64)
    shift = np.einsum("ij,ij->i", c64, c64) - off
    neg2 = -2.0 * c64
    top = float(np.max(np.abs(shift))) if len(shift) else 0.0
    step = max(1, (32 * 2**20) // (8 * max(len(c64), 1)))  # 32 MiB of distances
    for start in range(0, len(rows), step):
        r = X[rows[start : start + step]].astype(np.float64)
        d = r @ neg2.T
        d += shift
        margin = 1e-10 * (np.einsum("ij,ij->i", r, r) + top)
        i, j = np.nonzero(d <= (d.min(axis=1) + margin)[:, None])
        diff = r[i] - c64[j]
        exact = np.einsum("ij,ij->i", diff, diff) - off[j]
        order = np.lexsort((j, exact, i))  # by row, then distance, then column
        first = order[np.r_[True, i[order][1:] != i[order][:-1]]]
        out[start : start + step][i[first]] = j[first]
    return out


def _cache_rows(n_features):
    """Rows of a float32 block of about 4 MiB (stays in cache while a pass reuses it)."""
    return max(256, 2**22 // (4 * max(int(n_features), 1)))


def _row_chunks(n_rows, n_cols, budget_bytes=256 * 2**20):
    """Row-chunk size so that a float32 (chunk, n_cols) block stays within the budget."""
    return int(max(256, min(n_rows, budget_bytes // max(4 * n_cols, 1))))


def onehot_sums(block, labels, n_clusters, dtype=None):
    """Per-cluster sums of the rows of ``block`` (one sparse one-hot product), in
    ``dtype`` (the block's when None). Built directly in CSC form (one entry per
    column, no sorting); the product adds the rows in their order."""
    m = block.shape[0]
    dtype = block.dtype if dtype is None else dtype
    onehot = sp.csc_matrix(
        (np.ones(m, dtype=dtype), labels.astype(np.int32, copy=False),
         np.arange(m + 1, dtype=np.int32)),
        shape=(n_clusters, m),
    )
    return np.asarray(onehot @ block, dtype=dtype)


def moved_sums(block, old, new, n_clusters, dtype=None):
    """Change of the per-cluster sums of the rows of ``block`` when their labels go from
    ``old`` to ``new``: one sparse product over the rows that moved (each adds itself to
    its new cluster and takes itself from its old one), in ``dtype``."""
    moved = np.flatnonzero(old != new)
    dtype = block.dtype if dtype is None else dtype
    m = moved.size
    clusters = np.empty(2 * m, dtype=np.int32)
    clusters[0::2] = new[moved]
    clusters[1::2] = old[moved]
    signs = np.empty(2 * m, dtype=dtype)
    signs[0::2], signs[1::2] = 1, -1
    onehot = sp.csc_matrix(
        (signs, clusters, np.arange(0, 2 * m + 1, 2, dtype=np.int32)), shape=(n_clusters, m)
    )
    return np.asarray(onehot @ block[moved], dtype=dtype)


def add_in_order(parts):
    """Sum of partial sums, in span order (so the total does not depend on threads)."""
    total = parts[0]
    for part in parts[1:]:
        total += part
    return total


def assign_blocks(X, centers, *, offsets=None, x_sq=None, shift=None, chunk_size=None,
                  n_jobs=None, with_dist=False, with_sums=False, sums_dtype=None, n_best=0,
                  previous=None):
    """Nearest centre (after optional offsets) of every row of ``X``, block by block.

    The one assignment pass on the host: a BLAS product per block of rows, the best
    centre by ``argmin(|c|^2 - offset - 2 x.c)``, near-ties re-decided exactly
    (:func:`refine_choice`), and optionally the squared distance to the chosen centre
    and the per-cluster sums of the rows, taken while the block is in cache. Blocks
    are shared among ``n_jobs`` threads; partial sums are added in block order, so the
    result does not depend on the threads.

    Returns ``labels`` and, as asked, ``sq_dist`` (clipped at 0), ``sums`` and, with
    ``n_best``, the ``n_best`` nearest centres of every row, nearest first, by the
    float32 scores of the same product (near-ties are not re-decided there). Given the
    ``previous`` labels of the rows, ``sums`` is instead the change of the sums from
    those labels to the new ones, which costs only the rows that moved.
    """
    n, n_features = X.shape
    k = centers.shape[0]
    if shift is None:
        shift = level_shift(centers, offsets)
    col_scale = centre_scales(centers, shift)
    tol = tie_tolerance(X.dtype, n_features)
    small = n * k * n_features < 2**26  # run in this thread (see below): one block
    halves = n if small else max(256, -(-n // 2))
    chunk = chunk_size or min(_row_chunks(n, k, 32 * 2**20), halves)
    if with_sums:
        chunk = min(chunk, _cache_rows(n_features))  # re-read for the sums while cached
    labels = np.empty(n, dtype=np.int64)
    sq_dist = np.empty(n, dtype=X.dtype) if with_dist else None
    n_best = int(min(n_best, k))
    near = np.empty((n, n_best), dtype=np.int32) if n_best else None
    off = None if offsets is None else np.asarray(offsets, dtype=X.dtype)
    neg2 = centers * np.asarray(-2, dtype=centers.dtype)

    def work(start, stop):
        block = X[start:stop]
        norms = np.einsum("ij,ij->i", block, block) if x_sq is None else x_sq[start:stop]
        d = block @ neg2.T  # exactly -2 x.c: scaling by a power of two is exact
        if n_best:
            near[start:stop] = smallest_columns(d + shift, n_best)
        best, tied, first = pick_with_ties(d, norms, tol, shift=shift, col_scale=col_scale,
                                           with_value=True)
        rows = settle_ties(best, tied, block, centers, offsets)
        labels[start:stop] = best
        if with_dist:
            dist = first + norms if off is None else first + off[best] + norms
            if rows.size:  # re-decided rows: the exact distance to the new choice
                diff = block[rows].astype(np.float64) - centers[best[rows]]
                dist[rows] = np.einsum("ij,ij->i", diff, diff)
            sq_dist[start:stop] = dist
        if with_sums and previous is not None:
            return moved_sums(block, previous[start:stop], best, k, sums_dtype)
        if with_sums:
            return onehot_sums(block, best, k, sums_dtype)
        return None

    if small:  # too little work to pay for starting threads, BLAS's own included (on a
        n_jobs = 1  # busy machine its threads made small products ten times slower)
    with blas_threads(1) if small else contextlib.nullcontext():
        total = _run_blocks(work, n, chunk, n_jobs, with_sums, k * n_features)
    out = [labels]
    if with_dist:
        out.append(np.maximum(sq_dist, 0, out=sq_dist))
    if with_sums:
        out.append(total)
    if n_best:
        out.append(near)
    return tuple(out)


def smallest_columns(d, n):
    """The ``n`` smallest columns of every row of ``d``, smallest first (the first
    column wins exact ties); ``d`` is overwritten. One argmin per column found: for a
    few of many columns, far cheaper than a partial sort of every row."""
    rows = np.arange(d.shape[0])
    out = np.empty((d.shape[0], n), dtype=np.int64)
    for j in range(n):
        out[:, j] = best = np.argmin(d, axis=1)
        if j < n - 1:
            d[rows, best] = np.inf
    return out


def _run_blocks(work, n, chunk, n_jobs, with_sums, sums_size):
    """``work`` over the blocks of ``chunk`` rows; the sum of its partial sums, in block
    order, when ``with_sums``."""
    # Labels and distances are written in place: threads of this process (shared memory).
    starts = range(0, n, chunk)
    with ParallelPool(n_jobs, shared=True, max_workers=len(starts)) as pool:
        spans = [(a, min(a + chunk, n)) for a in starts]
        if not with_sums:
            pool.map(work, spans)
            return None
        # Blocks run in waves whose partial sums are added, in block order, before the
        # next wave: the same additions as over all blocks at once, but at most
        # _WAVE_BYTES of (n_clusters, n_features) partial sums are held (one per block
        # took hundreds of MiB for thousands of clusters over small blocks). A wave is
        # a whole number of rounds of the workers, so that none waits idle.
        workers = pool.n_workers
        per_wave = max(workers, (_WAVE_BYTES // max(1, 8 * sums_size)) // workers * workers)
        total = None
        for w in range(0, len(spans), per_wave):
            parts = pool.map(work, spans[w : w + per_wave])
            total = add_in_order(parts if total is None else [total, *parts])
        return total


#: Most bytes of float64 partial sums held at once by :func:`_run_blocks`.
_WAVE_BYTES = 64 * 2**20


# ----------------------------------------------------------------------- backends
class NumpyBackend:
    """Assignment passes with numpy/BLAS on the host, a block of rows per thread.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Rows, float32 or float64 (kept by reference).
    chunk_size : int, default=None
        Rows per matrix product (bounded to about 4 MiB blocks when None).
    n_jobs : int, default=None
        Threads through joblib; an active joblib backend is honoured (None: every
        core). The result does not depend on it.
    """

    name = "numpy"

    def __init__(self, X, *, chunk_size=None, n_jobs=None):
        self.X = X
        self.chunk_size = chunk_size
        self.n_jobs = n_jobs
        self.x_sq = np.einsum("ij,ij->i", X, X)
        self._last = None

    def assign(self, centers, offsets=None):
        """Labels (exact on near-ties) and the per-cluster float64 sums and counts.

        After the first pass the sums are the previous pass's plus what the rows that
        changed cluster move (a few percent of the rows once Lloyd settles), instead of
        a sum over every row."""
        k = centers.shape[0]
        last = self._last if self._last is not None and len(self._last.counts) == k else None
        labels, sums = assign_blocks(
            self.X, centers, offsets=offsets, x_sq=self.x_sq, chunk_size=self.chunk_size,
            n_jobs=self.n_jobs, with_sums=True, sums_dtype=np.float64,
            previous=None if last is None else last.labels,
        )
        if last is not None:
            sums += last.sums
        self._last = Assignment(labels, sums, np.bincount(labels, minlength=k))
        return Assignment(labels.copy(), sums.copy(), self._last.counts.copy())


class TorchBackend:
    """Assignment passes with torch on ``device`` (``"cpu"``, ``"cuda[:N]"``, ``"mps"``).

    The rows are copied to the device once; each pass sends the centres (small) and
    brings back the labels and sums. Near-ties are re-decided exactly on the host, as in
    :class:`NumpyBackend`, so both give the same labels for the same centres. Sums
    accumulate in float64 (float32 on MPS, which has no float64) over every row, where
    numpy's backend adds the moved rows to its previous sums: added in another order,
    they differ in their last bits only, which the float32 centres computed from them
    do not keep (but for a value within a few float64 roundings of a float32 rounding
    boundary: in principle possible, not seen in practice).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Rows, float32 or float64 (kept by reference for the exact re-decisions).
    device : str, default="cpu"
        Torch device.
    chunk_size : int, default=None
        Rows per matrix product (blocks of about 64 MiB when None).
    """

    name = "torch"

    def __init__(self, X, *, device="cpu", chunk_size=None):
        self.torch = import_optional("torch", purpose=f"the torch backend on {device!r}")
        self.X = X
        self.device = device
        self.chunk_size = chunk_size
        self.Xt = self.torch.from_numpy(np.ascontiguousarray(X)).to(device)
        self.x_sq = (self.Xt * self.Xt).sum(dim=1)
        mps = str(device).startswith("mps")
        self.sum_dtype = self.torch.float32 if mps else self.torch.float64

    def assign(self, centers, offsets=None):
        """Labels (exact on near-ties) and the per-cluster float64 sums and counts."""
        torch = self.torch
        n, k = self.X.shape[0], centers.shape[0]
        shift_np = level_shift(centers, offsets)
        tol = tie_tolerance(self.X.dtype, self.X.shape[1])
        C = torch.from_numpy(np.ascontiguousarray(centers)).to(self.device)
        shift = torch.from_numpy(shift_np).to(self.device)
        col_scale = torch.from_numpy(
            centre_scales(centers, shift_np).astype(self.X.dtype)).to(self.device)
        # About 64 MiB per block: the distances and the float64 copy for the sums.
        chunk = self.chunk_size or _row_chunks(n, k + 2 * self.X.shape[1], 64 * 2**20)
        labels = np.empty(n, dtype=np.int64)
        sums = torch.zeros((k, self.X.shape[1]), dtype=self.sum_dtype, device=self.device)
        with torch.no_grad():
            for start in range(0, n, chunk):
                stop = min(start + chunk, n)
                block = self.Xt[start:stop]
                d = torch.addmm(shift, block, C.T, alpha=-2)
                best, tied = pick_with_ties_torch(d, self.x_sq[start:stop], tol, col_scale)
                settle_ties_torch(best, tied, self.X[start:stop], centers, offsets)
                sums.index_add_(0, best, block.to(self.sum_dtype))
                labels[start:stop] = best.cpu().numpy()
        sums = sums.cpu().numpy().astype(np.float64, copy=False)
        return Assignment(labels, sums, np.bincount(labels, minlength=k))


def make_backend(X, backend="numpy", *, device="cpu", chunk_size=None, n_jobs=None):
    """A backend over the rows ``X``: ``"numpy"`` (host BLAS) or ``"torch"`` on ``device``."""
    if backend == "numpy":
        if str(device) != "cpu":
            raise ValueError(
                f"backend='numpy' runs on the CPU only, got device={device!r}; use "
                "backend='torch' for other devices."
            )
        return NumpyBackend(X, chunk_size=chunk_size, n_jobs=n_jobs)
    if backend == "torch":
        return TorchBackend(X, device=device, chunk_size=chunk_size)
    raise ValueError(f"backend must be 'numpy' or 'torch', got {backend!r}.")


# ------------------------------------------------------------------------ driver
def _cluster_errors(assignment, centers, x_sq64):
    """Per-cluster sums of squared distances to ``centers``, exactly from the labels,
    sums and counts: ``sum |x|^2 - 2 c . s + n |c|^2`` in float64 (clipped at 0)."""
    labels, sums, counts = assignment
    c64 = centers.astype(np.float64)
    norms = np.bincount(labels, weights=x_sq64, minlength=len(counts))
    err = norms - 2 * np.einsum("ij,ij->i", c64, sums) + counts * np.einsum("ij,ij->i", c64, c64)
    return np.maximum(err, 0)


def _total_sum_of_squares(X, x_sq64):
    """Sum of squared distances of the rows of ``X`` to their mean (one BLAS product
    for the mean); it only feeds the ``tol`` test, which needs a few digits."""
    n = X.shape[0]
    mean = (np.ones(n, dtype=X.dtype) @ X).astype(np.float64) / n
    return float(x_sq64.sum()) - n * float(mean @ mean)


def _farthest_rows(X, centers, labels, count):
    """The ``count`` rows farthest from their centres (exact float64 distances)."""
    step = _cache_rows(X.shape[1])
    dist = np.empty(X.shape[0])
    for s in range(0, X.shape[0], step):
        diff = X[s : s + step].astype(np.float64) - centers[labels[s : s + step]]
        dist[s : s + step] = np.einsum("ij,ij->i", diff, diff)
    return np.argsort(-dist, kind="stable")[:count]


def _weak_clusters(X, centers, labels, candidates, mean_error):
    """The ``candidates`` (small clusters) whose rows gain less, on average, than the
    mean squared error per row by having their own centre (exact float64 distances).

    A starved centre among near-isotropic residuals serves its few rows hardly better
    than the next centre would: it is worth re-seeding. A small cluster of outliers
    (heavy tails) saves its rows far more than the typical error: it is kept.
    """
    if candidates.size == 0:
        return candidates
    rows = np.flatnonzero(np.isin(labels, candidates))
    c64 = centers.astype(np.float64)
    c_sq = np.einsum("ij,ij->i", c64, c64)
    gain = np.zeros(centers.shape[0])
    step = max(1, (8 * 2**20) // max(centers.size, 1))
    for start in range(0, rows.size, step):
        part = rows[start : start + step]
        x = X[part].astype(np.float64)
        d = c_sq - 2 * x @ c64.T + np.einsum("ij,ij->i", x, x)[:, None]
        own = labels[part]
        idx = np.arange(part.size)
        first = d[idx, own].copy()
        d[idx, own] = np.inf
        gain += np.bincount(own, weights=d.min(axis=1) - first, minlength=gain.size)
    counts = np.bincount(labels[rows], minlength=gain.size)
    return candidates[gain[candidates] < mean_error * counts[candidates]]


def _split_large(centers, small, counts, spread, rng):
    """Move the ``small`` centres next to large ones: ``c + delta``, a small random step
    scaled by the parent's spread (mean squared distance of its rows)."""
    weights = counts.astype(np.float64)
    weights[small] = 0
    parents = rng.choice(len(counts), size=small.size, p=weights / weights.sum())
    n_features = centers.shape[1]
    scale = 1e-2 * np.sqrt(spread[parents] / n_features)
    delta = rng.standard_normal((small.size, n_features)) * scale[:, None]
    # A parent chosen several times gets several different steps; it keeps its own
    # centre, and the new centres surround it, so its points split between them.
    centers[small] = centers[parents] + delta.astype(centers.dtype)


def lloyd(backend, centers, options, *, rng, progress=None, balancer=None):
    """Lloyd's iterations from ``centers`` over the rows of ``backend``.

    Plain runs are over-relaxed: once an update has lowered the inertia, the next one
    moves the centres ``step`` times as far as Lloyd's update would (``step`` grows by
    ``options.step_growth`` per successful update, up to ``options.max_step``); a step
    that raises the inertia is undone and the step starts again at 1, so the accepted
    inertia never rises. Where the inertia falls slowly (the nearly structureless deep
    levels of a residual quantiser) the centres drift the same way for many passes and
    the longer steps get there in fewer. Balanced runs (``balancer`` given) take
    Lloyd's own steps under offsets refitted before every pass.

    Parameters
    ----------
    backend : NumpyBackend or TorchBackend
        The rows and the device that assigns them.
    centers : ndarray of shape (n_clusters, n_features)
        Start, in the rows' dtype (not modified).
    options : LloydOptions
        Iterations, stopping rule, re-seeding, over-relaxation.
    rng : RandomState
        For splitting small clusters.
    progress : Progress, default=None
        Updated once per pass.
    balancer : object, default=None
        Balanced k-means: ``balancer.offsets(centers, warm)`` gives the per-centre
        offsets for a pass (warm: the previous pass's, or None) and
        ``balancer.final(centers, warm)`` those returned with the result.

    Returns
    -------
    result : KMeansResult or BalancedKMeansResult
        The latter (with the final offsets) when balanced.
    """
    X = backend.X
    n, n_clusters = X.shape[0], centers.shape[0]
    x_sq64 = np.einsum("ij,ij->i", X, X, dtype=np.float64)
    progress = progress or Progress(options.max_iter, "k-means", 0)
    total = None  # sum of squares about the mean, computed when first needed
    previous = np.inf
    reseeded = False
    step, fallback, offsets = 1.0, None, None
    n_iter, stopped = options.max_iter, False
    for it in range(1, options.max_iter + 1):
        if balancer is not None:
            offsets = balancer.offsets(centers, offsets)
        assignment = backend.assign(centers, offsets)
        errors = _cluster_errors(assignment, centers, x_sq64)
        inertia = float(errors.sum())
        if fallback is not None and inertia > previous:
            centers, fallback, step = fallback, None, 1.0
            progress.update()
            continue
        decrease = previous - inertia
        if balancer is not None:
            # The offsets move too, so the inertia can rise: that is the balancing still
            # reshaping the clusters, not convergence.
            stopped = 0 <= decrease <= options.tol * inertia
        elif not reseeded and decrease <= options.tol * inertia:
            if total is None:
                total = _total_sum_of_squares(X, x_sq64)
            stopped = decrease <= 10 * options.tol * (total - inertia)
        if stopped:
            n_iter = it - 1
            break
        previous = inertia
        labels, sums, counts = assignment
        nonempty = counts > 0
        new_centers = centers.copy()
        new_centers[nonempty] = (sums[nonempty] / counts[nonempty, None]).astype(X.dtype)
        empty = np.empty(0, dtype=np.int64)
        if balancer is None and options.split_small is None:
            empty = np.flatnonzero(~nonempty)
            if empty.size:
                new_centers[empty] = X[_farthest_rows(X, centers, labels, empty.size)]
        elif balancer is None:
            small = counts < max(1.0, options.split_small * n / n_clusters)
            if small.any() and not small.all():
                empty = np.union1d(
                    np.flatnonzero(~nonempty),
                    _weak_clusters(X, centers, labels, np.flatnonzero(small & nonempty),
                                   inertia / n),
                ).astype(np.int64)
            if empty.size:
                spread = errors / np.maximum(counts, 1)
                _split_large(new_centers, empty, counts, spread, rng)
        reseeded = bool(empty.size)
        if balancer is not None or reseeded or step == 1.0:
            centers, fallback = new_centers, None
        else:
            fallback = new_centers
            centers = centers + np.asarray(step, dtype=centers.dtype) * (new_centers - centers)
        if balancer is None:
            step = 1.0 if reseeded else min(step * options.step_growth, options.max_step)
        progress.update()
    if balancer is not None:
        offsets = balancer.final(centers, offsets)
    if not stopped or balancer is not None:
        # The last pass's labels belong to other centres (or offsets): assign again.
        assignment = backend.assign(centers, offsets)
        inertia = float(_cluster_errors(assignment, centers, x_sq64).sum())
        if fallback is not None and inertia > previous:
            centers = fallback
            assignment = backend.assign(centers, offsets)
            inertia = float(_cluster_errors(assignment, centers, x_sq64).sum())
    if balancer is None:
        return KMeansResult(centers, assignment.labels, inertia, n_iter)
    return BalancedKMeansResult(centers, assignment.labels, inertia, n_iter, offsets)
