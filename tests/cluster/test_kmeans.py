import numpy as np
import pytest

from sksemantic.cluster import kmeans, nearest_centroid
from tests.conftest import clustered_embeddings


def test_kmeans_recovers_separated_clusters():
    X, labels = clustered_embeddings(n_samples=500, n_features=8, n_centers=5, spread=0.05)
    centers, found, inertia, n_iter = kmeans(X, 5, random_state=0)
    # Every true cluster maps to exactly one found cluster.
    pairs = {(a, b) for a, b in zip(labels, found, strict=True)}
    assert len(pairs) == 5
    assert 1 <= n_iter <= 20
    lab, d = nearest_centroid(X, centers)
    np.testing.assert_array_equal(lab, found)
    assert inertia == pytest.approx(float(d.sum()), rel=1e-4)


def test_kmeans_is_reproducible_and_seed_dependent():
    X, _ = clustered_embeddings(n_samples=400, n_features=8, n_centers=20, spread=1.0)
    a = kmeans(X, 10, random_state=1)[0]
    b = kmeans(X, 10, random_state=1)[0]
    c = kmeans(X, 10, random_state=2)[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_kmeans_reseeds_empty_clusters():
    # Four distinct points, one far away; init puts two centres on the same point.
    X = np.array([[0, 0], [0, 0.1], [10, 10], [10, 10.1], [50, 50]], dtype=np.float32)
    init = np.array([[0, 0], [0, 0], [10, 10]], dtype=np.float32)
    centers, labels, _, _ = kmeans(X, 3, init=init)
    assert len(np.unique(labels)) == 3


def test_kmeans_rejects_too_many_clusters():
    with pytest.raises(ValueError, match="n_clusters=5 must not exceed n_samples=3"):
        kmeans(np.zeros((3, 2), dtype=np.float32), 5)
