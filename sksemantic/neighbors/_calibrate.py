"""Recall calibration: measure an approximate index against exact search, tune its knob.

An approximate index trades recall for speed through one search-effort parameter (its
``KNOB``: IVF's ``n_probe``, HNSW's ``ef_search``, annoy's ``search_k``). Which value
reaches a given recall depends on the data *and* on the queries: queries from another
corpus sit farther from the indexed points, and their neighbours spread over more lists
or graph regions. So the recall is measured, not assumed: a sample of queries is
searched exactly, the index's recall is computed at every value of its knob
(:meth:`BaseIndex.recall_curve`), and the cheapest value whose recall meets the target
with a margin for the sample's error is kept. When even that costs more than exact
search (:meth:`BaseIndex.relative_cost`), exact search is chosen.
"""

from dataclasses import dataclass, field

import numpy as np
from scipy.stats import ks_2samp
from sklearn.utils import check_random_state

from ._base import tie_aware_hits
from ._brute import exact_search_cost

__all__ = ["RecallCalibration", "calibrate_index", "calibration_rows", "choose_setting",
           "is_shifted", "setting_costs"]

#: One-sided 95% normal quantile: the margin is this many standard errors of the
#: sample's mean recall.
Z_MARGIN = 1.645

#: Queries searched exactly to calibrate (fewer when fewer are available). Enough that
#: the margin is about 0.004 at recall 0.95: smaller samples let the cheapest setting
#: that passes be one whose estimate happened to run high.
N_CALIBRATION = 2000

#: A batch's sample differs from the calibration queries when a two-sample
#: Kolmogorov-Smirnov test on their k-th best scores rejects at this level.
SHIFT_ALPHA = 0.01


@dataclass
class RecallCalibration:
    """The outcome of a recall calibration.

    A dataclass: its fields are both its parameters and its attributes.

    Parameters
    ----------
    algorithm : str
        The backend that answers: the index's algorithm, or ``"brute"`` when exact
        search was chosen.
    knob : str or None
        The tuned parameter (``"n_probe"``, ``"ef_search"``, ``"search_k"``).
    value : int or None
        Its value (None for exact search).
    recall : float
        Estimated recall@k at that value (tie-aware, against exact search).
    recall_low : float
        One-sided 95% lower confidence bound of ``recall``.
    n_queries : int
        Number of queries searched exactly for the estimate.
    k : int
        Number of neighbours the recall is measured at.
    target : float or None
        The recall asked for (None: the value was given, not tuned).
    source : str
        What the queries were: ``"corpus"`` (indexed items held out of training),
        ``"self-join"`` (indexed items, for a neighbour graph), ``"queries"`` (given to
        ``calibrate``) or ``"batch"`` (a sample of the batch being searched).
    cost : float
        Estimated cost relative to exact search (1.0 for exact search).
    reference : ndarray or None
        The calibration queries' k-th best scores at the chosen setting, which a
        later batch's sample is compared with.

    Examples
    --------
    >>> import numpy as np
    >>> from sksemantic.search import SemanticSearch
    >>> rng = np.random.default_rng(0)
    >>> centres = rng.normal(size=(50, 16))
    >>> X = centres[rng.integers(0, 50, 4000)] + 0.2 * rng.normal(size=(4000, 16))
    >>> cal = SemanticSearch(algorithm="ivf", random_state=0).fit(X).calibration_
    >>> # 1000: a quarter of the points, the most held out of a small index
    >>> cal.knob, cal.n_queries, cal.source
    ('n_probe', 1000, 'corpus')
    """

    algorithm: str
    knob: str | None
    value: int | None
    recall: float
    recall_low: float
    n_queries: int
    k: int
    target: float | None
    source: str
    cost: float
    reference: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def exact_search(cls, n_queries, k, target, source):
        """The outcome that chooses exact search (recall 1 by construction).

        Parameters
        ----------
        n_queries : int
            Queries the choice was made on (0: none were measured).
        k : int
            Neighbours per query.
        target : float or None
            The recall asked for.
        source : str
            Where the queries came from (``"corpus"``, ``"queries"``, ``"batch"``).

        Returns
        -------
        RecallCalibration
        """
        return cls("brute", None, None, 1.0, 1.0, n_queries, k, target, source, 1.0)

    @property
    def exact(self):
        """Whether exact search was chosen."""
        return self.value is None

    def measure(self, per_query):
        """Set ``recall`` and ``recall_low`` to what was reached: the mean of
        ``per_query`` recalls and its one-sided 95% lower bound (as a calibration
        estimates them).

        Parameters
        ----------
        per_query : array-like of shape (n_queries,)
            Each query's recall.

        Returns
        -------
        self : RecallCalibration
        """
        mean, low = _mean_and_bound(np.asarray(per_query, dtype=np.float64)[:, None])
        self.recall, self.recall_low = float(mean[0]), float(low[0])
        return self

    def describe(self):
        """One line for logs: what searches and the recall it expects.

        Returns
        -------
        text : str
        """
        if self.exact:
            how = "exact search (brute force)"
        else:
            how = f"{self.algorithm} with {self.knob}={self.value}"
        return (
            f"{how}: expected recall@{self.k} {self.recall:.3f} (95% lower bound "
            f"{self.recall_low:.3f}) measured on {self.n_queries} {self.source} queries; "
            f"estimated cost {self.cost:.2f}x exact search"
        )


def calibration_rows(index, n, random_state, size=N_CALIBRATION):
    """Indexed points to use as calibration queries: ones that did not train the index
    whenever there are enough, ``size`` at most, sorted."""
    pool = np.arange(n)
    trained = index.train_rows
    if trained is not None:
        held_out = np.setdiff1d(pool, trained, assume_unique=True)
        if held_out.size >= min(n, size):
            pool = held_out
    rng = check_random_state(random_state)
    return np.sort(pool[rng.choice(pool.size, min(pool.size, size), replace=False)])


def exact_answers(index, k, *, Q=None, self_rows=None):
    """Exact (scores, ids) of the calibration queries; self rows leave themselves out."""
    if self_rows is None:
        s, i, _ = index.exact_query(Q, k)
        return s, i
    return index.exact_neighbors(self_rows, k)


def calibrate_index(index, k, target, *, Q=None, self_rows=None, reverse=False, knob=None,
                    source="queries", exact=None):
    """Measure ``index``'s recall@k on a sample of queries and choose its knob.

    Parameters
    ----------
    index : BaseIndex
        A fitted index.
    k : int
        Neighbours per query.
    target : float or None
        Recall to reach; None only measures at ``knob`` (or the index's default).
    Q : array-like of shape (n_queries, n_features), default=None
        Calibration queries; or ``self_rows``.
    self_rows : ndarray of int, default=None
        Indexed points used as queries, each left out of its answers.
    reverse : bool, default=False
        Calibrate the self-join (see :meth:`BaseIndex.recall_curve`).
    knob : int, default=None
        A value given by the user: it is measured, not tuned.
    source : str, default="queries"
        Recorded in the result.
    exact : tuple of ndarray, default=None
        The queries' exact (scores, ids), when already known.

    Returns
    -------
    RecallCalibration
    """
    m = len(self_rows) if self_rows is not None else len(Q)
    k = int(min(k, index.n_samples_ - (self_rows is not None)))
    if index.KNOB is None or m == 0 or k < 1:
        return RecallCalibration.exact_search(m, k, target, source)
    if exact is None:
        exact = exact_answers(index, k, Q=Q, self_rows=self_rows)
    exact_s, exact_i = exact
    if knob is not None or target is None:
        values = np.array([knob if knob is not None else index.default_knob(k)])
    else:
        values = np.asarray(index.knob_values(k))
    cost = setting_costs(index, values, k, Q=Q, self_rows=self_rows, reverse=reverse)
    if knob is None and target is not None:
        # Settings that cost more than exact search are never chosen: not measured.
        values, cost = values[cost < 1.0], cost[cost < 1.0]
        if values.size == 0:
            return RecallCalibration.exact_search(m, k, target, source)
    curve = lambda v: index.recall_curve(k, exact_s, exact_i, v, Q=Q,  # noqa: E731
                                         self_rows=self_rows, reverse=reverse)
    if knob is None and target is not None and index.RECALL_CURVE_SEARCHES and values.size > 2:
        values, cost, R = _bisect_curve(curve, values, cost, target)
    else:
        R = curve(values)
    algo = getattr(index, "ALGORITHM", None) or type(index).__name__.replace("Index", "").lower()
    cal = choose_setting(R, values, cost, None if knob is not None else target,
                         algorithm=algo, knob=index.KNOB, k=k, source=source)
    cal.target = target
    return cal


def _bisect_curve(curve, values, cost, target):
    """The recall curve at the few values that find the cheapest one meeting ``target``.

    For indexes that search to measure (:attr:`BaseIndex.RECALL_CURVE_SEARCHES`), the
    largest value is measured first: when even it misses the target, exact search is
    the answer and nothing else is measured. Otherwise the values are bisected, recall
    taken to grow with the value: a handful of searches instead of one per value.
    Returns the values measured, their costs and their curve (columns).
    """
    measured = {}

    def passes(i):
        if i not in measured:
            measured[i] = curve(values[i : i + 1])[:, 0]
        return _mean_and_bound(measured[i][:, None])[1][0] >= target

    lo, hi = 0, len(values) - 1
    if passes(hi):
        while lo < hi:
            mid = (lo + hi) // 2
            if passes(mid):
                hi = mid
            else:
                lo = mid + 1
    cols = sorted(measured)
    return values[cols], cost[cols], np.column_stack([measured[i] for i in cols])


def setting_costs(index, values, k, *, Q=None, self_rows=None, reverse=False):
    """Costs of ``index``'s knob ``values`` relative to exact search as it runs here.

    :meth:`BaseIndex.relative_cost` compares with float32 exact search; where exact
    search of a batch runs a bfloat16 first pass (:func:`exact_search_cost`), an
    approximate setting must beat that faster search. Exact self-joins have no such
    pass: ``reverse`` (self-join) costs are returned as they are.

    Parameters
    ----------
    index : BaseIndex
        A fitted approximate index.
    values : array-like of int
        Knob values.
    k : int
        Neighbours per query.
    Q, self_rows, reverse
        As for :meth:`BaseIndex.relative_cost`.

    Returns
    -------
    cost : ndarray of shape (n_values,)
    """
    cost = np.asarray(index.relative_cost(values, k, Q=Q, self_rows=self_rows,
                                          reverse=reverse), dtype=np.float64)
    return cost if reverse else cost / exact_search_cost(index.metric, index.X_)


def choose_setting(recall, values, cost, target, *, algorithm, knob, k, source):
    """The cheapest knob value whose recall meets ``target`` with the sample's margin.

    The decision step of :func:`calibrate_index`, for recall curves measured some
    other way (for example summed over the shards of a sharded index).

    Parameters
    ----------
    recall : ndarray of shape (n_queries, n_values)
        Per-query recall@k at each value, as :meth:`BaseIndex.recall_curve` gives it.
    values : array-like of int of shape (n_values,)
        The knob values measured.
    cost : array-like of shape (n_values,)
        Their costs relative to exact search.
    target : float or None
        Recall to reach (its one-sided 95% lower bound must); None measures
        ``values[0]`` without choosing.
    algorithm, knob : str
        The backend and the name of its knob, recorded in the result.
    k : int
        Neighbours per query.
    source : str
        What the queries were, recorded in the result.

    Returns
    -------
    RecallCalibration
        Exact search when no value meets the target for less than exact search costs.

    Examples
    --------
    >>> import numpy as np
    >>> from sksemantic.neighbors import choose_setting
    >>> recall = np.array([[0.8, 1.0, 1.0], [0.9, 0.9, 1.0], [0.9, 1.0, 1.0]] * 100)
    >>> cal = choose_setting(recall, [4, 8, 16], [0.1, 0.2, 0.4], 0.95,
    ...                      algorithm="ivf", knob="n_probe", k=10, source="queries")
    >>> cal.value, round(cal.recall, 3)
    (8, 0.967)
    """
    values = np.asarray(values)
    cost = np.asarray(cost, dtype=np.float64)
    m = len(recall)
    mean, low = _mean_and_bound(recall)
    if target is None:
        c = 0
    else:
        ok = np.flatnonzero((low >= target) & (cost < 1.0))
        if not ok.size:
            return RecallCalibration.exact_search(m, k, target, source)
        c = ok[np.argmin(cost[ok])]
    return RecallCalibration(
        algorithm, knob, int(values[c]), float(mean[c]), float(low[c]), m, k, target,
        source, float(cost[c]),
    )


def _mean_and_bound(R):
    """Mean recall per column and its one-sided 95% lower bound."""
    m = len(R)
    mean = R.mean(axis=0)
    se = R.std(axis=0, ddof=1) / np.sqrt(m) if m > 1 else np.ones_like(mean)
    return mean, mean - Z_MARGIN * se


def is_shifted(reference, scores):
    """Whether the k-th best scores ``scores`` of a batch's sample come from another
    distribution than the calibration queries' ``reference`` (a two-sample
    Kolmogorov-Smirnov test at :data:`SHIFT_ALPHA`)."""
    if reference is None or len(reference) < 20 or len(scores) < 20:
        return True
    return bool(ks_2samp(reference, scores).pvalue < SHIFT_ALPHA)


def search_with(index, cal, Q, k):
    """Search ``index`` at the setting a recall calibration chose.

    Exact search when the calibration chose it (``cal.exact``), else
    ``index.query(Q, k, knob=cal.value)``: the one way every estimator answers a
    batch once :func:`calibrate_index` has spoken.

    Parameters
    ----------
    index : BaseIndex
        The fitted index the calibration measured.
    cal : RecallCalibration
        Its outcome (:func:`calibrate_index`).
    Q : array-like of shape (n_queries, n_features)
        The queries, raw (the index prepares them).
    k : int
        Points returned per query.

    Returns
    -------
    scores : ndarray of shape (n_queries, k), float32
        Scores sorted per row, larger is nearer.
    ids : ndarray of shape (n_queries, k), int64
        The matching ids, in fit order.
    q_sqnorm : ndarray of shape (n_queries,)
        Squared norms of the prepared queries (for distance conversion).

    Examples
    --------
    >>> import numpy as np
    >>> from sksemantic.neighbors import IVFIndex, calibrate_index, search_with
    >>> X = np.random.default_rng(0).normal(size=(500, 8))
    >>> index = IVFIndex(n_lists=10, random_state=0).fit(X)
    >>> cal = calibrate_index(index, 5, 0.9, Q=X[:100])
    >>> scores, ids, q_sqnorm = search_with(index, cal, X[:3], 5)
    >>> ids.shape, ids[:, 0]
    ((3, 5), array([0, 1, 2]))
    """
    if cal.exact:
        return index.exact_query(Q, k)
    return index.query(Q, k, knob=cal.value)


def reference_scores(index, cal, *, Q=None, self_rows=None):
    """The k-th best scores of the calibration queries at the chosen setting: what a
    later batch's sample is compared with."""
    if cal.exact:
        return None
    if self_rows is None:
        s = search_with(index, cal, Q, cal.k)[0]
    else:
        s = index.neighbors(self_rows, cal.k, knob=cal.value)[0]
    return np.sort(s[:, -1])


__all__ += ["exact_answers", "reference_scores", "search_with", "tie_aware_hits"]
