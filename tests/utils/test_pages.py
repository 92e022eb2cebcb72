"""Releasing a memory map's pages keeps every byte of it, and bounds the resident set;
new arrays can be kept off huge pages."""

import sys

import numpy as np
import pytest

from sksemantic.utils import release_pages, take_rows

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and madvise")


def _rss_file_mib():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("RssFile:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


@linux
@pytest.mark.parametrize("mode", ["r", "r+"])
def test_released_pages_read_back_unchanged(tmp_path, mode):
    rng = np.random.default_rng(0)
    data = rng.standard_normal((4096, 64)).astype(np.float32)
    path = tmp_path / "x.npy"
    np.save(path, data)
    X = np.load(path, mmap_mode=mode)
    if mode == "r+":
        X[:10] = 7.0  # written through the map, not yet flushed
        data[:10] = 7.0
    release_pages(np.asarray(X))  # a view, as check_array hands it on
    np.testing.assert_array_equal(X, data)
    if mode == "r+":
        X.flush()
        del X
        np.testing.assert_array_equal(np.load(path), data)


@linux
def test_written_map_keeps_its_writes(tmp_path):
    path = tmp_path / "w.npy"
    W = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(2048, 128))
    W[:] = np.arange(2048 * 128, dtype=np.float32).reshape(2048, 128)
    release_pages(W[100:900])
    release_pages(W)
    W.flush()
    del W
    np.testing.assert_array_equal(
        np.load(path), np.arange(2048 * 128, dtype=np.float32).reshape(2048, 128)
    )


@linux
def test_copy_on_write_map_is_left_alone(tmp_path):
    # A private map keeps its changes only in its own pages: releasing them would
    # silently undo the user's writes.
    path = tmp_path / "c.npy"
    np.save(path, np.zeros((4096, 64), dtype=np.float32))
    C = np.load(path, mmap_mode="c")
    C[:] = 3.0
    release_pages(C)
    assert np.all(C == 3.0)


@linux
def test_release_shrinks_the_resident_set(tmp_path):
    path = tmp_path / "big.npy"
    np.save(path, np.ones((16384, 1024), dtype=np.float32))  # 64 MiB
    X = np.load(path, mmap_mode="r")
    before = _rss_file_mib()
    assert float(X.sum(dtype=np.float64)) == 16384 * 1024  # touches every page
    touched = _rss_file_mib()
    release_pages(X)
    after = _rss_file_mib()
    assert touched - before > 48
    assert after - before < 8


def test_in_memory_arrays_and_empty_maps_are_ignored(tmp_path):
    a = np.ones((10, 3))
    release_pages(a)
    release_pages(a[:0])
    assert a.sum() == 30


@pytest.mark.parametrize("mmap_mode", [None, "r"])
def test_take_rows_gathers_as_fancy_indexing(tmp_path, mmap_mode):
    data = np.random.default_rng(1).normal(size=(5000, 7)).astype(np.float32)
    np.save(tmp_path / "d.npy", data)
    X = np.load(tmp_path / "d.npy", mmap_mode=mmap_mode)
    rows = np.sort(np.random.default_rng(2).choice(5000, 1234, replace=False))
    got = take_rows(X, rows, step=100)
    assert not isinstance(got, np.memmap)
    np.testing.assert_array_equal(got, data[rows])


@linux
def test_disk_build_does_not_keep_the_input_resident(tmp_path):
    from sksemantic.neighbors import IVFIndex

    rng = np.random.default_rng(0)
    path = tmp_path / "X.npy"
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(65536, 256))
    for s in range(0, 65536, 8192):
        X[s : s + 8192] = rng.standard_normal((8192, 256), dtype=np.float32)
    X.flush()
    del X
    X = np.load(path, mmap_mode="r")  # 64 MiB
    before = _rss_file_mib()
    index = IVFIndex(n_lists=64, random_state=0, storage=tmp_path / "store").fit(X)
    # Neither the input nor the list-sorted copy written next to the index stays mapped.
    assert _rss_file_mib() - before < 16
    s, i, _ = index.query(np.asarray(X[:5]), 1, knob=64)
    np.testing.assert_array_equal(i[:, 0], np.arange(5))


def test_check_mapped_finds_a_nan_in_any_chunk(tmp_path):
    from sklearn.utils import check_array

    from sksemantic.utils import check_mapped

    data = np.ones((1000, 4), dtype=np.float32)
    data[777, 2] = np.nan
    np.save(tmp_path / "nan.npy", data)
    X = np.load(tmp_path / "nan.npy", mmap_mode="r")
    with pytest.raises(ValueError, match="Input X contains NaN"):
        check_mapped(check_array, X, dtype=[np.float32], step=100)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        check_mapped(check_array, data)
    ok = check_mapped(check_array, np.load(tmp_path / "nan.npy", mmap_mode="r")[:700], step=64)
    assert ok.shape == (700, 4)


def test_estimators_validate_a_memory_map_as_an_array(tmp_path):
    from sksemantic.graph import SemanticGraphTransformer
    from sksemantic.search import SemanticSearch

    data = np.random.default_rng(0).normal(size=(300, 8)).astype(np.float32)
    data[5] = 0.0
    np.save(tmp_path / "d.npy", data)
    X = np.load(tmp_path / "d.npy", mmap_mode="r")
    with pytest.warns(UserWarning, match="all-zero"):
        mapped = SemanticSearch(algorithm="brute").fit(X).kneighbors(data[:20], 3)[1]
    with pytest.warns(UserWarning, match="1 all-zero"):
        SemanticGraphTransformer(n_neighbors=3, algorithm="brute").fit(X)
    with pytest.warns(UserWarning, match="all-zero"):
        in_memory = SemanticSearch(algorithm="brute").fit(data).kneighbors(data[:20], 3)[1]
    np.testing.assert_array_equal(mapped, in_memory)
    bad = data.copy()
    bad[299, 0] = np.inf
    np.save(tmp_path / "bad.npy", bad)
    with pytest.raises(ValueError, match="infinity"):
        SemanticSearch().fit(np.load(tmp_path / "bad.npy", mmap_mode="r"))


def _vm_flags(address):
    """The VmFlags of the mapping of this process that holds ``address``."""
    flags, inside = None, False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()[0]
            if "-" in head and not head.endswith(":"):
                lo, hi = (int(x, 16) for x in head.split("-"))
                inside = lo <= address < hi
            elif inside and head == "VmFlags:":
                flags = line.split()[1:]
    return flags


@linux
def test_small_pages_advises_ordinary_pages_and_keeps_the_values():
    from sksemantic.utils import small_pages

    a = np.empty((1024, 1024), dtype=np.float32)  # 4 MiB: its own mapping
    assert "nh" not in _vm_flags(a.ctypes.data + 8192)
    assert small_pages(a) is a
    assert "nh" in _vm_flags(a.ctypes.data + 8192)
    a[:] = 3.0
    assert (a == 3.0).all()
    b = small_pages(np.ones(10))  # less than a page: left alone
    assert (b == 1.0).all()


# -- reuse_freed_memory ------------------------------------------------------------
_FAULTS_SCRIPT = """
import resource
import numpy as np
from sksemantic.utils import reuse_freed_memory

def faults():
    r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(100):
        a = np.empty(2**18, dtype=np.float32)  # 1 MiB, above glibc's fixed mmap threshold
        a.fill(1.0)
        del a
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0

before = faults()
with reuse_freed_memory():
    inside = faults()
after = faults()
print(before, inside, after)
"""


@linux
def test_reuse_freed_memory_stops_faults_where_dask_fixes_the_thresholds():
    # A dask worker's environment fixes glibc's trim threshold (and with it the mmap
    # threshold): every 1 MiB temporary is mapped and faulted in afresh. Within the
    # block it is served from freed memory; after it, the worker's setting is back.
    import os
    import subprocess

    from sksemantic.utils._pages import _glibc_malloc

    if _glibc_malloc() is None:
        pytest.skip("not glibc")
    env = dict(os.environ, MALLOC_TRIM_THRESHOLD_="65536")
    out = subprocess.run([sys.executable, "-c", _FAULTS_SCRIPT], env=env, check=True,
                         capture_output=True, text=True).stdout
    before, inside, after = map(int, out.split())
    assert before >= 100 * 200  # 256 pages per array, faulted in each time
    assert inside < before / 10
    assert after > before / 2


class _FakeMalloc:
    def __init__(self):
        self.calls = []

    def mallopt(self, param, value):
        self.calls.append(("mallopt", param, value))
        return 1

    def malloc_trim(self, pad):
        self.calls.append(("trim", pad))
        return 1


def test_reuse_freed_memory_restores_the_environment_setting(monkeypatch):
    from sksemantic.utils import _pages

    fake = _FakeMalloc()
    monkeypatch.setattr(_pages, "_glibc_malloc", lambda: (fake.mallopt, fake.malloc_trim))
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    monkeypatch.setattr(_pages, "_TRIM_AFTER", 0.0)  # every block counts as long
    with _pages.reuse_freed_memory():
        with _pages.reuse_freed_memory():  # nested: set once, restored once
            pass
        assert [c[0] for c in fake.calls] == ["mallopt", "mallopt"]
    assert fake.calls[2:] == [("mallopt", _pages._M_TRIM_THRESHOLD, 65536),
                              ("mallopt", _pages._M_MMAP_THRESHOLD, 128 * 1024),
                              ("trim", 0)]
    # An error inside still restores the setting.
    fake.calls.clear()
    with pytest.raises(RuntimeError), _pages.reuse_freed_memory():
        raise RuntimeError("task failed")
    assert fake.calls[-1] == ("trim", 0)
    # A short block restores the setting but does not walk the heap.
    monkeypatch.setattr(_pages, "_TRIM_AFTER", 3600.0)
    fake.calls.clear()
    with _pages.reuse_freed_memory():
        pass
    assert [c[0] for c in fake.calls] == ["mallopt"] * 4


def test_reuse_freed_memory_leaves_adaptive_thresholds_alone(monkeypatch):
    # With no threshold fixed, glibc adapts them itself; setting one would stop that
    # for the rest of the process.
    from sksemantic.utils import _pages

    fake = _FakeMalloc()
    monkeypatch.setattr(_pages, "_glibc_malloc", lambda: (fake.mallopt, fake.malloc_trim))
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    with _pages.reuse_freed_memory():
        pass
    assert fake.calls == []
