"""SemanticSearch: top-k search over embeddings with filters, growth and persistence."""

import math
import os
import pickle
import shutil
import sys
import tempfile
import warnings
from numbers import Integral, Real
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ..base import VersionedPickleMixin
from ..neighbors import (
    AUTO_BRUTE_MAX_SAMPLES,
    INDEX_PARAMETER_CONSTRAINTS,
    METRICS,
    default_n_lists,
    default_n_probe,
    index_seed,
    load_index,
    make_index,
    resolve_algorithm,
    save_index,
)
from ..neighbors._metric import pairwise_scores, prepare

__all__ = ["SemanticSearch"]

_ESTIMATOR_FILE = "search.pkl"

#: Filters passing at most this many items are answered by exact search over them: as
#: for ``algorithm="auto"``, scoring that many points directly is cheaper than probing an
#: approximate index for enough candidates (and it is exact).
EXACT_FILTER_MAX_PASSING = AUTO_BRUTE_MAX_SAMPLES

#: ``algorithm="auto"`` keeps an approximate index only when its recall@10, measured on
#: :data:`AUTO_RECALL_SAMPLE` corpus items used as queries, reaches this; otherwise it
#: searches exactly.
AUTO_MIN_RECALL = 0.8
AUTO_RECALL_SAMPLE = 200


class SemanticSearch(VersionedPickleMixin, BaseEstimator):
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
    algorithm : {"auto", "brute", "ivf", "annoy", "hnsw"}, default="auto"
        ``"brute"``: exact search by blocked matrix products (what
        ``util.semantic_search`` does). ``"ivf"``: approximate, k-means inverted lists.
        ``"annoy"``: approximate, annoy's random-projection forest (as in the
        TensorFlow semantic-search tutorial). ``"hnsw"``: approximate, hnswlib's
        navigable small-world graph (the ``hnsw`` extra): the highest throughput for
        small batches and single queries, for a longer build. ``"auto"``: ``"brute"``
        up to 20,000 items, ``"ivf"`` beyond, unless IVF's recall@10 on 200 corpus items used as
        queries falls below 0.8 (data without cluster structure, such as random
        vectors, where no approximate index finds the neighbours): then ``"brute"``.
    n_lists : int, default=None
        IVF lists; ``round(4 * sqrt(n_samples))`` when None.
    n_probe : int, default=None
        IVF lists scanned per query (more is slower and more accurate);
        ``round(1.5 * sqrt(n_lists)) + 2`` when None (see
        :func:`sksemantic.neighbors.default_n_probe`).
    n_trees : int, default=None
        Annoy trees; ``max(10, n_features // 8)`` when None.
    search_k : int, default=None
        Annoy nodes inspected per query; annoy's default when None.
    n_links : int, default=None
        HNSW links per node (hnswlib's ``M``); 16 when None.
    ef_search : int, default=None
        HNSW candidates kept per query walk (more is slower and more accurate);
        ``max(32, 2 * k)`` for ``k`` results when None (see
        :func:`sksemantic.neighbors.default_ef_search`).
    filter_overfetch : float, default=2.0
        Safety factor on the number of candidates fetched for a filtered query, on top
        of ``top_k / (fraction of the corpus that passes)``.
    n_jobs : int, default=None
        Threads for batch queries; None and -1 use every core. Results never depend
        on it, except for annoy and HNSW builds with more than one thread (they run
        on one unless ``n_jobs`` is given).
    random_state : int, RandomState instance or None, default=None
        Seeds the IVF k-means, the annoy forest and the HNSW graph.
    verbose : int, default=0
        Print progress of long builds and searches to stderr.

    Attributes
    ----------
    index_ : BaseIndex
        The fitted neighbour index (see :mod:`sksemantic.neighbors`).
    algorithm_ : str
        The algorithm used, with ``"auto"`` resolved.
    auto_recall_ : float or None
        For ``algorithm="auto"`` beyond 20,000 items: the recall@10 that IVF reached
        on a sample of the corpus, which decided between IVF and exact search.
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
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "metric": [StrOptions(set(METRICS))],
        "filter_overfetch": [Interval(Real, 1, None, closed="left")],
        **INDEX_PARAMETER_CONSTRAINTS,
    }

    def __init__(
        self,
        *,
        n_neighbors=10,
        metric="cosine",
        algorithm="auto",
        n_lists=None,
        n_probe=None,
        n_trees=None,
        search_k=None,
        n_links=None,
        ef_search=None,
        filter_overfetch=2.0,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.n_neighbors = n_neighbors
        self.metric = metric
        self.algorithm = algorithm
        self.n_lists = n_lists
        self.n_probe = n_probe
        self.n_trees = n_trees
        self.search_k = search_k
        self.n_links = n_links
        self.ef_search = ef_search
        self.filter_overfetch = filter_overfetch
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

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
        X = validate_data(self, X, dtype=[np.float32, np.float64])
        n = X.shape[0]
        self.labels_ = self._check_labels(y, n)
        self.metadata_ = self._check_metadata(metadata, n)
        if self.metric == "cosine" and not np.all(np.any(X, axis=1)):
            warnings.warn(
                "X contains all-zero rows; under metric='cosine' they have similarity 0 "
                "to every query.",
                UserWarning,
                stacklevel=2,
            )
        self.algorithm_ = resolve_algorithm(self.algorithm, n, self.metric)
        self.index_ = self._make_index(n).fit(X)
        self.auto_recall_ = None
        if self.algorithm == "auto" and self.algorithm_ == "ivf":
            # "auto" keeps an approximate index only where it finds the neighbours:
            # on data without cluster structure (random vectors) no list or tree
            # does, and exact search is the right answer.
            self.auto_recall_ = _sample_recall(self.index_, X, self.random_state)
            if self.auto_recall_ < AUTO_MIN_RECALL:
                if self.verbose:
                    print(
                        f"[SemanticSearch] {self.algorithm_} reached recall@10 "
                        f"{self.auto_recall_:.2f} on a sample of the corpus (< "
                        f"{AUTO_MIN_RECALL}): searching exactly instead.",
                        file=sys.stderr,
                    )
                self.algorithm_ = "brute"
                self.index_ = self._make_index(n).fit(X)
        self.n_samples_fit_ = n
        return self

    def _make_index(self, n):
        return make_index(
            self.algorithm_,
            self.metric,
            n,
            n_lists=self.n_lists,
            n_probe=self._n_probe(n),
            n_trees=self.n_trees,
            search_k=self.search_k,
            n_links=self.n_links,
            ef_search=self.ef_search,
            random_state=index_seed(self.random_state),
            n_jobs=self.n_jobs,
            verbose=self.verbose,
        )

    def _n_probe(self, n):
        if self.n_probe is not None or self.algorithm_ != "ivf":
            return self.n_probe
        return default_n_probe(self.n_lists or default_n_lists(n), search=True)

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
            A boolean mask of shape (n_samples_fit_,) or an array of allowed corpus ids.
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
            scores, ids, q_sqnorm = self.index_.self_join(k + 1)
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
            A boolean mask of shape (n_samples_fit_,) or an array of allowed corpus ids.
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
        """Boolean mask of the items that pass ``filter`` and ``category`` (None: all)."""
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
                f = f.astype(np.int64).ravel()
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
            return index.query(X, k)
        passing = np.flatnonzero(allowed)
        n_pass = len(passing)
        if self.algorithm_ == "brute" or n_pass == n:
            if n_pass == n:
                return index.query(X, k)
            return index.query_subset(X, k, passing)
        # Over-fetch in proportion to the filter's selectivity; search the passing
        # items exactly when they are few, or when over-fetching would ask for a large
        # part of the corpus.
        fetch = math.ceil(k * self.filter_overfetch * n / n_pass)
        if n_pass <= EXACT_FILTER_MAX_PASSING or fetch > n // 4:
            return index.query_subset(X, k, passing)
        scores, ids, q_sqnorm = index.query(X, fetch)
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

        ks = [k] if isinstance(k, Integral) else list(k)
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
        HNSW graph is pickled, and read into memory on load), the rest (parameters,
        labels, metadata) to a pickle. The directory is written
        beside ``path`` and then swapped in, so an earlier save stays whole until the
        new one is complete, and processes serving the earlier files memory-mapped keep
        reading them undisturbed.

        Parameters
        ----------
        path : str or path-like
            A directory; created, or replaced if it is empty or holds an earlier save.
            Anything else there (a file, a directory with other contents) is refused.

        Returns
        -------
        path : pathlib.Path
        """
        check_is_fitted(self)
        path = Path(path)
        if path.exists() and not (path / _ESTIMATOR_FILE).is_file() and (
            not path.is_dir() or any(path.iterdir())
        ):  # an empty directory holds nothing to lose (e.g. a fresh temporary one)
            raise FileExistsError(
                f"{path} exists and does not hold a saved SemanticSearch; refusing to "
                "replace it."
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        index = self.index_
        try:
            save_index(index, tmp)
            del self.index_
            with open(tmp / _ESTIMATOR_FILE, "wb") as fh:
                pickle.dump(self, fh, protocol=pickle.HIGHEST_PROTOCOL)
            if path.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
                os.replace(path, old / "saved")
                os.replace(tmp, path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, path)
        finally:
            self.index_ = index
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return path

    @classmethod
    def load(cls, path, *, mmap=True):
        """Open an estimator written by :meth:`save`.

        Parameters
        ----------
        path : str or path-like
            The directory given to :meth:`save`.
        mmap : bool, default=True
            Memory-map the index (nothing is read until queries touch it) instead of
            reading it into memory. Keep the directory while the estimator is in use.

        Returns
        -------
        search : SemanticSearch
        """
        path = Path(path)
        with open(path / _ESTIMATOR_FILE, "rb") as fh:
            est = pickle.load(fh)
        if not isinstance(est, cls):
            raise TypeError(f"{path} holds a {type(est).__name__}, not a {cls.__name__}.")
        est.index_ = load_index(path, mmap=mmap)
        return est

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


def _auto_sample_rows(index, n, random_state):
    """Corpus rows to use as queries in the recall check: ``AUTO_RECALL_SAMPLE`` rows
    that did not train the IVF lists whenever there are that many.

    Lists fitted to a point keep it with its neighbours, so such points overstate the
    recall new queries get. With an integer ``random_state`` the IVF training draw and a
    plain draw of the sample use the same random stream, so the sample used to be
    exactly the first training rows: on 25,000 random 128-d vectors the check read 0.39
    where new queries get 0.35 (held-out rows: 0.34). Beyond about 6,400 items the
    default IVF trains on fewer rows than it holds, so a held-out sample exists wherever
    ``algorithm="auto"`` runs the check.
    """
    pool = np.arange(n)
    trained = getattr(index, "train_rows_", None)
    if trained is not None:
        held_out = np.setdiff1d(pool, trained, assume_unique=True)
        if held_out.size >= min(n, AUTO_RECALL_SAMPLE):
            pool = held_out
    rng = check_random_state(random_state)
    return pool[rng.choice(pool.size, min(pool.size, AUTO_RECALL_SAMPLE), replace=False)]


def _sample_recall(index, X, random_state, k=10):
    """Recall@k of an IVF ``index`` against exact search, for a sample of corpus items
    used as queries (each item itself left out of both answers).

    The exact answers are scored against the index's own prepared copy of the corpus,
    a few queries at a time, so the check adds no copy of ``X``. The sample is drawn
    from the items that did not train the lists (see :func:`_auto_sample_rows`).
    """
    n = X.shape[0]
    k = min(k, n - 1)
    rows = _auto_sample_rows(index, n, random_state)
    found = index.query(X[rows], k + 1)[1]
    Q_prep, q_sqnorm = prepare(X[rows], index.metric, index._center())
    pos = np.empty_like(index.perm_)
    pos[index.perm_] = np.arange(n)
    hits = 0
    step = 16
    for s in range(0, len(rows), step):
        r = rows[s : s + step]
        S = pairwise_scores(Q_prep[s : s + step], index.X_, index.metric,
                            q_sqnorm[s : s + step], index.sqnorm_)
        S[np.arange(len(r)), pos[r]] = -np.inf  # leave the item itself out
        exact = index.perm_[np.argpartition(S, n - k, axis=1)[:, n - k :]]
        for f, e, me in zip(found[s : s + step], exact, r, strict=True):
            hits += len(set(f[f != me][:k].tolist()) & set(e.tolist()))
    return hits / (len(rows) * k)
