"""The shared front of residual encoders: embeddings -> integer codes -> reconstructions.

A residual encoder has ``n_levels`` codebooks; a row's code at level ``l`` names the
codeword chosen for what the previous levels left unexplained, and the reconstruction is
the sum of the chosen codewords. Subclasses learn the codebooks in ``fit`` (k-means on
residuals in :class:`RQKMeansEncoder`, a network in the RQ-VAE) and override ``_latent``
(the map into the codebooks' space) and ``_decode`` when their encoder is more than
nearest codewords; everything the user sees (``transform``, ``inverse_transform``,
``score``, feature names, semantic-ID strings, last-level costs, the device logic) lives
here, once.

Fitted state a subclass must set: ``codebooks_`` (list of float arrays, one per level,
always numpy, so a model fitted on a GPU loads on a CPU-only machine), ``n_clusters_``
(list of int) and ``n_features_in_``; optionally ``balance_offsets_`` (list of per-codeword
offsets, or None).
"""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ..base import VersionedPickleMixin
from ..utils import check_int_codes, resolve_device
from ..utils._validation import check_value_range
from ._kernels import decode_numpy, encode_numpy, encode_torch

__all__ = ["BaseResidualEncoder"]


class BaseResidualEncoder(VersionedPickleMixin, TransformerMixin, BaseEstimator):
    """Base class of residual encoders (not to be used directly).

    Provides ``transform`` (integer codes of shape ``(n_samples, n_levels)``),
    ``inverse_transform`` (sum of the chosen codewords), ``score`` (negative mean squared
    reconstruction error), ``get_feature_names_out`` (one name per level), the
    semantic-ID helpers ``to_ids`` / ``from_ids`` and ``last_level_costs`` (what the
    uniqueness policies of :class:`sksemantic.ids.SemanticIdAssigner` minimise).
    """

    # ------------------------------------------------------------------ fitted layout
    def _n_levels_fitted(self):
        return len(self.codebooks_)

    def _check_codebooks_ready(self):
        check_is_fitted(self, "codebooks_")

    # ------------------------------------------------------------------ encoding
    def _encode_device(self):
        device = getattr(self, "device", "cpu") or "cpu"
        return "cpu" if device == "cpu" else device

    def _latent(self, X):
        """The rows of validated ``X`` in the space the codebooks live in.

        The identity here (codebooks in the input space); an encoder that maps its
        input first (the RQ-VAE's MLP) overrides it.
        """
        return X

    def _encode(self, X):
        """Codes of validated ``X`` (codebook dtype); nearest codewords level by level."""
        return self._encode_latent(self._latent(X))

    def _encode_latent(self, Z):
        """Greedy residual codes of rows ``Z`` already in the codebooks' space."""
        return self._encode_with(Z, self.codebooks_, getattr(self, "balance_offsets_", None))

    def _encode_with(self, X, codebooks, offsets=None, residual_out=None):
        """Greedy residual codes of ``X`` for ``codebooks``, on this encoder's device;
        ``residual_out`` (optional) receives ``X`` minus the reconstruction."""
        device = self._encode_device()
        if device != "cpu":
            try:
                device = resolve_device(device)
            except (ImportError, ValueError):
                # A model fitted on a GPU encodes on a CPU-only machine, with numpy.
                device = "cpu"
        if device == "cpu" and getattr(self, "backend", "auto") != "torch":
            return encode_numpy(X, codebooks, offsets, residual_out=residual_out,
                                n_jobs=getattr(self, "n_jobs", None))
        return encode_torch(X, codebooks, offsets, device=device, residual_out=residual_out)

    def _decode(self, codes):
        """Reconstruction of validated codes."""
        return decode_numpy(codes, self.codebooks_, self.codebooks_[0].dtype)

    def _validate_X(self, X):
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        # Distances to codewords square the rows: refuse what would overflow there.
        check_value_range(X, dtype=self.codebooks_[0].dtype, norm=2, purpose="encoding")
        return np.ascontiguousarray(X, dtype=self.codebooks_[0].dtype)

    def transform(self, X):
        """Codes of ``X``: one integer per level.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings.

        Returns
        -------
        codes : ndarray of shape (n_samples, n_levels), dtype int64
            ``codes[i, l]`` is the codeword chosen for row ``i`` at level ``l``.
        """
        self._check_codebooks_ready()
        return self._encode(self._validate_X(X))

    def inverse_transform(self, X):
        """Reconstruct embeddings from codes: the sum of the chosen codewords.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_levels)
            Integer codes, as returned by ``transform``.

        Returns
        -------
        X_reconstructed : ndarray of shape (n_samples, n_features)
            In the dtype the encoder was fitted in.
        """
        self._check_codebooks_ready()
        codes = self._check_codes(X)
        return self._decode(codes)

    def last_level_costs(self, X, codes=None):
        """Cost of every last-level codeword for each row, its other levels fixed.

        The cost of codeword ``j`` for a row is ``|r - c_j|^2`` (minus the codeword's
        balance offset, for balanced encoders), with ``r`` the row's residual before the
        last level, in the space the codebooks live in (the latent space for the
        RQ-VAE). Its argmin over ``j`` is the row's last-level code; the uniqueness
        policies of :class:`sksemantic.ids.SemanticIdAssigner` use it to move a
        colliding item to the cheapest free code.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings.
        codes : array-like of shape (n_samples, n_levels), default=None
            Codes of ``X`` whose levels before the last fix the residual; only their
            last column is ignored. None uses ``transform(X)``.

        Returns
        -------
        costs : ndarray of shape (n_samples, n_clusters_[-1])
            In the codebooks' dtype.

        Examples
        --------
        >>> import numpy as np
        >>> from sksemantic.quantization import RQKMeansEncoder
        >>> X = np.random.default_rng(0).normal(size=(100, 4))
        >>> enc = RQKMeansEncoder(n_levels=2, n_clusters=5, random_state=0).fit(X)
        >>> costs = enc.last_level_costs(X)
        >>> costs.shape
        (100, 5)
        >>> bool((costs.argmin(axis=1) == enc.transform(X)[:, -1]).all())
        True
        """
        self._check_codebooks_ready()
        Z = self._latent(self._validate_X(X))
        if codes is None:
            codes = self._encode_latent(Z)
        else:
            codes = self._check_codes(codes)
            if codes.shape[0] != Z.shape[0]:
                raise ValueError(
                    f"codes has {codes.shape[0]} rows but X has {Z.shape[0]}; give one row "
                    "of codes per row of X."
                )
        residual = Z
        if len(self.codebooks_) > 1:
            residual = Z - decode_numpy(codes[:, :-1], self.codebooks_[:-1], Z.dtype)
        last = self.codebooks_[-1]
        cost = residual @ last.T
        cost *= -2
        cost += np.einsum("ij,ij->i", last, last)
        cost += np.einsum("ij,ij->i", residual, residual)[:, None]
        np.maximum(cost, 0, out=cost)  # squared distances, up to rounding
        offsets = getattr(self, "balance_offsets_", None)
        if offsets is not None and offsets[-1] is not None:
            cost -= offsets[-1]
        return cost

    def _check_codes(self, codes, name="codes"):
        codes = check_int_codes(codes, n_levels=self._n_levels_fitted(), name=name)
        high = np.asarray(self.n_clusters_)
        bad = (codes < 0) | (codes >= high)
        if bad.any():
            row, level = np.argwhere(bad)[0]
            raise ValueError(
                f"{name} out of range: {name}[{row}, {level}] = {codes[row, level]}, but level "
                f"{level} has codes 0..{high[level] - 1}."
            )
        return codes

    def score(self, X, y=None):
        """Negative mean squared reconstruction error of ``X`` (larger is better).

        The mean is over samples and features, ``-mean((X - X_hat) ** 2)`` with
        ``X_hat = inverse_transform(transform(X))``, so that GridSearchCV with
        ``scoring=None`` prefers encoders that reconstruct better, as with KMeans.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings.
        y : None
            Ignored.

        Returns
        -------
        score : float
        """
        self._check_codebooks_ready()
        X = self._validate_X(X)
        # Encoding compares squared distances in the codebooks' dtype.
        check_value_range(X, dtype=X.dtype, norm=2, purpose="encoding")
        return -float(np.mean(self._squared_errors(X), dtype=np.float64) / X.shape[1])

    def _squared_errors(self, X):
        """Squared reconstruction error of each row of validated ``X``."""
        err = np.subtract(X, self._decode(self._encode(X)), dtype=np.float64)
        return np.einsum("ij,ij->i", err, err)

    def get_feature_names_out(self, input_features=None):
        """Names of the output columns: ``"<classname>_level0"``, ``..._level1``, ...

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Ignored except for validation against ``feature_names_in_``.

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        self._check_codebooks_ready()
        from sklearn.utils.validation import _check_feature_names_in

        _check_feature_names_in(self, input_features, generate_names=False)
        prefix = type(self).__name__.lower()
        return np.asarray([f"{prefix}_level{i}" for i in range(self._n_levels_fitted())], dtype=object)

    # ------------------------------------------------------------------ semantic IDs
    def to_ids(self, X, *, fmt="plain", sep="-"):
        """Semantic-ID strings of ``X`` (codes as ``"3-9-1"`` or ``"<a_3><b_9><c_1>"``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings.
        fmt : {"plain", "token"}, default="plain"
            String format (see :func:`sksemantic.ids.codes_to_strings`).
        sep : str, default="-"
            Separator of the plain format.

        Returns
        -------
        ids : ndarray of shape (n_samples,), dtype object
            Not necessarily unique: see :class:`sksemantic.ids.SemanticIdAssigner`.
        """
        from ..ids import codes_to_strings

        return codes_to_strings(self.transform(X), fmt=fmt, sep=sep)

    def from_ids(self, ids, *, fmt="plain", sep="-"):
        """Codes from semantic-ID strings, checked against this encoder's levels.

        Parameters
        ----------
        ids : array-like of str
            Strings as made by :meth:`to_ids`.
        fmt : {"plain", "token"}, default="plain"
            String format.
        sep : str, default="-"
            Separator of the plain format.

        Returns
        -------
        codes : ndarray of shape (n_ids, n_levels), dtype int64
        """
        from ..ids import strings_to_codes

        self._check_codebooks_ready()
        codes = strings_to_codes(ids, fmt=fmt, sep=sep, n_levels=self._n_levels_fitted())
        return self._check_codes(codes, name="ids")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = []  # integer codes
        tags.input_tags.sparse = False
        return tags
