"""retrieval_recall_at_k and retrieval_ndcg_at_k on hand-computed cases and against sklearn."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import ndcg_score

from sksemantic.metrics import retrieval_ndcg_at_k, retrieval_recall_at_k


def test_recall_hand_computed():
    retrieved = np.array([[3, 1, 2, 7], [0, 4, 5, 6], [9, 8, 7, 6]])
    # Known items: found at rank 2, at rank 3, never.
    assert retrieval_recall_at_k([1, 5, 0], retrieved, k=1) == 0.0
    assert retrieval_recall_at_k([1, 5, 0], retrieved, k=2) == pytest.approx(1 / 3)
    assert retrieval_recall_at_k([1, 5, 0], retrieved, k=3) == pytest.approx(2 / 3)
    # Sets of ids: 1/2, 2/2, 0/1; a query with nothing relevant is left out.
    sets = [{1, 8}, [4, 6], {0}]
    assert retrieval_recall_at_k(sets, retrieved, k=4) == pytest.approx((0.5 + 1 + 0) / 3)
    assert retrieval_recall_at_k([{1}, [], [8]], retrieved, k=2) == pytest.approx(1.0)
    # Padding ids never count.
    assert retrieval_recall_at_k([0], [[-1, -1]], k=2) == 0.0


def test_ndcg_matches_sklearn_on_graded_relevance():
    rng = np.random.default_rng(0)
    n_q, n_items, k = 30, 50, 10
    gains = rng.integers(0, 4, size=(n_q, n_items)) * (rng.random((n_q, n_items)) < 0.2)
    gains[0] = 0  # no relevant item: left out (sklearn counts it as 0, so drop it there)
    scores = rng.random((n_q, n_items))
    retrieved = np.argsort(-scores, axis=1)
    ours = retrieval_ndcg_at_k(gains, retrieved, k=k)
    ref = ndcg_score(gains[1:], scores[1:], k=k)
    assert ours == pytest.approx(ref, rel=1e-10)
    assert retrieval_ndcg_at_k(sp.csr_matrix(gains), retrieved, k=k) == pytest.approx(ours)


def test_ndcg_hand_computed_known_item():
    assert retrieval_ndcg_at_k([0, 2], [[0, 1, 2], [0, 1, 2]], k=3) == pytest.approx((1 + 0.5) / 2)
    assert retrieval_ndcg_at_k([2], [[0, 1, 2]], k=2) == 0.0


def test_bad_input():
    with pytest.raises(ValueError, match="queries"):
        retrieval_recall_at_k([1, 2, 3], [[1], [2]], k=1)
    with pytest.raises(ValueError, match="k must be"):
        retrieval_ndcg_at_k([1], [[1]], k=0)
    with pytest.raises(ValueError, match="2-d integer"):
        retrieval_ndcg_at_k([1], [1.0, 2.0], k=1)
    with pytest.raises(ValueError, match="No query"):
        retrieval_recall_at_k([[]], [[1]], k=1)
    with pytest.raises(ValueError, match="non-negative"):
        retrieval_ndcg_at_k(np.array([[-1.0, 1.0]]), [[0, 1]], k=1)


@pytest.mark.parametrize("metric", [retrieval_recall_at_k, retrieval_ndcg_at_k])
@pytest.mark.parametrize(
    "relevant, error, match",
    [
        (None, TypeError, "relevant must be the relevant corpus id"),
        (3, TypeError, "got int"),
        ([1.5, 5.0], TypeError, "relevant must hold integer corpus ids, got dtype float64"),
        (np.array([1.0, 5.0]), TypeError, "float64"),  # once truncated to 1 and 5
        ([[1.7], [5]], TypeError, r"relevant\[0\] must hold integer corpus ids"),
        (["1", "5"], TypeError, "integer corpus ids"),
        ([True, False], TypeError, "got dtype bool"),
        ([[1], "5"], TypeError, r"relevant\[1\] must be a collection"),
    ],
)
def test_relevant_ids_must_be_integers(metric, relevant, error, match):
    retrieved = [[3, 1, 2], [0, 4, 5]]
    with pytest.raises(error, match=match):
        metric(relevant, retrieved, k=2)


def test_integer_ids_in_any_container():
    retrieved = [[3, 1, 2], [0, 4, 5]]
    expected = retrieval_recall_at_k([1, 5], retrieved, k=3)
    assert expected == 1.0
    for relevant in (np.array([1, 5], dtype=np.uint8), [np.int64(1), 5], ({1}, (5,)), [[1], np.array([5])]):
        assert retrieval_recall_at_k(relevant, retrieved, k=3) == expected
