"""BruteIndex's bfloat16 first pass: certified answers are the exact ones.

The pass is taken only where torch is installed and the CPU multiplies bfloat16
natively; elsewhere these tests are skipped (the float32 path is tested everywhere).
"""

import numpy as np
import pytest

from sksemantic.neighbors import BruteIndex, _brute, exact_search_cost, pairwise_scores, prepare
from sksemantic.utils._torch import bf16_matmul_native

needs_bf16 = pytest.mark.skipif(not bf16_matmul_native(),
                                reason="no native bfloat16 products (or no torch) here")


@pytest.fixture
def small_blocks(monkeypatch):
    """Take the pass on small test batches, over several point blocks and query chunks."""
    monkeypatch.setattr(_brute, "REDUCED_MIN_PAIRS", 1)
    monkeypatch.setattr(_brute, "_REDUCED_X_BLOCK", 700)
    monkeypatch.setattr(_brute, "_REDUCED_Q_CHUNK", 96)
    monkeypatch.setattr(_brute, "_REDUCED_PROBE", 64)


def _clustered(rng, n, d, scale=1.0):
    centres = rng.normal(size=(40, d))
    X = centres[rng.integers(0, 40, n)] + 0.3 * rng.normal(size=(n, d))
    return (scale * X).astype(np.float32)


def _assert_exact(index, Q, scores, ids, k):
    """Every returned id is among the exact top k (ties at the k-th place allowed), and
    its score is the pair's float32 score."""
    Q_prep, q_sq = prepare(Q, index.metric, index._center())
    S = pairwise_scores(Q_prep.astype(np.float64), index.X_.astype(np.float64),
                        index.metric, q_sq.astype(np.float64),
                        index.sqnorm_.astype(np.float64))
    kth = -np.sort(-S, axis=1)[:, k - 1]
    found = np.take_along_axis(S, ids, axis=1)
    tol = 1e-5 * np.maximum(1.0, np.abs(kth))
    assert (found >= (kth - tol)[:, None]).all()
    np.testing.assert_allclose(scores, found, rtol=1e-4, atol=1e-4)


@needs_bf16
@pytest.mark.parametrize("metric", ["cosine", "inner_product", "euclidean"])
def test_reduced_pass_is_exact(metric, small_blocks):
    rng = np.random.default_rng(0)
    X = _clustered(rng, 3000, 24)
    Q = _clustered(rng, 500, 24)
    fast = BruteIndex(metric).fit(X)
    plain = BruteIndex(metric, reduced_precision=False).fit(X)
    assert fast._reduced_pass_applies(len(Q), 10)
    s, i, _ = fast.query(Q, 10)
    s32, i32, _ = plain.query(Q, 10)
    _assert_exact(fast, Q, s, i, 10)
    # The same neighbours as float32 search, but where two scores tie to float32
    # round-off (the two paths sum in different orders).
    differ = (i != i32).any(axis=1)
    assert differ.mean() < 0.01
    np.testing.assert_allclose(s, s32, rtol=1e-5, atol=1e-5)


@needs_bf16
def test_duplicates_and_ties_are_exact(small_blocks):
    # Ten copies of every point: the k-th place ties across many candidates, so
    # certification fails on tied rows and they are searched in float32.
    rng = np.random.default_rng(1)
    X = np.repeat(rng.normal(size=(300, 16)), 10, axis=0).astype(np.float32)
    Q = rng.normal(size=(400, 16)).astype(np.float32)
    for k in (5, 10, 25):
        fast = BruteIndex("cosine").fit(X)
        s, i, _ = fast.query(Q, k)
        _assert_exact(fast, Q, s, i, k)
        # Ties resolve to the lower id, as in float32 search.
        s32, i32, _ = BruteIndex("cosine", reduced_precision=False).fit(X).query(Q, k)
        np.testing.assert_array_equal(i // 10, i32 // 10)


@needs_bf16
def test_loose_bound_falls_back_to_float32(small_blocks, monkeypatch):
    # Norms over six orders of magnitude: the bound, which scales with the largest
    # norm, certifies almost nothing; the batch is searched in float32 after the probe.
    rng = np.random.default_rng(2)
    X = rng.normal(size=(3000, 16)) * rng.lognormal(0, 3, size=(3000, 1))
    X = X.astype(np.float32)
    Q = rng.normal(size=(600, 16)).astype(np.float32)
    calls = []
    real = _brute._certified_top
    monkeypatch.setattr(_brute, "_certified_top",
                        lambda Q, *a, **kw: calls.append(len(Q)) or real(Q, *a, **kw))
    index = BruteIndex("inner_product").fit(X)
    s, i, _ = index.query(Q, 10)
    _assert_exact(index, Q, s, i, 10)
    assert calls == [64]  # the probe only


@needs_bf16
@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
def test_error_bound_holds(scale):
    # The certificate rests on the worst-case error of a bfloat16 product with a
    # float32 accumulator: |s_bf16 - s| <= (3 u + u^2 + d 2^-23) |q| |x|.
    import torch

    rng = np.random.default_rng(3)
    d = 384
    X = rng.normal(size=(4000, d)) * scale
    Q = rng.normal(size=(200, d)) * scale
    X[:50] = np.abs(X[:50])  # rows with every product of one sign: the worst case
    Q[:50] = np.abs(Q[:50])
    S = (torch.from_numpy(Q.astype(np.float32)).bfloat16()
         @ torch.from_numpy(X.astype(np.float32)).bfloat16().T).double().numpy()
    exact = Q @ X.T
    u = 2.0**-8
    bound = (3 * u + u**2 + d * 2.0**-23) * np.outer(np.linalg.norm(Q, axis=1),
                                                    np.linalg.norm(X, axis=1))
    assert (np.abs(S - exact) <= bound).all()


def test_float32_where_the_pass_does_not_apply(monkeypatch):
    monkeypatch.setattr(_brute, "bf16_matmul_native", lambda: False)
    rng = np.random.default_rng(4)
    X = rng.normal(size=(500, 8)).astype(np.float32)
    index = BruteIndex("cosine").fit(X)
    assert not index._reduced_pass_applies(10**6, 10)
    assert _brute.exact_search_cost("cosine") == 1.0
    assert exact_search_cost("manhattan") == 1.0
    manhattan = BruteIndex("manhattan").fit(X)
    assert not manhattan._reduced_pass_applies(10**6, 10)


@needs_bf16
def test_approximate_costs_are_relative_to_the_faster_exact_search():
    from sksemantic.neighbors import IVFIndex, setting_costs

    X = np.random.default_rng(5).normal(size=(2000, 8)).astype(np.float32)
    index = IVFIndex(n_lists=20, random_state=0).fit(X)
    values = np.array([1, 5, 10])
    raw = index.relative_cost(values, 10, Q=X[:50])
    np.testing.assert_allclose(setting_costs(index, values, 10, Q=X[:50]),
                               raw / exact_search_cost("cosine"))
    # An exact self-join has no bfloat16 pass: self-join costs are unchanged.
    np.testing.assert_allclose(
        setting_costs(index, values, 10, self_rows=np.arange(50), reverse=True),
        index.relative_cost(values, 10, self_rows=np.arange(50), reverse=True))


@needs_bf16
def test_torch_is_imported_only_for_a_batch_that_repays_it(monkeypatch):
    import sys

    rng = np.random.default_rng(6)
    index = BruteIndex("cosine").fit(rng.normal(size=(5000, 8)).astype(np.float32))
    assert index._reduced_pass_applies(_brute.REDUCED_MIN_PAIRS // 5000 + 1, 10)
    assert exact_search_cost("cosine") == _brute.REDUCED_EXACT_COST
    monkeypatch.delitem(sys.modules, "torch")  # as in a process that never imported it
    assert not index._reduced_pass_applies(_brute.REDUCED_MIN_PAIRS // 5000 + 1, 10)
    assert exact_search_cost("cosine") == 1.0  # calibrations cost what will run
    assert index._reduced_pass_applies(_brute.REDUCED_IMPORT_PAIRS // 5000 + 1, 10)


def test_vectors_on_disk_are_searched_in_float32(tmp_path):
    # An index over a memory map keeps its bounded working set: no bfloat16 pass.
    rng = np.random.default_rng(7)
    path = tmp_path / "x.npy"
    np.save(path, rng.normal(size=(3000, 8)).astype(np.float32))
    index = BruteIndex("cosine").fit(np.zeros((1, 8), np.float32))
    index.X_ = np.load(path, mmap_mode="r")
    index.sqnorm_ = np.ones(3000, np.float32)
    index.n_samples_ = 3000
    assert not index._reduced_pass_applies(10**6, 10)
    assert exact_search_cost("cosine", index.X_) == 1.0  # and costed so
