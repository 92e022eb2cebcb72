"""DaskEncoder: fit an encoder on a sample of a dask array, encode it block by block."""

from numbers import Integral

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context, clone
from sklearn.utils import check_array, check_random_state, get_tags
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import check_is_fitted

from ..base import VersionedPickleMixin
from ._common import as_row_blocks, import_dask, is_dask_array, worker_task

__all__ = ["DaskEncoder", "sample_rows"]


def sample_rows(X, n_samples, random_state=None):
    """A uniform random sample of rows of ``X``, without replacement, in row order.

    Only the sampled rows are computed and sent back: for a dask array the chunks are
    read where they live and sliced there.

    Parameters
    ----------
    X : dask.array.Array or array-like of shape (n_rows, n_features)
        The rows; a dask array needs known chunk sizes.
    n_samples : int
        Rows to draw; all of them (in order) when ``X`` has no more.
    random_state : int, RandomState instance or None, default=None
        Seeds the draw.

    Returns
    -------
    sample : ndarray of shape (min(n_samples, n_rows), n_features)
    rows : ndarray of int64
        The rows drawn, increasing.

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> from sksemantic.dask import sample_rows
    >>> X = da.from_array(np.arange(20.0).reshape(10, 2), chunks=4)
    >>> sample, rows = sample_rows(X, 3, random_state=0)
    >>> sample.shape, bool((sample[:, 0] == 2 * rows).all())
    ((3, 2), True)
    """
    n = X.shape[0]
    if isinstance(n, float) and np.isnan(n):
        raise ValueError(
            "X has unknown chunk sizes (its number of rows is not known); call "
            "X.compute_chunk_sizes() first."
        )
    n = int(n)
    rng = check_random_state(random_state)
    rows = np.sort(rng.choice(n, min(int(n_samples), n), replace=False)).astype(np.int64)
    if is_dask_array(X):
        return np.asarray(X[rows].compute()), rows
    return np.asarray(X)[rows], rows


class DaskEncoder(VersionedPickleMixin, TransformerMixin, BaseEstimator):
    """Fit an encoder on a random sample of a dask array and encode it block by block.

    The counterpart of dask-ml's ``ParallelPostFit`` for sksemantic's encoders: ``fit``
    draws ``sample_size`` rows uniformly at random (only they are computed and sent to
    this process) and fits a clone of ``estimator`` on them here; ``transform`` of a
    dask array is a lazy dask array of codes, one task per row block, each calling the
    fitted estimator's own ``transform``. The fitted estimator is one node of the task
    graph that every block task refers to, so a cluster ships it to each worker once,
    not with every task. NumPy inputs are encoded here, directly.

    Parameters
    ----------
    estimator : estimator, default=None
        An encoder with ``fit`` and ``transform``, e.g.
        :class:`~sksemantic.quantization.RQKMeansEncoder` (the default, with its
        default parameters) or :class:`~sksemantic.quantization.RQVAEEncoder`.
    sample_size : int, default=100_000
        Rows the encoder is fitted on (all rows when there are fewer). k-means codebooks
        of 256 codewords need some hundreds of rows per codeword.
    random_state : int, RandomState instance or None, default=None
        Seeds the sample (the estimator's own ``random_state`` seeds its fit).

    Attributes
    ----------
    estimator_ : estimator
        The fitted clone of ``estimator``.
    sample_rows_ : ndarray of int64
        The rows of ``X`` it was fitted on.
    n_features_in_ : int
        Number of features seen during fit.

    See Also
    --------
    sksemantic.dask.ShardedSemanticSearch : A search index sharded over the workers.

    Notes
    -----
    Each block is encoded independently, so the codes equal the local
    ``estimator_.transform`` of the computed array. Blocks span all columns (``X`` is
    rechunked along columns when needed); the row chunks set the task size.

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> from sksemantic.dask import DaskEncoder
    >>> from sksemantic.quantization import RQKMeansEncoder
    >>> X = np.random.default_rng(0).normal(size=(1000, 8)).astype(np.float32)
    >>> dX = da.from_array(X, chunks=250)
    >>> enc = DaskEncoder(RQKMeansEncoder(n_levels=2, n_clusters=8, random_state=0),
    ...                   sample_size=500, random_state=0).fit(dX)
    >>> codes = enc.transform(dX)  # lazy: one task per block of 250 rows
    >>> codes.shape, codes.dtype, codes.numblocks
    ((1000, 2), dtype('int64'), (4, 1))
    >>> bool((codes.compute(scheduler="sync") == enc.estimator_.transform(X)).all())
    True
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "transform"]), None],
        "sample_size": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, estimator=None, *, sample_size=100_000, random_state=None):
        self.estimator = estimator
        self.sample_size = sample_size
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Fit a clone of ``estimator`` on a random sample of the rows of ``X``.

        Parameters
        ----------
        X : dask.array.Array or array-like of shape (n_samples, n_features)
            Embeddings; a dask array needs known chunk sizes.
        y : None
            Ignored.

        Returns
        -------
        self : DaskEncoder
            The fitted wrapper.
        """
        if not is_dask_array(X):
            # The estimator validates the values; here only what sampling needs.
            X = check_array(X, dtype=None, ensure_all_finite=False, ensure_min_samples=0,
                            input_name="X")
        elif X.ndim != 2:
            raise ValueError(f"X must be 2-D (n_samples, n_features), got {X.ndim}-D.")
        sample, rows = sample_rows(X, self.sample_size, self.random_state)
        self.estimator_ = clone(self._estimator()).fit(sample)
        self.sample_rows_ = rows
        self.n_features_in_ = int(X.shape[1])
        return self

    def _estimator(self):
        if self.estimator is None:
            from ..quantization import RQKMeansEncoder

            return RQKMeansEncoder()
        return self.estimator

    def transform(self, X):
        """Codes of ``X``: a lazy dask array for a dask array, else an ndarray.

        Parameters
        ----------
        X : dask.array.Array or array-like of shape (n_samples, n_features)
            Embeddings.

        Returns
        -------
        codes : dask.array.Array or ndarray of shape (n_samples, n_levels)
            What ``estimator_.transform`` returns, block by block for a dask array
            (same dtype and values).
        """
        check_is_fitted(self)
        return self._blockwise("transform", X, self.n_features_in_)

    def inverse_transform(self, X):
        """Reconstructions of codes ``X``, block by block for a dask array.

        Parameters
        ----------
        X : dask.array.Array or array-like of shape (n_samples, n_levels)
            Codes, as :meth:`transform` returns them.

        Returns
        -------
        X_reconstructed : dask.array.Array or ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self)
        return self._blockwise("inverse_transform", X, np.shape(X)[1])

    def _blockwise(self, method, X, width):
        fn = getattr(self.estimator_, method)
        if not is_dask_array(X):
            if sp.issparse(X):
                raise TypeError(f"Sparse input is not supported: {method} needs dense X.")
            return fn(X)
        dask, da = import_dask()
        X = as_row_blocks(X)
        if X.shape[1] != width:
            raise ValueError(f"X has {X.shape[1]} features, but {method} expects {width}.")
        # The output's width and dtype, from one row: the blocks must agree with it.
        probe = fn(np.zeros((1, X.shape[1]), dtype=X.dtype))
        # One graph node holds the estimator; every block task names it.
        est = dask.delayed(self.estimator_, pure=True)
        return da.map_blocks(
            _apply, X, est, method,
            chunks=(X.chunks[0], (probe.shape[1],)),
            meta=np.empty((0, probe.shape[1]), dtype=probe.dtype),
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.transformer_tags = get_tags(self._estimator()).transformer_tags
        return tags


@worker_task
def _apply(block, estimator, method):
    return getattr(estimator, method)(block)
