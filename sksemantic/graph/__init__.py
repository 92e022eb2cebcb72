"""Similarity graphs from embeddings: the transformer, deduplication, and exports."""

from ._dedup import SemanticDeduplicator
from ._interop import to_networkx, to_pandas
from ._transformer import SemanticGraphTransformer

__all__ = ["SemanticDeduplicator", "SemanticGraphTransformer", "to_networkx", "to_pandas"]
