"""The picture of ``sksemantic demo``: the similarity graph coloured by community."""

import numpy as np

__all__ = ["draw_communities"]


def draw_communities(G, community, sections, section_names, path, *, n_neighbors,
                     min_similarity, n_shown=8):
    """Draw the largest communities of a similarity graph and save the picture.

    Each dot is a package, placed by a spring layout of the graph's edges; the legend
    gives each community's size and its most common Debian section with the share of
    members in it, since sections and communities rarely coincide.

    Parameters
    ----------
    G : networkx.Graph
        The similarity graph, nodes numbered as the rows of the embeddings.
    community : ndarray of shape (n_nodes,)
        Community of each node, numbered from the largest community down.
    sections : ndarray of shape (n_nodes,)
        Debian section of each node, as an index into ``section_names``.
    section_names : array-like of str
        Name of each section.
    path : str or path-like
        Where to write the picture (PNG).
    n_neighbors : int
        Neighbours per node the graph was built with (said in the title).
    min_similarity : float
        Smallest cosine similarity kept as an edge (said in the title).
    n_shown : int, default=8
        Number of communities drawn, the largest first.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx

    community = np.asarray(community)
    sections = np.asarray(sections)
    section_names = np.asarray(section_names)
    n_shown = min(n_shown, int(community.max()) + 1)
    members = [np.flatnonzero(community == c) for c in range(n_shown)]
    H = G.subgraph([int(n) for m in members for n in m])
    pos = nx.spring_layout(H, seed=0, weight="weight", iterations=40)

    fig, ax = plt.subplots(figsize=(9, 9), layout="constrained")
    nx.draw_networkx_edges(H, pos, ax=ax, alpha=0.08, width=0.5)
    cmap = plt.get_cmap("tab10")
    for c, nodes in enumerate(members):
        top = np.bincount(sections[nodes]).argmax()
        share = np.mean(sections[nodes] == top)
        label = f"{len(nodes)} packages, {share:.0%} in section '{section_names[top]}'"
        nx.draw_networkx_nodes(H, pos, nodelist=nodes.tolist(), ax=ax, node_size=8,
                               node_color=[cmap(c % 10)], label=label)
    ax.legend(loc="lower left", fontsize=8, markerscale=2.5, framealpha=0.9,
              title="community: size, most common Debian section")
    ax.set_title(
        f"Debian packages: the {n_shown} largest communities ({H.number_of_nodes()} packages)\n"
        f"a dot is a package; a line joins two packages when one is among the other's "
        f"{n_neighbors} most similar descriptions (cosine >= {min_similarity})",
        fontsize=10,
    )
    ax.set_axis_off()
    fig.savefig(path, dpi=110)
    plt.close(fig)
