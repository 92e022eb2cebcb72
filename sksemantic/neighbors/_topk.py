"""Top-k selection kernels: partial sorts over dense blocks and merges of ragged candidates.

All of them order each row by score (descending) and then by index (ascending), so that
ties resolve to the lower index whenever the scores are bit-for-bit equal.
"""

import numpy as np

__all__ = ["topk_dense", "sort_rows", "merge_candidates", "put_self_first"]


def sort_rows(scores, ids):
    """Sort each row by score descending, then id ascending. Returns new arrays."""
    n, k = scores.shape
    rows = np.repeat(np.arange(n), k)
    order = np.lexsort((ids.ravel(), -scores.ravel(), rows))
    return scores.ravel()[order].reshape(n, k), ids.ravel()[order].reshape(n, k)


def topk_dense(S, k, offset=0):
    """The ``k`` largest entries of each row of ``S`` with their column indices + ``offset``.

    Parameters
    ----------
    S : ndarray of shape (n_rows, n_cols)
    k : int
        Entries to keep per row; when ``k >= n_cols`` every column is returned.
    offset : int, default=0
        Added to the returned column indices.

    Returns
    -------
    scores, ids : ndarray of shape (n_rows, min(k, n_cols))
        Sorted by score descending, then id ascending.
    """
    n, m = S.shape
    if k >= m:
        ids = np.broadcast_to(np.arange(m, dtype=np.int64), (n, m))
        vals = S
    else:
        ids = np.argpartition(S, m - k, axis=1)[:, m - k :]
        vals = np.take_along_axis(S, ids, axis=1)
    return sort_rows(np.ascontiguousarray(vals), ids.astype(np.int64) + offset)


def merge_candidates(best_s, best_i, rows, cand_s, cand_i, *, unique=False):
    """Merge ragged candidates into running per-row top-k arrays, in place.

    Parameters
    ----------
    best_s, best_i : ndarray of shape (n_rows, k)
        Current best scores (descending) and ids; ``-inf`` / ``-1`` where empty.
    rows : ndarray of shape (n_candidates,)
        Row of each candidate.
    cand_s, cand_i : ndarray of shape (n_candidates,)
        Candidate scores and ids. A candidate already present in its row is ignored.
    unique : bool, default=False
        Promise that no candidate is already in its row nor offered twice (skips the
        de-duplication sort).

    Returns
    -------
    None
        ``best_s`` and ``best_i`` are updated in place: each row that received
        candidates holds its best k entries, by score descending and then id ascending.

    Examples
    --------
    >>> import numpy as np
    >>> from sksemantic.neighbors import merge_candidates
    >>> best_s = np.array([[0.9, -np.inf], [0.8, 0.7]])
    >>> best_i = np.array([[4, -1], [1, 2]])
    >>> merge_candidates(best_s, best_i, np.array([0, 1, 1]),
    ...                  np.array([0.5, 0.75, 0.8]), np.array([7, 3, 1]))
    >>> best_i
    array([[4, 7],
           [1, 3]])
    """
    if rows.size == 0:
        return
    k = best_s.shape[1]
    urows = np.unique(rows)
    all_rows = np.concatenate([np.repeat(urows, k), rows]).astype(np.int64, copy=False)
    all_s = np.concatenate([best_s[urows].ravel(), cand_s.astype(best_s.dtype, copy=False)])
    all_i = np.concatenate([best_i[urows].ravel(), cand_i.astype(np.int64, copy=False)])
    # Rows and ids fit beside each other, or beside a float32 score, in one int64 key:
    # one key sorts faster than the same order from several (np.lexsort).
    packed = len(best_s) < 2**31 and best_i.size and int(all_i.max()) < 2**32 - 1
    if not unique:
        # Drop repeats of the same (row, id): keep the first (the existing entry).
        if packed:
            order = np.argsort((all_rows << 32) | (all_i + 1), kind="stable")
        else:
            order = np.lexsort((all_i, all_rows))
        r_o, i_o = all_rows[order], all_i[order]
        dup = np.zeros(order.size, dtype=bool)
        dup[1:] = (r_o[1:] == r_o[:-1]) & (i_o[1:] == i_o[:-1]) & (i_o[1:] >= 0)
        keep_idx = order[~dup]
        all_rows, all_s, all_i = all_rows[keep_idx], all_s[keep_idx], all_i[keep_idx]
    if packed and all_s.dtype == np.float32:
        order = np.lexsort((all_i, (all_rows << 32) | _descending_bits(all_s)))
    else:
        order = np.lexsort((all_i, -all_s, all_rows))
    r_sorted = all_rows[order]
    starts = np.searchsorted(r_sorted, urows)
    counts = np.diff(np.append(starts, r_sorted.size))
    rank = np.arange(r_sorted.size) - np.repeat(starts, counts)
    sel = order[rank < k]
    best_s[urows] = all_s[sel].reshape(-1, k)
    best_i[urows] = all_i[sel].reshape(-1, k)


def _descending_bits(scores):
    """Unsigned 32-bit keys (as int64) that sort float32 ``scores`` in descending order;
    -0.0 and 0.0 share a key, as they compare equal."""
    bits = (scores + np.float32(0)).view(np.uint32).astype(np.int64)  # -0.0 + 0.0 = 0.0
    ascending = np.where(bits >= 2**31, 0xFFFFFFFF - bits, bits | 2**31)
    return 0xFFFFFFFF - ascending


def put_self_first(scores, ids, self_ids, self_score):
    """Make ``self_ids[r]`` the first entry of row ``r`` (inserting it if absent).

    Used by self-joins, where every indexed point is its own nearest neighbour by
    convention (scikit-learn's explicit diagonal), whatever round-off or exact duplicates
    would otherwise give. Rows keep their width; an inserted self drops the last entry.

    Parameters
    ----------
    scores : ndarray of shape (n_rows, k)
        Scores sorted per row. Modified in place when every row already starts with
        its own point.
    ids : ndarray of shape (n_rows, k)
        The matching ids.
    self_ids : ndarray of shape (n_rows,)
        The id of the point each row queried for.
    self_score : float or ndarray of shape (n_rows,)
        The score each point has with itself (an index's self score).

    Returns
    -------
    scores : ndarray of shape (n_rows, k)
        The scores, each row's own first.
    ids : ndarray of shape (n_rows, k)
        The ids, each row's own first.

    Examples
    --------
    >>> import numpy as np
    >>> from sksemantic.neighbors import put_self_first
    >>> scores = np.array([[1.0, 1.0, 0.5], [0.9, 0.8, 0.7]])
    >>> ids = np.array([[3, 0, 1], [0, 2, 3]])
    >>> put_self_first(scores, ids, np.array([0, 1]), 1.0)[1]
    array([[0, 3, 1],
           [1, 0, 2]])
    """
    n, k = ids.shape
    if n and (ids[:, 0] == self_ids).all():
        # The common case: every row already starts with itself; no copies.
        scores[:, 0] = self_score
        return scores, ids
    is_self = ids == self_ids[:, None]
    has = is_self.any(axis=1)
    # Position of self in each row (k - 1 where absent: the dropped last entry).
    pos = np.where(has, is_self.argmax(axis=1), k - 1)
    col = np.arange(k)[None, :]
    # Entries before pos shift right by one; self goes to column 0.
    src = np.where(col == 0, 0, np.where(col <= pos[:, None], col - 1, col))
    new_ids = np.take_along_axis(ids, src, axis=1)
    new_s = np.take_along_axis(scores, src, axis=1)
    new_ids[:, 0] = self_ids
    new_s[:, 0] = self_score
    return new_s, new_ids
