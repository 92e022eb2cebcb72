"""Similarity graphs from embeddings: the transformer, deduplication, and exports.

:func:`neighbors_to_csr`, :func:`check_min_similarity`, :func:`training_share` and
:func:`measure_self_join` are the graph conventions the transformer shares with the
graphs of :mod:`sksemantic.dask`.
"""

from ._dedup import SemanticDeduplicator
from ._interop import to_networkx, to_pandas
from ._transformer import (
    SemanticGraphTransformer,
    check_min_similarity,
    measure_self_join,
    neighbors_to_csr,
    training_share,
)

__all__ = [
    "SemanticDeduplicator",
    "SemanticGraphTransformer",
    "check_min_similarity",
    "measure_self_join",
    "neighbors_to_csr",
    "to_networkx",
    "to_pandas",
    "training_share",
]
