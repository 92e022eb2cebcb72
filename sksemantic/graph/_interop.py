"""Exports of neighbour graphs to NetworkX and pandas."""

import numpy as np
import scipy.sparse as sp

from ..utils import import_optional

__all__ = ["to_networkx", "to_pandas"]


def _node_table(n, labels, node_attributes):
    """Per-node attributes as ``{name: sequence}``, checked against ``n``."""
    table = {}
    if labels is not None:
        labels = list(labels)
        if len(labels) != n:
            raise ValueError(f"labels has {len(labels)} entries; the graph has {n} nodes.")
        table["label"] = labels
    if node_attributes is None:
        return table
    if hasattr(node_attributes, "to_dict") and hasattr(node_attributes, "columns"):
        node_attributes = {c: node_attributes[c].tolist() for c in node_attributes.columns}
    elif isinstance(node_attributes, (list, tuple)):
        if len(node_attributes) != n:
            raise ValueError(
                f"node_attributes has {len(node_attributes)} records; the graph has {n} nodes."
            )
        keys = sorted({k for rec in node_attributes for k in rec})
        node_attributes = {k: [rec.get(k) for rec in node_attributes] for k in keys}
    elif not isinstance(node_attributes, dict):
        raise TypeError(
            "node_attributes must be a dict of per-node sequences, a list of per-node dicts "
            f"or a pandas DataFrame, got {type(node_attributes).__name__}."
        )
    for name, values in node_attributes.items():
        values = list(values)
        if len(values) != n:
            raise ValueError(
                f"node_attributes[{name!r}] has {len(values)} entries; the graph has {n} nodes."
            )
        table[name] = values
    return table


def _undirected_edges(graph):
    """Upper-triangle edges (i < j) of a square sparse graph, explicit zeros included.

    A pair stored in both directions becomes one edge with the value stored at (i, j)
    when ``i < j`` holds it, else the value at (j, i) (the metrics are symmetric, so the
    two agree up to round-off). Self-loops are dropped.
    """
    graph = sp.csr_matrix(graph)
    if graph.shape[0] != graph.shape[1]:
        raise ValueError(f"graph must be square (a graph of X over itself), got {graph.shape}.")
    coo = graph.tocoo()
    r, c, v = coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data
    off = r != c
    r, c, v = r[off], c[off], v[off]
    lo, hi = np.minimum(r, c), np.maximum(r, c)
    # Prefer the entry stored as (lo, hi) when both directions exist: sort so it comes first.
    order = np.lexsort((r != lo, hi, lo))
    lo, hi, v = lo[order], hi[order], v[order]
    first = np.ones(lo.size, dtype=bool)
    first[1:] = (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])
    return lo[first], hi[first], v[first]


def to_networkx(graph, labels=None, node_attributes=None, *, weight="weight"):
    """An undirected :class:`networkx.Graph` from a sparse neighbour graph.

    Nodes are ``0 .. n - 1`` (the rows of the embeddings); every stored off-diagonal
    entry becomes an edge carrying its value as ``weight``, so build the graph with
    ``mode="similarity"`` for community detection and centrality (larger means closer)
    or ``mode="distance"`` for shortest paths. Metadata can be given here and edited
    later with NetworkX (``nx.set_node_attributes``), as in semnet.

    Parameters
    ----------
    graph : sparse matrix of shape (n, n)
        Output of :meth:`SemanticGraphTransformer.fit_transform` (any mode).
    labels : sequence of length n, default=None
        Stored as the node attribute ``"label"`` (e.g. the texts).
    node_attributes : dict of sequences, list of dicts or pandas.DataFrame, default=None
        Per-node metadata; each key/column becomes a node attribute.
    weight : str, default="weight"
        Name of the edge attribute holding the stored value.

    Returns
    -------
    G : networkx.Graph

    Examples
    --------
    >>> import numpy as np, networkx as nx
    >>> from sksemantic.graph import SemanticGraphTransformer, to_networkx
    >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> S = SemanticGraphTransformer(n_neighbors=1, mode="similarity").fit_transform(X)
    >>> G = to_networkx(S, labels=["cat", "kitten", "car", "truck"],
    ...                 node_attributes={"kind": ["animal", "animal", "vehicle", "vehicle"]})
    >>> sorted(G.edges())
    [(0, 1), (2, 3)]
    >>> G.nodes[1]["label"], G.nodes[1]["kind"]
    ('kitten', 'animal')
    >>> nx.set_node_attributes(G, {0: "felis"}, "genus")  # edit after construction
    >>> G.nodes[0]["genus"]
    'felis'
    """
    nx = import_optional("networkx", purpose="to_networkx")
    lo, hi, v = _undirected_edges(graph)
    n = graph.shape[0]
    table = _node_table(n, labels, node_attributes)
    G = nx.Graph()
    if table:
        names = list(table)
        G.add_nodes_from(
            (i, dict(zip(names, vals, strict=True))) for i, vals in enumerate(zip(*table.values(), strict=True))
        )
    else:
        G.add_nodes_from(range(n))
    G.add_weighted_edges_from(zip(lo.tolist(), hi.tolist(), v.tolist(), strict=True), weight=weight)
    return G


def to_pandas(graph, labels=None, node_attributes=None, *, weight="weight"):
    """Nodes and edges DataFrames from a sparse neighbour graph or a NetworkX graph.

    Parameters
    ----------
    graph : sparse matrix of shape (n, n) or networkx.Graph
        A graph from :class:`SemanticGraphTransformer` or :func:`to_networkx`.
    labels, node_attributes : see :func:`to_networkx`
        Ignored for a NetworkX graph, whose node attributes are used.
    weight : str, default="weight"
        Name of the edge value column.

    Returns
    -------
    nodes : pandas.DataFrame
        One row per node: ``node`` and one column per attribute.
    edges : pandas.DataFrame
        One row per undirected edge: ``source``, ``target`` (``source < target``) and
        ``weight``.

    Examples
    --------
    >>> import numpy as np
    >>> from sksemantic.graph import SemanticGraphTransformer, to_pandas
    >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> S = SemanticGraphTransformer(n_neighbors=1, mode="similarity").fit_transform(X)
    >>> nodes, edges = to_pandas(S, labels=["cat", "kitten", "car", "truck"])
    >>> edges[["source", "target"]].values.tolist()
    [[0, 1], [2, 3]]
    >>> nodes["label"].tolist()
    ['cat', 'kitten', 'car', 'truck']
    """
    pd = import_optional("pandas", purpose="to_pandas")
    if sp.issparse(graph) or isinstance(graph, np.ndarray):
        lo, hi, v = _undirected_edges(graph)
        n = graph.shape[0]
        nodes = pd.DataFrame({"node": np.arange(n), **_node_table(n, labels, node_attributes)})
        edges = pd.DataFrame({"source": lo, "target": hi, weight: v})
        return nodes, edges
    nodes = pd.DataFrame([{"node": node, **attrs} for node, attrs in graph.nodes(data=True)])
    rows = [
        {"source": min(a, b), "target": max(a, b), weight: d.get(weight)}
        for a, b, d in graph.edges(data=True)
    ]
    edges = pd.DataFrame(rows, columns=["source", "target", weight])
    return nodes, edges
