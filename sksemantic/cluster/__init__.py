"""Clustering kernels shared across sksemantic (k-means for IVF lists and quantisers)."""

from ._balanced import balanced_assign, balanced_kmeans, sinkhorn_potentials
from ._kmeans import centroid_sums, init_centers, kmeans, nearest_centroid

__all__ = [
    "balanced_assign",
    "balanced_kmeans",
    "centroid_sums",
    "init_centers",
    "kmeans",
    "nearest_centroid",
    "sinkhorn_potentials",
]
