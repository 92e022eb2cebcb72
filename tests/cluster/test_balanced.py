"""The balanced-assignment kernel: log-domain Sinkhorn and balanced k-means."""

import numpy as np
import pytest

from sksemantic.cluster import balanced_kmeans, kmeans
from sksemantic.cluster._balanced import balanced_assign, sinkhorn_potentials


def _skewed(seed=0):
    rng = np.random.default_rng(seed)
    sizes = [3000, 800, 200, 100, 50]
    return np.concatenate([rng.normal(rng.normal(0, 4, 6), 1, (s, 6)) for s in sizes])


def test_sinkhorn_plan_has_the_target_marginals():
    rng = np.random.default_rng(0)
    cost = rng.random((300, 7)) * 10
    eps = 0.5
    g = sinkhorn_potentials(cost, eps=eps, n_iter=2000, tol=1e-6)
    # Rebuild the plan: rows normalised to 1/n, columns must then be 1/k.
    logits = (g - cost) / eps
    plan = np.exp(logits - logits.max(axis=1, keepdims=True))
    plan /= plan.sum(axis=1, keepdims=True) * len(cost)
    np.testing.assert_allclose(plan.sum(axis=0), 1 / 7, rtol=1e-4)


def test_small_eps_balances_the_hard_assignment():
    X = _skewed()
    centers = X[np.random.default_rng(0).choice(len(X), 8, replace=False)]
    cost = ((X[:, None, :] - centers[None]) ** 2).sum(-1)
    spread = cost.std(axis=1).mean()
    nearest = np.bincount(cost.argmin(axis=1), minlength=8)
    g = sinkhorn_potentials(cost, eps=0.01 * spread, n_iter=3000)
    counts = np.bincount(balanced_assign(cost, g), minlength=8)
    assert counts.std() < 0.1 * nearest.std()
    assert counts.min() >= 0.8 * len(X) / 8


def test_no_underflow_at_tiny_eps():
    cost = np.array([[0.0, 1000.0], [0.0, 1000.0], [1000.0, 0.0], [0.0, 1001.0]])
    g = sinkhorn_potentials(cost, eps=1e-3, n_iter=200)
    assert np.all(np.isfinite(g))
    with pytest.raises(ValueError, match="eps"):
        sinkhorn_potentials(cost, eps=0)


def test_row_weights_give_spare_capacity():
    # Two items, four slots of capacity one: a dummy row holds the two spare slots.
    # Both prefer slot 0; the cheapest way apart moves item 1 (+0.5), not item 0 (+1).
    cost = np.array([[0.0, 1.0, 5.0, 5.0], [0.0, 5.0, 0.5, 5.0], [0.0, 0.0, 0.0, 0.0]])
    g = sinkhorn_potentials(cost, eps=0.02, n_iter=5000, row_weights=[1, 1, 2])
    assert balanced_assign(cost[:2], g).tolist() == [0, 2]


def test_balanced_kmeans_against_plain():
    X = _skewed().astype(np.float32)
    _, plain, plain_inertia, _ = kmeans(X, 8, random_state=0)
    centers, labels, inertia, _, offsets = balanced_kmeans(X, 8, random_state=0)
    counts, plain_counts = np.bincount(labels, minlength=8), np.bincount(plain, minlength=8)
    assert counts.std() / counts.mean() < 0.2
    assert counts.std() < 0.5 * plain_counts.std()
    # The offsets reproduce the labels on the training data ...
    d = ((X[:, None, :] - centers[None]) ** 2).sum(-1) - offsets
    assert np.mean(d.argmin(axis=1) == labels) > 0.999
    # ... and balancing costs reconstruction error, but within reason.
    assert plain_inertia <= inertia < 3 * plain_inertia
