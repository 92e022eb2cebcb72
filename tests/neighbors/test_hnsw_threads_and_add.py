"""HNSWIndex: threads querying with different k, and growth after a save and load."""

import pickle
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from sksemantic.neighbors import HNSWIndex, load_index, save_index
from tests._helpers import needs_hnswlib

pytestmark = needs_hnswlib


@pytest.fixture(scope="module")
def hard_graph():
    # Unstructured data: the walk's ef changes the answers, so a query run with
    # another query's ef comes back different.
    X = np.random.default_rng(0).normal(size=(4000, 32)).astype(np.float32)
    return HNSWIndex("cosine", random_state=0, n_jobs=1).fit(X)


def test_threads_with_different_k_get_single_threaded_results(hard_graph):
    Q = np.random.default_rng(1).normal(size=(40, 32)).astype(np.float32)
    batches = [Q[i : i + 4] for i in range(0, 40, 4)]
    ks = [1, 5, 40, 120]  # ef 32, 32, 80, 240
    expected = {k: [hard_graph.query(b, k)[1] for b in batches] for k in ks}
    # The ef matters here: the small-k answers are not a prefix of the large-k ones.
    assert any(
        not np.array_equal(a, b[:, :5])
        for a, b in zip(expected[5], expected[120], strict=True)
    )

    def run(job):
        k, rounds = job
        return [
            (k, j, hard_graph.query(batches[j], k)[1])
            for _ in range(rounds)
            for j in range(len(batches))
        ]

    with ThreadPoolExecutor(8) as pool:
        results = [r for out in pool.map(run, [(k, 3) for k in ks * 2]) for r in out]
    assert len(results) == 8 * 3 * len(batches)
    wrong = [(k, j) for k, j, ids in results if not np.array_equal(ids, expected[k][j])]
    assert wrong == []


@pytest.mark.parametrize("how", ["mmap", "memory", "pickle"])
def test_add_after_load_builds_the_same_graph(tmp_path, how):
    X = np.random.default_rng(2).normal(size=(700, 16)).astype(np.float32)
    Q = np.random.default_rng(3).normal(size=(30, 16)).astype(np.float32)
    idx = HNSWIndex("euclidean", random_state=3).fit(X[:400])
    save_index(idx, tmp_path / "ix")
    if how == "pickle":
        other = pickle.loads(pickle.dumps(idx))
    else:
        other = load_index(tmp_path / "ix", mmap=how == "mmap")
    for step in (X[400:550], X[550:]):  # twice: the second add starts from the first
        idx.add(step)
        other.add(step)
    a, b = idx._hnsw.__getstate__()[0], other._hnsw.__getstate__()[0]
    for name in ("element_levels", "link_lists", "data_level0"):
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    for x, y in zip(idx.query(Q, 15), other.query(Q, 15), strict=True):
        np.testing.assert_array_equal(x, y)
