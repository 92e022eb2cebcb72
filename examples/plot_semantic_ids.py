"""
Semantic IDs for WordNet definitions
====================================

Encode the 2,000 MiniLM embeddings of WordNet definitions shipped with sksemantic into
3-level residual k-means codes, check that a shared code prefix goes with a shared
WordNet topic, make the IDs unique and stable in a SQLite store, and show the token
format used for generative retrieval.
"""

# %%
# Codes
# -----
# Three levels of 64 codewords: each item gets three integers, the first a coarse
# bucket, the next ones refining what the previous levels left over.
import os
import tempfile

import matplotlib.pyplot as plt
import numpy as np

from sksemantic.datasets import load_wordnet_queries
from sksemantic.ids import SemanticIdAssigner, SQLiteIDStore, codes_to_strings
from sksemantic.metrics import codebook_usage, collision_rate
from sksemantic.quantization import RQKMeansEncoder

d = load_wordnet_queries()
X, topic, names, texts = d.data, d.target, np.asarray(d.target_names), d.texts

enc = RQKMeansEncoder(n_levels=3, n_clusters=64, random_state=0).fit(X)
codes = enc.transform(X)
X_hat = enc.inverse_transform(codes)
relative = np.sum((X - X_hat) ** 2) / np.sum((X - X.mean(axis=0)) ** 2)
print(f"{len(X):,} items, codes {codes.shape}, relative MSE {relative:.3f}")
print(f"collision rate {collision_rate(codes):.3f}")
usage = codebook_usage(codes, n_clusters=enc.n_clusters_)
for key in ("used_fraction", "perplexity", "largest_bucket"):
    print(f"{key} per level: {np.round(np.asarray(usage[key], dtype=float), 3).tolist()}")

# %%
# Does a shared prefix go with a shared topic?
# --------------------------------------------
# Random pairs of items: the longer the code prefix they share, the likelier they come
# from the same WordNet lexicographer file (noun.plant, verb.motion, ...).
rng = np.random.default_rng(0)
a, b = rng.integers(len(X), size=(2, 200_000))
same_topic = topic[a] == topic[b]
for depth in (1, 2, 3):
    shared = (codes[a, :depth] == codes[b, :depth]).all(axis=1)
    print(f"pairs sharing the first {depth} code(s): {shared.mean():.4f} of pairs, "
          f"{same_topic[shared].mean():.1%} share a topic (all pairs: {same_topic.mean():.1%})")

# %%
# Unique, stable IDs in a database
# --------------------------------
# A counter level makes every ID unique; the SQLite store keeps an item's ID when it is
# submitted again.
path = os.path.join(tempfile.mkdtemp(), "ids.sqlite")
assigner = SemanticIdAssigner(enc, uniqueness="counter", store=SQLiteIDStore(path, create=True))
ids = assigner.assign(X, keys=[f"syn{i}" for i in range(len(X))])
again = assigner.assign(X[:5], keys=[f"syn{i}" for i in range(5)])
assert (again == ids[:5]).all()  # resubmitted items keep their IDs
print(f"unique IDs: {len(np.unique(ids, axis=0)) == len(ids)}; width {ids.shape[1]}")
for i, tok in enumerate(codes_to_strings(ids[:5], fmt="token")):
    print(f"  {tok:28s} {names[topic[i]]:18s} {texts[i][:50]}")
index = assigner.prefix_index()
print(f"valid second codes after prefix ({ids[0, 0]},): {len(index.next_codes([ids[0, 0]]))}")

# %%
# How topical are the level-0 buckets?
# ------------------------------------
# Each dot is one level-0 bucket: its size, and the share of its items that belong to
# its most common WordNet topic, coloured by that topic. Most buckets are far purer than
# chance (the dashed line: the share of the largest topic in the whole corpus).
sizes = np.bincount(codes[:, 0], minlength=enc.n_clusters_[0])
main_topic = np.array([
    np.bincount(topic[codes[:, 0] == c]).argmax() if s else -1 for c, s in enumerate(sizes)
])
purity = np.array([
    np.mean(topic[codes[:, 0] == c] == main_topic[c]) if s else 0 for c, s in enumerate(sizes)
])
fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
# A colour for each topic that leads several buckets, grey for the rest.
leading, n_buckets = np.unique(main_topic[sizes > 0], return_counts=True)
colours = ["C0", "C1", "C2", "C3", "C4", "C5", "C6", "C8", "C9"]  # tab10 less its grey
shown = leading[np.argsort(-n_buckets, kind="stable")][: len(colours)]
for t, colour in zip(shown, colours, strict=False):
    sel = main_topic == t
    ax.scatter(sizes[sel], purity[sel], s=28, color=colour, label=names[t])
rest = ~np.isin(main_topic, shown) & (sizes > 0)
ax.scatter(sizes[rest], purity[rest], s=28, color="0.75", label="other topics")
chance = np.bincount(topic).max() / len(topic)
ax.axhline(chance, color="grey", ls="--", lw=0.8)
ax.annotate("chance: the largest topic's share of all items", (1, chance),
            xycoords=("axes fraction", "data"), xytext=(-4, 4), textcoords="offset points",
            ha="right", fontsize=8, color="grey")
fig.legend(title="most common topic", loc="outside right upper", fontsize=8)
ax.set_ylim(0, 1.02)
ax.set_xlabel("items in the level-0 bucket")
ax.set_ylabel("share of its most common WordNet topic")
ax.set_title("Level-0 semantic ID buckets are topical")
fig.savefig("semantic_ids.png", dpi=110)
