"""Quality measures for neighbour graphs, codes and searches, and scorers built on them.

Metric functions take plain arrays (embeddings, integer codes of shape
``(n_samples, n_levels)``, reconstructions, sparse graphs). Scorers are callables
``scorer(estimator, X, y=None) -> float`` (higher is better) for ``GridSearchCV``,
``RandomizedSearchCV`` and ``cross_validate``; get them by name with :func:`get_semantic_scorer`.
"""

from ._codes import (
    codebook_usage,
    collision_rate,
    collision_rate_per_level,
    find_similar,
    hierarchical_distance,
    prefix_ids,
    quantization_mse,
    reconstruction_cosine,
    shared_code_fraction,
    shared_code_fraction_per_level,
)
from ._graph import graph_recall
from ._ranking import retrieval_ndcg_at_k, retrieval_recall_at_k
from ._report import encoder_report
from ._retrieval import distance_correlation, ndcg_at_k, recall_at_k
from ._scorers import (
    EncoderScorer,
    GraphRecallScorer,
    get_scorer,
    get_scorer_names,
    get_semantic_scorer,
    get_semantic_scorer_names,
    make_encoder_scorer,
    make_graph_scorer,
)

__all__ = [
    "EncoderScorer",
    "GraphRecallScorer",
    "codebook_usage",
    "collision_rate",
    "collision_rate_per_level",
    "distance_correlation",
    "encoder_report",
    "find_similar",
    "get_scorer",
    "get_scorer_names",
    "get_semantic_scorer",
    "get_semantic_scorer_names",
    "graph_recall",
    "hierarchical_distance",
    "make_encoder_scorer",
    "make_graph_scorer",
    "ndcg_at_k",
    "prefix_ids",
    "quantization_mse",
    "reconstruction_cosine",
    "recall_at_k",
    "retrieval_ndcg_at_k",
    "retrieval_recall_at_k",
    "shared_code_fraction",
    "shared_code_fraction_per_level",
]
