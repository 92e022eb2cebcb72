"""Similarity graphs from embeddings: the transformer, deduplication, and exports."""

from ._transformer import SemanticGraphTransformer

__all__ = ["SemanticGraphTransformer"]
