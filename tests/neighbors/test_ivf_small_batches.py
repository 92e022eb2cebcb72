"""IVF's per-query path for small batches agrees with the grouped batch path."""

import numpy as np
import pytest

from sksemantic.neighbors import METRICS, IVFIndex
from sksemantic.utils import blas_threads
from tests._helpers import blobs


def _data(n, seed=0):
    return blobs(n, 24, 12, noise=0.5, seed=seed)[0]


@pytest.mark.parametrize("metric", METRICS)
def test_few_queries_match_batch(metric):
    X, Q = _data(2000), _data(40, seed=1)
    idx = IVFIndex(metric, n_lists=30, n_probe=5, random_state=0).fit(X)
    s_batch, i_batch, _ = idx.query(Q, 7)  # 40 queries: the grouped path
    assert len(Q) > IVFIndex._FEW_QUERIES
    rows = [idx.query(Q[j : j + 1], 7) for j in range(len(Q))]  # the per-query path
    s_one = np.vstack([r[0] for r in rows])
    i_one = np.vstack([r[1] for r in rows])
    np.testing.assert_allclose(s_one, s_batch, rtol=1e-4, atol=1e-4)
    assert np.mean(i_one == i_batch) > 0.99  # only round-off ties may swap
    # A batch at the threshold takes the same path as single queries.
    s_few, i_few, _ = idx.query(Q[: IVFIndex._FEW_QUERIES], 7)
    np.testing.assert_array_equal(i_few, i_one[: IVFIndex._FEW_QUERIES])


def test_few_queries_with_tiny_lists_are_filled():
    # More neighbours asked than the probed lists hold: the exact fill-in answers.
    X = _data(200)
    idx = IVFIndex(n_lists=50, n_probe=1, random_state=0).fit(X)
    s, i, _ = idx.query(X[:3], 30)
    assert (i >= 0).all() and np.all(np.diff(s, axis=1) <= 0)
    assert len(set(i[0].tolist())) == 30


def test_results_do_not_depend_on_n_jobs():
    X, Q = _data(3000), _data(1200, seed=2)  # several query spans
    a = IVFIndex(n_lists=40, n_probe=6, random_state=0, n_jobs=1).fit(X).query(Q, 5)
    b = IVFIndex(n_lists=40, n_probe=6, random_state=0, n_jobs=2).fit(X).query(Q, 5)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_blas_threads_limits_and_restores():
    from threadpoolctl import threadpool_info

    def blas_threads_now():
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    before = blas_threads_now()
    with blas_threads(1):
        assert all(n == 1 for n in blas_threads_now())
    assert blas_threads_now() == before


@pytest.mark.parametrize("n_probe", [1, 3])
def test_batch_with_lists_smaller_than_k_is_complete(n_probe):
    # Pass 1's threshold is -inf for a query whose nearest list holds fewer than k
    # points: every probed entry is then a candidate, and the fill-in completes the row.
    X, Q = _data(200), _data(40, seed=3)
    idx = IVFIndex(n_lists=50, n_probe=n_probe, random_state=0).fit(X)
    s, i, _ = idx.query(Q, 30)
    assert (i >= 0).all() and np.all(np.diff(s, axis=1) <= 0)
    assert all(len(set(row.tolist())) == 30 for row in i)


def test_search_tunes_its_probes_to_the_target_recall():
    from sksemantic.search import SemanticSearch

    XQ = _data(3300)  # corpus and queries of one distribution
    X, Q = XQ[:3000], XQ[3000:]
    est = SemanticSearch(algorithm="ivf", n_lists=60, random_state=0).fit(X)
    cal = est.calibration_
    assert cal.knob == "n_probe" and (cal.exact or cal.recall_low >= 0.95)
    exact = SemanticSearch(algorithm="brute").fit(X).kneighbors(Q, 10, return_distance=False)
    found = est.kneighbors(Q, 10, return_distance=False)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact, strict=True)])
    assert recall >= 0.93


def test_threaded_candidate_merges_match_one_thread():
    # Enough candidates that the merge splits the queries among threads; ties in score
    # (rounded values) must still resolve by id, whatever thread merged them.
    from sksemantic.neighbors._ivf import _CandidateBuffer

    rng = np.random.default_rng(0)
    n_q, k, n_cand = 3000, 7, 200_000
    rows = rng.integers(0, n_q, n_cand)
    ids = rng.permutation(10 * n_cand)[:n_cand]  # unique ids, as a list scan gives
    scores = np.round(rng.random(n_cand), 2).astype(np.float32)
    out = []
    for n_jobs in (1, 2):
        best_s = np.full((n_q, k), -np.inf, dtype=np.float32)
        best_i = np.full((n_q, k), -1, dtype=np.int64)
        thr = np.full(n_q, -np.inf, dtype=np.float32)
        buf = _CandidateBuffer(best_s, best_i, thr, limit=1 << 30, n_jobs=n_jobs)
        buf.add(rows, scores, ids)
        buf.flush()
        np.testing.assert_array_equal(thr, best_s[:, -1])
        out.append((best_s, best_i))
    np.testing.assert_array_equal(out[0][0], out[1][0])
    np.testing.assert_array_equal(out[0][1], out[1][1])
    # Each row holds its k best candidates.
    r = 5
    mine = np.flatnonzero(rows == r)
    order = np.lexsort((ids[mine], -scores[mine]))[:k]
    np.testing.assert_array_equal(out[0][1][r], ids[mine][order])


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "inner_product"])
def test_ranks_of_chosen_lists_match_the_full_probe_order(metric):
    # The recall curve counts, for each needed list, the lists probed before it; this
    # must be the rank a full (stable) sort of the probe order gives, ties included.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 12)).astype(np.float32)
    index = IVFIndex(metric, n_lists=40, random_state=0).fit(X)
    Q = np.r_[X[:200], np.zeros((5, 12), dtype=np.float32)]  # zeros: every score tied
    Q_prep = index._sample_prepared(Q, None)[0]
    lists = rng.integers(0, 40, size=(len(Q), 6))
    full = np.take_along_axis(index._list_ranks(Q_prep), lists, axis=1)
    np.testing.assert_array_equal(index._ranks_of(Q_prep, lists), full)
