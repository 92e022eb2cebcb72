"""Residual encoding and decoding kernels (numpy and torch) shared by the residual encoders.

Encoding picks, level by level, the codeword nearest to the current residual (after an
optional per-codeword offset, the Sinkhorn potentials of balanced fits) and subtracts it.
Distances come from one matrix product per block of rows. Matrix products round
differently on different backends and thread counts, so a row whose best and second-best
codewords are within the rounding bound is re-decided exactly: in float64, on the CPU,
from the residual (which both backends compute bit for bit alike, by IEEE subtraction).
That is what makes numpy and torch return the same codes for the same codebooks (the
same rule as the k-means passes of :mod:`sksemantic.cluster._lloyd`).
"""

import numpy as np

from ..cluster._lloyd import (
    _cache_rows,
    _row_chunks,
    centre_scales,
    level_shift,
    pick_with_ties,
    pick_with_ties_torch,
    settle_ties,
    settle_ties_torch,
    tie_tolerance,
)
from ..utils import import_optional, run_spans

__all__ = [
    "encode_numpy", "encode_torch", "decode_numpy", "level_shift", "tie_tolerance",
    "shift_by_codewords",
]


def shift_by_codewords(out, codebook, codes, *, sign=-1, n_jobs=None):
    """``out += sign * codebook[codes]`` in place, a block of rows at a time.

    The one-shot expression builds a temporary the size of ``out``, whose fresh pages
    cost more than the arithmetic. Blocks are shared among ``n_jobs`` threads (None:
    every core); each row is updated alone, so the result does not depend on them.
    """
    step = _cache_rows(out.shape[1])

    def work(start, stop):
        rows = codebook[codes[start:stop]]
        if sign < 0:
            out[start:stop] -= rows
        else:
            out[start:stop] += rows

    # ``out`` is written in place: threads of this process (shared memory).
    run_spans(work, out.shape[0], step, n_jobs if out.size >= 2**22 else 1, shared=True)


def encode_numpy(X, codebooks, offsets=None, *, chunk_size=None, n_jobs=None, residual_out=None):
    """Residual codes of ``X`` for the given codebooks, with numpy/BLAS.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Data in the codebooks' dtype.
    codebooks : list of ndarray of shape (n_clusters_l, n_features)
        One codebook per level.
    offsets : list of (ndarray or None), default=None
        Per-level codeword offsets (balanced fits); None for plain nearest codewords.
    chunk_size : int, default=None
        Rows per block.
    n_jobs : int, default=None
        Threads through joblib; an active joblib backend is honoured (None: every
        core).
    residual_out : ndarray of shape (n_samples, n_features), default=None
        When given, receives what the codes leave of each row (``X`` minus its
        reconstruction), computed on the way at no extra pass over the data.

    Returns
    -------
    codes : ndarray of shape (n_samples, n_levels), dtype int64
    """
    n, n_features = X.shape
    n_levels = len(codebooks)
    offsets = offsets or [None] * n_levels
    shifts = [level_shift(c, o) for c, o in zip(codebooks, offsets, strict=True)]
    scales = [centre_scales(c, s) for c, s in zip(codebooks, shifts, strict=True)]
    neg2 = [c * np.asarray(-2, dtype=c.dtype) for c in codebooks]
    tol = tie_tolerance(X.dtype, n_features)
    k_max = max(c.shape[0] for c in codebooks)
    # Blocks of about 4 MiB: a block's residual stays in cache through every level.
    chunk = chunk_size or min(_row_chunks(n, k_max + n_features, 4 * 2**20), max(256, -(-n // 2)))
    codes = np.empty((n, n_levels), dtype=np.int64)

    def work(start, stop):
        block_codes = np.empty((stop - start, n_levels), dtype=np.int64)
        if residual_out is None:
            residual = np.array(X[start:stop], copy=True)
        else:  # work in the caller's buffer: no block copy to allocate and write back
            residual = residual_out[start:stop]
            residual[...] = X[start:stop]
        for level, (cb, shift) in enumerate(zip(codebooks, shifts, strict=True)):
            d = residual @ neg2[level].T  # exactly -2 r.c (a power of two)
            norms = np.einsum("ij,ij->i", residual, residual)
            best, tied = pick_with_ties(d, norms, tol, shift=shift, col_scale=scales[level])
            settle_ties(best, tied, residual, cb, offsets[level])
            block_codes[:, level] = best
            residual -= cb[best]
        return block_codes

    def store(span, block_codes):
        codes[span[0] : span[1]] = block_codes

    # The residuals go into the caller's buffer in place: threads of this process
    # (shared memory) then; the codes are returned, so they may go to other processes.
    run_spans(work, n, chunk, n_jobs, shared=residual_out is not None, on_result=store)
    return codes


def encode_torch(X, codebooks, offsets=None, *, device="cpu", chunk_size=None,
                 residual_out=None):
    """Residual codes of ``X`` computed with torch on ``device``; same codes as numpy.

    Parameters are as for :func:`encode_numpy`, plus the torch ``device``. The residual
    is subtracted level by level on the host, as numpy does, so it is the same too.
    """
    torch = import_optional("torch", purpose="device='cuda' or 'mps'")
    n, n_features = X.shape
    n_levels = len(codebooks)
    offsets = offsets or [None] * n_levels
    shifts = [level_shift(c, o) for c, o in zip(codebooks, offsets, strict=True)]
    tol = tie_tolerance(X.dtype, n_features)
    cbs = [torch.from_numpy(np.ascontiguousarray(c)).to(device) for c in codebooks]
    shs = [torch.from_numpy(s).to(device) for s in shifts]
    scales = [torch.from_numpy(centre_scales(c, s).astype(X.dtype)).to(device)
              for c, s in zip(codebooks, shifts, strict=True)]
    k_max = max(c.shape[0] for c in codebooks)
    chunk = chunk_size or _row_chunks(n, k_max + n_features, 256 * 2**20)
    codes = np.empty((n, n_levels), dtype=np.int64)
    with torch.no_grad():
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            residual = torch.from_numpy(np.ascontiguousarray(X[start:stop])).to(device)
            for level in range(n_levels):
                d = torch.addmm(shs[level], residual, cbs[level].T, alpha=-2)
                norms = (residual * residual).sum(dim=1)
                best, tied = pick_with_ties_torch(d, norms, tol, scales[level])
                settle_ties_torch(best, tied, residual, codebooks[level], offsets[level])
                codes[start:stop, level] = best.cpu().numpy()
                residual = residual - cbs[level][best]
    if residual_out is not None:
        residual_out[...] = X
        for level, cb in enumerate(codebooks):
            shift_by_codewords(residual_out, cb, codes[:, level])
    return codes


def decode_numpy(codes, codebooks, dtype):
    """Sum of the chosen codewords: the reconstruction of each row.

    Built a block of rows at a time, every level added while the block is in cache
    (adding whole levels made a temporary the size of the output per level).
    """
    n, n_features = codes.shape[0], codebooks[0].shape[1]
    out = np.empty((n, n_features), dtype=dtype)
    step = _cache_rows(n_features)
    for start in range(0, n, step):
        block = out[start : start + step]
        np.take(codebooks[0], codes[start : start + step, 0], axis=0, out=block)
        for level in range(1, len(codebooks)):
            block += codebooks[level][codes[start : start + step, level]]
    return out
