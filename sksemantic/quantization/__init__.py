"""Residual quantisation: embeddings to integer codes (semantic IDs) and back.

:class:`RQKMeansEncoder` learns its codebooks by k-means on residuals;
:class:`BaseResidualEncoder` is the shared front (``transform`` -> codes,
``inverse_transform``, ``score``, feature names, ID strings) that every residual encoder
subclasses.
"""

from ._base import BaseResidualEncoder
from ._rqkmeans import RQKMeansEncoder

__all__ = ["BaseResidualEncoder", "RQKMeansEncoder"]
