"""The base of every estimator that owns a neighbour index, and its recall contract.

:class:`SemanticGraphTransformer`, :class:`SemanticSearch` and
:class:`SemanticDeduplicator` share one set of index parameters, one way of building the
index, and one recall contract: an approximate index measures its own recall against
exact search on a sample of queries and searches with the cheapest setting that meets
``target_recall`` (or exactly, when that is cheaper). This module holds all of it, in
the manner of scikit-learn's ``NeighborsBase``.
"""

import sys
from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval

from ..base import VersionedPickleMixin
from ._calibrate import (
    N_CALIBRATION,
    RecallCalibration,
    calibrate_index,
    exact_answers,
    is_shifted,
    reference_scores,
    search_with,
)
from ._factory import INDEX_PARAMETER_CONSTRAINTS, index_seed, make_index, resolve_algorithm
from ._ivf import default_n_lists

__all__ = ["BaseIndexedEstimator", "INDEX_PARAMETERS_DOC"]

#: Batches of at least this many queries are checked against the calibration: a sample
#: of them (:data:`BATCH_SAMPLE`) is compared with the calibration queries, and when they
#: differ the batch is calibrated on that sample, searched exactly.
BATCH_MIN = 1000
BATCH_SAMPLE = 200
#: A batch that calibrates itself does so on this share of its queries (at least
#: :data:`BATCH_SAMPLE`, at most :data:`N_CALIBRATION`), searched exactly.
BATCH_CALIBRATION_SHARE = 0.1
#: When the calibrated setting costs at least this share of exact search, a large
#: batch's sample is searched exactly and calibrates the batch without a shift test.
DIRECT_CALIBRATION_COST = 0.8
#: Such a batch is searched exactly outright when even its calibrated setting could not
#: save the exact search of this many queries (``(1 - cost) * n_queries``): about what
#: calibrating it costs (a second search call, the calibration itself).
DIRECT_MIN_SAVING = 500

#: The parameters' docstring, shared by every estimator over an index.
INDEX_PARAMETERS_DOC = """\
    algorithm : {"auto", "brute", "ivf", "ivf_rq", "annoy", "hnsw"}, default="auto"
        ``"brute"``: exact search by blocked matrix products. ``"ivf"``: approximate,
        k-means inverted lists scanned by matrix products. ``"ivf_rq"``: IVF lists
        scanned through 16 bytes of residual codes per item, the best candidates
        re-scored exactly (a compressed index: slower to build, not faster to
        search, for corpora whose vectors do not fit in memory; not for
        ``"manhattan"``). ``"annoy"``: approximate,
        annoy's random-projection forest. ``"hnsw"``: approximate, hnswlib's navigable
        small-world graph (the ``hnsw`` extra), fastest for small batches.
        ``"auto"``: ``"brute"`` up to 20,000 indexed points; beyond, ``"hnsw"`` for
        a search held in memory (up to 2,000,000 points, when hnswlib is installed),
        else ``"ivf"`` (graphs, deduplication, ``storage``; ``"annoy"`` for
        ``"manhattan"``).
    target_recall : float or None, default=0.95
        The recall@k an approximate index must reach, against exact search. The
        fitted index measures its recall on a sample of queries searched exactly and
        uses the cheapest search effort (``n_probe``, ``ef_search``, ``search_k``)
        that reaches it with a 95% margin for the sample's error, or exact search
        when that is cheaper (see ``calibration_``). Large batches are checked again
        against their own sample (see the User Guide). None uses the knobs' defaults
        without measuring. A knob given explicitly is used as given (and measured).
    n_lists : int, default=None
        IVF (and ``"ivf_rq"``) lists; when None, ``round(2 * sqrt(n_samples))`` for a
        graph or deduplication, and for a search as many lists of at least 80 points,
        between ``2 * sqrt`` and ``4 * sqrt(n_samples)`` (see ``default_n_lists``).
    n_probe : int, default=None
        IVF (and ``"ivf_rq"``) lists scanned per query (more is slower and more accurate). None: tuned
        to ``target_recall``.
    n_trees : int, default=None
        Annoy trees; ``max(10, n_features // 8)`` when None.
    search_k : int, default=None
        Annoy nodes inspected per query. None: tuned to ``target_recall``.
    n_links : int, default=None
        HNSW links per node (hnswlib's ``M``); 16 when None.
    ef_search : int, default=None
        HNSW candidates kept per query walk (more is slower and more accurate).
        None: tuned to ``target_recall``.
    storage : str, path-like or None, default=None
        For ``"ivf"`` and ``"ivf_rq"``: a directory where the index writes its
        vectors (a new file it owns, removed when no longer used) and maps them
        read-only, so that a corpus given as an ``np.memmap`` is indexed with a
        working set that does not grow with it. None keeps them in memory; other
        algorithms ignore it.
    n_jobs : int, default=None
        Threads for the search loops, through joblib; an active joblib backend is
        honoured (``joblib.parallel_config``). None: the context's ``n_jobs`` if it
        sets one, else every core this process may use (inside a dask worker, its
        share of the worker's threads); -1 every core. Results never depend on it,
        except for annoy and HNSW builds with more than one thread (they run on one
        unless ``n_jobs`` is given).
    random_state : int, RandomState instance or None, default=None
        Seeds the IVF k-means, the annoy forest, the HNSW graph and the calibration
        sample.
    verbose : int, default=0
        Print progress of long builds and searches, and the calibration's outcome,
        to stderr."""

#: The knob each backend tunes, by algorithm name.
_KNOB_PARAM = {"ivf": "n_probe", "ivf_rq": "n_probe", "hnsw": "ef_search", "annoy": "search_k"}

_INDEX_PARAMS = ("algorithm", "target_recall", "n_lists", "n_probe", "n_trees", "search_k",
                 "n_links", "ef_search", "storage", "n_jobs", "random_state", "verbose")


def fill_index_doc(cls):
    """Class decorator: document the index parameters where the docstring asks for them.

    The line ``    <index parameters>`` of the class docstring becomes
    ``INDEX_PARAMETERS_DOC``, so that every estimator built on
    :class:`BaseIndexedEstimator` describes its index parameters in the same words.

    Parameters
    ----------
    cls : type
        A class whose docstring holds the line ``    <index parameters>``.

    Returns
    -------
    cls : type
        The same class, its docstring completed.

    Examples
    --------
    >>> from sksemantic.neighbors import BaseIndexedEstimator, fill_index_doc
    >>> @fill_index_doc
    ... class MyEstimator(BaseIndexedEstimator):
    ...     '''An estimator owning an index.
    ...
    ...     Parameters
    ...     ----------
    ...     <index parameters>
    ...     '''
    >>> "target_recall : float" in MyEstimator.__doc__
    True
    """
    cls.__doc__ = cls.__doc__.replace("    <index parameters>", INDEX_PARAMETERS_DOC)
    return cls


@fill_index_doc
class BaseIndexedEstimator(VersionedPickleMixin, BaseEstimator):
    """Base class of the estimators that own a neighbour index (``index_``).

    Subclasses call ``_fit_index`` in ``fit`` and ``_search_index`` to answer
    queries; both honour ``target_recall``.

    Parameters
    ----------
    <index parameters>
    """

    #: Whether the index mainly answers searches (batches of outside queries) rather
    #: than a self-join of the indexed points; sets the default number of IVF lists.
    _SERVES_SEARCHES = False

    _parameter_constraints: dict = {
        **INDEX_PARAMETER_CONSTRAINTS,
        "target_recall": [Interval(Real, 0, 1, closed="right"), None],
    }

    def __init__(self, *, algorithm="auto", target_recall=0.95, n_lists=None, n_probe=None,
                 n_trees=None, search_k=None, n_links=None, ef_search=None, storage=None,
                 n_jobs=None, random_state=None, verbose=0):
        self.algorithm = algorithm
        self.target_recall = target_recall
        self.n_lists = n_lists
        self.n_probe = n_probe
        self.n_trees = n_trees
        self.search_k = search_k
        self.n_links = n_links
        self.ef_search = ef_search
        self.storage = storage
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    def _index_params(self):
        """The index parameters, to hand on to an inner estimator."""
        return {name: getattr(self, name) for name in _INDEX_PARAMS}

    def _explicit_knob(self):
        """The user's value for the fitted backend's knob, or None."""
        name = _KNOB_PARAM.get(self.algorithm_)
        return None if name is None else getattr(self, name)

    def _log(self, message):
        if self.verbose:
            print(f"[{type(self).__name__}] {message}", file=sys.stderr, flush=True)

    # -- fitting ---------------------------------------------------------------------
    def _fit_index(self, X, k):
        """Build ``index_`` over ``X`` and calibrate it for queries of ``k`` results.

        Returns the calibration points' exact answers, which a self-join calibration
        reuses (None for exact indexes, and for indexes whose held-out rows were left
        out of them).

        The calibration queries are indexed items held out of the index's structure
        (IVF's training, HNSW's graph) until the calibration is done, so they stand
        for new queries; ``calibrate`` replaces them with queries the user gives.
        """
        n = X.shape[0]
        k = int(min(k, n - 1))
        self.algorithm_ = resolve_algorithm(self.algorithm, n, self.metric,
                                            search=self._SERVES_SEARCHES,
                                            storage=self.storage)
        n_lists = self.n_lists
        if n_lists is None and self.algorithm_ in ("ivf", "ivf_rq"):
            n_lists = default_n_lists(n, search=self._SERVES_SEARCHES)
        index = make_index(
            self.algorithm_, self.metric, n,
            n_lists=n_lists, n_probe=self.n_probe, n_trees=self.n_trees,
            search_k=self.search_k, n_links=self.n_links, ef_search=self.ef_search,
            storage=self.storage, random_state=index_seed(self.random_state), n_jobs=self.n_jobs,
            verbose=self.verbose,
        )
        rows = None
        n_cal = min(N_CALIBRATION, n // 4)  # the index must keep most of its points
        # No target and no knob given: the default knob, not measured (nothing to tune,
        # and a caller that calibrates later, or jointly over shards, pays nothing).
        measure = self.target_recall is not None or self._explicit_knob() is not None
        if index.KNOB is not None and n_cal >= 2 and k >= 1 and measure:
            rng = check_random_state(self.random_state)
            rows = np.sort(rng.choice(n, n_cal, replace=False))
        index.fit(X, holdout=rows)
        self.index_ = index
        self._calibration_rows = rows
        exact = None if rows is None else exact_answers(index, k, self_rows=rows)
        self.calibration_ = self._calibrate(k, self_rows=rows, source="corpus", exact=exact,
                                            reference=True)
        index.insert_holdout()
        self.batch_calibration_ = None
        self._log(f"algorithm={self.algorithm!r} chose {self.algorithm_!r}; "
                  f"{self.calibration_.describe()}")
        # Exact answers that left the held-out rows out are not those of the full index.
        return None if index.HOLDOUT_UNSEARCHED else exact

    def _calibrate(self, k, *, Q=None, self_rows=None, reverse=False, source, exact=None,
                   reference=False):
        """A calibration of ``index_`` for ``k`` results; with ``reference``, also the
        sample's k-th best scores at the chosen setting, which later batches are
        compared with (for ``calibration_`` only)."""
        index = self.index_
        if index.KNOB is None:
            return RecallCalibration.exact_search(0, k, self.target_recall, source)
        if self_rows is None and Q is None:  # too few points to measure: the defaults
            knob = self._explicit_knob() or index.default_knob(k)
            return RecallCalibration(self.algorithm_, index.KNOB, int(knob), np.nan, np.nan,
                                     0, k, self.target_recall, "none", np.nan)
        cal = calibrate_index(
            index, k, self.target_recall, Q=Q, self_rows=self_rows, reverse=reverse,
            knob=self._explicit_knob(), source=source, exact=exact,
        )
        if reference:
            cal.reference = reference_scores(index, cal, Q=Q, self_rows=self_rows)
        return cal

    def _calibrate_queries(self, X, k):
        """Calibrate on the queries ``X`` (validated); sets ``calibration_``."""
        self.calibration_ = self._calibrate(k, Q=X, source="queries", reference=True)
        self._log(self.calibration_.describe())
        return self

    # -- searching -------------------------------------------------------------------
    def _search_index(self, Q, k):
        """``index_.query(Q, k)`` under the recall contract: (scores, ids, q_sqnorm).

        Small batches search with ``calibration_``'s setting. A batch of at least
        :data:`BATCH_MIN` queries is first checked on an evenly spread sample: when
        the sample's k-th best scores differ from the calibration queries' (or ``k``
        differs from the calibrated one), a tenth of the batch (between
        :data:`BATCH_SAMPLE` and :data:`N_CALIBRATION` queries, the sample among them)
        is searched exactly, the index is calibrated on it (``batch_calibration_``),
        and the rest of the batch is searched with that calibration's setting. When
        the calibrated setting costs at least :data:`DIRECT_CALIBRATION_COST` of exact
        search, the batch calibrates itself so without the test, or, when that setting
        could not save :data:`DIRECT_MIN_SAVING` queries' exact search, is searched
        exactly.
        """
        index, cal = self.index_, self.calibration_
        if cal is None or index.KNOB is None:
            return index.query(Q, k)
        n_q = Q.shape[0]
        tuned = self.target_recall is not None and self._explicit_knob() is None
        if not tuned or n_q < BATCH_MIN:
            return self._run(Q, k, cal)
        if cal.exact:
            return index.exact_query(Q, k)
        if cal.cost >= DIRECT_CALIBRATION_COST and (1.0 - cal.cost) * n_q < DIRECT_MIN_SAVING:
            self.batch_calibration_ = RecallCalibration.exact_search(
                0, k, self.target_recall, "batch")
            self._log(f"batch of {n_q} queries: {self.batch_calibration_.describe()}")
            return index.exact_query(Q, k)
        sample = _spread(n_q, BATCH_SAMPLE)
        # Checking the sample at a setting that costs 0.8 of exact search or more
        # would cost nearly as much as calibrating the batch outright.
        shifted = cal.cost >= DIRECT_CALIBRATION_COST
        if not shifted:
            s_s, i_s, q_s = search_with(index, cal, Q[sample], k)
            shifted = k != cal.k or is_shifted(cal.reference, s_s[:, -1])
        if not shifted:
            use = cal
        else:
            size = int(min(N_CALIBRATION, max(BATCH_SAMPLE, BATCH_CALIBRATION_SHARE * n_q)))
            sample = np.union1d(sample, _spread(n_q, size))
            s_s, i_s, q_s = index.exact_query(Q[sample], k)
            use = self._calibrate(k, Q=Q[sample], source="batch", exact=(s_s, i_s))
            self.batch_calibration_ = use
            self._log(f"batch of {n_q} queries: {use.describe()}")
        rest = np.setdiff1d(np.arange(n_q), sample, assume_unique=True)
        s_r, i_r, q_r = self._run(Q[rest], k, use)
        scores = np.empty((n_q, s_r.shape[1]), dtype=np.float32)
        ids = np.empty((n_q, s_r.shape[1]), dtype=np.int64)
        q_sqnorm = np.empty(n_q, dtype=q_r.dtype)
        scores[sample], ids[sample], q_sqnorm[sample] = s_s, i_s, q_s
        scores[rest], ids[rest], q_sqnorm[rest] = s_r, i_r, q_r
        return scores, ids, q_sqnorm

    def _run(self, Q, k, cal):
        return search_with(self.index_, cal, Q, k)


def _spread(n, size):
    """``size`` row numbers spread evenly over ``range(n)``, sorted, distinct."""
    return np.unique(np.linspace(0, n - 1, min(n, size)).round().astype(np.int64))
