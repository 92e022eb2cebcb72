"""
Similarity graph and communities of Debian package descriptions
================================================================

Build the 10-nearest-neighbour similarity graph of the 3,000 Debian package
descriptions shipped with sksemantic (all-MiniLM-L6-v2 embeddings), export it to
NetworkX with each package's section as metadata, find communities with Louvain, and
compare them with the Debian sections.
"""

# %%
# The graph
# ---------
# One node per package; an edge joins two packages when one is among the other's 10
# most similar descriptions, with cosine similarity at least 0.4, weighted by that
# similarity.
import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
from sklearn.metrics import adjusted_rand_score

from sksemantic.datasets import load_debian_packages
from sksemantic.graph import SemanticGraphTransformer, to_networkx, to_pandas

d = load_debian_packages()
X, sections, names, texts = d.data, d.target, np.asarray(d.target_names), d.texts

graph = SemanticGraphTransformer(n_neighbors=10, mode="similarity", min_similarity=0.4,
                                 random_state=0).fit_transform(X)
G = to_networkx(graph, labels=texts, node_attributes={"section": names[sections].tolist()})

# %%
# Communities
# -----------
# Louvain groups packages that are more densely linked to each other than to the rest.
# Communities follow what packages do more than Debian's sections, which mix topics
# (``libs``, ``utils``) with languages (``python``, ``haskell``).
communities = sorted(nx.community.louvain_communities(G, seed=0), key=len, reverse=True)
community = np.empty(len(X), dtype=int)
for c, members in enumerate(communities):
    community[list(members)] = c
print(f"{G.number_of_nodes():,} nodes, {G.number_of_edges():,} edges, "
      f"{len(communities)} communities, modularity "
      f"{nx.community.modularity(G, communities):.3f}")
print(f"agreement with Debian sections (ARI): {adjusted_rand_score(sections, community):.3f}")
captions = []
for c in range(8):
    members = np.flatnonzero(community == c)
    top = np.bincount(sections[members]).argmax()
    share = np.mean(sections[members] == top)
    captions.append(f"{len(members)} packages, {share:.0%} in section '{names[top]}'")
    print(f"community {c}: {captions[-1]}")

# %%
# The same graph as pandas tables
# -------------------------------
# One row per node (with its metadata) and one per edge, heaviest edges first:
# identical descriptions have similarity 1.
nodes, edges = to_pandas(G)
print(nodes.head())
print(edges.sort_values("weight", ascending=False).head())

# %%
# The picture
# -----------
# The eight largest communities, laid out by springs: linked packages pull together.
H = G.subgraph([n for c in communities[:8] for n in c])
pos = nx.spring_layout(H, seed=0, iterations=50)
fig, ax = plt.subplots(figsize=(9, 8), layout="constrained")
nx.draw_networkx_edges(H, pos, ax=ax, alpha=0.06, width=0.5)
for c in range(8):
    nx.draw_networkx_nodes(H, pos, nodelist=list(communities[c]), ax=ax, node_size=7,
                           node_color=[plt.get_cmap("tab10")(c)], label=captions[c])
ax.legend(title="community: size, most common Debian section", loc="lower left",
          fontsize=8, markerscale=2.5, framealpha=0.9)
ax.set_title("Debian packages: the 8 largest communities of the similarity graph\n"
             "(a line joins two packages when one is among the other's 10 most similar, "
             "cosine >= 0.4)", fontsize=10)
ax.set_axis_off()
fig.savefig("graph_communities.png", dpi=110)
