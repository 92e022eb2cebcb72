"""Code metrics on huge values and many pairs: finite, scale-free answers, bounded memory."""

import tracemalloc

import numpy as np
import pytest
from sklearn.cluster import KMeans

from sksemantic.graph import SemanticGraphTransformer
from sksemantic.metrics import (
    _retrieval,
    distance_correlation,
    encoder_report,
    make_graph_scorer,
    ndcg_at_k,
    quantization_mse,
    recall_at_k,
    reconstruction_cosine,
)
from sksemantic.quantization import RQKMeansEncoder
from tests._helpers import blobs

METRICS = ["euclidean", "cosine", "manhattan", "inner_product"]
#: A power of two near 1e21: scaling by it changes no digit, so every scale-free
#: metric must come out exactly as at scale 1.
BIG = 2.0**70


def _data(n=300, d=8, seed=0):
    """float64 blobs and two-level codes: each row's centre, then a random code."""
    X, labels = blobs(n, d, 4, noise=0.3, seed=seed, dtype=np.float64)
    codes = np.stack([labels, np.random.default_rng(seed).integers(4, size=n)], axis=1)
    return X, codes


class _ScaledKMeans(KMeans):
    """A one-level encoder taking inputs ``scale`` times larger than it was fitted on."""

    def __init__(self, n_clusters=8, *, scale=1.0, n_init=1, random_state=None):
        super().__init__(n_clusters=n_clusters, n_init=n_init, random_state=random_state)
        self.scale = scale

    def transform(self, X):
        return self.predict(np.asarray(X) / self.scale)[:, None]

    def inverse_transform(self, codes):
        return self.cluster_centers_[np.asarray(codes)[:, 0]] * self.scale


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scale_free_metrics_on_huge_values(metric, dtype):
    X, codes = _data()
    X = X.astype(dtype)
    big = (X * BIG).astype(dtype)
    assert distance_correlation(big, codes, metric=metric) == distance_correlation(
        X, codes, metric=metric
    )
    assert recall_at_k(big, codes, k=5, metric=metric) == recall_at_k(X, codes, k=5, metric=metric)
    assert ndcg_at_k(big, codes, k=5, metric=metric) == ndcg_at_k(X, codes, k=5, metric=metric)
    rec = X + 0.1
    assert recall_at_k(big, codes, reconstruction=rec * BIG, k=5, metric=metric) == recall_at_k(
        X, codes, reconstruction=rec, k=5, metric=metric
    )


def test_float64_beyond_float32_range():
    # 1e200 does not fit float32 (the exact search runs in float32) nor its squares
    # float64: the answers are still those of the same data at scale 1.
    X, codes = _data()
    for metric in METRICS:
        assert distance_correlation(X * 2.0**660, codes, metric=metric) == distance_correlation(
            X, codes, metric=metric
        )
        assert recall_at_k(X * 2.0**660, codes, k=5, metric=metric) == recall_at_k(
            X, codes, k=5, metric=metric
        )


def test_reconstruction_metrics_on_huge_values():
    X, _ = _data()
    R = X + 0.1 * np.random.default_rng(1).normal(size=X.shape)
    assert reconstruction_cosine(X * 1e200, R * 1e200) == pytest.approx(
        reconstruction_cosine(X, R), rel=1e-12
    )
    assert quantization_mse(X * BIG, R * BIG) == quantization_mse(X, R) * BIG**2
    with pytest.raises(ValueError, match="X and reconstruction differ by up to .*float64's range"):
        quantization_mse(X * 1e200, R * 1e200)


def test_encoder_report_on_huge_values():
    X, _ = _data()
    enc = _ScaledKMeans(8, random_state=0).fit(X)
    big = _ScaledKMeans(8, scale=BIG, random_state=0).fit(X)
    small_report = encoder_report(enc, X, k=5)
    big_report = encoder_report(big, X * BIG, k=5)
    for key, value in small_report.items():
        if key == "per_level":
            continue
        if key == "quantization_mse":
            assert big_report[key] == value * BIG**2
        else:
            assert np.isfinite(big_report[key]) and big_report[key] == value, key


def test_rqkmeans_clear_errors_on_overflowing_values():
    X, _ = _data()
    X32 = X.astype(np.float32)
    with pytest.raises(ValueError, match="X has values up to .*k-means squares them.*float32"):
        RQKMeansEncoder(n_clusters=4, n_levels=2, random_state=0).fit(X32 * np.float32(1e20))
    enc = RQKMeansEncoder(n_clusters=4, n_levels=2, random_state=0).fit(X32)
    with pytest.raises(ValueError, match="X has values up to .*encoding squares them"):
        enc.score(X32 * np.float32(1e20))
    with pytest.raises(ValueError, match="beyond float32's range"):
        enc.score(X * 1e39)
    # float64 data computes in float64: 1e20 is fine there, and scores as at scale 1.
    enc64 = RQKMeansEncoder(n_clusters=4, n_levels=2, random_state=0).fit(X)
    big = RQKMeansEncoder(n_clusters=4, n_levels=2, random_state=0).fit(X * 2.0**64)
    assert big.score(X * 2.0**64) == pytest.approx(enc64.score(X) * 2.0**128, rel=1e-6)


@pytest.mark.parametrize("code_metric", ["hierarchical", "hamming"])
@pytest.mark.parametrize("metric", METRICS)
def test_distance_correlation_blocks_equal_one_pass(monkeypatch, metric, code_metric):
    X, codes = _data()
    whole = distance_correlation(X, codes, metric=metric, code_metric=code_metric, n_pairs=5000)
    monkeypatch.setattr(_retrieval, "_PAIR_BLOCK_ENTRIES", 3 * X.shape[1] + 1)
    blocked = distance_correlation(X, codes, metric=metric, code_metric=code_metric, n_pairs=5000)
    assert blocked == whole


def test_distance_correlation_memory_is_bounded():
    # 300,000 pairs of 64 features: gathering both sides at once would take 300 MB.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 64))
    codes = rng.integers(4, size=(2000, 3))
    tracemalloc.start()
    try:
        distance_correlation(X, codes, n_pairs=300_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100 * 2**20


@pytest.mark.parametrize("metric", ["euclidean", "manhattan"])
@pytest.mark.parametrize("algorithm", ["brute", "ivf"])
def test_graph_scorer_on_centred_indexes(metric, algorithm):
    # Exact search (all lists probed) on data far from the origin, which the index
    # centres: the scorer must compare against exact neighbours in the caller's frame.
    X, _ = _data(n=400)
    X = X + 1e4
    est = SemanticGraphTransformer(
        n_neighbors=5, metric=metric, algorithm=algorithm, n_lists=4, n_probe=4, random_state=0
    ).fit(X[:300])
    assert make_graph_scorer()(est, X[300:]) == 1.0
