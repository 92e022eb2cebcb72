"""IVF built from disk (``storage``): same index as in memory, a working set that does
not grow with the data, files that belong to the index and nothing else."""

import gc
import tracemalloc

import numpy as np
import pytest

from sksemantic.neighbors import IVFIndex, load_index, save_index
from tests._helpers import record_pool_workers


def _memmap(path, n, d, seed=0, n_centers=32):
    """Clustered float32 rows written to a memmap chunk by chunk."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_centers, d)).astype(np.float32)
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
    for s in range(0, n, 50_000):
        m = min(50_000, n - s)
        X[s : s + m] = centers[rng.integers(n_centers, size=m)] + 0.5 * rng.normal(size=(m, d))
    X.flush()
    return np.load(path, mmap_mode="r")


def _ivf_files(directory):
    return sorted(p.name for p in directory.glob("sksemantic-ivf-*.npy"))


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "inner_product"])
def test_disk_build_and_add_equal_the_in_memory_ones(tmp_path, metric):
    X = _memmap(tmp_path / "x.npy", 3000, 16)
    Q = np.asarray(X[::97]) + 0.01
    params = dict(metric=metric, n_lists=20, n_probe=3, random_state=0)
    mem = IVFIndex(**params).fit(np.array(X[:2500]))
    disk = IVFIndex(**params, storage=tmp_path / "store").fit(X[:2500])
    assert isinstance(disk.X_, np.memmap) and not isinstance(mem.X_, np.memmap)
    assert not disk.X_.flags.writeable
    for name in ("X_", "perm_", "sqnorm_", "offsets_", "centers_"):
        np.testing.assert_array_equal(getattr(disk, name), getattr(mem, name), err_msg=name)
    for a, b in zip(mem.query(Q, 5), disk.query(Q, 5), strict=True):
        np.testing.assert_array_equal(a, b)
    for s in (2500, 2700, 2900):
        mem.add(np.array(X[s : s + 200]))
        disk.add(X[s : s + 200])
    assert isinstance(disk.X_, np.memmap) and disk.n_samples_ == 3000
    for name in ("X_", "perm_", "sqnorm_", "offsets_"):
        np.testing.assert_array_equal(getattr(disk, name), getattr(mem, name), err_msg=name)
    for a, b in zip(mem.query(Q, 5), disk.query(Q, 5), strict=True):
        np.testing.assert_array_equal(a, b)
    # Probing every list is exact: the grown index finds what exact search finds.
    s_ex, i_ex, _ = disk.exact_query(Q, 5)
    s, i, _ = disk.query(Q, 5, knob=20)
    np.testing.assert_array_equal(i, i_ex)
    # One file: each add wrote a new one and the replaced ones were removed.
    gc.collect()
    assert len(_ivf_files(tmp_path / "store")) == 1


def test_add_to_memory_index_matches_fit_order(tmp_path):
    # The computed positions of add give the layout a stable sort by list gives.
    X = _memmap(tmp_path / "x.npy", 1000, 8)
    idx = IVFIndex(n_lists=7, random_state=0).fit(X[:600]).add(X[600:800]).add(X[800:])
    lists = np.repeat(np.arange(7), np.diff(idx.offsets_))
    for lst in range(7):
        ids = idx.perm_[lists == lst]
        # Fit-order ids within a list: the fitted points first (ascending), then each
        # added batch in its order.
        np.testing.assert_array_equal(ids, np.sort(ids))
    np.testing.assert_array_equal(idx.X_, idx.vectors(idx.perm_))


def test_disk_build_working_set_does_not_scale_with_data(tmp_path):
    n, d = 200_000, 64
    X = _memmap(tmp_path / "x.npy", n, d)
    data_bytes = n * d * 4
    # 256 lists: the k-means sample (20 rows per list) and its distance blocks are a
    # fixed working set, which at the default 4 sqrt(n) lists is still a large share
    # of data this small (it shrinks as 1 / sqrt(n)).
    index = IVFIndex(n_lists=256, random_state=0, storage=tmp_path / "store")
    tracemalloc.start()
    try:
        index.fit(X[:150_000])
        fit_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        for s in range(150_000, n, 10_000):
            index.add(X[s : s + 10_000])
        add_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(index.X_, np.memmap) and index.n_samples_ == n
    # numpy traces its allocations; the mapped files are not anonymous memory.
    assert fit_peak < 0.3 * 150_000 * d * 4, fit_peak
    assert add_peak < 0.3 * data_bytes, add_peak
    # The in-memory build holds the sorted vectors: at least the data's size.
    tracemalloc.start()
    try:
        IVFIndex(n_lists=256, random_state=0).fit(X[:150_000])
        mem_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert mem_peak > 150_000 * d * 4


def test_save_and_load_map_the_vectors_and_leave_user_files_alone(tmp_path):
    X = _memmap(tmp_path / "x.npy", 200_000, 32)
    store = tmp_path / "store"
    store.mkdir()
    mine = store / "notes.txt"
    mine.write_text("user data")
    clash = store / "sksemantic-ivf-user.npy"  # a user file with our prefix
    np.save(clash, np.arange(3))
    index = IVFIndex(n_lists=10, n_probe=4, random_state=0, storage=store).fit(X)
    created = set(_ivf_files(store)) - {clash.name}
    assert len(created) == 1
    before = index.query(X[:20], 5)
    tracemalloc.start()
    try:
        save_index(index, tmp_path / "saved")
        loaded = load_index(tmp_path / "saved")
        save_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Streamed through fixed buffers (the checksums read 4 MiB at a time).
    assert save_peak < 0.25 * X.nbytes, save_peak
    assert isinstance(loaded.X_, np.memmap)
    for a, b in zip(before, loaded.query(X[:20], 5), strict=True):
        np.testing.assert_array_equal(a, b)
    # Growing the loaded index writes a new file in storage; the save is untouched.
    saved_files = {p: p.read_bytes() for p in (tmp_path / "saved").rglob("*") if p.is_file()}
    loaded.add(X[:10])
    assert loaded.n_samples_ == 200_010
    assert {p: p.read_bytes() for p in saved_files} == saved_files
    # Refit and drop: the index's own files go, the user's stay as they were.
    index.fit(X[:1000])
    del index, loaded, before
    gc.collect()
    assert set(_ivf_files(store)) == {clash.name}
    assert mine.read_text() == "user data"
    np.testing.assert_array_equal(np.load(clash), np.arange(3))
    assert np.load(tmp_path / "x.npy", mmap_mode="r").shape == (200_000, 32)


def test_failed_disk_build_leaves_no_file(tmp_path, monkeypatch):
    X = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)

    def fail(self, block, lists):
        raise KeyboardInterrupt  # interrupted while the vectors are being written

    monkeypatch.setattr(IVFIndex, "_encode_rows", fail)
    with pytest.raises(KeyboardInterrupt):
        IVFIndex(n_lists=3, storage=tmp_path / "s").fit(X)
    assert list((tmp_path / "s").iterdir()) == []


def test_storage_must_be_a_path(tmp_path):
    with pytest.raises(ValueError, match="storage"):
        IVFIndex(n_lists=2, storage=3).fit(np.eye(4, dtype=np.float32))


def test_search_estimator_with_storage_indexes_a_memmap_in_a_bounded_working_set(tmp_path):
    from sksemantic.search import SemanticSearch

    d = 64
    X = _memmap(tmp_path / "x.npy", 220_000, d)

    def fit_peak(n):
        # One thread: with two, the peak depends on how their blocks interleave.
        est = SemanticSearch(algorithm="ivf", n_lists=256, random_state=0, n_jobs=1,
                             storage=tmp_path / "store")
        gc.collect()  # garbage of an earlier fit, freed or not during this one, moved the peak
        tracemalloc.start()
        try:
            est.fit(X[:n])
            return est, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    # The fit and its calibration (exact answers for 300 held-out items, scanned from
    # the file block by block) hold per-item bookkeeping and buffers of fixed size:
    # tripling the data grows the peak by a small fraction of the added bytes. (The
    # lower of two fits: tracemalloc also counts what other threads of the process,
    # left by earlier tests, allocate meanwhile.)
    small = min(fit_peak(60_000)[1] for _ in range(2))
    est, large = fit_peak(180_000)
    large = min(large, fit_peak(180_000)[1])
    assert large - small < 0.15 * (180_000 - 60_000) * d * 4, (small, large)
    tracemalloc.start()
    try:
        for s in range(180_000, 220_000, 10_000):
            est.add(X[s : s + 10_000])
        add_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(est.index_.X_, np.memmap) and est.n_samples_fit_ == 220_000
    assert add_peak < 0.3 * X.nbytes, add_peak
    assert est.get_params()["storage"] == tmp_path / "store"
    ids = est.kneighbors(X[:5], 1, return_distance=False)
    np.testing.assert_array_equal(ids[:, 0], np.arange(5))


def test_ivf_fit_with_one_job_starts_no_threads(monkeypatch):
    # n_jobs=1 is what a caller running fits in parallel processes sets: the list
    # k-means and the calibration's exact answers must not start threads of their own
    # (they did, and made the working-set test above depend on how threads interleave).
    from sksemantic.search import SemanticSearch

    workers = record_pool_workers(monkeypatch)
    X = np.random.default_rng(0).normal(size=(40_000, 64)).astype(np.float32)
    SemanticSearch(algorithm="ivf", n_lists=128, n_jobs=1, random_state=0).fit(X)
    assert workers and max(workers) == 1
