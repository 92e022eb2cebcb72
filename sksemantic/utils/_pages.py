"""Keep a pass over a memory-mapped array from holding the array resident."""

import ctypes
import functools
import mmap
import sys

import numpy as np
from sklearn.utils import check_array

_MADV_DONTNEED = 4  # Linux
_MADV_NOHUGEPAGE = 15
_PAGE = mmap.PAGESIZE
try:
    _byte_bounds = np.lib.array_utils.byte_bounds
except AttributeError:  # numpy < 2
    _byte_bounds = np.byte_bounds


@functools.cache
def _madvise():
    """libc's ``madvise``, or None where there is none."""
    try:
        return ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):  # pragma: no cover - no libc madvise
        return None


def _shared_map(array):
    """The ``np.memmap`` under ``array`` if it maps its file shared (modes ``r``, ``r+``,
    ``w+``), else None: a copy-on-write map (``c``) keeps changes only in its pages."""
    a = array
    while isinstance(a, np.ndarray):
        if isinstance(a, np.memmap):
            return a if a.mode in ("r", "r+", "w+") else None
        a = a.base
    return None


def release_pages(array):
    """Drop the pages of a memory-mapped array from this process's resident set.

    A pass over a file-backed ``np.memmap`` leaves every page it touched mapped, so the
    process's resident size grows to the file's size even though it holds no more than
    a chunk at a time. The pages stay in the page cache (a shared file map loses
    nothing: the next access maps them again, written or not), so nothing is read or
    written again that the kernel did not drop anyway. Does nothing on other systems,
    for arrays that are not shared maps, and for empty arrays.

    Parameters
    ----------
    array : ndarray
        A memory map, or a view of one: its whole span is released.
    """
    if not sys.platform.startswith("linux") or array.size == 0:
        return
    if _shared_map(array) is None:
        return
    madvise = _madvise()
    if madvise is None:  # pragma: no cover
        return
    lo, hi = _byte_bounds(array)
    start = lo - lo % _PAGE
    madvise(ctypes.c_void_p(start), ctypes.c_size_t(hi - start), ctypes.c_int(_MADV_DONTNEED))


def small_pages(array):
    """Ask the kernel to back a new, not yet written array with ordinary pages.

    NumPy advises transparent huge pages for large arrays; where the kernel compacts
    memory to find them on the first write (``defrag`` set to ``madvise``), filling a
    fresh array of a few hundred megabytes stalls for a large share of a second. An
    array written once and then read in small blocks gains nothing from huge pages.
    Does nothing off Linux and for arrays of less than a page.

    Parameters
    ----------
    array : ndarray
        A newly allocated array that owns its memory.

    Returns
    -------
    array : ndarray
        The same array.
    """
    if not sys.platform.startswith("linux") or array.nbytes < _PAGE:
        return array
    madvise = _madvise()
    if madvise is None:  # pragma: no cover
        return array
    lo, hi = _byte_bounds(array)
    start = lo + (-lo) % _PAGE  # whole pages inside the array only
    if hi > start:
        madvise(ctypes.c_void_p(start), ctypes.c_size_t(hi - start),
                ctypes.c_int(_MADV_NOHUGEPAGE))
    return array


def take_rows(X, rows, *, step=8192):
    """``X[rows]`` for sorted ``rows``, gathered ``step`` rows at a time from a memory
    map, its pages released after each: a scattered gather maps (with the kernel's
    fault-around) pages all over the file, which would otherwise stay resident.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Rows, in memory or memory-mapped.
    rows : ndarray of int
        Sorted row numbers.
    step : int, default=8192
        Rows per gather between two releases.

    Returns
    -------
    out : ndarray of shape (len(rows), n_features)
        In memory.
    """
    if _shared_map(X) is None:
        return X[rows]
    out = np.empty((len(rows), *X.shape[1:]), dtype=X.dtype)
    for s in range(0, len(rows), step):
        out[s : s + step] = X[rows[s : s + step]]
        release_pages(X)
    return out


def check_mapped(check, X, *, input_name="X", step=2**16, **kwargs):
    """``check(X, **kwargs)``, scanning a memory-mapped ``X`` for non-finite values a
    chunk at a time with its pages released, so that validating a file does not map
    all of it into the process.

    Parameters
    ----------
    check : callable
        ``sklearn.utils.check_array`` or a ``validate_data`` bound to an estimator
        (it must take ``ensure_all_finite``).
    X : array-like
        The data.
    input_name : str, default="X"
        The name errors give it.
    step : int, default=65536
        Rows per chunk of the scan.
    **kwargs
        Passed on to ``check``.

    Returns
    -------
    X : ndarray
        What ``check`` returns.
    """
    if check is check_array:
        kwargs["input_name"] = input_name
    if not isinstance(X, np.ndarray) or _shared_map(X) is None:
        return check(X, **kwargs)
    out = check(X, ensure_all_finite=False, **kwargs)
    if _shared_map(out) is None:  # converted into memory: an ordinary check
        return check_array(out, dtype=None, input_name=input_name)
    row_scan(lambda b: check_array(b, dtype=None, ensure_min_samples=0,
                                   input_name=input_name), out, step=step)
    return out


def row_scan(fn, X, *, step=2**16):
    """``fn`` over ``X``: one call on an array in memory; on a memory-mapped ``X``, one
    call per chunk of ``step`` rows, each chunk's pages released after it.

    Parameters
    ----------
    fn : callable
        Takes rows, returns anything.
    X : ndarray of shape (n_samples, ...)
        The rows.
    step : int, default=65536
        Rows per chunk of a memory map.

    Returns
    -------
    results : list
        ``fn``'s results, chunk after chunk (one for an array in memory).
    """
    if not isinstance(X, np.ndarray) or _shared_map(X) is None:
        return [fn(X)]
    out = []
    for s in range(0, X.shape[0], step):
        out.append(fn(X[s : s + step]))
        release_pages(X[s : s + step])
    return out
