"""Validation helpers shared by every estimator.

scikit-learn's ``validate_data`` does the heavy lifting (dtype, shape, finiteness,
``n_features_in_``); these helpers add the checks that depend on the data *and* a
parameter, with messages that name the parameter.
"""

import math
import numbers

import numpy as np
from sklearn.utils import check_array

__all__ = ["check_n_neighbors", "check_query_count", "check_int_codes", "check_value_range"]




def check_n_neighbors(n_neighbors, n_samples_fit, *, name="n_neighbors", include_self=True):
    """Check that ``n_neighbors`` neighbours can be found among ``n_samples_fit`` points.

    Parameters
    ----------
    n_neighbors : int
        Requested number of neighbours.
    n_samples_fit : int
        Number of indexed points.
    name : str, default="n_neighbors"
        Parameter name used in the error message.
    include_self : bool, default=True
        Whether the query itself (when indexed) counts as one of the neighbours found,
        in which case ``n_neighbors`` must be smaller than ``n_samples_fit``.

    Returns
    -------
    n_neighbors : int
        The validated value.
    """
    if not isinstance(n_neighbors, numbers.Integral) or isinstance(n_neighbors, bool):
        raise TypeError(f"{name} must be an int, got {type(n_neighbors).__name__}.")
    if n_neighbors < 1:
        raise ValueError(f"{name} must be >= 1, got {n_neighbors}.")
    limit = n_samples_fit - 1 if include_self else n_samples_fit
    if n_neighbors > limit:
        raise ValueError(
            f"{name}={n_neighbors} is too large for {n_samples_fit} indexed samples: "
            f"at most {limit} neighbours exist"
            + (" besides the point itself." if include_self else ".")
        )
    return int(n_neighbors)


def check_query_count(X, *, name="X", min_samples=1):
    """Raise a ValueError naming ``name`` when ``X`` has fewer than ``min_samples`` rows."""
    n = X.shape[0]
    if n < min_samples:
        raise ValueError(
            f"{name} has {n} sample(s); at least {min_samples} are needed."
        )
    return X


def check_int_codes(codes, *, n_levels=None, name="codes", ensure_min_samples=1):
    """Validate an integer code array of shape (n_samples, n_levels).

    Parameters
    ----------
    codes : array-like of shape (n_samples, n_levels)
        Integer codes.
    n_levels : int, default=None
        Expected number of columns, if known.
    name : str, default="codes"
        Name used in error messages.
    ensure_min_samples : int, default=1
        Fewest rows accepted; 0 lets an empty batch of shape (0, n_levels) through.

    Returns
    -------
    codes : ndarray of shape (n_samples, n_levels), dtype int64
    """
    arr = np.asarray(codes)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and (arr.size or not ensure_min_samples) and np.all(
            np.isfinite(arr)
        ) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}.")
    arr = check_array(
        arr, dtype=np.int64, ensure_2d=True, input_name=name,
        ensure_min_samples=ensure_min_samples,
    )
    if n_levels is not None and arr.shape[1] != n_levels:
        raise ValueError(f"{name} has {arr.shape[1]} columns; expected {n_levels} (one per level).")
    return arr


def check_value_range(X, *, dtype=np.float32, name="X", norm=None, center=None,
                      purpose="the computation"):
    """Raise a ValueError naming ``name`` when ``X`` does not fit arithmetic in ``dtype``.

    Casting to float32 turns values beyond its range into ``inf``, and squaring values
    above about ``1e19`` overflows it (``1e154`` for float64); either silently spoils
    every distance computed from them. This check raises instead.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Values of any float dtype.
    dtype : dtype, default=np.float32
        The dtype the computation runs in.
    name : str, default="X"
        Name of the input in the error message.
    norm : {None, 1, 2}, default=None
        With 2, every row's Euclidean norm (after subtracting ``center``) must stay
        below ``sqrt(max) / 2``, so that squared norms, inner products and squared
        distances between any two rows are finite in ``dtype``; with 1, every row's L1
        norm below ``max / 2`` (sums of absolute differences). With None only the
        values themselves are checked.
    center : ndarray of shape (n_features,), default=None
        Subtracted from the rows before their norms are taken.
    purpose : str, default="the computation"
        What needs the norms, for the error message.

    Returns
    -------
    X : ndarray
        The input, unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> from sksemantic.utils._validation import check_value_range
    >>> check_value_range(np.array([[1.0, 2.0]]), norm=2).shape
    (1, 2)
    >>> check_value_range(np.array([[3.4e39, 0.0]]))
    Traceback (most recent call last):
    ...
    ValueError: X has values up to 3.4e+39, beyond float32's range (+-3.4e+38); rescale X.
    """
    X = np.asarray(X)
    if X.size == 0:
        return X
    dtype = np.dtype(dtype)
    big = float(np.finfo(dtype).max)
    # Two reductions instead of np.abs(X).max(): no temporary copy of X.
    top = max(float(X.max()), -float(X.min()))
    if top > big:
        what = "values too large" if np.isinf(top) else f"values up to {top:.2g}"
        raise ValueError(
            f"{name} has {what}, beyond {dtype.name}'s range (+-{big:.2g}); rescale {name}."
        )
    if norm is None:
        return X
    limit = math.sqrt(big) / 2 if norm == 2 else big / 2
    shift = 0.0 if center is None else float(np.max(np.abs(center)))
    n, d = X.shape
    # Cheap bound first: only data near the limit pays for the exact norms.
    bound = (top + shift) * (math.sqrt(d) if norm == 2 else d)
    if bound <= limit:
        return X
    worst = 0.0
    step = max(1, 2**20 // max(1, d))
    for s in range(0, n, step):
        block = np.asarray(X[s : s + step], dtype=np.float64)
        if center is not None:
            block = block - center
        # Divided by the largest value first: float64 squares of big values overflow.
        scale = float(np.max(np.abs(block))) or 1.0
        block /= scale
        if norm == 2:
            size = np.sqrt(np.einsum("ij,ij->i", block, block))
        else:
            size = np.abs(block).sum(axis=1)
        worst = max(worst, scale * float(size.max()))
    if worst > limit:
        what = "squares them" if norm == 2 else "sums their absolute differences"
        raise ValueError(
            f"{name} has values up to {top:.2g}, rows of norm up to {worst:.2g}; "
            f"{purpose} {what}, which overflows {dtype.name} above a norm of {limit:.2g}: "
            f"rescale {name}."
        )
    return X
