"""``BaseIndex.add``: points indexed after fit are found exactly as if fitted together."""

import numpy as np
import pytest

from sksemantic.neighbors import METRICS, AnnoyIndex, BruteIndex, HNSWIndex, IVFIndex
from tests._helpers import blobs, needs_hnswlib


def _data(n=400, seed=0):
    return blobs(n, 16, 8, noise=0.3, seed=seed)[0]


@pytest.mark.parametrize("metric", METRICS)
def test_brute_add_equals_fit_on_all(metric):
    X = _data()
    Q = _data(50, seed=1)
    full = BruteIndex(metric).fit(X)
    grown = BruteIndex(metric).fit(X[:300]).add(X[300:350]).add(X[350:])
    assert grown.n_samples_ == 400
    s1, i1, _ = full.query(Q, 5)
    s2, i2, _ = grown.query(Q, 5)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_allclose(s1, s2, rtol=1e-5, atol=1e-5)
    if metric not in ("euclidean", "manhattan"):  # those are centred on the fitted points
        assert grown.max_sqnorm_ == pytest.approx(full.max_sqnorm_)


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "inner_product"])
def test_ivf_add_keeps_lists_and_finds_new_points(metric):
    X = _data()
    idx = IVFIndex(metric, n_lists=8, n_probe=8, random_state=0).fit(X[:300])
    centers = idx.centers_.copy()
    idx.add(X[300:])
    np.testing.assert_array_equal(idx.centers_, centers)  # no retraining
    assert idx.n_samples_ == 400 and idx.X_.shape[0] == 400
    assert np.array_equal(np.sort(idx.perm_), np.arange(400))
    assert idx.offsets_[-1] == 400 and np.all(np.diff(idx.offsets_) >= 0)
    # Probing every list is exact: the grown index must equal exact search on all points.
    Q = _data(50, seed=2)
    s_ex, i_ex, _ = BruteIndex(metric).fit(X).query(Q, 5)
    s, i, _ = idx.query(Q, 5)
    np.testing.assert_array_equal(i, i_ex)
    np.testing.assert_allclose(s, s_ex, rtol=1e-4, atol=1e-4)
    # Each added point is its own nearest neighbour (it sits in its centre's list).
    if metric != "inner_product":
        _, i_self, _ = idx.query(X[300:], 1)
        np.testing.assert_array_equal(i_self[:, 0], np.arange(300, 400))


def test_annoy_add_rebuilds():
    X = _data()
    idx = AnnoyIndex("cosine", n_trees=10, random_state=0).fit(X[:300])
    idx.add(X[300:])
    assert idx.n_samples_ == 400 and idx._annoy.get_n_items() == 400
    _, i_self, _ = idx.query(X[300:], 1)
    assert np.mean(i_self[:, 0] == np.arange(300, 400)) > 0.95


@needs_hnswlib
def test_hnsw_add_grows_the_graph_in_place():
    X = _data()
    idx = HNSWIndex("cosine", random_state=0).fit(X[:300])
    levels = idx._hnsw.__getstate__()[0]["element_levels"].copy()
    idx.add(X[300:])
    assert idx._hnsw.get_current_count() == 400 == idx.n_samples_
    # The points already linked keep their levels: they are not inserted again.
    np.testing.assert_array_equal(idx._hnsw.__getstate__()[0]["element_levels"][:300], levels)
    _, i_self, _ = idx.query(X[300:], 1)
    assert np.mean(i_self[:, 0] == np.arange(300, 400)) > 0.95


def test_add_rejects_wrong_width_and_accepts_empty():
    idx = BruteIndex().fit(_data())
    with pytest.raises(ValueError, match="features"):
        idx.add(np.ones((3, 5), dtype=np.float32))
    idx.add(np.empty((0, 16), dtype=np.float32))
    assert idx.n_samples_ == 400
