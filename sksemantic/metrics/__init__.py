"""Quality measures for neighbour graphs, codes and searches, and scorers built on them."""

from ._graph import graph_recall

__all__ = ["graph_recall"]
