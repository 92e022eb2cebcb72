"""Clustering kernels shared across sksemantic (k-means for IVF lists and quantisers).

The public functions validate their arguments as scikit-learn's do; the kernels the
estimators call inside (assignment, sums, Sinkhorn potentials) live in the private
modules.
"""

from ._balanced import balanced_kmeans
from ._kmeans import auto_pca_components, kmeans, nearest_centroid, principal_directions
from ._lloyd import BalancedKMeansResult, KMeansResult

__all__ = [
    "BalancedKMeansResult",
    "KMeansResult",
    "auto_pca_components",
    "balanced_kmeans",
    "kmeans",
    "nearest_centroid",
    "principal_directions",
]
