import numpy as np
import pytest

from sksemantic.cluster import auto_pca_components, kmeans, nearest_centroid, principal_directions
from sksemantic.cluster._kmeans import SampleMoments
from tests._helpers import blobs


def test_kmeans_recovers_separated_clusters():
    X, labels = blobs(n_samples=500, n_features=8, n_centers=5, noise=0.05)
    centers, found, inertia, n_iter = kmeans(X, 5, random_state=0)
    # Every true cluster maps to exactly one found cluster.
    pairs = {(a, b) for a, b in zip(labels, found, strict=True)}
    assert len(pairs) == 5
    assert 1 <= n_iter <= 20
    lab, d = nearest_centroid(X, centers)
    np.testing.assert_array_equal(lab, found)
    assert inertia == pytest.approx(float(d.sum()), rel=1e-4)


def test_kmeans_is_reproducible_and_seed_dependent():
    X, _ = blobs(n_samples=400, n_features=8, n_centers=20, noise=1.0)
    a = kmeans(X, 10, random_state=1)[0]
    b = kmeans(X, 10, random_state=1)[0]
    c = kmeans(X, 10, random_state=2)[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_kmeans_reseeds_empty_clusters():
    # Four distinct points, one far away; init puts two centres on the same point.
    X = np.array([[0, 0], [0, 0.1], [10, 10], [10, 10.1], [50, 50]], dtype=np.float32)
    init = np.array([[0, 0], [0, 0], [10, 10]], dtype=np.float32)
    centers, labels, _, _ = kmeans(X, 3, init=init)
    assert len(np.unique(labels)) == 3


def test_kmeans_rejects_too_many_clusters():
    with pytest.raises(ValueError, match="n_clusters=5 must not exceed n_samples=3"):
        kmeans(np.zeros((3, 2), dtype=np.float32), 5)


def _blobs(n, d, n_centers, seed):
    """Well separated blobs."""
    return blobs(n, d, n_centers, noise=1.0, center_scale=3.0, seed=seed)[0]


def test_kmeans_stops_at_tol_close_to_full_convergence():
    X = _blobs(3000, 16, 40, seed=0)
    _, _, inertia, n_iter = kmeans(X, 12, max_iter=300, random_state=0)
    _, _, inertia_full, n_iter_full = kmeans(X, 12, max_iter=300, tol=0, random_state=0)
    assert n_iter < 300 and n_iter <= n_iter_full
    assert inertia <= 1.005 * inertia_full


def test_kmeans_n_init_beats_a_typical_single_seeding():
    X = _blobs(1500, 8, 30, seed=1)
    singles = [kmeans(X, 10, max_iter=100, random_state=s)[2] for s in range(10)]
    best = kmeans(X, 10, max_iter=100, n_init=10, random_state=0)[2]
    assert best <= np.median(singles)
    # Candidates seeded and compared on a subsample, the winner refined on every row.
    sub = kmeans(X, 10, max_iter=100, n_init=10, init_size=500, random_state=0)
    assert sub[2] <= np.median(singles)
    lab, d = nearest_centroid(X, sub[0])
    np.testing.assert_array_equal(lab, sub[1])


def test_kmeans_plusplus_does_not_depend_on_threads():
    from sksemantic.cluster._kmeans import _kmeans_plusplus

    X = _blobs(9000, 8, 50, seed=2)
    one = _kmeans_plusplus(X, 20, np.random.RandomState(0), n_jobs=1)
    two = _kmeans_plusplus(X, 20, np.random.RandomState(0), n_jobs=2)
    np.testing.assert_array_equal(one, two)


def _seeding_potential(X, centers):
    d = ((X[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)
    return float(d.min(axis=1).sum())


def test_batched_kmeans_plusplus_seeds_as_well_as_scikit_learn():
    # A pass draws the candidates of 32 centres from the distances at its start; the
    # greedy choice must keep the seeding as good as one centre per pass.
    from sklearn.cluster import kmeans_plusplus

    from sksemantic.cluster._kmeans import _kmeans_plusplus

    X = _blobs(3000, 16, 120, seed=3)
    ours, theirs, single = [], [], []
    for seed in range(6):
        ours.append(_seeding_potential(X, _kmeans_plusplus(X, 64, np.random.RandomState(seed))))
        single.append(_seeding_potential(
            X, _kmeans_plusplus(X, 64, np.random.RandomState(seed), batch=1)))
        theirs.append(_seeding_potential(X, kmeans_plusplus(X, 64, random_state=seed)[0]))
    assert np.mean(ours) <= 1.015 * np.mean(theirs)
    assert np.mean(ours) <= 1.015 * np.mean(single)


def test_batched_kmeans_plusplus_finds_every_well_separated_blob():
    # As many tight, far-apart blobs as centres: k-means++ one centre per pass puts one
    # centre in each. Candidates drawn from the distances at the start of a pass land
    # in blobs that centres chosen earlier in the pass have since covered; kept, they
    # left 2-5 of 64 blobs without a centre. Rejection sampling draws from the
    # distances now.
    from sksemantic.cluster._kmeans import _kmeans_plusplus

    rng = np.random.default_rng(0)
    centers = 100 * rng.standard_normal((64, 16)).astype(np.float32)
    X = centers[rng.integers(0, 64, 4000)]
    X += 0.01 * rng.standard_normal(X.shape).astype(np.float32)
    for seed in range(5):
        for batch in (32, 1):
            C = _kmeans_plusplus(X, 64, np.random.RandomState(seed), batch=batch)
            blob = np.argmin(((C[:, None, :] - centers[None]) ** 2).sum(axis=2), axis=1)
            assert len(np.unique(blob)) == 64, (seed, batch)


def test_batched_kmeans_plusplus_picks_every_distinct_point():
    # As many centres as distinct points: a candidate that repeats a centre chosen
    # earlier in the pass must not be taken (sequential k-means++ never does).
    from sksemantic.cluster._kmeans import _kmeans_plusplus

    rng = np.random.default_rng(0)
    points = rng.standard_normal((40, 5)).astype(np.float32)
    X = points[rng.permutation(np.repeat(np.arange(40), 25))]
    for seed in range(5):
        centers = _kmeans_plusplus(X, 40, np.random.RandomState(seed))
        assert len(np.unique(centers, axis=0)) == 40
    # Fewer distinct points than centres: still a full set of rows of X.
    centers = _kmeans_plusplus(X, 60, np.random.RandomState(0))
    assert centers.shape == (60, 5)
    assert len(np.unique(centers, axis=0)) == 40


def test_centroid_sums_match_a_direct_sum_and_do_not_depend_on_threads():
    from sksemantic.cluster._kmeans import centroid_sums

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40_000, 64))  # float64: the direct sum is exact enough
    labels = rng.integers(0, 7, len(X))
    sums, counts = centroid_sums(X, labels, 9, n_jobs=2)
    direct = np.stack([X[labels == c].sum(axis=0) for c in range(9)])
    np.testing.assert_allclose(sums, direct, rtol=1e-10, atol=1e-9)
    np.testing.assert_array_equal(counts, np.bincount(labels, minlength=9))
    one, _ = centroid_sums(X, labels, 9, n_jobs=1)
    np.testing.assert_array_equal(one, sums)


def test_nearest_centroid_with_sums_is_the_assignment_and_its_update():
    from sksemantic.cluster._kmeans import _nearest_centroid, centroid_sums

    X = _blobs(30_000, 16, 12, seed=4)
    centers = X[:12].copy()
    lab, d = nearest_centroid(X, centers)
    lab2, d2, sums, counts = _nearest_centroid(
        X, centers, X_sqnorm=np.einsum("ij,ij->i", X, X), with_sums=True, n_jobs=2
    )
    np.testing.assert_array_equal(lab, lab2)
    np.testing.assert_allclose(d, d2, rtol=1e-5, atol=1e-3)
    ref, ref_counts = centroid_sums(X.astype(np.float64), lab, 12)
    np.testing.assert_allclose(sums, ref, rtol=1e-4, atol=1e-2)
    np.testing.assert_array_equal(counts, ref_counts)
    _, _, sums1, _ = _nearest_centroid(X, centers, with_sums=True, n_jobs=1)
    np.testing.assert_array_equal(sums1, sums)


def _weak_blobs(n, d, n_centers, seed=0):
    """Many weak blobs under strong noise: few clusters explain little of the variance
    and Lloyd's centres drift slowly (the deep levels of a residual quantiser)."""
    return blobs(n, d, n_centers, noise=2.0, seed=seed)[0]


def _lloyd(X, start, **options):
    from sksemantic.cluster._lloyd import LloydOptions, NumpyBackend, lloyd

    return lloyd(NumpyBackend(X), start, LloydOptions(**options), rng=np.random.RandomState(0))


def test_over_relaxed_lloyd_gets_further_in_the_same_passes():
    X = _weak_blobs(6000, 48, 300, seed=3)
    start = X[np.random.default_rng(0).choice(len(X), 8, replace=False)]
    relaxed = _lloyd(X, start, max_iter=15, tol=0)
    plain = _lloyd(X, start, max_iter=15, tol=0, step_growth=1.0)  # Lloyd's own steps
    assert relaxed.inertia < plain.inertia
    # The returned labels and inertia belong to the returned centres.
    lab, d = nearest_centroid(X, relaxed.centers)
    np.testing.assert_array_equal(lab, relaxed.labels)
    assert relaxed.inertia == pytest.approx(float(d.sum(dtype=np.float64)), rel=1e-5)


class _Recording:
    """A numpy backend that records the inertia of every pass."""

    def __init__(self, X):
        from sksemantic.cluster._lloyd import NumpyBackend

        self.inner = NumpyBackend(X)
        self.X = X
        self.seen = []

    def assign(self, centers, offsets=None):
        out = self.inner.assign(centers, offsets)
        diff = self.X.astype(np.float64) - centers[out.labels]
        self.seen.append(float((diff**2).sum()))
        return out


def test_over_relaxed_lloyd_never_keeps_a_worse_step():
    from sksemantic.cluster._kmeans import init_centers
    from sksemantic.cluster._lloyd import LloydOptions, lloyd

    X = _weak_blobs(6000, 48, 300, seed=4)
    backend = _Recording(X)
    start = init_centers(X, 8, random_state=0)
    result = lloyd(backend, start, LloydOptions(max_iter=40, tol=0), rng=np.random.RandomState(0))
    # Some extrapolated steps were undone (the inertia of a pass rose) ...
    seen = backend.seen
    assert any(b > a for a, b in zip(seen, seen[1:], strict=False))
    # ... yet the result is no worse than the best centres any pass evaluated, and the
    # inertia computed from the sums is the direct one.
    assert result.inertia <= min(seen) * (1 + 1e-9)
    assert result.inertia == pytest.approx(seen[-1], rel=1e-9)


def test_kmeans_restarts_do_not_depend_on_threads():
    X = _blobs(4000, 8, 30, seed=5)
    two = kmeans(X, 6, n_init=4, init_size=1000, random_state=0, n_jobs=2)
    one = kmeans(X, 6, n_init=4, init_size=1000, random_state=0, n_jobs=1)
    np.testing.assert_array_equal(one.centers, two.centers)
    np.testing.assert_array_equal(one.labels, two.labels)


def test_total_sum_of_squares_from_row_norms_matches_float64():
    from sksemantic.cluster._lloyd import _total_sum_of_squares

    X = _blobs(5000, 24, 10, seed=6) + 3.0  # an offset mean, as on a first level
    x_sq = np.einsum("ij,ij->i", X, X, dtype=np.float64)
    X64 = X.astype(np.float64)
    reference = float(((X64 - X64.mean(axis=0)) ** 2).sum())
    assert _total_sum_of_squares(X, x_sq) == pytest.approx(reference, rel=1e-5)


# --------------------------------------------------------------------- projected start
def test_principal_directions_match_scikit_learn_pca():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(0)
    X = (rng.standard_normal((3000, 40)) * np.linspace(5, 0.5, 40) + 3.0).astype(np.float32)
    V = principal_directions(X, 5, random_state=0)
    assert V.shape == (40, 5) and V.dtype == np.float32
    np.testing.assert_allclose(V.T @ V, np.eye(5), atol=1e-5)
    overlap = np.abs(np.sum(V * PCA(5).fit(X).components_.T, axis=0))
    assert overlap.min() >= 0.99
    with pytest.raises(ValueError, match="n_components=41 must be between 1 and n_features=40"):
        principal_directions(X, 41)


def test_auto_pca_components_projects_only_wide_data_with_few_clusters():
    assert auto_pca_components(10, 768) == 128
    assert auto_pca_components(10, 384) == 64
    assert auto_pca_components(64, 768) == 256
    assert auto_pca_components(256, 768) is None
    assert auto_pca_components(4, 16) is None


def test_projected_start_reaches_a_converged_inertia_in_fewer_full_passes():
    X = _weak_blobs(4000, 192, 200)
    plain = kmeans(X, 6, max_iter=100, random_state=0)
    converged = kmeans(X, 6, max_iter=1000, tol=1e-7, random_state=0)
    projected = kmeans(X, 6, max_iter=100, pca_components=32, random_state=0)
    assert projected[3] < converged[3] / 2
    assert projected[2] <= converged[2] * 1.0005
    assert projected[2] < plain[2]
    # The result is a k-means fixed point of X, not of the projection.
    labels, d = nearest_centroid(X, projected[0])
    np.testing.assert_array_equal(labels, projected[1])
    assert projected[2] == pytest.approx(float(d.sum(dtype=np.float64)), rel=1e-5)


def test_projected_start_is_reproducible_and_off_when_it_cannot_project():
    X = _weak_blobs(1500, 96, 200)
    a = kmeans(X, 5, pca_components=16, n_init=3, random_state=3)
    b = kmeans(X, 5, pca_components=16, n_init=3, random_state=3)
    np.testing.assert_array_equal(a[0], b[0])
    # As many directions as features: nothing to project, the plain fit.
    full = kmeans(X, 5, pca_components=96, random_state=3)
    np.testing.assert_array_equal(full[0], kmeans(X, 5, random_state=3)[0])
    # Given centres are projected too.
    init = X[:5].copy()
    c = kmeans(X, 5, init=init, pca_components=16, random_state=0)
    assert c[0].shape == (5, 96) and len(np.unique(c[1])) == 5


def test_sample_moments_follow_the_residuals_exactly():
    X = _weak_blobs(3000, 48, 200)
    moments = SampleMoments(X, sample_size=1000, random_state=0)
    np.testing.assert_allclose(moments.covariance(), np.cov(X[moments.rows].T, bias=True),
                               rtol=1e-4, atol=1e-3)
    for k in (5, 3):
        centers, labels, _, _ = kmeans(X, k, random_state=0)
        moments.subtract(X, centers, labels)
        X = X - centers[labels]
        expected = np.cov(X[moments.rows].astype(np.float64).T, bias=True)
        np.testing.assert_allclose(moments.covariance(), expected, rtol=1e-4, atol=1e-3)


def test_pca_components_as_an_array_is_checked():
    X = _weak_blobs(500, 32, 200)
    basis = principal_directions(X, 8)
    centers = kmeans(X, 4, pca_components=basis, random_state=0)[0]
    assert centers.shape == (4, 32)
    with pytest.raises(ValueError, match="pca_components as an array must have shape"):
        kmeans(X, 4, pca_components=basis[:10], random_state=0)
