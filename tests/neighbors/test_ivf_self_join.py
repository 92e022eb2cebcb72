"""IVF's self-join scores each probed pair for both ends, and its recall curve says so."""

import numpy as np
import pytest

from sksemantic.neighbors import IVFIndex
from tests._helpers import blobs


def _lists_and_probes(index, X, n_probe):
    """Each point's list (fit order) and the lists its probes reach, in float64."""
    n_lists = len(index.centers_)
    lists = np.empty(len(X), dtype=np.int64)
    lists[index.perm_] = np.repeat(np.arange(n_lists), np.diff(index.offsets_))
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    C = index.centers_.astype(np.float64)
    G = 2 * Xn @ C.T - np.einsum("ij,ij->i", C, C)
    order = np.argsort(-G, axis=1, kind="stable")[:, :n_probe]
    probed = np.zeros((len(X), n_lists), dtype=bool)
    np.put_along_axis(probed, order, True, axis=1)
    return Xn, lists, probed


@pytest.mark.parametrize("n_probe", [1, 3, 6])
def test_a_pair_is_found_when_either_end_probes_the_other_list(n_probe):
    X, _ = blobs(n_samples=800, n_features=16, n_centers=8)
    k = 6
    index = IVFIndex("cosine", n_lists=16, random_state=0).fit(X)
    _, ids, _ = index.self_join(k, knob=n_probe)
    Xn, lists, probed = _lists_and_probes(index, X, n_probe)
    reach = probed[:, lists]  # reach[i, j]: i probes j's list
    S = Xn @ Xn.T
    S[~(reach | reach.T)] = -np.inf
    ref = np.argsort(-S, axis=1, kind="stable")[:, :k]
    # Points of lists shorter than k may find fewer than k: they are answered exactly.
    full = np.diff(index.offsets_)[lists] >= k
    assert full.mean() > 0.9
    assert all(set(a) == set(b) for a, b in zip(ids[full], ref[full], strict=True))


def test_every_list_probed_gives_the_exact_self_join():
    X, _ = blobs(n_samples=600, n_features=16)
    index = IVFIndex("euclidean", n_lists=12, random_state=0).fit(X)
    s_ivf, i_ivf, _ = index.self_join(5, knob=12)
    s_ex, i_ex, _ = index.exact_self_join(5)
    assert all(set(a) == set(b) for a, b in zip(i_ivf, i_ex, strict=True))
    np.testing.assert_allclose(s_ivf, s_ex, rtol=0, atol=1e-4)


def test_the_self_join_curve_is_the_recall_the_join_reaches():
    X, _ = blobs(n_samples=3000, n_features=16, n_centers=20, noise=0.6)
    k = 8
    index = IVFIndex("cosine", n_lists=50, random_state=0).fit(X)
    rows = np.arange(0, len(X), 7)
    # Not points of lists shorter than k + 1: those are answered exactly.
    lists = np.empty(len(X), dtype=np.int64)
    lists[index.perm_] = np.repeat(np.arange(50), np.diff(index.offsets_))
    rows = rows[np.diff(index.offsets_)[lists[rows]] > k]
    e_s, e_i = index.exact_neighbors(rows, k)
    values = np.array([1, 2, 4, 8])
    curve = index.recall_curve(k, e_s, e_i, values, self_rows=rows, reverse=True).mean(axis=0)
    assert curve[0] < 0.95  # the curve is not trivially flat
    for v, expected in zip(values, curve, strict=True):
        _, ids, _ = index.self_join(k + 1, knob=int(v))
        found = np.mean([len(set(ids[r, 1:]) & set(e_i[j])) / k for j, r in enumerate(rows)])
        assert abs(found - expected) < 0.005, (v, found, expected)


def test_a_long_list_is_scored_in_blocks_of_queries():
    import tracemalloc

    # Most points repeat one point: one list holds them all, and most queries probe
    # it. Scored against all of them at once, its product alone held 6,000 x 6,000
    # float32 (144 MB), and every entry of it tied at its column's threshold (3.9 GB
    # of candidates at the peak). Blocks of 2^22 scores, each column's ties capped.
    rng = np.random.default_rng(0)
    X = np.concatenate([np.full((6000, 16), 5.0), rng.standard_normal((2000, 16))])
    X = X.astype(np.float32)
    index = IVFIndex("euclidean", n_lists=8, random_state=0).fit(X)
    assert np.diff(index.offsets_).max() > 4000
    tracemalloc.start()
    try:
        index.self_join(6, knob=3)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200e6, peak / 1e6
