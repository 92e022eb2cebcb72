"""n_jobs goes through joblib: an active backend runs the tasks (with the same results)
and its n_jobs applies; None never asks for more cores than the process may use."""

import threading

import cloudpickle
import joblib
import numpy as np
import pytest
from joblib.parallel import ThreadingBackend, register_parallel_backend

from sksemantic import (
    RQKMeansEncoder,
    SemanticDeduplicator,
    SemanticGraphTransformer,
    SemanticSearch,
)
from sksemantic.utils import effective_n_jobs, parallel_map, run_spans
from tests._helpers import blobs


class CopyingBackend(ThreadingBackend):
    """A stand-in for a process-based or distributed backend, without processes: each
    batch of tasks runs on a pickled copy of itself (as in another process, writes into
    the caller's arrays are lost), and the tasks it receives are counted."""

    supports_sharedmem = False
    received = []

    def submit(self, func, callback=None):
        CopyingBackend.received.append(len(func))
        return super().submit(cloudpickle.loads(cloudpickle.dumps(func)), callback)


register_parallel_backend("copying", CopyingBackend)


def _data():
    X, _ = blobs(n_samples=750, n_features=16)
    return X[:600], X[600:]


def _outputs():
    """Results of representative estimators, each made of several parallel loops."""
    X, Q = _data()
    out = {}
    for algorithm, knobs in [("brute", {}), ("ivf", {"n_lists": 16, "n_probe": 4})]:
        graph = SemanticGraphTransformer(n_neighbors=5, algorithm=algorithm, random_state=0,
                                         **knobs)
        out[f"graph_{algorithm}"] = graph.fit_transform(X).toarray()
        out[f"graph_{algorithm}_new"] = graph.transform(Q).toarray()
        search = SemanticSearch(n_neighbors=5, algorithm=algorithm, random_state=0,
                                **knobs).fit(X)
        out[f"search_{algorithm}"] = np.concatenate(search.kneighbors(Q), axis=1)
    enc = RQKMeansEncoder(n_levels=2, n_clusters=8, random_state=0).fit(X)
    out["rqkmeans_codes"] = enc.transform(X)
    out["rqkmeans_codebooks"] = np.concatenate(enc.codebooks_)
    dedup = SemanticDeduplicator(min_similarity=0.9, n_neighbors=5, algorithm="brute").fit(X)
    out["dedup"] = dedup.labels_
    return out


@pytest.mark.parametrize("backend", ["loky", "copying"])
def test_results_equal_under_another_backend(backend):
    expected = _outputs()
    CopyingBackend.received.clear()
    with joblib.parallel_backend(backend, n_jobs=2):
        got = _outputs()
    for name, value in expected.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)
    if backend == "copying":
        # The work really went to the backend (the brute queries, the k-means seeds,
        # the encoder's blocks), not only to the library's own threads.
        assert sum(CopyingBackend.received) >= 8


def test_active_backend_receives_the_tasks():
    X, Q = _data()
    search = SemanticSearch(n_neighbors=5, algorithm="brute").fit(X)
    CopyingBackend.received.clear()
    with joblib.parallel_config(backend="copying", n_jobs=3):
        search.kneighbors(Q)
    # Queries split evenly over the 3 workers of the context.
    assert sum(CopyingBackend.received) == 3


def test_shared_memory_tasks_stay_in_threads():
    # Tasks that write into the caller's array never reach a backend that cannot share
    # memory; they run in threads, so every write lands.
    out = np.zeros(100)

    def fill(a, b):
        out[a:b] = np.arange(a, b)

    CopyingBackend.received.clear()
    with joblib.parallel_config(backend="copying", n_jobs=2):
        run_spans(fill, 100, 10, None, shared=True)
    assert CopyingBackend.received == []
    np.testing.assert_array_equal(out, np.arange(100))


def test_results_and_on_result_in_task_order():
    tasks = [(i,) for i in range(20)]
    with joblib.parallel_config(backend="copying", n_jobs=4):
        assert parallel_map(lambda i: i * i, tasks, None) == [i * i for i in range(20)]
        seen = []
        parallel_map(lambda i: -i, tasks, None, on_result=lambda t, r: seen.append((t, r)))
    assert seen == [((i,), -i) for i in range(20)]


def test_one_task_runs_in_the_calling_thread():
    caller = threading.get_ident()
    assert run_spans(lambda a, b: threading.get_ident(), 5, 10, 4) == [caller]


def test_n_jobs_none_follows_the_context_and_the_allowed_cores(monkeypatch):
    assert effective_n_jobs(None) == joblib.cpu_count()
    assert effective_n_jobs(-2) == max(1, joblib.cpu_count() - 1)
    assert effective_n_jobs(5) == 5
    assert effective_n_jobs(0) == 1
    with joblib.parallel_config(n_jobs=3):
        assert effective_n_jobs(None) == 3
        assert effective_n_jobs(2) == 2  # an estimator's own n_jobs wins
    with joblib.parallel_config(backend="sequential"):
        assert effective_n_jobs(None) == 1
        assert run_spans(lambda a, b: threading.get_ident(), 40, 10, 4) == (
            [threading.get_ident()] * 4
        )
    # The cores the process may use (here capped the way loky lets users cap them),
    # not the machine's.
    monkeypatch.setenv("LOKY_MAX_CPU_COUNT", "1")
    assert effective_n_jobs(None) == 1
    assert effective_n_jobs(-1) == 1


def test_dask_worker_with_one_thread_uses_one():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as client:
            assert client.submit(effective_n_jobs, None).result() == 1
            # Given explicitly, n_jobs is used as given.
            assert client.submit(effective_n_jobs, 2).result() == 2


def test_dask_backend_runs_the_search_on_the_cluster():
    distributed = pytest.importorskip("distributed")
    X, Q = _data()
    search = SemanticSearch(n_neighbors=5, algorithm="brute").fit(X)
    expected = search.kneighbors(Q)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as client:
            with distributed.get_task_stream(client) as stream:
                with joblib.parallel_backend("dask"):
                    got = search.kneighbors(Q)
    assert len(stream.data) >= 2  # the query spans ran as dask tasks
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_array_equal(g, e)
