"""Quality measures for neighbour graphs, codes and searches, and scorers built on them."""

from ._graph import graph_recall
from ._ranking import retrieval_ndcg_at_k, retrieval_recall_at_k

__all__ = ["graph_recall", "retrieval_ndcg_at_k", "retrieval_recall_at_k"]
