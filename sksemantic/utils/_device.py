"""Checks shared by the residual encoders: the compute device and codewords per level."""

from numbers import Integral

import numpy as np

from ._optional import import_optional

__all__ = ["check_n_clusters_per_level", "resolve_device"]


def resolve_device(device, *, name="device"):
    """Check that ``device`` can be used now; return it as a string.

    ``"cpu"`` always works (numpy). ``"cuda"``, ``"cuda:N"`` and ``"mps"`` need torch and
    the hardware; the error says which is missing. ``"auto"`` picks CUDA when available,
    else Apple's MPS, else the CPU (also when torch is not installed).

    Parameters
    ----------
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
    name : str, default="device"
        Parameter name used in error messages.

    Returns
    -------
    device : str
        A device that exists on this machine (never ``"auto"``).
    """
    if not isinstance(device, str):
        raise TypeError(f"{name} must be a str such as 'cpu' or 'cuda', got {device!r}.")
    if device == "cpu":
        return device
    if device == "auto":
        try:
            torch = import_optional("torch")
        except ImportError:
            return "cpu"
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"
    kind, _, index = device.partition(":")
    if kind not in ("cuda", "mps") or (index and not index.isdigit()):
        raise ValueError(
            f"{name} must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r}."
        )
    torch = import_optional("torch", purpose=f"{name}={device!r}")
    mps = getattr(torch.backends, "mps", None)
    available = (
        torch.cuda.is_available() if kind == "cuda" else mps is not None and mps.is_available()
    )
    if not available:
        raise ValueError(
            f"{name}={device!r} was requested but torch reports no {kind} device on this "
            "machine; use 'cpu' or 'auto'."
        )
    if kind == "cuda" and index and int(index) >= torch.cuda.device_count():
        raise ValueError(
            f"{name}={device!r} was requested but this machine has "
            f"{torch.cuda.device_count()} cuda device(s), numbered from 0."
        )
    return device


def check_n_clusters_per_level(n_clusters, n_levels, *, n_samples=None, name="n_clusters"):
    """Codewords per level from an int (every level) or one int per level.

    Parameters
    ----------
    n_clusters : int or array-like of int
        One value for every level, or ``n_levels`` values.
    n_levels : int
        Number of levels.
    n_samples : int, default=None
        Training rows; when given, no level may have more codewords than rows.
    name : str, default="n_clusters"
        Parameter name used in error messages.

    Returns
    -------
    n_clusters : list of int
        One positive value per level.
    """
    if isinstance(n_clusters, Integral) and not isinstance(n_clusters, bool):
        values = [int(n_clusters)] * n_levels
    else:
        arr = np.asarray(n_clusters)
        if arr.ndim != 1 or arr.shape[0] != n_levels or arr.dtype.kind not in "iu":
            raise ValueError(
                f"{name} must be an int or {n_levels} ints (one per level, n_levels="
                f"{n_levels}), got {n_clusters!r}."
            )
        values = [int(v) for v in arr]
    if min(values) < 1:
        raise ValueError(f"{name} must be >= 1 at every level, got {n_clusters!r}.")
    if n_samples is not None and max(values) > n_samples:
        raise ValueError(
            f"{name}={max(values)} exceeds n_samples={n_samples}: every codeword needs at "
            "least one training row. Use fewer codewords or more data."
        )
    return values
