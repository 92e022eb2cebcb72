"""RQKMeansEncoder: codes, reconstruction, determinism, backends, persistence, bad input."""

import pickle

import joblib
import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sksemantic import RQKMeansEncoder as TopLevelEncoder
from sksemantic.quantization import RQKMeansEncoder
from tests._helpers import blobs, child_env, record_pool_workers, run_python


@pytest.fixture(scope="module")
def X():
    return blobs(2000, 16, 20, noise=1.0, center_scale=4.0)[0]


@pytest.fixture(scope="module")
def fitted(X):
    return RQKMeansEncoder(n_levels=3, n_clusters=16, random_state=0).fit(X)


def test_top_level_export():
    assert TopLevelEncoder is RQKMeansEncoder


def test_codes_and_reconstruction(X, fitted):
    codes = fitted.transform(X)
    assert codes.shape == (len(X), 3) and codes.dtype == np.int64
    assert codes.min() >= 0 and codes.max() < 16
    assert fitted.n_clusters_ == [16, 16, 16]
    assert [c.shape for c in fitted.codebooks_] == [(16, 16)] * 3
    manual = sum(fitted.codebooks_[level][codes[:, level]] for level in range(3))
    np.testing.assert_array_equal(fitted.inverse_transform(codes), manual)
    # Each code is the nearest codeword to the residual left by the levels before.
    residual = X - fitted.codebooks_[0][codes[:, 0]]
    d = ((residual[:, None, :] - fitted.codebooks_[1][None]) ** 2).sum(-1)
    assert np.mean(d.argmin(axis=1) == codes[:, 1]) > 0.999
    err = -np.mean((X.astype(np.float64) - manual) ** 2)
    assert fitted.score(X) == pytest.approx(err, rel=1e-5)


def test_more_levels_reconstruct_better(X):
    scores = [
        RQKMeansEncoder(n_levels=L, n_clusters=16, random_state=0).fit(X).score(X)
        for L in (1, 2, 3)
    ]
    assert scores[0] < scores[1] < scores[2] < 0


def test_first_level_matches_sklearn_kmeans(X):
    enc = RQKMeansEncoder(n_levels=1, n_clusters=20, random_state=0).fit(X)
    ours = -enc.score(X) * X.shape[1] * len(X)
    theirs = KMeans(20, n_init=1, random_state=0).fit(X).inertia_
    assert ours <= 1.05 * theirs


def test_few_codewords_match_best_of_ten_kmeans():
    # n_init="auto" restarts each level when codewords are few: one level must be as
    # good as scikit-learn's best of 10 full runs (semantic-id's setting), up to 1%.
    X = blobs(1500, 8, 40, noise=1.0, center_scale=4.0, seed=3)[0]
    enc = RQKMeansEncoder(n_levels=1, n_clusters=6, random_state=0).fit(X)
    ours = -enc.score(X) * X.shape[1] * len(X)
    theirs = KMeans(6, n_init=10, max_iter=100, random_state=0).fit(X).inertia_
    assert ours <= 1.01 * theirs
    single = RQKMeansEncoder(n_levels=1, n_clusters=6, n_init=1, random_state=0)
    assert enc._n_init(6, False) == 10 and single._n_init(6, False) == 1
    assert enc._n_init(256, False) == 1
    # Projected levels try fewer seedings (each runs to a tighter tol).
    assert enc._n_init(6, True) == 3 and single._n_init(6, True) == 1


def _debian():
    from sksemantic.datasets import load_debian_packages

    return np.ascontiguousarray(load_debian_packages().data, dtype=np.float32)


def test_refinement_lowers_the_error_of_the_greedy_codes():
    # Real sentence embeddings (the shipped corpus): joint refinement of the codebooks
    # must lower the reconstruction error of the codes transform gives (by about 1%
    # here; asserted: at least 0.5%).
    X = _debian()
    greedy = RQKMeansEncoder(n_levels=3, n_clusters=16, refine_iter=0, random_state=0).fit(X)
    refined = RQKMeansEncoder(n_levels=3, n_clusters=16, random_state=0).fit(X)
    assert greedy.n_refine_iter_ == 0 and 1 <= refined.n_refine_iter_ <= 3
    assert -refined.score(X) <= 0.995 * -greedy.score(X)
    # inertia_ is the training error of the codes transform gives, refined or not.
    for est in (greedy, refined):
        codes = est.transform(X)
        err = X.astype(np.float64) - est.inverse_transform(codes)
        assert est.inertia_ == pytest.approx(float((err**2).sum()), rel=1e-4)


def test_refinement_keeps_codes_greedy_and_skips_balanced_fits(X):
    enc = RQKMeansEncoder(n_levels=2, n_clusters=8, refine_iter=5, random_state=0).fit(X)
    assert enc.n_refine_iter_ <= 5
    codes = enc.transform(X)
    d0 = ((X[:, None, :] - enc.codebooks_[0][None]) ** 2).sum(-1)
    assert np.mean(d0.argmin(axis=1) == codes[:, 0]) > 0.999
    balanced = RQKMeansEncoder(n_levels=2, n_clusters=8, balanced=True, random_state=0).fit(X)
    assert balanced.n_refine_iter_ == 0
    with pytest.raises(ValueError, match="refine_iter"):
        RQKMeansEncoder(refine_iter=-1).fit(X)


def test_encode_writes_the_residual_it_leaves(X, fitted):
    from sksemantic.quantization._kernels import encode_numpy

    out = np.empty_like(X)
    codes = encode_numpy(X, fitted.codebooks_, residual_out=out)
    np.testing.assert_array_equal(codes, fitted.transform(X))
    np.testing.assert_allclose(out, X - fitted.inverse_transform(codes), atol=1e-4)


def test_bad_n_init(X):
    with pytest.raises(ValueError, match="n_init"):
        RQKMeansEncoder(n_clusters=4, n_init=0).fit(X)


def test_bad_pca_components(X):
    with pytest.raises(ValueError, match="pca_components"):
        RQKMeansEncoder(n_clusters=4, pca_components=0).fit(X)
    with pytest.raises(ValueError, match="pca_components"):
        RQKMeansEncoder(n_clusters=4, pca_components="all").fit(X)


def test_projected_start_lowers_the_error_on_wide_data():
    # pca_components="auto" projects 6 codewords on 192 features onto 32 directions.
    # Many centres under strong noise: few codewords explain little, Lloyd is slow.
    X, _ = blobs(4000, 192, 200, noise=2.0)
    for seed in range(3):
        # tol as before the default became 1e-5: the comparison, not convergence.
        plain = RQKMeansEncoder(n_levels=2, n_clusters=6, pca_components=None, tol=1e-4,
                                random_state=seed).fit(X)
        projected = RQKMeansEncoder(n_levels=2, n_clusters=6, tol=1e-4,
                                    random_state=seed).fit(X)
        assert projected.score(X) > plain.score(X)
        # The full-width passes only polish.
        assert projected.n_iter_ < plain.n_iter_
    # An int at or above n_features is no projection: the plain fit.
    wide = RQKMeansEncoder(n_levels=2, n_clusters=6, pca_components=192, tol=1e-4,
                           random_state=2)
    np.testing.assert_array_equal(wide.fit(X).codebooks_[1], plain.codebooks_[1])


@pytest.mark.parametrize(
    "params",
    [
        dict(n_clusters=8),  # plain, restarts on the seeding sample
        dict(n_clusters=6, pca_components=16),  # projected start
        dict(n_clusters=8, balanced=True),
        dict(n_clusters=[8, 4], n_init=1, max_samples=800),
    ],
    ids=["plain", "projected", "balanced", "subsampled"],
)
def test_torch_backend_on_cpu_gives_the_numpy_codes(params):
    # The same data (float32) and seed: the same codebooks and codes on either backend.
    pytest.importorskip("torch")
    X, _ = blobs(1000, 32, 200, noise=2.0)
    numpy_fit = RQKMeansEncoder(n_levels=2, random_state=0, **params).fit(X)
    torch_fit = RQKMeansEncoder(n_levels=2, random_state=0, backend="torch", **params).fit(X)
    for a, b in zip(numpy_fit.codebooks_, torch_fit.codebooks_, strict=True):
        np.testing.assert_array_equal(a, b)
    assert numpy_fit.n_iter_per_level_ == torch_fit.n_iter_per_level_
    np.testing.assert_array_equal(torch_fit.transform(X), numpy_fit.transform(X))


def test_bad_backend(X):
    with pytest.raises(ValueError, match="backend"):
        RQKMeansEncoder(n_clusters=4, backend="jax").fit(X)
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device to pair with backend='numpy'")
    with pytest.raises(ValueError, match="backend='numpy' runs on the CPU only"):
        RQKMeansEncoder(n_clusters=4, backend="numpy", device="cuda").fit(X)


def test_per_level_n_clusters(X):
    enc = RQKMeansEncoder(n_levels=3, n_clusters=[8, 4, 2], random_state=0).fit(X)
    assert enc.n_clusters_ == [8, 4, 2]
    assert (enc.transform(X).max(axis=0) < [8, 4, 2]).all()
    with pytest.raises(ValueError, match="one per level"):
        RQKMeansEncoder(n_levels=3, n_clusters=[8, 4]).fit(X)


def test_same_seed_same_codebooks(X):
    a = RQKMeansEncoder(n_levels=2, n_clusters=8, random_state=3).fit(X)
    b = RQKMeansEncoder(n_levels=2, n_clusters=8, random_state=3).fit(X)
    c = RQKMeansEncoder(n_levels=2, n_clusters=8, random_state=4).fit(X)
    for ca, cb in zip(a.codebooks_, b.codebooks_, strict=True):
        np.testing.assert_array_equal(ca, cb)
    assert any(not np.array_equal(ca, cc) for ca, cc in zip(a.codebooks_, c.codebooks_, strict=True))


def test_subsampled_training(X):
    enc = RQKMeansEncoder(n_levels=2, n_clusters=8, max_samples=500, random_state=0).fit(X)
    full = RQKMeansEncoder(n_levels=2, n_clusters=8, max_samples=None, random_state=0).fit(X)
    assert enc.score(X) >= 1.15 * full.score(X)  # scores are negative: at most 15% worse


def test_torch_and_numpy_give_same_codes(X, fitted):
    pytest.importorskip("torch")
    torch_encoder = pickle.loads(pickle.dumps(fitted)).set_params(backend="torch")
    np.testing.assert_array_equal(torch_encoder.transform(X), fitted.transform(X))


def test_near_ties_are_decided_exactly():
    # Two codewords equidistant up to float32 rounding from every row: the exact
    # float64 decision must be the same whichever product computed the distances.
    pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 32)).astype(np.float32)
    enc = RQKMeansEncoder(n_levels=1, n_clusters=4, random_state=0).fit(X)
    cb = enc.codebooks_[0]
    cb[1] = cb[0] + np.float32(1e-6)
    expected = enc.transform(X)
    enc.set_params(backend="torch")
    np.testing.assert_array_equal(enc.transform(X), expected)


@pytest.mark.parametrize("random_state", [0, 1, 2, 3])
def test_balanced_levels_are_near_equal(random_state):
    # Several seeds: with some, the last Lloyd step moves a centre far from its points
    # and the warm-started offsets no longer balance the level (fixed by re-annealing).
    rng = np.random.default_rng(0)
    sizes = [4000, 1000, 300, 100, 50, 30, 20]
    X = np.concatenate(
        [rng.normal(rng.normal(0, 5, 8), 1, (s, 8)) for s in sizes]
    ).astype(np.float32)
    plain = RQKMeansEncoder(n_levels=2, n_clusters=8, random_state=random_state).fit_transform(X)
    enc = RQKMeansEncoder(
        n_levels=2, n_clusters=8, balanced=True, random_state=random_state
    ).fit(X)
    bal = enc.transform(X)
    assert enc.balance_offsets_ is not None and len(enc.balance_offsets_) == 2
    for level in range(2):
        c_plain = np.bincount(plain[:, level], minlength=8)
        c_bal = np.bincount(bal[:, level], minlength=8)
        assert c_bal.std() / c_bal.mean() < 0.2
        # Where the plain level is uneven (level 0 always: blobs of 20 to 4,000 rows),
        # the balanced one must be clearly more even. The plain level 1 (isotropic
        # residuals) is sometimes near-equal already, and then there is nothing to gain.
        if c_plain.std() / c_plain.mean() > 0.2:
            assert c_bal.std() < 0.7 * c_plain.std()
    plain_level0 = np.bincount(plain[:, 0], minlength=8)
    assert plain_level0.std() / plain_level0.mean() > 0.5  # the case above is tested


def test_balanced_levels_are_capped_plain_levels_converge(X):
    # Plain levels stop at tol well before the max_iter cap; balanced levels (whose
    # inertia jitters with the offsets) run at most 20 iterations.
    plain = RQKMeansEncoder(n_levels=2, n_clusters=8, n_init=1, random_state=0).fit(X)
    assert max(plain.n_iter_per_level_) < 100
    bal = RQKMeansEncoder(n_levels=2, n_clusters=8, balanced=True, random_state=0).fit(X)
    assert max(bal.n_iter_per_level_) <= 20


def test_ids_round_trip(X, fitted):
    ids = fitted.to_ids(X[:5], fmt="token")
    assert ids[0].startswith("<a_")
    np.testing.assert_array_equal(fitted.from_ids(ids, fmt="token"), fitted.transform(X[:5]))
    with pytest.raises(ValueError, match="out of range"):
        fitted.from_ids(["99-0-0"])


def test_feature_names_and_pipeline(X):
    pipe = make_pipeline(StandardScaler(), RQKMeansEncoder(n_levels=2, n_clusters=4, random_state=0))
    codes = pipe.fit_transform(X)
    assert codes.shape == (len(X), 2)
    assert pipe.get_feature_names_out().tolist() == [
        "rqkmeansencoder_level0",
        "rqkmeansencoder_level1",
    ]


def test_grid_search_prefers_better_reconstruction(X):
    search = GridSearchCV(
        RQKMeansEncoder(n_levels=2, random_state=0), {"n_clusters": [2, 16]}, cv=3
    ).fit(X)
    assert search.best_params_ == {"n_clusters": 16}


def test_verbose_reports_progress(X, capsys):
    RQKMeansEncoder(n_levels=2, n_clusters=4, random_state=0, verbose=1).fit(X)
    assert "RQKMeansEncoder levels: 2/2" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_input(X, bad):
    Xb = X.copy()
    Xb[3, 2] = bad
    with pytest.raises(ValueError, match="NaN|infinity"):
        RQKMeansEncoder(n_clusters=4).fit(Xb)


def test_fewer_samples_than_clusters(X):
    with pytest.raises(ValueError, match="n_clusters=16 exceeds n_samples=10"):
        RQKMeansEncoder(n_clusters=16).fit(X[:10])


def test_feature_count_mismatch(X, fitted):
    with pytest.raises(ValueError, match="features"):
        fitted.transform(X[:, :5])


def test_bad_codes_for_inverse_transform(fitted):
    with pytest.raises(ValueError, match=r"out of range: codes\[1, 2\] = 16"):
        fitted.inverse_transform([[0, 0, 0], [0, 0, 16]])
    with pytest.raises(ValueError, match="out of range"):
        fitted.inverse_transform([[0, -1, 0]])
    with pytest.raises(ValueError, match="expected 3"):
        fitted.inverse_transform([[0, 0]])
    with pytest.raises(TypeError, match="integers"):
        fitted.inverse_transform([[0.5, 0, 0]])


def test_unavailable_device_is_a_clear_error(X):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(ValueError, match="no cuda device"):
        RQKMeansEncoder(n_clusters=4, device="cuda").fit(X)
    with pytest.raises(ValueError, match="device must be"):
        RQKMeansEncoder(n_clusters=4, device="tpu").fit(X)


def test_pickle_keeps_codes(X, fitted):
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.transform(X), fitted.transform(X))


_LOAD = """
import sys, joblib, numpy as np
enc = joblib.load(sys.argv[1])
np.save(sys.argv[2], enc.transform(np.load(sys.argv[3])))
"""


def _codes_in_new_process(tmp_path, enc, X):
    joblib.dump(enc, tmp_path / "enc.joblib")
    np.save(tmp_path / "X.npy", X)
    run_python("-c", _LOAD, tmp_path / "enc.joblib", tmp_path / "out.npy", tmp_path / "X.npy",
               env=child_env(CUDA_VISIBLE_DEVICES=""))  # a machine without a GPU
    return np.load(tmp_path / "out.npy")


def test_joblib_round_trip_in_new_process(tmp_path, X, fitted):
    np.testing.assert_array_equal(_codes_in_new_process(tmp_path, fitted, X), fitted.transform(X))


def test_gpu_fitted_model_encodes_on_cpu_only_machine(tmp_path, X, fitted):
    # A model fitted on a GPU has device="cuda" and numpy codebooks; on a machine
    # without one it must load and encode with numpy, giving the same codes.
    gpu_model = pickle.loads(pickle.dumps(fitted))
    gpu_model.set_params(device="cuda")
    gpu_model.device_ = "cuda"
    np.testing.assert_array_equal(_codes_in_new_process(tmp_path, gpu_model, X), fitted.transform(X))


def _family(shape, n=1500, d=16, k=8, seed=0):
    """Small members of benchmarks/bench_kmeans_family.py's data family."""
    rng = np.random.default_rng(seed)
    n_centers = {"blobs_many": 8 * k, "blobs_few": max(2, k // 8)}.get(shape, 2 * k)
    centers = rng.standard_normal((n_centers, d))
    noise = rng.standard_t(3, (n, d)) if shape == "student_t" else rng.standard_normal((n, d))
    X = centers[rng.integers(0, n_centers, n)] + 0.8 * noise
    if shape == "scales":
        X *= np.geomspace(1e-3, 1e3, d)
    return X.astype(np.float32)


def _sklearn_residual_error(X, n_levels, k, seed):
    from threadpoolctl import threadpool_limits

    R = X.astype(np.float64)
    with threadpool_limits(1):  # OpenMP threads on a busy machine only slow it down
        for level in range(n_levels):
            km = KMeans(k, n_init=1, max_iter=100, random_state=seed + level).fit(R)
            R = R - km.cluster_centers_[km.labels_]
    return float((R**2).sum())


@pytest.mark.parametrize("shape", ["blobs_many", "student_t", "scales"])
def test_default_error_is_no_worse_than_sklearn_per_level(shape):
    # The reference: one scikit-learn KMeans(n_init=1) per level on the residuals.
    X = _family(shape)
    enc = RQKMeansEncoder(n_levels=3, n_clusters=8, random_state=0).fit(X)
    ours = -enc.score(X) * X.size
    assert ours <= 1.002 * _sklearn_residual_error(X, 3, 8, seed=0)


def test_transform_refuses_rows_whose_squares_overflow():
    # Codes of such rows came out all equal (every distance was inf): a silent wrong result.
    X = np.random.default_rng(0).normal(size=(200, 8)).astype(np.float32)
    enc = RQKMeansEncoder(n_levels=2, n_clusters=4, random_state=0).fit(X)
    with pytest.raises(ValueError, match="rescale X"):
        enc.transform(X * 1e20)
    assert enc.transform(X * 1e3).shape == (200, 2)  # large but safe values still encode


@pytest.mark.parametrize("params", [{"n_clusters": [8, 64]}, {"n_clusters": 64, "balanced": True}])
def test_n_jobs_bounds_the_threads_and_not_the_codes(monkeypatch, params):
    # Every parallel loop of fit and transform (the projected start, the restarts, the
    # passes, the refinement, the encoding) takes the encoder's n_jobs: a caller that
    # fits encoders in parallel processes sets 1 and gets no threads of ours.
    from sksemantic.utils import _parallel

    workers = record_pool_workers(monkeypatch)
    monkeypatch.setattr(_parallel, "_allowed_cpus", lambda: 2)
    X = np.random.default_rng(0).normal(size=(40_000, 128)).astype(np.float32)
    codes = {}
    for n_jobs in (None, 1):
        workers.clear()
        enc = RQKMeansEncoder(n_levels=2, n_jobs=n_jobs, random_state=0, **params).fit(X)
        codes[n_jobs] = enc.transform(X)
        assert workers and max(workers) == (2 if n_jobs is None else 1)
    np.testing.assert_array_equal(codes[1], codes[None])


def test_ivf_rq_index_gives_its_n_jobs_to_its_encoder():
    from sksemantic.neighbors import IVFRQIndex

    X = np.random.default_rng(0).normal(size=(3000, 16)).astype(np.float32)
    index = IVFRQIndex(n_lists=8, code_size=2, n_jobs=1, random_state=0).fit(X)
    assert index.encoder_.n_jobs == 1
