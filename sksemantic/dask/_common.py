"""What the dask helpers share: lazy imports, the client, row blocks."""

import functools

import numpy as np

from ..utils import import_optional, reuse_freed_memory

__all__ = [
    "as_row_blocks",
    "get_client",
    "import_dask",
    "is_dask_array",
    "merge_shard_answers",
    "worker_task",
]


def worker_task(func):
    """``func`` as a task for the workers: its temporary arrays reuse freed memory
    while it runs (see :func:`~sksemantic.utils.reuse_freed_memory`; a dask worker
    otherwise maps and faults in every temporary array afresh)."""
    @functools.wraps(func)
    def task(*args, **kwargs):
        with reuse_freed_memory():
            return func(*args, **kwargs)
    return task


def import_dask():
    """``(dask, dask.array)``, or an ImportError naming the ``dask`` extra."""
    dask = import_optional("dask", purpose="sksemantic.dask")
    da = import_optional("dask.array", purpose="sksemantic.dask")
    return dask, da


def is_dask_array(X):
    """Whether ``X`` is a dask array (without importing dask when it is not loaded)."""
    import sys

    da = sys.modules.get("dask.array")
    return da is not None and isinstance(X, da.Array)


def as_row_blocks(X):
    """``X`` as a 2-D dask array whose blocks span all columns (rows split only)."""
    _, da = import_dask()
    X = da.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got {X.ndim}-D.")
    if any(c != c for c in X.shape):  # NaN: unknown chunk sizes
        raise ValueError(
            "X has unknown chunk sizes (its number of rows is not known); call "
            "X.compute_chunk_sizes() first."
        )
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    return X


def get_client():
    """The distributed client in use, or an error saying how to start one."""
    distributed = import_optional("distributed", purpose="sksemantic.dask")
    try:
        return distributed.get_client()
    except ValueError as exc:
        raise ValueError(
            "No dask.distributed Client is running: sharded indexes keep their shards "
            "in the workers' memory, so they need one. Start one first, e.g. "
            "client = distributed.Client(distributed.LocalCluster()) or a Client "
            "connected to your cluster's scheduler."
        ) from exc


def merge_shard_answers(parts, k):
    """Merge the shards' answers for the same queries into each row's best ``k``.

    Parameters
    ----------
    parts : list of tuple
        One ``(scores, ids, ...)`` per shard, each of shape (n_queries, k_shard) as
        :meth:`~sksemantic.neighbors.BaseIndex.query` returns them, with global ids
        (``-1`` where a shard found nothing).
    k : int
        Results kept per query.

    Returns
    -------
    scores, ids : ndarray of shape (n_queries, k)
        Best first; ties by the lower id; ``-inf`` and ``-1`` where fewer than ``k``
        were found.

    Examples
    --------
    >>> import numpy as np
    >>> from sksemantic.dask import merge_shard_answers
    >>> a = (np.array([[0.9, 0.5]], np.float32), np.array([[0, 1]]))
    >>> b = (np.array([[0.7, 0.6]], np.float32), np.array([[12, 10]]))
    >>> merge_shard_answers([a, b], 3)[1].tolist()
    [[0, 12, 10]]
    """
    scores = np.concatenate([np.asarray(p[0], dtype=np.float32) for p in parts], axis=1)
    ids = np.concatenate([np.asarray(p[1], dtype=np.int64) for p in parts], axis=1)
    if scores.shape[1] < k:  # fewer columns than asked for: padded with empty entries
        pad = k - scores.shape[1]
        scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf)
        ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=-1)
    scores[ids < 0] = -np.inf
    # Shards are disjoint (no id is offered twice): one sort of each row's entries by
    # score, then id (a dense sort of a few dozen columns is many times faster than
    # merging them as ragged candidates).
    order = np.lexsort((ids, -scores), axis=1)[:, :k]
    best_s = np.take_along_axis(scores, order, axis=1)
    best_i = np.take_along_axis(ids, order, axis=1)
    best_i[best_s == -np.inf] = -1
    return best_s, best_i
