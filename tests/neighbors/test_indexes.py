import pickle

import numpy as np
import pytest
from sklearn.metrics import pairwise_distances

from sksemantic.neighbors import (
    AnnoyIndex,
    BruteIndex,
    IVFIndex,
    make_index,
    merge_candidates,
    put_self_first,
    resolve_algorithm,
)
from sksemantic.neighbors._topk import topk_dense
from tests._helpers import HNSW, blobs, needs_hnswlib

METRICS = ["cosine", "euclidean", "manhattan", "inner_product"]


def _exact_ids(Q, X, metric, k):
    if metric == "inner_product":
        D = -(Q.astype(np.float64) @ X.T.astype(np.float64))
    else:
        D = pairwise_distances(Q.astype(np.float64), X.astype(np.float64), metric=metric)
    return np.argsort(D, axis=1, kind="stable")[:, :k]


def test_topk_dense_matches_full_sort():
    rng = np.random.default_rng(0)
    S = rng.normal(size=(50, 200)).astype(np.float32)
    s, i = topk_dense(S, 7, offset=3)
    ref = np.argsort(-S, axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(i - 3, ref)
    np.testing.assert_array_equal(s, np.take_along_axis(S, ref, axis=1))


def test_merge_candidates_keeps_best_and_ignores_repeats():
    best_s = np.array([[5.0, 3.0], [-np.inf, -np.inf]], dtype=np.float32)
    best_i = np.array([[1, 2], [-1, -1]])
    rows = np.array([0, 0, 1, 1, 1])
    cand_s = np.array([4.0, 5.0, 1.0, 2.0, 0.5], dtype=np.float32)
    cand_i = np.array([7, 1, 3, 4, 9])  # (0, 1) repeats an existing entry
    merge_candidates(best_s, best_i, rows, cand_s, cand_i)
    assert best_i.tolist() == [[1, 7], [4, 3]]
    assert best_s.tolist() == [[5.0, 4.0], [2.0, 1.0]]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("unique", [True, False])
def test_merge_candidates_orders_like_a_full_sort(dtype, unique):
    # Scores drawn from a few values (ties, both zeros, infinities, negatives): each row
    # keeps its k best by score descending, then id ascending, as one full sort gives.
    rng = np.random.default_rng(3)
    n, k, m = 40, 4, 600
    values = np.array([-np.inf, -2.5, -1.0, -0.0, 0.0, 0.25, 1.0, 3.0, np.inf], dtype=dtype)
    best_s = np.full((n, k), -np.inf, dtype=dtype)
    best_i = np.full((n, k), -1, dtype=np.int64)
    rows = rng.integers(0, n, m)
    ids = rng.permutation(10 * m)[:m] if unique else rng.integers(0, 50, m)
    scores = values[rng.integers(0, len(values), m)]
    if not unique:
        # A repeated (row, id) keeps one score, as a search would give it.
        scores = values[(rows * 7 + ids) % len(values)]
    merge_candidates(best_s, best_i, rows, scores, ids, unique=unique)
    for r in range(n):
        pairs = sorted({(-float(s), int(i)) for s, i in zip(scores[rows == r], ids[rows == r],
                                                           strict=True)})[:k]
        got = [(-float(s), int(i)) for s, i in zip(best_s[r], best_i[r], strict=True) if i >= 0]
        assert [(s + 0.0, i) for s, i in got] == [(s + 0.0, i) for s, i in pairs]


def test_put_self_first_moves_or_inserts():
    ids = np.array([[3, 0, 4], [5, 6, 7]])
    s = np.array([[9.0, 8.0, 7.0], [3.0, 2.0, 1.0]], dtype=np.float32)
    new_s, new_i = put_self_first(s, ids, np.array([0, 1]), np.array([10.0, 10.0], np.float32))
    assert new_i.tolist() == [[0, 3, 4], [1, 5, 6]]
    assert new_s[:, 0].tolist() == [10.0, 10.0]


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("block_size", [None, 37])
def test_brute_is_exact(metric, block_size):
    X, _ = blobs(n_samples=300, n_features=16)
    index = BruteIndex(metric, block_size=block_size).fit(X)
    _, ids, _ = index.query(X[:40], 6)
    ref = _exact_ids(X[:40], X, metric, 6)
    # Sets agree (exact search); order may differ only between round-off ties.
    assert all(set(a) == set(b) for a, b in zip(ids, ref, strict=True))


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "manhattan"])
def test_brute_self_join_is_exact_with_self_first(metric):
    X, _ = blobs(n_samples=250, n_features=16)
    scores, ids, sq = BruteIndex(metric, block_size=64).fit(X).self_join(5)
    assert (ids[:, 0] == np.arange(len(X))).all()
    D = pairwise_distances(X.astype(np.float64), metric=metric)
    np.fill_diagonal(D, np.inf)
    ref = np.argsort(D, axis=1, kind="stable")[:, :4]
    assert all(set(a[1:]) == set(b) for a, b in zip(ids, ref, strict=True))


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_brute_self_join_is_exact_over_wide_blocks(metric):
    # Blocks of 1,024 columns: each row block's first scores are screened by the bound
    # from groups of 64 entries, both ways round; duplicated rows make exact ties.
    X, _ = blobs(n_samples=2300, n_features=16)
    X[1500:1800] = X[:300]
    k = 12
    index = BruteIndex(metric, block_size=1024, reduced_precision=False).fit(X)
    _, ids, _ = index.self_join(k)
    assert (ids[:, 0] == np.arange(len(X))).all()
    assert all(len(set(row)) == k for row in ids)
    D = pairwise_distances(X.astype(np.float64), metric=metric)
    np.fill_diagonal(D, np.inf)
    kth = np.sort(D, axis=1)[:, k - 2]
    found = np.take_along_axis(D, ids[:, 1:], axis=1)
    assert (found <= kth[:, None] + 1e-4).all()


def test_ivf_with_every_list_probed_is_exact():
    X, _ = blobs(n_samples=400, n_features=16)
    index = IVFIndex("cosine", n_lists=10, n_probe=10, random_state=0).fit(X)
    _, ids, _ = index.query(X[:50], 5)
    ref = _exact_ids(X[:50], X, "cosine", 5)
    assert all(set(a) == set(b) for a, b in zip(ids, ref, strict=True))


@pytest.mark.parametrize("algorithm", ["ivf", "annoy", HNSW])
def test_approximate_indexes_reach_recall(algorithm):
    X, _ = blobs(n_samples=1500, n_features=24)
    index = make_index(algorithm, "cosine", len(X), random_state=0).fit(X)
    _, ids, _ = index.query(X[:200], 10)
    ref = _exact_ids(X[:200], X, "cosine", 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, ref, strict=True)])
    assert recall >= 0.85


@pytest.mark.parametrize("algorithm", ["brute", "ivf", "annoy", HNSW])
def test_indexes_pickle_and_answer_identically(algorithm):
    X, _ = blobs(n_samples=300, n_features=16)
    index = make_index(algorithm, "cosine", len(X), random_state=0).fit(X)
    before = index.query(X[:30], 5)
    after = pickle.loads(pickle.dumps(index)).query(X[:30], 5)
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)


def test_ivf_does_not_depend_on_threads():
    X, _ = blobs(n_samples=800, n_features=16)
    a = IVFIndex("euclidean", random_state=0, n_jobs=1).fit(X).self_join(6)
    b = IVFIndex("euclidean", random_state=0, n_jobs=2).fit(X).self_join(6)
    np.testing.assert_array_equal(a[1], b[1])


def test_auto_resolution():
    assert resolve_algorithm("auto", 1000, "cosine") == "brute"
    assert resolve_algorithm("auto", 10**6, "cosine") == "ivf"
    assert resolve_algorithm("annoy", 10, "cosine") == "annoy"


def test_annoy_short_results_fall_back_to_exact():
    # search_k=1 makes annoy return fewer than k items: those rows are answered exactly.
    X, _ = blobs(n_samples=200, n_features=8)
    index = AnnoyIndex("euclidean", n_trees=1, search_k=1, random_state=0).fit(X)
    _, ids, _ = index.query(X[:20], 10)
    assert (ids >= 0).all()
    assert all(len(set(r)) == 10 for r in ids)


@needs_hnswlib
def test_hnsw_rejects_manhattan_by_name():
    X, _ = blobs(n_samples=50, n_features=8)
    with pytest.raises(ValueError, match="algorithm='hnsw' supports the metrics.*manhattan"):
        make_index("hnsw", "manhattan", len(X)).fit(X)


@needs_hnswlib
@pytest.mark.parametrize("metric", ["cosine", "euclidean", "inner_product"])
def test_hnsw_scores_are_exact_and_builds_reproducible(metric):
    X, _ = blobs(n_samples=600, n_features=16)
    a = make_index("hnsw", metric, len(X), random_state=0).fit(X)
    b = make_index("hnsw", metric, len(X), random_state=0).fit(X)
    s, i, _ = a.query(X[:40], 5)
    np.testing.assert_array_equal(i, b.query(X[:40], 5)[1])
    # Candidates are re-scored with the shared metric code: the scores are those the
    # exact index gives the same pairs.
    exact = BruteIndex(metric).fit(X)
    S = exact.query_subset(X[:40], len(X), np.arange(len(X)))
    full = np.full((40, len(X)), np.nan, dtype=np.float32)
    np.put_along_axis(full, S[1], S[0], axis=1)
    np.testing.assert_allclose(s, np.take_along_axis(full, i, axis=1), rtol=1e-5, atol=1e-5)


@needs_hnswlib
def test_hnsw_tiny_graphs_fall_back_to_exact():
    # k = n with two links per node: some walks cannot reach every point, and hnswlib
    # then refuses the whole batch; it is answered exactly.
    X, _ = blobs(n_samples=60, n_features=4)
    index = make_index("hnsw", "euclidean", len(X), n_links=2, ef_search=1, random_state=0)
    scores, ids, _ = index.fit(X).query(X[:5], 60)
    assert all(sorted(r) == list(range(60)) for r in ids)
    assert (np.diff(scores, axis=1) <= 0).all()


def test_hnsw_without_hnswlib_says_what_to_install(monkeypatch):
    import sys

    from sksemantic.search import SemanticSearch

    monkeypatch.setitem(sys.modules, "hnswlib", None)  # a machine without the extra
    X, _ = blobs(n_samples=50, n_features=8)
    with pytest.raises(ImportError, match=r"hnswlib is required for algorithm='hnsw'.*"
                                          r"pip install 'sksemantic\[hnsw\]'"):
        SemanticSearch(algorithm="hnsw").fit(X)
    # Every other backend still works.
    ids = SemanticSearch(algorithm="ivf", random_state=0).fit(X).kneighbors(
        X[:2], 3, return_distance=False
    )
    assert ids.shape == (2, 3)
