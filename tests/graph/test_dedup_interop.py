import networkx as nx
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from sksemantic.graph import SemanticDeduplicator, SemanticGraphTransformer, to_networkx, to_pandas
from tests._helpers import blobs


def _families(seed=0, n_families=60, n_features=32):
    """Families of near-duplicates (tiny noise) around unrelated random points."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n_families, n_features))
    sizes = rng.integers(1, 5, size=n_families)
    family = np.repeat(np.arange(n_families), sizes)
    X = base[family] + 0.01 * rng.normal(size=(family.size, n_features))
    perm = rng.permutation(family.size)
    return X[perm], family[perm]


def test_dedup_recovers_families():
    X, family = _families()
    dedup = SemanticDeduplicator(min_similarity=0.95).fit(X)
    assert adjusted_rand_score(family, dedup.labels_) == 1.0
    assert dedup.n_groups_ == len(np.unique(family))
    # One representative per group, inside its group, numbered by first appearance.
    assert len(dedup.representatives_) == dedup.n_groups_
    np.testing.assert_array_equal(dedup.labels_[dedup.representatives_], np.arange(dedup.n_groups_))
    _, first = np.unique(dedup.labels_, return_index=True)
    assert (np.diff(first) > 0).all()
    assert (dedup.fit_predict(X) == dedup.labels_).all()


def test_dedup_chains_and_picks_central_representative():
    # 0-1-2 on a line, 1 in the middle links to both; 3 is apart.
    X = np.array([[1.0, 0.00], [1.0, 0.05], [1.0, 0.10], [0.0, 1.0]])
    dedup = SemanticDeduplicator(min_similarity=0.998, n_neighbors=1).fit(X)
    assert dedup.labels_.tolist() == [0, 0, 0, 1]
    assert dedup.representatives_.tolist() == [1, 3]


def test_dedup_distance_threshold_and_errors():
    X, family = _families(seed=1)
    by_dist = SemanticDeduplicator(max_distance=0.05).fit(X)
    assert adjusted_rand_score(family, by_dist.labels_) == 1.0
    with pytest.raises(ValueError, match="NaN"):
        SemanticDeduplicator().fit(np.array([[np.nan, 1.0], [1.0, 0.0]]))


def test_to_networkx_weights_and_metadata():
    X, _ = blobs(n_samples=80, n_features=8)
    S = SemanticGraphTransformer(n_neighbors=4, mode="similarity").fit_transform(X)
    labels = [f"doc{i}" for i in range(80)]
    G = to_networkx(S, labels=labels, node_attributes=[{"i": i, "even": i % 2 == 0} for i in range(80)])
    pairs = {(min(i, j), max(i, j)) for i, j in zip(*S.nonzero(), strict=True) if i != j}
    assert G.number_of_nodes() == 80
    assert set(G.edges()) == pairs
    for a, b, w in G.edges(data="weight"):
        assert w == pytest.approx(S[a, b] if S[a, b] else S[b, a])
    assert G.nodes[5] == {"label": "doc5", "i": 5, "even": False}
    communities = nx.community.louvain_communities(G, seed=0)
    assert sum(len(c) for c in communities) == 80


def test_to_networkx_rejects_mismatched_metadata():
    S = SemanticGraphTransformer(n_neighbors=1).fit_transform(np.eye(3))
    with pytest.raises(ValueError, match="labels has 2 entries; the graph has 3 nodes"):
        to_networkx(S, labels=["a", "b"])
    with pytest.raises(ValueError, match=r"node_attributes\['x'\] has 1 entries"):
        to_networkx(S, node_attributes={"x": [1]})
    with pytest.raises(TypeError, match="node_attributes must be"):
        to_networkx(S, node_attributes="bad")


def test_to_pandas_from_matrix_and_from_networkx_agree():
    X, _ = blobs(n_samples=50, n_features=8)
    S = SemanticGraphTransformer(n_neighbors=3, mode="similarity").fit_transform(X)
    meta = pd.DataFrame({"topic": [i % 3 for i in range(50)]})
    nodes, edges = to_pandas(S, labels=list(range(50)), node_attributes=meta)
    nodes2, edges2 = to_pandas(to_networkx(S, labels=list(range(50)), node_attributes=meta))
    assert list(nodes.columns) == ["node", "label", "topic"]
    assert (edges["source"] < edges["target"]).all()
    key = ["source", "target"]
    merged = edges.merge(edges2, on=key, suffixes=("", "_nx"))
    assert len(merged) == len(edges) == len(edges2)
    np.testing.assert_allclose(merged["weight"], merged["weight_nx"], rtol=1e-6)
    pd.testing.assert_frame_equal(nodes, nodes2[nodes.columns], check_dtype=False)
