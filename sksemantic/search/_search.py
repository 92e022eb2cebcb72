"""SemanticSearch: top-k search over embeddings with filters, growth and persistence."""

import math
import warnings
from functools import partial
from numbers import Integral, Real

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ..neighbors import (
    AUTO_BRUTE_MAX_SAMPLES,
    METRICS,
    BaseIndexedEstimator,
    fill_index_doc,
    load_search,
    save_search,
)
from ..utils import check_mapped, row_scan

__all__ = ["SemanticSearch"]

#: Filters passing at most this many items are answered by exact search over them: as
#: for ``algorithm="auto"``, scoring that many points directly is cheaper than probing an
#: approximate index for enough candidates (and it is exact).
EXACT_FILTER_MAX_PASSING = AUTO_BRUTE_MAX_SAMPLES


@fill_index_doc
class SemanticSearch(BaseIndexedEstimator):
    """Nearest-neighbour search over a corpus of embeddings.

    ``fit(corpus_embeddings)`` indexes the corpus with the shared index layer of
    :mod:`sksemantic.neighbors` (the same backends as
    :class:`~sksemantic.graph.SemanticGraphTransformer`). Queries are answered by
    :meth:`kneighbors`, shaped like :meth:`sklearn.neighbors.NearestNeighbors.kneighbors`,
    or by :meth:`search`, shaped like sentence-transformers' ``util.semantic_search``
    (per query a list of ``{"corpus_id", "score"}`` dicts, best first), with each item's
    label and metadata when the corpus was given some.

    Both accept a post-filter: a boolean mask over the corpus, a list of allowed corpus
    ids, or allowed categories (the ``y`` given to :meth:`fit`). The index is asked for
    more candidates than ``top_k`` (in proportion to the fraction of the corpus that
    passes, times ``filter_overfetch``), and when too few pass, the passing items are
    searched exactly, so that ``top_k`` results come back whenever that many pass.

    Parameters
    ----------
    n_neighbors : int, default=10
        Default number of results of :meth:`kneighbors` and :meth:`search`.
    metric : {"cosine", "euclidean", "manhattan", "inner_product"}, default="cosine"
        How closeness is measured. :meth:`search` reports a similarity score (the
        cosine similarity for ``"cosine"``, the inner product for ``"inner_product"``,
        ``1 / (1 + distance)`` otherwise); :meth:`kneighbors` reports distances.
    filter_overfetch : float, default=2.0
        Safety factor on the number of candidates fetched for a filtered query, on top
        of ``top_k / (fraction of the corpus that passes)``.
    <index parameters>

    Attributes
    ----------
    index_ : BaseIndex
        The fitted neighbour index (see :mod:`sksemantic.neighbors`).
    algorithm_ : str
        The index built, with ``"auto"`` resolved.
    calibration_ : RecallCalibration
        How queries are searched and the recall@k they are expected to reach: the
        setting chosen for ``target_recall`` (or exact search), the estimate and its
        sample size. Measured at fit on corpus items held out of the index while it
        was built, or by :meth:`calibrate` on the queries given to it.
    batch_calibration_ : RecallCalibration or None
        The calibration made for the last batch of at least 1,000 queries that
        differed from the calibration queries (a tenth of it, searched exactly), or
        exact search for a batch that calibrating could not speed up.
    n_samples_fit_ : int
        Number of indexed items, including those added by :meth:`add`.
    labels_ : ndarray of shape (n_samples_fit_,) or None
        The ``y`` given to :meth:`fit` (a category per item), if any.
    metadata_ : list of shape (n_samples_fit_,) or None
        The ``metadata`` given to :meth:`fit` (e.g. the texts), if any.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    sksemantic.graph.SemanticGraphTransformer : Neighbour graphs over the same index.
    sksemantic.search.TextEmbedder : Texts to embeddings, to put before this in a Pipeline.
    sklearn.neighbors.NearestNeighbors : Exact neighbours with the same ``kneighbors``.

    Notes
    -----
    Queries are not corpus items: a user's queries may come from another distribution
    (short questions against long documents, another corpus), where an approximate
    index finds fewer true neighbours. Serve such queries after :meth:`calibrate` on
    representative ones; batches of 1,000 queries or more are checked against the
    calibration by themselves.

    :meth:`add` appends to exact and IVF indexes without rebuilding (IVF assigns the
    new items to their nearest existing list; refit when the corpus has drifted far).
    An annoy forest cannot grow: :meth:`add` rebuilds it over all items.

    :meth:`save` writes a directory that :meth:`load` opens memory-mapped (annoy's own
    mapped file, ``.npy`` arrays with ``mmap_mode="r"``): a second process serves the
    index without reading it into memory, and several processes share its pages.

    Examples
    --------
    >>> import numpy as np
    >>> from sksemantic.search import SemanticSearch
    >>> corpus = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> search = SemanticSearch(n_neighbors=2).fit(
    ...     corpus, ["fruit", "fruit", "tool", "tool"], metadata=["apple", "pear", "saw", "axe"]
    ... )
    >>> dist, ind = search.kneighbors([[1.0, 0.05]])
    >>> ind.tolist()
    [[0, 1]]
    >>> hits = search.search([[1.0, 0.05]], top_k=1)
    >>> hits[0][0]["corpus_id"], hits[0][0]["label"], hits[0][0]["metadata"]
    (0, 'fruit', 'apple')

    Post-filtering on the category: the best "tool" items for the same query.

    >>> [h["metadata"] for h in search.search([[1.0, 0.05]], category="tool")[0]]
    ['axe', 'saw']
    """

    _parameter_constraints: dict = {
        **BaseIndexedEstimator._parameter_constraints,
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "metric": [StrOptions(set(METRICS))],
        "filter_overfetch": [Interval(Real, 1, None, closed="left")],
    }

    _SERVES_SEARCHES = True

    def __init__(
        self,
        *,
        n_neighbors=10,
        metric="cosine",
        algorithm="auto",
        target_recall=0.95,
        n_lists=None,
        n_probe=None,
        n_trees=None,
        search_k=None,
        n_links=None,
        ef_search=None,
        storage=None,
        filter_overfetch=2.0,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        super().__init__(
            algorithm=algorithm, target_recall=target_recall, n_lists=n_lists,
            n_probe=n_probe, n_trees=n_trees, search_k=search_k, n_links=n_links,
            ef_search=ef_search, storage=storage, n_jobs=n_jobs, random_state=random_state,
            verbose=verbose,
        )
        self.n_neighbors = n_neighbors
        self.metric = metric
        self.filter_overfetch = filter_overfetch

    # -- fitting ---------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, *, metadata=None):
        """Index the corpus embeddings ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Corpus embeddings; dense, finite, numeric, at least one row.
        y : array-like of shape (n_samples,), default=None
            A label (category) per item: returned with each result as ``"label"``
            and usable as a filter (``category=``).
        metadata : sequence of length n_samples, default=None
            Anything per item (texts, dicts, ids; a pandas DataFrame gives one dict
            per row): returned with each result of :meth:`search` as ``"metadata"``.

        Returns
        -------
        self : SemanticSearch
            The fitted estimator.
        """
        X = check_mapped(partial(validate_data, self), X, dtype=[np.float32, np.float64])
        n = X.shape[0]
        self.labels_ = self._check_labels(y, n)
        self.metadata_ = self._check_metadata(metadata, n)
        if self.metric == "cosine" and not all(row_scan(lambda b: np.any(b, axis=1).all(), X)):
            warnings.warn(
                "X contains all-zero rows; under metric='cosine' they have similarity 0 "
                "to every query.",
                UserWarning,
                stacklevel=2,
            )
        self._fit_index(X, self.n_neighbors)
        self.n_samples_fit_ = n
        return self

    def calibrate(self, X, top_k=None):
        """Tune the search to representative queries ``X``.

        The queries are searched exactly and the index's search effort is set to the
        cheapest that reaches ``target_recall`` on them, or to exact search when that
        is cheaper (see ``calibration_``). Do this before serving single queries or
        small batches that are not like the corpus items; the result is kept by
        pickling and by :meth:`save`.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Queries like those the search will serve (a few hundred suffice).
        top_k : int, default=None
            Results per query to calibrate for; ``n_neighbors`` when None.

        Returns
        -------
        self : SemanticSearch
        """
        check_is_fitted(self)
        k = self.n_neighbors if top_k is None else top_k
        self._check_k(k, "top_k")
        X = self._validate_queries(X)
        return self._calibrate_queries(X, min(k, self.n_samples_fit_))

    def add(self, X, y=None, *, metadata=None):
        """Add items to the fitted index; they get the next corpus ids.

        Exact and IVF indexes grow in place; an annoy forest is rebuilt (it cannot
        grow). Labels and metadata must be given for the new items exactly when
        they were given to :meth:`fit`.

        Parameters
        ----------
        X : array-like of shape (n_new, n_features)
            Embeddings of the new items.
        y : array-like of shape (n_new,), default=None
            Their labels.
        metadata : sequence of length n_new, default=None
            Their metadata.

        Returns
        -------
        self : SemanticSearch
            The estimator, now holding ``n_samples_fit_ + n_new`` items.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float32, np.float64], reset=False)
        n_new = X.shape[0]
        for name, given, stored in (
            ("y", y, self.labels_),
            ("metadata", metadata, self.metadata_),
        ):
            if (given is None) != (stored is None):
                raise ValueError(
                    f"{name} was {'not ' if stored is None else ''}given to fit, so it "
                    f"must {'not ' if stored is None else ''}be given to add."
                )
        labels = self._check_labels(y, n_new)
        meta = self._check_metadata(metadata, n_new)
        self.index_.add(X)
        if labels is not None:
            self.labels_ = np.concatenate([self.labels_, labels])
        if meta is not None:
            self.metadata_ = list(self.metadata_) + meta
        self.n_samples_fit_ += n_new
        return self

    @staticmethod
    def _check_labels(y, n):
        if y is None:
            return None
        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != n:
            raise ValueError(f"y must have shape ({n},), one label per item; got {y.shape}.")
        return y

    @staticmethod
    def _check_metadata(metadata, n):
        if metadata is None:
            return None
        if hasattr(metadata, "to_dict") and hasattr(metadata, "columns"):
            metadata = metadata.to_dict("records")
        metadata = list(metadata)
        if len(metadata) != n:
            raise ValueError(
                f"metadata has {len(metadata)} entries but X has {n} rows: one per item."
            )
        return metadata

    # -- querying --------------------------------------------------------------------
    def kneighbors(self, X=None, n_neighbors=None, return_distance=True, *, filter=None,
                   category=None):
        """The nearest corpus items of each query, as ``NearestNeighbors.kneighbors``.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features), default=None
            Query embeddings. None queries every indexed item against the others (its
            own row excluded), without filters.
        n_neighbors : int, default=None
            Results per query; ``self.n_neighbors`` when None. At most the number of
            items that pass the filter.
        return_distance : bool, default=True
            Whether to return the distances.
        filter : array-like, default=None
            A boolean mask of shape (n_samples_fit_,) or an array of allowed corpus ids;
            the dtype decides (a 0/1 integer array is ids, and warns).
        category : label or sequence of labels, default=None
            Keep only items whose label (``y`` of :meth:`fit`) is one of these.

        Returns
        -------
        neigh_dist : ndarray of shape (n_queries, n_neighbors)
            Distances, increasing along each row; only if ``return_distance``.
        neigh_ind : ndarray of shape (n_queries, n_neighbors)
            Corpus ids of the nearest items.
        """
        check_is_fitted(self)
        k = self.n_neighbors if n_neighbors is None else n_neighbors
        self._check_k(k, "n_neighbors")
        if X is None:
            if filter is not None or category is not None:
                raise ValueError("filter and category need explicit queries X.")
            if k > self.n_samples_fit_ - 1:
                raise ValueError(
                    f"n_neighbors={k} is too large: {self.n_samples_fit_ - 1} other items exist."
                )
            cal = self.calibration_
            if cal.exact or cal.knob != self.index_.KNOB:
                scores, ids, q_sqnorm = self.index_.exact_self_join(k + 1)
            else:
                scores, ids, q_sqnorm = self.index_.self_join(k + 1, knob=cal.value)
            scores, ids = _drop_self(scores, ids)
        else:
            X = self._validate_queries(X)
            allowed = self._allowed(filter, category)
            n_pass = self.n_samples_fit_ if allowed is None else int(allowed.sum())
            if k > n_pass:
                raise ValueError(
                    f"n_neighbors={k} is too large: {n_pass} indexed items"
                    f"{' pass the filter' if allowed is not None else ''}."
                )
            scores, ids, q_sqnorm = self._query(X, k, allowed)
        if not return_distance:
            return ids
        return self.index_.distances(scores, q_sqnorm), ids

    def search(self, X, top_k=None, *, filter=None, category=None):
        """The ``top_k`` best corpus items per query, as ``util.semantic_search``.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Query embeddings.
        top_k : int, default=None
            Results per query; ``self.n_neighbors`` when None. Fewer come back when
            fewer items (pass the filter and) exist.
        filter : array-like, default=None
            A boolean mask of shape (n_samples_fit_,) or an array of allowed corpus ids;
            the dtype decides (a 0/1 integer array is ids, and warns).
        category : label or sequence of labels, default=None
            Keep only items whose label (``y`` of :meth:`fit`) is one of these.

        Returns
        -------
        results : list of list of dict
            For each query, dicts with keys ``"corpus_id"`` (int) and ``"score"``
            (float, larger is better), sorted by decreasing score; plus ``"label"``
            and ``"metadata"`` when labels or metadata were given to :meth:`fit`.
        """
        check_is_fitted(self)
        k = self.n_neighbors if top_k is None else top_k
        self._check_k(k, "top_k")
        X = self._validate_queries(X)
        allowed = self._allowed(filter, category)
        n_pass = self.n_samples_fit_ if allowed is None else int(allowed.sum())
        k = min(k, n_pass)
        if k == 0:
            return [[] for _ in range(X.shape[0])]
        scores, ids, _ = self._query(X, k, allowed)
        sims = self.index_.similarities(scores)
        return self._format(sims, ids)

    def _format(self, sims, ids):
        sims_l, ids_l = sims.tolist(), ids.tolist()
        labels = None if self.labels_ is None else self.labels_[ids].tolist()
        meta = self.metadata_
        out = []
        for q in range(len(ids_l)):
            row = []
            for j, (cid, s) in enumerate(zip(ids_l[q], sims_l[q], strict=True)):
                hit = {"corpus_id": cid, "score": s}
                if labels is not None:
                    hit["label"] = labels[q][j]
                if meta is not None:
                    hit["metadata"] = meta[cid]
                row.append(hit)
            out.append(row)
        return out

    @staticmethod
    def _check_k(k, name):
        if isinstance(k, bool) or not isinstance(k, Integral):
            raise TypeError(f"{name} must be an int, got {type(k).__name__}.")
        if k <= 0:
            raise ValueError(f"{name} must be >= 1, got {k}.")

    def _validate_queries(self, X):
        X = validate_data(self, X, dtype=[np.float32, np.float64], reset=False)
        return X

    def _allowed(self, filter, category):
        """Boolean mask of the items that pass ``filter`` and ``category`` (None: all).

        The dtype alone decides what ``filter`` is: a bool array is a mask over the
        corpus, an integer array lists corpus ids. An integer array of length
        ``n_samples_fit_`` holding only 0s and 1s was most likely meant as a mask, so
        it is read as ids but with a warning.
        """
        n = self.n_samples_fit_
        mask = None
        if filter is not None:
            f = np.asarray(filter)
            if f.dtype == bool:
                if f.shape != (n,):
                    raise ValueError(
                        f"filter is a boolean mask of shape {f.shape}; it must have shape "
                        f"({n},), one entry per indexed item."
                    )
                mask = f.copy()
            elif f.dtype.kind in "iu" or f.size == 0:
                if f.ndim != 1:
                    raise ValueError(
                        f"filter of corpus ids must be 1-D, got shape {f.shape}."
                    )
                f = f.astype(np.int64)
                if f.shape == (n,) and np.all((f == 0) | (f == 1)):
                    warnings.warn(
                        f"filter is an integer array of length n_samples_fit_={n} holding "
                        "only 0s and 1s: it is read as corpus ids (items 0 and 1), not as "
                        "a mask. Pass a boolean array (filter.astype(bool)) for a mask.",
                        UserWarning,
                        stacklevel=3,
                    )
                if f.size and (f.min() < 0 or f.max() >= n):
                    raise ValueError(
                        f"filter holds corpus ids outside [0, {n}): "
                        f"min {f.min()}, max {f.max()}."
                    )
                mask = np.zeros(n, dtype=bool)
                mask[f] = True
            else:
                raise TypeError(
                    "filter must be a boolean mask or an array of integer corpus ids, "
                    f"got dtype {f.dtype}."
                )
        if category is not None:
            if self.labels_ is None:
                raise ValueError("category needs labels: pass y to fit.")
            in_cat = np.isin(self.labels_, np.atleast_1d(np.asarray(category)))
            mask = in_cat if mask is None else mask & in_cat
        return mask

    def _query(self, X, k, allowed):
        """Top-k (scores, ids, q_sqnorm) over the allowed items, exactly k per row."""
        index, n = self.index_, self.n_samples_fit_
        if allowed is None:
            return self._search_index(X, k)
        passing = np.flatnonzero(allowed)
        n_pass = len(passing)
        if self.calibration_.exact or n_pass == n:
            if n_pass == n:
                return self._search_index(X, k)
            return index.query_subset(X, k, passing)
        # Over-fetch in proportion to the filter's selectivity; search the passing
        # items exactly when they are few, or when over-fetching would ask for a large
        # part of the corpus.
        fetch = math.ceil(k * self.filter_overfetch * n / n_pass)
        if n_pass <= EXACT_FILTER_MAX_PASSING or fetch > n // 4:
            return index.query_subset(X, k, passing)
        scores, ids, q_sqnorm = self._run(X, fetch, self.calibration_)
        out_s, out_i, got = _compact(scores, ids, allowed, k)
        short = np.flatnonzero(got < k)
        if short.size:
            # Too few candidates passed for these queries: search the passing items.
            s, i, _ = index.query_subset(X[short], k, passing)
            out_s[short], out_i[short] = s, i
        return out_s, out_i, q_sqnorm

    # -- evaluation ------------------------------------------------------------------
    def evaluate(self, X, relevant, *, k=10):
        """recall@k and nDCG@k of the results for queries ``X`` against relevance labels.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Query embeddings.
        relevant : array-like
            Relevant corpus ids per query, in any form
            :func:`sksemantic.metrics.retrieval_recall_at_k` takes (for known-item
            search: the one relevant id of each query).
        k : int or sequence of int, default=10
            Cut-off(s).

        Returns
        -------
        scores : dict
            ``{"recall@k": float, "ndcg@k": float}`` for each ``k``.
        """
        from ..metrics import retrieval_ndcg_at_k, retrieval_recall_at_k

        if isinstance(k, Integral) and not isinstance(k, bool):
            ks = [k]
        elif isinstance(k, (list, tuple, range, np.ndarray)) and np.ndim(k) == 1 and len(k):
            ks = list(k)
        else:
            raise TypeError(
                f"k must be an int or a non-empty sequence of ints, got {type(k).__name__} {k!r}."
            )
        for kk in ks:
            self._check_k(kk, "k")
        ids = self.kneighbors(X, min(max(ks), self.n_samples_fit_), return_distance=False)
        out = {}
        for kk in ks:
            out[f"recall@{kk}"] = retrieval_recall_at_k(relevant, ids, k=kk)
            out[f"ndcg@{kk}"] = retrieval_ndcg_at_k(relevant, ids, k=kk)
        return out

    # -- persistence -----------------------------------------------------------------
    def save(self, path):
        """Write the fitted estimator to the directory ``path`` for :meth:`load`.

        The index goes to its own files (annoy's file format, ``.npy`` arrays; an
        HNSW graph is pickled, and read into memory on load), the rest of the
        estimator (parameters, labels, metadata, any other fitted attribute) to a
        pickle, with the sizes and checksums of all of them. Each save is a new version
        inside ``path``, made current by an atomic switch once it is complete: a
        :meth:`load` running meanwhile gets the earlier save or this one, never a mix,
        and processes serving the earlier files memory-mapped keep reading them
        undisturbed. The versions this one replaces, and what killed saves left, are
        removed.

        Parameters
        ----------
        path : str or path-like
            A directory; created if missing. It may be empty or hold earlier saves.
            Anything else (a file, a directory holding other entries) is refused with
            a :class:`FileExistsError`, so that nothing there is lost. Saves to one
            directory must come from one writer at a time.

        Returns
        -------
        path : pathlib.Path
        """
        check_is_fitted(self)
        return save_search(self, path)

    @classmethod
    def load(cls, path, *, mmap=True, verify=True):
        """Open an estimator written by :meth:`save`.

        Loading unpickles the saved estimator and index: only load files you trust,
        as with :func:`pickle.load` and :func:`joblib.load` (a crafted file runs code).
        Before anything is unpickled, the files are checked against the sizes and
        checksums recorded by :meth:`save`, so damaged or truncated files raise a
        :class:`ValueError` naming the file.

        Parameters
        ----------
        path : str or path-like
            The directory given to :meth:`save`.
        mmap : bool, default=True
            Memory-map the index (nothing is read until queries touch it) instead of
            reading it into memory. Later saves to ``path`` do not disturb it.
        verify : bool, default=True
            Check every file's checksum, which reads each file once (even with
            ``mmap=True``); turn it off to open a huge index without reading it. The
            file sizes are checked either way.

        Returns
        -------
        search : SemanticSearch
        """
        return load_search(cls, path, mmap=mmap, verify=verify)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.target_tags.required = False
        return tags


def _drop_self(scores, ids):
    """Remove each row's own id (row i holds item i) and keep k - 1 columns."""
    n, k = ids.shape
    is_self = ids == np.arange(n)[:, None]
    # Rows where self was not found lose their last column instead.
    is_self[~is_self.any(axis=1), -1] = True
    keep = ~is_self
    return scores[keep].reshape(n, k - 1), ids[keep].reshape(n, k - 1)


def _compact(scores, ids, allowed, k):
    """Per row, the first ``k`` candidates that pass ``allowed`` (order kept)."""
    ok = (ids >= 0) & allowed[np.maximum(ids, 0)]
    got = ok.sum(axis=1)
    order = np.argsort(~ok, axis=1, kind="stable")[:, :k]
    out_s = np.take_along_axis(scores, order, axis=1)
    out_i = np.take_along_axis(ids, order, axis=1)
    return out_s, out_i, np.minimum(got, k)
