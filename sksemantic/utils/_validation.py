"""Validation helpers shared by every estimator.

scikit-learn's ``validate_data`` does the heavy lifting (dtype, shape, finiteness,
``n_features_in_``); these helpers add the checks that depend on the data *and* a
parameter, with messages that name the parameter.
"""

import numbers

import numpy as np
from sklearn.utils import check_array

__all__ = ["check_n_neighbors", "check_query_count", "check_int_codes"]


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
