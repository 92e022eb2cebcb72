"""Numerically right answers on offset, huge and degenerate data, on every backend."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from sksemantic.graph import SemanticGraphTransformer
from sksemantic.neighbors import (
    AnnoyIndex,
    BruteIndex,
    HNSWIndex,
    IVFIndex,
    scores_to_distances,
    scores_to_similarities,
)
from sksemantic.search import SemanticSearch
from tests._helpers import HNSW, blobs

K = 10


def _make(backend, metric):
    if backend == "brute":
        return BruteIndex(metric)
    if backend == "ivf":
        return IVFIndex(metric, n_lists=8, n_probe=4, random_state=0)
    if backend == "annoy":
        return AnnoyIndex(metric, n_trees=20, search_k=20000, random_state=0)
    return HNSWIndex(metric, ef_search=100, random_state=0)


def _offset_data(offset, dtype=np.float64):
    X, _ = blobs(n_samples=700, n_features=16)
    X = X.astype(np.float64) + offset
    return X[:600].astype(dtype), X[600:].astype(dtype)


def _recall(found, exact):
    return np.mean([len(set(f) & set(e)) / len(e) for f, e in zip(found, exact, strict=True)])


@pytest.mark.parametrize("backend", ["brute", "ivf", "annoy", HNSW])
@pytest.mark.parametrize("offset", [0.0, 100.0, 1e4])
def test_euclidean_offset_data_recall_and_exact_distances(backend, offset):
    X, Q = _offset_data(offset)
    D = cdist(Q, X)  # float64, exact
    exact_ids = np.argsort(D, axis=1, kind="stable")[:, :K]
    index = _make(backend, "euclidean").fit(X)
    scores, ids, q_sqnorm = index.query(Q, K)
    dist = index.distances(scores, q_sqnorm)
    assert _recall(ids, exact_ids) >= 0.95
    np.testing.assert_allclose(dist, np.take_along_axis(D, ids, axis=1), rtol=1e-3)
    assert np.all(np.diff(dist, axis=1) >= 0)


@pytest.mark.parametrize("backend", ["brute", "ivf", HNSW])
def test_euclidean_offset_float32_input_and_self_join(backend):
    # Float32 input far from the origin: exact distances are those of the float32 values.
    X, _ = _offset_data(1e4, np.float32)
    D = cdist(X.astype(np.float64), X.astype(np.float64))
    np.fill_diagonal(D, -1)  # itself first
    exact_ids = np.argsort(D, axis=1, kind="stable")[:, :K]
    index = _make(backend, "euclidean").fit(X)
    scores, ids, sq = index.self_join(K)
    dist = index.distances(scores, sq)
    assert _recall(ids, exact_ids) >= 0.95
    np.fill_diagonal(D, 0)
    np.testing.assert_allclose(dist, np.take_along_axis(D, ids, axis=1), rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("backend", ["brute", "ivf", "annoy"])
def test_manhattan_offset_data(backend):
    X, Q = _offset_data(1e4)
    D = cdist(Q, X, "cityblock")
    index = _make(backend, "manhattan").fit(X)
    scores, ids, q_sqnorm = index.query(Q, K)
    assert _recall(ids, np.argsort(D, axis=1, kind="stable")[:, :K]) >= 0.95
    np.testing.assert_allclose(
        index.distances(scores, q_sqnorm), np.take_along_axis(D, ids, axis=1), rtol=1e-3
    )


def test_add_keeps_the_fitted_centre():
    X, Q = _offset_data(1e4)
    grown = BruteIndex("euclidean").fit(X[:300])
    center = grown.center_.copy()
    grown.add(X[300:] + 50.0)  # new points elsewhere: the centre must not move
    np.testing.assert_array_equal(grown.center_, center)
    X_all = np.concatenate([X[:300], X[300:] + 50.0])
    D = cdist(Q, X_all)
    scores, ids, q_sqnorm = grown.query(Q, K)
    np.testing.assert_array_equal(ids, np.argsort(D, axis=1, kind="stable")[:, :K])
    np.testing.assert_allclose(
        grown.distances(scores, q_sqnorm), np.take_along_axis(D, ids, axis=1), rtol=1e-3
    )


@pytest.mark.parametrize("metric", ["cosine", "inner_product"])
def test_non_translation_invariant_metrics_are_not_centred(metric):
    X, Q = _offset_data(100.0)
    index = BruteIndex(metric).fit(X)
    assert index.center_ is None
    scores, ids, _ = index.query(Q, K)
    if metric == "inner_product":
        S = Q @ X.T
    else:
        S = (Q / np.linalg.norm(Q, axis=1, keepdims=True)) @ (
            X / np.linalg.norm(X, axis=1, keepdims=True)
        ).T
    np.testing.assert_allclose(scores, np.take_along_axis(S, ids, axis=1), rtol=1e-5)


@pytest.mark.parametrize("n_zero", [200, 400])
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_hnsw_many_zero_rows(n_zero, metric):
    pytest.importorskip("hnswlib")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 16)).astype(np.float32)
    X[rng.choice(2000, n_zero, replace=False)] = 0
    Q = rng.normal(size=(200, 16)).astype(np.float32)
    Q[:50] = 0
    s_exact, _, _ = BruteIndex(metric).fit(X).query(Q, K)
    index = HNSWIndex(metric, random_state=0).fit(X)
    s, ids, _ = index.query(Q, K)
    assert (ids >= 0).all() and all(len(set(r)) == K for r in ids)
    # Zero rows tie: compare the scores found with the exact k best scores.
    assert np.mean(np.isclose(s, s_exact, rtol=1e-5, atol=1e-6)) >= 0.97
    # Zero queries find zero rows (distance 0) in euclidean.
    if metric == "euclidean":
        np.testing.assert_array_equal(s[:50], 0)


def test_hnsw_added_duplicates_join_their_group():
    pytest.importorskip("hnswlib")
    rng = np.random.default_rng(1)
    X = rng.normal(size=(500, 8)).astype(np.float32)
    index = HNSWIndex("euclidean", random_state=0).fit(X)
    index.add(np.zeros((300, 8), dtype=np.float32))
    index.add(np.repeat(X[:1], 50, axis=0))
    assert index.n_samples_ == 850 and index._hnsw.get_current_count() == 501
    _, ids, _ = index.query(np.zeros((1, 8)), 5)
    np.testing.assert_array_equal(ids[0], np.arange(500, 505))
    _, ids, _ = index.query(X[:1], 5)
    assert set(ids[0]) <= {0, *range(800, 850)}


@pytest.mark.parametrize("backend", ["brute", "ivf", "annoy", HNSW])
@pytest.mark.parametrize("scale", [1e20, 1e-20])
def test_cosine_does_not_depend_on_scale(backend, scale):
    X, Q = _offset_data(0.0, np.float32)
    ref = _make(backend, "cosine").fit(X)
    s_ref, i_ref, _ = ref.query(Q, K)
    index = _make(backend, "cosine").fit(X * np.float32(scale))
    s, i, q_sqnorm = index.query(Q * np.float32(scale), K)
    np.testing.assert_array_equal(i, i_ref)
    np.testing.assert_allclose(s, s_ref, rtol=1e-5, atol=1e-6)
    assert np.isfinite(index.distances(s, q_sqnorm)).all()


def test_cosine_accepts_float64_beyond_float32_range():
    X, Q = _offset_data(0.0)
    _, i_ref, _ = BruteIndex("cosine").fit(X).query(Q, K)
    s, i, _ = BruteIndex("cosine").fit(X * 1e200).query(Q * 1e200, K)
    np.testing.assert_array_equal(i, i_ref)
    assert np.isfinite(s).all()


@pytest.mark.parametrize("metric", ["euclidean", "inner_product", "manhattan", "cosine"])
def test_values_beyond_float32_raise(metric):
    X, _ = _offset_data(0.0)
    X[3, 2] = 3.4e39
    if metric == "cosine":  # scale-free: rescaled row by row, no error
        BruteIndex(metric).fit(X)
        return
    with pytest.raises(ValueError, match=r"X has values up to 3\.4e\+39, beyond float32's range"):
        BruteIndex(metric).fit(X)


@pytest.mark.parametrize("metric", ["euclidean", "inner_product"])
def test_squares_overflowing_float32_raise(metric):
    X, Q = _offset_data(0.0, np.float32)
    with pytest.raises(ValueError, match="X has values up to .*overflows float32.*rescale X"):
        BruteIndex(metric).fit(X * np.float32(1e20))
    # Queries are checked too, under their own name.
    index = BruteIndex(metric).fit(X)
    with pytest.raises(ValueError, match="overflows float32"):
        index.query(Q * np.float32(1e20), K)


def test_large_but_safe_values_are_accepted():
    # Norms up to ~9e18 keep every square finite: no error, and exact distances.
    X, Q = _offset_data(0.0)
    X, Q = X * 1e17, Q * 1e17
    index = BruteIndex("euclidean").fit(X)
    scores, ids, q_sqnorm = index.query(Q, K)
    D = cdist(Q, X)
    np.testing.assert_allclose(
        index.distances(scores, q_sqnorm), np.take_along_axis(D, ids, axis=1), rtol=1e-3
    )
    # Manhattan sums absolute values: far larger values fit.
    index = BruteIndex("manhattan").fit(X * 100)
    scores, ids, q_sqnorm = index.query(Q * 100, K)
    D = cdist(Q * 100, X * 100, "cityblock")
    np.testing.assert_allclose(
        index.distances(scores, q_sqnorm), np.take_along_axis(D, ids, axis=1), rtol=1e-3
    )


def test_estimators_name_the_input_in_range_errors():
    X, _ = _offset_data(0.0, np.float32)
    with pytest.raises(ValueError, match=r"X has values up to \d\.\de\+20"):
        SemanticSearch(metric="euclidean", algorithm="brute").fit(X * np.float32(1e20))
    with pytest.raises(ValueError, match=r"X has values up to \d\.\de\+20"):
        SemanticGraphTransformer(n_neighbors=5, metric="euclidean").fit(X * np.float32(1e20))


def test_cosine_similarities_and_distances_are_clipped():
    scores = np.array([[1.0000001, 0.5, -1.0000001, -np.inf]], dtype=np.float32)
    sims = scores_to_similarities(scores, "cosine")
    np.testing.assert_array_equal(sims, [[1.0, 0.5, -1.0, -np.inf]])
    dist = scores_to_distances(scores, "cosine")
    np.testing.assert_array_equal(dist[:, :3], [[0.0, 0.5, 2.0]])
    # Through an estimator: self-similarities of unnormalised rows stay within [-1, 1].
    X, _ = _offset_data(0.0, np.float32)
    X = X * np.float32(3.3)
    search = SemanticSearch(metric="cosine", algorithm="brute").fit(X)
    _, ids = search.kneighbors(X, 1)
    scores, _, _ = search.index_.query(X, 3)
    sims = search.index_.similarities(scores)
    assert sims.max() <= 1.0 and sims.min() >= -1.0
