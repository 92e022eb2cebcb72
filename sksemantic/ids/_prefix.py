"""A prefix index over assigned IDs: the valid next codes, for constrained decoding."""

from numbers import Integral

import numpy as np

from ..utils import check_int_codes
from ._format import strings_to_codes

__all__ = ["PrefixIndex"]


class PrefixIndex:
    """Which codes may follow a prefix among a set of IDs (a trie over sorted rows).

    Generative retrieval decodes an ID one level at a time; restricting each step to
    the codes that continue some assigned ID guarantees that every decoded ID names an
    item. The IDs are kept as lexicographically sorted rows, and a prefix is located by
    one binary search per level, so a query costs ``O(len(prefix) * log n_ids)``.

    Parameters
    ----------
    codes : array-like of shape (n_ids, width)
        The assigned IDs as integer codes (duplicates are dropped); with no rows, no
        prefix has a continuation.

    Attributes
    ----------
    codes_ : ndarray of shape (n_unique_ids, width)
        The distinct IDs, sorted lexicographically.

    Examples
    --------
    >>> from sksemantic.ids import PrefixIndex
    >>> index = PrefixIndex([[3, 9, 1], [3, 9, 4], [3, 2, 0], [5, 0, 0]])
    >>> index.next_codes([]).tolist()
    [3, 5]
    >>> index.next_codes([3]).tolist()
    [2, 9]
    >>> index.next_codes([3, 9]).tolist()
    [1, 4]
    >>> index.next_codes([4]).tolist()   # no ID starts with 4
    []
    >>> [3, 9, 4] in index, [3, 9, 5] in index
    (True, False)
    """

    def __init__(self, codes):
        codes = check_int_codes(codes, name="codes", ensure_min_samples=0)
        order = np.lexsort(codes.T[::-1])
        codes = codes[order]
        keep = np.r_[True, np.any(codes[1:] != codes[:-1], axis=1)] if len(codes) else []
        self.codes_ = np.ascontiguousarray(codes[keep])

    @classmethod
    def from_strings(cls, ids, *, fmt="plain", sep="-"):
        """Index of semantic-ID strings (see :func:`strings_to_codes`).

        Parameters
        ----------
        ids : list of str
            Semantic-ID strings.
        fmt : {"plain", "token"}, default="plain"
            Their format, as in :func:`strings_to_codes`.
        sep : str, default="-"
            Separator of the plain format.

        Returns
        -------
        index : PrefixIndex
            The index of their codes.
        """
        return cls(strings_to_codes(ids, fmt=fmt, sep=sep))

    @property
    def width(self):
        """Number of levels of the indexed IDs."""
        return self.codes_.shape[1]

    def __len__(self):
        return self.codes_.shape[0]

    @staticmethod
    def _check_prefix(prefix):
        """A prefix as a 1-D int64 array; non-integer codes are an error, not truncated."""
        arr = np.asarray(prefix)
        if arr.ndim > 1:
            raise ValueError(f"prefix must be 1-D (one code per level), got shape {arr.shape}.")
        if arr.size == 0:
            return np.zeros(0, dtype=np.int64)
        if arr.dtype.kind == "b":
            raise TypeError("prefix must hold integer codes, got booleans.")
        return check_int_codes(arr.reshape(1, -1), name="prefix")[0]

    def _range(self, prefix):
        prefix = self._check_prefix(prefix)
        if prefix.size > self.width:
            raise ValueError(f"prefix has {prefix.size} codes; IDs have only {self.width}.")
        lo, hi = 0, self.codes_.shape[0]
        for level, code in enumerate(prefix):
            column = self.codes_[lo:hi, level]  # sorted within the current range
            lo, hi = lo + np.searchsorted(column, code, "left"), lo + np.searchsorted(
                column, code, "right"
            )
            if lo >= hi:
                return lo, lo, prefix.size
        return lo, hi, prefix.size

    def next_codes(self, prefix):
        """Sorted codes that can follow ``prefix`` (empty when no ID starts with it).

        Parameters
        ----------
        prefix : array-like of int
            The first codes of an ID; ``[]`` for the first level.

        Returns
        -------
        codes : ndarray of int64
        """
        lo, hi, depth = self._range(prefix)
        if depth >= self.width:
            raise ValueError("prefix is a complete ID: no code follows it.")
        return np.unique(self.codes_[lo:hi, depth])

    def mask(self, prefix, n_codes):
        """Boolean mask of length ``n_codes``, True at the codes allowed after ``prefix``
        (to mask a decoder's logits).

        Parameters
        ----------
        prefix : array-like of int
            The first codes of an ID; ``[]`` for the first level.
        n_codes : int
            Codebook size of the next level (the decoder's vocabulary for it); every
            code that can follow ``prefix`` must be smaller.

        Returns
        -------
        mask : ndarray of shape (n_codes,), dtype bool

        Examples
        --------
        >>> from sksemantic.ids import PrefixIndex
        >>> PrefixIndex([[0, 2], [0, 3], [1, 0]]).mask([0], 4).tolist()
        [False, False, True, True]
        """
        if isinstance(n_codes, bool) or not isinstance(n_codes, Integral):
            raise TypeError(f"n_codes must be an int, got {type(n_codes).__name__} {n_codes!r}.")
        if n_codes < 1:
            raise ValueError(f"n_codes must be >= 1, got {n_codes}.")
        allowed = self.next_codes(prefix)
        if allowed.size and allowed[-1] >= n_codes:
            raise ValueError(
                f"n_codes={n_codes} is too small: code {allowed[-1]} can follow prefix "
                f"{self._check_prefix(prefix).tolist()}; n_codes must exceed every code."
            )
        out = np.zeros(int(n_codes), dtype=bool)
        out[allowed] = True
        return out

    def count(self, prefix):
        """Number of IDs that start with ``prefix``.

        Parameters
        ----------
        prefix : array-like of int
            The first codes of an ID.

        Returns
        -------
        count : int
            How many indexed IDs start with it.
        """
        lo, hi, _ = self._range(prefix)
        return int(hi - lo)

    def __contains__(self, code):
        code = np.asarray(code).ravel()
        return code.size == self.width and self.count(code) == 1
