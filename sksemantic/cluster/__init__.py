"""Clustering kernels shared across sksemantic (k-means for IVF lists and quantisers)."""

from ._kmeans import centroid_sums, kmeans, nearest_centroid

__all__ = ["centroid_sums", "kmeans", "nearest_centroid"]
