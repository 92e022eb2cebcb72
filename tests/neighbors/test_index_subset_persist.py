"""``query_subset`` (exact search among chosen points) and save_index / load_index."""

import pickle

import numpy as np
import pytest

from sksemantic.neighbors import (
    METRICS,
    AnnoyIndex,
    BruteIndex,
    IVFIndex,
    load_index,
    save_index,
)


def _data(n=300, d=12, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def _indexes(metric="cosine"):
    return [
        BruteIndex(metric),
        IVFIndex(metric, n_lists=6, n_probe=2, random_state=0),
        AnnoyIndex(metric, n_trees=5, random_state=0),
    ]


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("which", range(3))
def test_query_subset_is_exact_on_subset(metric, which):
    X, Q = _data(), _data(20, seed=1)
    idx = _indexes(metric)[which].fit(X)
    subset = np.flatnonzero(np.arange(300) % 7 == 3)
    s, i, _ = idx.query_subset(Q, 5, subset, max_block=64)  # several query blocks
    s_ref, i_ref, _ = BruteIndex(metric).fit(X[subset]).query(Q, 5)
    np.testing.assert_array_equal(i, subset[i_ref])
    np.testing.assert_allclose(s, s_ref, rtol=1e-4, atol=1e-4)
    # Fewer points than k: all of them, sorted.
    s2, i2, _ = idx.query_subset(Q, 50, subset[:3])
    assert i2.shape == (20, 3) and np.all(np.diff(s2, axis=1) <= 0)


@pytest.mark.parametrize("which", range(3))
@pytest.mark.parametrize("mmap", [True, False])
def test_save_load_round_trip(tmp_path, which, mmap):
    X, Q = _data(), _data(20, seed=1)
    idx = _indexes()[which].fit(X)
    expected = idx.query(Q, 7)
    save_index(idx, tmp_path / "ix")
    loaded = load_index(tmp_path / "ix", mmap=mmap)
    assert type(loaded) is type(idx)
    if mmap:
        assert isinstance(loaded.X_, np.memmap) and not loaded.X_.flags.writeable
    for a, b in zip(expected, loaded.query(Q, 7), strict=True):
        np.testing.assert_array_equal(a, b)
    # A loaded index still pickles and grows (new arrays, files untouched).
    again = pickle.loads(pickle.dumps(loaded))
    np.testing.assert_array_equal(again.query(Q, 7)[1], expected[1])
    loaded.add(X[:10])
    assert loaded.n_samples_ == 310
    version = tmp_path / "ix" / (tmp_path / "ix" / "CURRENT").read_text().strip()
    assert np.load(version / "index.X_.npy").shape[0] == 300
