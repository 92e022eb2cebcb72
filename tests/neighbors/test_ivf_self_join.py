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


def _merged(parts, k):
    """The parts' candidates per row, best k by score then id (each pair reaches a
    point from one part only)."""
    S = np.concatenate([p[0] for p in parts], axis=1)
    ids = np.concatenate([p[1] for p in parts], axis=1)
    order = np.lexsort((ids, -S), axis=1)[:, :k]
    return np.take_along_axis(S, order, axis=1), np.take_along_axis(ids, order, axis=1)


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "inner_product"])
def test_the_join_in_parts_is_the_self_join(metric):
    X, _ = blobs(n_samples=3000, n_features=16, n_centers=12, seed=3)
    k, n_probe = 7, 3
    index = IVFIndex(metric, n_lists=30, random_state=0, n_jobs=1).fit(X)
    ranges = index.join_lists(3)
    assert ranges[0][0] == 0 and ranges[-1][1] == index.n_lists_
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    parts = [index.join_first(k, n_probe, lists) for lists in ranges]
    thresholds = np.concatenate([p.thresholds for p in parts])
    probes = np.concatenate([p.probes for p in parts])
    scores, ids = _merged([index.join_second(k, p, thresholds, probes) for p in parts], k)
    scores, ids = index.join_fill(scores, ids)
    got = index.join_fit_order(scores, ids)
    whole = index._self_join(k, n_probe)
    np.testing.assert_array_equal(got[1], whole[1])
    np.testing.assert_allclose(got[0], whole[0], rtol=1e-5)  # products grouped otherwise
    # A range's rows alone, in fit order: the same rows of the whole answer.
    a, b = int(index.offsets_[ranges[1][0]]), int(index.offsets_[ranges[1][1]])
    s, i = _merged([index.join_second(k, p, thresholds, probes) for p in parts], k)
    rows, _, i, _ = index.join_rows(s[a:b], i[a:b], a)
    np.testing.assert_array_equal(rows, index.perm_[a:b])
    np.testing.assert_array_equal(i, whole[1][rows])


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "inner_product"])
def test_train_assign_then_fit_with_labels_is_fit(metric):
    X, _ = blobs(n_samples=2000, n_features=12, n_centers=10, seed=4)
    X = X + 5.0  # off the origin: euclidean indexes centre the data
    holdout = np.arange(0, 2000, 25)
    fitted = IVFIndex(metric, n_lists=25, random_state=3).fit(X, holdout=holdout)
    trained = IVFIndex(metric, n_lists=25, random_state=3).train(X, holdout=holdout)
    np.testing.assert_array_equal(trained.centers_, fitted.centers_)
    np.testing.assert_array_equal(trained.training_rows(len(X), holdout), fitted.train_rows_)
    # Row blocks assigned apart (as on several workers), with the probes of a join.
    labels, probes = zip(*(trained.assign(X[a : a + 700], 4) for a in range(0, 2000, 700)),
                         strict=True)
    built = trained.fit(X, holdout=holdout, labels=np.concatenate(labels))
    for name in ("perm_", "offsets_", "X_", "sqnorm_"):
        np.testing.assert_array_equal(getattr(built, name), getattr(fitted, name))
    assert built.max_sqnorm_ == fitted.max_sqnorm_
    # The assignment's probes are the probes a search makes, nearest first.
    probes = np.concatenate(probes)
    searched = fitted._probe(fitted._rows(np.arange(len(X)))[0], 4)  # prepared rows
    np.testing.assert_array_equal(probes[:, 0], searched[:, 0])
    assert (np.sort(probes, axis=1) == np.sort(searched, axis=1)).mean() > 0.999


def test_fit_with_labels_needs_a_trained_index_and_valid_labels():
    X, _ = blobs(n_samples=300, n_features=8, n_centers=4)
    with pytest.raises(ValueError, match="train"):
        IVFIndex(n_lists=5).fit(X, labels=np.zeros(300, dtype=np.int64))
    with pytest.raises(ValueError, match="not trained"):
        IVFIndex(n_lists=5).assign(X)
    index = IVFIndex(n_lists=5, random_state=0).train(X)
    with pytest.raises(ValueError, match="one integer list per row"):
        index.fit(X, labels=np.zeros(299, dtype=np.int64))
    with pytest.raises(ValueError, match="one integer list per row"):
        index.fit(X, labels=np.zeros(300))
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        index.fit(X, labels=np.full(300, 5))
    with pytest.raises(ValueError, match="probes must have one row per point"):
        index.fit(X).join_first(3, 2, (0, 2), probes=np.zeros((1, 2), dtype=np.int32))
