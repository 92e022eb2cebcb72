"""
Near-duplicate Debian packages
==============================

Group near-duplicate package descriptions with
:class:`~sksemantic.graph.SemanticDeduplicator` and check the groups against Debian's
source packages: packages built from one source, such as ``libfoo1`` / ``libfoo-dev`` /
``foo-doc``, are natural near-duplicates. The 3,000 descriptions shipped with
sksemantic are whole source-package families, so every group can be checked.
"""

# %%
# Precision at several thresholds
# -------------------------------
# A group is counted as right when all its members come from one source package.
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import PercentFormatter

from sksemantic.datasets import load_debian_packages
from sksemantic.graph import SemanticDeduplicator

d = load_debian_packages()
X, source, texts = d.data, d.groups, d.texts

thresholds = [0.8, 0.85, 0.9, 0.95, 0.98]
purity, removed = [], []
for t in thresholds:
    dedup = SemanticDeduplicator(min_similarity=t, random_state=0).fit(X)
    sizes = np.bincount(dedup.labels_)
    multi = np.flatnonzero(sizes > 1)
    # Share of near-duplicate groups whose members all come from one source package.
    pure = np.mean([len(np.unique(source[dedup.labels_ == g])) == 1 for g in multi])
    purity.append(pure)
    removed.append(1 - dedup.n_groups_ / len(X))
    print(f"min_similarity={t:.2f}: {dedup.n_groups_:,} distinct of {len(X):,} "
          f"({removed[-1]:.1%} removed), {multi.size} groups, {pure:.1%} within one source")

# %%
# The largest groups
# ------------------
# Each group keeps one representative: the member most similar to the others.
dedup = SemanticDeduplicator(min_similarity=0.95, random_state=0).fit(X)
sizes = np.bincount(dedup.labels_)
for g in np.argsort(-sizes)[:3]:
    rep = dedup.representatives_[g]
    print(f"\ngroup of {sizes[g]}, representative [{rep}]: {texts[rep]}")
    for m in np.flatnonzero(dedup.labels_ == g)[:4]:
        print(f"   [{m}] {texts[m]}")

# %%
# The trade-off
# -------------
# Lower thresholds merge more items, and more of the merged groups mix source packages.
fig, ax = plt.subplots(figsize=(6.5, 4), layout="constrained")
ax.plot(removed, purity, "o-")
for t, x, y in zip(thresholds, removed, purity, strict=True):
    ax.annotate(f"{t}", (x, y), textcoords="offset points", xytext=(6, 4), fontsize=9)
ax.text(0.03, 0.05, "point labels: min_similarity", transform=ax.transAxes, fontsize=9,
        color="0.3")
ax.xaxis.set_major_formatter(PercentFormatter(1))
ax.yaxis.set_major_formatter(PercentFormatter(1, decimals=1))
ax.margins(x=0.1, y=0.12)
ax.set_xlabel("items removed as near-duplicates")
ax.set_ylabel("groups within one source package")
ax.set_title("Deduplication threshold trade-off (3,000 Debian packages)")
fig.savefig("deduplicate.png", dpi=110)
