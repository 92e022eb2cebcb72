"""Every code metric of a fitted encoder on some data, in one call."""

from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from ..utils import import_optional
from ._codes import (
    _group_sizes,
    _prefix_ids,
    codebook_usage,
    quantization_mse,
    reconstruction_cosine,
)
from ._retrieval import distance_correlation, ndcg_at_k, recall_at_k
from ._scorers import _encode_for_scoring, _missing_inverse, _split_pipeline

__all__ = ["encoder_report"]


@validate_params(
    {
        "encoder": [object],
        "X": ["array-like"],
        "k": [Interval(Integral, 1, None, closed="left")],
        "space": [StrOptions({"input", "encoder"})],
        "metric": [StrOptions({"cosine", "euclidean", "manhattan", "inner_product"})],
        "n_queries": [Interval(Integral, 1, None, closed="left"), None],
        "n_pairs": [Interval(Integral, 2, None, closed="left")],
        "random_state": ["random_state"],
        "as_frame": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def encoder_report(
    encoder,
    X,
    *,
    k=10,
    space="input",
    metric="euclidean",
    n_queries=1000,
    n_pairs=2000,
    random_state=0,
    as_frame=False,
):
    """All code metrics of a fitted encoder on ``X``, as a dict.

    ``X`` is encoded with ``encoder.transform`` (and reconstructed with
    ``inverse_transform`` when the encoder has it); the metrics are those of
    :mod:`sksemantic.metrics`, computed on the same codes.

    Parameters
    ----------
    encoder : fitted encoder or Pipeline ending in one
        ``transform(X)`` returns integer codes of shape ``(n_samples, n_levels)``.
        Codebook sizes are read from the final step's ``n_clusters_`` when it has one.
    X : array-like of shape (n_samples, n_features)
        Data as the encoder takes it.
    k : int, default=10
        The ``k`` of recall@k.
    space : {"input", "encoder"}, default="input"
        Where neighbours and reconstruction errors are measured for a Pipeline: in the
        raw ``X`` (``"input"``) or in what the final encoder receives (``"encoder"``);
        see :func:`~sksemantic.metrics.make_encoder_scorer`.
    metric : {"euclidean", "cosine", "manhattan", "inner_product"}, default="euclidean"
        Metric of the exact neighbours and of the embedding distances.
    n_queries : int or None, default=1000
        Items sampled as recall queries.
    n_pairs : int, default=2000
        Pairs sampled for the distance correlation.
    random_state : int, RandomState instance or None, default=0
        Seed of both samples.
    as_frame : bool, default=False
        Return ``"per_level"`` as a pandas DataFrame (needs pandas).

    Returns
    -------
    report : dict
        - ``n_samples``, ``n_levels``, ``n_unique_codes``;
        - ``collision_rate``, ``shared_code_fraction``: over whole codes (see
          :func:`~sksemantic.metrics.collision_rate`);
        - ``largest_code_group``: fraction of items in the most shared code;
        - ``recall_at_<k>``: :func:`~sksemantic.metrics.recall_at_k` by common prefix;
        - ``ndcg_at_<k>``: :func:`~sksemantic.metrics.ndcg_at_k` of the same ranking;
        - ``reconstruction_recall_at_<k>``: the same, ordered within prefixes by
          reconstruction distance (with ``inverse_transform``);
        - ``distance_correlation``: see :func:`~sksemantic.metrics.distance_correlation`;
        - ``quantization_mse``, ``reconstruction_cosine`` (with ``inverse_transform``);
        - ``per_level``: dict of arrays of shape ``(n_levels,)`` (a DataFrame indexed by
          ``level`` 1..n_levels with ``as_frame=True``): ``collision_rate`` and
          ``shared_code_fraction`` of the prefix of that depth, and the codebook usage
          of that level (see :func:`~sksemantic.metrics.codebook_usage`).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.cluster import KMeans
    >>> from sksemantic.metrics import encoder_report
    >>> class OneLevel(KMeans):  # a one-level encoder: codes are cluster labels
    ...     def transform(self, X):
    ...         return self.predict(X)[:, None]
    ...     def inverse_transform(self, codes):
    ...         return self.cluster_centers_[codes[:, 0]]
    >>> X = np.random.default_rng(0).normal(size=(100, 4))
    >>> enc = OneLevel(n_clusters=10, n_init=1, random_state=0).fit(X)
    >>> report = encoder_report(enc, X, k=5)
    >>> report["n_unique_codes"], report["collision_rate"]
    (10, 0.9)
    >>> report["per_level"]["used_fraction"].tolist()
    [1.0]
    """
    _, final = _split_pipeline(encoder)
    reconstruct = _missing_inverse(encoder if space == "input" else final) is None
    X_ref, codes, rec = _encode_for_scoring(
        encoder, X, space=space, reconstruct=reconstruct, name="encoder_report"
    )
    n, n_levels = codes.shape
    ids = _prefix_ids(codes)
    sizes = _group_sizes(ids[:, -1])
    report = {
        "n_samples": n,
        "n_levels": n_levels,
        "n_unique_codes": int(ids[:, -1].max() + 1),
        "collision_rate": float(1.0 - (ids[:, -1].max() + 1) / n),
        "shared_code_fraction": float(np.mean(sizes > 1)),
        "largest_code_group": float(sizes.max() / n),
    }
    common = dict(k=k, metric=metric, n_queries=n_queries, random_state=random_state)
    report[f"recall_at_{k}"] = recall_at_k(X_ref, codes, **common)
    report[f"ndcg_at_{k}"] = ndcg_at_k(X_ref, codes, **common)
    if rec is not None:
        report[f"reconstruction_recall_at_{k}"] = recall_at_k(
            X_ref, codes, reconstruction=rec, **common
        )
    report["distance_correlation"] = distance_correlation(
        X_ref, codes, metric=metric, n_pairs=n_pairs, random_state=random_state
    )
    if rec is not None:
        report["quantization_mse"] = quantization_mse(X_ref, rec)
        report["reconstruction_cosine"] = reconstruction_cosine(X_ref, rec)
    n_clusters = getattr(final, "n_clusters_", None)
    if n_clusters is not None:
        n_clusters = np.asarray(n_clusters, dtype=np.int64).reshape(-1)
        if n_clusters.size == 1:
            n_clusters = int(n_clusters[0])
    per_level = {
        "collision_rate": 1.0 - (ids.max(axis=0) + 1) / n,
        "shared_code_fraction": np.array(
            [np.mean(_group_sizes(ids[:, d]) > 1) for d in range(n_levels)]
        ),
    }
    per_level.update(codebook_usage(codes, n_clusters=n_clusters))
    if as_frame:
        pd = import_optional("pandas", purpose="encoder_report(as_frame=True)")
        per_level = pd.DataFrame(
            per_level, index=pd.RangeIndex(1, n_levels + 1, name="level")
        )
    report["per_level"] = per_level
    return report
