"""SemanticSearch.save / load: nothing a user stored is lost, damaged files are refused
before anything is unpickled, and a load running during a save sees one whole save."""

import multiprocessing
import os
import pickle
import re
import shutil

import numpy as np
import pytest

from sksemantic._persistence import save_directory
from sksemantic.neighbors import load_index, save_index
from sksemantic.neighbors._persist import write_index_files
from sksemantic.search import SemanticSearch
from tests._helpers import HAS_HNSWLIB, HNSW, blobs

ALGORITHMS = ["brute", "ivf", "annoy", HNSW]


def _data(n=400, d=16, seed=0):
    return blobs(n_samples=n, n_features=d, seed=seed)[0]


def _fit(algorithm, n=400, seed=0):
    X = _data(n, seed=seed)
    return SemanticSearch(algorithm=algorithm, n_neighbors=5, random_state=0).fit(
        X, metadata=[f"{n}:{i}" for i in range(n)]
    )


def _processes():
    """Fork where the platform can (a child costs no new import), else spawn."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _current(path):
    return path / (path / "CURRENT").read_text().strip()


def _entries(path):
    return sorted(p.name for p in path.iterdir())


# -- 1. a directory holding anything else is refused, and kept --------------------------
def test_save_refuses_a_directory_with_foreign_entries_and_keeps_them(tmp_path):
    est = _fit("brute")
    target = tmp_path / "s"
    est.save(target)
    (target / "notes.txt").write_text("mine")
    (target / "sub").mkdir()
    (target / "sub" / "data.csv").write_text("a,b")
    with pytest.raises(FileExistsError) as err:
        _fit("ivf", 300).save(target)
    message = str(err.value)
    assert str(target) in message and "'notes.txt'" in message and "'sub'" in message
    assert (target / "notes.txt").read_text() == "mine"
    assert (target / "sub" / "data.csv").read_text() == "a,b"
    assert SemanticSearch.load(target).n_samples_fit_ == 400  # the save is untouched
    # A file, and a directory holding only foreign entries, are refused as well.
    (tmp_path / "a_file").write_text("data")
    with pytest.raises(FileExistsError, match="a_file"):
        est.save(tmp_path / "a_file")
    with pytest.raises(FileExistsError, match="notes.txt"):
        save_index(est.index_, target)
    assert (tmp_path / "a_file").read_text() == "data"


def test_save_accepts_a_new_an_empty_or_an_earlier_save(tmp_path):
    est = _fit("brute")
    (tmp_path / "empty").mkdir()
    for target in (tmp_path / "empty", tmp_path / "new" / "nested"):
        est.save(target)
        _fit("ivf", 300).save(target)  # over the earlier save
        assert SemanticSearch.load(target).n_samples_fit_ == 300
        # Only the current version is kept.
        assert _entries(target) == sorted(["CURRENT", _current(target).name])


def test_a_failed_save_leaves_the_earlier_save_whole(tmp_path):
    _fit("brute").save(tmp_path / "s")
    before = _entries(tmp_path / "s")
    est = _fit("ivf", 300)
    est.metadata_[0] = lambda: None  # cannot be pickled
    with pytest.raises((pickle.PicklingError, AttributeError)):
        est.save(tmp_path / "s")
    assert _entries(tmp_path / "s") == before
    assert SemanticSearch.load(tmp_path / "s").n_samples_fit_ == 400


# -- 2, 6. damaged and truncated files are refused, naming the file ---------------------
@pytest.fixture(scope="module", params=ALGORITHMS)
def saved(request, tmp_path_factory):
    est = _fit(request.param)
    path = tmp_path_factory.mktemp("saved") / request.param
    est.save(path)
    return est, path


def _damaged_copy(saved, tmp_path):
    path = tmp_path / "copy"
    shutil.copytree(saved[1], path)
    return path


def _flip(file, offset):
    data = bytearray(file.read_bytes())
    data[offset] ^= 0xFF
    file.write_bytes(bytes(data))


def test_every_file_of_every_backend_is_in_the_manifest(saved):
    est, path = saved
    files = {p.name for p in _current(path).iterdir()}
    expected = {"manifest.json", "search.pkl", "index.pkl", "index.X_.npy", "index.sqnorm_.npy"}
    assert expected <= files
    assert ("index.ann" in files) == (est.algorithm_ == "annoy")
    assert ("index.perm_.npy" in files) == (est.algorithm_ == "ivf")


@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_a_flipped_byte_in_any_file_is_refused(saved, tmp_path, where):
    path = _damaged_copy(saved, tmp_path)
    version = _current(path)
    for file in sorted(version.iterdir()):
        if file.name == "manifest.json":
            continue
        size = file.stat().st_size
        offset = {"start": 0, "middle": size // 2, "end": size - 1}[where]
        original = file.read_bytes()
        _flip(file, offset)
        with pytest.raises(ValueError, match=re.escape(str(file))):
            SemanticSearch.load(path)
        with pytest.raises(ValueError, match=re.escape(str(file))):
            load_index(path, mmap=False)
        file.write_bytes(original)
    assert SemanticSearch.load(path).n_samples_fit_ == 400  # restored: loads again


@pytest.mark.parametrize("verify", [True, False])
def test_a_truncated_file_is_refused_even_unverified(saved, tmp_path, verify):
    path = _damaged_copy(saved, tmp_path)
    for file in sorted(_current(path).iterdir()):
        if file.name == "manifest.json":
            continue
        original = file.read_bytes()
        file.write_bytes(original[: len(original) // 2])
        with pytest.raises(ValueError, match=re.escape(str(file)) + ".*truncated"):
            SemanticSearch.load(path, verify=verify)
        file.write_bytes(original)


def test_a_damaged_manifest_or_pointer_is_refused(saved, tmp_path):
    path = _damaged_copy(saved, tmp_path)
    manifest = _current(path) / "manifest.json"
    original = manifest.read_bytes()
    assert b'"size": ' in original
    manifest.write_bytes(original.replace(b'"size": ', b'"size": 1', 1))  # still valid JSON
    with pytest.raises(ValueError, match="manifest.json is damaged"):
        SemanticSearch.load(path)
    manifest.write_bytes(original)
    (path / "CURRENT").write_text("../../etc")
    with pytest.raises(ValueError, match="CURRENT is damaged"):
        SemanticSearch.load(path)


def test_a_valid_npy_with_half_the_rows_is_refused(tmp_path):
    est = _fit("brute")
    est.save(tmp_path / "s")
    file = _current(tmp_path / "s") / "index.X_.npy"
    np.save(file, np.load(file)[:200])
    for verify in (True, False):
        with pytest.raises(ValueError, match=re.escape(str(file))):
            SemanticSearch.load(tmp_path / "s", verify=verify)


# -- 7. nothing is unpickled before the check ---------------------------------------------
class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.mark.parametrize("name", ["search.pkl", "index.pkl"])
def test_a_crafted_pickle_is_refused_before_it_runs(tmp_path, name):
    _fit("brute").save(tmp_path / "s")
    marker = tmp_path / "code_ran"
    (_current(tmp_path / "s") / name).write_bytes(pickle.dumps(_Payload(str(marker))))
    with pytest.raises(ValueError, match=name):
        SemanticSearch.load(tmp_path / "s", verify=False)  # its size differs
    with pytest.raises(ValueError, match=name):
        load_index(tmp_path / "s")
    assert not marker.exists()


def test_load_checks_what_the_directory_holds(tmp_path):
    est = _fit("ivf")
    save_index(est.index_, tmp_path / "ix")
    with pytest.raises(ValueError, match="holds a saved index, not a SemanticSearch"):
        SemanticSearch.load(tmp_path / "ix")
    est.save(tmp_path / "s")  # the index of a SemanticSearch save opens on its own
    assert load_index(tmp_path / "s").n_samples_ == 400
    # One version directory opens on its own (checked too).
    assert load_index(_current(tmp_path / "ix")).n_samples_ == 400
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="CURRENT"):
        SemanticSearch.load(tmp_path / "empty")

    def other_object(directory):  # a checked save whose pickle is not a SemanticSearch
        write_index_files(est.index_, directory)
        (directory / "search.pkl").write_bytes(pickle.dumps({"not": "an estimator"}))

    save_directory(tmp_path / "odd", other_object, kind="estimator")
    with pytest.raises(TypeError, match="holds a dict, not a SemanticSearch"):
        SemanticSearch.load(tmp_path / "odd")


# -- 4. loads during saves see one whole save -----------------------------------------------
def _reader(path, ready, stop, results, max_loads):
    loads, sizes, errors = 0, set(), []
    ready.wait()
    while loads < max_loads and not (stop.is_set() and loads >= 5):
        loads += 1
        try:
            est = SemanticSearch.load(path)
            n = est.n_samples_fit_
            sizes.add(n)
            if not (n == est.index_.n_samples_ == len(est.index_.X_) == len(est.metadata_)):
                errors.append(f"inconsistent sizes at n_samples_fit_={n}")
            hits = est.search(est.index_.X_[:3].copy(), top_k=4)
            bad = [h["metadata"] for row in hits for h in row
                   if h["metadata"] != f"{n}:{h['corpus_id']}"]
            if bad:
                errors.append(f"results of another save at n_samples_fit_={n}: {bad[:3]}")
        except Exception as exc:  # noqa: BLE001 - every failure is reported
            errors.append(repr(exc))
    results.put((loads, sorted(sizes), errors))


def test_loads_during_saves_see_one_whole_save(tmp_path):
    algorithms = ["brute", "ivf", "annoy"] + (["hnsw"] if HAS_HNSWLIB else [])
    versions = [_fit(a, n=1200 + 300 * i, seed=i) for i, a in enumerate(algorithms)]
    path = tmp_path / "served"
    versions[0].save(path)
    ctx = _processes()
    ready, stop, results = ctx.Barrier(3), ctx.Event(), ctx.Queue()
    readers = [ctx.Process(target=_reader, args=(path, ready, stop, results, 400))
               for _ in range(2)]
    for p in readers:
        p.start()
    try:
        ready.wait(timeout=120)
        for i in range(30):
            versions[i % len(versions)].save(path)
        stop.set()
        outcomes = [results.get(timeout=120) for _ in readers]
    finally:
        stop.set()
        for p in readers:
            p.join(timeout=60)
    for loads, _, errors in outcomes:
        assert errors == []
        assert loads >= 5
    # The readers ran while the saves did: together they saw several saves.
    assert len({n for _, sizes, _ in outcomes for n in sizes}) >= 2
    assert SemanticSearch.load(path).n_samples_fit_ == versions[29 % len(versions)].n_samples_fit_
    # A version being loaded during the last save is left to the next one.
    versions[0].save(path)
    assert _entries(path) == sorted(["CURRENT", _current(path).name])


# -- 8. killed saves, ".", relative paths ----------------------------------------------------
def _killed_save(est, path, when):
    import sksemantic._persistence as persistence

    if when == "before_manifest":
        persistence._record = lambda file: os._exit(3)
    else:
        persistence.os.replace = lambda *args: os._exit(3)
    est.save(path)


def test_leftovers_of_killed_saves_are_removed_by_the_next_save(tmp_path):
    first, second = _fit("brute"), _fit("ivf", 300)
    first.save(tmp_path / "s")
    ctx = _processes()
    for when in ("before_manifest", "before_switch"):
        killed = ctx.Process(target=_killed_save, args=(second, tmp_path / "s", when))
        killed.start()
        killed.join(timeout=120)
        assert killed.exitcode == 3
    left = _entries(tmp_path / "s")
    assert len(left) > 2  # the killed saves left a version or two and a pointer file
    assert SemanticSearch.load(tmp_path / "s").n_samples_fit_ == 400  # still the first
    second.save(tmp_path / "s")
    assert SemanticSearch.load(tmp_path / "s").n_samples_fit_ == 300
    assert _entries(tmp_path / "s") == sorted(["CURRENT", _current(tmp_path / "s").name])
    assert _entries(tmp_path) == ["s"]  # nothing beside the directory


def test_save_to_the_working_directory_and_relative_paths(tmp_path, monkeypatch):
    est = _fit("annoy")
    for name in ("cwd", "other"):
        (tmp_path / name).mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    for _ in range(2):
        est.save(".")
        assert SemanticSearch.load(".").n_samples_fit_ == 400
        est.save(os.getcwd())
    assert _entries(tmp_path / "cwd") == sorted(["CURRENT", _current(tmp_path / "cwd").name])
    monkeypatch.chdir(tmp_path / "other")
    for _ in range(2):
        est.save("rel/sub")
        assert SemanticSearch.load("rel/sub").n_samples_fit_ == 400
        _fit("brute", 300).save("../cwd")
        assert SemanticSearch.load("../cwd").n_samples_fit_ == 300
    assert _entries(tmp_path) == ["cwd", "other"]
    assert _entries(tmp_path / "other") == ["rel"]


# -- 5, 9. growth after a mapped load; served files stay readable -----------------------------
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_add_after_a_mapped_load_equals_add_in_memory(tmp_path, algorithm):
    # Unstructured data: an approximate index built differently answers differently.
    rng = np.random.default_rng(4)
    X, Q = rng.normal(size=(1500, 32)), rng.normal(size=(50, 32))
    est = SemanticSearch(algorithm=algorithm, random_state=0).fit(X[:1000])
    est.save(tmp_path / "s")
    loaded = SemanticSearch.load(tmp_path / "s", mmap=True)
    est.add(X[1000:])
    loaded.add(X[1000:])
    for a, b in zip(est.kneighbors(Q, 10), loaded.kneighbors(Q, 10), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_served_save_keeps_answering_after_newer_saves(tmp_path):
    est = _fit("annoy")
    est.save(tmp_path / "s")
    served = SemanticSearch.load(tmp_path / "s")
    Q = _data(20, seed=9)
    expected = served.kneighbors(Q, 5)
    served_version = _current(tmp_path / "s")
    for n in (300, 500):
        _fit("brute", n).save(tmp_path / "s")
    assert not served_version.exists()  # its files are gone, its mappings are not
    for a, b in zip(served.kneighbors(Q, 5), expected, strict=True):
        np.testing.assert_array_equal(a, b)


# -- the layout written before versioned saves -------------------------------------------
def test_a_save_in_the_earlier_layout_loads_and_is_replaced(tmp_path):
    est = _fit("ivf")
    old = tmp_path / "old"
    old.mkdir()
    write_index_files(est.index_, old)  # the earlier save wrote these files at the top
    rest = SemanticSearch(**est.get_params())
    rest.__dict__.update({k: v for k, v in est.__dict__.items() if k != "index_"})
    (old / "search.pkl").write_bytes(pickle.dumps(rest))
    with pytest.warns(UserWarning, match="earlier version of sksemantic"):
        loaded = SemanticSearch.load(old)
    np.testing.assert_array_equal(loaded.kneighbors(est.index_.X_[:5].copy(), 3)[1],
                                  est.kneighbors(est.index_.X_[:5].copy(), 3)[1])
    _fit("brute", 300).save(old)
    assert _entries(old) == sorted(["CURRENT", _current(old).name])
    assert SemanticSearch.load(old).n_samples_fit_ == 300
