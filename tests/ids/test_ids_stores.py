"""ID stores: SQLite persistence, concurrent writers from several processes, crash safety."""

import multiprocessing as mp
import os
import pickle
import signal
import sqlite3

import numpy as np
import pytest

from sksemantic.ids import InMemoryIDStore, SemanticIdAssigner, SQLiteIDStore
from sksemantic.quantization import RQKMeansEncoder

pytestmark = pytest.mark.skipif(
    "fork" not in mp.get_all_start_methods(), reason="the workers are forked"
)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1200, 8)).astype(np.float32)
    enc = RQKMeansEncoder(n_levels=2, n_clusters=[4, 512], random_state=0).fit(X)
    return X, enc, [f"item{i}" for i in range(len(X))]


@pytest.mark.parametrize("make_store", [InMemoryIDStore, "sqlite"])
def test_transaction_rolls_back_on_error(tmp_path, make_store):
    store = SQLiteIDStore(tmp_path / "ids.db", create=True) if make_store == "sqlite" else make_store()
    with store.transaction() as txn:
        txn.insert(["a"], [(1, 2)])
    with pytest.raises(RuntimeError):
        with store.transaction() as txn:
            txn.insert(["b"], [(1, 3)])
            raise RuntimeError("crash inside the batch")
    with store.transaction() as txn:
        assert txn.get(["a", "b"]) == {"a": (1, 2)}
        assert txn.taken(["1"])["1"].tolist() == [2]
    assert len(store) == 1


def test_sqlite_persists_across_connections_and_pickles(tmp_path, data):
    X, enc, keys = data
    path = tmp_path / "ids.db"
    ids = SemanticIdAssigner(enc, store=SQLiteIDStore(path, create=True)).assign(X[:100], keys[:100])
    reopened = SemanticIdAssigner(enc, store=pickle.loads(pickle.dumps(SQLiteIDStore(path))))
    np.testing.assert_array_equal(reopened.lookup(keys[:100]), ids)
    np.testing.assert_array_equal(
        np.sort(reopened.store_.all_codes(), axis=0), np.sort(ids, axis=0)
    )


def _worker(path, policy, X, keys, enc):
    assigner = SemanticIdAssigner(enc, uniqueness=policy, store=SQLiteIDStore(path), batch_size=50)
    return assigner.assign(X, keys)


@pytest.mark.parametrize("policy", ["counter", "nearest_free", "sinkhorn", "none"])
def test_concurrent_writers_from_several_processes(tmp_path, data, policy):
    X, enc, keys = data
    path = str(tmp_path / "ids.db")
    SQLiteIDStore(path, create=True)  # create the schema once, before the race
    # Six processes with overlapping item sets, in different orders.
    rng = np.random.default_rng(0)
    jobs = []
    for _ in range(6):
        rows = np.sort(rng.choice(len(X), 500, replace=False))
        rows = rows[rng.permutation(len(rows))]
        jobs.append((path, policy, X[rows], [keys[r] for r in rows], enc))
    with mp.get_context("fork").Pool(6) as pool:
        results = pool.starmap(_worker, jobs)
    store = SQLiteIDStore(path)
    final = SemanticIdAssigner(enc, uniqueness=policy, store=store)
    submitted = sorted({k for job in jobs for k in job[3]})
    assert len(store) == len(submitted)
    # Every process saw the one ID the store holds for each of its keys...
    for job, ids in zip(jobs, results, strict=True):
        np.testing.assert_array_equal(final.lookup(job[3]), ids)
    # ... and no two items share an ID (under "none", IDs are the codes).
    all_ids = final.lookup(submitted)
    if policy == "none":
        rows = [keys.index(k) for k in submitted]
        np.testing.assert_array_equal(all_ids, enc.transform(X[rows]))
    else:
        assert len(np.unique(all_ids, axis=0)) == len(submitted)


def _crash_worker(path, X, keys, enc, how="exit"):
    from sksemantic.ids import _stores

    original = _stores._SQLiteTxn.insert
    calls = []

    def insert(self, k, c):
        calls.append(1)
        if len(calls) == 3:  # die inside the third batch's transaction, uncommitted
            original(self, k, c)
            if how == "sigkill":
                os.kill(os.getpid(), signal.SIGKILL)
            os._exit(3)
        original(self, k, c)

    _stores._SQLiteTxn.insert = insert
    SemanticIdAssigner(enc, store=SQLiteIDStore(path), batch_size=100).assign(X, keys)


@pytest.mark.parametrize("how, exitcode", [("exit", 3), ("sigkill", -signal.SIGKILL)])
def test_crash_loses_no_committed_assignment(tmp_path, data, how, exitcode):
    X, enc, keys = data
    path = str(tmp_path / "ids.db")
    SQLiteIDStore(path, create=True)
    proc = mp.get_context("fork").Process(
        target=_crash_worker, args=(path, X[:500], keys[:500], enc, how)
    )
    proc.start()
    proc.join(120)
    assert proc.exitcode == exitcode
    store = SQLiteIDStore(path)
    assert len(store) == 200  # the two committed batches; the third was rolled back
    assigner = SemanticIdAssigner(enc, store=store)
    before = assigner.lookup(keys[:200])
    with pytest.raises(KeyError):
        assigner.lookup(keys[200:201])
    after = assigner.assign(X[:500], keys[:500])  # finishing the job keeps the first IDs
    np.testing.assert_array_equal(after[:200], before)
    assert len(np.unique(after, axis=0)) == 500


@pytest.mark.parametrize("make_store", [InMemoryIDStore, "sqlite"])
def test_a_stored_id_is_never_replaced(tmp_path, make_store):
    store = SQLiteIDStore(tmp_path / "ids.db", create=True) if make_store == "sqlite" else make_store()
    with store.transaction() as txn:
        txn.insert(["a"], [(1, 2)])
    with pytest.raises(ValueError, match=r"key 'a' already has the ID 1-2") as first:
        with store.transaction() as txn:
            txn.insert(["b", "a"], [(1, 3), (4, 5)])
    with pytest.raises(ValueError, match="key 'c' is inserted twice"):
        with store.transaction() as txn:
            txn.insert(["c", "c"], [(1, 3), (4, 5)])
    with pytest.raises(ValueError, match="key 'd' already has the ID 1-3"):
        with store.transaction() as txn:  # twice in one transaction
            txn.insert(["d"], [(1, 3)])
            txn.insert(["d"], [(4, 5)])
    with store.transaction() as txn:
        assert txn.get(["a", "b", "c", "d"]) == {"a": (1, 2)}
    assert len(store) == 1
    # Both stores say it the same way.
    assert str(first.value) == (
        "key 'a' already has the ID 1-2; a stored ID is never replaced "
        "(look it up with get() instead)."
    )


@pytest.mark.parametrize("make_store", [InMemoryIDStore, "sqlite"])
def test_insert_checks_keys_and_codes(tmp_path, make_store):
    store = SQLiteIDStore(tmp_path / "ids.db", create=True) if make_store == "sqlite" else make_store()
    with store.transaction() as txn:
        txn.insert(["a"], [(1, 2)])
    cases = [
        (["b", "c"], [(1, 3), (1, 2, 3)], ValueError, "different lengths"),
        (["b"], [(1, 3, 0)], ValueError, "3 levels but the store holds IDs of width 2"),
        (["b", "c"], [(1, 3)], ValueError, "keys has 2 entries but codes has 1 rows"),
        (["b"], [(1, 2.5)], TypeError, "codes must hold integers"),
        (["b"], [(1, -3)], ValueError, "non-negative"),
        ([7], [(1, 3)], TypeError, "keys must be str"),
        ("b", [(1, 3)], TypeError, "single string"),
    ]
    for keys, codes, error, match in cases:
        with pytest.raises(error, match=match):
            with store.transaction() as txn:
                txn.insert(keys, codes)
    assert len(store) == 1
    np.testing.assert_array_equal(store.all_codes(), [[1, 2]])


def test_sqlite_missing_file_needs_create(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="pass create=True"):
        SQLiteIDStore("ids.db")
    assert not (tmp_path / "ids.db").exists()  # nothing was created
    store = SQLiteIDStore("ids.db", create=True)
    assert store.path == str(tmp_path / "ids.db")
    with store.transaction() as txn:
        txn.insert(["a"], [(1, 2)])
    # create=True opens an existing store as is.
    assert len(SQLiteIDStore("ids.db", create=True)) == 1
    for bad in (":memory:", ""):
        with pytest.raises(ValueError, match="InMemoryIDStore"):
            SQLiteIDStore(bad, create=True)
    with pytest.raises(TypeError, match="create must be a bool"):
        SQLiteIDStore("ids.db", create="yes")
    with pytest.raises(TypeError, match="timeout must be a number"):
        SQLiteIDStore("ids.db", timeout="60")
    with pytest.raises(ValueError, match="timeout must be >= 0"):
        SQLiteIDStore("ids.db", timeout=-1)


def test_sqlite_leaves_other_databases_alone(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    conn.close()
    with pytest.raises(ValueError, match="not an SQLite ID store"):
        SQLiteIDStore(path)
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    conn.close()
    assert tables == ["notes"]


def test_unpickled_assigner_finds_its_store_from_another_directory(tmp_path, monkeypatch, data):
    X, enc, keys = data
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    assigner = SemanticIdAssigner(enc, store=SQLiteIDStore("ids.sqlite", create=True))
    ids = assigner.assign(X[:20], keys[:20])
    blob = pickle.dumps(assigner)
    monkeypatch.chdir(tmp_path / "b")
    again = pickle.loads(blob)
    np.testing.assert_array_equal(again.lookup(keys[:20]), ids)
    assert list((tmp_path / "b").iterdir()) == []  # no new, empty database here


def test_sqlite_keys_are_bound_parameters(tmp_path):
    store = SQLiteIDStore(tmp_path / "ids.db", create=True)
    keys = ["x'); DROP TABLE ids; --", 'quote " and \' \\', "näïve ✓", "a,b;c", "%", "_"]
    codes = np.arange(len(keys) * 2).reshape(-1, 2)
    with store.transaction() as txn:
        txn.insert(keys, codes)
    reopened = SQLiteIDStore(tmp_path / "ids.db")
    with reopened.transaction() as txn:
        found = txn.get(keys + ["x"])
    assert found == {k: tuple(c) for k, c in zip(keys, codes.tolist(), strict=True)}
    assert len(reopened) == len(keys)


def test_unpickled_store_does_not_recreate_a_vanished_file(tmp_path):
    path = tmp_path / "ids.db"
    blob = pickle.dumps(SQLiteIDStore(path, create=True))
    path.unlink()
    store = pickle.loads(blob)
    with pytest.raises(FileNotFoundError, match="pass create=True"):
        len(store)
    assert not path.exists()


def test_sqlite_path_with_uri_characters(tmp_path):
    path = tmp_path / "dir with space?#%" / "ids.db"
    path.parent.mkdir()
    store = SQLiteIDStore(path, create=True)
    with store.transaction() as txn:
        txn.insert(["a"], [(1, 2)])
    assert len(SQLiteIDStore(path)) == 1
    assert all(p.name.startswith("ids.db") for p in path.parent.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir with space?#%"]
