"""to_networkx / to_pandas: semnet's per-node data, empty graphs, and input that is
refused rather than misread."""

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from sksemantic.graph import to_networkx, to_pandas


def _triangle():
    """A 3-node similarity graph with edges (0, 1) and (1, 2)."""
    return sp.csr_matrix(np.array([[0, 0.9, 0], [0.9, 0, 0.8], [0, 0.8, 0]]))


def test_semnet_per_node_form_with_as_many_attributes_as_nodes():
    # Three nodes with three attributes each: once read as three columns.
    data = {i: {"a": 10 * i, "b": str(i), "c": i % 2 == 0} for i in range(3)}
    G = to_networkx(_triangle(), node_attributes=data)
    for i in range(3):
        assert G.nodes[i] == data[i]
    assert sorted(G.edges(data="weight")) == [(0, 1, 0.9), (1, 2, 0.8)]


def test_semnet_scalar_values_and_partial_nodes():
    G = to_networkx(_triangle(), labels=["p", "q", "r"], node_attributes={0: "x", 1: 42})
    assert G.nodes[0] == {"label": "p", "value": "x"}
    assert G.nodes[1] == {"label": "q", "value": 42}
    assert G.nodes[2] == {"label": "r"}  # left out: no attributes
    G = to_networkx(_triangle(), node_attributes={np.int64(2): {"kind": "k"}})
    assert G.nodes[2] == {"kind": "k"} and G.nodes[0] == {}


def test_list_of_records_is_per_node():
    G = to_networkx(_triangle(), node_attributes=[{"a": 1}, "y", None])
    assert [G.nodes[i] for i in range(3)] == [{"a": 1}, {"value": "y"}, {}]


def test_column_form_is_unchanged():
    G = to_networkx(_triangle(), node_attributes={"kind": np.array(["u", "v", "w"])})
    assert [G.nodes[i]["kind"] for i in range(3)] == ["u", "v", "w"]


def test_invalid_node_indices_are_named():
    with pytest.raises(
        ValueError, match=r"node_attributes has invalid indices \[3\]; indices must be 0 <= idx < 3"
    ):
        to_networkx(_triangle(), node_attributes={0: "x", 3: "y"})
    with pytest.raises(ValueError, match=r"invalid indices \[-1, 5\]"):
        to_pandas(_triangle(), node_attributes={5: "x", -1: "y"})


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"node_attributes": {0: "x", "kind": [1, 2, 3]}}, TypeError, r"all int .* or all str"),
        ({"node_attributes": {1.0: "x"}}, TypeError, r"\['float'\]"),
        ({"node_attributes": {True: "x"}}, TypeError, r"\['bool'\]"),
        ({"node_attributes": {"kind": "abc"}}, TypeError, r"node_attributes\['kind'\] must be a sequence"),
        ({"node_attributes": {"kind": {0: "a"}}}, TypeError, "must be a sequence"),
        ({"node_attributes": {"kind": 3}}, TypeError, "must be a sequence"),
        ({"node_attributes": [{"a": 1}]}, ValueError, "1 records; the graph has 3 nodes"),
        ({"node_attributes": pd.DataFrame({"a": [1, 2]})}, ValueError, "2 rows"),
        ({"labels": "abc"}, TypeError, "labels must be a sequence"),
        ({"labels": ["p", "q", "r"], "node_attributes": {"label": [1, 2, 3]}}, ValueError, "'label'"),
        ({"labels": ["p", "q", "r"], "node_attributes": {0: {"label": 1}}}, ValueError, "'label'"),
    ],
)
def test_ambiguous_or_malformed_metadata_is_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        to_networkx(_triangle(), **kwargs)
    with pytest.raises(error, match=match):
        to_pandas(_triangle(), **kwargs)


def test_to_pandas_per_node_form_agrees_with_networkx():
    data = {0: {"a": 1}, 2: "z"}
    nodes, edges = to_pandas(_triangle(), labels=["p", "q", "r"], node_attributes=data)
    assert list(nodes.columns) == ["node", "label", "a", "value"]
    assert nodes["a"].tolist()[0] == 1 and nodes["a"].isna().tolist() == [False, True, True]
    assert nodes["value"].tolist()[2] == "z" and nodes["value"].isna().tolist() == [True, True, False]
    nodes2, edges2 = to_pandas(to_networkx(_triangle(), labels=["p", "q", "r"], node_attributes=data))
    pd.testing.assert_frame_equal(nodes, nodes2[nodes.columns], check_dtype=False)
    pd.testing.assert_frame_equal(edges, edges2, check_dtype=False)


def test_to_pandas_of_empty_graphs_keeps_its_columns():
    nodes, edges = to_pandas(nx.Graph())
    assert list(nodes.columns) == ["node"] and len(nodes) == 0
    assert list(edges.columns) == ["source", "target", "weight"] and len(edges) == 0
    G = nx.Graph()
    G.add_nodes_from([0, 1])
    nodes, edges = to_pandas(G, weight="sim")
    assert nodes["node"].tolist() == [0, 1]
    assert list(edges.columns) == ["source", "target", "sim"] and len(edges) == 0
    nodes, edges = to_pandas(sp.csr_matrix((0, 0)))
    assert list(nodes.columns) == ["node"] and list(edges.columns) == ["source", "target", "weight"]


def test_graph_must_be_a_graph():
    for func in (to_networkx, to_pandas):
        with pytest.raises(TypeError, match="got NoneType"):
            func(None)
        with pytest.raises(TypeError, match="got list"):
            func([[0, 1], [1, 0]])
        with pytest.raises(ValueError, match="square"):
            func(sp.csr_matrix((2, 3)))


def test_to_pandas_refuses_what_it_would_drop_or_overwrite():
    G = to_networkx(_triangle())
    with pytest.raises(ValueError, match="carries its own node attributes"):
        to_pandas(G, labels=["p", "q", "r"])
    with pytest.raises(ValueError, match="attribute 'node'"):
        to_pandas(_triangle(), node_attributes={"node": [7, 8, 9]})
    nx.set_node_attributes(G, {1: "x"}, "node")
    with pytest.raises(ValueError, match="node 1 has an attribute 'node'"):
        to_pandas(G)
