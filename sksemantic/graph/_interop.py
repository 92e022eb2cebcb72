"""Exports of neighbour graphs to NetworkX and pandas."""

from numbers import Integral

import numpy as np
import scipy.sparse as sp

from ..utils import import_optional

__all__ = ["to_networkx", "to_pandas"]


def _check_graph(graph, name, also=""):
    """A square sparse or dense adjacency matrix, else a TypeError naming ``graph``."""
    if not (sp.issparse(graph) or isinstance(graph, np.ndarray)):
        raise TypeError(
            f"{name} needs graph as a sparse matrix or 2-D array of shape (n, n){also}, "
            "e.g. SemanticGraphTransformer().fit_transform(X); got "
            f"{type(graph).__name__}."
        )
    if graph.ndim != 2 or graph.shape[0] != graph.shape[1]:
        raise ValueError(f"graph must be square (a graph of X over itself), got {graph.shape}.")


def _as_list(values):
    return values.tolist() if getattr(values, "ndim", None) == 1 else list(values)


def _per_node_records(n, node_attributes):
    """``{node: {attr: value}}`` of the per-node forms: a dict keyed by node index, or a
    sequence with one record per node. A record that is not a dict is ``{"value": it}``;
    a None record gives the node no attributes."""
    if isinstance(node_attributes, dict):
        items = node_attributes.items()
        bad = sorted(int(i) for i in node_attributes if not 0 <= i < n)
        if bad:
            raise ValueError(
                f"node_attributes has invalid indices {bad}; indices must be 0 <= idx < {n}."
            )
    else:
        if len(node_attributes) != n:
            raise ValueError(
                f"node_attributes has {len(node_attributes)} records; the graph has {n} nodes."
            )
        items = enumerate(node_attributes)
    return {
        int(i): dict(rec) if isinstance(rec, dict) else {"value": rec}
        for i, rec in items
        if rec is not None
    }


def _columns(n, node_attributes):
    """``{attr: values}`` of the column forms, each with one value per node."""
    if hasattr(node_attributes, "columns") and hasattr(node_attributes, "iloc"):
        if len(node_attributes) != n:
            raise ValueError(
                f"node_attributes has {len(node_attributes)} rows; the graph has {n} nodes."
            )
        return {c: node_attributes[c].tolist() for c in node_attributes.columns}
    table = {}
    for name, values in node_attributes.items():
        if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__len__"):
            raise TypeError(
                f"node_attributes[{name!r}] must be a sequence with one value per node, got "
                f"{type(values).__name__}; for a per-node dict key it by node index (int)."
            )
        if len(values) != n:
            raise ValueError(
                f"node_attributes[{name!r}] has {len(values)} entries; the graph has {n} nodes."
            )
        table[name] = _as_list(values)
    return table


def _node_data(n, labels, node_attributes):
    """Node attributes as ``(columns, records)``: ``columns`` maps a name to one value
    per node (labels and the column forms), ``records`` maps a node to its own
    attributes (the per-node forms; nodes left out have none)."""
    columns, records = {}, {}
    if labels is not None:
        if isinstance(labels, (str, bytes, dict)) or not hasattr(labels, "__len__"):
            raise TypeError(
                f"labels must be a sequence with one label per node, got {type(labels).__name__}."
            )
        if len(labels) != n:
            raise ValueError(f"labels has {len(labels)} entries; the graph has {n} nodes.")
        columns["label"] = _as_list(labels)
    if node_attributes is None:
        return columns, records
    if isinstance(node_attributes, dict):
        kinds = {
            "int" if isinstance(k, Integral) and not isinstance(k, bool)
            else "str" if isinstance(k, str) else type(k).__name__
            for k in node_attributes
        }
        if kinds - {"int", "str"} or len(kinds) > 1:
            raise TypeError(
                "node_attributes keys must be all int (node index -> that node's attributes) "
                "or all str (attribute name -> one value per node); got keys of type(s) "
                f"{sorted(kinds)}."
            )
        per_node = kinds == {"int"}
    elif hasattr(node_attributes, "columns") and hasattr(node_attributes, "iloc"):
        per_node = False
    elif isinstance(node_attributes, (list, tuple)):
        per_node = True
    else:
        raise TypeError(
            "node_attributes must be a dict (keyed by node index or by attribute name), a "
            f"list of per-node records or a pandas DataFrame, got {type(node_attributes).__name__}."
        )
    if per_node:
        records = _per_node_records(n, node_attributes)
        names = {name for rec in records.values() for name in rec}
    else:
        table = _columns(n, node_attributes)
        names = set(table)
        columns.update(table)
    if labels is not None and "label" in names:
        raise ValueError(
            "labels and node_attributes both set the attribute 'label'; give it once."
        )
    return columns, records


def _undirected_edges(graph):
    """Upper-triangle edges (i < j) of a square sparse graph, explicit zeros included.

    A pair stored in both directions becomes one edge with the value stored at (i, j)
    when ``i < j`` holds it, else the value at (j, i) (the metrics are symmetric, so the
    two agree up to round-off). Self-loops are dropped.
    """
    coo = sp.csr_matrix(graph).tocoo()
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
    graph : sparse matrix or ndarray of shape (n, n)
        Output of :meth:`SemanticGraphTransformer.fit_transform` (any mode).
    labels : sequence of length n, default=None
        Stored as the node attribute ``"label"`` (e.g. the texts).
    node_attributes : dict, list or pandas.DataFrame, default=None
        Per-node metadata, in one of two layouts told apart by the keys, never by the
        lengths:

        - per node, as semnet's ``node_data``: a dict keyed by **int** node index,
          ``{0: {"kind": "animal"}, 2: {"kind": "vehicle"}}``, or a list of n records
          in node order. A record that is not a dict is stored as the attribute
          ``"value"`` (``{0: "x"}`` gives node 0 ``value="x"``); nodes left out (or
          with a None record) get no attributes. An index outside ``0 .. n - 1`` is an
          error.
        - per attribute: a dict keyed by **str** attribute name, each value a sequence
          of n values in node order (``{"kind": ["animal", ...]}``), or a DataFrame
          with n rows in node order (one attribute per column).

        A dict mixing int and str keys is an error, as is an attribute ``"label"``
        when ``labels`` is given.
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

    The per-node layout of semnet, with a scalar record for node 3:

    >>> G = to_networkx(S, node_attributes={0: {"kind": "animal", "legs": 4}, 3: "truck"})
    >>> G.nodes[0], G.nodes[3], G.nodes[1]
    ({'kind': 'animal', 'legs': 4}, {'value': 'truck'}, {})
    >>> nx.set_node_attributes(G, {0: "felis"}, "genus")  # edit after construction
    >>> G.nodes[0]["genus"]
    'felis'
    """
    nx = import_optional("networkx", purpose="to_networkx")
    _check_graph(graph, "to_networkx")
    n = graph.shape[0]
    columns, records = _node_data(n, labels, node_attributes)
    lo, hi, v = _undirected_edges(graph)
    G = nx.Graph()
    G.add_nodes_from(range(n))
    for name, values in columns.items():
        nx.set_node_attributes(G, dict(enumerate(values)), name)
    for node, rec in records.items():
        G.nodes[node].update(rec)
    G.add_weighted_edges_from(zip(lo.tolist(), hi.tolist(), v.tolist(), strict=True), weight=weight)
    return G


def to_pandas(graph, labels=None, node_attributes=None, *, weight="weight"):
    """Nodes and edges DataFrames from a sparse neighbour graph or a NetworkX graph.

    Parameters
    ----------
    graph : sparse matrix or ndarray of shape (n, n), or networkx.Graph
        A graph from :class:`SemanticGraphTransformer` or :func:`to_networkx`.
    labels, node_attributes : see :func:`to_networkx`
        For a sparse graph only: a NetworkX graph carries its own node attributes,
        and passing these with one is an error.
    weight : str, default="weight"
        Name of the edge value column.

    Returns
    -------
    nodes : pandas.DataFrame
        One row per node: ``node`` and one column per attribute (missing values are
        NaN). The ``node`` column is there even for a graph without nodes.
    edges : pandas.DataFrame
        One row per undirected edge: ``source``, ``target`` (``source < target``) and
        ``weight``, also when there are no edges.

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
    if hasattr(graph, "nodes") and hasattr(graph, "edges") and not sp.issparse(graph):
        if labels is not None or node_attributes is not None:
            raise ValueError(
                "labels and node_attributes apply to a sparse graph; a networkx graph "
                "carries its own node attributes (set them with nx.set_node_attributes)."
            )
        return _pandas_from_networkx(pd, graph, weight)
    _check_graph(graph, "to_pandas", also=" or a networkx.Graph")
    n = graph.shape[0]
    columns, records = _node_data(n, labels, node_attributes)
    if "node" in columns or any("node" in rec for rec in records.values()):
        raise ValueError("node_attributes has an attribute 'node', the name of the node column.")
    lo, hi, v = _undirected_edges(graph)
    nodes = pd.DataFrame({"node": np.arange(n), **columns})
    if records:
        extra = pd.DataFrame.from_dict(records, orient="index").reindex(range(n))
        nodes = pd.concat([nodes, extra.reset_index(drop=True)], axis=1)
    edges = pd.DataFrame({"source": lo, "target": hi, weight: v})
    return nodes, edges


def _pandas_from_networkx(pd, graph, weight):
    rows = []
    for node, attrs in graph.nodes(data=True):
        if "node" in attrs:
            raise ValueError(
                f"node {node!r} has an attribute 'node', the name of the node column."
            )
        rows.append({"node": node, **attrs})
    nodes = pd.DataFrame(rows) if rows else pd.DataFrame({"node": np.zeros(0, dtype=np.int64)})
    edges = pd.DataFrame(
        [
            {"source": min(a, b), "target": max(a, b), weight: d.get(weight)}
            for a, b, d in graph.edges(data=True)
        ],
        columns=["source", "target", weight],
    )
    return nodes, edges
