"""
Tuning a semantic-ID encoder: recall against collisions
=======================================================

Semantic IDs are judged on two things: how often distinct items get the same code
(the *collision rate*: those IDs need disambiguating suffixes) and whether items that
share a code prefix are true neighbours (*recall@10*: the exact 10 nearest neighbours
found again by longest common prefix). This example searches the codebook size of
:class:`~sksemantic.quantization.RQKMeansEncoder`, with plain and balanced k-means,
with :class:`~sklearn.model_selection.GridSearchCV` and sksemantic's scorers, on
held-out folds of real sentence embeddings: the 3,000 Debian package descriptions
shipped with sksemantic (all-MiniLM-L6-v2).

Scores are computed on the held-out fold: the encoder is fitted on the training fold,
encodes the test fold, and the test fold's code-space neighbours are compared with its
exact neighbours.
"""

# %%
# Data
# ----
import matplotlib.pyplot as plt
from sklearn.model_selection import GridSearchCV, KFold

from sksemantic.datasets import load_debian_packages
from sksemantic.metrics import get_semantic_scorer
from sksemantic.quantization import RQKMeansEncoder

X = load_debian_packages().data
print(f"X {X.shape}")

# %%
# The search
# ----------
# Three levels; the codebook size and balancing are searched. ``refit`` selects on
# prefix recall@10; collision rate, the recall that orders equal prefixes by
# reconstruction distance, and the reconstruction error are reported beside it.
scoring = {
    "recall": get_semantic_scorer("recall_at_10"),
    "reconstruction_recall": get_semantic_scorer("reconstruction_recall_at_10"),
    "collision": get_semantic_scorer("neg_collision_rate"),
    "mse": get_semantic_scorer("neg_quantization_mse"),
}
search = GridSearchCV(
    RQKMeansEncoder(n_levels=3, max_iter=10, random_state=0),
    {"n_clusters": [8, 16, 32, 64, 128], "balanced": [False, True]},
    scoring=scoring,
    refit="recall",
    cv=KFold(3, shuffle=True, random_state=0),
    n_jobs=2,
)
search.fit(X)

res = search.cv_results_
print(f"{'K':>4} {'balanced':>8} {'recall@10':>10} {'recon recall@10':>16} "
      f"{'collision':>10} {'mse':>9}")
for i, params in enumerate(res["params"]):
    print(
        f"{params['n_clusters']:>4} {params['balanced']!s:>8} "
        f"{res['mean_test_recall'][i]:>10.3f} {res['mean_test_reconstruction_recall'][i]:>16.3f} "
        f"{-res['mean_test_collision'][i]:>10.3f} {-res['mean_test_mse'][i]:>9.5f}"
    )
print("best:", search.best_params_, f"recall@10 = {search.best_score_:.3f}")

# %%
# The trade-off
# -------------
# Larger codebooks raise prefix recall and lower collisions, until identical
# descriptions (which always collide) set a floor.
# Balanced k-means spreads items more evenly, so it collides less at equal K, for a
# little prefix recall. Ordering items within equal prefixes by reconstruction distance
# (dotted) finds more true neighbours than the prefix alone. Bigger K also means a
# bigger vocabulary for a generative retriever, which this plot does not price.
# Each point is averaged over the three held-out folds.
fig, (ax_recall, ax_collision) = plt.subplots(1, 2, figsize=(9, 4), sharex=True,
                                              layout="constrained")
for balanced, marker, color in ((False, "o", "C0"), (True, "s", "C1")):
    sel = [i for i, p in enumerate(res["params"]) if p["balanced"] == balanced]
    K = [res["params"][i]["n_clusters"] for i in sel]
    name = "balanced" if balanced else "plain"
    ax_recall.plot(K, res["mean_test_recall"][sel], "-", marker=marker, color=color,
                   label=f"{name} k-means, prefix")
    ax_recall.plot(K, res["mean_test_reconstruction_recall"][sel], ":", marker=marker,
                   color=color, label=f"{name} k-means, prefix then reconstruction")
    ax_collision.plot(K, -res["mean_test_collision"][sel], "-", marker=marker, color=color)
best = search.best_index_
K_best = res["params"][best]["n_clusters"]
ax_recall.scatter(K_best, res["mean_test_recall"][best], s=220, facecolors="none",
                  edgecolors="k", label="selected (refit='recall')", zorder=3)
ax_collision.scatter(K_best, -res["mean_test_collision"][best], s=220, facecolors="none",
                     edgecolors="k", zorder=3)
ax_recall.set_ylabel("recall@10 (higher is better)")
ax_collision.set_ylabel("collision rate (lower is better)")
for ax in (ax_recall, ax_collision):
    ax.set_xscale("log", base=2)
    ax.set_xticks(search.param_grid["n_clusters"], labels=search.param_grid["n_clusters"])
    ax.set_xlabel("codewords per level (K)")
    ax.grid(alpha=0.3)
fig.suptitle("RQKMeansEncoder, 3 levels, on held-out folds of 3,000 Debian descriptions")
fig.legend(loc="outside lower center", ncol=3, fontsize=8, frameon=False)
fig.savefig("tune_encoder.png", dpi=110)
