"""Torch helpers shared by the modules that use torch (an optional dependency).

Nothing here imports torch at module import: ``import sksemantic`` works without it.
"""

import functools
import importlib.util
from contextlib import contextmanager

from ._parallel import effective_n_jobs

__all__ = ["bf16_matmul_native", "torch_threads"]


def _limited_by_context():
    """Whether joblib's active configuration or a dask worker bounds ``n_jobs=None``."""
    return effective_n_jobs(None, local=True) != effective_n_jobs(-1, local=True)


@contextmanager
def torch_threads(n_jobs):
    """Run the body with ``effective_n_jobs(n_jobs)`` torch threads, then restore.

    ``None`` leaves torch's own setting (by default one thread per core) untouched,
    unless an active joblib ``parallel_config`` sets ``n_jobs`` or this runs inside a
    dask worker: then its share of the cores (torch's threads are its own, not joblib
    tasks, but they must not oversubscribe the cores either).
    """
    import torch

    if n_jobs is None and not _limited_by_context():
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(effective_n_jobs(n_jobs, local=True))
    try:
        yield
    finally:
        torch.set_num_threads(before)


@functools.cache
def bf16_matmul_native():
    """Whether torch is installed and this CPU multiplies bfloat16 natively.

    True on CPUs with AVX512-BF16 or AMX (through oneDNN), where a bfloat16 matrix
    product runs two to three times as fast as a float32 one; elsewhere torch emulates
    it, more slowly than float32. Checked once per process.
    """
    if importlib.util.find_spec("torch") is None:
        return False
    try:
        import torch

        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (ImportError, AttributeError, RuntimeError):
        return False
