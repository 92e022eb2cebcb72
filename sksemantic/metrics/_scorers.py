"""Scorers for model selection: ``scorer(estimator, X, y=None) -> float``, higher is better.

scikit-learn's ``make_scorer`` calls ``predict`` (or ``predict_proba`` /
``decision_function``); encoders and graph transformers only ``transform``, so the scorers
here are plain callables. They work wherever scikit-learn takes a scorer: ``scoring=`` of
``GridSearchCV``, ``RandomizedSearchCV``, ``cross_validate`` (alone or in a dict, with
``refit=`` naming one), and they are picklable for ``n_jobs > 1``.

A search calls a scorer with the estimator fitted on the training fold and the
held-out fold ``X``. Encoder scorers encode the held-out rows with the fitted encoder
and compare code-space neighbours with exact neighbours among those same held-out
rows; the graph scorer searches the fitted index with the held-out rows and compares
with exact neighbours among the indexed (training) rows.
"""

import re
import warnings

import numpy as np
from sklearn.metrics import get_scorer as _sklearn_get_scorer
from sklearn.metrics import get_scorer_names as _sklearn_scorer_names
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_array

from ._codes import (
    _check_codes,
    collision_rate,
    quantization_mse,
    reconstruction_cosine,
    shared_code_fraction,
)
from ._graph import graph_recall
from ._retrieval import distance_correlation, ndcg_at_k, recall_at_k

__all__ = [
    "EncoderScorer",
    "GraphRecallScorer",
    "get_scorer",
    "get_scorer_names",
    "get_semantic_scorer",
    "get_semantic_scorer_names",
    "make_encoder_scorer",
    "make_graph_scorer",
]

# metric -> (needs the reconstruction, sign, keyword arguments it takes)
_RANKING_KWARGS = {"k", "rank_by", "metric", "n_queries", "random_state"}
_ENCODER_METRICS = {
    "recall_at_k": (False, 1, _RANKING_KWARGS),
    "ndcg_at_k": (False, 1, _RANKING_KWARGS),
    "collision_rate": (False, -1, {"depth"}),
    "shared_code_fraction": (False, -1, {"depth"}),
    "quantization_mse": (True, -1, set()),
    "reconstruction_cosine": (True, 1, set()),
    "distance_correlation": (False, 1, {"metric", "code_metric", "n_pairs", "random_state"}),
}
_RANK_BY = ("prefix", "prefix_then_reconstruction", "reconstruction")
_SPACES = ("input", "encoder")


def _split_pipeline(estimator):
    """``(preceding steps or None, final step)`` of a Pipeline; ``(None, est)`` otherwise."""
    if isinstance(estimator, Pipeline) and len(estimator.steps) > 1:
        return estimator[:-1], estimator[-1]
    if isinstance(estimator, Pipeline):
        return None, estimator[-1]
    return None, estimator


def _missing_inverse(estimator):
    """Name of the (step of the) estimator that has no inverse_transform, or None."""
    steps = estimator.steps if isinstance(estimator, Pipeline) else [("", estimator)]
    for name, step in steps:
        if step in (None, "passthrough"):
            continue
        if not hasattr(step, "inverse_transform"):
            cls = type(step).__name__
            return f"Pipeline step {name!r} ({cls})" if name else cls
    return None


def _encode_for_scoring(estimator, X, *, space="input", reconstruct=False, name="scorer"):
    """Data, codes and (optionally) reconstruction of ``X`` as a scorer sees them.

    Parameters
    ----------
    estimator : fitted encoder or Pipeline ending in one
        Anything whose ``transform`` returns integer codes of shape
        ``(n_samples, n_levels)`` and, for reconstructions, has ``inverse_transform``.
    X : array-like of shape (n_samples, n_features)
        Data as the estimator takes it.
    space : {"input", "encoder"}, default="input"
        ``"input"``: the reference is ``X`` itself, codes are ``estimator.transform(X)``
        and the reconstruction ``estimator.inverse_transform(codes)`` (through every
        pipeline step, back to the input space). ``"encoder"``: the reference is ``X``
        after the pipeline's preceding steps (what the final encoder receives), and the
        reconstruction is the final encoder's. The two agree for a bare encoder.
    reconstruct : bool, default=False
        Whether the reconstruction is needed.
    name : str, default="scorer"
        Used in error messages.

    Returns
    -------
    X_ref : ndarray of shape (n_samples, n_ref_features)
    codes : ndarray of shape (n_samples, n_levels), int64
    reconstruction : ndarray of shape (n_samples, n_ref_features) or None
    """
    if space not in _SPACES:
        raise ValueError(f"space must be one of {_SPACES}; got {space!r}.")
    head, final = _split_pipeline(estimator)
    if space == "encoder" and head is not None:
        X_ref = head.transform(X)
        model = final
    else:
        X_ref = X
        model = estimator
    if not hasattr(model, "transform"):
        raise TypeError(f"{name} needs an estimator with transform; {type(model).__name__} has none.")
    if reconstruct:
        missing = _missing_inverse(model)
        if missing is not None:
            raise TypeError(
                f"{name} needs inverse_transform to reconstruct X from codes, but {missing} "
                "has no inverse_transform."
                + (
                    " Use space='encoder' to reconstruct in the final encoder's input space."
                    if head is not None and space == "input"
                    else ""
                )
            )
    codes = model.transform(X_ref)
    try:
        codes = _check_codes(codes, name=f"{type(model).__name__}.transform(X)")
    except TypeError as exc:
        raise TypeError(f"{name} expects integer codes from transform: {exc}") from exc
    X_ref = check_array(X_ref, dtype=[np.float64, np.float32], input_name="X")
    reconstruction = model.inverse_transform(codes) if reconstruct else None
    return X_ref, codes, reconstruction


class EncoderScorer:
    """A scorer ``scorer(estimator, X, y=None) -> float`` for encoders producing codes.

    Build it with :func:`make_encoder_scorer` or :func:`get_semantic_scorer`, which document the
    metrics and the choice of space.

    Parameters
    ----------
    metric : str
        ``"recall_at_k"``, ``"ndcg_at_k"``, ``"collision_rate"``, ``"shared_code_fraction"``,
        ``"quantization_mse"``, ``"reconstruction_cosine"`` or
        ``"distance_correlation"``.
    space : {"input", "encoder"}, default="input"
        Where neighbours and errors are measured for a Pipeline.
    **kwargs
        Passed to the metric function (and ``rank_by`` for ``"recall_at_k"``).

    Attributes
    ----------
    sign : int
        +1, or -1 for losses, which are returned negated.
    """

    def __init__(self, metric, *, space="input", **kwargs):
        if metric not in _ENCODER_METRICS:
            raise ValueError(
                f"Unknown encoder metric {metric!r}; choose one of {sorted(_ENCODER_METRICS)}."
            )
        if space not in _SPACES:
            raise ValueError(f"space must be one of {_SPACES}; got {space!r}.")
        allowed = _ENCODER_METRICS[metric][2]
        unknown = set(kwargs) - allowed
        if unknown:
            raise TypeError(
                f"{metric} takes no argument(s) {sorted(unknown)}; it takes {sorted(allowed)}."
            )
        rank_by = kwargs.get("rank_by", "prefix")
        if rank_by not in _RANK_BY:
            raise ValueError(f"rank_by must be one of {_RANK_BY}; got {rank_by!r}.")
        self.metric = metric
        self.space = space
        self.kwargs = kwargs

    @property
    def sign(self):
        """+1 when the metric is higher-is-better, -1 for a loss (returned negated)."""
        return _ENCODER_METRICS[self.metric][1]

    def __call__(self, estimator, X, y=None):
        """Score the fitted ``estimator`` on ``X`` (``y`` is ignored)."""
        kwargs = dict(self.kwargs)
        rank_by = kwargs.pop("rank_by", "prefix")
        needs_rec = _ENCODER_METRICS[self.metric][0] or (
            self.metric in ("recall_at_k", "ndcg_at_k") and rank_by != "prefix"
        )
        X_ref, codes, rec = _encode_for_scoring(
            estimator, X, space=self.space, reconstruct=needs_rec, name=self._name()
        )
        if self.metric in ("recall_at_k", "ndcg_at_k"):
            k = kwargs.get("k", 10)
            if isinstance(k, int) and k > len(X_ref) - 1:
                raise ValueError(
                    f"{self._name()} has k={k}, but the scored X (a held-out fold, in a "
                    f"search) has {len(X_ref)} rows, so at most {len(X_ref) - 1} "
                    "neighbours: lower k or use fewer, larger folds."
                )
            func = recall_at_k if self.metric == "recall_at_k" else ndcg_at_k
            value = func(
                X_ref,
                None if rank_by == "reconstruction" else codes,
                reconstruction=rec,
                **kwargs,
            )
        elif self.metric in ("collision_rate", "shared_code_fraction"):
            func = collision_rate if self.metric == "collision_rate" else shared_code_fraction
            value = func(codes, **kwargs)
        elif self.metric == "quantization_mse":
            value = quantization_mse(X_ref, rec)
        elif self.metric == "reconstruction_cosine":
            value = reconstruction_cosine(X_ref, rec)
        else:
            value = distance_correlation(X_ref, codes, **kwargs)
        return self.sign * float(value)

    def _name(self):
        return f"The {'neg_' if self.sign < 0 else ''}{self.metric} scorer"

    def __repr__(self):
        args = [repr(self.metric)]
        if self.space != "input":
            args.append(f"space={self.space!r}")
        args += [f"{k}={v!r}" for k, v in sorted(self.kwargs.items())]
        prefix = "neg_" if self.sign < 0 else ""
        return f"make_encoder_scorer({', '.join(args)})  # {prefix}{self.metric}"


def make_encoder_scorer(metric, *, space="input", **kwargs):
    """Make a scorer for encoders from one of the code metrics.

    The scorer is a callable ``scorer(estimator, X, y=None) -> float``, higher is
    better: losses (``collision_rate``, ``shared_code_fraction``, ``quantization_mse``)
    are returned negated, as scikit-learn's ``neg_*`` scorers are.

    It calls ``estimator.transform(X)`` for the codes (and ``inverse_transform`` for
    reconstructions), so ``estimator`` is any fitted encoder with the residual encoder
    interface (``transform -> int codes (n_samples, n_levels)``,
    ``inverse_transform(codes) -> float``), or a :class:`~sklearn.pipeline.Pipeline`
    ending in one.

    **Which space neighbours and errors are measured in.** With ``space="input"``
    (default), the reference is the ``X`` given to the scorer, i.e. the raw input of
    the pipeline: exact neighbours are found in it and reconstructions are mapped back
    to it with the pipeline's ``inverse_transform``. This keeps scores comparable across
    pipelines whose preprocessing differs (e.g. a search over PCA's
    ``n_components``), and counts what preprocessing loses. With ``space="encoder"``
    the reference is ``X`` after the pipeline's preceding steps, the data the final
    encoder sees, and the final encoder's own reconstruction; preprocessing then
    changes the reference itself. For a bare encoder the two are the same.

    Parameters
    ----------
    metric : str
        One of:

        - ``"recall_at_k"``: :func:`~sksemantic.metrics.recall_at_k` of the held-out
          rows against their exact neighbours among themselves. Keywords: ``k``
          (default 10), ``rank_by`` (``"prefix"``, default: codes only, ties at
          random; ``"prefix_then_reconstruction"``: codes, then reconstruction
          distance; ``"reconstruction"``: reconstruction distance only), ``metric``,
          ``n_queries``, ``random_state``.
        - ``"ndcg_at_k"``: :func:`~sksemantic.metrics.ndcg_at_k`, the same keywords.
        - ``"collision_rate"``, ``"shared_code_fraction"`` (negated). Keyword:
          ``depth``.
        - ``"quantization_mse"`` (negated), ``"reconstruction_cosine"``.
        - ``"distance_correlation"``. Keywords: ``metric``, ``code_metric``,
          ``n_pairs``, ``random_state``.
    space : {"input", "encoder"}, default="input"
        See above.
    **kwargs
        Passed to the metric function.

    Returns
    -------
    scorer : EncoderScorer
        Callable ``scorer(estimator, X, y=None) -> float``.

    See Also
    --------
    get_semantic_scorer : The same scorers by name.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.cluster import KMeans
    >>> from sksemantic.metrics import make_encoder_scorer
    >>> class OneLevel(KMeans):  # a one-level encoder: codes are cluster labels
    ...     def transform(self, X):
    ...         return self.predict(X)[:, None]
    ...     def inverse_transform(self, codes):
    ...         return self.cluster_centers_[codes[:, 0]]
    >>> X = np.random.default_rng(0).normal(size=(60, 4))
    >>> enc = OneLevel(n_clusters=8, n_init=1, random_state=0).fit(X)
    >>> scorer = make_encoder_scorer("collision_rate")
    >>> scorer(enc, X)  # 8 distinct codes among 60 items: -(1 - 8/60)
    -0.8666666666666667
    """
    return EncoderScorer(metric, space=space, **kwargs)


class GraphRecallScorer:
    """A scorer ``scorer(estimator, X, y=None) -> float`` for neighbour-graph transformers.

    Build it with :func:`make_graph_scorer` or :func:`get_semantic_scorer`, which document it.

    Parameters
    ----------
    k : int, default=None
        Neighbours compared; the transformer's ``n_neighbors`` when None.
    n_queries : int or None, default=1000
        Held-out rows sampled as queries.
    random_state : int, RandomState instance or None, default=0
        Seed of the query sample.
    """

    def __init__(self, *, k=None, n_queries=1000, random_state=0):
        self.k = k
        self.n_queries = n_queries
        self.random_state = random_state

    def __call__(self, estimator, X, y=None):
        """Score the fitted ``estimator`` on the queries ``X`` (``y`` is ignored)."""
        head, final = _split_pipeline(estimator)
        index = getattr(final, "index_", None)
        if index is None or not hasattr(index, "X_"):
            raise TypeError(
                "graph recall scorers need a fitted SemanticGraphTransformer (or a Pipeline "
                f"ending in one); got {type(final).__name__}."
            )
        Xq = head.transform(X) if head is not None else X
        graph = final.transform(Xq).tocsr(copy=True)
        # Rank within each row by stored position (rows are nearest first in every mode,
        # including "similarity" and "connectivity").
        sizes = np.diff(graph.indptr)
        graph.data = (np.arange(graph.nnz) - np.repeat(graph.indptr[:-1], sizes)).astype(
            np.float64
        )
        k = self.k if self.k is not None else final.n_neighbors
        return graph_recall(
            graph,
            Xq,
            X_fit=index.vectors(),
            n_neighbors=k,
            metric=final.metric,
            n_samples=self.n_queries,
            random_state=self.random_state,
        )

    def __repr__(self):
        return (
            f"make_graph_scorer(k={self.k!r}, n_queries={self.n_queries!r}, "
            f"random_state={self.random_state!r})"
        )


def make_graph_scorer(*, k=None, n_queries=1000, random_state=0):
    """Make a recall@k scorer for :class:`~sksemantic.graph.SemanticGraphTransformer`.

    The scorer is called with the transformer fitted on the training fold (its index
    holds the training rows) and the held-out rows ``X``: it takes each held-out row's
    graph row ``transform(X)[i]``, keeps the first ``k`` stored neighbours (rows are
    sorted nearest first), and compares them with the exact ``k`` nearest indexed rows
    under the transformer's metric::

        score = mean_i |G_i ∩ E_i| / k

    (:func:`~sksemantic.metrics.graph_recall` with ``X_fit`` the indexed rows). Edges
    cut by ``max_distance`` / ``min_similarity`` count as misses. In a Pipeline, the
    held-out rows go through the preceding steps first: recall is measured in the
    space the transformer indexes, where its graph lives.

    Parameters
    ----------
    k : int, default=None
        Neighbours compared; the transformer's ``n_neighbors`` when None.
    n_queries : int or None, default=1000
        Held-out rows sampled as queries (all when None).
    random_state : int, RandomState instance or None, default=0
        Seed of the query sample.

    Returns
    -------
    scorer : GraphRecallScorer
        Callable ``scorer(estimator, X, y=None) -> float``, in ``[0, 1]``.

    Examples
    --------
    >>> import numpy as np
    >>> from sksemantic.graph import SemanticGraphTransformer
    >>> from sksemantic.metrics import make_graph_scorer
    >>> X = np.random.default_rng(0).normal(size=(300, 8))
    >>> est = SemanticGraphTransformer(n_neighbors=5, algorithm="brute").fit(X[:200])
    >>> make_graph_scorer()(est, X[200:])
    1.0
    """
    return GraphRecallScorer(k=k, n_queries=n_queries, random_state=random_state)


_NAMED = {
    "neg_collision_rate": lambda: make_encoder_scorer("collision_rate"),
    "neg_shared_code_fraction": lambda: make_encoder_scorer("shared_code_fraction"),
    "neg_quantization_mse": lambda: make_encoder_scorer("quantization_mse"),
    "reconstruction_cosine": lambda: make_encoder_scorer("reconstruction_cosine"),
    "distance_correlation": lambda: make_encoder_scorer("distance_correlation"),
    "recall_at_10": lambda: make_encoder_scorer("recall_at_k", k=10),
    "reconstruction_recall_at_10": lambda: make_encoder_scorer(
        "recall_at_k", k=10, rank_by="prefix_then_reconstruction"
    ),
    "ndcg_at_10": lambda: make_encoder_scorer("ndcg_at_k", k=10),
    "graph_recall": lambda: make_graph_scorer(),
}
_PATTERNS = [
    (re.compile(r"recall_at_(\d+)"), lambda k: make_encoder_scorer("recall_at_k", k=k)),
    (
        re.compile(r"reconstruction_recall_at_(\d+)"),
        lambda k: make_encoder_scorer("recall_at_k", k=k, rank_by="prefix_then_reconstruction"),
    ),
    (re.compile(r"ndcg_at_(\d+)"), lambda k: make_encoder_scorer("ndcg_at_k", k=k)),
    (re.compile(r"graph_recall_at_(\d+)"), lambda k: make_graph_scorer(k=k)),
]


def get_semantic_scorer_names():
    """Names :func:`get_semantic_scorer` knows besides scikit-learn's own.

    ``recall_at_10``, ``reconstruction_recall_at_10``, ``ndcg_at_10`` and
    ``graph_recall`` stand for families: any ``recall_at_<k>``,
    ``reconstruction_recall_at_<k>``, ``ndcg_at_<k>`` and ``graph_recall_at_<k>`` works.

    Returns
    -------
    names : list of str

    Examples
    --------
    >>> from sksemantic.metrics import get_semantic_scorer_names
    >>> "neg_collision_rate" in get_semantic_scorer_names()
    True
    """
    return sorted(_NAMED)


def get_semantic_scorer(scoring):
    """A scorer from a name, in the manner of :func:`sklearn.metrics.get_scorer`.

    scikit-learn's ``scoring="<name>"`` knows only its own names, so pass the scorer
    this returns (``scoring=get_semantic_scorer("recall_at_10")``, or a dict of them).
    sksemantic's names (see :func:`get_semantic_scorer_names`):

    - ``recall_at_<k>``: recall@k, code-space neighbours by common prefix (ties at
      random);
    - ``reconstruction_recall_at_<k>``: recall@k, by common prefix then
      reconstruction distance;
    - ``ndcg_at_<k>``: NDCG@k of the prefix ranking (graded relevance);
    - ``neg_collision_rate``: ``-(1 - distinct codes / items)``;
    - ``neg_shared_code_fraction``: ``-(fraction of items sharing their code)``;
    - ``neg_quantization_mse``: ``-mean((X - inverse_transform(transform(X)))**2)``;
    - ``reconstruction_cosine``: mean cosine between rows and their reconstruction;
    - ``distance_correlation``: Spearman correlation of embedding and code distances;
    - ``graph_recall``: recall@n_neighbors of a SemanticGraphTransformer's held-out
      queries; ``graph_recall_at_<k>``: the same at ``k``.

    Encoder scorers measure in the input space of the whole pipeline
    (see :func:`make_encoder_scorer` for the other choice). Other strings are passed
    to :func:`sklearn.metrics.get_scorer`; callables and None are returned unchanged.

    Parameters
    ----------
    scoring : str, callable or None
        The scorer's name.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y=None) -> float``, higher is better.

    Examples
    --------
    >>> from sksemantic.metrics import get_semantic_scorer
    >>> get_semantic_scorer("recall_at_5")
    make_encoder_scorer('recall_at_k', k=5)  # recall_at_k

    In a search, as a dict with ``refit`` naming the one that selects::

        GridSearchCV(pipe, grid,
                     scoring={"recall": get_semantic_scorer("recall_at_10"),
                              "collision": get_semantic_scorer("neg_collision_rate")},
                     refit="recall")
    """
    if scoring is None or callable(scoring):
        return scoring
    if not isinstance(scoring, str):
        raise TypeError(f"scoring must be a string, a callable or None; got {scoring!r}.")
    if scoring in _NAMED:
        return _NAMED[scoring]()
    for pattern, factory in _PATTERNS:
        match = pattern.fullmatch(scoring)
        if match:
            k = int(match.group(1))
            if k < 1:
                raise ValueError(f"{scoring!r}: k must be >= 1.")
            return factory(k)
    if scoring in _sklearn_scorer_names():
        return _sklearn_get_scorer(scoring)
    raise ValueError(
        f"{scoring!r} is not a valid scoring value. sksemantic's scorers: "
        f"{get_semantic_scorer_names()} (with any k in recall_at_<k>, reconstruction_recall_at_<k>, "
        "ndcg_at_<k>, graph_recall_at_<k>); any name of sklearn.metrics.get_scorer_names() also works."
    )


def _deprecated(old, new):
    warnings.warn(
        f"sksemantic.metrics.{old} is deprecated and will be removed in 0.3: use "
        f"{new}, which does the same ({old} is also scikit-learn's name, "
        f"sklearn.metrics.{old}).",
        FutureWarning,
        stacklevel=3,
    )


def get_scorer(scoring):
    """Deprecated alias of :func:`get_semantic_scorer`.

    .. deprecated:: 0.1
        Renamed so as not to shadow :func:`sklearn.metrics.get_scorer`; the alias will
        be removed in 0.3.

    Parameters
    ----------
    scoring : str, callable or None
        The scorer's name.

    Returns
    -------
    scorer : callable
    """
    _deprecated("get_scorer", "get_semantic_scorer")
    return get_semantic_scorer(scoring)


def get_scorer_names():
    """Deprecated alias of :func:`get_semantic_scorer_names`.

    .. deprecated:: 0.1
        Renamed so as not to shadow :func:`sklearn.metrics.get_scorer_names`; the alias
        will be removed in 0.3.

    Returns
    -------
    names : list of str
    """
    _deprecated("get_scorer_names", "get_semantic_scorer_names")
    return get_semantic_scorer_names()
