"""What the dask helpers share: lazy imports, the client, row blocks."""

from ..utils import import_optional

__all__ = ["as_row_blocks", "get_client", "import_dask", "is_dask_array"]


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
