"""Shared fixtures: small generated embeddings with real neighbour structure."""

import importlib.util

import numpy as np
import pytest

#: hnswlib (the ``hnsw`` extra) is optional: its tests are skipped without it.
HAS_HNSWLIB = importlib.util.find_spec("hnswlib") is not None
needs_hnswlib = pytest.mark.skipif(not HAS_HNSWLIB, reason="needs hnswlib (the hnsw extra)")
#: "hnsw" as a parameter of tests that run every backend.
HNSW = pytest.param("hnsw", marks=needs_hnswlib)


def clustered_embeddings(n_samples=600, n_features=32, n_centers=12, spread=0.35, seed=0):
    """Points around random centres: neighbour structure like real embeddings have."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_centers, n_features))
    labels = rng.integers(n_centers, size=n_samples)
    X = centers[labels] + spread * rng.normal(size=(n_samples, n_features))
    return X.astype(np.float32), labels


@pytest.fixture
def clustered():
    return clustered_embeddings()
