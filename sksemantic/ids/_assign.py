"""SemanticIdAssigner: unique, stable semantic IDs for keyed items, kept in a store."""

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted

from ..cluster._balanced import sinkhorn_potentials
from ._format import codes_to_strings
from ._prefix import PrefixIndex
from ._stores import BaseIDStore, InMemoryIDStore

__all__ = ["SemanticIdAssigner", "UNIQUENESS"]

UNIQUENESS = ("counter", "nearest_free", "sinkhorn", "none")


class SemanticIdAssigner:
    """Give keyed items semantic IDs that are unique (by policy) and never change.

    ``assign(X, keys)`` encodes the embeddings with a fitted residual encoder and
    records one ID per item key in a store. An item whose key was assigned before keeps
    its ID, whatever its embedding now encodes to, and new items never change the IDs of
    earlier ones. Items are handled in batches; each batch is one store transaction, so
    several processes may assign into one :class:`SQLiteIDStore` at once, and a crash
    loses nothing committed before it.

    This is not a scikit-learn estimator: it holds state that must survive refits (the
    store), and it takes an already fitted encoder.

    Parameters
    ----------
    encoder : fitted residual encoder
        E.g. a fitted :class:`~sksemantic.quantization.RQKMeansEncoder`.
    uniqueness : {"counter", "nearest_free", "sinkhorn", "none"}, default="counter"
        How two items with the same code get different IDs.

        - ``"counter"``: append one level, a collision counter: ``0`` for the first
          item with a code, ``1`` for the next, and so on. IDs have ``n_levels + 1``
          codes, every item included.
        - ``"nearest_free"``: keep ``n_levels`` codes and move a colliding item's last
          code to the nearest codeword not yet taken under its prefix (the first item
          submitted keeps its code).
        - ``"sinkhorn"``: as ``"nearest_free"``, but the colliding items of a prefix are
          spread over the free codes by a balanced (Sinkhorn) transport first, so that
          the moves are small in total rather than greedy one by one.
        - ``"none"``: IDs are the codes; items may share an ID.

        The two re-encoding policies raise an error when every code under a prefix is
        taken (use ``"counter"`` or more codewords per level then).
    store : BaseIDStore, default=None
        Where assignments live; a new :class:`InMemoryIDStore` when None. A store is
        bound to one policy and width on first use.
    batch_size : int, default=10_000
        Items per transaction.
    sinkhorn_reg : float, default=0.05
        Entropic regularisation of ``"sinkhorn"``, relative to the spread of costs.

    Attributes
    ----------
    store_ : BaseIDStore
        The store in use.
    width_ : int
        Codes per ID.

    Examples
    --------
    >>> import numpy as np
    >>> from sksemantic.quantization import RQKMeansEncoder
    >>> from sksemantic.ids import SemanticIdAssigner
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(100, 4))
    >>> enc = RQKMeansEncoder(n_levels=2, n_clusters=4, random_state=0).fit(X)
    >>> assigner = SemanticIdAssigner(enc, uniqueness="counter")
    >>> ids = assigner.assign(X, keys=[f"item{i}" for i in range(100)])
    >>> ids.shape, len(np.unique(ids, axis=0))   # 2 levels + counter, all unique
    ((100, 3), 100)
    >>> again = assigner.assign(X[:5] + 1.0, keys=[f"item{i}" for i in range(5)])
    >>> bool((again == ids[:5]).all())   # known keys keep their IDs
    True
    >>> assigner.to_strings(ids[:1], fmt="token").tolist()[0].count("<")
    3
    """

    def __init__(self, encoder, *, uniqueness="counter", store=None, batch_size=10_000,
                 sinkhorn_reg=0.05):
        if uniqueness not in UNIQUENESS:
            raise ValueError(f"uniqueness must be one of {UNIQUENESS}, got {uniqueness!r}.")
        if store is not None and not isinstance(store, BaseIDStore):
            raise TypeError(f"store must be a BaseIDStore, got {type(store).__name__}.")
        if isinstance(batch_size, bool) or not isinstance(batch_size, Integral):
            raise TypeError(
                f"batch_size must be an int, got {type(batch_size).__name__} {batch_size!r}."
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        if isinstance(sinkhorn_reg, bool) or not isinstance(sinkhorn_reg, Real):
            raise TypeError(
                f"sinkhorn_reg must be a float, got {type(sinkhorn_reg).__name__} "
                f"{sinkhorn_reg!r}."
            )
        if not sinkhorn_reg > 0 or not np.isfinite(sinkhorn_reg):
            raise ValueError(f"sinkhorn_reg must be a finite number > 0, got {sinkhorn_reg}.")
        check_is_fitted(encoder, "codebooks_")
        self.encoder = encoder
        self.uniqueness = uniqueness
        self.batch_size = int(batch_size)
        self.sinkhorn_reg = float(sinkhorn_reg)
        self.store_ = InMemoryIDStore() if store is None else store
        n_levels = len(encoder.n_clusters_)
        self.width_ = n_levels + 1 if uniqueness == "counter" else n_levels

    # ------------------------------------------------------------------ public API
    def assign(self, X, keys):
        """IDs of the items ``keys`` with embeddings ``X``, assigning new ones as needed.

        Parameters
        ----------
        X : array-like of shape (n_items, n_features)
            Embeddings of the items (dense; checked whole before any batch is stored).
        keys : array-like of shape (n_items,)
            The user's item keys (compared as strings). A key repeated within one call
            gets one ID (its first row is encoded).

        Returns
        -------
        ids : ndarray of shape (n_items, width_), dtype int64
            One fixed-width ID per item, in the order of ``keys``; of shape
            ``(0, width_)`` for an empty batch, which stores nothing.
        """
        keys = self._check_keys(keys)
        X = self._check_X(X)
        if len(keys) != X.shape[0]:
            raise ValueError(f"keys has {len(keys)} entries but X has {X.shape[0]} rows.")
        if not keys:
            return np.zeros((0, self.width_), dtype=np.int64)
        uniq, first, inverse = np.unique(np.asarray(keys, dtype=object).astype(str),
                                         return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")  # earlier submissions have priority
        result = np.empty((len(uniq), self.width_), dtype=np.int64)
        for start in range(0, len(order), self.batch_size):
            part = order[start : start + self.batch_size]
            rows = first[part]
            Xb = X.iloc[rows] if hasattr(X, "iloc") else X[rows]
            result[part] = self._assign_batch(Xb, [str(k) for k in uniq[part]])
        return result[inverse.ravel()]

    def lookup(self, keys):
        """IDs of already assigned keys; raises KeyError naming the first unknown key.

        Parameters
        ----------
        keys : array-like of str
            Keys given to :meth:`assign`.

        Returns
        -------
        ids : ndarray of shape (n_keys, width_)
            The ID of each key.
        """
        keys = self._check_keys(keys)
        if not keys:
            return np.zeros((0, self.width_), dtype=np.int64)
        with self.store_.transaction() as txn:
            found = txn.get(keys)
        missing = [k for k in keys if k not in found]
        if missing:
            raise KeyError(f"{len(missing)} key(s) have no ID, e.g. {missing[0]!r}.")
        return np.asarray([found[k] for k in keys], dtype=np.int64).reshape(len(keys), -1)

    def to_strings(self, ids, *, fmt="plain", sep="-"):
        """ID strings of ID codes (see :func:`~sksemantic.ids.codes_to_strings`).

        Parameters
        ----------
        ids : array-like of shape (n_items, width)
            ID codes, as returned by :meth:`assign`.
        fmt : {"plain", "token"}, default="plain"
            String format, as in :func:`~sksemantic.ids.codes_to_strings`.
        sep : str, default="-"
            Separator of the plain format.

        Returns
        -------
        strings : ndarray of shape (n_items,), dtype=object
            One string per ID.
        """
        return codes_to_strings(ids, fmt=fmt, sep=sep)

    def prefix_index(self):
        """A :class:`PrefixIndex` over every ID in the store (for constrained decoding).

        Returns
        -------
        index : PrefixIndex
            The valid continuations of every ID prefix in the store.
        """
        return PrefixIndex(self.store_.all_codes().reshape(-1, self.width_))

    def __len__(self):
        return len(self.store_)

    # ------------------------------------------------------------------ internals
    @staticmethod
    def _check_keys(keys):
        if isinstance(keys, (str, bytes)):
            raise TypeError("keys must be a sequence of item keys, not a single string.")
        if keys is None or sp.issparse(keys) or not hasattr(keys, "__iter__"):
            raise TypeError(
                f"keys must be a 1-D sequence of item keys, got {type(keys).__name__}."
            )
        if hasattr(keys, "shape") and np.ndim(keys) != 1:  # arrays, DataFrames
            raise ValueError(f"keys must be 1-D (one key per item), got shape {keys.shape}.")
        keys = list(keys)
        nested = (list, tuple, set, dict, np.ndarray)
        bad = next((i for i, k in enumerate(keys) if isinstance(k, nested)), None)
        if bad is not None:
            raise ValueError(
                f"keys must be 1-D, one scalar key per item; keys[{bad}] is a "
                f"{type(keys[bad]).__name__} (join a composite key into one string)."
            )
        return [str(k) for k in keys]

    def _check_X(self, X):
        if sp.issparse(X):
            raise TypeError(
                "X is a sparse matrix; assign needs dense embeddings (e.g. X.toarray())."
            )
        frame = X if hasattr(X, "iloc") else None  # keeps its feature names for the encoder
        if frame is None and np.ndim(X) == 1 and np.size(X) == 0:
            X = np.zeros((0, getattr(self.encoder, "n_features_in_", 1)))  # [] is no items
        X = check_array(
            X, dtype=[np.float64, np.float32], ensure_min_samples=0, input_name="X"
        )
        n_features = getattr(self.encoder, "n_features_in_", None)
        if n_features is not None and X.shape[1] != n_features:
            raise ValueError(
                f"X has {X.shape[1]} features, but the encoder was fitted on {n_features}."
            )
        return X if frame is None else frame

    def _check_store(self, txn):
        policy, width = txn.meta("uniqueness"), txn.meta("width")
        if policy is None:
            txn.set_meta("uniqueness", self.uniqueness)
            txn.set_meta("width", self.width_)
        elif policy != self.uniqueness or int(width) != self.width_:
            raise ValueError(
                f"The store holds IDs made with uniqueness={policy!r} and width {width}; "
                f"this assigner uses uniqueness={self.uniqueness!r} and width {self.width_}. "
                "Use a store per policy."
            )

    def _assign_batch(self, X, keys):
        codes = self.encoder.transform(X)
        with self.store_.transaction() as txn:
            self._check_store(txn)
            found = txn.get(keys)
            out = np.empty((len(keys), self.width_), dtype=np.int64)
            known = np.array([k in found for k in keys], dtype=bool)
            if known.any():
                out[known] = [found[k] for k, is_known in zip(keys, known, strict=True)
                              if is_known]
            new = np.flatnonzero(~known)
            if new.size:
                if self.uniqueness == "counter":
                    ids = _resolve_counter(txn, codes[new])
                elif self.uniqueness == "none":
                    ids = codes[new]
                else:
                    ids = self._resolve_free(txn, X, new, codes[new])
                txn.insert([keys[i] for i in new], ids)
                out[new] = ids
        return out

    def _resolve_free(self, txn, X, rows, codes):
        k_last = int(self.encoder.n_clusters_[-1])
        inv, groups = _group_ids(codes[:, :-1])
        taken = np.zeros((len(groups), k_last), dtype=bool)
        for gi, codes_taken in _taken_rows(txn, groups):
            taken[gi, codes_taken] = True
        last = codes[:, -1].copy()
        # Round 0: free proposals are granted, first come first served.
        free = np.flatnonzero(~taken[inv, last])
        _, first = np.unique(inv[free] * k_last + last[free], return_index=True)
        winners = free[first]
        taken[inv[winners], last[winners]] = True
        rest = np.setdiff1d(np.arange(len(codes)), winners)
        if rest.size:
            sel = rows[rest]
            Xr = X.iloc[sel] if hasattr(X, "iloc") else X[sel]
            cost = self.encoder.last_level_costs(Xr, codes[rest]).astype(np.float64)
            if self.uniqueness == "sinkhorn":
                cost = self._sinkhorn_costs(cost, inv[rest], taken)
            last[rest] = _greedy_free(cost, inv[rest], taken, groups)
        return np.c_[codes[:, :-1], last]

    def _sinkhorn_costs(self, cost, inv, taken):
        """Costs minus per-group Sinkhorn potentials over the free codes."""
        out = np.full_like(cost, np.inf)
        for gi in np.unique(inv):  # one transport per colliding prefix
            items = np.flatnonzero(inv == gi)
            free = np.flatnonzero(~taken[gi])
            if free.size == 0:
                continue
            sub = cost[np.ix_(items, free)]
            if items.size > 1 and free.size > 1:
                # Each free code takes at most one item: a zero-cost dummy row holds the
                # spare capacity, so the transport is balanced.
                spread = float(np.mean(np.std(sub, axis=1))) or 1.0
                spare = free.size - items.size
                aug = np.vstack([sub, np.zeros((1, free.size))]) if spare > 0 else sub
                rows_w = np.r_[np.ones(items.size), [spare] if spare > 0 else []]
                g = sinkhorn_potentials(
                    aug, eps=self.sinkhorn_reg * spread, n_iter=500, row_weights=rows_w
                )
                sub = sub - g
            out[np.ix_(items, free)] = sub
        return out


def _group_ids(prefix):
    """Group index of each row of ``prefix`` and the group strings."""
    if prefix.shape[1] == 0:
        return np.zeros(prefix.shape[0], dtype=np.int64), np.array([""], dtype=object)
    uniq, inv = np.unique(prefix, axis=0, return_inverse=True)
    return inv.ravel(), codes_to_strings(uniq)


def _taken_rows(txn, groups):
    found = txn.taken(list(groups))
    for gi, g in enumerate(groups):
        if g in found:
            yield gi, found[g]


def _resolve_counter(txn, base):
    """Append a collision counter: existing count under the same code, then rank."""
    inv, groups = _group_ids(base)
    start = np.zeros(len(groups), dtype=np.int64)
    for gi, counters in _taken_rows(txn, groups):
        start[gi] = counters.max() + 1
    order = np.argsort(inv, kind="stable")
    sorted_inv = inv[order]
    heads = np.r_[0, np.flatnonzero(np.diff(sorted_inv)) + 1]
    rank_sorted = np.arange(len(inv)) - np.repeat(heads, np.diff(np.r_[heads, len(inv)]))
    rank = np.empty(len(inv), dtype=np.int64)
    rank[order] = rank_sorted
    return np.c_[base, start[inv] + rank]


def _greedy_free(cost, inv, taken, groups):
    """Each item takes its cheapest free code; ties for a code go to the cheaper item.

    Rounds are vectorised over items: every unresolved item proposes its cheapest free
    code, the cheapest proposer of each (prefix, code) wins it, the rest propose again.
    ``taken`` is updated in place.
    """
    k = taken.shape[1]
    result = np.empty(len(inv), dtype=np.int64)
    todo = np.arange(len(inv))
    while todo.size:
        masked = np.where(taken[inv[todo]], np.inf, cost[todo])
        choice = np.argmin(masked, axis=1)
        best = masked[np.arange(todo.size), choice]
        full = ~np.isfinite(best)
        if full.any():
            g = groups[inv[todo[np.flatnonzero(full)[0]]]]
            raise ValueError(
                f"Every one of the {k} last-level codes under prefix {g!r} is taken: this "
                "uniqueness policy cannot give the item a free ID. Use uniqueness='counter' "
                "or more codewords per level."
            )
        pair = inv[todo] * k + choice
        order = np.lexsort((best, pair))
        head = np.r_[True, pair[order][1:] != pair[order][:-1]]
        winners = order[head]
        result[todo[winners]] = choice[winners]
        taken[inv[todo[winners]], choice[winners]] = True
        todo = np.delete(todo, winners)
    return result
