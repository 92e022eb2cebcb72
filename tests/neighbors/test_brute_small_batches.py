"""BruteIndex's one-product path for a few queries agrees with the blocked path."""

import numpy as np
import pytest

from sksemantic.neighbors import METRICS, BruteIndex


@pytest.mark.parametrize("metric", METRICS)
def test_few_queries_match_blocked(metric):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1500, 20)).astype(np.float32)
    Q = rng.normal(size=(30, 20)).astype(np.float32)
    idx = BruteIndex(metric, block_size=256).fit(X)  # several blocks
    s_b, i_b, _ = idx.query(Q, 6)
    assert len(Q) > BruteIndex._FEW_QUERIES
    rows = [idx.query(Q[j : j + 1], 6) for j in range(len(Q))]
    np.testing.assert_allclose(np.vstack([r[0] for r in rows]), s_b, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(np.vstack([r[1] for r in rows]), i_b)


def test_few_queries_pad_when_k_exceeds_points():
    X = np.eye(3, dtype=np.float32)
    s, i, _ = BruteIndex("euclidean").fit(X).query(X[:1], 5)
    assert i[0].tolist()[:3] == [0, 1, 2] and i[0].tolist()[3:] == [-1, -1]
    assert np.isneginf(s[0, 3:]).all()
    s2, i2, _ = BruteIndex("euclidean", block_size=2).fit(X).query(np.repeat(X[:1], 9, 0), 5)
    np.testing.assert_array_equal(i2[0], i[0])


@pytest.mark.parametrize("metric", METRICS)
def test_threaded_query_spans_match_one_thread(metric):
    # Query spans searched in parallel threads give the one-thread answer exactly.
    rng = np.random.default_rng(1)
    X = rng.normal(size=(900, 12)).astype(np.float32)
    Q = rng.normal(size=(301, 12)).astype(np.float32)
    one = BruteIndex(metric, block_size=128, n_jobs=1).fit(X).query(Q, 7)
    two = BruteIndex(metric, block_size=128, n_jobs=2).fit(X).query(Q, 7)
    np.testing.assert_array_equal(two[1], one[1])
    np.testing.assert_allclose(two[0], one[0], rtol=1e-6, atol=1e-6)
    # And they are the exact neighbours.
    s_full, i_full, _ = BruteIndex(metric, block_size=4096, n_jobs=1).fit(X).query(Q, 7)
    np.testing.assert_allclose(two[0], s_full, rtol=1e-4, atol=1e-4)
