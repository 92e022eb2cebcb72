"""The shipped corpora load, are consistent, and carry the signal they are shipped for."""

import numpy as np
import pytest

from sksemantic.datasets import get_data_path, load_debian_packages, load_wordnet_queries


def test_data_files_and_licence_are_shipped():
    path = get_data_path()
    names = {p.name for p in path.iterdir()}
    assert {"debian_packages.npz", "debian_packages.json", "wordnet_queries.npz",
            "wordnet_queries.json", "README.md"} <= names
    readme = (path / "README.md").read_text()
    assert "Princeton University" in readme and "Debian bookworm" in readme
    # Kept small: the wheel carries these files.
    assert sum(p.stat().st_size for p in path.iterdir()) < 8 * 2**20


def test_debian_packages_consistent():
    d = load_debian_packages()
    n = d.data.shape[0]
    assert d.data.dtype == np.float32 and d.data.shape[1] == 384
    assert len(d.texts) == len(d.packages) == len(d.sources) == n
    assert d.target.shape == d.groups.shape == (n,)
    assert d.target.min() >= 0 and d.target.max() < len(d.target_names)
    np.testing.assert_allclose(np.linalg.norm(d.data, axis=1), 1.0, atol=2e-3)
    assert all(isinstance(t, str) and t for t in d.texts)
    # Groups are source packages: one source name per group, and whole groups shipped.
    for g in np.unique(d.groups)[:200]:
        assert len({d.sources[i] for i in np.flatnonzero(d.groups == g)}) == 1
    assert np.sum(np.bincount(d.groups) > 1) >= 100
    assert "Debian" in d.DESCR


def test_debian_groups_are_near_duplicates():
    """Nearest neighbours share a source group far above chance (the reason it ships)."""
    X, groups = load_debian_packages(return_X_y=True)
    multi = np.bincount(groups)[groups] > 1
    S = X[multi] @ X.T
    S[np.arange(S.shape[0]), np.flatnonzero(multi)] = -np.inf
    nn = S.argmax(axis=1)
    same = np.mean(groups[nn] == groups[multi])
    chance = np.mean(np.bincount(groups)[groups[multi]] / len(groups))
    assert same > 0.5 > 10 * chance


def test_wordnet_queries_known_item():
    wn = load_wordnet_queries()
    assert wn.data.shape == wn.query_data.shape == (2000, 384)
    assert len(wn.texts) == len(wn.queries) == len(wn.synsets) == 2000
    assert wn.target.max() < len(wn.target_names)
    # Query i finds document i far more often than chance (1/2000).
    top10 = np.argsort(-(wn.query_data @ wn.data.T), axis=1)[:, :10]
    recall10 = np.mean(np.any(top10 == np.arange(2000)[:, None], axis=1))
    assert recall10 > 0.4
    X, Q = load_wordnet_queries(return_X_y=True)
    np.testing.assert_array_equal(X, wn.data)
    np.testing.assert_array_equal(Q, wn.query_data)


@pytest.mark.parametrize("loader", [load_debian_packages, load_wordnet_queries])
def test_loaders_return_fresh_arrays(loader):
    a, b = loader(), loader()
    a.data[0, 0] += 1.0
    assert a.data[0, 0] != b.data[0, 0]
