"""Quality measures for neighbour graphs, codes and searches, and scorers built on them."""

from ._graph import graph_recall
from ._retrieval import ndcg_at_k, retrieval_recall_at_k

__all__ = ["graph_recall", "ndcg_at_k", "retrieval_recall_at_k"]
