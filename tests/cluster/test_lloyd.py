"""The one Lloyd driver: its backends agree, its options replace module constants, and
the public kernels check their input."""

import numpy as np
import pytest

from sksemantic.cluster import KMeansResult, _lloyd, balanced_kmeans, kmeans, nearest_centroid
from sksemantic.cluster._lloyd import (
    LloydOptions,
    NumpyBackend,
    TorchBackend,
    lloyd,
    make_backend,
    pick_with_ties,
)
from tests._helpers import blobs


def _blobs(n=3000, d=24, n_centers=40):
    return blobs(n, d, n_centers, noise=1.0, center_scale=2.0)[0]


def test_backend_assignment_is_nearest_centre_with_exact_sums():
    X = _blobs()
    centers = X[:9].copy()
    labels, sums, counts = NumpyBackend(X).assign(centers)
    expected, _ = nearest_centroid(X.astype(np.float64), centers.astype(np.float64))
    np.testing.assert_array_equal(labels, expected)
    direct = np.stack([X[labels == j].astype(np.float64).sum(axis=0) for j in range(9)])
    np.testing.assert_allclose(sums, direct, rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(counts, np.bincount(labels, minlength=9))


def test_later_passes_update_the_sums_by_the_rows_that_moved():
    # After its first pass a backend adds what the moved rows carry to the previous
    # sums; every pass must still give a fresh backend's labels, sums and counts, also
    # when the previous pass had another number of centres or the caller changes what
    # it got back.
    X = _blobs(n=20_000)
    rng = np.random.default_rng(0)
    backend = NumpyBackend(X)
    centers = X[:12].copy()
    for step in range(6):
        if step == 3:
            centers = X[:7].copy()
        got = backend.assign(centers)
        fresh = NumpyBackend(X).assign(centers)
        np.testing.assert_array_equal(got.labels, fresh.labels)
        np.testing.assert_array_equal(got.counts, fresh.counts)
        np.testing.assert_allclose(got.sums, fresh.sums, rtol=1e-12, atol=1e-9)
        got.sums[:] = 0  # the caller's copy: the backend's own state is untouched
        centers = centers + rng.normal(scale=0.3, size=centers.shape).astype(np.float32)


def test_backends_decide_near_ties_the_same_way():
    torch = pytest.importorskip("torch")
    del torch
    rng = np.random.default_rng(1)
    X = rng.normal(size=(2000, 32)).astype(np.float32)
    centers = X[:4].copy()
    centers[1] = centers[0] + np.float32(1e-6)  # every row nearly tied between 0 and 1
    offsets = np.array([0.0, 1e-7, 0.0, 0.0], dtype=np.float32)
    for off in (None, offsets):
        a = NumpyBackend(X).assign(centers, off)
        b = TorchBackend(X).assign(centers, off)
        np.testing.assert_array_equal(a.labels, b.labels)
        np.testing.assert_allclose(a.sums, b.sums, rtol=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_a_far_centre_does_not_make_every_row_a_near_tie(backend, monkeypatch):
    # Deep residual levels of heavy-tailed data have codewords of outliers with hundreds
    # of times the others' squared norm. Judged by the largest norm, most rows were
    # "tied" and re-decided in float64; each centre is now judged by its own.
    if backend == "torch":
        pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(20, 64)).astype(np.float32)
    centers[0] *= 200
    X = rng.normal(size=(4000, 64)).astype(np.float32)
    X[:50] = centers[0] + rng.normal(size=(50, 64)).astype(np.float32)  # its own rows
    redecided = []
    exact_choice = _lloyd.refine_choice
    monkeypatch.setattr(
        _lloyd, "refine_choice",
        lambda *a: redecided.append(len(a[3])) or exact_choice(*a),
    )
    labels = make_backend(X, backend).assign(centers).labels
    diff = X[:, None, :].astype(np.float64) - centers[None, :, :].astype(np.float64)
    np.testing.assert_array_equal(labels, np.argmin((diff**2).sum(axis=2), axis=1))
    assert (labels[:50] == 0).all()
    assert sum(redecided) < 0.01 * len(X)


@pytest.mark.parametrize(
    "params",
    [dict(), dict(n_init=3), dict(pca_components=6), dict(split_small=0.2), dict(init="random")],
    ids=["plain", "restarts", "projected", "split_small", "random"],
)
def test_torch_backend_on_cpu_gives_the_numpy_result(params):
    pytest.importorskip("torch")
    X = _blobs(n=12_000)  # above the seeding subsample: the passes over all rows differ
    a = kmeans(X, 10, max_iter=50, random_state=0, **params)
    b = kmeans(X, 10, max_iter=50, random_state=0, backend="torch", **params)
    np.testing.assert_array_equal(a.centers, b.centers)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.inertia == b.inertia and a.n_iter == b.n_iter


def test_torch_backend_on_cpu_gives_the_numpy_balanced_result():
    pytest.importorskip("torch")
    X = _blobs(n=6000, n_centers=5)
    a = balanced_kmeans(X, 8, random_state=0)
    b = balanced_kmeans(X, 8, random_state=0, backend="torch")
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("k", [2, 3, 10, 16])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_few_centre_choice_is_the_row_by_row_one(k, dtype, monkeypatch):
    # Up to _FEW_CENTRES columns the best two per row are found column by column; the
    # general row-by-row path (forced by a threshold of 0) must agree bit for bit.
    rng = np.random.default_rng(k)
    d = rng.normal(size=(6000, k)).astype(dtype)
    d[::5, k - 1] = d[::5, 0]  # exact ties: the first best column wins
    d[1::5, 1] = np.nextafter(d[1::5, 0], dtype(np.inf))  # ties within rounding
    d[2::5] = d[2::5, :1]  # every column tied
    shift = rng.normal(size=k).astype(dtype)
    shift[[1, k - 1]] = shift[0]  # the ties above stay ties after the shift
    scale = np.ones(len(d), dtype=dtype)
    for sh in (None, shift):
        fast = pick_with_ties(d.copy(), scale, 1e-6, shift=sh, with_value=True)
        with monkeypatch.context() as m:
            m.setattr(_lloyd, "_FEW_CENTRES", 0)
            slow = pick_with_ties(d.copy(), scale, 1e-6, shift=sh, with_value=True)
        assert fast[1].any() and not fast[1].all()
        for a, b in zip(fast, slow, strict=True):
            np.testing.assert_array_equal(a, b)
            assert a.dtype == b.dtype


def test_few_centre_passes_give_the_row_by_row_result(monkeypatch):
    X = _blobs(n=5000)
    a = kmeans(X, 12, random_state=0, n_init=2)
    monkeypatch.setattr(_lloyd, "_FEW_CENTRES", 0)
    b = kmeans(X, 12, random_state=0, n_init=2)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_results_are_named_and_unpack_as_before():
    X = _blobs(n=500)
    result = kmeans(X, 4, random_state=0)
    assert isinstance(result, KMeansResult)
    centers, labels, inertia, n_iter = result
    assert centers is result.centers and inertia == result.inertia
    balanced = balanced_kmeans(X, 4, random_state=0)
    assert balanced.offsets.shape == (4,) and len(balanced) == 5


def test_lloyd_options_are_the_former_constants():
    options = LloydOptions()
    assert (options.step_growth, options.max_step) == (1.5, 4.0)
    assert options.replace(tol=0).tol == 0 and options.tol == 1e-4
    X = _blobs(n=800)
    start = X[:5].copy()
    plain = lloyd(NumpyBackend(X), start, options.replace(step_growth=1.0, max_iter=300, tol=0),
                  rng=np.random.RandomState(0))
    # Plain Lloyd to convergence: a fixed point (every centre the mean of its rows).
    for j in range(5):
        np.testing.assert_allclose(plain.centers[j], X[plain.labels == j].mean(axis=0),
                                   rtol=1e-4, atol=1e-4)


def test_empty_clusters_are_reseeded_at_the_farthest_rows():
    X = np.array([[0, 0], [0, 0.1], [10, 10], [10, 10.1], [50, 50]], dtype=np.float32)
    start = np.array([[0, 0], [0, 0], [10, 10]], dtype=np.float32)
    result = lloyd(NumpyBackend(X), start, LloydOptions(max_iter=1, step_growth=1.0),
                   rng=np.random.RandomState(0))
    assert [50, 50] in result.centers.tolist()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n_clusters=0), "'n_clusters' parameter of kmeans must be an int in the range"),
        (dict(max_iter=0), "'max_iter' parameter"),
        (dict(tol=-1.0), "'tol' parameter"),
        (dict(init="kmeans"), "'init' parameter"),
        (dict(n_init=0), "'n_init' parameter"),
        (dict(split_small=2.0), "'split_small' parameter"),
        (dict(pca_components=0), "'pca_components' parameter"),
        (dict(backend="jax"), "'backend' parameter"),
        (dict(init=np.zeros((3, 4))), r"init as an array must have shape \(n_clusters=4"),
        (dict(n_clusters=200), "n_clusters=200 must not exceed n_samples=100"),
    ],
)
def test_kmeans_rejects_bad_parameters(kwargs, message):
    X = _blobs(n=100, d=4)
    kwargs = {"n_clusters": 4, **kwargs}
    with pytest.raises(ValueError, match=message):
        kmeans(X, **kwargs)


def test_kernels_reject_bad_data():
    with pytest.raises(ValueError, match="NaN"):
        kmeans(np.array([[0.0, np.nan], [1.0, 1.0]]), 1)
    with pytest.raises(ValueError, match="2D array"):
        balanced_kmeans(np.zeros(10), 2)
    with pytest.raises(ValueError, match="'reg' parameter of balanced_kmeans"):
        balanced_kmeans(_blobs(n=100, d=4), 2, reg=0)
    with pytest.raises(ValueError, match="backend='numpy' runs on the CPU only"):
        make_backend(np.zeros((2, 2), dtype=np.float32), "numpy", device="cuda")
    # Lists are accepted (converted as scikit-learn does).
    centers = kmeans([[0.0, 0.0], [0.0, 1.0], [5.0, 5.0]], 2, random_state=0).centers
    assert centers.shape == (2, 2)


def test_split_small_keeps_outlier_clusters_and_reseeds_starved_ones():
    rng = np.random.default_rng(0)
    bulk = rng.normal(size=(2000, 8))
    outliers = 60.0 + rng.normal(size=(3, 8))  # far away: a cluster of their own pays
    X = np.r_[bulk, outliers].astype(np.float32)
    # Centre 3 on the outliers (3 rows, under 5% of the mean size), centre 2 starved:
    # out in the bulk's tail, it serves its few rows hardly better than centre 0 would.
    start = np.zeros((4, 8), dtype=np.float32)
    start[1, 0], start[2, 1], start[3] = 1.5, 6.0, outliers[0]
    options = LloydOptions(max_iter=1, split_small=0.05, step_growth=1.0)
    backend = NumpyBackend(X)
    before = backend.assign(start)
    result = lloyd(backend, start, options, rng=np.random.RandomState(0))
    assert np.bincount(before.labels, minlength=4)[[2, 3]].max() < 0.05 * len(X) / 4
    # The outlier centre stays on its rows; the starved one moved (split off a large one).
    np.testing.assert_allclose(result.centers[3], outliers.mean(axis=0), rtol=1e-5)
    assert np.abs(result.centers[2] - start[2]).max() > 0.01


@pytest.mark.parametrize("with_offsets", [False, True])
def test_refine_choice_is_the_exact_argmin(with_offsets):
    # Heavy-tailed rows and centres, rows sitting on centres, a duplicated centre (exact
    # ties: the first column wins): the narrowed choice equals the argmin of the float64
    # squared differences over every centre.
    from sksemantic.cluster._lloyd import refine_choice

    rng = np.random.default_rng(0)
    C = rng.standard_t(3, size=(40, 24)).astype(np.float32)
    C[7] = C[3]
    X = np.r_[rng.standard_t(3, size=(500, 24)), C[rng.integers(0, 40, 100)]].astype(np.float32)
    offsets = rng.normal(size=40) if with_offsets else None
    if with_offsets:
        offsets[7] = offsets[3]
    rows = np.arange(0, len(X), 2)
    d = ((X[rows, None, :].astype(np.float64) - C[None].astype(np.float64)) ** 2).sum(axis=2)
    expected = np.argmin(d - (0 if offsets is None else offsets), axis=1)
    got = refine_choice(X, C, offsets, rows)
    np.testing.assert_array_equal(got, expected)
    assert not np.any(got == 7)  # the duplicate of centre 3 never wins a tie
