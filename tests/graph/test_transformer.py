import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.cluster import DBSCAN, SpectralClustering
from sklearn.datasets import make_swiss_roll
from sklearn.manifold import TSNE, Isomap
from sklearn.metrics import adjusted_rand_score, pairwise_distances
from sklearn.neighbors import KNeighborsTransformer
from sklearn.pipeline import make_pipeline

from sksemantic.graph import SemanticGraphTransformer
from sksemantic.metrics import graph_recall
from tests._helpers import HAS_HNSWLIB, HNSW, blobs, needs_hnswlib


def _row_sets(G):
    G = sp.csr_matrix(G)
    return [set(G.indices[G.indptr[i] : G.indptr[i + 1]]) for i in range(G.shape[0])]


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "manhattan"])
@pytest.mark.parametrize("mode", ["distance", "connectivity"])
def test_matches_kneighbors_transformer(metric, mode):
    X, _ = blobs(n_samples=300, n_features=16)
    ours = SemanticGraphTransformer(n_neighbors=7, metric=metric, mode=mode, algorithm="brute")
    G = ours.fit_transform(X)
    R = KNeighborsTransformer(n_neighbors=7, metric=metric, mode=mode).fit_transform(X)
    assert G.shape == R.shape == (300, 300)
    assert isinstance(G, sp.csr_matrix)
    np.testing.assert_array_equal(np.diff(G.indptr), np.diff(R.indptr))
    assert _row_sets(G) == _row_sets(R)
    if mode == "distance":
        # Same values per (row, column), up to float32 round-off.
        np.testing.assert_allclose(G.toarray(), R.toarray(), atol=2e-5 * max(1, abs(R.data).max()))


def test_distance_graph_conventions():
    X, _ = blobs(n_samples=200, n_features=16)
    G = SemanticGraphTransformer(n_neighbors=5).fit_transform(X)
    for i in range(G.shape[0]):
        cols = G.indices[G.indptr[i] : G.indptr[i + 1]]
        vals = G.data[G.indptr[i] : G.indptr[i + 1]]
        assert len(cols) == 6  # itself plus n_neighbors
        assert cols[0] == i and vals[0] == 0.0  # explicit diagonal
        assert (np.diff(vals) >= 0).all()  # sorted by distance
        assert (vals >= 0).all()


@pytest.mark.parametrize("algorithm", ["brute", "annoy", HNSW])
def test_fit_transform_equals_fit_then_transform(algorithm):
    X, _ = blobs(n_samples=300, n_features=16)
    est = SemanticGraphTransformer(n_neighbors=6, algorithm=algorithm, random_state=0)
    A = est.fit_transform(X)
    B = est.fit(X).transform(X)
    assert _row_sets(A) == _row_sets(B)
    np.testing.assert_allclose(A.toarray(), B.toarray(), atol=1e-5)


def test_ivf_fit_transform_is_at_least_as_complete_as_transform():
    X, _ = blobs(n_samples=2000, n_features=24)
    est = SemanticGraphTransformer(n_neighbors=10, algorithm="ivf", n_probe=3, random_state=0)
    joint = graph_recall(est.fit_transform(X), X, n_samples=None)
    queried = graph_recall(est.fit(X).transform(X), X, n_samples=None)
    assert joint >= queried


@pytest.mark.parametrize(
    "algorithm, params, threshold",
    [
        ("ivf", {}, 0.95),
        ("annoy", {"n_trees": 20, "search_k": 2000}, 0.9),
        pytest.param("hnsw", {}, 0.95, marks=needs_hnswlib),
    ],
)
def test_approximate_recall_threshold(algorithm, params, threshold):
    X, _ = blobs(n_samples=3000, n_features=32, n_centers=30)
    G = SemanticGraphTransformer(
        n_neighbors=10, algorithm=algorithm, random_state=0, **params
    ).fit_transform(X)
    assert graph_recall(G, X) >= threshold


def test_queries_outside_the_index():
    X, _ = blobs(n_samples=300, n_features=16)
    Q, _ = blobs(n_samples=25, n_features=16, seed=1)
    est = SemanticGraphTransformer(n_neighbors=4, metric="euclidean").fit(X)
    G = est.transform(Q)
    assert G.shape == (25, 300)
    D = pairwise_distances(Q, X)
    ref = np.argsort(D, axis=1)[:, :5]
    assert _row_sets(G) == [set(r) for r in ref]


def test_similarity_mode_and_equivalent_cutoffs():
    X, _ = blobs(n_samples=300, n_features=16, noise=1.0)
    dist = SemanticGraphTransformer(n_neighbors=8).fit_transform(X)
    sim = SemanticGraphTransformer(n_neighbors=8, mode="similarity").fit_transform(X)
    np.testing.assert_allclose(sim.data, 1 - dist.data, atol=1e-6)
    # A cut between the stored values, so round-off cannot decide membership.
    values = np.unique(sim.data[sim.data < 0.999])
    mid = len(values) // 2
    cut = float(values[mid] + values[mid + 1]) / 2
    by_sim = SemanticGraphTransformer(n_neighbors=8, min_similarity=cut).fit_transform(X)
    by_dist = SemanticGraphTransformer(n_neighbors=8, max_distance=1 - cut).fit_transform(X)
    assert _row_sets(by_sim) == _row_sets(by_dist)
    assert 300 < by_sim.nnz < dist.nnz  # the cut-off removed some edges but kept self
    assert (by_dist.data <= 1 - cut).all()
    assert (by_dist.diagonal() == 0).all()
    assert all(i in row for i, row in enumerate(_row_sets(by_dist)))


def test_both_cutoffs_is_an_error():
    X, _ = blobs(n_samples=50, n_features=4)
    with pytest.raises(ValueError, match="at most one of max_distance and min_similarity"):
        SemanticGraphTransformer(max_distance=0.1, min_similarity=0.9).fit(X)


def test_inner_product_distances_are_nonnegative_and_rank_by_dot():
    X, _ = blobs(n_samples=200, n_features=8)
    G = SemanticGraphTransformer(n_neighbors=5, metric="inner_product").fit_transform(X)
    assert (G.data >= 0).all()
    dots = X @ X.T
    for i in range(0, 200, 17):
        cols = G.indices[G.indptr[i] : G.indptr[i + 1]]
        assert set(cols) == set(np.argsort(-dots[i], kind="stable")[:6])


def test_zero_vectors_under_cosine():
    X, _ = blobs(n_samples=60, n_features=8)
    X[[3, 10]] = 0
    with pytest.warns(UserWarning, match="2 all-zero row"):
        G = SemanticGraphTransformer(n_neighbors=3).fit_transform(X)
    row = G[3]
    assert row.indices[0] == 3 and row.data[0] == 0
    np.testing.assert_allclose(row.data[1:], 1.0)  # similarity 0 to everything else


def test_duplicates_are_mutual_neighbours_at_distance_zero():
    X, _ = blobs(n_samples=100, n_features=8)
    X = np.vstack([X, X[:5], X[:5]])  # every point 0..4 appears three times
    G = SemanticGraphTransformer(n_neighbors=3, algorithm="brute").fit_transform(X)
    for i in range(5):
        copies = {i, 100 + i, 105 + i}
        for j in copies:
            row = G[j]
            assert row.indices[0] == j  # itself first, whatever its duplicates
            assert copies <= set(row.indices)
            assert np.all(row.data[np.isin(row.indices, list(copies))] <= 1e-6)


def test_ties_break_towards_lower_index():
    # The query is equidistant from four points: lower indices come first.
    X = np.array([[5.0, 0], [0, 1], [1, 0], [0, -1], [-1, 0], [9, 9]])
    est = SemanticGraphTransformer(n_neighbors=3, metric="euclidean").fit(X)
    G = est.transform(np.array([[0.0, 0.0]]))
    assert G.indices.tolist() == [1, 2, 3, 4]
    np.testing.assert_allclose(G.data, 1.0)


def test_random_state_reproducible():
    X, _ = blobs(n_samples=1000, n_features=16)
    for algorithm in ["ivf", "annoy"] + (["hnsw"] if HAS_HNSWLIB else []):
        a = SemanticGraphTransformer(algorithm=algorithm, random_state=3).fit_transform(X)
        b = SemanticGraphTransformer(algorithm=algorithm, random_state=3).fit_transform(X)
        assert (a != b).nnz == 0


@pytest.mark.parametrize(
    "X, message",
    [
        (np.array([[1.0, np.nan], [1.0, 2.0], [0.0, 1.0]]), "NaN"),
        (np.array([[1.0, np.inf], [1.0, 2.0], [0.0, 1.0]]), "infinity"),
        (np.empty((0, 3)), "0 sample"),
        (np.ones((1, 3)), "1 sample"),
        (np.array([["a", "b"], ["c", "d"]]), "could not convert|dtype"),
    ],
)
def test_bad_input_is_a_clear_error(X, message):
    with pytest.raises(ValueError, match=message):
        SemanticGraphTransformer(n_neighbors=1).fit(X)


def test_sparse_input_is_rejected():
    with pytest.raises(TypeError, match="[Ss]parse"):
        SemanticGraphTransformer(n_neighbors=1).fit(sp.random(10, 4, density=0.5, format="csr"))


def test_too_many_neighbours_and_feature_mismatch():
    X, _ = blobs(n_samples=10, n_features=4)
    with pytest.raises(ValueError, match=r"n_neighbors=10 is too large for 10 indexed samples"):
        SemanticGraphTransformer(n_neighbors=10).fit(X)
    est = SemanticGraphTransformer(n_neighbors=3).fit(X)
    with pytest.raises(ValueError, match="features"):
        est.transform(np.ones((2, 5)))


@pytest.mark.parametrize(
    "params, message",
    [
        ({"n_neighbors": 0}, "n_neighbors"),
        ({"mode": "weights"}, "mode"),
        ({"metric": "hamming"}, "metric"),
        ({"algorithm": "faiss"}, "algorithm"),
        ({"max_distance": -1.0}, "max_distance"),
    ],
)
def test_bad_parameters_name_themselves(params, message):
    X, _ = blobs(n_samples=20, n_features=4)
    with pytest.raises(ValueError, match=message):
        SemanticGraphTransformer(**params).fit(X)


def test_pipelines_with_precomputed_consumers():
    X, y = blobs(n_samples=240, n_features=16, n_centers=4, noise=0.2)
    graph = SemanticGraphTransformer(n_neighbors=15, metric="euclidean")
    # DBSCAN on our graph equals DBSCAN on scikit-learn's exact graph.
    ref_graph = KNeighborsTransformer(n_neighbors=15, metric="euclidean", mode="distance")
    eps = float(np.median(ref_graph.fit_transform(X).data)) * 1.5
    ours = make_pipeline(graph, DBSCAN(eps=eps, metric="precomputed")).fit_predict(X)
    theirs = make_pipeline(ref_graph, DBSCAN(eps=eps, metric="precomputed")).fit_predict(X)
    np.testing.assert_array_equal(ours, theirs)
    assert adjusted_rand_score(y, ours) > 0.9
    # SpectralClustering on the symmetrised connectivity graph finds the planted clusters.
    affinity = SemanticGraphTransformer(n_neighbors=15, mode="connectivity").fit_transform(X)
    affinity = 0.5 * (affinity + affinity.T)
    spectral = SpectralClustering(4, affinity="precomputed", random_state=0).fit_predict(affinity)
    assert adjusted_rand_score(y, spectral) > 0.9
    # Isomap and TSNE embed from the precomputed graph.
    roll, _ = make_swiss_roll(400, random_state=0)
    iso = make_pipeline(
        SemanticGraphTransformer(n_neighbors=10, metric="euclidean"),
        Isomap(n_neighbors=10, metric="precomputed"),
    ).fit_transform(roll)
    iso_ref = make_pipeline(
        KNeighborsTransformer(n_neighbors=10, mode="distance"),
        Isomap(n_neighbors=10, metric="precomputed"),
    ).fit_transform(roll)
    # Same geodesics, so the same embedding up to the sign of each axis.
    np.testing.assert_allclose(np.abs(iso), np.abs(iso_ref), rtol=1e-3, atol=1e-3)
    tsne = make_pipeline(
        SemanticGraphTransformer(n_neighbors=40, metric="euclidean"),
        TSNE(metric="precomputed", init="random", perplexity=10, random_state=0, max_iter=250),
    ).fit_transform(X)
    assert tsne.shape == (240, 2) and np.isfinite(tsne).all()


def test_streaming_blocks_give_the_same_graph():
    X, _ = blobs(n_samples=500, n_features=16)
    est = SemanticGraphTransformer(n_neighbors=5, algorithm="brute").fit(X)
    whole = est.transform(X)
    est.index_.block_size = 64  # many small query and index blocks
    blocked = est.transform(X)
    assert _row_sets(whole) == _row_sets(blocked)
    np.testing.assert_allclose(whole.toarray(), blocked.toarray(), atol=1e-5)
