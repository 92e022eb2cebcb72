"""Memory pages: keep a pass over a memory-mapped array from holding the array
resident, back fresh arrays with ordinary pages, and let a task reuse the memory it
frees."""

import contextlib
import ctypes
import functools
import mmap
import os
import sys
import threading
import time

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
def _libc_function(name):
    """The C library's function ``name`` (errno kept), or None where there is none."""
    try:
        return getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):  # no such libc function (not glibc, Windows)
        return None


def _madvise():
    """libc's ``madvise``, or None where there is none."""
    return _libc_function("madvise")


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


# glibc's mallopt parameters, and the defaults its environment variables override.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_GLIBC_DEFAULT_THRESHOLD = 128 * 1024
#: The largest mmap threshold glibc accepts on 64-bit systems.
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024
#: Seconds a block must last for its end to call ``malloc_trim``.
_TRIM_AFTER = 0.5
_reuse_lock = threading.Lock()
_reuse_depth = 0
_reuse_since = 0.0


def _glibc_malloc():
    """``(mallopt, malloc_trim)`` of glibc, or None elsewhere (musl lacks
    ``malloc_trim``)."""
    mallopt, malloc_trim = _libc_function("mallopt"), _libc_function("malloc_trim")
    return None if mallopt is None or malloc_trim is None else (mallopt, malloc_trim)


def _fixed_thresholds():
    """The trim and mmap thresholds the environment fixed, or None when it fixed none
    (glibc then adapts them itself, and they are best left alone)."""
    trim = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    mmap_ = os.environ.get("MALLOC_MMAP_THRESHOLD_")
    if trim is None and mmap_ is None:
        return None
    try:
        return (int(trim or _GLIBC_DEFAULT_THRESHOLD), int(mmap_ or _GLIBC_DEFAULT_THRESHOLD))
    except ValueError:
        return None


@contextlib.contextmanager
def reuse_freed_memory():
    """Within the block, freed memory is reused rather than given back to the system;
    after it, the memory freed is given back.

    Dask's workers start with ``MALLOC_TRIM_THRESHOLD_`` set, so that glibc returns
    freed memory at once. That also fixes its mmap threshold at 128 KiB: every
    temporary array above it is mapped fresh and faulted in page by page, and a
    task that allocates such arrays chunk after chunk spends as much time in the
    kernel as in its own work. Within the block, glibc keeps freed memory and serves
    arrays up to 32 MiB from it; on leaving, the thresholds the environment set come
    back and, after a block of at least half a second, ``malloc_trim`` returns what
    was kept (it walks every free chunk: tens of milliseconds in a large, fragmented
    heap, too much after a short task, which keeps little anyway; glibc's restored
    threshold trims the heap's top at the next free). Nested and concurrent blocks
    share one setting, restored when the last one ends.

    Does nothing unless glibc's thresholds were fixed by its environment variables
    (otherwise glibc adapts them by itself) or off glibc.
    """
    global _reuse_depth, _reuse_since
    fixed = _fixed_thresholds()
    malloc = _glibc_malloc() if fixed is not None else None
    if malloc is None:
        yield
        return
    mallopt, malloc_trim = malloc
    with _reuse_lock:
        if _reuse_depth == 0:
            mallopt(_M_TRIM_THRESHOLD, 1 << 30)
            mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)
            _reuse_since = time.monotonic()
        _reuse_depth += 1
    try:
        yield
    finally:
        with _reuse_lock:
            _reuse_depth -= 1
            if _reuse_depth == 0:
                mallopt(_M_TRIM_THRESHOLD, fixed[0])
                mallopt(_M_MMAP_THRESHOLD, fixed[1])
                if time.monotonic() - _reuse_since >= _TRIM_AFTER:
                    malloc_trim(0)
