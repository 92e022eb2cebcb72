"""
Near-duplicate Debian packages
==============================

Group near-duplicate package descriptions with :class:`SemanticDeduplicator` and check
the groups against Debian's source packages (packages built from one source, such as
``libfoo1`` / ``libfoo-dev`` / ``foo-doc``, are natural near-duplicates). Prints the
precision of the groups at several thresholds and the largest groups' texts, and plots
group purity against the threshold (``deduplicate.png``).

Run from the repository root: ``python examples/plot_deduplicate.py``.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from sksemantic.graph import SemanticDeduplicator

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if (DATA / "debian_emb.npy").exists():
    X = np.load(DATA / "debian_emb.npy").astype(np.float32)
    source = np.load(DATA / "debian_groups.npy")
    texts = (DATA / "debian_texts.txt").read_text().splitlines()
else:
    from sksemantic.datasets import load_debian_packages

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

dedup = SemanticDeduplicator(min_similarity=0.95, random_state=0).fit(X)
sizes = np.bincount(dedup.labels_)
for g in np.argsort(-sizes)[:3]:
    rep = dedup.representatives_[g]
    print(f"\ngroup of {sizes[g]}, representative [{rep}]: {texts[rep]}")
    for m in np.flatnonzero(dedup.labels_ == g)[:4]:
        print(f"   [{m}] {texts[m]}")

fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(removed, purity, "o-")
for t, x, y in zip(thresholds, removed, purity, strict=True):
    ax.annotate(f"{t}", (x, y), textcoords="offset points", xytext=(4, 4))
ax.set_xlabel("share of items removed as duplicates")
ax.set_ylabel("groups within one source package")
ax.set_title("Deduplication threshold trade-off (Debian)")
fig.tight_layout()
fig.savefig("deduplicate.png", dpi=110)
print("\nwrote deduplicate.png")
