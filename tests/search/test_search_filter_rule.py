"""SemanticSearch: what a filter array means (bool: mask, int: ids) and evaluate's k."""

import warnings

import numpy as np
import pytest

from sksemantic.search import SemanticSearch


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 4)).astype(np.float32)
    return SemanticSearch(algorithm="brute").fit(X), X


def _ids(est, X, **kw):
    return sorted(est.kneighbors(X[:1], 2, return_distance=False, **kw)[0].tolist())


def test_bool_filter_is_a_mask_and_int_filter_is_ids(fitted):
    est, X = fitted
    mask = np.array([0, 0, 1, 0, 1, 0], dtype=bool)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # neither form warns
        assert _ids(est, X, filter=mask) == [2, 4]
        assert _ids(est, X, filter=np.array([2, 4])) == [2, 4]
        assert _ids(est, X, filter=[4, 2, 4]) == [2, 4]


def test_int_filter_of_zeros_and_ones_is_ids_with_a_warning(fitted):
    est, X = fitted
    looks_like_mask = np.array([0, 0, 1, 0, 1, 0])
    with pytest.warns(UserWarning, match="read as corpus ids .* boolean array"):
        ids = _ids(est, X, filter=looks_like_mask)
    assert ids == [0, 1]  # the rule holds: items 0 and 1, not 2 and 4
    with pytest.warns(UserWarning, match="only 0s and 1s"):
        res = est.search(X[:1], top_k=5, filter=looks_like_mask.tolist())
    assert sorted(h["corpus_id"] for h in res[0]) == [0, 1]
    with pytest.raises(ValueError, match="1-D"):
        est.search(X[:1], filter=np.array([[2, 4]]))


@pytest.mark.parametrize("k", [2.5, None, 5.0, "5", True, []])
def test_evaluate_k_must_be_int_or_ints(fitted, k):
    est, X = fitted
    with pytest.raises(TypeError, match="k must be an int"):
        est.evaluate(X[:2], [0, 1], k=k)


def test_evaluate_accepts_int_and_sequences(fitted):
    est, X = fitted
    one = est.evaluate(X[:2], [0, 1], k=np.int64(1))
    assert one == {"recall@1": 1.0, "ndcg@1": 1.0}  # each query is a corpus item
    both = est.evaluate(X[:2], [0, 1], k=(1, 3))
    assert set(both) == {"recall@1", "ndcg@1", "recall@3", "ndcg@3"}
    with pytest.raises(TypeError, match="k must be an int"):
        est.evaluate(X[:2], [0, 1], k=[1, 2.5])
