"""Semantic search: top-k search over embeddings, and texts to embeddings."""

from ._embedder import TextEmbedder
from ._search import SemanticSearch

__all__ = ["SemanticSearch", "TextEmbedder"]
