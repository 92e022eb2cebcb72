"""
Similarity graph and communities of Debian package descriptions
================================================================

Build the 10-nearest-neighbour similarity graph of 25,000 real MiniLM embeddings of Debian
package descriptions (``../shared/data``; falls back to the 3,000 shipped with the package),
export it to NetworkX with each package's section as metadata, find communities with
Louvain, and compare them with the Debian sections. Writes ``graph_communities.png``.

Run from the repository root: ``python examples/plot_graph_communities.py``.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
from sklearn.metrics import adjusted_rand_score

from sksemantic.graph import SemanticGraphTransformer, to_networkx, to_pandas

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def load():
    if (DATA / "debian_emb.npy").exists():
        import json

        X = np.load(DATA / "debian_emb.npy").astype(np.float32)
        sections = np.load(DATA / "debian_labels.npy").astype(int)
        names = np.array(json.load(open(DATA / "debian_meta.json"))["label_names"])
        texts = (DATA / "debian_texts.txt").read_text().splitlines()
        return X, sections, names, texts
    from sksemantic.datasets import load_debian_packages

    d = load_debian_packages()
    return d.data, d.target, np.asarray(d.target_names), d.texts


X, sections, names, texts = load()
graph = SemanticGraphTransformer(n_neighbors=10, mode="similarity", min_similarity=0.4,
                                 random_state=0, verbose=1).fit_transform(X)
G = to_networkx(graph, labels=texts, node_attributes={"section": names[sections].tolist()})
communities = sorted(nx.community.louvain_communities(G, seed=0), key=len, reverse=True)
community = np.empty(len(X), dtype=int)
for c, members in enumerate(communities):
    community[list(members)] = c
print(f"{G.number_of_nodes():,} nodes, {G.number_of_edges():,} edges, "
      f"{len(communities)} communities, modularity "
      f"{nx.community.modularity(G, communities):.3f}")
print(f"agreement with Debian sections (ARI): {adjusted_rand_score(sections, community):.3f}")
for c in range(5):
    members = np.flatnonzero(community == c)
    top = np.bincount(sections[members]).argmax()
    print(f"community {c}: {len(members):5d} packages, {np.mean(sections[members] == top):.0%} "
          f"in '{names[top]}'")

nodes, edges = to_pandas(G)
print(edges.sort_values("weight", ascending=False).head())

# The picture: the largest communities laid out by springs.
keep = [n for c in communities[:8] for n in list(c)[:400]]
H = G.subgraph(keep)
pos = nx.spring_layout(H, seed=0, iterations=50)
fig, ax = plt.subplots(figsize=(9, 9))
nx.draw_networkx_edges(H, pos, ax=ax, alpha=0.05, width=0.5)
nx.draw_networkx_nodes(H, pos, ax=ax, node_size=6,
                       node_color=[community[n] for n in H.nodes()], cmap="tab10")
ax.set_title("Debian packages: the 8 largest communities (up to 400 nodes each)")
ax.set_axis_off()
fig.tight_layout()
fig.savefig("graph_communities.png", dpi=110)
print("wrote graph_communities.png")
