"""Clustering kernels shared across sksemantic (k-means for IVF lists and quantisers)."""

from ._balanced import balanced_assign, balanced_kmeans, sinkhorn_potentials
from ._kmeans import (
    auto_pca_components,
    centroid_sums,
    init_centers,
    kmeans,
    nearest_centroid,
    principal_directions,
)
from ._lloyd import BalancedKMeansResult, KMeansResult

__all__ = [
    "BalancedKMeansResult",
    "KMeansResult",
    "auto_pca_components",
    "balanced_assign",
    "balanced_kmeans",
    "centroid_sums",
    "init_centers",
    "kmeans",
    "nearest_centroid",
    "principal_directions",
    "sinkhorn_potentials",
]
