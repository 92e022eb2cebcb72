"""Similarity graphs from embeddings: the transformer, deduplication, and exports.

:func:`neighbors_to_csr` and :func:`check_min_similarity` are the graph conventions the
transformer shares with the sharded graphs of :mod:`sksemantic.dask`.
"""

from ._dedup import SemanticDeduplicator
from ._interop import to_networkx, to_pandas
from ._transformer import SemanticGraphTransformer, check_min_similarity, neighbors_to_csr

__all__ = [
    "SemanticDeduplicator",
    "SemanticGraphTransformer",
    "check_min_similarity",
    "neighbors_to_csr",
    "to_networkx",
    "to_pandas",
]
