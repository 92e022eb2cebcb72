"""recall_at_k, distance_correlation and graph_recall: hand cases, references, bad input."""

import numpy as np
import pytest
import scipy.sparse as sp

from sksemantic.graph import SemanticGraphTransformer
from sksemantic.metrics import distance_correlation, graph_recall, ndcg_at_k, recall_at_k

X_LINE = np.array([[0.0], [1.0], [3.0], [10.0]])
CODES_LINE = np.array([[0, 0], [0, 1], [0, 0], [1, 0]])


def test_recall_hand_computed_prefix_ties():
    # Exact nearest: 0->1, 1->0, 2->1, 3->2.
    # Code space: 0 and 2 share both levels (each finds the other: 0 hits);
    # 1 ties 0 and 2 at one shared level (1/2); 3 ties all three at none (1/3).
    assert recall_at_k(X_LINE, CODES_LINE, k=1, n_queries=None) == pytest.approx(
        (0 + 1 / 2 + 0 + 1 / 3) / 4
    )
    # k=2. Exact: 0->{1,2}, 1->{0,2}, 2->{1,0}, 3->{2,1}.
    # 0: takes 2, then 1 (the only one sharing a level): {2,1} -> 2/2.
    # 1: takes 0 and 2 (both share one level) -> 2/2.
    # 2: takes 0, then 1 -> {0,1} -> 2/2.
    # 3: two of three tied: expected 2/3 of each of 2 true neighbours -> (4/3)/2.
    assert recall_at_k(X_LINE, CODES_LINE, k=2, n_queries=None) == pytest.approx(
        (1 + 1 + 1 + 2 / 3) / 4
    )


def test_recall_hand_computed_reconstruction():
    R = np.array([[0.5], [1.0], [2.5], [10.0]])
    # Reconstruction distance orders the ties: 1 takes 0 (hit), 3 takes 2 (hit).
    assert recall_at_k(X_LINE, CODES_LINE, reconstruction=R, k=1, n_queries=None) == 0.5
    # Reconstruction alone: nearest reconstructions 0->1, 1->0, 2->1, 3->2: all right.
    assert recall_at_k(X_LINE, reconstruction=R, k=1, n_queries=None) == 1.0
    # Equal reconstructions are tied: 0 and 1 both at 0.0 -> 2 ties 0 and 1 (1/2).
    R_tied = np.array([[0.0], [0.0], [2.0], [9.0]])
    assert recall_at_k(
        X_LINE, reconstruction=R_tied, k=1, n_queries=None
    ) == pytest.approx((1 + 1 + 0.5 + 1) / 4)


def test_recall_one_code_is_chance():
    # Every item tied with every other: expected recall is k / (n - 1) exactly.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(41, 5))
    codes = np.zeros((41, 2), dtype=int)
    assert recall_at_k(X, codes, k=4, n_queries=None) == pytest.approx(4 / 40)


def test_recall_perfect_codes():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    # Identity reconstruction ranks exactly as X does.
    assert recall_at_k(X, reconstruction=X, k=5, n_queries=None) == 1.0
    assert recall_at_k(X, np.zeros((60, 1), int), reconstruction=X, k=5) == 1.0


def _reference_recall(X, codes, R, k, n_draws, rng):
    """Monte-Carlo recall with explicit random tie-breaking, by sorting tuples."""
    n = len(X)
    D = np.linalg.norm(X[:, None] - X[None], axis=2)
    total = 0.0
    for i in range(n):
        others = [j for j in range(n) if j != i]
        exact = set(sorted(others, key=lambda j: (D[i, j], j))[:k])
        prefix = {j: int(np.cumprod(codes[i] == codes[j]).sum()) for j in others}
        rdist = {j: float(np.linalg.norm(R[i] - R[j])) for j in others}
        for _ in range(n_draws):
            noise = {j: rng.random() for j in others}
            found = sorted(others, key=lambda j: (-prefix[j], rdist[j], noise[j]))[:k]
            total += len(exact & set(found)) / k
    return total / (n * n_draws)


def test_recall_matches_monte_carlo_reference():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(30, 2))
    codes = rng.integers(0, 2, size=(30, 3))
    # A reconstruction with many exact ties (few distinct rows).
    R = np.round(X, 0)
    for rec in (None, R):
        got = recall_at_k(X, codes, reconstruction=rec, k=4, n_queries=None)
        ref = _reference_recall(
            X, codes, R if rec is not None else np.zeros_like(X), 4, 300, rng
        )
        assert abs(got - ref) < 0.01, (rec is None, got, ref)


def test_ndcg_hand_computed():
    # k=2: relevance 2 for the nearest, 1 for the second; discounts 1 and 1/log2(3).
    d1 = 1 / np.log2(3)
    idcg = 2 + d1
    dcg = [
        1 + 2 * d1,  # 0: ranks 2 then 1 (exact 1 then 2)
        3 * (1 + d1) / 2,  # 1: 0 and 2 tied over both places
        1 + 2 * d1,  # 2: ranks 0 then 1 (exact 1 then 0)
        3 * (1 + d1) / 3,  # 3: three-way tie over places 0, 1, 2 (the last one is cut)
    ]
    assert ndcg_at_k(X_LINE, CODES_LINE, k=2, n_queries=None) == pytest.approx(
        np.mean(dcg) / idcg
    )
    # k=1 is recall@1; the exact order itself scores 1.
    assert ndcg_at_k(X_LINE, CODES_LINE, k=1, n_queries=None) == pytest.approx(
        recall_at_k(X_LINE, CODES_LINE, k=1, n_queries=None)
    )
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    assert ndcg_at_k(X, reconstruction=X, k=5, n_queries=None) == pytest.approx(1.0)


def _reference_ndcg(X, codes, R, k, n_draws, rng):
    """Monte-Carlo NDCG with explicit random tie-breaking, by sorting tuples."""
    n = len(X)
    D = np.linalg.norm(X[:, None] - X[None], axis=2)
    disc = 1 / np.log2(np.arange(k) + 2)
    idcg = np.sum((k - np.arange(k)) * disc)
    total = 0.0
    for i in range(n):
        others = [j for j in range(n) if j != i]
        exact = sorted(others, key=lambda j: (D[i, j], j))[:k]
        rel = {j: k - r for r, j in enumerate(exact)}
        prefix = {j: int(np.cumprod(codes[i] == codes[j]).sum()) for j in others}
        rdist = {j: float(np.linalg.norm(R[i] - R[j])) for j in others}
        for _ in range(n_draws):
            noise = {j: rng.random() for j in others}
            found = sorted(others, key=lambda j: (-prefix[j], rdist[j], noise[j]))[:k]
            total += sum(rel.get(j, 0) * disc[p] for p, j in enumerate(found)) / idcg
    return total / (n * n_draws)


def test_ndcg_matches_monte_carlo_reference():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(25, 2))
    codes = rng.integers(0, 2, size=(25, 3))
    R = np.round(X, 0)
    for rec in (None, R):
        got = ndcg_at_k(X, codes, reconstruction=rec, k=4, n_queries=None)
        ref = _reference_ndcg(X, codes, R if rec is not None else np.zeros_like(X), 4, 300, rng)
        assert abs(got - ref) < 0.01, (rec is None, got, ref)


def test_recall_sampling_is_seeded():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    codes = rng.integers(0, 4, size=(300, 2))
    a = recall_at_k(X, codes, k=5, n_queries=50, random_state=1)
    assert a == recall_at_k(X, codes, k=5, n_queries=50, random_state=1)
    values = {recall_at_k(X, codes, k=5, n_queries=50, random_state=s) for s in range(5)}
    assert len(values) > 1  # the sample changes with the seed
    full = recall_at_k(X, codes, k=5, n_queries=None)
    assert abs(np.mean(list(values)) - full) < 0.05


def test_recall_bad_input():
    with pytest.raises(ValueError, match="codes has 3 rows but X has 4"):
        recall_at_k(X_LINE, CODES_LINE[:3])
    with pytest.raises(ValueError, match="reconstruction has 2 rows but X has 4"):
        recall_at_k(X_LINE, reconstruction=X_LINE[:2])
    with pytest.raises(ValueError, match="k=4 exceeds the 3 other items"):
        recall_at_k(X_LINE, CODES_LINE, k=4)
    with pytest.raises(TypeError, match="codes must hold integers, got dtype float64"):
        recall_at_k(X_LINE, CODES_LINE + 0.5, k=1)
    with pytest.raises(ValueError, match="codes must be 2-D"):
        recall_at_k(X_LINE, CODES_LINE[:, 0], k=1)
    with pytest.raises(ValueError, match="needs codes, reconstruction or both"):
        recall_at_k(X_LINE, k=1)
    with pytest.raises(ValueError, match="'k' parameter"):
        recall_at_k(X_LINE, CODES_LINE, k=0)
    with pytest.raises(ValueError, match="k=5 exceeds the 3 other items"):
        ndcg_at_k(X_LINE, CODES_LINE, k=5)
    with pytest.raises(ValueError, match="ndcg_at_k needs codes, reconstruction or both"):
        ndcg_at_k(X_LINE, k=1)


# Two tight pairs far apart: within-pair distance 1, across sqrt(9.5), all equal.
X_TETRA = np.array([[-0.5, 0, 0], [0.5, 0, 0], [0, -0.5, 3], [0, 0.5, 3]])


def test_distance_correlation_hand_computed():
    grouped = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    assert distance_correlation(X_TETRA, grouped, n_pairs=100) == pytest.approx(1.0)
    # Codes grouping across the pairs: both near pairs are 2 apart in code space, so
    # the correlation turns negative.
    crossed = np.array([[0, 0], [1, 0], [0, 1], [1, 1]])
    assert distance_correlation(X_TETRA, crossed, n_pairs=100) < -0.3
    # Hamming ignores the hierarchy: (0,0)-(1,0) is 1 apart, as far as (0,0)-(0,1).
    hier_vs_ham = np.array([[0, 0], [0, 1], [1, 1], [1, 0]])
    assert distance_correlation(X_TETRA, hier_vs_ham, n_pairs=100) == pytest.approx(1.0)
    assert distance_correlation(
        X_TETRA, hier_vs_ham, code_metric="hamming", n_pairs=100
    ) < 0.9
    # One code for everything: no ranking, NaN.
    assert np.isnan(distance_correlation(X_TETRA, np.zeros((4, 1), int)))


def test_distance_correlation_bad_input():
    with pytest.raises(ValueError, match="codes has 2 rows but X has 4"):
        distance_correlation(X_TETRA, np.zeros((2, 1), int))
    with pytest.raises(ValueError, match="at least 2"):
        distance_correlation(X_TETRA[:1], np.zeros((1, 1), int))


def test_graph_recall_query_graph():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 8)).astype(np.float32)
    fit, queries = X[:300], X[300:]
    exact = SemanticGraphTransformer(n_neighbors=5, algorithm="brute").fit(fit)
    assert graph_recall(exact.transform(queries), queries, X_fit=fit, n_neighbors=5) == 1.0
    approx = SemanticGraphTransformer(
        n_neighbors=5, algorithm="ivf", n_lists=30, n_probe=1, random_state=0
    ).fit(fit)
    low = graph_recall(approx.transform(queries), queries, X_fit=fit, n_neighbors=5)
    assert 0.1 < low < 0.9
    # A graph whose rows hold other points scores about chance (5 / 300).
    G = exact.transform(queries)
    shifted = sp.csr_matrix((G.data, (G.indices + 150) % 300, G.indptr), shape=G.shape)
    assert graph_recall(shifted, queries, X_fit=fit, n_neighbors=5) < 0.1
    with pytest.raises(ValueError, match="must be \\(100, 300\\)"):
        graph_recall(G[:, :200], queries, X_fit=fit)
    with pytest.raises(ValueError, match="X has 8 features but X_fit has 4"):
        graph_recall(G, queries, X_fit=fit[:, :4])
