"""ID stores: SQLite persistence, concurrent writers from several processes, crash safety."""

import multiprocessing as mp
import os
import pickle

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


@pytest.mark.parametrize("policy", ["counter", "nearest_free"])
def test_concurrent_writers_from_several_processes(tmp_path, data, policy):
    X, enc, keys = data
    path = str(tmp_path / "ids.db")
    SQLiteIDStore(path, create=True)  # create the schema once, before the race
    # Four processes with overlapping item sets, in different orders.
    rng = np.random.default_rng(0)
    jobs = []
    for _ in range(4):
        rows = np.sort(rng.choice(len(X), 500, replace=False))
        rows = rows[rng.permutation(len(rows))]
        jobs.append((path, policy, X[rows], [keys[r] for r in rows], enc))
    with mp.get_context("fork").Pool(4) as pool:
        results = pool.starmap(_worker, jobs)
    store = SQLiteIDStore(path)
    final = SemanticIdAssigner(enc, uniqueness=policy, store=store)
    submitted = sorted({k for job in jobs for k in job[3]})
    assert len(store) == len(submitted)
    # Every process saw the one ID the store holds for each of its keys...
    for job, ids in zip(jobs, results, strict=True):
        np.testing.assert_array_equal(final.lookup(job[3]), ids)
    # ... and no two items share an ID.
    all_ids = final.lookup(submitted)
    assert len(np.unique(all_ids, axis=0)) == len(submitted)


def _crash_worker(path, X, keys, enc):
    from sksemantic.ids import _stores

    original = _stores._SQLiteTxn.insert
    calls = []

    def insert(self, k, c):
        calls.append(1)
        if len(calls) == 3:  # die inside the third batch's transaction, uncommitted
            original(self, k, c)
            os._exit(3)
        original(self, k, c)

    _stores._SQLiteTxn.insert = insert
    SemanticIdAssigner(enc, store=SQLiteIDStore(path), batch_size=100).assign(X, keys)


def test_crash_loses_no_committed_assignment(tmp_path, data):
    X, enc, keys = data
    path = str(tmp_path / "ids.db")
    SQLiteIDStore(path, create=True)
    proc = mp.get_context("fork").Process(target=_crash_worker, args=(path, X[:500], keys[:500], enc))
    proc.start()
    proc.join(120)
    assert proc.exitcode == 3
    store = SQLiteIDStore(path)
    assert len(store) == 200  # the two committed batches; the third was rolled back
    assigner = SemanticIdAssigner(enc, store=store)
    before = assigner.lookup(keys[:200])
    with pytest.raises(KeyError):
        assigner.lookup(keys[200:201])
    after = assigner.assign(X[:500], keys[:500])  # finishing the job keeps the first IDs
    np.testing.assert_array_equal(after[:200], before)
    assert len(np.unique(after, axis=0)) == 500
